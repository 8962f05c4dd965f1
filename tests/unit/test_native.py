"""The C raw RTP path (webrtc_ext._native) against the Python path it stands in for.

Real libsrtp sessions and real UDP sockets on loopback: the C path must put on the wire, and
count, exactly what the Python path does (``OutboundRtpStream.write``, SRTP,
``IceProtocol.send_datagram``, ``RtpCounters``; ``RawRtpPacket.parse`` on the way in), and step
aside (``None``) as soon as anything it was built for changes.
"""

from __future__ import annotations

import re
import socket
import struct
from collections.abc import Iterator
from dataclasses import asdict
from types import SimpleNamespace
from typing import Any

import pylibsrtp
import pytest
from aiortc.rtcdtlstransport import State
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pylibsrtp import Policy, Session

from webrtc_ext import native
from webrtc_ext._internals import dtls_counter_names
from webrtc_ext.ice import _PeerCounters
from webrtc_ext.interceptor import TransportInterceptor, TransportInterceptorChain
from webrtc_ext.opus import OpusRepacketizer, frame_samples
from webrtc_ext.rtp import (
    URI_ABS_SEND_TIME,
    URI_AUDIO_LEVEL,
    URI_MID,
    OutboundRtpStream,
    RawRtpPacket,
)
from webrtc_ext.srtp import fast_session
from webrtc_ext.stats.rtpcounters import RtpCounters, RtpStatsInterceptor

KEY = bytes(range(30))
RX_BYTES, RX_PACKETS, TX_BYTES, TX_PACKETS = dtls_counter_names()
EXTENSIONS = [
    RTCRtpHeaderExtensionParameters(id=1, uri=URI_MID),
    RTCRtpHeaderExtensionParameters(id=2, uri=URI_ABS_SEND_TIME),
    RTCRtpHeaderExtensionParameters(id=3, uri=URI_AUDIO_LEVEL),
]


def state(obj: object) -> dict[str, Any]:
    """Every attribute an object holds, in its slots (what C writes at their offsets) and in
    its ``__dict__``."""
    slots = [name for klass in type(obj).__mro__ for name in getattr(klass, "__slots__", ())]
    values = {name: getattr(obj, name) for name in slots if hasattr(obj, name)}
    return values | getattr(obj, "__dict__", {})


def test_the_extension_is_built() -> None:
    assert native.AVAILABLE, "webrtc_ext._native was not built: a C compiler is needed to install"


needs_native = pytest.mark.skipif(not native.AVAILABLE, reason="webrtc_ext._native not built")


def clock() -> float:
    return 1234.5  # fixed: both paths stamp the same time


def sessions() -> tuple[Session, Session]:
    return (
        Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND)),
        Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_INBOUND)),
    )


class Transport:
    """The members of an RTCDtlsTransport the C path reads and counts in."""

    def __init__(self, chain: TransportInterceptorChain) -> None:
        self._state = State.CONNECTED
        self._tx_srtp: Any = fast_session(sessions()[0])
        self._rx_srtp: Any = fast_session(sessions()[1])
        self.interceptors = chain
        for name in (RX_BYTES, RX_PACKETS, TX_BYTES, TX_PACKETS):
            setattr(self, name, 0)


class Rig:
    """One SendPath from socket ``a`` to socket ``b``, with everything it counts in."""

    def __init__(self, a: socket.socket, b: socket.socket, extensions: bool) -> None:
        self.counters = RtpCounters()
        self.chain = TransportInterceptorChain()
        self.chain.add(RtpStatsInterceptor(self.counters, clock))
        self.transport = Transport(self.chain)
        self.pair = object()
        self.engine = SimpleNamespace(selected={1: self.pair})
        self.fallback: list[tuple[bytes, Any]] = []
        self.protocol = SimpleNamespace(
            _socket=a,
            transport=SimpleNamespace(sendto=lambda data, addr: self.fallback.append((data, addr))),
        )
        self.peer = _PeerCounters()
        self.outbound = outbound(extensions)
        self.b = b
        self.path = self.build(b.getsockname())

    def build(self, address: tuple[str, int]) -> Any:
        pointers = native.srtp_native_pointers(self.transport._tx_srtp.session)
        assert pointers is not None
        return native._native.SendPath(
            transport=self.transport,
            connected=State.CONNECTED,
            session=self.transport._tx_srtp,
            chain=self.chain,
            stages=self.chain._stages,
            engine=self.engine,
            pair=self.pair,
            protocol=self.protocol,
            sock=self.protocol._socket,
            family=int(socket.AF_INET),
            address=address,
            outbound=self.outbound,
            peer_counters=self.peer,
            tx_bytes_name=TX_BYTES,
            tx_packets_name=TX_PACKETS,
            stats=self.counters,
            clock=clock,
            error_type=pylibsrtp.Error,
            reasons=tuple(pylibsrtp.ERRORS),
            protect=pointers[1],
            context=pointers[0],
            ssrc=self.outbound.ssrc,
            payload_type=self.outbound.payload_type,
            mid_element=self.outbound._mid_element,
            abs_send_time_id=self.outbound._abs_send_time_id,
            audio_level_id=self.outbound._audio_level_id,
        )


