"""What an action sends for one entry: its parameters, its pending send (the intent the
ledger writes before the publish) and what the report says once it is confirmed."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Final

import orjson

from services.workbench.actions.ledger import PendingSend
from services.workbench.actions.names import Action
from services.workbench.actions.pika_link import delay_queue_name
from services.workbench.actions.report import format_delay, where_text
from services.workbench.codec import MessageRecord
from services.workbench.model import EntrySummary, attempt_header

CANCEL_EVENT_TYPE: Final = "payment.cancelled"


@dataclass(frozen=True, slots=True)
class ActionParams:
    """What one action does to each entry, as the operator confirmed it (validated,
    ``reason`` and ``note`` masked)."""

    action: Action
    delay_s: int = 0
    edited_body: bytes | None = None
    reason: str = ""
    note: str = ""
    cancel_exchange: str | None = None
    cancel_routing_key: str = ""
    force: bool = False  # send past the replay gate (actions.gate); the note says why

    @property
    def intent_with_claim(self) -> bool:
        """Whether an entry's intent is known before its stored message is read (a
        requeue; a cancel that publishes an event), so that the claim writes it: a
        retry's attempt number comes from the stored headers."""
        if self.action is Action.CANCEL:
            return self.cancel_exchange is not None
        return self.action is Action.REQUEUE


def pending_send(
    params: ActionParams,
    summary: EntrySummary,
    action_id: str,
    record: MessageRecord | None,
    *,
    operator: str,
    host: str,
    at: int,
    quorum_wait_queue: bool = False,
) -> PendingSend:
    """What publishing ``summary``'s entry sends (``record``: its stored message, needed
    by a retry only; a delayed retry goes through a quorum wait queue with
    ``quorum_wait_queue``). Raises ``ValueError`` when it cannot be sent."""
    if params.action is Action.CANCEL:
        exchange = params.cancel_exchange
        if exchange is None:
            raise ValueError("no cancel event configured")
        event = {
            "payment_id": summary.payment_id,
            "merchant": summary.merchant,
            "amount": summary.amount,
            "currency": summary.currency,
            "reason": params.reason,
            "operator": operator,
            "entry_id": summary.entry_id,
            "cancelled_at": datetime.datetime.fromtimestamp(at / 1000, datetime.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        }
        return PendingSend(
            action=Action.CANCEL,
            action_id=action_id,
            exchange=exchange,
            routing_key=params.cancel_routing_key,
            target=f"exchange '{exchange}' (routing key '{params.cancel_routing_key}')",
            operator=operator,
            host=host,
            at_ms=at,
            body=orjson.dumps(event),
            properties={
                "content_type": "application/json",
                "delivery_mode": 2,
                "message_id": action_id,
                "type": CANCEL_EVENT_TYPE,
                "timestamp": at // 1000,
                "app_id": "payops-console",
            },
        )
    origin = summary.origin
    if origin is None:  # refused before the claim; kept for safety
        raise ValueError("no origin queue to send it back to")
    exchange, routing_key = origin.exchange, origin.routing_key
    target = origin.describe()
    attempt = None
    if params.action is Action.RETRY:
        attempt = attempt_header(record.headers if record else {}) + 1
        if params.delay_s:
            if origin.queue is None:
                raise ValueError("a delayed retry needs the queue the message died in")
            routing_key = delay_queue_name(origin.queue, params.delay_s, quorum=quorum_wait_queue)
            after = format_delay(params.delay_s)
            target = f"queue '{origin.queue}' after {after} (via '{routing_key}')"
    return PendingSend(
        action=params.action,
        action_id=action_id,
        exchange=exchange,
        routing_key=routing_key,
        target=target,
        operator=operator,
        host=host,
        at_ms=at,
        attempt=attempt,
        delay_s=params.delay_s,
        body=params.edited_body,
    )


def done_detail(params: ActionParams, summary: EntrySummary, pending: PendingSend) -> str:
    """The report's detail of an entry whose message the broker confirmed."""
    where = where_text(summary)
    if params.action is Action.REQUEUE:
        return f"requeued to {where}"
    if params.action is Action.RETRY:
        text = f"retried through {where} (attempt {pending.attempt})"
        if params.delay_s:
            text += f" after {format_delay(params.delay_s)}"
        if params.edited_body is not None:
            text += ", body edited"
        return text
    return f"cancelled: {params.reason}; payment.cancelled published to {pending.target}"


class SameIntent(PendingSend):
    """A requeue's intent for another entry with the same origin as ``first``: the same
    intent under another action id. Made in a fraction of a :class:`PendingSend`'s time
    (thirteen frozen fields), and written as the same bytes :meth:`PendingSend.dumps`
    gives: ``first``'s JSON with the other action id."""

    __slots__ = ("_first", "_parts")
    _first: PendingSend
    _parts: tuple[bytes, bytes]

    def __init__(self, first: PendingSend, action_id: str, parts: tuple[bytes, bytes]) -> None:
        object.__setattr__(self, "_first", first)
        object.__setattr__(self, "_parts", parts)
        object.__setattr__(self, "action_id", action_id)

    def dumps(self) -> bytes:
        head, tail = self._parts
        action_id = self.action_id
        return action_id.encode() + b"|" + head + orjson.dumps(action_id) + tail


for _field in fields(PendingSend):  # every field but the action id: first's
    if _field.name != "action_id":
        setattr(SameIntent, _field.name, property(attrgetter(f"_first.{_field.name}")))


def intent_parts(first: PendingSend) -> tuple[bytes, bytes]:
    """``first``'s JSON around its action id (its only value that is the action id)."""
    _, _, blob = first.dumps().partition(b"|")
    quoted = orjson.dumps(first.action_id)
    head, sep, tail = blob.partition(b'"action_id":' + quoted)
    if not sep:
        raise ValueError("an intent without its action id")
    return head + b'"action_id":', tail
