"""Recovery after a crash: finish, release or report the actions a crash interrupted.

An action runs the protocol of :mod:`services.workbench.actions.ledger`
(lease, claim, intent, publish, finish). Recovery (:func:`recover`, run at
start by the console and the CLI) looks at every claimed entry. If its run's
lease is live, the entry belongs to a running action elsewhere and is left
alone (reported as in progress) - unless the lease names a process on this
machine that no longer exists (a crash here needs no minute's wait).
Otherwise it *fences* the run - replaces the missing lease with a
``fenced:`` marker (kept a week), so a stalled holder that wakes up can no
longer write its intent - and then:

- no ``sending`` field for this action id: the message was never handed to
  the broker; the entry is released back to ``parked`` (reported, to be
  acted on again);
- a ``sending`` field for this action id: the message may be in the target
  queue. It is *not* republished automatically (that could duplicate it);
  the entry stays claimed and is reported **in doubt** - unconfirmed, as
  every confirm is recorded as it arrives - until :func:`resolve` (one entry)
  or :func:`resolve_many` (in bulk) is told ``delivered`` (it is there: mark the action done),
  ``republish`` (publish it again with the *same* action id, so a consumer
  can de-duplicate, then mark it done) or ``release`` (it is not there: back
  to ``parked``).

Hence at every moment each message is parked (or claimed, which is still
parked), in its target queue, or recorded as cancelled.

Recovery and resolve ride through a Redis failover
(:func:`~services.links.redis_client.through_failover`) in every call that is safe to
repeat: their reads; the fence (a second run finds the lease holding its own
``fenced:`` marker, or the dead owner's lease already taken over to it, and answers
"fenced" again); the release (``finish.lua`` answers a repeat as the first run); the
resolve's finishes (the ledger's). The audit record (an ``XADD``) is not repeated: a
failover that strikes it stops the run, which recover or resolve run again finish.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, ParamSpec, TypeVar

import orjson

from services.links.headers import ACTION_ID_HEADER
from services.links.redis_client import through_failover
from services.workbench.actions.ledger import (
    ActionLedger,
    Finish,
    PendingSend,
    now_ms,
    publish_item,
    run_of,
)
from services.workbench.actions.publisher import ActionPublisher
from services.workbench.actions.report import ActionOutcome
from services.workbench.codec import CodecError, decode_value
from services.workbench.model import AuditRecord, ClaimResult, EntryState, ParkedEntry
from services.workbench.store import ParkingStore

UNCONFIRMED: Final = (
    "unconfirmed - the broker's confirm was never recorded (confirms are recorded as they"
    " arrive), so the message may already be there or may never have arrived; republish"
    " it (same payops-action-id: consumers that de-duplicate on it see it once)"
)
"""What is known of every in-doubt entry: a RabbitMQ queue cannot be searched for a
message without consuming it, so whether the message is there is not knowable."""

ResolveHow = Literal["delivered", "republish", "release"]
RESOLVE_HOWS: Final[tuple[ResolveHow, ...]] = ("delivered", "republish", "release")


@dataclass(frozen=True, slots=True)
class RecoveredEntry:
    """A claimed entry found by :func:`recover`.

    ``target`` is where the message was (or would have been) sent; ``since_ms``
    when the action claimed it or announced the publish; ``note`` what recovery
    did or why it left the entry alone.
    """

    entry_id: str
    dlq: str
    payment_id: str | None
    action: str
    action_id: str
    operator: str
    target: str
    since_ms: int
    note: str


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What :func:`recover` found.

    ``released``: interrupted before anything was sent, back to ``parked``.
    ``in_doubt``: interrupted after the publish was announced; the message may
    be in its target queue; still claimed until resolved.
    ``in_progress``: held by an action that is still running elsewhere.
    """

    released: tuple[RecoveredEntry, ...] = ()
    in_doubt: tuple[RecoveredEntry, ...] = ()
    in_progress: tuple[RecoveredEntry, ...] = ()

    @property
    def clean(self) -> bool:
        """Nothing was interrupted."""
        return not (self.released or self.in_doubt or self.in_progress)

    def headline(self) -> str:
        if self.clean:
            return "no interrupted actions"
        parts = []
        if self.released:
            parts.append(f"{len(self.released):,} released (never sent)")
        if self.in_doubt:
            parts.append(f"{len(self.in_doubt):,} in doubt (may already be in the target queue)")
        if self.in_progress:
            parts.append(f"{len(self.in_progress):,} still being acted on elsewhere")
        return "interrupted actions: " + ", ".join(parts)


