"""A media socket reads queued datagrams in one wake-up only while they come in bursts."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from aioice import Candidate

from webrtc_ext.ice import IceProtocol

pytestmark = pytest.mark.integration


class Collector:
    """Stands in for the ICE connection: keeps what the protocol hands up."""

    def __init__(self) -> None:
        self.datagrams: list[bytes] = []
        self.native_receive = None  # no C receive path: every datagram comes up here

    def data_received(self, data: bytes, component: int) -> None:
        self.datagrams.append(data)

    def protocol_lost(self, protocol: Any) -> None:
        pass


class CountingSocket:
    """The protocol's socket, counting the reads it makes on its own (the drain)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reads = 0

    def recvfrom(self, size: int) -> tuple[bytes, Any]:
        self.reads += 1
        return self.sock.recvfrom(size)

    def close(self) -> None:
        self.sock.close()


async def _protocol() -> tuple[IceProtocol, Collector, CountingSocket, tuple[str, int]]:
    collector = Collector()
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: IceProtocol(collector),  # type: ignore[arg-type]
        local_addr=("127.0.0.1", 0),
    )
    address = transport.get_extra_info("sockname")
    protocol.local_candidate = Candidate("1", 1, "udp", 1, address[0], address[1], "host")
    assert protocol._socket is not None
    counting = CountingSocket(protocol._socket)
    protocol._socket = counting  # type: ignore[assignment]
    return protocol, collector, counting, address


def _rtp(index: int) -> bytes:
    return bytes([0x80, 111]) + index.to_bytes(2, "big") + bytes(20)


async def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_a_burst_is_read_whole_and_in_order() -> None:
    protocol, collector, counting, address = await _protocol()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        burst = [_rtp(i) for i in range(200)]
        for datagram in burst:
            sender.sendto(datagram, address)
        await _until(lambda: len(collector.datagrams) == len(burst))
        assert collector.datagrams == burst
        # Past the first two, the queued datagrams were read by the drain, not one
        # event-loop wake-up each.
        assert counting.reads >= len(burst) - 10
    finally:
        sender.close()
        protocol.transport.close()


async def test_an_audio_cadence_costs_no_read_that_finds_nothing() -> None:
    protocol, collector, counting, address = await _protocol()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for index in range(10):  # one datagram per 20 ms, as an Opus stream
            sender.sendto(_rtp(index), address)
            await _until(lambda index=index: len(collector.datagrams) == index + 1)
            await asyncio.sleep(0.02)
        assert collector.datagrams == [_rtp(i) for i in range(10)]
        assert counting.reads == 0, "a drain was tried although nothing was queued"
    finally:
        sender.close()
        protocol.transport.close()
