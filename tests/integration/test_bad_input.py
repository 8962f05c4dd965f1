"""Bad input never crashes: malformed STUN and candidates are dropped with a log line.

Every test runs a real call over loopback, throws the bad input at it, and checks that the call
keeps carrying audio, that a log line names what was dropped, and that nothing reached the event
loop's exception handler (where an exception escaping a protocol callback or a task would land).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
from aioice import stun
from aiortc import RTCIceCandidate, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from aiortc.sdp import candidate_from_sdp

from tests.support import LOOPBACK, audio_call
from webrtc_ext import RTCPeerConnection

pytestmark = pytest.mark.integration

MEDIA_TIMEOUT = 20.0
STUN_COOKIE = 0x2112A442


@contextmanager
def loop_errors() -> Iterator[list[dict[str, Any]]]:
    """Collect everything that reaches the event loop's exception handler."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        yield errors
    finally:
        loop.set_exception_handler(previous)


def _selected_packets(pc: RTCPeerConnection) -> int:
    (transport,) = pc.ice_transports
    return sum(p.packets_received for p in transport.candidate_pairs() if p.selected)


async def assert_media_flows(receiver: RTCPeerConnection, packets: int = 25) -> None:
    """Wait until ``receiver`` gets ``packets`` more packets on its selected pair."""
    start = _selected_packets(receiver)
    async with asyncio.timeout(MEDIA_TIMEOUT):
        while _selected_packets(receiver) < start + packets:
            await asyncio.sleep(0.05)
    assert receiver.connectionState == "connected"


# -- malformed STUN datagrams ---------------------------------------------------------------


def _header(message_type: int, length: int, transaction_id: bytes = b"\x01" * 12) -> bytes:
    return struct.pack("!HHI12s", message_type, length, STUN_COOKIE, transaction_id)


def _attribute(attr_type: int, value: bytes, declared: int | None = None) -> bytes:
    length = len(value) if declared is None else declared
    return struct.pack("!HH", attr_type, length) + value + b"\x00" * (-len(value) % 4)


def _with_body(message_type: int, body: bytes) -> bytes:
    return _header(message_type, len(body)) + body


def malformed_datagrams(seed: int = 7) -> list[bytes]:
    """Random, truncated, oversized and nonsensical STUN datagrams (first byte 0-3)."""
    rng = random.Random(seed)
    binding = bytes(stun.Message(stun.Method.BINDING, stun.Class.REQUEST))
    datagrams = [bytes([rng.randrange(4)]) + rng.randbytes(rng.randrange(600)) for _ in range(200)]
    datagrams += [binding[:n] for n in range(1, 20)]  # truncated headers
    datagrams += [
        _header(0x0001, 0xFFFC),  # huge length, no body
        _header(0x0001, 0xFFFF) + rng.randbytes(1000),  # huge and odd length
        _header(0x0001, 8) + b"\x00" * 4,  # length longer than the datagram
        _header(0x3FFF, 0),  # unknown method and class
        _with_body(0x0001, _attribute(0x0024, b"\x01\x02")),  # PRIORITY of 2 bytes
        _with_body(0x0001, _attribute(0x0020, b"\x00\x07\x00\x01" + b"\xff" * 4)),  # bad family
        _with_body(0x0001, _attribute(0x0006, b"\xff\xfe\xfd\xfc")),  # USERNAME not UTF-8
        _with_body(0x0111, _attribute(0x0009, b"\x00")),  # ERROR-CODE too short
        _with_body(0x0001, _attribute(0x8028, b"\x00\x00\x00\x00")),  # wrong FINGERPRINT
        _with_body(0x0001, _attribute(0x0006, b"abcd", declared=0xFFF0)),  # overlong attribute
        _with_body(0x0001, _attribute(0x802A, b"\x01")),  # ICE-CONTROLLING of 1 byte
        _with_body(0x0101, _attribute(0x0020, b"")),  # success response, empty address
    ]
    datagrams += [
        bytes(stun.Message(stun.Method.BINDING, stun.Class.REQUEST)),  # no USERNAME at all
        bytes(stun.Message(stun.Method.ALLOCATE, stun.Class.REQUEST)),  # not a Binding
        bytes(stun.Message(stun.Method.BINDING, stun.Class.RESPONSE)),  # unknown transaction
        bytes(stun.Message(stun.Method.BINDING, stun.Class.INDICATION)),
    ]
    return datagrams


def authenticated_request_without_priority(receiver: RTCPeerConnection, sender: str) -> bytes:
    """A Binding request ``receiver`` can authenticate, but without PRIORITY (RFC 8445 §7.1.1)."""
    (transport,) = receiver.ice_transports
    local = transport.iceGatherer.getLocalParameters()
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    request.attributes["USERNAME"] = f"{local.usernameFragment}:{sender}"
    request.attributes["ICE-CONTROLLING"] = 1
    request.attributes["USE-CANDIDATE"] = None
    request.add_message_integrity(local.password.encode())
    request.add_fingerprint()
    return bytes(request)


