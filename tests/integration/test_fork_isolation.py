"""Importing and using webrtc_ext changes nothing for plain aiortc objects in the same process.

The check runs in a fresh Python process, so that "before" really is before webrtc_ext is
imported: it snapshots aiortc's and aioice's classes and module constants, imports
webrtc_ext, connects two of its peer connections (audio, DTMF, a data channel with a large
message), and then checks that every class member and constant is the very object it was,
and that a plain aiortc connection builds aiortc's own transports, sender and receiver.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.integration

SCRIPT = textwrap.dedent(
    """
    import asyncio
    import types

    import aioice.ice
    import aiortc
    import aiortc.jitterbuffer
    import aiortc.rtcdtlstransport
    import aiortc.rtcpeerconnection
    import aiortc.rtcrtpreceiver
    import aiortc.rtcrtpsender
    import aiortc.rtcsctptransport

    CLASSES = [
        aiortc.RTCPeerConnection,
        aiortc.RTCRtpSender,
        aiortc.RTCRtpReceiver,
        aiortc.RTCRtpTransceiver,
        aiortc.RTCDtlsTransport,
        aiortc.RTCSctpTransport,
        aiortc.RTCDataChannel,
        aiortc.RTCIceGatherer,
        aiortc.RTCIceTransport,
        aiortc.RTCCertificate,
        aiortc.rtcdtlstransport.RtpRouter,
        aiortc.rtcrtpreceiver.StreamStatistics,
        aiortc.jitterbuffer.JitterBuffer,
        aioice.ice.Connection,
        aioice.ice.StunProtocol,
    ]
    MODULES = [
        aiortc.rtcsctptransport,
        aiortc.rtcpeerconnection,
        aiortc.rtcrtpsender,
        aiortc.rtcrtpreceiver,
        aiortc.rtcdtlstransport,
        aioice.ice,
    ]


    def snapshot():
        members = {
            f"{cls.__module__}.{cls.__qualname__}.{name}": value
            for cls in CLASSES
            for name, value in vars(cls).items()
        }
        for module in MODULES:
            for name, value in vars(module).items():
                if not isinstance(value, types.ModuleType):
                    members[f"{module.__name__}.{name}"] = value
        return members


    BEFORE = snapshot()
    SCTP_CHUNK = aiortc.rtcsctptransport.USERDATA_MAX_LENGTH

    import webrtc_ext  # noqa: E402


    async def library_call():
        config = webrtc_ext.PeerConnectionConfig(host_addresses=["127.0.0.1"])
        offerer = webrtc_ext.RTCPeerConnection(config)
        answerer = webrtc_ext.RTCPeerConnection(config)
        received = asyncio.Queue()
        answerer.on("datachannel", lambda ch: ch.on("message", received.put_nowait))
        try:
            offerer.addTrack(aiortc.mediastreams.AudioStreamTrack())
            channel = offerer.createDataChannel("bulk")
            opened = asyncio.Event()
            channel.on("open", opened.set)
            await offerer.setLocalDescription(await offerer.createOffer())
            await answerer.setRemoteDescription(offerer.localDescription)
            await answerer.setLocalDescription(await answerer.createAnswer())
            await offerer.setRemoteDescription(answerer.localDescription)
            await asyncio.wait_for(opened.wait(), 30)
            message = bytes(range(256)) * 40
            channel.send(message)
            assert await asyncio.wait_for(received.get(), 30) == message
            offerer.getTransceivers()[0].sender.dtmf.insertDTMF("1", duration=100)
            await asyncio.sleep(0.5)
            await offerer.getStats()
            assert offerer.sctp.user_data_max_length < SCTP_CHUNK  # lowered, for this one
        finally:
            await offerer.close()
            await answerer.close()


    async def plain_objects():
        pc = aiortc.RTCPeerConnection(aiortc.RTCConfiguration(iceServers=[]))
        try:
            transceiver = pc.addTransceiver("audio")
            pc.createDataChannel("plain")
            await pc.setLocalDescription(await pc.createOffer())
            objects = {
                aiortc.RTCRtpSender: transceiver.sender,
                aiortc.RTCRtpReceiver: transceiver.receiver,
                aiortc.RTCDtlsTransport: transceiver.sender.transport,
                aiortc.RTCIceTransport: transceiver.sender.transport.transport,
                aiortc.RTCSctpTransport: pc.sctp,
                aioice.ice.Connection: transceiver.sender.transport.transport._connection,
            }
            for cls, obj in objects.items():
                assert type(obj) is cls, (cls, type(obj))
                shadowed = [
                    name for name, value in vars(obj).items()
                    if callable(value) and hasattr(cls, name)
                ]
                assert not shadowed, (cls, shadowed)
        finally:
            await pc.close()


    asyncio.run(library_call())
    asyncio.run(plain_objects())
    AFTER = snapshot()
    changed = sorted(
        name for name in BEFORE.keys() | AFTER.keys()
        if BEFORE.get(name, BEFORE) is not AFTER.get(name, AFTER)
    )
    assert not changed, changed
    assert aiortc.rtcsctptransport.USERDATA_MAX_LENGTH == SCTP_CHUNK == 1160
    print("ISOLATED")
    """
)


def test_plain_aiortc_objects_behave_as_without_webrtc_ext() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ISOLATED")
