"""Three ``relay-service serve`` processes sharing one PostgreSQL and one Redis (both real).

The WhatsApp simulator, in the test's process, is their Graph API and sends each webhook to
whichever replica the test chooses, as Meta's load balancer would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from redis.asyncio import Redis

from relay_service.simulators.whatsapp import WhatsAppSimulator

from ..servers import PostgreSQL, redis_server
from .processes import (
    ServiceProcess,
    ended_reason,
    hosted_simulator,
    owners,
    place_call,
    replica_environ,
    signed_in_agent,
    sim_state,
    start_all,
    stored_call,
    wait_until,
)

pytestmark = pytest.mark.integration

LEASE_TTL = 3.0


@dataclass
class Cluster:
    replicas: list[ServiceProcess]
    simulator: WhatsAppSimulator
    database_url: str
    redis_url: str

    def webhooks_to(self, replica: ServiceProcess) -> None:
        self.simulator.webhook_url = replica.url + "/webhook/whatsapp"

    async def owner(self, wa_call_id: str) -> str | None:
        return (await owners(self.redis_url)).get(wa_call_id)


@contextlib.asynccontextmanager
async def running_cluster(
    tmp_path: Path, postgres: PostgreSQL, drain_timeout: str = "20"
) -> AsyncIterator[Cluster]:
    """Redis, a fresh PostgreSQL database, the simulator and three replicas."""
    database_url = postgres.create_database("replicas")
    with redis_server(tmp_path / "redis") as redis:
        async with hosted_simulator() as (simulator, graph_url):
            environ = replica_environ(
                graph_url,
                database_url,
                RELAY_REDIS_URL=redis.url,
                RELAY_LEASE_TTL=str(LEASE_TTL),
                RELAY_RING_TIMEOUT="600",
                RELAY_DRAIN_TIMEOUT=drain_timeout,
            )
            replicas = [ServiceProcess(tmp_path, name, environ) for name in ("r1", "r2", "r3")]
            try:
                # One process migrates the new database first; the others find it up to date.
                await start_all(replicas[:1])
                await start_all(replicas[1:])
                yield Cluster(replicas, simulator, database_url, redis.url)
            finally:
                for replica in replicas:
                    replica.stop_quietly()


@pytest.fixture
async def cluster(tmp_path: Path, postgres_server: PostgreSQL) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path, postgres_server) as running:
        yield running


async def test_an_agent_on_another_replica_answers_and_webhooks_reach_the_owner(
    cluster: Cluster,
) -> None:
    r1, r2, r3 = cluster.replicas
    async with signed_in_agent(r2) as agent:
        call_id = await place_call(cluster.simulator, r1)  # r1 takes the call: it owns it
        await wait_until(lambda: sim_state(cluster.simulator, call_id) == "pre_accepted")
        assert await cluster.owner(call_id) == "r1"
        listed = await agent.wait_for_call("ringing")  # r2's console lists r1's call
        assert listed["id"] == call_id and listed["replica"] == "r1"
        await agent.answer(call_id)  # signalling forwarded to r1; the media goes to r1
        await wait_until(lambda: sim_state(cluster.simulator, call_id) == "accepted")
        await wait_until(lambda: agent.loud_frames > 25, what="caller heard by the agent")
        peer = cluster.simulator.calls[call_id].peer
        await wait_until(lambda: peer.loud_frames > 25, what="agent heard by the caller")
        row = await stored_call(cluster.database_url, call_id)
        assert row is not None and row.agent == "alice" and row.state == "human"
        # Hold and resume from r2's console act on r1's call.
        assert agent.ws is not None
        await agent.ws.send_json({"type": "hold", "call_id": call_id})
        await agent.wait_for_call("held")
        await agent.ws.send_json({"type": "resume", "call_id": call_id})
        await agent.wait_for_call("human")
        # The user hangs up; Meta's terminate reaches r3, which hands it to r1.
        cluster.webhooks_to(r3)
        await cluster.simulator.hangup(call_id)
        ended = await agent.wait_for(lambda m: m["type"] == "ended" and m["call_id"] == call_id)
        assert ended["reason"] == "whatsapp: COMPLETED"
    assert await ended_reason(cluster.database_url, call_id) == "whatsapp: COMPLETED"
    assert await cluster.owner(call_id) is None
    assert "forwarded to its owner r1" in r3.log()


async def test_an_outbound_call_s_webhooks_reach_the_replica_that_dialled(cluster: Cluster) -> None:
    r1, r2, _ = cluster.replicas
    cluster.webhooks_to(r1)  # Meta's status and answer go to r1; r2's agent dialled
    async with signed_in_agent(r2) as agent:
        call_id = await agent.dial("15557654321")
        assert await cluster.owner(call_id) == "r2"
        await agent.wait_for_call("human")
        await wait_until(lambda: agent.loud_frames > 25, what="the user heard by the agent")
        await agent.hangup(call_id)
        await wait_until(partial(ended_reason, cluster.database_url, call_id))
    row = await stored_call(cluster.database_url, call_id)
    assert row is not None and row.end_reason == "hung up by alice"
    assert [e["event"] for e in row.timeline].count("connected") == 1
    assert f"event for call {call_id} forwarded to its owner r2" in r1.log()


async def test_kill_9_of_the_owner_ends_its_calls_on_whatsapp_and_in_the_database(
    cluster: Cluster,
) -> None:
    r1, r2, r3 = cluster.replicas
    async with signed_in_agent(r2) as agent:
        answered = await place_call(cluster.simulator, r1)
        await agent.wait_for_call("ringing")
        await agent.answer(answered)
        ringing = await place_call(cluster.simulator, r1)
        await wait_until(lambda: sim_state(cluster.simulator, ringing) == "pre_accepted")
        await wait_until(lambda: sim_state(cluster.simulator, answered) == "accepted")
        cluster.webhooks_to(r3)
        r1.kill()
        # Within the lease (plus a renewal period) another replica ends both, once.
        for call_id in (answered, ringing):
            await wait_until(
                partial(ended_reason, cluster.database_url, call_id),
                timeout=LEASE_TTL * 4,
                what="call of the dead replica ended",
            )
            assert await ended_reason(cluster.database_url, call_id) == "replica lost"
        assert cluster.simulator.calls[answered].end_status == "COMPLETED"  # terminate
        assert cluster.simulator.calls[ringing].end_status == "REJECTED"  # reject
        message = await agent.wait_for(lambda m: m["type"] == "ended" and m["call_id"] == answered)
        assert message["reason"] == "replica lost"
    row = await stored_call(cluster.database_url, answered)
    assert row is not None and row.agent == "alice"  # what was stored before the crash stays

    async def late_terminate_recorded() -> bool:
        row = await stored_call(cluster.database_url, answered)
        return row is not None and any(e["event"] == "whatsapp_terminate" for e in row.timeline)

    await wait_until(late_terminate_recorded, what="Meta's later terminate stored")
    assert await owners(cluster.redis_url) == {}
    told = [r["action"] for r in cluster.simulator.requests if r.get("call_id") == answered]
    assert told.count("terminate") == 1  # one replica recovered it, not two


async def test_sigterm_drains_a_replica_without_dropping_its_calls(cluster: Cluster) -> None:
    r1, r2, _ = cluster.replicas
    async with signed_in_agent(r2) as agent:
        live = await place_call(cluster.simulator, r1)
        await agent.wait_for_call("ringing")
        await agent.answer(live)
        await wait_until(lambda: sim_state(cluster.simulator, live) == "accepted")
        r1.terminate()
        await wait_until(lambda: _status_is(r1, 503), what="r1 not ready")
        # A new call whose webhook still reaches r1 is taken by a replica that is not draining.
        new = await place_call(cluster.simulator, r1)
        await wait_until(lambda: sim_state(cluster.simulator, new) == "pre_accepted")
        assert await cluster.owner(new) in ("r2", "r3")
        heard = agent.loud_frames
        await wait_until(lambda: agent.loud_frames > heard + 25, what="media while draining")
        cluster.webhooks_to(r2)
        await cluster.simulator.hangup(live)
        assert await r1.wait_exit(30) == 0
    assert await ended_reason(cluster.database_url, live) == "whatsapp: COMPLETED"
    assert await ended_reason(cluster.database_url, new) is None  # still ringing elsewhere
    assert cluster.simulator.calls[new].state == "pre_accepted"


async def test_a_rolling_restart_loses_no_call_but_those_in_flight_on_the_restarted_one(
    tmp_path: Path, postgres_server: PostgreSQL
) -> None:
    async with running_cluster(tmp_path, postgres_server, drain_timeout="1") as cluster:
        await _rolling_restart(cluster)


async def _rolling_restart(cluster: Cluster) -> None:
    placed: list[str] = []
    in_flight_on_restarted: set[str] = set()
    replicas = cluster.replicas
    for index, replica in enumerate(replicas):
        others = [r for r in replicas if r is not replica]
        placed.append(await place_call(cluster.simulator, replica))
        placed.append(await place_call(cluster.simulator, others[index % 2]))
        await wait_until(lambda: all(_taken(cluster, c) for c in placed), what="calls taken")
        in_flight_on_restarted |= {
            c for c, owner in (await owners(cluster.redis_url)).items() if owner == replica.name
        }
        replica.terminate()
        await wait_until(partial(_status_is, replica, 503), what="readiness off")
        during = await place_call(cluster.simulator, replica)  # reaches it while draining
        placed.append(during)
        await wait_until(partial(cluster.owner, during), what="call taken")
        assert await cluster.owner(during) != replica.name  # a replica that is not draining
        assert await replica.wait_exit(30) == 0
        placed.append(await place_call(cluster.simulator, others[0]))
        replica.start()
        await replica.wait_ready()
        placed.append(await place_call(cluster.simulator, replica))
    await wait_until(lambda: all(_taken(cluster, c) for c in placed), what="every call taken")
    survivors = [c for c in placed if c not in in_flight_on_restarted]
    assert survivors and set(survivors) | in_flight_on_restarted == set(placed)
    for call_id in survivors:
        assert sim_state(cluster.simulator, call_id) == "pre_accepted", call_id
        assert await ended_reason(cluster.database_url, call_id) is None, call_id
    for call_id in in_flight_on_restarted:
        assert await ended_reason(cluster.database_url, call_id) == "service shutting down"
    # The survivors are live calls held by a live replica: the users can still end them.
    cluster.webhooks_to(replicas[0])
    for call_id in survivors:
        await cluster.simulator.hangup(call_id)
    for call_id in survivors:
        await wait_until(partial(ended_reason, cluster.database_url, call_id))
        assert await ended_reason(cluster.database_url, call_id) == "whatsapp: COMPLETED"


def _taken(cluster: Cluster, call_id: str) -> bool:
    return sim_state(cluster.simulator, call_id) in ("pre_accepted", "ended")


async def _status_is(replica: ServiceProcess, status: int) -> bool:
    return await replica.status("/readyz") == status


async def test_a_redis_that_loses_its_data_ends_no_live_call(cluster: Cluster) -> None:
    r1, r2, _ = cluster.replicas
    call_id = await place_call(cluster.simulator, r1)
    await wait_until(lambda: sim_state(cluster.simulator, call_id) == "pre_accepted")
    client = Redis.from_url(cluster.redis_url)
    try:
        await client.flushall()  # a Redis restarted without persistence
    finally:
        await client.aclose()
    await wait_until(partial(cluster.owner, call_id), what="ownership recorded again")
    assert await cluster.owner(call_id) == "r1"
    await asyncio.sleep(LEASE_TTL * 2.5)  # several recovery checks by every replica
    assert sim_state(cluster.simulator, call_id) == "pre_accepted"
    assert await ended_reason(cluster.database_url, call_id) is None
    async with signed_in_agent(r2) as agent:  # and the call can still be answered
        await agent.answer(call_id)
        await wait_until(lambda: sim_state(cluster.simulator, call_id) == "accepted")
