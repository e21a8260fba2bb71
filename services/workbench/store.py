"""The parking store: dead-lettered messages kept whole in Redis, acted on exactly once.

Keys, entry ids and fields are laid out as :mod:`services.workbench.redis_layout`
says. Every write is one Lua script (``lua/*.lua``, loaded once, run by
EVALSHA) that appends its transition to the changes stream in the same atomic
step.

Parking is idempotent twice over: an entry id chosen before the first
attempt makes a retried batch a no-op, and a redelivered message consumes one
"parked, ack not yet confirmed" mark of its fingerprint (body, properties,
headers) instead of being parked again; a fresh delivery is always parked, so
two identical dead letters are two entries (see :mod:`services.workbench.parker`).

The Redis client must be created with ``decode_responses=False``.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from services.config import FieldPaths
from services.workbench import lua
from services.workbench import redis_layout as layout
from services.workbench.codec import (
    MessageRecord,
    decode_record,
    encode_record,
    parse_x_death,
    record_fingerprint,
)
from services.workbench.durability import add_wait, check_wait, inspect_durability
from services.workbench.model import (
    FINAL_STATES,
    AuditRecord,
    Change,
    ClaimResult,
    Durability,
    EntryState,
    EntrySummary,
    ParkedEntry,
    ParkResult,
    summarize,
)

CHANGES_MAXLEN: Final = 100_000
CHUNK_BYTES: Final = 8 * 1024 * 1024
"""Most message bytes sent in one park script call (a pipeline holds several)."""
CHUNK_ITEMS: Final = 500

_ITEM_ARGS: Final = 10
_COLLIDED: Final = 2


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


def new_session_id() -> str:
    """A parker session's id: one channel's deliveries (see :meth:`ParkingStore.park_many`)."""
    return secrets.token_hex(8)


def entry_id_time_ms(entry_id: str) -> int | None:
    """The parking time encoded in an entry id (None when it is not one of ours)."""
    try:
        return int(entry_id[:12], 16) if len(entry_id) == 20 else None
    except ValueError:
        return None


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "\\*?[]" else c for c in text)


class ParkingStore:
    """Parked dead letters of one profile in Redis (see the module docstring)."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(f"redis prefix must be non-empty without braces: {prefix!r}")
        kwargs = redis.connection_pool.connection_kwargs
        if kwargs.get("decode_responses"):
            raise ValueError("the parking store needs a Redis client with decode_responses=False")
        self.redis = redis
        self.prefix = prefix
        self._park = redis.register_script(lua.script("park", clock=True))
        self._claim = redis.register_script(lua.script("claim", clock=True))
        self._finish = redis.register_script(lua.script("finish", clock=True))
        self._delete = redis.register_script(lua.script("delete_entries"))
        self._rows = redis.register_script(lua.script("rows"))
        self._clear_marks = redis.register_script(lua.script("clear_marks"))

    # ------------------------------------------------------------------ keys

    def keys(self, dlq: str) -> layout.DlqKeys:
        """The keys of one DLQ."""
        return layout.DlqKeys.of(self.prefix, dlq)

    def base(self, dlq: str) -> str:
        """The key prefix of one DLQ, hash tag included."""
        return self.keys(dlq).base

    def entry_key(self, dlq: str, entry_id: str) -> str:
        return self.keys(dlq).entry(entry_id)

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
    ) -> ParkResult:
        """Park one message (see :meth:`park_many`)."""
        item = ParkItem(record, redelivered, entry_id)
        return (await self.park_many(dlq, [item], fields, session=session, batch=batch))[0]

    async def park_many(
        self,
        dlq: str,
        items: Sequence[ParkItem],
        fields: FieldPaths,
        *,
        ack_after: str = "write",
        session: str | None = None,
        batch: int = 0,
    ) -> list[ParkResult]:
        """Park a batch in one pipelined round trip; results in item order.

        When this returns, Redis holds every item (as ``ack_after`` says, see
        :mod:`services.workbench.durability`): the caller may ack. On a Redis
        error calling again with the same items (same entry ids) is safe.
        ``session``, ``batch``: the parker session (one channel's deliveries) and
        batch the marks are kept under (None: a fresh session).
        """
        if not items:
            return []
        session = session or new_session_id()
        prepared: list[tuple[str, list[Any]]] = []
        for item in items:
            entry_id = item.entry_id or new_entry_id()
            prepared.append((entry_id, self._item_args(dlq, entry_id, item, fields)))
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
                        results[index] = ParkResult(result_id, status == 1)
            for index in collided:  # practically never: re-park under a fresh id
                entry_id = new_entry_id()
                prepared[index] = (
                    entry_id,
                    self._item_args(dlq, entry_id, items[index], fields),
                )
            pending = collided
        return [result for result in results if result is not None]

    def _item_args(self, dlq: str, entry_id: str, item: ParkItem, fields: FieldPaths) -> list[Any]:
        record = item.record
        encoded = encode_record(record)
        fingerprint = record_fingerprint(record, encoded)
        parked_at = entry_id_time_ms(entry_id) or int(time.time() * 1000)
        summary = summarize(dlq, entry_id, record, fields, parked_at)
        return [
            entry_id,
            b"1" if item.redelivered else b"0",
            fingerprint,
            parked_at,
            layout.summary_blob(summary),
            encoded["body"],
            encoded["props"],
            encoded["headers"],
            encoded["exchange"],
            encoded["rkey"],
        ]

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
                args: list[Any] = [CHANGES_MAXLEN, len(chunk), keys.marks(marks[0])]
                for index in chunk:
                    entry_id, item_args = prepared[index]
                    names.append(keys.entry(entry_id))
                    args.extend(item_args)
                pipe.evalsha(self._park.sha, len(names), *names, *args)
            waits = add_wait(pipe, ack_after)  # on the connection that wrote
            try:
                replies = list(await pipe.execute())
                if waits:
                    check_wait(replies.pop(), ack_after)
                return replies
            except NoScriptError:
                if attempt:
                    raise
                # The script cache was flushed (restart, failover): load and
                # run the whole batch again - items already parked are no-ops.
                self._park.sha = await self.redis.script_load(self._park.script)
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ reading

    async def get(self, dlq: str, entry_id: str) -> ParkedEntry | None:
        """One entry in full, or None when there is no such entry."""
        raw = cast(dict[bytes, bytes], await self.redis.hgetall(self.entry_key(dlq, entry_id)))
        if not raw:
            return None
        return self._entry(dlq, entry_id, raw)

    def _entry(self, dlq: str, entry_id: str, raw: Mapping[bytes, bytes]) -> ParkedEntry:
        state = layout.state_of(raw.get(b"state")) or EntryState.PARKED
        operator = layout.text(raw.get(b"operator"))
        parked_at = layout.integer(raw.get(b"parked_at"), entry_id_time_ms(entry_id) or 0)
        summary = layout.summary_from_blob(
            dlq, entry_id, parked_at, raw.get(b"summary"), state=state, operator=operator
        )
        record = decode_record(raw)
        return ParkedEntry(
            summary=summary,
            record=record,
            deaths=parse_x_death(record.headers),
            fingerprint=layout.text(raw.get(b"fingerprint")) or "",
            version=layout.integer(raw.get(b"version"), 1),
            last_error=layout.text(raw.get(b"last_error")),
            action=layout.text(raw.get(b"action")),
            action_id=layout.text(raw.get(b"action_id")),
            operator=operator,
            detail=layout.text(raw.get(b"detail")),
            updated_at_ms=layout.integer(raw.get(b"updated_at")) or None,
        )

    async def locate(self, entry_id: str, dlqs: Iterable[str]) -> ParkedEntry | None:
        """Find an entry by id among several DLQs (the CLI's ``show ID``)."""
        names = list(dict.fromkeys(dlqs))
        if not names:
            return None
        pipe = self.redis.pipeline(transaction=False)
        for dlq in names:
            pipe.exists(self.entry_key(dlq, entry_id))
        found = await pipe.execute()
        for dlq, exists in zip(names, found, strict=True):
            if exists:
                entry = await self.get(dlq, entry_id)
                if entry is not None:
                    return entry
        return None

    async def count(self, dlq: str) -> int:
        """How many entries the DLQ's workbench holds (every state)."""
        return int(await self.redis.zcard(self.keys(dlq).idx))

    async def page(
        self, dlq: str, offset: int = 0, count: int = 200, newest_first: bool = True
    ) -> list[EntrySummary]:
        """One page of rows, newest first by default: the table's first rows, fast."""
        if count <= 0:
            return []
        idx = self.keys(dlq).idx
        stop = offset + count - 1
        if newest_first:
            rows = await self.redis.zrevrange(idx, offset, stop, withscores=True)
        else:
            rows = await self.redis.zrange(idx, offset, stop, withscores=True)
        return await self._summaries(dlq, _scored(rows))

    async def iter_summaries(
        self, dlq: str, batch: int = 5000
    ) -> AsyncIterator[list[EntrySummary]]:
        """Every row, oldest first, ``batch`` at a time (bounded memory per batch).

        A cursor on (parked_at, id) rather than on ranks, so entries parked
        while the iteration runs do not shift it; they come last (or through
        the changes stream).
        """
        idx = self.keys(dlq).idx
        low: float | str = "-inf"
        skip = 0
        while True:
            rows = _scored(
                await self.redis.zrangebyscore(
                    idx, low, "+inf", start=skip, num=batch, withscores=True
                )
            )
            if not rows:
                return
            summaries = await self._summaries(dlq, rows)
            if summaries:
                yield summaries
            last_score = rows[-1][1]
            ties = sum(1 for _, score in rows if score == last_score)
            if low != "-inf" and last_score == low:
                skip += ties
            else:
                low, skip = last_score, ties
            if len(rows) < batch:
                return

    async def _summaries(self, dlq: str, rows: Sequence[tuple[bytes, float]]) -> list[EntrySummary]:
        if not rows:
            return []
        keys = self.keys(dlq)
        flat = await self._rows(keys=[keys.entry(member.decode()) for member, _ in rows])
        replies = zip(flat[0::3], flat[1::3], flat[2::3], strict=True)
        summaries: list[EntrySummary] = []
        for (member, score), (blob, state, operator) in zip(rows, replies, strict=True):
            if blob is None and state is None:
                continue  # removed since the index was read
            summaries.append(
                layout.summary_from_blob(
                    dlq,
                    member.decode(),
                    int(score),
                    blob,
                    state=layout.state_of(state) or EntryState.PARKED,
                    operator=layout.text(operator),
                )
            )
        return summaries

    # ------------------------------------------------------------------ time ranges

    async def count_between(self, dlq: str, from_ms: int, to_ms: int) -> int:
        """How many entries were parked at ``from_ms <= parked_at < to_ms``."""
        if to_ms <= from_ms:
            return 0
        return int(await self.redis.zcount(self.keys(dlq).idx, int(from_ms), f"({int(to_ms)}"))

    async def _iter_index_between(
        self, dlq: str, from_ms: int, to_ms: int, batch: int
    ) -> AsyncIterator[list[tuple[bytes, float]]]:
        """Index rows (id, parked_at) with ``from_ms <= parked_at < to_ms``, oldest first.

        A cursor on (parked_at, id) as in :meth:`iter_summaries`.
        """
        if batch <= 0:
            raise ValueError(f"batch must be positive: {batch}")
        if to_ms <= from_ms:
            return
        idx = self.keys(dlq).idx
        high = f"({int(to_ms)}"
        low: float = float(from_ms)
        skip = 0
        while True:
            rows = _scored(
                await self.redis.zrangebyscore(
                    idx, low, high, start=skip, num=batch, withscores=True
                )
            )
            if not rows:
                return
            yield rows
            last_score = rows[-1][1]
            ties = sum(1 for _, score in rows if score == last_score)
            if last_score == low:
                skip += ties
            else:
                low, skip = last_score, ties
            if len(rows) < batch:
                return

    async def iter_summaries_between(
        self, dlq: str, from_ms: int, to_ms: int, batch: int = 5000
    ) -> AsyncIterator[list[EntrySummary]]:
        """Rows of the entries parked at ``from_ms <= parked_at < to_ms``, oldest first,
        ``batch`` at a time."""
        async for rows in self._iter_index_between(dlq, from_ms, to_ms, batch):
            summaries = await self._summaries(dlq, rows)
            if summaries:
                yield summaries

    async def iter_entries_between(
        self, dlq: str, from_ms: int, to_ms: int, batch: int = 500
    ) -> AsyncIterator[list[ParkedEntry]]:
        """Whole entries parked at ``from_ms <= parked_at < to_ms``, oldest first,
        ``batch`` at a time (one pipelined round trip per batch)."""
        async for rows in self._iter_index_between(dlq, from_ms, to_ms, batch):
            found = await self.get_many(dlq, [member.decode() for member, _ in rows])
            entries = [entry for entry in found if entry is not None]
            if entries:
                yield entries

    async def get_many(self, dlq: str, entry_ids: Sequence[str]) -> list[ParkedEntry | None]:
        """Several entries in full, in ``entry_ids`` order (None where there is no such
        entry), in one pipelined round trip."""
        if not entry_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for entry_id in entry_ids:
            pipe.hgetall(self.entry_key(dlq, entry_id))
        replies = cast(list[dict[bytes, bytes]], await pipe.execute())
        return [
            self._entry(dlq, entry_id, raw) if raw else None
            for entry_id, raw in zip(entry_ids, replies, strict=True)
        ]

    async def iter_audit(
        self, dlq: str, from_ms: int, to_ms: int, batch: int = 1000
    ) -> AsyncIterator[list[AuditRecord]]:
        """Audit records appended at ``from_ms <= time < to_ms`` (their stream ids' time,
        Redis's clock), oldest first, ``batch`` at a time."""
        if batch <= 0:
            raise ValueError(f"batch must be positive: {batch}")
        if to_ms <= from_ms:
            return
        audit = self.keys(dlq).audit
        low = str(max(0, int(from_ms)))
        high = str(int(to_ms) - 1)
        while True:
            reply = _entries(await self.redis.xrange(audit, min=low, max=high, count=batch))
            if not reply:
                return
            yield [layout.audit_record(stream_id.decode(), data) for stream_id, data in reply]
            if len(reply) < batch:
                return
            low = "(" + reply[-1][0].decode()

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
        return layout.claim_result(reply)

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
        return layout.claim_result(reply)

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

    # ------------------------------------------------------------------ live changes

    async def read_changes(
        self,
        dlq: str,
        last_id: str = "$",
        block_ms: int | None = None,
        count: int = 1000,
    ) -> list[Change]:
        """Transitions after ``last_id`` (``"$"``: only new ones; ``"0"``: all kept).

        With ``block_ms`` waits that long for the first one. Pass the last
        change's ``stream_id`` to the next call.
        """
        changes = self.keys(dlq).changes
        reply = cast(
            list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None,
            await self.redis.xread({changes: last_id}, count=count, block=block_ms),
        )
        result: list[Change] = []
        for _stream, messages in reply or []:
            for stream_id, data in messages:
                state = layout.state_of(data.get(b"state"))
                entry_id = layout.text(data.get(b"id"))
                if state is None or entry_id is None:
                    continue
                result.append(
                    Change(
                        stream_id=stream_id.decode(),
                        dlq=dlq,
                        entry_id=entry_id,
                        state=state,
                        op=layout.text(data.get(b"op")) or "",
                        ts=layout.integer(data.get(b"ts")),
                        operator=layout.text(data.get(b"operator")),
                    )
                )
        return result

    async def last_change_id(self, dlq: str) -> str:
        """The newest change's stream id ("0-0" when none): read live changes from there."""
        changes = self.keys(dlq).changes
        reply = _entries(await self.redis.xrevrange(changes, count=1))
        return reply[0][0].decode() if reply else "0-0"

    # ------------------------------------------------------------------ audit

    async def append_audit(self, dlq: str, record: AuditRecord) -> str:
        """Append one action to the audit stream; returns its stream id."""
        audit = self.keys(dlq).audit
        fields = layout.audit_fields(record)
        stream_id = await self.redis.xadd(audit, cast(Any, fields))
        return stream_id.decode() if isinstance(stream_id, bytes) else str(stream_id)

    async def read_audit(
        self,
        dlq: str,
        count: int = 100,
        entry_id: str | None = None,
        scan_limit: int = 100_000,
    ) -> list[AuditRecord]:
        """The newest ``count`` audit records, newest first.

        With ``entry_id``, only records naming that entry; at most
        ``scan_limit`` records are examined to find them.
        """
        audit = self.keys(dlq).audit
        found: list[AuditRecord] = []
        upper: str = "+"
        scanned = 0
        page = count if entry_id is None else 1000
        while len(found) < count and scanned < scan_limit:
            reply = _entries(await self.redis.xrevrange(audit, max=upper, min="-", count=page))
            if not reply:
                break
            for stream_id, data in reply:
                record = layout.audit_record(stream_id.decode(), data)
                if entry_id is None or entry_id in record.entry_ids:
                    found.append(record)
                    if len(found) >= count:
                        break
            scanned += len(reply)
            if len(reply) < page:
                break
            upper = "(" + reply[-1][0].decode()
        return found

    # ------------------------------------------------------------------ housekeeping

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
        names = [keys.idx, keys.fp, keys.inflight, *(keys.entry(i) for i in entry_ids)]
        return int(await self._delete(keys=names, args=list(entry_ids)))

    async def delete_all(self, dlq: str) -> int:
        """Delete every key of one DLQ (tests and cleanup); returns how many."""
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
        return deleted


def _scored(rows: Any) -> list[tuple[bytes, float]]:
    return cast(list[tuple[bytes, float]], rows)


def _entries(reply: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
    return cast(list[tuple[bytes, dict[bytes, bytes]]], reply or [])


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
