"""telephone-event at 8000 and 48000 Hz: answered with the payload types the remote chose."""

from __future__ import annotations

import re

import pytest
from aiortc.mediastreams import AudioStreamTrack

from tests.support import LOOPBACK
from webrtc_ext import PeerConnectionConfig, RTCPeerConnection, RTCSessionDescription
from webrtc_ext._internals import missing_rtp_internals


def rtpmaps(sdp: str) -> list[tuple[int, str]]:
    """(payload type, encoding) in m= line order."""
    (mline,) = [line for line in sdp.splitlines() if line.startswith("m=audio")]
    names = dict(re.findall(r"a=rtpmap:(\d+) (\S+)", sdp))
    return [(int(pt), names[pt]) for pt in mline.split()[3:]]


async def local_offer(config: PeerConnectionConfig = LOOPBACK) -> str:
    pc = RTCPeerConnection(config)
    pc.addTrack(AudioStreamTrack())
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return str(sdp)


def with_audio_codecs(sdp: str, codecs: list[tuple[int, str, str | None]]) -> str:
    """``sdp`` with its audio codecs replaced by (pt, rtpmap, fmtp) in this order."""
    lines = [
        line
        for line in sdp.splitlines()
        if not line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"))
    ]
    out = []
    for line in lines:
        if line.startswith("m=audio"):
            head = line.split()[:3]
            out.append(" ".join(head + [str(pt) for pt, _, _ in codecs]))
            for pt, name, fmtp in codecs:
                out.append(f"a=rtpmap:{pt} {name}")
                if fmtp:
                    out.append(f"a=fmtp:{pt} {fmtp}")
        else:
            out.append(line)
    return "\r\n".join(out) + "\r\n"


async def answer_to(offer: str, config: PeerConnectionConfig = LOOPBACK) -> str:
    pc = RTCPeerConnection(config)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return str(sdp)


async def test_offer_has_both_clock_rates_after_the_audio_codecs() -> None:
    codecs = rtpmaps(await local_offer())
    assert codecs[0] == (96, "opus/48000/2")
    assert codecs[-2:] == [(110, "telephone-event/48000"), (126, "telephone-event/8000")]


async def test_dtmf_off_offers_no_telephone_event() -> None:
    offer = await local_offer(LOOPBACK.with_changes(dtmf=False))
    assert "telephone-event" not in offer


WHATSAPP_CODECS = [
    (111, "opus/48000/2", "minptime=20;useinbandfec=1"),
    (126, "telephone-event/8000", None),
]


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        (WHATSAPP_CODECS, [(111, "opus/48000/2"), (126, "telephone-event/8000")]),
        (
            [
                (111, "opus/48000/2", None),
                (105, "telephone-event/48000", "0-15"),
                (101, "telephone-event/8000", "0-15"),
            ],
            [
                (111, "opus/48000/2"),
                (105, "telephone-event/48000"),
                (101, "telephone-event/8000"),
            ],
        ),
        (  # telephone-event listed first in the offer: never first in the answer
            [(101, "telephone-event/8000", "0-16"), (111, "opus/48000/2", None)],
            [(111, "opus/48000/2"), (101, "telephone-event/8000")],
        ),
        (  # a clock rate we do not support
            [(111, "opus/48000/2", None), (113, "telephone-event/16000", "0-15")],
            [(111, "opus/48000/2")],
        ),
    ],
    ids=["whatsapp", "both", "listed-first", "16000-only"],
)
async def test_answer_keeps_the_remote_payload_types(
    offered: list[tuple[int, str, str | None]], expected: list[tuple[int, str]]
) -> None:
    offer = with_audio_codecs(await local_offer(LOOPBACK.with_changes(dtmf=False)), offered)
    assert rtpmaps(await answer_to(offer)) == expected


async def test_dtmf_off_answers_without_telephone_event() -> None:
    offer = with_audio_codecs(await local_offer(), WHATSAPP_CODECS)
    answer = await answer_to(offer, LOOPBACK.with_changes(dtmf=False))
    assert rtpmaps(answer) == [(111, "opus/48000/2")]


async def test_rtp_internals_relied_on_still_exist() -> None:
    pc = RTCPeerConnection(LOOPBACK)
    transceiver = pc.addTransceiver("audio")
    assert missing_rtp_internals(transceiver.sender, transceiver.receiver) == []
    await pc.close()
