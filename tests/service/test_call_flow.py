"""Whole calls: the simulated WhatsApp caller, the service, and a Python agent leg."""

from __future__ import annotations

from pathlib import Path

import pytest

from webrtc_ext.stats import DiagnosticFile, load_diagnostic_file

from .agent import Agent, until
from .conftest import Running

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("running", ["sqlite", "postgresql"], indirect=True)
async def test_agent_answers_hears_speaks_and_hangs_up(running: Running, tmp_path: Path) -> None:
    simulator = running.service.simulator
    assert simulator is not None
    agent = await running.agent()
    try:
        call_id = await simulator.place_call(audio="tone")
        ringing = await agent.wait_for_call("ringing")
        assert ringing["id"] == call_id and ringing["name"] == "Simulated Caller"
        await agent.answer(call_id)
        await agent.wait_for_call("human")
        sim_call = simulator.calls[call_id]
        await until(lambda: agent.loud_frames >= 25, what="caller's tone at the agent")
        await until(lambda: sim_call.peer.loud_frames >= 25, what="agent's tone at the caller")
        assert sim_call.state == "accepted"
        during = await metrics_text(running)
        replica = running.service.settings.replica_id
        assert f'relay_replica_calls_active{{replica="{replica}"}} 1.0' in during
        assert 'relay_answer_seconds_count{by="agent",direction="USER_INITIATED"} 1.0' in during
        assert 'relay_first_media_seconds_count{direction="USER_INITIATED"} 1.0' in during
        assert 'relay_graph_request_seconds_count{action="accept"} 1.0' in during
        kinds = [r["action"] for r in simulator.requests]
        assert kinds[:2] == ["pre_accept", "accept"]

        await agent.hangup(call_id)
        await agent.wait_for(lambda m: m["type"] == "ended" and m["call_id"] == call_id)
        await until(lambda: sim_call.state == "ended", what="WhatsApp leg ended")
        assert sim_call.end_status == "COMPLETED"
    finally:
        await agent.close()
    after = await metrics_text(running)
    assert f'relay_replica_calls_active{{replica="{replica}"}} 0.0' in after
    assert 'relay_graph_request_seconds_count{action="terminate"} 1.0' in after

    storage = running.service.storage
    record = await storage.find_call(call_id)
    assert record is not None
    assert (record.state, record.agent) == ("ended", "alice")
    assert record.end_reason == "hung up by alice"
    events = [e["event"] for e in record.timeline]
    assert events[:1] == ["created"] and "agent_answered" in events and events[-1] == "ended"
    files = {
        d.leg: stored_dump(await storage.read_diagnostic(d) or b"", tmp_path)
        for d in await storage.diagnostics(record.id)
    }
    assert set(files) == {"whatsapp", "browser"}
    whatsapp = files["whatsapp"].connections["whatsapp"]
    (remote,) = whatsapp.events_of("setRemoteDescription")
    assert remote.value.startswith("type: offer") and "a=ice-lite" in remote.value
    (inbound,) = whatsapp.stats_ids("inbound-rtp")
    assert whatsapp.latest(inbound)["packetsReceived"] > 0, "the caller's audio was counted"

    # The console's history API shows it, with the diagnostic file downloadable.
    async with running.session.get(f"{running.url}/api/calls/{record.id}") as response:
        detail = await response.json()
    assert detail["state"] == "ended" and len(detail["diagnostics"]) == 2
    first = detail["diagnostics"][0]
    async with running.session.get(
        f"{running.url}/api/calls/{record.id}/diagnostics/{first['id']}"
    ) as response:
        assert response.status == 200
        assert "attachment" in response.headers["Content-Disposition"]
        assert response.headers["Content-Type"] == "application/gzip"
        downloaded = stored_dump(await response.read(), tmp_path)
        assert downloaded.schema_version >= 1 and len(downloaded.connections) == 1


async def test_caller_hangs_up_while_ringing(running: Running) -> None:
    simulator = running.service.simulator
    assert simulator is not None
    agent = await running.agent()
    try:
        call_id = await simulator.place_call(audio="tone")
        await agent.wait_for_call("ringing")
        await simulator.hangup(call_id)
        ended = await agent.wait_for(lambda m: m["type"] == "ended")
        assert ended["call_id"] == call_id
        assert "COMPLETED" in ended["reason"]
    finally:
        await agent.close()
    record = await running.service.storage.find_call(call_id)
    assert record is not None and record.state == "ended"


