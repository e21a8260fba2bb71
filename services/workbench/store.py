"""The parking store: dead-lettered messages kept whole in Redis, acted on exactly once.

Keys, entry ids and fields are laid out as :mod:`services.workbench.redis_layout`
says. Every write is one Lua script (``lua/*.lua``, loaded once, run by
EVALSHA) that appends its transition to the changes stream in the same atomic
step. What the store reads is in :mod:`services.workbench.store_reading`.

Parking is idempotent twice over: an entry id chosen before the first
attempt makes a retried batch a no-op, and a redelivered message consumes one
"parked, ack not yet confirmed" mark of its fingerprint (body, properties,
headers) instead of being parked again; a fresh delivery is always parked, so
two identical dead letters are two entries (see :mod:`services.workbench.parker`).

Each entry is parked with its cause (:mod:`services.workbench.cause`): the
flow's failure event of the payment when ``flow_failures`` knows one, else the
message's own error information or its dead-letter reason; :meth:`ParkingStore.set_cause`
puts the flow's cause on an entry when its event came after the parking.

The Redis client must be created with ``decode_responses=False``.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, cast

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from services.config import FieldPaths
from services.workbench import lua
from services.workbench.cause import Cause, FailureLookup
from services.workbench.codec import (
    DeathRecord,
    MessageRecord,
    encode_record,
    parse_x_death,
    record_fingerprint,
)
from services.workbench.durability import add_wait, check_wait, inspect_durability
from services.workbench.model import (
    FINAL_STATES,
    AuditRecord,
    ClaimResult,
    Durability,
    EntryState,
    EntrySummary,
    ParkedEntry,
    ParkResult,
    summarize,
)
from services.workbench.redis_layout import audit_fields, claim_result, summary_blob
from services.workbench.republish import requeue_template
from services.workbench.store_reading import StoreReader, entry_id_time_ms

__all__ = [
    "CHANGES_MAXLEN",
    "ParkItem",
    "ParkingStore",
    "entry_id_time_ms",
    "new_entry_id",
    "new_entry_ids",
    "new_session_id",
]

CHANGES_MAXLEN: Final = 100_000
CHUNK_BYTES: Final = 8 * 1024 * 1024
"""Most message bytes sent in one park script call (a pipeline holds several)."""
CHUNK_ITEMS: Final = 500

_PARKED: Final = 1
_COLLIDED: Final = 2
_PARKED_EARLIER: Final = 3
"""park.lua's statuses: parked now, id collision, parked by an earlier attempt of the item"""


@dataclass(frozen=True, slots=True)
class ParkItem:
    """One message to park. Keep ``entry_id`` with the delivery and pass it
    again when retrying a batch: the retry then cannot park it twice."""

    record: MessageRecord
    redelivered: bool = False
    entry_id: str | None = None


_id_lock = threading.Lock()
_id_counter = itertools.count(secrets.randbits(32))


