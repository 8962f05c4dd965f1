"""The tone player: W3C RTCDTMFSender playout, RFC 4733 packets shaped like a browser's."""

from __future__ import annotations

from webrtc_ext.dtmf.rfc4733 import TelephoneEventPayload
from webrtc_ext.dtmf.tones import EventPacket, ToneChange, TonePlayer


def run(player: TonePlayer, limit: float = 60.0) -> list[tuple[float, ToneChange | EventPacket]]:
    out: list[tuple[float, ToneChange | EventPacket]] = []
    while (timer := player.get_timer()) is not None and timer < limit:
        out += [(timer, action) for action in player.poll(timer)]
    return out


def test_packets_marker_first_updates_every_50_ms_end_three_times() -> None:
    player = TonePlayer(clock_rate=8000)
    player.insert("5", 200, 70, now=0.0)
    packets = [(t, a) for t, a in run(player) if isinstance(a, EventPacket)]
    payloads = [TelephoneEventPayload.parse(a.payload) for _, a in packets]
    assert [round(t, 3) for t, _ in packets] == [0.05, 0.1, 0.15, 0.2, 0.2, 0.2]
    assert [a.marker for _, a in packets] == [True] + [False] * 5
    assert [p.duration for p in payloads] == [400, 800, 1200, 1600, 1600, 1600]
    assert [p.end for p in payloads] == [False, False, False, True, True, True]
    assert {p.event for p in payloads} == {5} and len({a.segment for _, a in packets}) == 1


def test_tonechange_sequence_gap_and_comma() -> None:
    player = TonePlayer()
    player.insert("1,2", 100, 70, now=0.0)
    changes = [(round(t, 3), a.tone) for t, a in run(player) if isinstance(a, ToneChange)]
    # "1" at 0; "," after 100 ms + 70 ms gap; "2" two seconds later; "" after its gap.
    assert changes == [(0.0, "1"), (0.17, ","), (2.17, "2"), (2.34, "")]


def test_insert_while_playing_replaces_the_buffer() -> None:
    player = TonePlayer()
    player.insert("123", 100, 70, now=0.0)
    player.poll(0.0)
    assert player.playing and player.tone_buffer == "23"
    player.insert("9", 100, 70, now=0.01)
    tones = [a.tone for _, a in run(player) if isinstance(a, ToneChange)]
    assert tones == ["9", ""]


def test_audio_pauses_only_while_a_tone_plays() -> None:
    player = TonePlayer()
    assert player.idle and not player.playing
    player.insert("1", 100, 70, now=0.0)
    player.poll(0.0)
    assert player.playing
    player.poll(0.1)
    assert not player.playing and not player.idle  # in the inter-tone gap
    player.poll(0.17)
    assert player.idle