T = TypeVar("T")
P = ParamSpec("P")


async def _through(
    ledger: ActionLedger,
    what: str,
    call: Callable[P, Awaitable[T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``call(*args, **kwargs)`` riding through a failover (see the module docstring): it
    must be safe to repeat."""
    return await through_failover(
        lambda: call(*args, **kwargs), what=f"recovery's {what}", client=ledger.redis
    )


def _owner_text(lease_value: str) -> str:
    try:
        owner = orjson.loads(lease_value.removeprefix("live:"))
    except orjson.JSONDecodeError:
        return lease_value
    if not isinstance(owner, dict):
        return lease_value
    return f"{owner.get('operator', '?')} on {owner.get('host', '?')} (pid {owner.get('pid', '?')})"


async def recover(
    ledger: ActionLedger,
    dlqs: Iterable[str],
    *,
    operator: str,
    host: str,
    ours_ended: bool = False,
) -> RecoveryReport:
    """Find actions interrupted by a crash and settle what can be settled safely
    (see the module docstring); appends one audit record per DLQ where it found any.
    ``ours_ended``: every action of this process is over (one stopped at once may
    have left its lease behind), so its leases do not mean "in progress"."""
    store = ledger.store
    released: list[RecoveredEntry] = []
    in_doubt: list[RecoveredEntry] = []
    in_progress: list[RecoveredEntry] = []
    by = orjson.dumps({"operator": operator, "host": host, "pid": os.getpid(), "at": now_ms()})
    for dlq in dict.fromkeys(dlqs):
        entries = await _through(ledger, "read", store.in_flight, dlq)
        if not entries:
            continue
        fences: dict[str, tuple[bool, str]] = {}
        in_flight = [e.entry_id for e in entries]
        pendings = await _through(ledger, "read", ledger.pending_of, dlq, in_flight)
        done_here: list[RecoveredEntry] = []
        doubt_here: list[RecoveredEntry] = []
        for entry, raw_pending in zip(entries, pendings, strict=True):
            action_id = entry.action_id or ""
            run_id = run_of(action_id)
            if run_id not in fences:
                fences[run_id] = await _through(
                    ledger, "fence", ledger.fence, dlq, run_id, by.decode(), ours_ended=ours_ended
                )
            fenced, lease = fences[run_id]
            pending = _pending_for(raw_pending, action_id)
            found = RecoveredEntry(
                entry_id=entry.entry_id,
                dlq=dlq,
                payment_id=entry.summary.payment_id,
                action=entry.action or "",
                action_id=action_id,
                operator=entry.operator or "",
                target=pending.target if pending else "",
                since_ms=(pending.at_ms if pending else entry.updated_at_ms) or 0,
                note="",
            )
            if not fenced:
                in_progress.append(
                    _noted(
                        found,
                        f"held by a running action of {_owner_text(lease)} (if that process"
                        " died, its lease expires within a minute; run recover again then)",
                    )
                )
                continue
            if pending is None:
                error = (
                    f"{found.action or 'action'} by {found.operator or '?'} was interrupted"
                    " before the message was sent; released by recovery - act on it again"
                )
                result = await _through(
                    ledger, "release", store.release, dlq, entry.entry_id, action_id, error
                )
                if result.ok:
                    done_here.append(_noted(found, error))
                continue
            doubt_here.append(
                _noted(
                    found,
                    f"{found.action} by {found.operator} was interrupted after publishing to"
                    f" {pending.target}: {UNCONFIRMED}",
                )
            )
        released.extend(done_here)
        in_doubt.extend(doubt_here)
        if done_here or doubt_here:
            ids = tuple(e.entry_id for e in (*done_here, *doubt_here))
            await _audit(
                ledger,
                dlq,
                "recover",
                (operator, host),
                entry_ids=ids,
                target=dlq,
                result=f"released {len(done_here)}, in doubt {len(doubt_here)}",
                detail="; ".join(
                    [
                        *sorted(
                            {f"released: {e.action} run {run_of(e.action_id)}" for e in done_here}
                        ),
                        *(f"in doubt: {e.entry_id} -> {e.target}" for e in doubt_here[:50]),
                    ]
                ),
            )
    return RecoveryReport(tuple(released), tuple(in_doubt), tuple(in_progress))


def _noted(entry: RecoveredEntry, note: str) -> RecoveredEntry:
    return RecoveredEntry(
        entry.entry_id,
        entry.dlq,
        entry.payment_id,
        entry.action,
        entry.action_id,
        entry.operator,
        entry.target,
        entry.since_ms,
        note,
    )


def pending_target(raw: bytes | None, action_id: str) -> str:
    """Where the pending send of ``action_id`` went ("" when there is none)."""
    pending = _pending_for(raw, action_id)
    return pending.target if pending else ""


def _pending_for(raw: bytes | None, action_id: str) -> PendingSend | None:
    if not raw or not action_id or not raw.startswith(action_id.encode() + b"|"):
        return None
    try:
        return PendingSend.loads(raw)
    except (ValueError, KeyError, TypeError):
        return None


async def resolve(
    ledger: ActionLedger,
    publisher: ActionPublisher | None,
    dlqs: Iterable[str],
    entry_id: str,
    how: ResolveHow,
    *,
    operator: str,
    host: str,
) -> ActionOutcome:
    """Settle one in-doubt entry (see the module docstring).

    ``delivered``: the message is in its target queue - mark the action done.
    ``republish``: publish it again with the same action id, then mark it done
    (a returned or unconfirmed republish leaves it in doubt).
    ``release``: the message is not there - back to ``parked``.
    """
    if how not in RESOLVE_HOWS:
        raise ValueError(f"resolve how must be one of {', '.join(RESOLVE_HOWS)}, not {how!r}")
    store = ledger.store
    entry = await _through(ledger, "read", store.locate, entry_id, dlqs)
    if entry is None:
        return ActionOutcome(entry_id, None, False, "failed", "no such entry")
    payment = entry.summary.payment_id
    if entry.state is not EntryState.CLAIMED or not entry.action_id:
        return ActionOutcome(
            entry_id, payment, False, "skipped", f"not in doubt: the entry is {entry.state}"
        )
    dlq = entry.dlq
    action_id = entry.action_id
    by = orjson.dumps({"operator": operator, "host": host, "pid": os.getpid(), "at": now_ms()})
    fenced, lease = await _through(
        ledger, "fence", ledger.fence, dlq, run_of(action_id), by.decode()
    )
    if not fenced:
        return ActionOutcome(
            entry_id, payment, False, "skipped", f"still being acted on by {_owner_text(lease)}"
        )
    [raw] = await _through(ledger, "read", ledger.pending_of, dlq, [entry_id])
    pending = _pending_for(raw, action_id)
    if pending is None:
        return ActionOutcome(
            entry_id,
            payment,
            False,
            "failed",
            "not in doubt: nothing was sent for this action; run recover to release it",
        )
    outcome = await _resolve_one(ledger, publisher, entry, pending, how=how, operator=operator)
    await _audit(
        ledger,
        dlq,
        "resolve",
        (operator, host),
        entry_ids=(entry_id,),
        target=pending.target,
        result=f"{how}: {outcome.status}",
        detail=f"{pending.action} {action_id}: {outcome.detail}",
        action_id=action_id,
    )
    return outcome


async def _audit(
    ledger: ActionLedger,
    dlq: str,
    action: str,
    who: tuple[str, str],
    *,
    entry_ids: tuple[str, ...],
    target: str,
    result: str,
    detail: str,
    action_id: str = "",
) -> None:
    """An audit record of recovery or a resolve (``who``: operator and host)."""
    operator, host = who
    record = AuditRecord(
        ts=now_ms(),
        operator=operator,
        host=host,
        action=action,
        entry_ids=entry_ids,
        target=target,
        result=result,
        detail=detail[:8000],
        action_id=action_id,
    )
    await ledger.store.append_audit(dlq, record)


async def _resolve_one(
    ledger: ActionLedger,
    publisher: ActionPublisher | None,
    entry: ParkedEntry,
    pending: PendingSend,
    *,
    how: ResolveHow,
    operator: str,
) -> ActionOutcome:
    [outcome] = await _resolve_chunk(
        ledger, publisher, entry.dlq, [(entry, pending)], how=how, operator=operator
    )
    return outcome


async def _resolve_chunk(
    ledger: ActionLedger,
    publisher: ActionPublisher | None,
    dlq: str,
    ready: Sequence[tuple[ParkedEntry, PendingSend]],
    *,
    how: ResolveHow,
    operator: str,
) -> list[ActionOutcome]:
    """Settle in-doubt entries of one DLQ: one publish batch (republish) and one
    finish script call; outcomes in ``ready`` order."""
    outcomes: dict[str, ActionOutcome] = {}
    finishes: list[Finish] = []
    details: dict[str, str] = {}
    if how == "republish":
        if publisher is None:
            raise ValueError("republish needs a publisher")
        sent = await publisher.publish_many([publish_item(e.record, p) for e, p in ready])
    for index, (entry, pending) in enumerate(ready):
        entry_id, action_id = entry.entry_id, pending.action_id
        if how == "release":
            error = f"in doubt, released by {operator}: the message was not in {pending.target}"
            finishes.append(Finish(entry_id, action_id, None, error=error))
            details[entry_id] = "released back to parked"
            continue
        if how == "republish":
            if not sent[index].ok:
                outcomes[entry_id] = ActionOutcome(
                    entry_id,
                    entry.summary.payment_id,
                    False,
                    "failed",
                    f"republish to {pending.target} failed ({sent[index].detail}); still in doubt",
                )
                continue
            detail = f"republished to {pending.target} by {operator} with the same action id"
        else:
            detail = f"resolved by {operator}: delivered to {pending.target}"
        finishes.append(
            Finish(
                entry_id, action_id, pending.final_state, detail=detail, sent_at_ms=pending.at_ms
            )
        )
        details[entry_id] = detail
    replies = await ledger.finish(dlq, finishes)
    payments = {e.entry_id: e.summary.payment_id for e, _ in ready}
    for finish, reply in zip(finishes, replies, strict=True):
        entry_id = finish.entry_id
        outcomes[entry_id] = _finished(entry_id, payments[entry_id], reply, details[entry_id])
    return [outcomes[e.entry_id] for e, _ in ready]


async def resolve_many(
    ledger: ActionLedger,
    publisher: ActionPublisher | None,
    found: Sequence[RecoveredEntry],
    how: ResolveHow,
    *,
    operator: str,
    host: str,
    chunk: int = 500,
) -> list[ActionOutcome]:
    """Settle in-doubt entries found by :func:`recover` in bulk, the same way for all
    (see :func:`resolve`): ``chunk`` entries per read, publish batch and finish call,
    one audit record per DLQ. An entry that is no longer in doubt with the action id
    recovery saw (someone resolved it meanwhile) is skipped."""
    if how not in RESOLVE_HOWS:
        raise ValueError(f"resolve how must be one of {', '.join(RESOLVE_HOWS)}, not {how!r}")
    store = ledger.store
    outcomes: list[ActionOutcome] = []
    by_dlq: dict[str, list[RecoveredEntry]] = {}
    for item in found:
        by_dlq.setdefault(item.dlq, []).append(item)
    for dlq, items in by_dlq.items():
        here: list[ActionOutcome] = []
        for start in range(0, len(items), chunk):
            part = items[start : start + chunk]
            ids = [f.entry_id for f in part]
            entries = await _through(ledger, "read", store.get_many, dlq, ids)
            raws = await _through(ledger, "read", ledger.pending_of, dlq, ids)
            ready: list[tuple[ParkedEntry, PendingSend]] = []
            for item, entry, raw in zip(part, entries, raws, strict=True):
                if entry is None:
                    here.append(
                        ActionOutcome(item.entry_id, None, False, "failed", "no such entry")
                    )
                    continue
                pending = _pending_for(raw, item.action_id)
                if entry.state is not EntryState.CLAIMED or entry.action_id != item.action_id:
                    here.append(
                        ActionOutcome(
                            item.entry_id,
                            entry.summary.payment_id,
                            False,
                            "skipped",
                            f"not in doubt any more: the entry is {entry.state}",
                        )
                    )
                elif pending is None:
                    here.append(
                        ActionOutcome(
                            item.entry_id,
                            entry.summary.payment_id,
                            False,
                            "failed",
                            "not in doubt: nothing was sent for this action; run recover",
                        )
                    )
                else:
                    ready.append((entry, pending))
            if ready:
                here.extend(
                    await _resolve_chunk(ledger, publisher, dlq, ready, how=how, operator=operator)
                )
        outcomes.extend(here)
        counts = Counter(o.status for o in here)
        await _audit(
            ledger,
            dlq,
            "resolve",
            (operator, host),
            entry_ids=tuple(o.entry_id for o in here),
            target=dlq,
            result=f"{how} (bulk): done {counts['done']:,}, skipped {counts['skipped']:,},"
            f" failed {counts['failed']:,}",
            detail="; ".join(f"{o.entry_id}: {o.detail}" for o in here if o.status != "done"),
        )
    return outcomes


def _finished(
    entry_id: str, payment: str | None, result: ClaimResult, detail: str
) -> ActionOutcome:
    if result.ok:
        return ActionOutcome(entry_id, payment, True, "done", detail)
    return ActionOutcome(
        entry_id,
        payment,
        False,
        "failed",
        f"the entry changed meanwhile: it is {result.state} by {result.operator}",
    )


# --------------------------------------------------------------------------- evidence


@dataclass(frozen=True, slots=True)
class CameBack:
    """Proof that an in-doubt entry's message reached its target queue: a later dead
    letter, parked as ``entry_id`` in ``dlq``, carries the same ``payops-action-id``
    (it was in the queue, a consumer took it, and it failed again)."""

    entry_id: str
    dlq: str
    dead_at_ms: int


async def delivery_evidence(
    store: ParkingStore, found: Sequence[RecoveredEntry], dlqs: Iterable[str], *, batch: int = 500
) -> dict[str, CameBack]:
    """For the in-doubt entries ``found``: which of them came back (see :class:`CameBack`),
    by their entry id. Reads the headers of every entry of ``dlqs`` once.

    This is the only sound evidence of delivery short of consuming the target queue:
    a message still waiting there, or consumed without failing again, leaves no trace
    that can be read without taking it off the queue (``basic.get`` and a requeue would
    mark it redelivered), so an entry without this proof is *unknown*, not undelivered."""
    wanted = {f.action_id: f.entry_id for f in found if f.action_id}
    proofs: dict[str, CameBack] = {}
    if not wanted:
        return proofs
    marker = ACTION_ID_HEADER.encode()
    for dlq in dict.fromkeys(dlqs):
        async for summaries in store.iter_summaries(dlq):
            for start in range(0, len(summaries), batch):
                part = summaries[start : start + batch]
                pipe = store.redis.pipeline(transaction=False)
                for summary in part:
                    pipe.hget(store.entry_key(dlq, summary.entry_id), "headers")
                for summary, raw in zip(part, await pipe.execute(), strict=True):
                    if not raw or marker not in raw:
                        continue
                    action_id = _action_id_in(raw)
                    doubted = wanted.get(action_id or "")
                    if doubted is not None and doubted != summary.entry_id:
                        proofs[doubted] = CameBack(
                            summary.entry_id, dlq, summary.dead_lettered_at_ms
                        )
    return proofs


def _action_id_in(raw: bytes) -> str | None:
    try:
        headers = orjson.loads(raw)
        value = decode_value(headers.get(ACTION_ID_HEADER)) if isinstance(headers, dict) else None
    except (orjson.JSONDecodeError, CodecError):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None
