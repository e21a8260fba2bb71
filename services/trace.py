"""One payment's whole story: what the flow saw of it, its dead-letterings, its parking,
and every operator action on it, in time order (``payops trace``, the Timeline tab).

The sources, all in Redis:

- the payment record (:mod:`services.flow.payment_events`): every flow event of
  the payment the history-lease holder recorded (status, time, failure reason,
  whether it was replayed);
- the parked entries of the payment (:class:`ParkingStore`): each ``x-death`` hop
  (queue, reason, time; the hops of earlier cycles, before an earlier requeue,
  when no entry of the payment holds them already) and the parking itself;
- the audit trail of the entries' DLQs: who did what, when, with which note;
  an action step lists the flow events that followed it (``after``).

``x-death`` times are whole seconds (RabbitMQ writes them so): a hop is placed
at the end of its second, but never after the parking it led to, so it comes
after the failure event that caused it and before the parking.

Free text (reasons, notes, queue names) is masked for card numbers; the payment
id is an identifier (:func:`services.masking.json.mask_identifier` when shown).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Final

import redis.asyncio as aioredis

from services.config import Profile
from services.flow.payment_events import PaymentEvent, PaymentEventStore
from services.masking.json import mask_identifier, mask_sensitive_text
from services.trace_model import PaymentTrace, StepKind, TracedEntry, TraceStep
from services.workbench.codec import DeathRecord
from services.workbench.death_history import earlier_hops
from services.workbench.model import AuditRecord, ParkedEntry
from services.workbench.store import ParkingStore

_RANK: Final[dict[str, int]] = {"event": 0, "dead_letter": 1, "parked": 2, "action": 3}
AUDIT_SCAN: Final = 100
"""The most audit records read per entry (the newest)."""


async def trace_payment(client: aioredis.Redis, profile: Profile, payment_id: str) -> PaymentTrace:
    """Assemble ``payment_id``'s timeline from Redis (see the module docstring)."""
    events = await PaymentEventStore.for_profile(client, profile).events(payment_id)
    parking = ParkingStore(client, profile.redis_prefix)
    refs = await entries_of_payment(parking, payment_id, profile.dead_letter_queues)
    steps = [_event_step(event) for event in events]
    found = [e for e in [await parking.get(dlq, entry_id) for dlq, entry_id in refs] if e]
    # A requeued message that died again is parked as a new entry carrying the hops of
    # its earlier cycles (``payops-death-history``): those are the earlier entries' own.
    seen = {_death_key(d) for entry in found for d in entry.deaths}
    entries: list[TracedEntry] = []
    for entry in found:
        summary = entry.summary
        entries.append(TracedEntry(entry.dlq, entry.entry_id, entry.state, summary.parked_at_ms))
        steps.extend(_entry_steps(entry, seen))
        audit = await parking.read_audit(entry.dlq, count=AUDIT_SCAN, entry_id=entry.entry_id)
        for record in audit:
            started = await parking.audit_started(entry.dlq, record)
            steps.append(_action_step(record, entry, started.ts if started else record.ts))
    steps = _dedupe_actions(steps)
    ordered = sorted(steps, key=lambda s: (s.sort_ms, _RANK[s.kind]))
    entries.sort(key=lambda e: e.parked_at_ms)
    return PaymentTrace(payment_id, _with_after(ordered), tuple(entries), bool(events))


async def entries_of_payment(
    parking: ParkingStore, payment_id: str, dlqs: Sequence[str]
) -> list[tuple[str, str]]:
    """The ``(dlq, entry id)`` of every parked entry of ``payment_id``.

    Through the store's payment index (``ParkingStore.entries_for_payment``) where
    the store has one; else by reading each DLQ's rows (the entry summaries) and
    keeping those of the payment: one pass over the workbench, as ``payops dlq
    list`` does.
    """
    indexed = getattr(parking, "entries_for_payment", None)
    if indexed is not None:
        return [(str(dlq), str(entry_id)) for dlq, entry_id in await indexed(payment_id, dlqs)]
    wanted = mask_identifier(payment_id)  # summaries hold the id as shown
    found: list[tuple[str, str]] = []
    for dlq in dict.fromkeys(dlqs):
        async for batch in parking.iter_summaries(dlq):
            found.extend((dlq, s.entry_id) for s in batch if s.payment_id == wanted)
    return found


