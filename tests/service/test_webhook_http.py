"""The webhook endpoint over HTTP: verification, signatures, duplicates, bad bodies."""

from __future__ import annotations

import asyncio
import logging

import pytest

from relay_service.whatsapp import payloads, signature

from .conftest import Running

PATH = "/webhook/whatsapp"
SECRET = "test-app-secret"


async def post(running: Running, raw: bytes, header: str | None = "sign") -> int:
    headers = {"Content-Type": "application/json"}
    if header == "sign":
        headers[signature.HEADER] = signature.sign(SECRET, raw)
    elif header is not None:
        headers[signature.HEADER] = header
    async with running.session.post(running.url + PATH, data=raw, headers=headers) as response:
        return response.status


def connect_body(call_id: str = "wacid.HTTP1") -> bytes:
    phone = "100000000000001"
    return payloads.encode(payloads.connect(phone, call_id, "491", "1555", "v=0\r\n"))


async def wait_for_calls(running: Running, count: int) -> None:
    for _ in range(100):
        if await running.service.storage.count_calls() >= count:
            return
        await asyncio.sleep(0.05)


async def test_health_and_metrics(running: Running) -> None:
    async with running.session.get(running.url + "/healthz") as response:
        assert response.status == 200
    async with running.session.get(running.url + "/metrics") as response:
        text = await response.text()
        assert response.status == 200
        assert "# TYPE relay_calls_active gauge" in text


@pytest.mark.parametrize(
    ("mode", "token", "status"),
    [
        ("subscribe", "test-verify-token", 200),
        ("subscribe", "wrong", 403),
        ("nope", "test-verify-token", 403),
    ],
)
async def test_verification_handshake(running: Running, mode: str, token: str, status: int) -> None:
    query = {"hub.mode": mode, "hub.verify_token": token, "hub.challenge": "1158201444"}
    async with running.session.get(running.url + PATH, params=query) as response:
        assert response.status == status
        if status == 200:
            assert response.content_type == "text/plain"
            assert await response.text() == "1158201444"


@pytest.mark.parametrize(
    ("header", "status"), [(None, 401), ("sha256=00ff", 403), ("garbage", 403)]
)
async def test_bad_signature_is_refused_and_nothing_stored(
    running: Running, header: str | None, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    assert await post(running, connect_body(), header) == status
    await asyncio.sleep(0.2)
    assert await running.service.storage.count_calls() == 0
    assert "signature" in caplog.text.lower()


async def test_signature_over_other_bytes_is_refused(running: Running) -> None:
    raw = connect_body()
    headers = {signature.HEADER: signature.sign(SECRET, raw + b" ")}
    async with running.session.post(running.url + PATH, data=raw, headers=headers) as response:
        assert response.status == 403
    assert await running.service.storage.count_calls() == 0


async def test_duplicate_delivery_makes_one_call(running: Running) -> None:
    raw = connect_body("wacid.DUP")
    assert await post(running, raw) == 200
    assert await post(running, raw) == 200
    await wait_for_calls(running, 1)
    await asyncio.sleep(0.3)
    calls = await running.service.storage.list_calls()
    assert [c.wa_call_id for c in calls] == ["wacid.DUP"]
    assert running.service.metrics.webhooks.value(result="duplicate") == 1


async def test_malformed_json_is_400_with_a_log_line(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    assert await post(running, b"{this is not json") == 400
    assert "malformed webhook" in caplog.text
    async with running.session.get(running.url + "/healthz") as response:
        assert response.status == 200


async def test_unknown_events_and_missing_contacts_are_acknowledged(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    unknown = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "changes": [
                    {"field": "calls", "value": {"calls": [{"id": "wacid.X", "event": "hold"}]}}
                ]
            }
        ],
    }
    assert await post(running, payloads.encode(unknown)) == 200
    status = payloads.status("100000000000001", "wacid.Y", "491", "RINGING")
    assert "contacts" not in status["entry"][0]["changes"][0]["value"]
    assert await post(running, payloads.encode(status)) == 200
    await asyncio.sleep(0.2)
    assert "call event 'hold'" in caplog.text
    assert "wacid.Y status RINGING" in caplog.text
    assert await running.service.storage.count_calls() == 0
