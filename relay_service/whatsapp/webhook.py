"""The aiohttp handlers of the WhatsApp webhook: verification ``GET`` and signed ``POST``."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from .. import jsonlimits
from ..logs import bound_call
from ..metrics import Metrics
from . import signature
from .events import (
    Deduplicator,
    MalformedWebhook,
    UnknownEvent,
    WebhookEvent,
    dedup_key,
    parse_webhook,
)

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = jsonlimits.MAX_BYTES
"""Largest webhook body read, aiohttp's default ``client_max_size`` (a calling webhook with
an SDP is a few kilobytes)."""

EventHandler = Callable[[WebhookEvent], Coroutine[Any, Any, None]]


class WhatsAppWebhook:
    """Checks, parses and de-duplicates deliveries, then hands each new event on.

    Only events of ``phone_number_id`` are handed on: a Meta app's webhook receives the events
    of every phone number of the app, and another number's calls are not ours to answer.
    """

    def __init__(
        self,
        verify_token: str,
        app_secret: str,
        handle: EventHandler,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
        metrics: Metrics,
        *,
        phone_number_id: str,
    ) -> None:
        self.verify_token = verify_token
        self.app_secret = app_secret
        self.phone_number_id = phone_number_id
        self.handle = handle
        self.spawn = spawn
        self.metrics = metrics
        self.deduplicator = Deduplicator()

    def routes(self, path: str) -> list[web.RouteDef]:
        """The ``GET`` and ``POST`` routes at ``path``."""
        return [web.get(path, self.verify), web.post(path, self.receive)]

    async def verify(self, request: web.Request) -> web.Response:
        """The subscription handshake: echo ``hub.challenge`` if mode and token match."""
        query = request.query
        if (
            query.get("hub.mode") == "subscribe"
            and self.verify_token
            and hmac.compare_digest(
                query.get("hub.verify_token", "").encode(), self.verify_token.encode()
            )
        ):
            return web.Response(text=query.get("hub.challenge", ""), content_type="text/plain")
        logger.warning("webhook verification refused (mode %r)", query.get("hub.mode"))
        return web.Response(status=403, text="verification failed")

    async def receive(self, request: web.Request) -> web.Response:
        """A delivery: signature over the raw body first, then parse and dispatch."""
        if (request.content_length or 0) > MAX_BODY_BYTES:
            logger.warning("webhook of %s bytes refused", request.content_length)
            self.metrics.webhooks.inc(result="malformed")
            return web.Response(status=413, text="body too large")
        body = await request.read()  # aiohttp refuses a chunked body over client_max_size: 413
        header = request.headers.get(signature.HEADER)
        if header is None:
            logger.warning("webhook without %s refused", signature.HEADER)
            self.metrics.webhooks.inc(result="unsigned")
            return web.Response(status=401, text="missing signature")
        if not signature.verify(self.app_secret, body, header):
            logger.warning("webhook with a bad signature refused")
            self.metrics.webhooks.inc(result="bad_signature")
            return web.Response(status=403, text="bad signature")
        try:
            events = parse_webhook(body)
        except MalformedWebhook as exc:
            logger.warning("malformed webhook refused: %s", exc)
            self.metrics.webhooks.inc(result="malformed")
            return web.Response(status=400, text="malformed body")
        for event in events:
            if not self._ours(event):
                self.metrics.webhooks.inc(result="other_number")
                continue
            key = dedup_key(event)
            if key is not None and not self.deduplicator.first_time(key):
                logger.info("duplicate webhook event %s ignored", key)
                self.metrics.webhooks.inc(result="duplicate")
                continue
            self.metrics.webhooks.inc(result="accepted")
            # Meta wants a quick 200; setting up media takes longer. The task's logs name the call.
            with bound_call(getattr(event, "call_id", None)):
                self.spawn(self.handle(event))
        return web.Response(text="ok")

    def _ours(self, event: WebhookEvent) -> bool:
        """Whether ``event`` is for our phone number (logged when not)."""
        if isinstance(event, UnknownEvent) or event.phone_number_id == self.phone_number_id:
            return True
        logger.warning(
            "webhook event for phone number id %r ignored (ours is %r): %s %s",
            event.phone_number_id,
            self.phone_number_id,
            type(event).__name__,
            event.call_id,
        )
        return False
