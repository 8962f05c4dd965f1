"""``run_eagerly``: RTCP handlers run at once, and correctly if one of them does wait."""

from __future__ import annotations

import asyncio
import logging

import pytest

from webrtc_ext.rawrtp import run_eagerly


async def test_a_coroutine_that_never_waits_has_finished_when_the_call_returns() -> None:
    done: list[str] = []

    async def inner() -> None:
        done.append("inner")

    async def handler() -> None:
        await inner()
        done.append("outer")

    run_eagerly(handler())
    assert done == ["inner", "outer"]


async def test_a_coroutine_that_waits_goes_on_when_its_future_is_done() -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    seen: list[object] = []

    async def handler() -> None:
        seen.append(await future)
        await asyncio.sleep(0)
        seen.append("after a bare yield")

    run_eagerly(handler())
    assert seen == []
    future.set_result(7)
    for _ in range(3):
        await asyncio.sleep(0)
    assert seen == [7, "after a bare yield"]


async def test_failures_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def fails_now() -> None:
        raise ValueError("bad report")

    async def fails_later() -> None:
        await future
        raise ValueError("bad later")

    async def waits_on_cancelled() -> None:
        await cancelled

    cancelled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with caplog.at_level(logging.ERROR, logger="webrtc_ext.rawrtp"):
        run_eagerly(fails_now())
        run_eagerly(fails_later())
        run_eagerly(waits_on_cancelled())
        future.set_result(None)
        cancelled.cancel()
        for _ in range(3):
            await asyncio.sleep(0)
    assert [r.exc_info[1].args[0] for r in caplog.records if r.exc_info and r.exc_info[1]] == [
        "bad report",
        "bad later",
    ]
