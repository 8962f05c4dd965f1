"""The C allocator's side of the process's memory (glibc): how many arenas it may keep, and
giving back what a burst of calls freed.

Python's small objects are not glibc's: CPython keeps them in 1 MiB arenas, each kept as long
as a single object lives in it, so :func:`return_free_memory` gives back only what native code
and larger Python objects freed. ``PYTHONMALLOC=malloc`` would put every object in glibc's heap;
measured, it costs more than it returns (docs/performance.md, fifth round).

CPython's arenas themselves keep their free pools resident: after a burst of calls, a few
long-lived objects made during the calls keep most of the arenas the calls took. With the
optional ``relay_service._pools`` extension built, :func:`watch_python_arenas` (at start) and
:func:`release_free_pools` (when calls end) give those free pools' pages back.

glibc gives each thread that allocates while another holds the main arena an arena of its
own (up to 8 per core), and keeps it for the life of the process. The service's threads
(SQLite connections, the executor that writes diagnostic files and checks passwords)
allocate little and rarely, yet each arena keeps its pages: a burst of calls left ~1 MB of
arenas behind. Two arenas are plenty for them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from collections.abc import Callable

logger = logging.getLogger(__name__)

M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter number of ``M_ARENA_MAX`` (``MALLOC_ARENA_MAX``)."""
MALLOC_ARENAS = 2


def limit_malloc_arenas(count: int = MALLOC_ARENAS) -> bool:
    """At most ``count`` glibc malloc arenas from now on; false if not glibc or already set.

    An operator's ``MALLOC_ARENA_MAX`` (read by glibc at start) wins: nothing is changed then.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    if not mallopt(M_ARENA_MAX, count):
        logger.warning("glibc refused M_ARENA_MAX=%d", count)
        return False
    return True


def _libc_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc: nothing to do
    return trim


_malloc_trim = _libc_malloc_trim()


def return_free_memory() -> bool:
    """Give the free pages glibc's allocator keeps back to the system (``malloc_trim``), so
    the process shrinks when its calls end; false if not glibc."""
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True


try:
    from . import _pools
except ImportError:  # built by pip install when a C compiler is there (setup.py)
    _pools = None  # type: ignore[assignment]


def watch_python_arenas() -> bool:
    """Note where CPython's small-object arenas are from now on (``relay_service._pools``),
    so :func:`release_free_pools` can reach their free pools; false if it is not built."""
    return _pools is not None and bool(_pools.install())


def release_free_pools() -> int:
    """Give back the pages of CPython's free pymalloc pools in the arenas made since
    :func:`watch_python_arenas`; the bytes given back (0 if not watching).

    A free pool's header page stays and the pool is marked unused, so the allocator sets it
    up afresh when it needs it; the rest of its 16 KiB read as zeros when touched again.
    """
    if _pools is None:
        return 0
    try:
        _, released = _pools.release()
    except ValueError:
        logger.warning("CPython's allocator is not laid out as expected: nothing released")
        return 0
    return int(released)
