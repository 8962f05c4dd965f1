"""Every leg of every call uses the service's one DTLS certificate, renewed after a lifetime.

One certificate means one OpenSSL context for all legs instead of one per leg (~20 KB of C
heap each, four legs a call) and no key generated per leg; the peers still check it against
the fingerprint in each SDP.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from relay_service import router as router_module

from .agent import until, until_transcribing
from .conftest import running_service

pytestmark = pytest.mark.integration


def sha256_fingerprint(sdp: str) -> str:
    found = re.search(r"a=fingerprint:sha-256 (\S+)", sdp)
    assert found is not None, sdp
    return found.group(1).upper()


async def test_every_leg_uses_one_certificate_until_its_lifetime_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_service(tmp_path, TRANSCRIPTION_ENABLED="on") as running:
        simulator, router = running.service.simulator, running.service.router
        assert simulator is not None
        certificate = router.dtls_certificate()
        expected = next(
            f.value.upper() for f in certificate.getFingerprints() if f.algorithm == "sha-256"
        )
        fingerprints = set()
        for _ in range(2):
            agent = await running.agent()
            try:
                call_id = await agent.take_call(simulator)
                call = router.calls[call_id]
                ai = await until_transcribing(call)
                pcs = [leg.pc for leg in call.legs.values()]
                pcs += [leg.client.pc for leg in ai.transcribers.values()]
                assert len(pcs) == 4
                await until(
                    lambda pcs=pcs: all(pc.connectionState == "connected" for pc in pcs),
                    what="every leg connected (its peer accepted the certificate)",
                )
                fingerprints |= {sha256_fingerprint(pc.localDescription.sdp) for pc in pcs}
                del call, ai, pcs
                await simulator.hangup(call_id)
                await until(lambda: not router.calls, what="the call to end")
            finally:
                await agent.close()
        assert fingerprints == {expected}
        monkeypatch.setattr(router_module, "CERTIFICATE_LIFETIME", 0.0)
        renewed = router.peer_config().certificates[0]
        assert renewed.getFingerprints() != certificate.getFingerprints()