def outbound(extensions: bool) -> OutboundRtpStream:
    return OutboundRtpStream(
        ssrc=0xCAFE0001,
        payload_type=111,
        mid="0" if extensions else None,
        header_extensions=EXTENSIONS if extensions else (),
        history_size=0,
    )


@pytest.fixture
def sockets() -> Iterator[tuple[socket.socket, socket.socket]]:
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    b.settimeout(2)
    a.setblocking(False)
    yield a, b
    a.close()
    b.close()


packets = st.lists(
    st.tuples(
        st.binary(min_size=0, max_size=300),  # payload
        st.booleans(),  # marker
        st.none() | st.integers(0, 255),  # audio level byte
        st.integers(0, 0xFFFF),  # munged sequence number
        st.integers(0, 0xFFFFFFFF),  # munged timestamp
    ),
    min_size=1,
    max_size=12,
)


@needs_native
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(packets, st.booleans())
@example([(b"", False, None, 65535, 0), (b"x", True, 7, 0, 1), (b"y", False, None, 65535, 2)], True)
def test_send_puts_on_the_wire_and_counts_what_the_python_path_does(
    sockets: tuple[socket.socket, socket.socket],
    items: list[tuple[bytes, bool, int | None, int, int]],
    extensions: bool,
) -> None:
    rig = Rig(*sockets, extensions=extensions)
    reference = outbound(extensions)
    reference_srtp = fast_session(sessions()[0])
    reference_counters = RtpCounters()
    sizes = []
    for payload, marker, level, sequence, timestamp in items:
        packet = RawRtpPacket.create(
            b"\x00" * 5 + payload, payload_type=96, sequence_number=9, timestamp=9, marker=marker
        )
        packet.payload_start = 5 + 12  # a payload that does not start at the header's end
        packet.audio_level = level
        try:
            sent_at = rig.path.send(rig.outbound, packet, sequence, timestamp)
        except pylibsrtp.Error as exc:  # libsrtp refuses an index it protected before
            plain = reference.write(packet, sequence, timestamp, 1)
            with pytest.raises(pylibsrtp.Error, match=re.escape(str(exc))):
                reference_srtp.protect(plain)
            continue
        assert isinstance(sent_at, int)
        plain = reference.write(packet, sequence, timestamp, sent_at)
        reference_counters.rtp_sent(plain, clock())
        datagram = rig.b.recv(2048)
        assert datagram == reference_srtp.protect(plain)
        sizes.append(len(datagram))
    assert (rig.outbound.packet_count, rig.outbound.octet_count, rig.outbound.last_timestamp) == (
        reference.packet_count,
        reference.octet_count,
        reference.last_timestamp,
    )
    assert {k: asdict(v) for k, v in rig.counters.sent.items()} == {
        k: asdict(v) for k, v in reference_counters.sent.items()
    }
    assert (rig.peer.packets_sent, rig.peer.bytes_sent) == (len(sizes), sum(sizes))
    assert rig.peer.last_sent > 0 or not sizes
    assert getattr(rig.transport, TX_PACKETS) == len(sizes)
    assert getattr(rig.transport, TX_BYTES) == sum(sizes)
    assert rig.fallback == []


