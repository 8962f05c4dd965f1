"""Host candidates on several addresses get unique priorities (RFC 8445 §5.1.2.1)."""

from __future__ import annotations

import pytest

from tests.support import LOOPBACK
from webrtc_ext import RTCPeerConnection

pytestmark = pytest.mark.integration


async def test_host_candidates_have_unique_priorities_in_address_order() -> None:
    addresses = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "::1"]
    pc = RTCPeerConnection(LOOPBACK.with_changes(host_addresses=addresses))
    try:
        pc.addTransceiver("audio")
        await pc.setLocalDescription(await pc.createOffer())
        (transport,) = pc.ice_transports
        candidates = transport.iceGatherer.getLocalCandidates()
        assert [c.ip for c in candidates] == addresses
        priorities = [c.priority for c in candidates]
        assert priorities == sorted(priorities, reverse=True)
        assert len(set(priorities)) == len(priorities)
    finally:
        await pc.close()
