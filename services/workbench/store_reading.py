"""Reading the parking store: entries, table rows, time ranges, live changes, the audit
trail, and a payment's entries.

:class:`StoreReader` is the base of :class:`~services.workbench.store.ParkingStore`
(which adds the writes); key layout in :mod:`services.workbench.redis_layout`.
The Redis client must be created with ``decode_responses=False``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, cast

import redis.asyncio as aioredis

from services.links.redis_client import decodes_responses
from services.masking.json import mask_identifier
from services.outcomes.model import dlqs_key, outcome_from_fields
from services.workbench import lua
from services.workbench import redis_layout as layout
from services.workbench.codec import MessageRecord, decode_record, parse_x_death
from services.workbench.load_pace import LoadPace
from services.workbench.model import (
    AUDIT_STARTED,
    AuditRecord,
    Change,
    EntryState,
    EntrySummary,
    ParkedEntry,
)


def entry_id_time_ms(entry_id: str) -> int | None:
    """The parking time encoded in an entry id (None when it is not one of ours)."""
    try:
        return int(entry_id[:12], 16) if len(entry_id) == 20 else None
    except ValueError:
        return None


def entry_from_hash(dlq: str, entry_id: str, raw: Mapping[bytes, bytes]) -> ParkedEntry:
    """An entry from its stored hash (as HGETALL gives it): Redis-free, so another
    process can decode what this one read."""
    operator = layout.text(raw.get(b"operator"))
    summary = _row_of(
        dlq,
        entry_id,
        raw,
        operator,
        cause=raw.get(b"cause"),
        cause_source=raw.get(b"cause_src"),
        failure_group=raw.get(b"fgroup"),
        outcome=raw.get(b"outcome"),
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
        outcome=outcome_from_fields(raw),
    )


def unreadable_entry(
    dlq: str, entry_id: str, raw: Mapping[bytes, bytes], problem: str
) -> ParkedEntry:
    """What can be shown of an entry whose stored hash :func:`entry_from_hash` cannot
    decode (a record field missing or not what was stored, a packed hash cut short): its
    table row as far as the hash gives one, no message, and ``problem`` as its last error
    (an export writes it and goes on)."""
    summary = _row_of(dlq, entry_id, raw, layout.text(raw.get(b"operator")))
    note = f"the stored entry could not be read, its message is left out: {problem}"
    return ParkedEntry(
        summary=summary,
        record=MessageRecord(body=b""),
        deaths=(),
        fingerprint="",
        version=0,
        last_error=note,
        updated_at_ms=layout.integer(raw.get(b"updated_at")) or None,
    )


def _row_of(
    dlq: str,
    entry_id: str,
    raw: Mapping[bytes, bytes],
    operator: str | None,
    **cause_and_outcome: bytes | None,
) -> EntrySummary:
    """An entry's table row from its stored hash: its summary, state, operator and parked
    time (the entry id's time where none is stored), with the cause and outcome fields
    given."""
    return layout.summary_from_blob(
        dlq,
        entry_id,
        layout.integer(raw.get(b"parked_at"), entry_id_time_ms(entry_id) or 0),
        raw.get(b"summary"),
        state=layout.state_of(raw.get(b"state")) or EntryState.PARKED,
        operator=operator,
        **cause_and_outcome,
    )


class StoreReader:
    """What the parking store reads (see the module docstring)."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(f"redis prefix must be non-empty without braces: {prefix!r}")
        if decodes_responses(redis):
            raise ValueError("the parking store needs a Redis client with decode_responses=False")
        self.redis = redis
        self.prefix = prefix
        self._rows = redis.register_script(lua.script("rows"))
        self._hashes = redis.register_script(lua.script("hashes"))

    # ------------------------------------------------------------------ keys

    def keys(self, dlq: str) -> layout.DlqKeys:
        """The keys of one DLQ."""
        return layout.DlqKeys.of(self.prefix, dlq)

    def base(self, dlq: str) -> str:
        """The key prefix of one DLQ, hash tag included."""
        return self.keys(dlq).base

    def entry_key(self, dlq: str, entry_id: str) -> str:
        return self.keys(dlq).entry(entry_id)

    @property
    def dlqs_key(self) -> str:
        """``P:dlqs``: every DLQ something was parked from."""
        return dlqs_key(self.prefix)

    async def known_dlqs(self) -> list[str]:
        """The DLQs something was parked from, by name."""
        members = cast(set[bytes], await self.redis.smembers(self.dlqs_key))
        return sorted(member.decode("utf-8", "replace") for member in members)

    async def entries_for_payment(
        self, payment_id: str, dlqs: Iterable[str] | None = None
    ) -> list[tuple[str, str]]:
        """The entries of one payment: ``(dlq, entry id)`` oldest first, in ``dlqs``
        (default: every DLQ something was parked from). The payment id is matched as
        the table shows it (masked as an identifier); one round trip per call after
        the DLQs are known."""
        shown = mask_identifier(payment_id.strip())
        if not shown:
            return []
        names = list(dict.fromkeys(dlqs)) if dlqs is not None else await self.known_dlqs()
        if not names:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for dlq in names:
            pipe.hget(self.keys(dlq).payments, shown)
        replies = cast(list[bytes | None], await pipe.execute())
        found = [
            (dlq, entry_id)
            for dlq, ids in zip(names, replies, strict=True)
            for entry_id in (ids or b"").decode().split()
        ]
        return sorted(found, key=lambda pair: (pair[1], pair[0]))

    async def entries_for_payments(
        self, payment_ids: Iterable[str], dlqs: Sequence[str] | None = None
    ) -> dict[str, list[tuple[str, str]]]:
        """:meth:`entries_for_payment` of many payments in two round trips (the DLQs
        unless given, then one pipeline); a payment with no entry is left out."""
        shown = list(dict.fromkeys(mask_identifier(p.strip()) for p in payment_ids if p))
        return await self.entries_for_shown_payments([p for p in shown if p], dlqs)

    async def entries_for_shown_payments(
        self, shown: Sequence[str], dlqs: Sequence[str] | None = None
    ) -> dict[str, list[tuple[str, str]]]:
        """:meth:`entries_for_payments` of payment ids already as shown (masked, stripped,
        not empty: the index's keys), each asked once; one HMGET per DLQ."""
        if not shown:
            return {}
        names = list(dlqs) if dlqs is not None else await self.known_dlqs()
        if not names:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for dlq in names:  # one HMGET per DLQ, not a command per payment
            pipe.hmget(self.keys(dlq).payments, shown)
        replies = cast(list[list[bytes | None]], await pipe.execute())
        found: dict[str, list[tuple[str, str]]] = {}
        for dlq, reply in zip(names, replies, strict=True):
            for payment, ids in zip(shown, reply, strict=True):
                if ids:  # most payments have no entry in most DLQs: nothing decoded
                    found.setdefault(payment, []).extend((dlq, i) for i in ids.decode().split())
        for pairs in found.values():
            if len(pairs) > 1:
                pairs.sort(key=_by_entry_then_dlq)
        return found

    # ------------------------------------------------------------------ reading

    async def get(self, dlq: str, entry_id: str) -> ParkedEntry | None:
        """One entry in full, or None when there is no such entry."""
        raw = cast(dict[bytes, bytes], await self.redis.hgetall(self.entry_key(dlq, entry_id)))
        if not raw:
            return None
        return self._entry(dlq, entry_id, raw)

    def _entry(self, dlq: str, entry_id: str, raw: Mapping[bytes, bytes]) -> ParkedEntry:
        return entry_from_hash(dlq, entry_id, raw)

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
        self, dlq: str, batch: int = 5000, pace: LoadPace | None = None
    ) -> AsyncIterator[list[EntrySummary]]:
        """Every row, oldest first, ``batch`` at a time (bounded memory per batch), or as
        many as ``pace`` says each time (it is told what each batch's decode took).

        A cursor on (parked_at, id) rather than on ranks, so entries parked
        while the iteration runs do not shift it; they come last (or through
        the changes stream).
        """
        idx = self.keys(dlq).idx
        low: float | str = "-inf"
        skip = 0
        while True:
            # at least one row: a count of 0 reads none (the load would end at once, rows
            # unread) and a negative one reads all
            size = max(1, pace.rows if pace is not None else batch)
            rows = _scored(
                await self.redis.zrangebyscore(
                    idx, low, "+inf", start=skip, num=size, withscores=True
                )
            )
            if not rows:
                return
            summaries = await self._summaries(dlq, rows, pace)
            if summaries:
                yield summaries
            last_score = rows[-1][1]
            ties = sum(1 for _, score in rows if score == last_score)
            if low != "-inf" and last_score == low:
                skip += ties
            else:
                low, skip = last_score, ties
            if len(rows) < size:
                return

    async def _summaries(
        self, dlq: str, rows: Sequence[tuple[bytes, float]], pace: LoadPace | None = None
    ) -> list[EntrySummary]:
        if not rows:
            return []
        keys = self.keys(dlq)
        flat = await self._rows(keys=[keys.entry(member.decode()) for member, _ in rows])
        decoding = time.perf_counter()  # the reply is here: the rest is one loop step
        replies = zip(*(flat[i::7] for i in range(7)), strict=True)
        summaries: list[EntrySummary] = []
        for (member, score), reply in zip(rows, replies, strict=True):
            blob, state, operator, cause, cause_source, failure_group, outcome = reply
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
                    cause=cause,
                    cause_source=cause_source,
                    failure_group=failure_group,
                    outcome=outcome,
                )
            )
        if pace is not None:
            pace.took("decode", len(rows), time.perf_counter() - decoding)
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
        replies = await self.get_many_hashes(dlq, entry_ids)
        return [
            self._entry(dlq, entry_id, raw) if raw else None
            for entry_id, raw in zip(entry_ids, replies, strict=True)
        ]

    async def get_many_hashes(self, dlq: str, entry_ids: Sequence[str]) -> list[dict[bytes, bytes]]:
        """The stored hashes of several entries, in ``entry_ids`` order (empty where
        there is no such entry), in one round trip: one script call whose one reply the
        parser reads whole (a pipeline of ``HGETALL`` costs the client a command and a
        reply each); :func:`entry_from_hash` decodes one."""
        if not entry_ids:
            return []
        keys = self.keys(dlq)
        flat = cast(list[list[bytes]], await self._hashes(keys=[keys.entry(i) for i in entry_ids]))
        return [dict(zip(fields[0::2], fields[1::2], strict=True)) for fields in flat]

    async def iter_ids_between(
        self, dlq: str, from_ms: int, to_ms: int, batch: int = 500
    ) -> AsyncIterator[list[str]]:
        """The ids of the entries parked at ``from_ms <= parked_at < to_ms``, oldest first,
        ``batch`` at a time (from the index: one round trip per batch)."""
        async for rows in self._iter_index_between(dlq, from_ms, to_ms, batch):
            yield [member.decode() for member, _ in rows]

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

    # ------------------------------------------------------------------ live changes

    async def read_changes(
        self,
        dlq: str,
        last_id: str = "$",
        block_ms: int | None = None,
        count: int = 1000,
    ) -> list[Change]:
        """Transitions after ``last_id`` (``"$"``: only new ones; ``"0"``: all kept).

        With ``block_ms`` waits that long for the first one (``count`` stream entries at
        most: an action's window of claims or finishes is one entry, its ids in field
        ``ids``, and gives one change per id, all with the entry's ``stream_id``). Pass
        the last change's ``stream_id`` to the next call.
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
                window = data.get(b"ids")
                entry_ids = window.decode().split() if window else [layout.text(data.get(b"id"))]
                if state is None or entry_ids == [None]:
                    continue
                cursor = stream_id.decode()
                op = layout.text(data.get(b"op")) or ""
                ts = layout.integer(data.get(b"ts"))
                operator = layout.text(data.get(b"operator"))
                result.extend(
                    Change(cursor, dlq, cast(str, entry_id), state, op, ts, operator)
                    for entry_id in entry_ids
                )
        return result

    async def last_change_id(self, dlq: str) -> str:
        """The newest change's stream id ("0-0" when none): read live changes from there."""
        changes = self.keys(dlq).changes
        reply = _entries(await self.redis.xrevrange(changes, count=1))
        return reply[0][0].decode() if reply else "0-0"

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

    async def audit_started(
        self, dlq: str, record: AuditRecord, scan: int = 200
    ) -> AuditRecord | None:
        """The ``started`` record of ``record``'s action (same action id), which the action
        wrote before it claimed anything: looked for among the ``scan`` records before
        ``record`` in the DLQ's audit stream. None when it is not there (or ``record`` was
        not read back, or has no action id)."""
        if not record.action_id or not record.stream_id:
            return None
        reply = _entries(
            await self.redis.xrevrange(
                self.keys(dlq).audit, max=f"({record.stream_id}", min="-", count=scan
            )
        )
        for stream_id, data in reply:
            earlier = layout.audit_record(stream_id.decode(), data)
            if earlier.action_id == record.action_id and earlier.result == AUDIT_STARTED:
                return earlier
        return None


def _scored(rows: Any) -> list[tuple[bytes, float]]:
    return cast(list[tuple[bytes, float]], rows)


def _entries(reply: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
    return cast(list[tuple[bytes, dict[bytes, bytes]]], reply or [])


def _by_entry_then_dlq(pair: tuple[str, str]) -> tuple[str, str]:
    return pair[1], pair[0]