@needs_native
def test_send_steps_aside_when_what_it_was_built_for_changes(
    sockets: tuple[socket.socket, socket.socket],
) -> None:
    rig = Rig(*sockets, extensions=True)
    packet = RawRtpPacket.create(b"voice", payload_type=111, sequence_number=1, timestamp=1)
    sequence = iter(range(1, 100))

    def sends() -> bool:
        return rig.path.send(rig.outbound, packet, next(sequence), 960) is not None

    assert sends()
    changes = [
        lambda: setattr(rig.transport, "_state", State.CLOSED),
        lambda: setattr(rig.transport, "_tx_srtp", fast_session(sessions()[0])),
        lambda: rig.chain.add(TransportInterceptor()),
        lambda: rig.engine.selected.__setitem__(1, object()),
        lambda: rig.engine.selected.clear(),
        lambda: setattr(rig.protocol, "_socket", None),
        lambda: setattr(rig.transport, "send_rtp_now", print),
    ]
    for change in changes:
        saved = (
            rig.transport._state,
            rig.transport._tx_srtp,
            rig.chain._stages,
            dict(rig.engine.selected),
            rig.protocol._socket,
        )
        change()
        assert not sends(), change
        (
            rig.transport._state,
            rig.transport._tx_srtp,
            rig.chain._stages,
            selected,
            rig.protocol._socket,
        ) = saved
        rig.engine.selected.update(selected)
        vars(rig.transport).pop("send_rtp_now", None)
        assert sends()
    assert rig.path.send(outbound(True), packet, 1, 960) is None, "another outgoing stream"


@needs_native
def test_a_send_the_socket_refuses_goes_to_asyncios_transport(
    sockets: tuple[socket.socket, socket.socket],
) -> None:
    rig = Rig(*sockets, extensions=False)
    rig.path = rig.build(("127.0.0.1", 0))  # port 0: sendto fails with EINVAL
    packet = RawRtpPacket.create(b"voice", payload_type=111, sequence_number=1, timestamp=1)
    assert rig.path.send(rig.outbound, packet, 5, 960) is not None
    ((data, address),) = rig.fallback
    assert address == ("127.0.0.1", 0)
    assert fast_session(sessions()[1]).unprotect(data)[2:4] == struct.pack("!H", 5)
    assert rig.peer.packets_sent == 1 and getattr(rig.transport, TX_PACKETS) == 1


@needs_native
def test_send_refuses_bad_packets_with_a_clear_error(
    sockets: tuple[socket.socket, socket.socket],
) -> None:
    rig = Rig(*sockets, extensions=False)
    packet = RawRtpPacket.create(b"x" * 1400, payload_type=111, sequence_number=1, timestamp=1)
    with pytest.raises(ValueError, match="too long"):
        rig.path.send(rig.outbound, packet, 1, 1)
    packet.payload_end = 10_000
    with pytest.raises(ValueError, match="outside"):
        rig.path.send(rig.outbound, packet, 1, 1)
    assert rig.outbound.packet_count == 0 and rig.peer.packets_sent == 0


def recv_path(transport: Transport, counters: RtpCounters | None) -> Any:
    pointers = native.srtp_native_pointers(transport._rx_srtp.session)
    assert pointers is not None
    return native._native.RecvPath(
        transport=transport,
        session=transport._rx_srtp,
        chain=transport.interceptors,
        stages=transport.interceptors._stages,
        rx_bytes_name=RX_BYTES,
        rx_packets_name=RX_PACKETS,
        stats=counters,
        clock=clock,
        error_type=pylibsrtp.Error,
        reasons=tuple(pylibsrtp.ERRORS),
        packet_type=RawRtpPacket,
        unprotect=pointers[2],
        context=pointers[0],
    )


@st.composite
def rtp_plaintexts(draw: st.DrawFn) -> bytes:
    """RTP packets, mostly well formed: CSRCs, extensions (RFC 8285 one-byte or any
    profile, sometimes truncated), padding (sometimes invalid)."""
    csrcs = draw(st.integers(0, 3))
    extension = draw(st.booleans())
    padding = draw(st.booleans())
    first = 0x80 | csrcs | (0x10 if extension else 0) | (0x20 if padding else 0)
    header = struct.pack(
        "!BBHII",
        first,
        draw(st.integers(0, 255)),
        draw(st.integers(0, 0xFFFF)),
        draw(st.integers(0, 0xFFFFFFFF)),
        draw(st.sampled_from([0x1111, 0x2222, draw(st.integers(0, 0xFFFFFFFF))])),
    )
    header += draw(st.binary(min_size=4 * csrcs, max_size=4 * csrcs))
    if extension:
        profile = draw(st.sampled_from([0xBEDE, 0x1000, draw(st.integers(0, 0xFFFF))]))
        body = draw(
            st.binary(max_size=12)
            | st.lists(
                st.tuples(st.integers(0, 15), st.binary(min_size=1, max_size=3)), max_size=3
            ).map(lambda els: b"".join(bytes([(i << 4) | (len(v) - 1)]) + v for i, v in els))
        )
        words = (len(body) + 3) // 4
        body += b"\x00" * (4 * words - len(body))
        words = draw(st.sampled_from([words, words + draw(st.integers(1, 3))]))
        header += struct.pack("!HH", profile, words) + body
    payload = draw(st.binary(max_size=40))
    if padding:
        payload += draw(st.binary(max_size=6)) + bytes([draw(st.integers(0, 12))])
    return header + payload


