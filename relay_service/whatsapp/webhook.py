"""The aiohttp handlers of the WhatsApp webhook: verification ``GET`` and signed ``POST``."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from ..logs import bound_call
from ..metrics import Metrics
from . import signature
from .events import Deduplicator, MalformedWebhook, WebhookEvent, dedup_key, parse_webhook

logger = logging.getLogger(__name__)

EventHandler = Callable[[WebhookEvent], Coroutine[Any, Any, None]]


class WhatsAppWebhook:
    """Checks, parses and de-duplicates deliveries, then hands each new event on."""

    def __init__(
        self,
        verify_token: str,
        app_secret: str,
        handle: EventHandler,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
        metrics: Metrics,
    ) -> None:
        self.verify_token = verify_token
        self.app_secret = app_secret
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
        body = await request.read()
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
