"""Client of the WhatsApp Graph API ``/{PHONE_NUMBER_ID}/calls`` endpoint."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..metrics import Metrics

logger = logging.getLogger(__name__)


class GraphApiError(Exception):
    """A Graph API error response (``{"error": {...}}``), a transport failure or a timeout."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: int | None = None,
        error_type: str | None = None,
        fbtrace_id: str | None = None,
        error_data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{message} (code {code}, HTTP {status})")
        self.message = message
        self.code = code
        self.status = status
        self.error_type = error_type
        self.fbtrace_id = fbtrace_id
        self.error_data = error_data or {}


class GraphTimeout(GraphApiError):
    """The Graph API did not answer within the configured timeout."""


TRANSIENT_CODES = frozenset({1, 2, 4, 17, 341, 613, 80007, 130429, 131016})
"""Graph error codes Meta documents as temporary (unknown/service errors, rate limits)."""
ALREADY_ENDED = 138004
"""The call was not found or has already ended."""


def is_transient(error: GraphApiError) -> bool:
    """Whether trying the same request again may succeed (timeouts, transport, 5xx, 429, ...)."""
    if isinstance(error, GraphTimeout) or error.status is None:
        return True
    if error.status >= 500 or error.status == 429:
        return True
    return error.code in TRANSIENT_CODES


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter for the idempotent actions (``terminate``, ``reject``).

    Attempt ``n`` (from 1) waits a random time in ``[0, min(cap, base * 2**(n-1))]`` before the
    next; no attempt starts after ``budget`` seconds (``None``: twice the request timeout).
    """

    attempts: int = 4
    base: float = 0.25
    cap: float = 2.0
    budget: float | None = None

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return rng.uniform(0.0, min(self.cap, self.base * 2 ** (attempt - 1)))


class GraphClient:
    """Calls actions (``pre_accept``, ``accept``, ``reject``, ``terminate``, ``connect``)."""

    def __init__(
        self,
        base_url: str,
        version: str,
        phone_number_id: str,
        access_token: str,
        *,
        timeout: float = 10.0,
        metrics: Metrics | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/{version}/{phone_number_id}/calls"
        self._token = access_token
        self._timeout = timeout
        self._metrics = metrics
        self.retry = retry or RetryPolicy()
        self._random = random.Random()
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def pre_accept(self, call_id: str, sdp: str) -> None:
        """Send our SDP answer so ICE and DTLS can start before the call is answered."""
        await self._call_action(call_id, "pre_accept", sdp)

    async def accept(
        self, call_id: str, sdp: str, biz_opaque_callback_data: str | None = None
    ) -> None:
        """Answer the call (media flows to the caller from now on)."""
        await self._call_action(call_id, "accept", sdp, biz_opaque_callback_data)

    async def reject(self, call_id: str) -> None:
        """Decline a ringing call (retried with backoff: declining twice is harmless)."""
        await self._with_retries(call_id, "reject")

    async def terminate(self, call_id: str) -> None:
        """End a call (retried with backoff: ending twice is harmless)."""
        await self._with_retries(call_id, "terminate")

    async def _with_retries(self, call_id: str, action: str) -> None:
        policy = self.retry
        budget = policy.budget if policy.budget is not None else 2 * self._timeout
        deadline = time.monotonic() + budget
        for attempt in range(1, policy.attempts + 1):
            try:
                await self._call_action(call_id, action, timeout=deadline - time.monotonic())
                return
            except GraphApiError as exc:
                if attempt > 1 and exc.code == ALREADY_ENDED:
                    return  # an earlier attempt ended it; only its reply was lost
                wait = policy.delay(attempt, self._random)
                last = attempt == policy.attempts or time.monotonic() + wait >= deadline
                if last or not is_transient(exc):
                    raise
                logger.warning(
                    "graph %s of %s failed (attempt %d of %d): %s; retrying in %.2f s",
                    action, call_id, attempt, policy.attempts, exc, wait,
                )  # fmt: skip
                if self._metrics is not None:
                    self._metrics.graph_retries.inc(action=action)
                await asyncio.sleep(wait)

    async def connect(self, to: str, sdp: str, biz_opaque_callback_data: str | None = None) -> str:
        """Start a business-initiated call with our SDP offer; returns the new call id."""
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "to": to,
            "action": "connect",
            "session": {"sdp_type": "offer", "sdp": sdp},
        }
        if biz_opaque_callback_data is not None:
            body["biz_opaque_callback_data"] = biz_opaque_callback_data
        reply = await self._post("connect", body)
        calls = reply.get("calls")
        if not (isinstance(calls, list) and calls and isinstance(calls[0], dict)):
            raise GraphApiError("connect reply without calls[0].id", status=200)
        return str(calls[0].get("id"))

    async def _call_action(
        self,
        call_id: str,
        action: str,
        sdp: str | None = None,
        biz_opaque_callback_data: str | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "call_id": call_id,
            "action": action,
        }
        if sdp is not None:
            body["session"] = {"sdp_type": "answer", "sdp": sdp}
        if biz_opaque_callback_data is not None:
            body["biz_opaque_callback_data"] = biz_opaque_callback_data
        reply = await self._post(action, body, timeout)
        if reply.get("success") is not True:
            raise GraphApiError(f"{action} was not successful: {reply!r}", status=200)

    async def _post(
        self, action: str, body: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Authorization": f"Bearer {self._token}"}
        limit = self._timeout if timeout is None else max(0.001, min(timeout, self._timeout))
        outcome = "error"
        started = time.monotonic()
        try:
            async with asyncio.timeout(limit):
                async with self._session.post(self.url, json=body, headers=headers) as response:
                    status = response.status
                    try:
                        reply = await response.json(content_type=None)
                    except ValueError:
                        reply = None
            if not isinstance(reply, dict):
                raise GraphApiError(f"{action}: reply is not a JSON object", status=status)
            if status >= 400 or "error" in reply:
                raise _error_from(action, status, reply)
            outcome = "ok"
            return reply
        except TimeoutError:
            outcome = "timeout"
            raise GraphTimeout(f"{action}: no answer within {limit:g} s") from None
        except aiohttp.ClientError as exc:
            raise GraphApiError(f"{action}: {exc}") from exc
        finally:
            logger.info("graph %s -> %s", action, outcome)
            if self._metrics is not None:
                self._metrics.graph_requests.inc(action=action, outcome=outcome)
                self._metrics.graph_seconds.labels(action=action).observe(
                    time.monotonic() - started
                )


def _error_from(action: str, status: int, reply: dict[str, Any]) -> GraphApiError:
    raw = reply.get("error")
    error: dict[str, Any] = raw if isinstance(raw, dict) else {}
    code = error.get("code")
    data = error.get("error_data")
    return GraphApiError(
        f"{action}: {error.get('message') or 'Graph API error'}",
        code=code if isinstance(code, int) else None,
        status=status,
        error_type=error.get("type") if isinstance(error.get("type"), str) else None,
        fbtrace_id=error.get("fbtrace_id") if isinstance(error.get("fbtrace_id"), str) else None,
        error_data=data if isinstance(data, dict) else None,
    )