@needs_native
@settings(max_examples=300, deadline=None)
@given(st.lists(rtp_plaintexts(), min_size=1, max_size=6), st.sampled_from([0, 3, 5]))
def test_receive_unprotects_counts_and_parses_as_the_python_path(
    plaintexts: list[bytes], audio_level_id: int
) -> None:
    counters = RtpCounters()
    chain = TransportInterceptorChain()
    chain.add(RtpStatsInterceptor(counters, clock))
    transport = Transport(chain)
    path = recv_path(transport, counters)
    tx = sessions()[0]
    reference_rx = fast_session(sessions()[1])
    reference_counters = RtpCounters()
    received = 0
    for plain in plaintexts:
        try:
            protected = tx.protect(plain)
        except pylibsrtp.Error:
            assume(False)  # libsrtp refuses to protect it: nothing to receive
        try:
            reference: Any = reference_rx.unprotect(protected)
        except pylibsrtp.Error as exc:
            with pytest.raises(pylibsrtp.Error, match=re.escape(str(exc))):
                path.receive(protected, 7.5, audio_level_id)
            continue
        received += len(protected)
        reference_counters.rtp_received(reference, clock())
        try:
            expected: Any = RawRtpPacket.parse(reference, 7.5, audio_level_id)
        except ValueError as exc:
            expected = exc
        try:
            got: Any = path.receive(protected, 7.5, audio_level_id)
        except ValueError as exc:
            got = exc
        if isinstance(expected, ValueError):
            assert isinstance(got, ValueError) and str(got) == str(expected)
        else:
            assert isinstance(got, RawRtpPacket)
            for name in RawRtpPacket.__slots__:
                assert getattr(got, name) == getattr(expected, name), name
                assert type(getattr(got, name)) is type(getattr(expected, name)), name
    assert {k: asdict(v) for k, v in counters.received.items()} == {
        k: asdict(v) for k, v in reference_counters.received.items()
    }
    assert counters.malformed == reference_counters.malformed
    assert getattr(transport, RX_BYTES) == received


@needs_native
def test_receive_steps_aside_when_the_session_or_the_stages_change() -> None:
    chain = TransportInterceptorChain()
    transport = Transport(chain)
    path = recv_path(transport, None)
    tx = sessions()[0]

    def packet(sequence: int) -> bytes:
        return tx.protect(struct.pack("!BBHII", 0x80, 111, sequence, 0, 1) + b"voice")

    received = path.receive(packet(1), 1.0, 0)
    assert isinstance(received, RawRtpPacket) and received.payload == b"voice"
    chain.add(TransportInterceptor())
    assert path.receive(packet(2), 1.0, 0) is None
    chain.remove(next(iter(chain)))
    assert path.receive(packet(3), 1.0, 0) is not None
    transport._rx_srtp = fast_session(sessions()[1])
    assert path.receive(packet(4), 1.0, 0) is None
    assert getattr(transport, RX_PACKETS) == 2, "only the packets it took are counted"


