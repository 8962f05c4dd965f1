"""A real path that drops UDP datagrams over 1200 bytes: a network namespace with an nft (or
iptables) length rule, created and removed by the test. Both peers run inside it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ADDRESS = "10.203.0.1"  # exists inside the test's namespace only
ROOT = Path(__file__).resolve().parents[2]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def drop_rule(namespace: str) -> str | None:
    """Silently drop arriving UDP payloads over 1200 bytes (an input rule: the sender sees no
    error, as on a real path); the tool used, or None if none works."""
    netns = ("ip", "netns", "exec", namespace)
    if shutil.which("nft"):
        steps = [
            "add table inet mtu1200",
            "add chain inet mtu1200 in { type filter hook input priority 0 ; }",
            "add rule inet mtu1200 in udp length gt 1208 drop",  # UDP length = 8 + payload
        ]
        if all(run(*netns, "nft", *step.split()).returncode == 0 for step in steps):
            return "nft"
    if shutil.which("iptables"):
        # IPv4 total length = 20 (IP) + 8 (UDP) + payload: payload > 1200 is length >= 1229.
        rule = (
            "iptables",
            "-A",
            "OUTPUT",
            "-p",
            "udp",
            "-m",
            "length",
            "--length",
            "1229:65535",
            "-j",
            "DROP",
        )
        if run(*netns, *rule).returncode == 0:
            return "iptables"
    return None


@pytest.fixture
def namespace() -> Iterator[tuple[str, str]]:
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("network namespaces need root and iproute2")
    name = f"wrtcdtls{os.getpid()}"
    created = run("ip", "netns", "add", name)
    if created.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {created.stderr.strip()}")
    try:
        for command in (
            # A non-127 address on the namespace's own loopback: aioice (and so plain
            # aiortc) gathers it, and no packet can leave the namespace.
            ("ip", "-n", name, "addr", "add", f"{ADDRESS}/32", "dev", "lo"),
            ("ip", "-n", name, "link", "set", "lo", "up"),
        ):
            result = run(*command)
            if result.returncode != 0:
                pytest.skip(f"cannot set up the namespace ({' '.join(command)}): {result.stderr}")
        tool = drop_rule(name)
        if tool is None:
            pytest.skip("neither nft nor iptables can install a length rule here")
        yield name, tool
    finally:
        run("ip", "netns", "del", name)


def test_path_dropping_over_1200_bytes_in_a_namespace_library_vs_aiortc(
    namespace: tuple[str, str], record_property: object
) -> None:
    name, tool = namespace
    peer = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            name,
            sys.executable,
            "-m",
            "tests.integration.netns_dtls_peer",
            ADDRESS,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert peer.returncode == 0, peer.stderr[-3000:]
    result = json.loads(peer.stdout.strip().splitlines()[-1])
    record_property("outcomes", {"rule": tool, **result})  # type: ignore[operator]
    print(tool, result)

    assert result["path"] == {"1200": True, "1201": False}  # the rule really is a 1200-byte path
    assert result["library"]["connected"] and result["library"]["audio"]
    assert result["library"]["max_datagram_bytes"] <= 1200
    assert not result["aiortc"]["connected"]  # the baseline: aiortc's 1500-byte reads are dropped
