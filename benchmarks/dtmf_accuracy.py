"""DTMF digit accuracy under random packet loss: the RFC 4733 decoder vs a marker-bit decoder.

Key presses are played by the library's tone player (browser-shaped packets: updates every
50 ms, the marker on the first, the end packet three times), a random fraction of packets
is dropped, and both decoders are fed the same surviving packets in the same run. A press
counts as decoded when an event with its digit and its RTP timestamp comes out; every other
event is a false digit.

Usage: python benchmarks/dtmf_accuracy.py [--quick] [--presses N] [--seed S]
The last line printed is JSON: {"accuracy": {loss%: fraction}, "naive_accuracy": {...},
"false_digits": {...}, "naive_false_digits": {...}, "decodable": {...}, "presses": N}.
"decodable" is the fraction of presses with at least one packet left: the ceiling.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from aiortc.rtp import RtpPacket

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.baselines import MarkerBitDecoder
from webrtc_ext.dtmf.rfc4733 import (
    DTMF_EVENTS,
    TelephoneEvent,
    TelephoneEventDecoder,
)
from webrtc_ext.dtmf.tones import EventPacket, TonePlayer

LOSSES = (0, 10, 20, 30)
CLOCK_RATE = 8000  # telephone-event/8000, as WhatsApp negotiates


def play(rng: random.Random, presses: int) -> list[tuple[float, RtpPacket]]:
    """Packets (send time, packet) for ``presses`` random key presses."""
    player = TonePlayer(clock_rate=CLOCK_RATE)
    packets: list[tuple[float, RtpPacket]] = []
    now, seq = 0.0, 0
    for _ in range(presses):
        digit = rng.choice(DTMF_EVENTS[:12])
        # Typical tones: 100 ms (browsers' default) to 500 ms (phones), 70-100 ms gaps.
        player.insert(digit, rng.choice([100, 160, 250, 500]), rng.choice([70, 100]), now)
        while (timer := player.get_timer()) is not None:
            now = timer
            for action in player.poll(now):
                if isinstance(action, EventPacket):
                    packet = RtpPacket(
                        payload_type=126,
                        marker=int(action.marker),
                        sequence_number=seq & 0xFFFF,
                        timestamp=round(action.segment_began * CLOCK_RATE) & 0xFFFFFFFF,
                        ssrc=1,
                        payload=action.payload,
                    )
                    seq += 1
                    packets.append((now, packet))
    return packets


def hostile(
    rng: random.Random, packets: list[tuple[float, RtpPacket]], loss: float
) -> list[tuple[float, RtpPacket]]:
    """Loss, then 5% of packets duplicated, then each delayed by 0-40 ms (reordering)."""
    kept = [(at, p) for at, p in packets if rng.random() >= loss]
    copies = [item for item in kept for _ in range(2 if rng.random() < 0.05 else 1)]
    return sorted(((at + rng.uniform(0, 0.04), p) for at, p in copies), key=lambda x: x[0])


def decode(arrivals: list[tuple[float, RtpPacket]]) -> list[TelephoneEvent]:
    decoder = TelephoneEventDecoder()
    events: list[TelephoneEvent] = []
    for at, packet in arrivals:
        events += decoder.receive(packet, at, CLOCK_RATE)
    return events + decoder.flush()


def decode_naive(arrivals: list[tuple[float, RtpPacket]]) -> list[tuple[str, int]]:
    decoder = MarkerBitDecoder()
    found = []
    for _, packet in arrivals:
        digit = decoder.receive(packet)
        if digit is not None:
            found.append((digit, packet.timestamp))
    return found


def score(found: list[tuple[str, int]], truth: dict[int, str]) -> tuple[float, int]:
    """(fraction of presses decoded, number of false digits)."""
    matched: set[int] = set()
    false = 0
    for digit, timestamp in found:
        if truth.get(timestamp) == digit and timestamp not in matched:
            matched.add(timestamp)
        else:
            false += 1
    return len(matched) / len(truth), false


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer presses")
    parser.add_argument("--presses", type=int, default=None)
    parser.add_argument("--seed", type=int, default=4733)
    args = parser.parse_args()
    presses = args.presses or (500 if args.quick else 5000)
    rng = random.Random(args.seed)
    packets = play(rng, presses)
    truth: dict[int, str] = {}
    for _, packet in packets:
        if packet.marker:
            truth[packet.timestamp] = DTMF_EVENTS[packet.payload[0]]
    assert len(truth) == presses

    result: dict[str, dict[int, float] | dict[int, int] | int] = {
        "accuracy": {},
        "naive_accuracy": {},
        "false_digits": {},
        "naive_false_digits": {},
        "decodable": {},
    }
    print(f"{presses} key presses, {len(packets)} telephone-event packets, seed {args.seed}")
    print(f"{'loss':>5} {'RFC 4733 decoder':>24} {'marker-bit decoder':>24} {'decodable':>10}")
    started = time.perf_counter()
    for loss in LOSSES:
        arrivals = [(at, p) for at, p in packets if rng.random() >= loss / 100]
        events = decode(arrivals)
        accuracy, false = score([(e.digit, e.rtp_timestamp) for e in events], truth)
        naive_accuracy, naive_false = score(decode_naive(arrivals), truth)
        # A press none of whose packets survived cannot be decoded by anyone.
        decodable = len({p.timestamp for _, p in arrivals}) / presses
        result["decodable"][loss] = round(decodable, 4)  # type: ignore[index]
        result["accuracy"][loss] = round(accuracy, 4)  # type: ignore[index]
        result["naive_accuracy"][loss] = round(naive_accuracy, 4)  # type: ignore[index]
        result["false_digits"][loss] = false  # type: ignore[index]
        result["naive_false_digits"][loss] = naive_false  # type: ignore[index]
        print(
            f"{loss:>4}% {accuracy:>13.2%} ({false} false) "
            f"{naive_accuracy:>13.2%} ({naive_false} false) {decodable:>10.2%}"
        )
    print("with 5% duplication and up to 40 ms of reordering on top of the loss:")
    for loss in LOSSES:
        arrivals = hostile(rng, packets, loss / 100)
        events = decode(arrivals)
        accuracy, false = score([(e.digit, e.rtp_timestamp) for e in events], truth)
        naive_accuracy, naive_false = score(decode_naive(arrivals), truth)
        for key, value in (
            ("hostile_accuracy", round(accuracy, 4)),
            ("hostile_naive_accuracy", round(naive_accuracy, 4)),
            ("hostile_false_digits", false),
            ("hostile_naive_false_digits", naive_false),
        ):
            result.setdefault(key, {})[loss] = value  # type: ignore[index]
        print(
            f"{loss:>4}% {accuracy:>13.2%} ({false} false) "
            f"{naive_accuracy:>13.2%} ({naive_false} false)"
        )
    elapsed = time.perf_counter() - started
    result["presses"] = presses
    print(f"decoded {len(LOSSES)} x {presses} presses in {elapsed:.2f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
