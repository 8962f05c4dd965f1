"""The router as the narrow :class:`~relay_service.assist.AiHost` of one call."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from webrtc_ext import PeerConnectionConfig

from .bridge import MediaBridge
from .settings import Settings

if TYPE_CHECKING:
    from .call import Call
    from .router import CallRouter


class CallAiHost:
    """The router as the :class:`~relay_service.assist.AiHost` of one call."""

    def __init__(self, router: CallRouter, call: Call) -> None:
        self._router = router
        self._call = call

    @property
    def settings(self) -> Settings:
        """The service's settings."""
        return self._router.settings

    @property
    def call_id(self) -> str:
        """The WhatsApp call id."""
        return self._call.wa_call_id

    @property
    def bridge(self) -> MediaBridge:
        """The call's media bridge."""
        return self._call.bridge

    def peer_config(self) -> PeerConnectionConfig:
        """The configuration of a new leg."""
        return self._router.peer_config()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> object:
        """Run ``coroutine`` in the background."""
        return self._router.spawn(coroutine)

    def notify(self, kind: str, **data: Any) -> None:
        """Tell the console."""
        self._router.notify(kind, self._call, **data)

    async def store_event(self, event: str, **fields: Any) -> None:
        """Append to the call's timeline."""
        storage = self._router.storage
        await self._router.write(
            self._call, lambda db_id: storage.record_event(db_id, event, **fields)
        )

    async def store_segment(self, speaker: str, text: str) -> None:
        """Store a transcript segment."""
        storage = self._router.storage
        await self._router.write(
            self._call, lambda db_id: storage.add_transcript_segment(db_id, speaker, text)
        )

    async def store_tool_call(
        self, name: str, arguments: dict[str, Any], output: str, ok: bool
    ) -> None:
        """Store a tool call."""
        storage = self._router.storage
        await self._router.write(
            self._call, lambda db_id: storage.add_tool_call(db_id, name, arguments, output, ok)
        )

    def count_leg(self, leg: str, outcome: str) -> None:
        """Count a Realtime leg's outcome."""
        self._router.metrics.realtime_legs.inc(leg=leg, outcome=outcome)

    async def transferred(self, reason: str, summary: str) -> None:
        """The assistant asked for a human; ``summary`` is for the person taking over."""
        if summary:
            self._call.handover = summary
            await self.store_event("handover", summary=summary)
        await self._router.transfer(self._call, reason)

    async def assistant_lost(self, reason: str) -> None:
        """The assistant's leg dropped."""
        await self._router.assistant_lost(self._call, reason)
