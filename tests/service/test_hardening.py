"""Hostile or unlucky input at a running service: 4xx and a log line, never a 500 or a lost call.

Defects 8-11 of the service's hardening issue, each over real loopback HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import pytest

from relay_service.storage import Storage
from relay_service.whatsapp import payloads, signature

from .agent import until
from .conftest import Running, make_settings, running_service, start
from .test_webhook_http import SECRET, connect_body, post

PHONE = "100000000000001"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"entry":' + b"[" * 5000 + b"]" * 5000 + b"}",
        b"[" * 100_000,
        b'{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"calls","value":'
        + b'{"a":' * 1000
        + b"1"
        + b"}" * 1000
        + b"}]}]}",
        b'{"entry":[],"n":' + b"9" * 5000 + b"}",
    ],
    ids=["deep-array", "unclosed", "deep-object", "huge-integer"],
)
async def test_deep_or_huge_signed_json_is_400_not_500(
    running: Running, raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    assert await post(running, raw) == 400
    assert "malformed webhook refused" in caplog.text
    assert "Error handling request" not in caplog.text
    async with running.session.get(running.url + "/healthz") as response:
        assert response.status == 200


async def test_deep_console_message_is_an_error_reply_and_the_console_stays(
    running: Running,
) -> None:
    agent = await running.agent()
    try:
        assert agent.ws is not None
        await agent.ws.send_str('{"type":' + "[" * 5000 + "]" * 5000 + "}")
        reply = await agent.wait_for(lambda m: m["type"] == "error")
        assert reply["message"] == "bad message"
        await agent.ws.send_json({"type": "hangup", "call_id": "wacid.NONE"})
        reply = await agent.wait_for(lambda m: m["type"] == "error")
        assert "wacid.NONE" in reply["message"]  # the socket still answers
    finally:
        await agent.close()


async def test_another_phone_numbers_call_is_not_rung(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    simulator = running.service.simulator
    assert simulator is not None
    other = payloads.connect("999999999999999", "wacid.OTHER", "491", "1555", "v=0\r\n")
    assert await post(running, payloads.encode(other)) == 200
    terminate = payloads.terminate("999999999999999", "wacid.OTHER", "491", "1555")
    assert await post(running, payloads.encode(terminate)) == 200
    await asyncio.sleep(0.3)
    assert await running.service.storage.count_calls() == 0
    assert simulator.requests == []  # no pre_accept, no reject
    assert "phone number id '999999999999999' ignored" in caplog.text
    assert running.service.metrics.webhooks.value(result="other_number") == 2

    # Our own number's call is rung as before.
    assert await post(running, connect_body("wacid.OURS")) == 200
    await until(lambda: running.service.storage.count_calls(), what="our call stored")


async def test_unknown_call_statuses_cannot_crowd_out_a_real_calls_ringing(
    running: Running,
) -> None:
    simulator = running.service.simulator
    assert simulator is not None
    for number in range(100):  # statuses of calls this service never made
        body = payloads.status(PHONE, f"wacid.STRAY{number}", "491", "RINGING")
        assert await post(running, payloads.encode(body)) == 200
    simulator.statuses_before_reply = True  # RINGING overtakes the connect reply
    agent = await running.agent("bob", "builder")
    try:
        call_id = await agent.dial("4915112345678")
        await agent.wait_for_call("human")
        await agent.hangup(call_id)
        await agent.wait_for(lambda m: m["type"] == "ended" and m["call_id"] == call_id)
    finally:
        await agent.close()
    record = await running.service.storage.find_call(call_id)
    assert record is not None
    statuses = [e.get("status") for e in record.timeline if e["event"] == "status"]
    assert statuses == ["RINGING", "ACCEPTED"]
    assert len(running.service.router._early) <= 256


@pytest.mark.parametrize(
    "call_id", ["99999999999999999999999", "9223372036854775808", "-1", "0", "1e3", "%D9%A3"]
)
async def test_call_detail_of_an_impossible_id_is_404(running: Running, call_id: str) -> None:
    await running.login()
    for path in (f"/api/calls/{call_id}", f"/api/calls/{call_id}/diagnostics/{call_id}"):
        async with running.session.get(running.url + path) as response:
            assert response.status == 404, path


async def test_realtime_simulator_client_secrets_with_expires_after(tmp_path: Path) -> None:
    async with running_service(tmp_path, ASSISTANT_ENABLED="on") as running:
        url = running.service.settings.realtime_base_url + "/realtime/client_secrets"
        key = running.service.settings.openai_api_key
        headers = {"Authorization": f"Bearer {key}"}
        body = {
            "expires_after": {"anchor": "created_at", "seconds": 600},
            "session": {"type": "realtime", "model": "gpt-realtime"},
        }
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json=body, headers=headers) as response:
                assert response.status == 200
                secret = await response.json()
            assert secret["value"].startswith("ek_")
            assert secret["session"] == body["session"]
            assert isinstance(secret["expires_at"], int)
            bad_bodies: list[object] = [
                {"expires_after": {"anchor": "created_at", "seconds": 10**30}},
                {"expires_after": {"anchor": "created_at", "seconds": "600"}},
                {"expires_after": {"anchor": "now", "seconds": 600}},
                {"expires_after": 600},
                {"session": "realtime"},
                [1, 2],
            ]
            for bad in bad_bodies:
                async with session.post(url, json=bad, headers=headers) as response:
                    assert response.status == 400, bad
                    error = await response.json()
                    assert error["error"]["type"] == "invalid_request_error"


async def test_webhook_signature_still_checked_before_size_or_depth(running: Running) -> None:
    raw = b"[" * 5000
    headers = {signature.HEADER: signature.sign(SECRET + "x", raw)}
    async with running.session.post(
        running.url + "/webhook/whatsapp", data=raw, headers=headers
    ) as response:
        assert response.status == 403


async def test_a_call_still_closing_at_shutdown_records_its_end(tmp_path: Path) -> None:
    # Found by the fuzz test: a call ends in one of the router's tasks (here the ring timeout),
    # WhatsApp is slow to confirm, and the service stops meanwhile.
    settings = make_settings(tmp_path, RELAY_RING_TIMEOUT="1")
    service, runner = await start(settings)
    simulator = service.simulator
    assert simulator is not None
    try:
        simulator.faults["reject"] = "timeout*10"
        call_id = await simulator.place_call(audio="tone")
        await until(
            lambda: any(r["action"] == "reject" for r in simulator.requests), what="reject sent"
        )
    finally:
        await runner.cleanup()
    storage = Storage(settings.database_url)
    await storage.start()
    try:
        record = await storage.find_call(call_id)
    finally:
        await storage.close()
    assert record is not None
    assert record.state == "ended" and record.ended_at is not None
    assert "did not answer" in (record.end_reason or "")


async def test_a_supervisors_unusable_listening_offer_is_refused_cleanly(tmp_path: Path) -> None:
    # Found by the fuzz test: the bad SDP went to aiortc and came back as "internal error".
    async with running_service(tmp_path, RELAY_SUPERVISORS="bob:builder") as running:
        simulator = running.service.simulator
        assert simulator is not None
        supervisor = await running.agent("bob", "builder")
        try:
            call_id = await simulator.place_call(audio="tone")
            await supervisor.wait_for_call("ringing")
            assert supervisor.ws is not None
            await supervisor.ws.send_json({"type": "listen", "call_id": call_id, "sdp": "v=0\r\n"})
            reply = await supervisor.wait_for(lambda m: m["type"] == "error")
            assert reply["message"].startswith("the offer could not be used")
            call = running.service.router.calls[call_id]
            assert "listen-bob" not in call.legs and "bob" not in call.listeners
        finally:
            await supervisor.close()
