"""The SCTP DATA chunk size is per association: webrtc_ext's transport sizes its own, only."""

from __future__ import annotations

import asyncio

import aiortc
import aiortc.rtcsctptransport
import pytest
from aiortc.rtcsctptransport import SCTP_DATA_FIRST_FRAG, SCTP_DATA_LAST_FRAG

from webrtc_ext._internals import (
    SCTP_SEND_UPSTREAM_SHA256,
    SCTP_TRANSPORT_MEMBERS,
    upstream_source_sha256,
)
from webrtc_ext.rtcsctptransport import RTCSctpTransport, user_data_limit

#: aiortc 1.16.0's DATA chunk size (its SCTP_MAX_PACKET_LENGTH of 1189 bytes).
AIORTC_USERDATA_MAX_LENGTH = 1160


class RecordingDtls:
    """Stands for a connected DTLS transport: records the SCTP packets given to it."""

    state = "connected"

    def __init__(self, data_mtu: int | None) -> None:
        self.data_mtu = data_mtu
        self.packets: list[bytes] = []

    def _register_data_receiver(self, receiver: object) -> None:
        pass

    async def _send_data(self, data: bytes) -> None:
        self.packets.append(data)


async def _send_message(sctp: aiortc.RTCSctpTransport, message: bytes) -> list[bytes]:
    """Queue one message through ``_send``; the user data of each DATA chunk made from it."""
    sctp._cwnd = 1 << 20  # let the whole message out at once
    sctp._remote_port = 5000  # as after the association's INIT
    await sctp._send(stream_id=1, pp_id=53, user_data=message)
    chunks = list(sctp._sent_queue) + list(sctp._outbound_queue)
    sctp._t3_cancel()
    assert chunks[0].flags & SCTP_DATA_FIRST_FRAG
    assert chunks[-1].flags & SCTP_DATA_LAST_FRAG
    assert len({chunk.stream_seq for chunk in chunks}) == 1
    tsns = [chunk.tsn for chunk in chunks]
    assert tsns == [(tsns[0] + i) % 2**32 for i in range(len(chunks))]
    return [chunk.user_data for chunk in chunks]


@pytest.mark.parametrize("data_mtu", [300, 1131, 1163])
async def test_each_sctp_packet_fits_the_association_s_own_dtls_record(data_mtu: int) -> None:
    dtls = RecordingDtls(data_mtu)
    sctp = RTCSctpTransport(dtls)  # type: ignore[arg-type]
    message = bytes(range(256)) * 20
    pieces = await _send_message(sctp, message)
    assert b"".join(pieces) == message
    assert dtls.packets and max(len(packet) for packet in dtls.packets) <= data_mtu
    assert max(len(piece) for piece in pieces) == user_data_limit(data_mtu)


async def test_plain_aiortc_transports_keep_aiortc_s_chunk_size() -> None:
    small = RTCSctpTransport(RecordingDtls(300))  # type: ignore[arg-type]
    await _send_message(small, b"x" * 3000)
    plain = aiortc.RTCSctpTransport(RecordingDtls(300))  # type: ignore[arg-type]
    pieces = await _send_message(plain, b"x" * 3000)
    assert max(len(piece) for piece in pieces) == AIORTC_USERDATA_MAX_LENGTH
    assert aiortc.rtcsctptransport.USERDATA_MAX_LENGTH == AIORTC_USERDATA_MAX_LENGTH


async def test_before_dtls_connects_the_chunk_size_is_aiortc_s() -> None:
    sctp = RTCSctpTransport(RecordingDtls(None))  # type: ignore[arg-type]
    assert sctp.user_data_max_length == AIORTC_USERDATA_MAX_LENGTH
    with pytest.raises(ValueError, match="no room for SCTP data"):
        user_data_limit(20)


def test_the_copied_send_is_still_aiortc_s() -> None:
    """webrtc_ext's ``_send`` copies aiortc 1.16.0's: an upstream change must be merged by hand."""
    assert upstream_source_sha256(aiortc.RTCSctpTransport._send) == SCTP_SEND_UPSTREAM_SHA256
    probe = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(probe)
        transport = aiortc.RTCSctpTransport(RecordingDtls(None))  # type: ignore[arg-type]
    finally:
        asyncio.set_event_loop(None)
        probe.close()
    assert all(hasattr(transport, name) for name in SCTP_TRANSPORT_MEMBERS)
