"""The WhatsApp SDP rules on real aiortc/webrtc_ext descriptions."""

from __future__ import annotations

from relay_service.simulators.caller import CallerPeer, meta_offer
from relay_service.whatsapp.sdp import answer_problems, fingerprint_count, prepare_answer
from webrtc_ext import PeerConnectionConfig, RTCPeerConnection, RTCSessionDescription


def media_section(sdp: str) -> list[str]:
    lines = sdp.split("\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("m=audio"))
    return lines[start:]


async def test_answer_to_a_meta_offer_follows_the_rules() -> None:
    caller = CallerPeer("silence")
    ours = RTCPeerConnection(
        PeerConnectionConfig(
            host_addresses=["127.0.0.1"],
            audio_codecs=("audio/opus",),
            fingerprint_algorithms=("sha-256",),  # as the service's WhatsApp leg
        )
    )
    try:
        offer = await caller.offer()
        assert "a=ice-lite" in offer and "a=setup:actpass" in offer
        assert "a=rtpmap:126 telephone-event/8000" in offer and fingerprint_count(offer) == 1
        await ours.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await ours.setLocalDescription(await ours.createAnswer())
        raw = ours.localDescription.sdp
        answer = prepare_answer(raw)
        assert answer_problems(answer) == []
        assert fingerprint_count(answer) == 1 and "a=fingerprint:sha-256 " in answer
        assert "a=setup:active" in answer and "a=setup:passive" not in answer
        section = media_section(answer)
        assert section[1].startswith("c=")  # attributes stay after the c= line
        assert "a=ptime:20" in section
        # We are the controlling agent toward the ICE-lite caller.
        assert ours.ice_transports[0].role == "controlling"
    finally:
        await ours.close()
        await caller.close()


def test_meta_offer_keeps_only_narrowband_telephone_event() -> None:
    sdp = (
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 110 126\r\nc=IN IP4 0.0.0.0\r\n"
        "a=rtpmap:111 opus/48000/2\r\na=rtpmap:110 telephone-event/48000\r\n"
        "a=fmtp:110 0-15\r\na=rtpmap:126 telephone-event/8000\r\na=fmtp:126 0-15\r\n"
    )
    shaped = meta_offer(sdp)
    assert "m=audio 9 UDP/TLS/RTP/SAVPF 111 126\r\n" in shaped
    assert "telephone-event/48000" not in shaped and "a=fmtp:110" not in shaped
    assert "a=rtpmap:126 telephone-event/8000" in shaped


def test_meta_offer_shape_is_idempotent() -> None:
    sdp = (
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n"
        "a=rtpmap:111 opus/48000/2\r\na=fingerprint:sha-256 AA\r\na=fingerprint:sha-384 BB\r\n"
    )
    once = meta_offer(sdp)
    assert once.count("telephone-event") == 1 and fingerprint_count(once) == 1
    assert "m=audio 9 UDP/TLS/RTP/SAVPF 111 126" in once
    assert meta_offer(once) == once
    assert once.count("a=ptime:20") == 1


def test_answer_problems_name_each_rule() -> None:
    bad = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\n" + (
        "a=fingerprint:sha-256 AA\r\na=fingerprint:sha-512 BB\r\na=setup:actpass\r\n"
    )
    problems = " | ".join(answer_problems(bad))
    assert "exactly one a=fingerprint" in problems
    assert "Opus" in problems
    assert "DTLS role" in problems
