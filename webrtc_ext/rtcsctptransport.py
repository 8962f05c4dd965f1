"""aiortc's SCTP transport with DATA chunks sized per association, to its DTLS transport's MTU.

aiortc cuts messages into DATA chunks of at most ``USERDATA_MAX_LENGTH`` bytes, a module
global: one value for every association in the process. Here each association asks its own
DTLS transport how much plaintext one record may carry within the MTU
(:attr:`webrtc_ext.RTCDtlsTransport.data_mtu`), so that every SCTP packet travels in one
datagram, and plain aiortc transports in the same process keep aiortc's size.

``_send`` is aiortc 1.16.0's, with that one change (docs/fork.md).
"""

from __future__ import annotations

import math
import time

import aiortc
import aiortc.rtcsctptransport
from aiortc.rtcsctptransport import (
    SCTP_COMMON_HEADER_LENGTH,
    SCTP_DATA_CHUNK_HEADER_LENGTH,
    SCTP_DATA_FIRST_FRAG,
    SCTP_DATA_LAST_FRAG,
    SCTP_DATA_UNORDERED,
    DataChunk,
    tsn_plus_one,
)
from aiortc.utils import uint16_add

from .interceptor import DataChannelInterceptorChain


def user_data_limit(data_mtu: int | None) -> int:
    """The largest DATA chunk payload whose SCTP packet fits ``data_mtu`` plaintext bytes.

    Never above aiortc's ``USERDATA_MAX_LENGTH`` as it is now (an application may lower
    that process-wide, as Pipecat does); ``None`` (DTLS not connected yet) gives that.
    """
    upstream = int(aiortc.rtcsctptransport.USERDATA_MAX_LENGTH)
    if data_mtu is None:
        return upstream
    overhead = SCTP_COMMON_HEADER_LENGTH + SCTP_DATA_CHUNK_HEADER_LENGTH
    limit = (data_mtu - overhead) // 4 * 4  # chunks are padded to 4 bytes
    if limit < 4:
        raise ValueError(f"no room for SCTP data in a {data_mtu}-byte DTLS record")
    return min(limit, upstream)


class RTCSctpTransport(aiortc.RTCSctpTransport):
    """aiortc's :class:`~aiortc.RTCSctpTransport`, its DATA chunks sized to its own DTLS MTU.

    :attr:`interceptors` observe the messages its data channels send (e.g. statistics).
    """

    def __init__(self, transport: aiortc.RTCDtlsTransport, port: int = 5000) -> None:
        super().__init__(transport, port)
        self.interceptors = DataChannelInterceptorChain()

    def _data_channel_send(self, channel: aiortc.RTCDataChannel, data: bytes | str) -> None:
        super()._data_channel_send(channel, data)
        self.interceptors.message_sent(channel, data, time.monotonic())

    @property
    def user_data_max_length(self) -> int:
        """The largest DATA chunk payload this association sends (bytes)."""
        return user_data_limit(getattr(self.transport, "data_mtu", None))

    async def _send(
        self,
        stream_id: int,
        pp_id: int,
        user_data: bytes,
        expiry: float | None = None,
        max_retransmits: int | None = None,
        ordered: bool = True,
    ) -> None:
        """Send data ULP -> stream (aiortc's, with this association's chunk size)."""
        limit = self.user_data_max_length
        if ordered:  # noqa: SIM108 (kept as upstream writes it)
            stream_seq = self._outbound_stream_seq.get(stream_id, 0)
        else:
            stream_seq = 0

        fragments = math.ceil(len(user_data) / limit)
        pos = 0
        for fragment in range(0, fragments):
            chunk = DataChunk()
            chunk.flags = 0
            if not ordered:
                chunk.flags = SCTP_DATA_UNORDERED
            if fragment == 0:
                chunk.flags |= SCTP_DATA_FIRST_FRAG
            if fragment == fragments - 1:
                chunk.flags |= SCTP_DATA_LAST_FRAG
            chunk.tsn = self._local_tsn
            chunk.stream_id = stream_id
            chunk.stream_seq = stream_seq
            chunk.protocol = pp_id
            chunk.user_data = user_data[pos : pos + limit]

            # aiortc's dynamically added attributes
            chunk._abandoned = False
            chunk._acked = False
            chunk._book_size = len(chunk.user_data)
            chunk._expiry = expiry
            chunk._in_flight = False
            chunk._max_retransmits = max_retransmits
            chunk._misses = 0
            chunk._retransmit = False
            chunk._sent_count = 0
            chunk._sent_time = None

            pos += limit
            self._local_tsn = tsn_plus_one(self._local_tsn)
            self._outbound_queue.append(chunk)

        if ordered:
            self._outbound_stream_seq[stream_id] = uint16_add(stream_seq, 1)

        # transmit outbound data
        await self._transmit()