def new_entry_id(now_ms: int | None = None) -> str:
    """A short, unique, time-sortable entry id (20 hex digits)."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    with _id_lock:
        suffix = next(_id_counter) & 0xFFFFFFFF
    return f"{ms & 0xFFFFFFFFFFFF:012x}{suffix:08x}"


def new_entry_ids(count: int) -> list[str]:
    """``count`` entry ids at once (see :func:`new_entry_id`): one clock read, one lock."""
    ms = int(time.time() * 1000) & 0xFFFFFFFFFFFF
    with _id_lock:
        suffixes = [next(_id_counter) & 0xFFFFFFFF for _ in range(count)]
    return [f"{ms:012x}{suffix:08x}" for suffix in suffixes]


def new_session_id() -> str:
    """A parker session's id: one channel's deliveries (see :meth:`ParkingStore.park_many`)."""
    return secrets.token_hex(8)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "\\*?[]" else c for c in text)


class ParkingStore(StoreReader):
    """Parked dead letters of one profile in Redis (see the module docstring)."""

    def __init__(self, redis: aioredis.Redis, prefix: str, *, min_replicas: int = 0) -> None:
        super().__init__(redis, prefix)
        self.min_replicas = min_replicas
        """Replicas ``WAIT`` must confirm an action's intent and (at least, see
        :func:`~services.config.replicas_to_confirm`) a parked batch: the profile's
        ``redis_min_replicas``."""
        self._park = redis.register_script(lua.script("park", clock=True))
        self._claim = redis.register_script(lua.script("claim", clock=True))
        self._finish = redis.register_script(lua.script("finish", clock=True))
        self._delete = redis.register_script(lua.script("delete_entries"))
        self._clear_marks = redis.register_script(lua.script("clear_marks"))
        self._set_cause = redis.register_script(lua.script("set_cause", clock=True))
        self._index_payments = redis.register_script(lua.script("index_payments"))
        self._payments_complete: set[str] = set()

    # ------------------------------------------------------------------ parking

    async def park(
        self,
        dlq: str,
        record: MessageRecord,
        fields: FieldPaths,
        redelivered: bool = False,
        *,
        entry_id: str | None = None,
        session: str | None = None,
        batch: int = 0,
        flow_failures: FailureLookup | None = None,
    ) -> ParkResult:
        """Park one message (see :meth:`park_many`)."""
        item = ParkItem(record, redelivered, entry_id)
        results = await self.park_many(
            dlq, [item], fields, session=session, batch=batch, flow_failures=flow_failures
        )
        return results[0]

    async def park_many(
        self,
        dlq: str,
        items: Sequence[ParkItem],
        fields: FieldPaths,
        *,
        ack_after: str = "write",
        session: str | None = None,
        batch: int = 0,
        flow_failures: FailureLookup | None = None,
    ) -> list[ParkResult]:
        """Park a batch in one pipelined round trip; results in item order.

        When this returns, Redis holds every item (as ``ack_after`` and
        :attr:`min_replicas` say, see :mod:`services.workbench.durability`): the caller
        may ack. On a Redis
        error calling again with the same items (same entry ids) is safe: what an
        earlier attempt stored is not stored twice and reads ``by_earlier_attempt``.
        ``session``, ``batch``: the parker session (one channel's deliveries) and
        batch the marks are kept under (None: a fresh session). ``flow_failures``
        looks the payments' failure events up (one more round trip): an entry
        whose payment failed on the flow gets that cause. Each result carries the
        row it was parked with (``summary``).
        """
        if not items:
            return []
        session = session or new_session_id()
        summaries: list[EntrySummary] = []
        deaths = [parse_x_death(item.record.headers) for item in items]  # parsed once
        for item, item_deaths in zip(items, deaths, strict=True):
            entry_id = item.entry_id or new_entry_id()
            parked_at = entry_id_time_ms(entry_id) or int(time.time() * 1000)
            summaries.append(
                summarize(dlq, entry_id, item.record, fields, parked_at, deaths=item_deaths)
            )
        if flow_failures is not None:
            summaries = await _with_flow_causes(summaries, flow_failures)
        prepared = [
            (summary.entry_id, _item_args(summary, item, item_deaths))
            for summary, item, item_deaths in zip(summaries, items, deaths, strict=True)
        ]
        results: list[ParkResult | None] = [None] * len(items)
        pending = list(range(len(items)))
        while pending:
            chunks = _chunks(pending, prepared)
            replies = await self._run_park_chunks(
                dlq, chunks, prepared, ack_after, (session, batch)
            )
            collided: list[int] = []
            for chunk, reply in zip(chunks, replies, strict=True):
                for position, index in enumerate(chunk):
                    result_id = reply[2 * position].decode()
                    status = int(reply[2 * position + 1])
                    if status == _COLLIDED:
                        collided.append(index)
                    else:  # 1 parked now; 3 by an earlier attempt, 0 recognised
                        results[index] = ParkResult(
                            result_id,
                            status == _PARKED,
                            summaries[index],
                            by_earlier_attempt=status == _PARKED_EARLIER,
                        )
            for index in collided:  # practically never: re-park under a fresh id
                entry_id = new_entry_id()
                summary = _renamed(summaries[index], entry_id)
                summaries[index] = summary
                prepared[index] = (entry_id, _item_args(summary, items[index]))
            pending = collided
        return [result for result in results if result is not None]

    async def _run_park_chunks(
        self,
        dlq: str,
        chunks: list[list[int]],
        prepared: list[tuple[str, list[Any]]],
        ack_after: str,
        marks: tuple[str, int],
    ) -> list[Any]:
        keys = self.keys(dlq)
        for attempt in range(2):
            pipe = self.redis.pipeline(transaction=False)
            for chunk in chunks:
                names = [keys.idx, keys.fp, keys.changes, keys.unacked, keys.marks(*marks)]
                names.append(keys.payments)
                args: list[Any] = [CHANGES_MAXLEN, len(chunk), keys.marks(marks[0])]
                for index in chunk:
                    entry_id, item_args = prepared[index]
                    names.append(keys.entry(entry_id))
                    args.extend(item_args)
                pipe.evalsha(self._park.sha, len(names), *names, *args)
            pipe.sadd(self.dlqs_key, dlq)  # the DLQs a payment's entries may be in
            add_wait(pipe, ack_after, self.min_replicas)  # on the connection that wrote
            try:
                replies = list(await pipe.execute())
                check_wait(replies, ack_after, self.min_replicas)
                replies.pop()  # SADD
                return replies
            except NoScriptError:
                if attempt:
                    raise
                # The script cache was flushed (restart, failover): load and
                # run the whole batch again - items already parked are no-ops.
                self._park.sha = await self.redis.script_load(self._park.script)
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ actions

    async def claim(
        self,
        dlq: str,
        entry_id: str,
        action: str,
        action_id: str,
        operator: str,
        *,
        expected: EntryState = EntryState.PARKED,
    ) -> ClaimResult:
        """Compare-and-set ``expected`` -> ``claimed`` for one action.

        Exactly one of several concurrent claimers wins; the others get
        ``ok=False`` with the state and who holds it. Claiming again with the
        action id that already holds the entry succeeds (a repeated call).
        """
        if not action or not action_id or not operator:
            raise ValueError("claim needs an action, an action id and an operator")
        keys = self.keys(dlq)
        reply = await self._claim(
            keys=[keys.entry(entry_id), keys.inflight, keys.changes],
            args=[entry_id, str(expected), action, action_id, operator, CHANGES_MAXLEN],
        )
        return claim_result(reply)

    async def complete(
        self,
        dlq: str,
        entry_id: str,
        action_id: str,
        final_state: EntryState,
        detail: str = "",
    ) -> ClaimResult:
        """``claimed`` -> ``final_state`` (requeued, retried, cancelled); holder only.

        ``ok`` is False when ``action_id`` does not hold the entry. Completing
        again with the same action id and state succeeds (a repeated call).
        """
        if final_state not in FINAL_STATES:
            raise ValueError(f"complete needs a final state, not {final_state}")
        return await self._transition(
            dlq, entry_id, action_id, final_state, op="complete", detail=detail, error=""
        )

    async def release(self, dlq: str, entry_id: str, action_id: str, error: str) -> ClaimResult:
        """``claimed`` -> ``parked`` with ``last_error``: the action failed; holder only."""
        return await self._transition(
            dlq, entry_id, action_id, EntryState.PARKED, op="release", detail="", error=error
        )

    async def _transition(
        self,
        dlq: str,
        entry_id: str,
        action_id: str,
        state: EntryState,
        *,
        op: str,
        detail: str,
        error: str,
    ) -> ClaimResult:
        keys = self.keys(dlq)
        reply = await self._finish(
            keys=[keys.entry(entry_id), keys.inflight, keys.changes],
            args=[entry_id, action_id, str(state), op, detail, error, CHANGES_MAXLEN],
        )
        return claim_result(reply)

    async def in_flight(self, dlq: str) -> list[ParkedEntry]:
        """Entries an action claimed and never finished (crash recovery on start)."""
        inflight = self.keys(dlq).inflight
        members = cast(set[bytes], await self.redis.smembers(inflight))
        ids = sorted(member.decode() for member in members)
        entries: list[ParkedEntry] = []
        for entry_id in ids:
            entry = await self.get(dlq, entry_id)
            if entry is not None and entry.state is EntryState.CLAIMED:
                entries.append(entry)
        return entries

    # ------------------------------------------------------------------ audit

    async def append_audit(self, dlq: str, record: AuditRecord) -> str:
        """Append one action to the audit stream; returns its stream id."""
        audit = self.keys(dlq).audit
        fields = audit_fields(record)
        stream_id = await self.redis.xadd(audit, cast(Any, fields))
        return stream_id.decode() if isinstance(stream_id, bytes) else str(stream_id)

    # ------------------------------------------------------------------ causes

    async def set_cause(self, dlq: str, entry_id: str, cause: Cause) -> str | None:
        """Give an entry the cause the flow reported after it was parked.

        A cause that came from the flow is never replaced. Returns the entry's
        former failure group when the cause changed (``""`` for an entry parked
        before causes were kept), None when it did not (no such entry, or its
        cause came from the flow already). Live views see an ``op=cause`` change.
        """
        keys = self.keys(dlq)
        reply = await self._set_cause(
            keys=[keys.entry(entry_id), keys.changes],
            args=[entry_id, cause.text, cause.source, cause.group, CHANGES_MAXLEN],
        )
        if reply is None or reply is False or reply == 0:
            return None
        return reply.decode() if isinstance(reply, bytes) else str(reply)

    # ------------------------------------------------------------------ housekeeping

    # ------------------------------------------------------------------ a payment's entries

    async def entries_for_payment(
        self, payment_id: str, dlqs: Iterable[str] | None = None
    ) -> list[tuple[str, str]]:
        """The entries of one payment (see :meth:`StoreReader.entries_for_payment`), those
        parked before the per-payment index existed included: each DLQ's are added to the
        index the first time it is read (:meth:`index_payments`)."""
        names = list(dict.fromkeys(dlqs)) if dlqs is not None else await self.known_dlqs()
        unsure = [dlq for dlq in names if dlq not in self._payments_complete]
        if unsure:
            pipe = self.redis.pipeline(transaction=False)
            for dlq in unsure:
                pipe.exists(self.keys(dlq).payments_complete)
            for dlq, complete in zip(unsure, await pipe.execute(), strict=True):
                if not complete:
                    await self.index_payments(dlq)
                self._payments_complete.add(dlq)
        return await super().entries_for_payment(payment_id, names)

    async def index_payments(self, dlq: str) -> int:
        """Add the entries of ``dlq`` that are not in its per-payment index (parked before
        it existed) to it: one pass over the DLQ's rows, then ``P:{D}:pay:all`` says it
        needs no other. Safe beside parkers and other readers; how many were added."""
        keys = self.keys(dlq)
        added = 0
        async for batch in self.iter_summaries(dlq, batch=1000):
            rows = [s for s in batch if s.payment_id]
            if not rows:
                continue
            names = [keys.payments, *(keys.entry(s.entry_id) for s in rows)]
            args = [value for s in rows for value in (s.entry_id, cast(str, s.payment_id))]
            added += int(await self._index_payments(keys=names, args=args))
        await self.redis.set(keys.payments_complete, b"1")
        return added

    async def durability(self) -> Durability:
        """Whether Redis keeps the parked messages (see :mod:`services.workbench.durability`)."""
        return await inspect_durability(self.redis)

    async def clear_marks(self, dlq: str, session: str, batches: Sequence[int]) -> None:
        """The broker processed the ack of these batches' deliveries: drop their marks."""
        keys = self.keys(dlq)
        names = [keys.unacked, *(keys.marks(session, b) for b in batches)]
        await self._clear_marks(keys=names)

    async def pending_marks(self, dlq: str) -> int:
        """How many parked deliveries still wait for their ack to be confirmed."""
        batches = cast(set[bytes], await self.redis.smembers(self.keys(dlq).unacked))
        counts = [cast(list[bytes], await self.redis.hvals(b)) for b in batches]
        return sum(int(v) for values in counts for v in values)

    async def delete_entries(self, dlq: str, entry_ids: Sequence[str]) -> int:
        """Remove entries for good (tests, purges); returns how many existed."""
        if not entry_ids:
            return 0
        keys = self.keys(dlq)
        names = [keys.idx, keys.fp, keys.inflight, keys.payments]
        names += [keys.entry(i) for i in entry_ids]
        return int(await self._delete(keys=names, args=list(entry_ids)))

    async def delete_all(self, dlq: str) -> int:
        """Delete every key of one DLQ (tests and cleanup), and its name from the list of
        DLQs; returns how many keys."""
        pattern = _glob_escape(self.base(dlq)) + ":*"
        deleted = 0
        batch: list[bytes] = []
        async for key in self.redis.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(await self.redis.unlink(*batch))
                batch.clear()
        if batch:
            deleted += int(await self.redis.unlink(*batch))
        await self.redis.srem(self.dlqs_key, dlq)
        self._payments_complete.discard(dlq)
        return deleted


async def _with_flow_causes(
    summaries: list[EntrySummary], lookup: FailureLookup
) -> list[EntrySummary]:
    """The rows with the flow's cause where the payment failed on the flow."""
    ids = sorted({s.payment_id for s in summaries if s.payment_id})
    if not ids:
        return summaries
    failures = await lookup(ids)
    if not failures:
        return summaries
    out = []
    for summary in summaries:
        failure = failures.get(summary.payment_id) if summary.payment_id else None
        if failure is not None and failure.reason.strip():
            out.append(summary.with_cause(Cause.of(failure.reason, "flow")))
        else:
            out.append(summary)
    return out


def _renamed(summary: EntrySummary, entry_id: str) -> EntrySummary:
    parked_at = entry_id_time_ms(entry_id) or summary.parked_at_ms
    return replace(summary, entry_id=entry_id, parked_at_ms=parked_at)


def _item_args(
    summary: EntrySummary, item: ParkItem, deaths: tuple[DeathRecord, ...] | None = None
) -> list[Any]:
    """The park script's arguments for one item (see ``lua/park.lua``; ``deaths``: its
    ``x-death`` parsed already)."""
    record = item.record
    encoded = encode_record(record)
    return [
        summary.entry_id,
        b"1" if item.redelivered else b"0",
        record_fingerprint(record, encoded),
        summary.parked_at_ms,
        summary_blob(summary),
        encoded["body"],
        encoded["props"],
        encoded["headers"],
        encoded["exchange"],
        encoded["rkey"],
        summary.payment_id or "",
        summary.cause,
        summary.cause_source,
        summary.failure_group,
        requeue_template(record, summary.entry_id, deaths) or b"",
    ]


def _chunks(pending: list[int], prepared: list[tuple[str, list[Any]]]) -> list[list[int]]:
    chunks: list[list[int]] = []
    current: list[int] = []
    size = 0
    for index in pending:
        item_size = len(prepared[index][1][5])
        if current and (size + item_size > CHUNK_BYTES or len(current) >= CHUNK_ITEMS):
            chunks.append(current)
            current, size = [], 0
        current.append(index)
        size += item_size
    if current:
        chunks.append(current)
    return chunks
