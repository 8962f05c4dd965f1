"""Fails loudly when an aiortc/aioice upgrade moves an internal that webrtc_ext relies on."""

import importlib.metadata

from webrtc_ext._internals import missing_internals


def test_pinned_versions_are_installed() -> None:
    assert importlib.metadata.version("aiortc") == "1.16.0"
    assert importlib.metadata.version("aioice") == "0.13.0"


def test_every_private_member_still_exists() -> None:
    assert missing_internals() == []


def test_candidate_network_host_is_the_address_aioice_pairs_by() -> None:
    from aioice import Candidate

    from webrtc_ext._internals import candidate_network_host, set_candidate_network_host

    local = Candidate.from_sdp("1 1 udp 2130706431 10.0.0.1 5000 typ host")
    remote = Candidate.from_sdp("1 1 udp 2130706431 peer-1234.local 6000 typ host")
    assert candidate_network_host(local) == "10.0.0.1"
    # An mDNS candidate is paired by the address its name resolved to, which aioice keeps in
    # the member these helpers name: without it, pairing would parse "peer-1234.local".
    set_candidate_network_host(remote, "10.0.0.2")
    assert candidate_network_host(remote) == "10.0.0.2"
    assert local.can_pair_with(remote)
    set_candidate_network_host(remote, "fd00::2")
    assert not local.can_pair_with(remote), "an IPv6 address never pairs with an IPv4 one"


# -- behaviour of the internals webrtc_ext relies on -------------------------------------------


def test_the_forked_sender_module_is_still_upstream_s() -> None:
    """The vendored sender forks aiortc 1.16.0's: an upstream change is merged by hand."""
    import aiortc.rtcrtpsender

    from webrtc_ext._internals import RTP_SENDER_UPSTREAM_SHA256, upstream_source_sha256

    assert upstream_source_sha256(aiortc.rtcrtpsender) == RTP_SENDER_UPSTREAM_SHA256


async def test_the_connection_builds_its_own_sctp_transport_in_aiortc_s_slot() -> None:
    """``__createSctpTransport`` is replaced and ``__sctp`` written: aiortc uses ours."""
    from tests.support import LOOPBACK
    from webrtc_ext import RTCPeerConnection
    from webrtc_ext.rtcsctptransport import RTCSctpTransport

    pc = RTCPeerConnection(LOOPBACK)
    try:
        pc.createDataChannel("probe")
        assert isinstance(pc.sctp, RTCSctpTransport)
        offer = await pc.createOffer()
        assert "m=application" in offer.sdp and "webrtc-datachannel" in offer.sdp
        assert pc.sctp.interceptors is not None
    finally:
        await pc.close()
    assert pc.sctp.state == "closed"  # aiortc's close() reached our transport


async def test_a_filler_in_aiortc_s_jitter_buffer_joins_the_frame_before_it() -> None:
    """The DTMF receiver's filler (empty, previous timestamp) completes no frame of its own
    and lets later audio out as if the slot had been audio of the previous frame."""
    from aiortc.rtp import RtpPacket

    from tests.support import LOOPBACK
    from webrtc_ext import RTCPeerConnection
    from webrtc_ext._internals import receiver_private

    def audio(seq: int) -> RtpPacket:
        packet = RtpPacket(payload_type=111, sequence_number=seq, timestamp=960 * seq, ssrc=1)
        packet._data = bytes([seq])  # type: ignore[attr-defined]
        return packet

    pc = RTCPeerConnection(LOOPBACK)
    try:
        buffer = receiver_private(pc.addTransceiver("audio").receiver, "jitter_buffer")
        frames = []
        for seq in [*range(10), None, None, None, *range(13, 30)]:
            if seq is None:  # a telephone-event slot, filled
                filler_seq = 10 + sum(1 for f in frames if f is None)
                filler = RtpPacket(
                    payload_type=126, sequence_number=filler_seq, timestamp=960 * 9, ssrc=1
                )
                filler._data = b""  # type: ignore[attr-defined]
                frames.append(None)
                assert buffer.add(filler)[1] is None
                continue
            frame = buffer.add(audio(seq))[1]
            if frame is not None:
                frames.append(frame)
        decoded = [f for f in frames if f is not None]
        # Every audio frame came out in order, unchanged (the last 4 stay, aiortc prefetch).
        assert [f.data for f in decoded] == [bytes([s]) for s in [*range(10), *range(13, 26)]]
        assert [f.timestamp for f in decoded] == [960 * s for s in [*range(10), *range(13, 26)]]
    finally:
        await pc.close()


