"""The C allocator keeps at most two arenas for the service's threads (glibc)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from relay_service.memory import limit_malloc_arenas

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc's arenas"
)

# Eight threads allocate at once (what a burst of calls does with SQLite connections and the
# executor); malloc_info then lists one <heap> per arena glibc made.
PROGRAM = """
import ctypes, sys, tempfile, threading
limit = sys.argv[1] == "limited"
if limit:
    from relay_service.memory import limit_malloc_arenas
    assert limit_malloc_arenas()
start = threading.Barrier(8)
def work():
    start.wait()
    keep = [bytearray(4096) for _ in range(2000)]
    start.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile() as out:
    stream = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    print(open(out.name).read().count("<heap nr="))
"""


def arenas(mode: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    env.pop("MALLOC_ARENA_MAX", None)
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip())


def test_threads_share_two_malloc_arenas() -> None:
    assert arenas("default") > 2  # what glibc does on its own
    assert arenas("limited") <= 2


def test_an_operators_malloc_arena_max_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert limit_malloc_arenas() is False