@needs_native
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.one_of(
            st.tuples(
                st.just("packet"),
                st.sampled_from(["a", "b"]),  # source
                st.sampled_from([0x1111, 0x2222]),  # the packet's SSRC
                st.integers(0, 0xFFFF),
                st.integers(0, 0xFFFFFFFF),
            ),
            st.tuples(st.just("switch"), st.sampled_from(["a", "b"])),
            st.tuples(st.just("insert")),
        ),
        max_size=30,
    ),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
)
@example([("packet", "a", 0x1111, 65535, 4294967000), ("packet", "a", 0x1111, 0, 200)], 7, 9)
@example(  # an insert() fences off the numbers before it, whatever their timestamps
    [("packet", "a", 0x1111, 5, 1000), ("insert",), ("packet", "a", 0x1111, 5, 2000)], 7, 9
)
def test_send_media_munges_as_rtp_munger_does(
    sockets: tuple[socket.socket, socket.socket],
    steps: list[tuple[Any, ...]],
    first_sequence: int,
    first_timestamp: int,
) -> None:
    """``send_media`` (the munger's common case in C, else ``munge()`` and ``send``) against
    ``RtpMunger.munge`` and the Python path: the same datagrams and the same munger state."""
    from webrtc_ext.munger import RtpMunger

    def munger() -> RtpMunger:
        made = RtpMunger(48000, initial_sequence_number=first_sequence,
                         initial_timestamp=first_timestamp)  # fmt: skip
        made.update("a")
        return made

    rig = Rig(*sockets, extensions=False)
    c_munger, reference_munger = munger(), munger()
    reference = outbound(False)
    reference_srtp = fast_session(sessions()[0])
    now = 100.0
    for step in steps:
        now += 0.02
        if step[0] == "switch":
            c_munger.update(step[1])
            reference_munger.update(step[1])
            continue
        if step[0] == "insert":
            assert c_munger.insert(now) == reference_munger.insert(now)
            continue
        _, source, ssrc, sequence, timestamp = step
        packet = RawRtpPacket.create(b"voice", payload_type=111, sequence_number=sequence,
                                     timestamp=timestamp, ssrc=ssrc)  # fmt: skip
        expected = reference_munger.munge(sequence, timestamp, now, source, ssrc)
        try:
            sent = rig.path.send_media(rig.outbound, c_munger, packet, source, now)
            if sent is None:  # not the current segment: the sender's Python path
                munged = c_munger.munge(sequence, timestamp, now, source, ssrc)
                assert munged == expected
                sent = False if munged is None else rig.path.send(rig.outbound, packet, *munged)
        except pylibsrtp.Error:  # libsrtp refuses an index it protected before
            assert expected is not None
            with pytest.raises(pylibsrtp.Error):
                reference_srtp.protect(reference.write(packet, *expected, 1))
            assert state(c_munger) == state(reference_munger)
            continue
        assert state(c_munger) == state(reference_munger)
        if expected is None:
            assert sent is False
            continue
        assert isinstance(sent, int)
        assert rig.b.recv(2048) == reference_srtp.protect(reference.write(packet, *expected, sent))


@needs_native
@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 0xFFFF),  # sequence number
            st.integers(0, 0xFFFFFFFF),  # timestamp
            st.floats(0, 0.2),  # seconds since the previous packet
        ),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from([8000, 48000, 90000]),
)
@example([(65535, 0, 0.0), (0, 960, 0.02), (65534, 0, 0.02), (1, 1920, 0.02)], 48000)
def test_stream_add_counts_as_aiortcs_stream_statistics(
    packets: list[tuple[int, int, float]], clock_rate: int
) -> None:
    from unittest import mock

    from aiortc.rtcrtpreceiver import StreamStatistics

    c, reference = StreamStatistics(clock_rate), StreamStatistics(clock_rate)
    now = 1_700_000_000.0
    for sequence, timestamp, elapsed in packets:
        now += elapsed
        packet = RawRtpPacket.create(b"", payload_type=111, sequence_number=sequence,
                                     timestamp=timestamp)  # fmt: skip
        with mock.patch("time.time", return_value=now):  # (a first packet goes to add())
            native._native.stream_add(c, packet, now)
            reference.add(packet)
        assert vars(c) == vars(reference)
    assert (c.jitter, c.packets_lost, c.fraction_lost) == (
        reference.jitter,
        reference.packets_lost,
        reference.fraction_lost,
    )


# -- Opus repacketization (the fan-out's joined-frames destinations) ---------------------------

#: TOC bytes: one frame of SILK 20 ms, the same stereo, SILK 60 ms, hybrid 10 ms, CELT 2.5 and
#: 20 ms; then two frames (code 1) and an arbitrary count (code 3): passed on as they came.
TOCS = [0x08, 0x0C, 0x18, 0x60, 0x80, 0x98, 0xF8, 0x09, 0x0B]


