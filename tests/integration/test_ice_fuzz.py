"""Hypothesis fuzzing of IceProtocol.datagram_received on a connected IceConnection."""

from __future__ import annotations

import socket
import struct

import pytest
from aioice import stun
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.test_bad_input import STUN_COOKIE, assert_media_flows, loop_errors
from tests.support import audio_call
from webrtc_ext.ice import IceProtocol

pytestmark = pytest.mark.integration

ATTRIBUTE_TYPES = [entry[0] for entry in stun.ATTRIBUTES] + [0x0000, 0x7FFF, 0xFFFF]


def _stun_like(
    message_type: int, transaction_id: bytes, attributes: list[tuple[int, bytes]]
) -> bytes:
    body = b"".join(
        struct.pack("!HH", kind, len(value)) + value + b"\x00" * (-len(value) % 4)
        for kind, value in attributes
    )
    return struct.pack("!HHI12s", message_type, len(body), STUN_COOKIE, transaction_id) + body


#: Anything that RFC 7983 routes to STUN (first byte 0-3).
raw_stun = st.builds(
    lambda first, rest: bytes([first]) + rest,
    st.integers(0, 3),
    st.binary(max_size=200),
)
#: Well-framed STUN with arbitrary types and attribute values, so parsing gets past the header.
framed_stun = st.builds(
    _stun_like,
    st.integers(0, 0x3FFF),
    st.binary(min_size=12, max_size=12),
    st.lists(st.tuples(st.sampled_from(ATTRIBUTE_TYPES), st.binary(max_size=24)), max_size=6),
)


def authenticated_checks(username: str, password: str) -> st.SearchStrategy[bytes]:
    """Binding requests that pass authentication, with arbitrary PRIORITY and nomination."""

    def build(priority: int | None, nominate: bool, tie_breaker: int | None) -> bytes:
        request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
        request.attributes["USERNAME"] = username
        if priority is not None:
            request.attributes["PRIORITY"] = priority
        if nominate:
            request.attributes["USE-CANDIDATE"] = None
        if tie_breaker is not None:
            request.attributes["ICE-CONTROLLING"] = tie_breaker
        request.add_message_integrity(password.encode())
        return bytes(request)

    return st.builds(
        build,
        st.none() | st.integers(0, 2**32 - 1),
        st.booleans(),
        st.none() | st.integers(0, 2**64 - 1),
    )


async def test_datagram_received_never_raises() -> None:
    async with audio_call() as call:
        (transport,) = call.answerer.ice_transports
        protocols = [p for p in transport.connection._protocols if isinstance(p, IceProtocol)]
        assert protocols
        with (
            loop_errors() as errors,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent_peer,
        ):
            silent_peer.bind(("127.0.0.1", 0))
            source = silent_peer.getsockname()
            local = transport.iceGatherer.getLocalParameters()
            (offerer_transport,) = call.offerer.ice_transports
            remote = offerer_transport.iceGatherer.getLocalParameters()
            username = f"{local.usernameFragment}:{remote.usernameFragment}"
            checks = authenticated_checks(username, local.password)

            @settings(
                max_examples=400,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(
                data=st.one_of(raw_stun, framed_stun, checks),
                index=st.integers(0, len(protocols) - 1),
            )
            def feed(data: bytes, index: int) -> None:
                protocols[index].datagram_received(data, source)

            feed()
            await assert_media_flows(call.answerer)
        assert errors == []
        assert sum(p.malformed_stun for p in protocols) > 0
