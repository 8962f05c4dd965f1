"""Build and drive the Pion peer of ``pion_peer/main.go`` (Debian's Go and Pion, offline)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiortc import RTCSessionDescription

SOURCE_DIR = Path(__file__).parent / "pion_peer"
#: Debian installs Go libraries here (the documented GOPATH of Debian's golang packages).
DEBIAN_GOPATH = Path("/usr/share/gocode")
PION_WEBRTC = DEBIAN_GOPATH / "src/github.com/pion/webrtc"
BUILD_TIMEOUT = 600.0


def missing_toolchain() -> str | None:
    """Why the Pion peer cannot be built here, or ``None`` when it can."""
    if shutil.which("go") is None:
        return "Go is not installed (Debian package golang-go)"
    if not (PION_WEBRTC / "peerconnection.go").exists():
        return (
            "Pion is not installed in the Debian GOPATH "
            "(Debian package golang-github-pion-webrtc.v3-dev)"
        )
    return None


def build_pion_peer(workdir: Path) -> Path:
    """Compile the Pion peer offline into ``workdir`` and return the executable."""
    gopath = workdir / "gopath"
    # Debian installs Pion v3 without the /v3 path element, and GOPATH mode's minimal module
    # compatibility only looks in the importer's own GOPATH entry: give the import path a home.
    versioned = gopath / "src/github.com/pion/webrtc/v3"
    versioned.parent.mkdir(parents=True, exist_ok=True)
    if not versioned.exists():
        versioned.symlink_to(PION_WEBRTC)
    executable = workdir / "pion_peer"
    env = dict(os.environ)
    env.pop("GOFLAGS", None)
    env.update(
        GO111MODULE="off",
        GOPATH=f"{gopath}{os.pathsep}{DEBIAN_GOPATH}",
        GOPROXY="off",
        CGO_ENABLED="0",
    )
    result = subprocess.run(
        ["go", "build", "-o", str(executable), "."],
        cwd=SOURCE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"building the Pion peer failed:\n{result.stderr}")
    return executable


class PionPeer:
    """A running Pion peer: one session description each way, then its event lines."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self.events: list[dict[str, Any]] = []
        self._description: asyncio.Future[RTCSessionDescription] = (
            asyncio.get_running_loop().create_future()
        )
        self._changed = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self._process.stdout is not None
        async for line in self._process.stdout:
            message = json.loads(line)
            if "type" in message and not self._description.done():
                self._description.set_result(
                    RTCSessionDescription(sdp=message["sdp"], type=message["type"])
                )
            elif "event" in message:
                self.events.append(message)
                self._changed.set()
        if not self._description.done():
            self._description.set_exception(
                RuntimeError("the Pion peer exited early (its stderr is in the captured output)")
            )

    async def send_description(self, description: RTCSessionDescription) -> None:
        """Give Pion the remote session description."""
        assert self._process.stdin is not None
        line = json.dumps({"type": description.type, "sdp": description.sdp})
        self._process.stdin.write(line.encode() + b"\n")
        await self._process.stdin.drain()

    async def description(self, timeout: float = 30.0) -> RTCSessionDescription:
        """Pion's session description (complete, with every candidate)."""
        return await asyncio.wait_for(asyncio.shield(self._description), timeout)

    def states(self, event: str) -> list[str]:
        """The states Pion reported for ``event`` so far, in order."""
        return [e["state"] for e in self.events if e["event"] == event]

    async def wait_for_state(self, event: str, state: str, timeout: float = 30.0) -> None:
        """Wait until Pion reports ``state`` for ``event``."""
        async with asyncio.timeout(timeout):
            while state not in self.states(event):
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        """Ask Pion to hang up (closing its stdin) and wait for it to exit."""
        if self._process.returncode is None:
            assert self._process.stdin is not None
            with contextlib.suppress(ConnectionError):
                self._process.stdin.close()
            try:
                await asyncio.wait_for(self._process.wait(), 10)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        self._reader.cancel()


@contextlib.asynccontextmanager
async def pion_peer(
    executable: Path, role: str = "answer", networks: str = "udp4"
) -> AsyncIterator[PionPeer]:
    """Start the Pion peer as the ``answer``-ing or ``offer``-ing side; stop it on exit."""
    process = await asyncio.create_subprocess_exec(
        str(executable),
        f"-role={role}",
        f"-networks={networks}",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    peer = PionPeer(process)
    try:
        yield peer
    finally:
        await peer.close()