@st.composite
def opus_streams(draw: st.DrawFn) -> list[RawRtpPacket]:
    """One stream's packets as a fan-out receives them: mostly consecutive 20 ms frames, with
    losses, reordering, DTX gaps, new SSRCs, payload types and configurations, and sizes up
    to past the 1275-byte frame limit, at the numbers' wrap-around too."""
    sequence = draw(st.sampled_from([0, 65533]))
    timestamp = draw(st.sampled_from([0, 2**32 - 1920]))
    packets = []
    toc = draw(st.sampled_from(TOCS[:7]))
    for _ in range(draw(st.integers(1, 24))):
        if not draw(st.integers(0, 3)):  # a change of configuration now and then
            toc = draw(
                st.sampled_from(TOCS[:7]) if draw(st.integers(0, 5)) else st.sampled_from(TOCS)
            )
        size = draw(st.sampled_from([0, 1, 60, 251, 252, 500, 1275, 1276]) | st.integers(0, 300))
        prefix = draw(st.sampled_from([12, 16]))
        padding = draw(st.sampled_from([0, 0, 3]))
        data = bytes([0x90 if prefix == 16 else 0x80]) + bytes(prefix - 1)
        data += bytes([toc]) + bytes([size % 256]) * size + bytes(padding)
        packet = RawRtpPacket(
            data,
            payload_type=draw(st.sampled_from([111, 111, 111, 63])),
            marker=draw(st.booleans()),
            sequence_number=sequence,
            timestamp=timestamp,
            ssrc=draw(st.sampled_from([7, 7, 7, 2**32 - 1])),
            payload_start=prefix,
            payload_end=len(data) - padding,
            arrival_time=draw(st.floats(0, 1e6, allow_nan=False)),
            audio_level=draw(st.none() | st.integers(0, 255)),
        )
        packets.append(packet)
        sequence = (sequence + draw(st.sampled_from([1, 1, 1, 1, 2, 0, -1]))) & 0xFFFF
        step = frame_samples(toc)
        timestamp = (timestamp + draw(st.sampled_from([step, step, step, 2 * step, 0]))) % 2**32
    return packets


def opus_frame(n: int, size: int, toc: int = 0x78) -> RawRtpPacket:
    """The ``n``-th packet of a stream of one-frame packets of ``size`` bytes (with the TOC)."""
    return RawRtpPacket.create(bytes([toc]) + b"a" * (size - 1), payload_type=111,
                               sequence_number=n, timestamp=frame_samples(toc) * n)  # fmt: skip


def packer_state(packer: Any) -> tuple[Any, ...]:
    return (
        [id(p) for p in packer._held],
        packer._toc,
        packer._bytes,
        packer._sequence,
        packer.packets_in,
        packer.packets_out,
    )


def packet_fields(packet: RawRtpPacket) -> tuple[Any, ...]:
    return tuple((name, getattr(packet, name)) for name in RawRtpPacket.__slots__)


@needs_native
@settings(max_examples=400, deadline=None)
@given(opus_streams(), st.integers(1, 6))
@example([opus_frame(n, 1099) for n in range(3)], 3)
@example([opus_frame(0, 548), opus_frame(1, 547), opus_frame(2, 1)], 3)  # 1100 bytes: joined
@example([opus_frame(n, 9, toc=0x18) for n in range(4)], 6)  # 60 ms frames: 120 ms at most
def test_opus_push_joins_frames_as_the_python_repacketizer_does(
    packets: list[RawRtpPacket], frames: int
) -> None:
    python, c = OpusRepacketizer(frames), OpusRepacketizer(frames)
    for packet in packets:
        expected = python.push(packet)
        out = native._native.opus_push(c, packet, RawRtpPacket)
        assert out is not None, "a plain packet is pushed in C"
        assert [packet_fields(p) for p in out] == [packet_fields(p) for p in expected]
        assert packer_state(c) == packer_state(python)
    assert [packet_fields(p) for p in c.flush()] == [packet_fields(p) for p in python.flush()]


@needs_native
def test_opus_push_leaves_what_is_not_plain_to_the_python_method() -> None:
    class Tagged(RawRtpPacket):
        __slots__ = ()

    def frame(n: int, kind: type[RawRtpPacket] = RawRtpPacket) -> RawRtpPacket:
        data = bytes(12) + b"\x78ab"
        return kind(data, payload_type=111, marker=False, sequence_number=n,
                    timestamp=960 * n, ssrc=0, payload_start=12, payload_end=15)  # fmt: skip

    packer = OpusRepacketizer(3)
    assert native._native.opus_push(packer, frame(0), RawRtpPacket) == []
    before = packer_state(packer)
    odd = [frame(1, Tagged), frame(1)]
    odd[1].sequence_number = 2**70  # not a 16-bit number: Python decides what that means
    for packet in odd:
        assert native._native.opus_push(packer, packet, RawRtpPacket) is None
        assert packer_state(packer) == before, "nothing was changed"
    packer._held.append(odd[0])  # a held frame that is not plain
    assert native._native.opus_push(packer, frame(2), RawRtpPacket) is None
