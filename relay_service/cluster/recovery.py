"""Ending calls that no live process holds: left by a previous run, or by a replica that died.

Such a call has a row without ``ended_at`` and nobody holding its media. It is ended as a live
call would be, minus the media: WhatsApp is told (``terminate`` once accepted, ``reject``
before), and the row keeps what was stored so far, with the reason :data:`REPLICA_LOST`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from ..callstate import (
    CallMachine,
    CallState,
    CloseCall,
    Fault,
    IllegalTransition,
    SendToWhatsApp,
    transition,
)
from ..storage import CallRecord, Storage, utcnow
from ..whatsapp.events import CallTerminate
from ..whatsapp.graph import GraphApiError, GraphClient

logger = logging.getLogger(__name__)

REPLICA_LOST = "replica lost"
ANSWERED_EVENTS = frozenset({"accepted", "connected", "agent_answered", "assistant_answered"})


def was_accepted(record: CallRecord) -> bool:
    """Whether WhatsApp accepted the call (then ``terminate`` ends it, else ``reject``)."""
    if record.direction == "BUSINESS_INITIATED":
        return True  # an outbound call is never rejected by its caller, only terminated
    return any(entry.get("event") in ANSWERED_EVENTS for entry in record.timeline)


def stored_machine(record: CallRecord) -> CallMachine:
    """The life-cycle state of a stored call, as far as its row tells it."""
    try:
        state = CallState(record.state)
    except ValueError:
        state = CallState.RINGING
    return CallMachine(state, agent=record.agent, accepted=was_accepted(record))


async def end_orphaned_call(
    storage: Storage, graph: GraphClient, record: CallRecord, reason: str = REPLICA_LOST
) -> bool:
    """End one unfinished call nobody holds; false if it had already ended."""
    current = await storage.get_call(record.id)
    if current is None or current.ended_at is not None:
        return False
    try:  # the call's state machine decides, as for a live call: terminate, reject or nothing
        _, actions = transition(stored_machine(current), Fault("replica_lost", reason))
    except IllegalTransition:
        return False
    tell = next((a.action for a in actions if isinstance(a, SendToWhatsApp)), None)
    closing = next(a for a in actions if isinstance(a, CloseCall))
    # Recorded first: Meta's terminate webhook may come back before the Graph API's reply.
    await storage.record_event(
        current.id,
        "ended",
        state=str(CallState.ENDED),
        reason=closing.reason,
        columns={"ended_at": utcnow(), "end_reason": closing.reason},
    )
    told = "nothing to tell"
    if tell is not None:
        try:
            await (graph.terminate if tell == "terminate" else graph.reject)(current.wa_call_id)
            told = "ok"
        except GraphApiError as exc:  # the call may be over at Meta already: recorded
            told = f"failed: {exc}"
        await storage.record_event(current.id, "whatsapp_told", action=tell, result=told)
    logger.warning(
        "call %s ended: %s (told WhatsApp %s: %s)", current.wa_call_id, reason, tell, told
    )
    return True


async def end_orphaned_calls(
    storage: Storage,
    graph: GraphClient,
    held: Callable[[CallRecord], bool] = lambda record: False,
    reason: str = REPLICA_LOST,
) -> list[str]:
    """End, in parallel, every unfinished call for which ``held`` is false; their WhatsApp ids."""
    orphans = [record for record in await storage.unfinished_calls() if not held(record)]
    return await end_records(storage, graph, orphans, reason)


async def end_records(
    storage: Storage, graph: GraphClient, records: Iterable[CallRecord], reason: str = REPLICA_LOST
) -> list[str]:
    """End these unfinished calls in parallel; the WhatsApp ids of those this ended."""
    records = list(records)
    results = await asyncio.gather(
        *(end_orphaned_call(storage, graph, record, reason) for record in records),
        return_exceptions=True,
    )
    ended: list[str] = []
    for record, result in zip(records, results, strict=True):
        if isinstance(result, BaseException):
            logger.error("ending orphaned call %s failed", record.wa_call_id, exc_info=result)
        elif result:
            ended.append(record.wa_call_id)
    return ended


async def record_late_terminate(storage: Storage, event: CallTerminate, reason: str) -> bool:
    """Store Meta's ``terminate`` of a call no process holds (ended by recovery, or orphaned)."""
    record = await storage.find_call(event.call_id)
    if record is None:
        return False
    columns = {} if record.ended_at is not None else {"ended_at": utcnow(), "end_reason": reason}
    await storage.record_event(
        record.id,
        "whatsapp_terminate",
        state="ended" if columns else None,
        status=event.status,
        reason=reason,
        duration=event.duration,
        columns=columns,
    )
    logger.info("terminate recorded for call %s not held here: %s", event.call_id, reason)
    return True
