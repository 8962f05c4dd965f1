"""The interceptor chains: order, any number of stages, consumption, failures contained."""

from __future__ import annotations

import logging

import pytest
from aiortc.rtp import RtpPacket
from hypothesis import given
from hypothesis import strategies as st

from webrtc_ext.interceptor import (
    ReceiverInterceptor,
    ReceiverInterceptorChain,
    TransportInterceptor,
    TransportInterceptorChain,
)


class Recorder(TransportInterceptor):
    def __init__(self, name: str, log: list[tuple[str, str, bytes]]) -> None:
        self.name, self.log = name, log

    def rtp_sent(self, data: bytes, now: float) -> None:
        self.log.append((self.name, "rtp_sent", data))

    def rtcp_received(self, data: bytes, now: float) -> None:
        self.log.append((self.name, "rtcp_received", data))


class Broken(TransportInterceptor):
    def rtp_sent(self, data: bytes, now: float) -> None:
        raise RuntimeError("observer bug")


class Taker(ReceiverInterceptor):
    def __init__(self, payload_type: int) -> None:
        self.payload_type = payload_type
        self.taken: list[int] = []

    def rtp_received(self, packet: RtpPacket, now: float) -> bool:  # type: ignore[override]
        if packet.payload_type == self.payload_type:
            self.taken.append(packet.sequence_number)
            return False
        return True


def test_every_observer_sees_every_packet_in_order() -> None:
    log: list[tuple[str, str, bytes]] = []
    chain = TransportInterceptorChain()
    first, second = chain.add(Recorder("a", log)), chain.add(Recorder("b", log))
    chain.add(first)  # once only
    chain.rtp_sent(b"1", 0.0)
    chain.rtcp_received(b"2", 0.0)
    chain.rtp_received(b"3", 0.0)  # no stage cares: nothing happens
    assert log == [
        ("a", "rtp_sent", b"1"),
        ("b", "rtp_sent", b"1"),
        ("a", "rtcp_received", b"2"),
        ("b", "rtcp_received", b"2"),
    ]
    chain.remove(first)
    chain.remove(first)  # no error
    chain.rtp_sent(b"4", 0.0)
    assert log[-1] == ("b", "rtp_sent", b"4") and len(log) == 5
    assert list(chain) == [second] and first not in chain


def test_a_failing_observer_is_logged_and_the_others_still_see_the_packet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[tuple[str, str, bytes]] = []
    chain = TransportInterceptorChain()
    chain.add(Broken())
    chain.add(Recorder("after", log))
    with caplog.at_level(logging.ERROR, logger="webrtc_ext.interceptor"):
        chain.rtp_sent(b"x", 0.0)
    assert log == [("after", "rtp_sent", b"x")]
    assert "observer bug" in caplog.text


def test_a_stage_removed_while_a_packet_is_in_flight_does_not_disturb_it() -> None:
    chain = TransportInterceptorChain()
    seen: list[str] = []

    class RemovesOther(TransportInterceptor):
        def rtp_sent(self, data: bytes, now: float) -> None:
            seen.append("remover")
            chain.remove(other)

    class Other(TransportInterceptor):
        def rtp_sent(self, data: bytes, now: float) -> None:
            seen.append("other")

    chain.add(RemovesOther())
    other = chain.add(Other())
    chain.rtp_sent(b"x", 0.0)
    chain.rtp_sent(b"y", 0.0)
    assert seen == ["remover", "other", "remover"]


@given(st.lists(st.integers(96, 100), max_size=50))
def test_a_consuming_stage_hides_its_packets_from_later_stages(payload_types: list[int]) -> None:
    chain = ReceiverInterceptorChain()
    takes_98, takes_99, rest = Taker(98), Taker(99), Taker(-1)
    for stage in (takes_98, takes_99, rest):
        chain.add(stage)
    passed = []
    for seq, pt in enumerate(payload_types):
        if chain.rtp_received(RtpPacket(payload_type=pt, sequence_number=seq), 0.0):
            passed.append(seq)
    assert takes_98.taken == [i for i, pt in enumerate(payload_types) if pt == 98]
    assert takes_99.taken == [i for i, pt in enumerate(payload_types) if pt == 99]
    assert passed == [i for i, pt in enumerate(payload_types) if pt not in (98, 99)]
    assert rest.taken == []
