"""Type stubs of the C extension (webrtc_ext/_native.c); see webrtc_ext.native."""

from collections.abc import Callable, Hashable
from typing import Any

from .opus import OpusRepacketizer
from .rtp import RawRtpPacket

class SendPath:
    def __init__(
        self,
        *,
        transport: Any,
        connected: Any,
        session: Any,
        chain: Any,
        stages: tuple[Any, ...],
        engine: Any,
        pair: Any,
        protocol: Any,
        sock: Any,
        family: int,
        address: tuple[Any, ...],
        outbound: Any,
        peer_counters: Any,
        tx_bytes_name: str,
        tx_packets_name: str,
        stats: Any,
        clock: Callable[[], float],
        error_type: type[Exception],
        reasons: tuple[str, ...],
        protect: int,
        context: int,
        ssrc: int,
        payload_type: int,
        mid_element: bytes,
        abs_send_time_id: int,
        audio_level_id: int,
    ) -> None: ...
    def send(
        self, outbound: Any, packet: RawRtpPacket, sequence_number: int, timestamp: int, /
    ) -> int | None: ...
    def send_media(
        self, outbound: Any, munger: Any, packet: RawRtpPacket, source: Hashable, now: float, /
    ) -> int | bool | None: ...

class RecvPath:
    def __init__(
        self,
        *,
        transport: Any,
        session: Any,
        chain: Any,
        stages: tuple[Any, ...],
        rx_bytes_name: str,
        rx_packets_name: str,
        stats: Any,
        clock: Callable[[], float],
        error_type: type[Exception],
        reasons: tuple[str, ...],
        packet_type: type[RawRtpPacket],
        unprotect: int,
        context: int,
        receiver_type: type | None = None,
        failed: Callable[..., None] | None = None,
        event_stage_type: type | None = None,
    ) -> None: ...
    def receive(
        self, data: bytes, arrival: float, audio_level_id: int, /
    ) -> RawRtpPacket | None: ...
    def deliver(self, protocol: Any, data: bytes, addr: tuple[Any, ...], /) -> bool: ...

def opus_push(
    packer: OpusRepacketizer, packet: RawRtpPacket, packet_type: type[RawRtpPacket], /
) -> list[RawRtpPacket] | None: ...
def stream_add(stream: Any, packet: RawRtpPacket, now: float = ..., /) -> None: ...

class FanOut:
    def __init__(
        self,
        *,
        fan: Any,
        report_names: tuple[str, str, str, str],
        packet_type: type[RawRtpPacket],
    ) -> None: ...
    def forward(self, packet: RawRtpPacket, /) -> None: ...
