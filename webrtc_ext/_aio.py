"""Small asyncio primitives that cost nothing until they are waited on.

A relayed call holds dozens of ``asyncio.Event`` objects (a sender has five, for its tasks'
starts and exits) that are set once and mostly never waited on. Each costs ~860 bytes
(tracemalloc): the object, its ``__dict__`` and the ``collections.deque`` of waiters it makes
at once. :class:`Flag` keeps the same interface in 56 bytes and makes its list of waiters only
when someone waits.
"""

from __future__ import annotations

import asyncio
from typing import Literal


class Flag:
    """``asyncio.Event``'s interface (``set``, ``clear``, ``is_set``, ``wait``), lighter.

    It behaves as ``asyncio.Event`` does: ``set()`` wakes every task waiting now, ``wait()``
    returns at once while the flag is set, and a ``clear()`` after ``set()`` does not take
    back the wake-up of the tasks that were waiting. It is not bound to an event loop: each
    wait uses the running one.
    """

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def __repr__(self) -> str:
        waiters = len(self._waiters or ())
        state = "set" if self._value else "unset"
        return f"<Flag [{state}{f', waiters:{waiters}' if waiters else ''}]>"

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._value

    def set(self) -> None:
        """Set the flag and wake every task waiting for it."""
        if self._value:
            return
        self._value = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        """Unset the flag: later calls to :meth:`wait` wait for the next :meth:`set`."""
        self._value = False

    async def wait(self) -> Literal[True]:
        """Return ``True`` once the flag is set (at once if it is set now)."""
        if self._value:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters
        if waiters is None:
            waiters = self._waiters = []
        waiters.append(waiter)
        try:
            await waiter
            return True
        finally:
            # Still listed only if it was cancelled: set() takes the whole list.
            if self._waiters is waiters and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    self._waiters = None