async def test_shutdown_tells_the_agent_why_the_call_ended(running: Running) -> None:
    simulator = running.service.simulator
    assert simulator is not None
    agent = await running.agent()
    try:
        call_id = await simulator.place_call(audio="tone")
        await agent.wait_for_call("ringing")
        await running.service.stop(0)  # what Ctrl-C does first (SIGTERM drains first)
        ended = await agent.wait_for(lambda m: m["type"] == "ended", timeout=10)
        assert (ended["call_id"], ended["reason"]) == (call_id, "service shutting down")
    finally:
        await agent.close()


async def test_agent_calls_a_whatsapp_user(running: Running) -> None:
    simulator = running.service.simulator
    assert simulator is not None
    agent = await running.agent("bob", "builder")
    try:
        call_id = await agent.dial("4915112345678")
        connect = simulator.requests[0]
        assert connect["action"] == "connect" and connect["to"] == "4915112345678"
        assert connect["session"]["sdp_type"] == "offer"
        await agent.wait_for_call("human")
        sim_call = simulator.calls[call_id]
        await until(lambda: agent.loud_frames >= 25, what="user's audio at the agent")
        await until(lambda: sim_call.peer.loud_frames >= 25, what="agent's audio at the user")
        during = await metrics_text(running)
        assert 'relay_answer_seconds_count{by="user",direction="BUSINESS_INITIATED"} 1.0' in during
        assert 'relay_first_media_seconds_count{direction="BUSINESS_INITIATED"} 1.0' in during
        await agent.hangup(call_id)
        await agent.wait_for(lambda m: m["type"] == "ended" and m["call_id"] == call_id)
        await until(lambda: sim_call.state == "ended", what="WhatsApp leg ended")
    finally:
        await agent.close()
    record = await running.service.storage.find_call(call_id)
    assert record is not None
    assert (record.direction, record.state, record.agent) == ("BUSINESS_INITIATED", "ended", "bob")
    statuses = [e.get("status") for e in record.timeline if e["event"] == "status"]
    assert statuses == ["RINGING", "ACCEPTED"]
    assert [a["action"] for a in simulator.requests] == ["connect", "terminate"]


async def test_one_agent_per_call_and_two_calls_at_once(running: Running) -> None:
    import aiohttp

    simulator = running.service.simulator
    assert simulator is not None
    await running.login("alice", "wonderland")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        async with other.post(
            running.url + "/api/login", json={"name": "bob", "password": "builder"}
        ) as response:
            assert response.status == 200
        alice, bob = Agent(running.session, running.url), Agent(other, running.url)
        await alice.connect()
        await bob.connect()
        try:
            first = await simulator.place_call(user="4911111", audio="tone")
            second = await simulator.place_call(user="4922222", audio="tone")
            await alice.wait_for(
                lambda m: (
                    m["type"] == "calls"
                    and {c["id"] for c in m["calls"] if c["state"] == "ringing"} == {first, second}
                )
            )
            await alice.answer(first)
            with pytest.raises(AssertionError, match="already answered by alice"):
                await bob.answer(first)
            await bob.answer(second)
            await until(lambda: alice.loud_frames >= 10 and bob.loud_frames >= 10, what="audio")
            states = {
                c.wa_call_id: (c.state, c.agent) for c in running.service.router.calls.values()
            }
            assert states == {first: ("human", "alice"), second: ("human", "bob")}
        finally:
            await alice.close()
            await bob.close()


def stored_dump(content: bytes, directory: Path) -> DiagnosticFile:
    """A stored diagnostic file, loaded with the library's loader (as webrtc-diag does)."""
    path = directory / f"diagnostic-{len(list(directory.iterdir()))}.json.gz"
    path.write_bytes(content)
    return load_diagnostic_file(path)


async def metrics_text(running: Running) -> str:
    async with running.session.get(f"{running.url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return await response.text()