def _event_step(event: PaymentEvent) -> TraceStep:
    return TraceStep(
        event.at_ms,
        "event",
        event.status,
        mask_sensitive_text(event.reason) if event.reason else "",
        replayed=event.replayed,
        sort_ms=event.at_ms,
    )


def _death_key(death: DeathRecord) -> tuple[str, str, int, int | None]:
    return (death.queue, death.reason, death.count, death.time_ms)


def _entry_steps(
    entry: ParkedEntry, seen: set[tuple[str, str, int, int | None]]
) -> list[TraceStep]:
    """The entry's dead-letter hops and its parking; a hop of an earlier cycle only when
    no entry holds it already (``seen``, which it joins)."""
    parked_at = entry.summary.parked_at_ms
    earlier = []
    for death in reversed(earlier_hops(entry.record.headers)):
        if _death_key(death) not in seen:
            seen.add(_death_key(death))
            earlier.append(death)
    steps = []
    for death in [*earlier, *reversed(entry.deaths)]:  # oldest first
        at = death.time_ms
        if at is None:
            continue
        times = f" ({death.count} times)" if death.count > 1 else ""
        steps.append(
            TraceStep(
                at,
                "dead_letter",
                "dead-lettered",
                f"{mask_sensitive_text(death.reason)} in {mask_sensitive_text(death.queue)}{times}",
                dlq=entry.dlq,
                entry_id=entry.entry_id,
                exact=False,
                sort_ms=min(at + 999, parked_at - 1) if parked_at else at + 999,
            )
        )
    steps.append(
        TraceStep(
            parked_at,
            "parked",
            "parked",
            # Masked piece by piece: the entry id is an identifier, not free text.
            f"in {mask_sensitive_text(entry.dlq)} as entry {mask_identifier(entry.entry_id)}",
            dlq=entry.dlq,
            entry_id=entry.entry_id,
            sort_ms=parked_at,
        )
    )
    return steps


def _action_step(record: AuditRecord, entry: ParkedEntry, started_ms: int) -> TraceStep:
    """An audit record of an action on the entry: what, who, the note and the result.

    It is placed when the action started (``started_ms``, its ``started`` record's time),
    not when its record of what it did was written: by then the flow may already have
    processed the replayed message, whose events must come after the action.
    """
    parts = [p for p in (record.detail.strip(), record.result.strip()) if p]
    return TraceStep(
        started_ms,
        "action",
        record.action,
        mask_sensitive_text("; ".join(" ".join(p.split()) for p in parts)),
        operator=record.operator or None,
        dlq=entry.dlq,
        entry_id=entry.entry_id,
        sort_ms=started_ms,
    )


def _dedupe_actions(steps: Iterable[TraceStep]) -> list[TraceStep]:
    """One step per audit record (a record naming two entries of the payment is one act)."""
    out: list[TraceStep] = []
    seen: set[tuple[int, str, str | None, str]] = set()
    for step in steps:
        if step.kind == "action":
            key = (step.at_ms, step.what, step.operator, step.detail)
            if key in seen:
                continue
            seen.add(key)
        out.append(step)
    return out


def _with_after(steps: Sequence[TraceStep]) -> tuple[TraceStep, ...]:
    """Each action with the statuses of the flow events after it (to the next action)."""
    out = list(steps)
    for i, step in enumerate(out):
        if step.kind != "action":
            continue
        after: list[str] = []
        for later in out[i + 1 :]:
            if later.kind == "action":
                break
            if later.kind == "event":
                after.append(later.what)
        if after:
            out[i] = replace(step, after=tuple(after))
    return tuple(out)


__all__ = [
    "PaymentTrace",
    "StepKind",
    "TraceStep",
    "TracedEntry",
    "entries_of_payment",
    "trace_payment",
]
