"""RtpMunger: one continuous stream for any interleaving of sources, switches, loss and reorder."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webrtc_ext.munger import RtpMunger

FRAME = 960  # 20 ms of Opus at 48 kHz


def signed16(value: int) -> int:
    value &= 0xFFFF
    return value - 0x10000 if value >= 0x8000 else value


def signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value >= 0x80000000 else value


@dataclass
class Sent:
    source: int
    index: int  # position in its source's own stream
    seq: int
    ts: int


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[tuple[str, object]], dict[int, tuple[int, int]]]:
    """Events: ('packet', Sent) in delivery order, ('switch', source), ('tick', seconds)."""
    sources = draw(st.integers(2, 3))
    # Start near the wrap points often, so 16/32-bit wrap happens inside a run.
    origins = {
        s: (
            draw(st.one_of(st.integers(0xFFF0, 0xFFFF), st.integers(0, 0xFFFF))),
            draw(st.one_of(st.integers(0xFFFFF000, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF))),
        )
        for s in range(sources)
    }
    next_index = dict.fromkeys(range(sources), 0)
    in_flight: list[Sent] = []
    events: list[tuple[str, object]] = []
    for _ in range(draw(st.integers(1, 120))):
        action = draw(st.sampled_from(["send", "send", "send", "deliver", "switch", "tick"]))
        if action == "send":
            source = draw(st.integers(0, sources - 1))
            index = next_index[source]
            next_index[source] += draw(st.integers(1, 3))  # skipped indexes are lost packets
            seq0, ts0 = origins[source]
            in_flight.append(
                Sent(source, index, (seq0 + index) & 0xFFFF, (ts0 + index * FRAME) & 0xFFFFFFFF)
            )
            if draw(st.booleans()):
                events.append(("packet", in_flight.pop(0)))
        elif action == "deliver" and in_flight:
            # Any packet in flight may overtake the others: reordering.
            events.append(("packet", in_flight.pop(draw(st.integers(0, len(in_flight) - 1)))))
        elif action == "switch":
            events.append(("switch", draw(st.integers(0, sources - 1))))
        elif action == "tick":
            events.append(("tick", draw(st.sampled_from([0.0, 0.001, 0.02, 0.5, 30.0]))))
    events += [("packet", p) for p in in_flight]
    return events, origins


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_one_continuous_stream(scenario: tuple[list[tuple[str, object]], object]) -> None:
    events, _ = scenario
    munger = RtpMunger(48000)
    now = 0.0
    current: int | None = None
    seen_before_switch: dict[int, int] = {}  # source -> highest index fed before the last switch
    highest_fed: dict[int, int] = {}
    segment: list[tuple[Sent, int, int]] = []  # (packet, unwrapped out seq, unwrapped out ts)
    high_seq: int | None = None
    high_ts: int | None = None
    segment_floor: tuple[int, int] | None = None
    for kind, value in events:
        if kind == "tick":
            now += float(value)  # type: ignore[arg-type]
            continue
        if kind == "switch":
            current = int(value)  # type: ignore[call-overload]
            munger.update(current)
            seen_before_switch = dict(highest_fed)
            segment = []
            segment_floor = (high_seq, high_ts) if high_seq is not None else None
            continue
        packet: Sent = value  # type: ignore[assignment]
        highest_fed[packet.source] = max(highest_fed.get(packet.source, -1), packet.index)
        out = munger.munge(packet.seq, packet.ts, now, packet.source)
        if current is None:
            current = packet.source
        if out is None:
            continue
        # No packet of an old source after a switch, nor one its source sent before it.
        assert packet.source == current
        assert packet.index > seen_before_switch.get(packet.source, -1)
        seq16, ts32 = out
        if high_seq is None or high_ts is None:
            out_seq, out_ts = seq16, ts32
        else:
            out_seq = high_seq + signed16(seq16 - high_seq)
            out_ts = high_ts + signed32(ts32 - high_ts)
        if segment:
            # Within a source: the input's relative order and gaps, nothing going backwards.
            first, first_seq, first_ts = segment[0]
            assert out_seq - first_seq == packet.index - first.index
            assert out_ts - first_ts == (packet.index - first.index) * FRAME
        elif segment_floor is not None:
            # A new segment continues right after everything sent: no gap, no step back.
            assert out_seq == segment_floor[0] + 1
            assert out_ts > segment_floor[1]
        if segment_floor is not None:
            assert out_seq > segment_floor[0]
            assert out_ts > segment_floor[1]
        segment.append((packet, out_seq, out_ts))
        high_seq = out_seq if high_seq is None else max(high_seq, out_seq)
        high_ts = out_ts if high_ts is None else max(high_ts, out_ts)


def test_timestamp_advances_by_elapsed_time_across_switch() -> None:
    munger = RtpMunger(48000)
    assert munger.munge(0xFFFF, 0xFFFFFC40, 10.0, "a") == (0xFFFF, 0xFFFFFC40)
    munger.update("b")
    out = munger.munge(500, 123, 10.5, "b")
    assert out == (0, (0xFFFFFC40 + 24000) & 0xFFFFFFFF)
    assert munger.munge(501, 123 + 960, 10.52, "b") == (1, (0xFFFFFC40 + 24960) & 0xFFFFFFFF)


def test_late_packet_of_previous_source_is_dropped() -> None:
    munger = RtpMunger(48000)
    munger.munge(10, 0, 0.0, "a")
    munger.munge(12, 1920, 0.04, "a")
    munger.update("b")
    assert munger.munge(11, 960, 0.05, "a") is None  # Elixir's munger would renumber it
    assert munger.munge(7, 0, 0.06, "b") == (13, 1920 + 960)
    assert munger.dropped == 1


def test_switching_back_drops_what_the_source_sent_before() -> None:
    munger = RtpMunger(8000)
    munger.munge(100, 0, 0.0, "a")
    munger.munge(102, 320, 0.04, "a")
    munger.update("b")
    munger.munge(1, 0, 0.06, "b")
    munger.update("a")
    assert munger.munge(101, 160, 0.08, "a") is None
    assert munger.munge(103, 480, 0.1, "a") == (104, 320 + 160 + 320)


def test_rejects_a_bad_clock_rate() -> None:
    with pytest.raises(ValueError):
        RtpMunger(0)


def test_a_source_restarting_with_a_new_ssrc_continues_the_stream() -> None:
    munger = RtpMunger(48000)
    assert munger.munge(10, 0, 0.0, "peer", ssrc=1) == (10, 0)
    assert munger.munge(11, 960, 0.02, "peer", ssrc=1) == (11, 960)
    assert munger.munge(5000, 77, 0.04, "peer", ssrc=2) == (12, 1920)
    assert munger.munge(12, 1920, 0.05, "peer", ssrc=1) is None  # the SSRC it left
    assert munger.munge(5001, 77 + 960, 0.06, "peer", ssrc=2) == (13, 2880)


def test_output_starts_at_the_given_origin() -> None:
    munger = RtpMunger(48000, initial_sequence_number=30000, initial_timestamp=123)
    assert munger.munge(9, 999, 0.0, "a") == (30000, 123)
    assert munger.munge(10, 999 + 960, 0.02, "a") == (30001, 123 + 960)


def test_inserted_packets_take_their_own_numbers() -> None:
    munger = RtpMunger(8000)
    munger.munge(10, 0, 0.0, "a")
    munger.munge(12, 320, 0.04, "a")
    assert munger.insert(0.05) == (13, 320 + 80)  # an RFC 4733 event, say
    assert munger.insert(0.06) == (14, 320 + 160)
    assert munger.munge(11, 160, 0.07, "a") is None  # would have been 11, but late
    assert munger.munge(13, 480, 0.08, "a") == (15, 480)
    munger.update("b")
    assert munger.munge(500, 7, 0.1, "b") == (16, 480 + 160)


def test_a_switch_advances_by_whole_frames() -> None:
    munger = RtpMunger(48000)
    munger.munge(1, 0, 0.0, "a")
    munger.munge(2, 960, 0.02, "a")
    munger.update("b")
    # b's packet comes 7 ms after a's last one: it follows it without overlap...
    assert munger.munge(50, 5, 0.027, "b") == (3, 1920)
    munger.update("a")
    # ... and 2.013 s of silence stay 2.02 s (101 frames).
    assert munger.munge(3, 1920, 2.04, "a") == (4, 1920 + 101 * 960)
