"""The console's HTTP API: first load without a 401, the icon, history filters, wrap-up codes,
and the simulator's keypad."""

from __future__ import annotations

import aiohttp

from .agent import until
from .conftest import Running


async def test_first_load_has_no_401_and_an_icon(running: Running) -> None:
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(f"{running.url}/api/me") as response:
            assert response.status == 200
            assert (await response.json())["name"] is None
        async with anonymous.get(f"{running.url}/favicon.ico") as response:
            assert response.status == 200
            assert response.content_type == "image/svg+xml"
        async with anonymous.get(f"{running.url}/api/calls") as response:
            assert response.status == 401, "the history still needs a signed-in agent"
    await running.login()
    async with running.session.get(f"{running.url}/api/me") as response:
        me = await response.json()
    assert me["name"] == "alice" and "resolved" in me["wrap_up_codes"]
    assert me["agents"] == ["alice", "bob"] and me["supervisor"] is False


async def test_history_filters_and_wrap_up(running: Running) -> None:
    storage = running.service.storage
    first = await storage.create_call("wacid.A", "4915112345678", "1555", "USER_INITIATED", "Ann")
    second = await storage.create_call("wacid.B", "447700900123", "1555", "USER_INITIATED")
    assert first is not None and second is not None
    await storage.record_event(first, "agent_answered", state="human", agent="alice")
    await storage.record_event(
        first, "ended", state="ended", columns={"end_reason": "hung up by alice"}
    )
    await storage.record_event(
        second, "ended", state="ended", columns={"end_reason": "an agent did not answer in 60 s"}
    )
    await running.login()

    async def ids(query: str) -> list[int]:
        async with running.session.get(f"{running.url}/api/calls?{query}") as response:
            assert response.status == 200, await response.text()
            return [c["id"] for c in await response.json()]

    assert await ids("") == [second, first]
    assert await ids("number=+49 151") == [first]
    assert await ids("outcome=missed") == [second]
    assert await ids("agent=alice") == [first]
    assert await ids("since=2000-01-01&until=2000-01-02") == []
    async with running.session.get(f"{running.url}/api/calls?since=yesterday") as response:
        assert response.status == 400

    async with running.session.get(f"{running.url}/api/calls") as response:
        listed = {c["id"]: c for c in await response.json()}
    assert listed[first]["handled_by"] == ["alice"]
    assert listed[first]["end_words"] == "alice hung up"
    assert listed[second]["end_words"] == "No agent answered in time"
    assert listed[first]["created_at"].endswith("Z")

    url = f"{running.url}/api/calls/{first}/disposition"
    async with running.session.post(url, json={"code": "made up"}) as response:
        assert response.status == 400
    async with running.session.post(url, json={"code": "follow-up", "note": "call back"}) as r:
        assert r.status == 200
    async with running.session.get(f"{running.url}/api/calls/{first}") as response:
        detail = await response.json()
    assert detail["disposition"]["code"] == "follow-up"
    assert detail["disposition"]["note"] == "call back"
    assert detail["disposition"]["agent"] == "alice"


async def test_the_simulated_caller_presses_keys_from_the_api(running: Running) -> None:
    simulator = running.service.simulator
    assert simulator is not None
    agent = await running.agent()
    call_id = await simulator.place_call(audio="tone")
    url = f"{running.url}/api/simulator/calls/{call_id}/keys"
    async with running.session.post(url, json={"digits": "12a"}) as response:
        assert response.status == 400
    await agent.wait_for_call()
    await agent.answer(call_id)
    async with running.session.post(url, json={"digits": "7#"}) as response:
        assert response.status == 200
    router = running.service.router
    await until(lambda: "".join(router.calls[call_id].digits) == "7#", what="keys at the router")
    await agent.hangup(call_id)
    await agent.close()
