"""docs/naming.md's rule holds for the public API, and the exports are the classes built."""

from __future__ import annotations

import inspect
import re
import warnings

import aiortc
import pytest

import webrtc_ext
from tests.support import LOOPBACK

SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")

#: W3C (or aiortc's W3C/ORTC-style) member names the library's classes define or override.
W3C_MEMBERS = {
    "canInsertDTMF",
    "createDataChannel",
    "errorCode",
    "errorDetail",
    "errorText",
    "generateCertificate",
    "getLocalParameters",
    "getSelectedCandidatePair",
    "getStats",
    "insertDTMF",
    "replaceTrack",
    "selectedCandidatePairChanges",
    "setRemoteDescription",
    "toneBuffer",
}

#: Old names kept with a DeprecationWarning (docs/naming.md).
DEPRECATED = {"dtmfEvents", "gatheringErrors", "getCandidatePairs", "iceTransports"}


def library_members(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__.startswith("webrtc_ext"):
            names |= {n for n in vars(klass) if not n.startswith("_")}
    # aiortc's own API keeps aiortc's names, also where the library forks it (docs/fork.md).
    names -= {
        n for klass in cls.__mro__ if klass.__module__.startswith("aiortc") for n in vars(klass)
    }
    if cls.__module__.startswith("webrtc_ext") and hasattr(cls, "__dataclass_fields__"):
        names |= set(cls.__dataclass_fields__)
    return names


def test_public_names_follow_the_rule() -> None:
    offending = []
    for name in webrtc_ext.__all__:
        obj = getattr(webrtc_ext, name)
        if not inspect.isclass(obj):
            assert SNAKE.match(name), name
            continue
        own_class = obj.__module__.startswith("webrtc_ext")
        w3c_class = name.startswith("RTC") or name == "MediaStreamTrack"
        if own_class and not w3c_class and not name.endswith(("Error", "Mode")):
            assert re.match(r"^[A-Z][A-Za-z0-9]*$", name) and not name.startswith("RTC"), name
        for member in library_members(obj) - DEPRECATED:
            if member.isupper():  # enum values
                continue
            if not (SNAKE.match(member) or member in W3C_MEMBERS):
                offending.append(f"{name}.{member}")
    assert offending == []


async def test_exports_are_the_classes_a_connection_builds() -> None:
    pc = webrtc_ext.RTCPeerConnection(LOOPBACK)
    try:
        transceiver = pc.addTransceiver("audio")
        assert type(transceiver) is webrtc_ext.RTCRtpTransceiver
        assert type(transceiver.sender) is webrtc_ext.RTCRtpSender
        assert type(transceiver.receiver) is webrtc_ext.RTCRtpReceiver
        dtls = transceiver.sender.transport
        assert type(dtls) is webrtc_ext.RTCDtlsTransport
        assert type(dtls.transport) is webrtc_ext.RTCIceTransport
        assert type(dtls.transport.iceGatherer) is webrtc_ext.RTCIceGatherer
        assert type(transceiver.sender.dtmf) is webrtc_ext.RTCDTMFSender
        assert type(await pc.getStats()) is webrtc_ext.RTCStatsReport
        for name in ("RTCRtpSender", "RTCRtpReceiver", "RTCDtlsTransport", "RTCIceTransport"):
            assert issubclass(getattr(webrtc_ext, name), getattr(aiortc, name))
    finally:
        await pc.close()


def test_benchmark_baselines_are_not_part_of_the_library() -> None:
    assert not hasattr(webrtc_ext.dtmf, "MarkerBitDecoder")
    assert not hasattr(webrtc_ext.dtmf.rfc4733, "MarkerBitDecoder")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("IceGatherer", "RTCIceGatherer"),
        ("IceTransport", "RTCIceTransport"),
        ("RtpSender", "RTCRtpSender"),
        ("RtpReceiver", "RTCRtpReceiver"),
    ],
)
def test_old_class_names_still_work_with_a_warning(old: str, new: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"webrtc_ext.{old} is deprecated"):
        cls = getattr(webrtc_ext, old)
    assert cls is getattr(webrtc_ext, new)
    assert old not in webrtc_ext.__all__
    with pytest.raises(AttributeError):
        webrtc_ext.NoSuchName  # type: ignore[attr-defined] # noqa: B018


async def test_old_member_names_still_work_with_a_warning() -> None:
    pc = webrtc_ext.RTCPeerConnection(LOOPBACK)
    try:
        transceiver = pc.addTransceiver("audio")
        with pytest.warns(DeprecationWarning, match="iceTransports is deprecated"):
            assert pc.iceTransports == pc.ice_transports
        with pytest.warns(DeprecationWarning, match="gatheringErrors is deprecated"):
            assert pc.gatheringErrors == pc.gathering_errors == []
        (ice,) = pc.ice_transports
        with pytest.warns(DeprecationWarning, match="getCandidatePairs is deprecated"):
            assert ice.getCandidatePairs() == ice.candidate_pairs()
        with pytest.warns(DeprecationWarning, match="dtmfEvents is deprecated"):
            events = pc.dtmfEvents(transceiver)
        assert hasattr(events, "__anext__")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert pc.ice_transports and ice.candidate_pairs() == []
    finally:
        await pc.close()
