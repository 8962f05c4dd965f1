"""The RFC 4733 decoder: every key press exactly once, whatever the network did to its packets."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from aiortc.rtp import RtpPacket
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from benchmarks.baselines import MarkerBitDecoder
from webrtc_ext.dtmf.rfc4733 import (
    MAX_DURATION,
    SEGMENT_LATENESS,
    TelephoneEvent,
    TelephoneEventDecoder,
    TelephoneEventPayload,
)
from webrtc_ext.dtmf.tones import EventPacket, TonePlayer

SSRC = 0x1234


@dataclass(frozen=True)
class Sent:
    packet: RtpPacket
    at: float
    press: int


def play(
    digits: str,
    durations: list[int],
    gaps: list[int],
    clock_rate: int = 8000,
    first_timestamp: int = 1000,
    interval: float = 0.05,
) -> list[Sent]:
    """The packets a TonePlayer sends for these presses, with send times and press index."""
    player = TonePlayer(clock_rate=clock_rate, interval=interval)
    sent: list[Sent] = []
    now, press, seq = 0.0, -1, 0
    for digit, duration, gap in zip(digits, durations, gaps, strict=True):
        player.insert(digit, duration, gap, now)
        for _ in range(100_000):
            timer = player.get_timer()
            if timer is None:
                break
            now = max(now, timer)
            for action in player.poll(now):
                if isinstance(action, EventPacket):
                    if action.marker:
                        press += 1
                    offset = round(action.segment_began * clock_rate)
                    packet = RtpPacket(
                        payload_type=126,
                        marker=int(action.marker),
                        sequence_number=seq & 0xFFFF,
                        timestamp=(first_timestamp + offset) & 0xFFFFFFFF,
                        ssrc=SSRC,
                        payload=action.payload,
                    )
                    seq += 1
                    sent.append(Sent(packet, now, press))
    return sent


def decode(arrivals: list[tuple[float, RtpPacket]], clock_rate: int = 8000) -> list[TelephoneEvent]:
    """Feed packets in arrival order, firing the timer as an asyncio shell would."""
    decoder = TelephoneEventDecoder()
    events: list[TelephoneEvent] = []
    for at, packet in sorted(arrivals, key=lambda item: item[0]):
        timer = decoder.get_timer()
        if timer is not None and timer <= at:
            events += decoder.handle_timer(timer)
        events += decoder.receive(packet, at, clock_rate)
    timer = decoder.get_timer()
    if timer is not None:
        events += decoder.handle_timer(timer)
    assert decoder.get_timer() is None
    return events


def digits_of(events: list[TelephoneEvent]) -> str:
    return "".join(e.digit for e in events)


def ambiguous(presses: list[tuple[str, int, int]], clock_rate: int) -> bool:
    """The one case RFC 4733 leaves ambiguous (docs/dtmf.md, Limits): a press of the same key
    starting just where a new segment of the previous press would (a long press continues
    with a new timestamp 0xFFFF units later). With every end packet of the first and the
    marker packet of the second lost, nothing tells them apart."""
    for (key, duration, gap), (next_key, _, _) in itertools.pairwise(presses):
        segment = MAX_DURATION / clock_rate
        starts_after = (duration + gap) / 1000 - (duration / 1000 // segment + 1) * segment
        if key == next_key and -0.001 <= starts_after <= SEGMENT_LATENESS + 0.001:
            return True
    return False


KEYS = "0123456789*#ABCD"
presses = st.lists(
    st.tuples(
        st.sampled_from(KEYS),
        st.integers(min_value=40, max_value=1500),  # duration, ms (W3C minimum 40)
        st.integers(min_value=30, max_value=400),  # inter-tone gap, ms (W3C minimum 30)
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(
    presses=presses,
    clock_rate=st.sampled_from([8000, 48000]),
    first_timestamp=st.one_of(
        st.integers(0, 0xFFFFFFFF), st.integers(0xFFFFFFFF - 48000 * 4, 0xFFFFFFFF)
    ),
    seed=st.integers(0, 2**32 - 1),
    loss=st.floats(0.0, 0.9),
    duplication=st.floats(0.0, 0.5),
    max_delay=st.floats(0.0, 0.06),
)
def test_every_press_once_in_order_under_loss_duplication_reordering(
    presses: list[tuple[str, int, int]],
    clock_rate: int,
    first_timestamp: int,
    seed: int,
    loss: float,
    duplication: float,
    max_delay: float,
) -> None:
    assume(not ambiguous(presses, clock_rate))
    digits = "".join(p[0] for p in presses)
    sent = play(
        digits, [p[1] for p in presses], [p[2] for p in presses], clock_rate, first_timestamp
    )
    rng = random.Random(seed)
    kept = [s for s in sent if rng.random() >= loss]
    for press in range(len(presses)):  # the property's premise: >= 1 packet of each press
        if not any(s.press == press for s in kept):
            kept.append(rng.choice([s for s in sent if s.press == press]))
    copies = [s for s in kept for _ in range(2 if rng.random() < duplication else 1)]
    # Reordering: each copy is delayed independently by up to max_delay (less than the
    # shortest tone plus gap, 70 ms, so the presses themselves stay in order).
    arrivals = [(s.at + rng.uniform(0, max_delay), s.packet) for s in copies]
    events = decode(arrivals, clock_rate)
    assert digits_of(events) == digits


@settings(max_examples=100, deadline=None)
@given(presses=presses, seed=st.integers(0, 2**32 - 1))
def test_unknown_event_codes_and_malformed_payloads_are_ignored(
    presses: list[tuple[str, int, int]], seed: int
) -> None:
    digits = "".join(p[0] for p in presses)
    sent = play(digits, [p[1] for p in presses], [p[2] for p in presses])
    rng = random.Random(seed)
    arrivals = [(s.at, s.packet) for s in sent]
    for _ in range(len(sent) // 2):
        junk = RtpPacket(payload_type=126, timestamp=rng.getrandbits(32), ssrc=SSRC)
        junk.marker = rng.getrandbits(1)
        junk.payload = (
            TelephoneEventPayload(
                rng.randint(16, 255), bool(rng.getrandbits(1)), 10, 800
            ).serialize()
            if rng.random() < 0.7
            else rng.randbytes(rng.randint(0, 3))
        )
        arrivals.append((rng.uniform(0, sent[-1].at), junk))
    assert digits_of(decode(arrivals)) == digits


def test_press_details() -> None:
    sent = play("5", [500], [70], clock_rate=8000)
    (event,) = decode([(s.at, s.packet) for s in sent])
    assert event.digit == "5"
    assert event.end_reason == "end"
    assert abs(event.duration - 0.5) < 1e-6
    assert abs(event.start - 0.0) < 1e-6 and abs(event.end - 0.5) < 1e-6
    assert event.volume == 10 and event.clock_rate == 8000 and event.ssrc == SSRC


def test_marker_packet_lost() -> None:
    sent = play("12", [300, 300], [100, 100])
    events = decode([(s.at, s.packet) for s in sent if not s.packet.marker])
    assert digits_of(events) == "12"


def test_short_tone_arrives_as_end_packets_only() -> None:
    sent = play("7", [40], [70], interval=0.05)
    assert all(TelephoneEventPayload.parse(s.packet.payload).end for s in sent)
    assert sent[0].packet.marker and not any(s.packet.marker for s in sent[1:])
    (event,) = decode([(s.at, s.packet) for s in sent])
    assert event.digit == "7" and event.end_reason == "end"


def test_missing_end_times_out_once() -> None:
    sent = play("9", [400], [70])
    updates = [
        (s.at, s.packet) for s in sent if not TelephoneEventPayload.parse(s.packet.payload).end
    ]
    (event,) = decode(updates)
    assert event.digit == "9" and event.end_reason == "timeout"
    assert abs(event.duration - 0.4) < 0.06


def test_same_digit_twice_is_two_presses_even_without_markers_or_ends() -> None:
    sent = play("55", [200, 200], [70, 70])
    only_updates = [
        (s.at, s.packet)
        for s in sent
        if not s.packet.marker and not TelephoneEventPayload.parse(s.packet.payload).end
    ]
    events = decode(only_updates)
    assert digits_of(events) == "55"
    assert events[0].end_reason == "next"


def test_timestamp_wrap() -> None:
    sent = play("147", [200, 200, 200], [70, 70, 70], 48000, first_timestamp=0xFFFFFFFF - 10_000)
    timestamps = {s.packet.timestamp for s in sent}
    assert min(timestamps) < 10_000 < 0xFFFF0000 < max(timestamps)
    rng = random.Random(4)
    arrivals = [(s.at + rng.uniform(0, 0.05), s.packet) for s in sent]
    assert digits_of(decode(arrivals, 48000)) == "147"


def test_long_press_split_into_segments_is_one_press() -> None:
    # 6 s at 48 kHz is 288000 samples: five RFC 4733 §2.5.2.3 segments.
    sent = play("0", [6000], [70], clock_rate=48000)
    assert len({s.packet.timestamp for s in sent}) == 5
    (event,) = decode([(s.at, s.packet) for s in sent], 48000)
    assert event.digit == "0" and abs(event.duration - 6.0) < 1e-3


def test_long_press_whose_duration_field_wraps_is_one_press() -> None:
    # Some senders let the 16-bit duration wrap instead of starting a new segment.
    decoder = TelephoneEventDecoder()
    events: list[TelephoneEvent] = []
    samples = 0
    for step in range(1, 41):  # 2 s at 48 kHz in 50 ms steps: wraps once
        samples = step * 2400
        packet = RtpPacket(payload_type=110, marker=int(step == 1), timestamp=77, ssrc=SSRC)
        packet.payload = TelephoneEventPayload(
            3, step == 40, 10, samples & MAX_DURATION
        ).serialize()
        events += decoder.receive(packet, step * 0.05, 48000)
    (event,) = events
    assert event.digit == "3" and abs(event.duration - samples / 48000) < 1e-6


def test_late_packet_of_an_earlier_press_is_reported_before_the_later_one() -> None:
    sent = play("12", [100, 100], [70, 70])
    first = [s for s in sent if s.press == 0][-1]  # only one end packet of "1" survives
    second = [s for s in sent if s.press == 1]
    arrivals = [(s.at, s.packet) for s in second[:1]] + [(second[0].at + 0.001, first.packet)]
    arrivals += [(s.at, s.packet) for s in second[1:]]
    assert digits_of(decode(arrivals)) == "12"


def test_marker_bit_decoder_misses_presses_whose_marker_packet_is_lost() -> None:
    sent = play("12", [300, 300], [100, 100])
    naive = MarkerBitDecoder()
    digits = [naive.receive(s.packet) for s in sent if not (s.press == 0 and s.packet.marker)]
    assert [d for d in digits if d] == ["2"]


def test_chromium_short_tones_three_end_packets_all_with_marker() -> None:
    # As captured from Chromium's insertDTMF (100 ms tones, telephone-event/8000): no
    # update packets, the end packet three times, each with the marker bit, and timestamps
    # on the 48 kHz audio clock.
    arrivals = []
    for i, code in enumerate([0, 1, 2]):
        for copy in range(3):
            packet = RtpPacket(payload_type=126, marker=1, timestamp=922364779 + i * 11520)
            packet.ssrc = SSRC
            packet.sequence_number = 100 + 13 * i + copy
            packet.payload = TelephoneEventPayload(code, True, 10, 960).serialize()
            arrivals.append((0.24 * i + 0.001 * copy, packet))
    events = decode(arrivals)
    assert digits_of(events) == "012"
    assert all(abs(e.duration - 0.12) < 1e-9 for e in events)


def test_a_new_ssrc_with_the_same_timestamp_is_a_new_press() -> None:
    decoder = TelephoneEventDecoder()
    events: list[TelephoneEvent] = []
    for ssrc, at in ((1, 0.0), (2, 0.3)):
        packet = RtpPacket(payload_type=126, marker=1, timestamp=5000, ssrc=ssrc)
        packet.payload = TelephoneEventPayload(8, False, 10, 400).serialize()
        events += decoder.receive(packet, at)
    events += decoder.flush()
    assert digits_of(events) == "88" and [e.ssrc for e in events] == [1, 2]
