"""relay_service._pools gives the pages of CPython's free small-object pools back, and the
objects that stay, and every object made afterwards, are intact.

Run in a child process: the allocator hook is process-wide.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from relay_service import memory


def test_the_extension_is_built() -> None:
    assert memory._pools is not None, "relay_service._pools was not built: a C compiler is needed"


CHILD = textwrap.dedent(
    """
    import gc, random, sys
    from relay_service import _pools, memory

    def rss_mb():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024

    assert memory.watch_python_arenas()
    made = [(i, str(i), [i, -i]) for i in range(400_000)]
    kept = made[::400]  # one object in ~every pool stays: the arenas cannot go back
    del made
    gc.collect()
    before = rss_mb()
    assert _pools.tracked() > 20
    released = memory.release_free_pools()
    after = rss_mb()
    print(f"released {released / 1e6:.1f} MB, RSS {before:.1f} -> {after:.1f} MB")
    assert released > 40e6, released
    assert before - after > 0.8 * released / 2**20, (before, after, released)
    assert all(t[0] == int(t[1]) == t[2][0] == -t[2][1] for t in kept)

    # The allocator goes on: objects of every size class, made and freed in random order,
    # with releases between, hold what was written in them.
    rng = random.Random(7)
    live = {}
    for step in range(60_000):
        if rng.random() < 0.55 or not live:
            size = rng.randrange(0, 500)
            live[step] = (bytes([step % 251]) * size, step)
        else:
            key = rng.choice(list(live)) if step % 97 == 0 else next(iter(live))
            data, written = live.pop(key)
            assert data == bytes([written % 251]) * len(data)
        if step % 5_000 == 0:
            gc.collect()
            memory.release_free_pools()
    for key, (data, written) in live.items():
        assert data == bytes([written % 251]) * len(data) and key == written
    assert all(t[0] == int(t[1]) == t[2][0] == -t[2][1] for t in kept)
    sys._debugmallocstats()  # walks every pool: consistent after the releases
    print("intact")
    """
)


def test_free_pools_go_back_and_what_stays_is_intact() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "intact" in result.stdout


def test_without_the_hook_nothing_is_released() -> None:
    code = "from relay_service import _pools; print(_pools.release(), _pools.tracked())"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["(0,", "0)", "0"]
