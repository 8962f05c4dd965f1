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