async def test_malformed_stun_datagrams_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with audio_call() as call:
        with loop_errors() as errors:
            (transport,) = call.answerer.ice_transports
            (candidate,) = transport.iceGatherer.getLocalCandidates()
            target = (candidate.ip, candidate.port)
            (offerer_transport,) = call.offerer.ice_transports
            sender = offerer_transport.iceGatherer.getLocalParameters().usernameFragment
            datagrams = malformed_datagrams()
            datagrams.append(authenticated_request_without_priority(call.answerer, sender))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind(("127.0.0.1", 0))
                for datagram in datagrams:
                    sock.sendto(datagram, target)
                    await asyncio.sleep(0)
                await assert_media_flows(call.answerer)
        assert errors == []
    assert "dropped malformed STUN datagram" in caplog.text
    assert "without PRIORITY" in caplog.text


# -- malformed candidates -------------------------------------------------------------------

BAD_CANDIDATE_LINES = [
    "a=candidate:garbage",
    "a=candidate:1 1 udp notanumber 127.0.0.1 5000 typ host",
    "a=candidate:2 1 udp 2130706431 127.0.0.1 5002",
    "a=candidate:3 1 udp 4294967295 127.0.0.1 99999 typ host",
    "a=candidate:4 1 udp 4294967295 127.0.0.1 0 typ host",
    "a=candidate:5 1 udp 4294967295 127.0.0.1 -7 typ host",
    "a=candidate:6 1 udp 4294967295 not-an-ip 5000 typ host",
    "a=candidate:7 1 udp 4294967295 127.0.0.1 5000 typ bogus",
    "a=candidate:8 1 udp 4294967295 ::zz 5000 typ host",
    "a=candidate:9 1 udp 99999999999999999999 127.0.0.1 5001 typ host",
    "a=candidate:10 0 udp 4294967295 127.0.0.1 5003 typ host",
]


def _insert_before_first_candidate(sdp: str, lines: list[str]) -> str:
    sdp_lines = sdp.split("\r\n")
    first = next(i for i, line in enumerate(sdp_lines) if line.startswith("a=candidate:"))
    sdp_lines[first:first] = lines
    return "\r\n".join(sdp_lines)


@asynccontextmanager
async def _call_with_offer(
    signal: Callable[[RTCPeerConnection, str], Any],
) -> AsyncIterator[tuple[RTCPeerConnection, RTCPeerConnection]]:
    """A call whose offer reaches the answerer through ``signal(answerer, offer_sdp)``."""
    offerer, answerer = RTCPeerConnection(LOOPBACK), RTCPeerConnection(LOOPBACK)
    try:
        offerer.addTrack(AudioStreamTrack())
        await offerer.setLocalDescription(await offerer.createOffer())
        await signal(answerer, offerer.localDescription.sdp)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
        yield offerer, answerer
    finally:
        await offerer.close()
        await answerer.close()


async def test_malformed_candidate_lines_in_sdp_are_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)

    async def signal(answerer: RTCPeerConnection, sdp: str) -> None:
        sdp = _insert_before_first_candidate(sdp, BAD_CANDIDATE_LINES)
        await answerer.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))

    with loop_errors() as errors:
        async with _call_with_offer(signal) as (_, answerer):
            await assert_media_flows(answerer)
            (transport,) = answerer.ice_transports
            ports = {p.remote.port for p in transport.candidate_pairs()}
            assert not ports & {0, -7, 99999}
    assert errors == []
    assert "dropped malformed ICE candidate 'a=candidate:garbage'" in caplog.text
    for problem in ("port 99999", "port 0", "port -7", "priority 99999999999999999999"):
        assert problem in caplog.text
    assert "not-an-ip" in caplog.text and "bogus" in caplog.text


def _strip_candidates(sdp: str) -> tuple[str, list[str]]:
    lines = sdp.split("\r\n")
    candidates = [line[len("a=candidate:") :] for line in lines if line.startswith("a=candidate:")]
    kept = [
        line
        for line in lines
        if not line.startswith("a=candidate:") and line != "a=end-of-candidates"
    ]
    return "\r\n".join(kept), candidates


BAD_TRICKLED = [
    {"port": 99999},
    {"port": 0},
    {"port": -1},
    {"component": 0},
    {"priority": -1},
    {"priority": 2**40},
    {"ip": "not-an-ip"},
    {"ip": "::zz"},
    {"type": "bogus"},
    {"protocol": "sctp"},
]


async def test_bad_trickled_candidates_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def signal(answerer: RTCPeerConnection, sdp: str) -> None:
        stripped, good = _strip_candidates(sdp)
        await answerer.setRemoteDescription(RTCSessionDescription(sdp=stripped, type="offer"))
        for bad in BAD_TRICKLED:
            fields: dict[str, Any] = {
                "component": 1,
                "foundation": "bad",
                "ip": "127.0.0.1",
                "port": 5000,
                "priority": 4294967295,
                "protocol": "udp",
                "type": "host",
                "sdpMid": "0",
            }
            fields.update(bad)
            await answerer.addIceCandidate(RTCIceCandidate(**fields))
        for line in good:
            candidate = candidate_from_sdp(line)
            candidate.sdpMid = "0"
            await answerer.addIceCandidate(candidate)
        await answerer.addIceCandidate(None)

    with loop_errors() as errors:
        async with _call_with_offer(signal) as (_, answerer):
            await assert_media_flows(answerer)
    assert errors == []
    for problem in ("port 99999", "port 0", "port -1", "component 0", "priority -1"):
        assert problem in caplog.text