async def test_bundled_owners_ride_the_first_transport_and_rtcp_leaves_from_the_sender_ssrc() -> (
    None
):
    """``_bundled`` (aiortc starts no transports of bundled owners) and ``_set_rtcp_ssrc``."""
    import asyncio

    from aiortc.mediastreams import AudioStreamTrack

    from tests.support import LOOPBACK
    from webrtc_ext import RTCPeerConnection
    from webrtc_ext.interceptor import TransportInterceptor

    class RtcpSenders(TransportInterceptor):
        def __init__(self) -> None:
            self.ssrcs: set[int] = set()

        def rtcp_sent(self, data: bytes, now: float) -> None:
            self.ssrcs.add(int.from_bytes(data[4:8], "big"))  # the first packet's sender SSRC

    caller, callee = RTCPeerConnection(LOOPBACK), RTCPeerConnection(LOOPBACK)
    try:
        caller.addTrack(AudioStreamTrack())
        caller.addTransceiver("audio", direction="sendrecv")
        channel = caller.createDataChannel("probe")
        opened = asyncio.get_running_loop().create_future()
        channel.on("open", lambda: opened.done() or opened.set_result(None))
        await caller.setLocalDescription(await caller.createOffer())
        await callee.setRemoteDescription(caller.localDescription)
        for transceiver in callee.getTransceivers():
            transceiver.direction = "recvonly"
        await callee.setLocalDescription(await callee.createAnswer())
        await caller.setRemoteDescription(callee.localDescription)
        first, second = callee.getTransceivers()
        transport = first.receiver.transport
        assert second.receiver.transport is transport and callee.sctp is not None
        assert callee.sctp.transport is transport, "one DTLS transport for all three"
        observer = RtcpSenders()
        transport.interceptors.add(observer)
        await asyncio.wait_for(opened, 10)
        own = {t.sender._ssrc for t in callee.getTransceivers()}
        for _ in range(100):
            if observer.ssrcs:
                break
            await asyncio.sleep(0.1)
        assert observer.ssrcs and observer.ssrcs <= own, "receiver reports from our sender SSRC"
    finally:
        await caller.close()
        await callee.close()


def test_an_aiortc_certificate_becomes_the_library_s_with_the_same_key() -> None:
    """``RTCCertificate._key`` / ``_cert``: the same identity, usable for DTLS."""
    from aiortc import RTCCertificate as AiortcCertificate
    from aiortc.rtcdtlstransport import SRTP_AES128_CM_SHA1_80

    from webrtc_ext.certificates import RTCCertificate

    original = AiortcCertificate.generateCertificate()
    ours = RTCCertificate.from_aiortc(original)
    assert ours.getFingerprints() == original.getFingerprints()
    # OpenSSL checks that the private key matches the certificate.
    ours._create_ssl_context([SRTP_AES128_CM_SHA1_80])


def test_the_receiver_rtcp_loop_copied_is_still_upstream_s() -> None:
    """webrtc_ext.rtcpreports copies aiortc 1.16.0's receiver RTCP loop: merge upstream changes."""
    import aiortc

    from webrtc_ext._internals import RTP_RECEIVER_RUN_RTCP_UPSTREAM_SHA256, upstream_source_sha256

    assert (
        upstream_source_sha256(aiortc.RTCRtpReceiver._run_rtcp)
        == RTP_RECEIVER_RUN_RTCP_UPSTREAM_SHA256
    )


async def test_private_member_accessors_leave_no_name_strings_behind() -> None:
    """The accessors run for every packet and stats sample of every call. CPython's type
    attribute cache keeps the last name looked up in each slot, so a name string built per
    call would stay alive somewhere among the call's memory and keep the allocator from
    returning it when the call ends (docs/performance.md, fourth round)."""
    import tracemalloc

    from tests.support import LOOPBACK
    from webrtc_ext import RTCPeerConnection
    from webrtc_ext._internals import dtls_private_add, pc_private, receiver_private

    pc = RTCPeerConnection(LOOPBACK)
    try:
        receiver = pc.addTransceiver("audio").receiver
        dtls = receiver.transport
        tracemalloc.start()
        try:
            for _ in range(200):
                pc_private(pc, "transceivers")
                receiver_private(receiver, "remote_streams")
                dtls_private_add(dtls, "rx_packets", 0)
            left = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(True, "*webrtc_ext/_internals.py")]
            )
        finally:
            tracemalloc.stop()
        assert left.statistics("lineno") == []
    finally:
        await pc.close()
