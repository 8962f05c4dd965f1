"""Failover and drain of three replicas sharing one Redis and one database.

Three ``relay-service serve`` processes (Redis and PostgreSQL started here, the WhatsApp simulator
in this process as their Graph API) take calls whose webhooks are spread over them. Then:

- ``kill -9`` of one replica: ``recovery_s`` is the time from the kill until every call it
  owned is ended in the database and WhatsApp was told (goal: at most 15 s with the default
  10 s lease; ``recovery_vs_lease`` is that time over the lease);
- SIGTERM of another, whose callers hang up during the drain while new calls keep coming:
  ``drain_s`` is SIGTERM to exit, ``drain_dropped`` the calls it ended instead of its callers;
- ``stranded_calls``: calls left unfinished without a live owner at the end (must be 0).

Usage: ``python benchmarks/failover.py [--quick]`` (``--quick``: 5 s lease). Last line: JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis.asyncio import Redis

from relay_service.storage import Storage
from tests.servers import postgresql, redis_server
from tests.service.processes import (
    ServiceProcess,
    ended_reason,
    hosted_simulator,
    owners,
    place_call,
    replica_environ,
    start_all,
    wait_until,
)

CALLS_PER_REPLICA = 3


async def stranded(database_url: str, redis_url: str) -> int:
    """Unfinished calls whose owner holds no live lease (or that nobody owns)."""
    client = Redis.from_url(redis_url, decode_responses=True)
    storage = Storage(database_url)
    try:
        owned = await owners(redis_url)
        live = {key.split(":", 2)[2] async for key in client.scan_iter(match="relay:replica:*")}
        return sum(
            1 for row in await storage.unfinished_calls() if owned.get(row.wa_call_id) not in live
        )
    finally:
        await storage.close()
        await client.aclose()


async def scenario(directory: Path, lease_ttl: float) -> dict[str, Any]:
    with postgresql() as postgres, redis_server(directory / "redis") as redis:
        database_url = postgres.create_database("failover")
        async with hosted_simulator() as (simulator, graph_url):
            environ = replica_environ(
                graph_url,
                database_url,
                RELAY_REDIS_URL=redis.url,
                RELAY_LEASE_TTL=str(lease_ttl),
                RELAY_RING_TIMEOUT="600",
            )
            replicas = [ServiceProcess(directory, f"r{i}", environ) for i in (1, 2, 3)]
            r1, r2, r3 = replicas
            try:
                await start_all([r1])
                await start_all([r2, r3])
                print(f"3 replicas up (lease {lease_ttl:g} s)", flush=True)
                placed = [
                    await place_call(simulator, replica)
                    for _ in range(CALLS_PER_REPLICA)
                    for replica in replicas
                ]
                await wait_until(lambda: len(simulator.calls) == len(placed))
                await wait_until(
                    lambda: all(simulator.calls[c].state == "pre_accepted" for c in placed),
                    what="every call taken",
                )
                owned = await owners(redis.url)
                lost = [c for c in placed if owned.get(c) == "r1"]
                simulator.webhook_url = r3.url + "/webhook/whatsapp"

                killed = time.monotonic()
                r1.kill()

                async def recovered() -> bool:
                    told = all(simulator.calls[c].state == "ended" for c in lost)
                    reasons = [await ended_reason(database_url, c) for c in lost]
                    return told and all(r == "replica lost" for r in reasons)

                await wait_until(recovered, timeout=lease_ttl * 4, what="recovery")
                recovery_s = time.monotonic() - killed
                print(f"kill -9 r1: its {len(lost)} calls ended in {recovery_s:.1f} s", flush=True)

                draining = [c for c in placed if owned.get(c) == "r2"]
                terminated = time.monotonic()
                r2.terminate()
                await wait_until(lambda: _not_ready(r2), what="r2 draining")
                late = [await place_call(simulator, r2) for _ in range(2)]  # handed to r3
                await asyncio.sleep(1.0)
                simulator.webhook_url = r2.url + "/webhook/whatsapp"
                for call_id in draining:  # the callers finish while r2 drains
                    await simulator.hangup(call_id)
                code = await r2.wait_exit(40)
                drain_s = time.monotonic() - terminated
                reasons = [await ended_reason(database_url, c) for c in draining]
                dropped = sum(1 for r in reasons if r != "whatsapp: COMPLETED")
                await wait_until(
                    lambda: all(simulator.calls[c].state == "pre_accepted" for c in late),
                    what="late calls taken",
                )
                print(
                    f"SIGTERM r2: {len(draining)} calls drained in {drain_s:.1f} s "
                    f"(exit {code}), {dropped} dropped; {len(late)} new calls taken by r3",
                    flush=True,
                )
                left = await stranded(database_url, redis.url)
                print(f"stranded calls: {left}", flush=True)
                return {
                    "calls": len(placed) + len(late),
                    "stranded_calls": left,
                    "recovery_s": round(recovery_s, 2),
                    "lease_ttl_s": lease_ttl,
                    "recovery_vs_lease": round(recovery_s / lease_ttl, 2),
                    "recovered_calls": len(lost),
                    "drain_dropped": dropped,
                    "drain_s": round(drain_s, 2),
                    "drain_exit_code": code,
                }
            finally:
                for replica in replicas:
                    replica.stop_quietly()


async def _not_ready(replica: ServiceProcess) -> bool:
    return await replica.status("/readyz") == 503


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--quick", action="store_true", help="a 5 s lease instead of 10 s")
    options = arguments.parse_args()
    with tempfile.TemporaryDirectory(prefix="relay-failover-") as directory:
        result = asyncio.run(scenario(Path(directory), 5.0 if options.quick else 10.0))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
