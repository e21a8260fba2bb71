"""Flow history: finished per-second flow aggregates kept in Redis for a retention window.

Key layout (``P`` is the profile's ``redis_prefix``)::

    P:history:h:<hour>   HASH    one hour bucket; ``<hour>`` is the epoch second
                                 the hour starts at. Field: the epoch second (decimal),
                                 value: one packed row (orjson array, see below).
                                 EXPIRE retention + 1 h, set again on every write.
    P:history:lease      STRING  the writer lease: the holder's id, PX ttl

A packed row is ``[{status: count, ...}, dead_letters, {queue: depth | null, ...},
[p50, p95, p99], {failure reason: count, ...}]`` (latencies in ms, ``null`` when
the second had no sample; the reasons of that second's failure events, a row
written before reasons were kept has four elements).
Status and queue names travel inside the row, so a new status or queue needs no
schema change; statuses with no event in that second are left out.

Retention needs no sweeper: a bucket is written during its own hour (or shortly
after, by a writer catching up), and each write sets its expiry to retention + 1 h,
so every second stays readable for at least the retention window and a bucket
disappears on its own about an hour after that.

Writes are idempotent: a second is one hash field, and writing it again replaces
it, so a retried batch never counts twice.

Who writes (several consoles and ``payops collect`` processes run at once): only
the holder of the ``HistoryLease`` writes. Every would-be writer tries to
``acquire`` the lease every few seconds (``HistoryLease.retry_interval_s``); the
holder ``renew``s it well within its ttl (``renew_interval_s``) and stops writing
as soon as a renewal fails. A holder that crashes or hangs simply stops renewing,
and its lease expires after ``ttl_s``; the next writer to try takes over. Since
every console taps the same exchanges, a new holder writes the same seconds with
the same counts, and a late write of an old holder replaces a second rather than
adding to it: no second is ever counted twice.

Every command touches one key (the lease scripts included), so the store works on
Redis Cluster without hash tags.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

import numpy as np
import orjson
import redis.asyncio as aioredis

from services.config import Profile
from services.flow.types import (
    HEADLINE_WINDOW_S,
    LATENCY_PERCENTILES,
    FloatArray,
    FlowFrame,
    Headline,
)

BUCKET_S: Final = 3600
DEFAULT_RETENTION_S: Final = 24 * 3600
"""The default retention window (the profile has no ``history_retention_h`` yet)."""

_RENEW = """
-- KEYS: lease; ARGV: holder, ttl ms. Extends the lease only for its holder.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
-- KEYS: lease; ARGV: holder. Deletes the lease only for its holder.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class SecondRow:
    """The flow of one finished second."""

    second: int  # epoch second
    status_counts: dict[str, int]
    dead_letters: int
    queue_depths: dict[str, int | None]  # None when the depth was not known
    latency_ms: tuple[float | None, float | None, float | None]  # p50, p95, p99
    failure_reasons: dict[str, int] = field(default_factory=dict)  # of failure events


def _check_prefix(prefix: str) -> None:
    if not prefix or "{" in prefix or "}" in prefix:
        raise ValueError(f"redis prefix must be non-empty without braces: {prefix!r}")


def bucket_start(second: int) -> int:
    """The epoch second the hour bucket holding ``second`` starts at."""
    return second - second % BUCKET_S


def pack_row(row: SecondRow) -> bytes:
    """The stored form of a row (see the module docstring)."""
    return orjson.dumps(
        [
            {name: int(n) for name, n in row.status_counts.items() if n},
            int(row.dead_letters),
            {name: None if d is None else int(d) for name, d in row.queue_depths.items()},
            [None if v is None else float(v) for v in row.latency_ms],
            {name: int(n) for name, n in row.failure_reasons.items() if n},
        ]
    )


def unpack_row(second: int, blob: bytes | str) -> SecondRow:
    """The row ``pack_row`` stored for ``second``."""
    counts, dead, depths, latency, *rest = orjson.loads(blob)
    reasons = rest[0] if rest else {}
    p50, p95, p99 = (None if v is None else float(v) for v in latency)
    return SecondRow(
        second=second,
        status_counts={str(k): int(v) for k, v in counts.items()},
        dead_letters=int(dead),
        queue_depths={str(k): None if v is None else int(v) for k, v in depths.items()},
        latency_ms=(p50, p95, p99),
        failure_reasons={str(k): int(v) for k, v in reasons.items()},
    )


class HistoryStore:
    """Per-second flow history of one profile in Redis (see the module docstring).

    ``retention_s`` comes from the caller (24 h by default): the profile has no
    retention setting yet. ``failure_statuses`` and ``dead_letter_queues`` feed
    the headline of the frames read back, as they do the live aggregator's.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str,
        retention_s: int = DEFAULT_RETENTION_S,
        *,
        failure_statuses: Iterable[str] = ("failed",),
        dead_letter_queues: Iterable[str] = (),
    ) -> None:
        _check_prefix(prefix)
        if retention_s <= 0:
            raise ValueError(f"retention_s must be positive: {retention_s}")
        self.redis = redis
        self.prefix = prefix
        self.retention_s = int(retention_s)
        self._failure_statuses = frozenset(s.lower() for s in failure_statuses)
        self._dead_letter_queues = tuple(dead_letter_queues)

    @classmethod
    def for_profile(cls, redis: aioredis.Redis, profile: Profile) -> HistoryStore:
        """The history of ``profile``: its prefix, retention and failure statuses."""
        return cls(
            redis,
            profile.redis_prefix,
            profile.history_retention_s,
            failure_statuses=profile.failure_statuses,
            dead_letter_queues=profile.dead_letter_queues,
        )

    @property
    def bucket_ttl_s(self) -> int:
        """The expiry every write sets on its bucket: retention plus one hour."""
        return self.retention_s + BUCKET_S

    def bucket_key(self, second: int) -> str:
        """The hash holding ``second``."""
        return f"{self.prefix}:history:h:{bucket_start(second)}"

    # ------------------------------------------------------------------ writing

    async def write_seconds(self, rows: Sequence[SecondRow]) -> None:
        """Store ``rows``; a second written before is replaced, never added to."""
        if not rows:
            return
        by_bucket: dict[str, dict[str, bytes]] = {}
        for row in rows:
            by_bucket.setdefault(self.bucket_key(row.second), {})[str(row.second)] = pack_row(row)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, mapping in by_bucket.items():
                pipe.hset(key, mapping=cast(Any, mapping))
                pipe.expire(key, self.bucket_ttl_s)
            await pipe.execute()

    # ------------------------------------------------------------------ reading

    async def read_rows(self, from_s: int, to_s: int) -> list[SecondRow]:
        """The stored rows of the seconds ``from_s <= second < to_s``, oldest first."""
        return [unpack_row(second, blob) for second, blob in await self.read_blobs(from_s, to_s)]

    async def read_blobs(self, from_s: int, to_s: int) -> list[tuple[int, bytes]]:
        """:meth:`read_rows` not unpacked (``unpack_row`` unpacks one): (second, stored row)
        pairs, oldest first - another process may unpack them."""
        from_s, to_s = int(from_s), int(to_s)
        if to_s <= from_s:
            return []
        spans: list[tuple[int, int]] = []
        async with self.redis.pipeline(transaction=False) as pipe:
            start = from_s
            while start < to_s:
                end = min(bucket_start(start) + BUCKET_S, to_s)
                pipe.hmget(self.bucket_key(start), [str(s) for s in range(start, end)])
                spans.append((start, end))
                start = end
            replies = await pipe.execute()
        blobs: list[tuple[int, bytes]] = []
        for (start, _end), values in zip(spans, replies, strict=True):
            for offset, blob in enumerate(cast(list[bytes | None], values)):
                if blob is not None:
                    blobs.append((start + offset, blob))
        return blobs

    async def read_range(self, from_s: int, to_s: int) -> FlowFrame:
        """A dense frame of the seconds ``from_s <= second < to_s``.

        Seconds not stored read as 0 events and dead letters, NaN latency and
        depths. The headline covers the last ``HEADLINE_WINDOW_S`` seconds of
        the range (see ``frame_from_rows``).
        """
        rows = await self.read_rows(from_s, to_s)
        return frame_from_rows(
            rows,
            from_s,
            to_s,
            failure_statuses=self._failure_statuses,
            dead_letter_queues=self._dead_letter_queues,
        )

    async def iter_range(
        self, from_s: int, to_s: int, chunk_s: int = BUCKET_S
    ) -> AsyncIterator[FlowFrame]:
        """``read_range`` in consecutive chunks of at most ``chunk_s`` seconds, oldest first.

        Only one chunk's rows are in memory at a time, so a 24 h export streams.
        """
        if chunk_s <= 0:
            raise ValueError(f"chunk_s must be positive: {chunk_s}")
        start = int(from_s)
        while start < to_s:
            end = min(start + chunk_s, int(to_s))
            yield await self.read_range(start, end)
            start = end


def frame_from_rows(
    rows: Sequence[SecondRow],
    from_s: int,
    to_s: int,
    *,
    failure_statuses: Iterable[str] = ("failed",),
    dead_letter_queues: Iterable[str] = (),
) -> FlowFrame:
    """A dense ``FlowFrame`` of ``from_s <= second < to_s`` from sparse rows.

    A second without a row (nobody recorded it) is NaN in every series: a gap.

    Status and queue names are the union over the rows in first-seen order.
    The headline covers the last ``HEADLINE_WINDOW_S`` seconds of the range:
    events per second and failure rate as the aggregator computes them; p99 is
    the highest per-second p99 in that window (the stored percentiles cannot be
    merged exactly; this is an upper bound of the merged p99); the dead-letter
    queue depth sums each dead-letter queue's last known depth in the range;
    ``total_events`` counts the whole range; ``tap_dropped`` is not stored (0).
    """
    from_s, to_s = int(from_s), int(to_s)
    n = max(0, to_s - from_s)
    status_rows: dict[str, int] = {}
    queue_rows: dict[str, int] = {}
    for row in rows:
        for name in row.status_counts:
            status_rows.setdefault(name, len(status_rows))
        for name in row.queue_depths:
            queue_rows.setdefault(name, len(queue_rows))

    # A second nobody recorded is NaN throughout (a gap), not zero traffic.
    counts = np.full((len(status_rows), n), np.nan)
    dead = np.full(n, np.nan)
    latency = np.full((len(LATENCY_PERCENTILES), n), np.nan)
    depths = np.full((len(queue_rows), n), np.nan)
    for row in rows:
        i = row.second - from_s
        if not 0 <= i < n:
            continue
        counts[:, i] = 0.0
        for name, c in row.status_counts.items():
            counts[status_rows[name], i] = c
        dead[i] = row.dead_letters
        for name, d in row.queue_depths.items():
            if d is not None:
                depths[queue_rows[name], i] = d
        latency[:, i] = [np.nan if v is None else v for v in row.latency_ms]

    status_names = tuple(status_rows)
    queue_names = tuple(queue_rows)
    headline = _headline(
        counts,
        dead,
        latency,
        depths,
        status_names=status_names,
        queue_names=queue_names,
        failure_statuses=frozenset(s.lower() for s in failure_statuses),
        dead_letter_queues=tuple(dead_letter_queues),
    )
    return FlowFrame(
        t=np.arange(from_s, from_s + n, dtype=np.float64),
        status_names=status_names,
        status_counts=counts,
        dead_letters=dead,
        latency_ms=latency,
        queue_names=queue_names,
        queue_depths=depths,
        headline=headline,
    )


def _headline(
    counts: FloatArray,
    dead: FloatArray,
    latency: FloatArray,
    depths: FloatArray,
    *,
    status_names: tuple[str, ...],
    queue_names: tuple[str, ...],
    failure_statuses: frozenset[str],
    dead_letter_queues: tuple[str, ...],
) -> Headline:
    n = counts.shape[1]
    window = min(HEADLINE_WINDOW_S, n)
    events_per_s = 0.0
    failure_rate: float | None = None
    p99: float | None = None
    if window > 0:
        per_status = np.nansum(counts[:, n - window :], axis=1)
        total = float(per_status.sum())
        recorded = int(np.count_nonzero(~np.isnan(dead[n - window :])))
        events_per_s = total / recorded if recorded else 0.0
        if total > 0:
            failures = sum(
                float(per_status[row])
                for row, name in enumerate(status_names)
                if name in failure_statuses
            )
            failure_rate = failures / total * 100.0
        recent_p99 = latency[-1, n - window :]
        if not np.all(np.isnan(recent_p99)):
            p99 = float(np.nanmax(recent_p99))
    known: list[int] = []
    for name in dead_letter_queues:
        if name in queue_names:
            series = depths[queue_names.index(name)]
            seen = np.flatnonzero(~np.isnan(series))
            if seen.size:
                known.append(int(series[seen[-1]]))
    return Headline(
        events_per_s=events_per_s,
        failure_rate_pct=failure_rate,
        dlq_depth=sum(known) if known else None,
        latency_p99_ms=p99,
        tap_dropped=0,
        total_events=int(np.nansum(counts)),
    )


def rows_from_frame(
    frame: FlowFrame,
    upto_second: int,
    *,
    since_second: int | None = None,
    reasons: Mapping[int, Mapping[str, int]] | None = None,
) -> list[SecondRow]:
    """The finished seconds of ``frame`` as rows: those before ``upto_second``.

    Pass the current (still filling) second as ``upto_second``. Every second is
    a row, a quiet one too: a second without a row reads back as a gap (NaN,
    nobody recorded it), not as zero traffic. ``since_second`` drops earlier
    seconds; pass the first full second of the aggregator (the one after its
    start): the seconds before it were never observed (the aggregator reports
    them as 0), and a partial first second must not be written over a complete
    one. The recorder also keeps only the seconds its tap consumed whole
    (``TapCoverage``) and writes only after the newest stored second, so it
    never blanks what another writer recorded. ``reasons`` gives the
    failure-reason counts by second (``FlowAggregator.failure_reasons``).
    """
    reasons = reasons or {}
    rows: list[SecondRow] = []
    latency_rows = frame.latency_ms.shape[0]
    for i, t in enumerate(frame.t):
        second = int(t)
        if second >= upto_second or (since_second is not None and second < since_second):
            continue
        status_counts = {
            name: int(c)
            for name, c in zip(frame.status_names, frame.status_counts[:, i], strict=True)
            if c
        }
        queue_depths = {
            name: None if math.isnan(d) else int(d)
            for name, d in zip(frame.queue_names, frame.queue_depths[:, i], strict=True)
        }
        lat = [
            None if math.isnan(v := float(frame.latency_ms[r, i])) else v
            for r in range(latency_rows)
        ]
        dead = int(frame.dead_letters[i])
        # A quiet second is written too: missing history must read as a gap, not as 0.
        rows.append(
            SecondRow(
                second=second,
                status_counts=status_counts,
                dead_letters=dead,
                queue_depths=queue_depths,
                latency_ms=(lat[0], lat[1], lat[2]),
                failure_reasons=dict(reasons.get(second, {})),
            )
        )
    return rows


class HistoryLease:
    """The right to write the flow history: one holder at a time (see the module docstring).

    ``acquire`` takes the lease when it is free (``SET NX PX``) or extends it
    when this holder already has it; ``renew`` and ``release`` act only for the
    holder (compare-and-pexpire, compare-and-del in Lua), so a holder whose lease
    expired and was taken cannot extend or drop the new holder's lease.
    """

    def __init__(
        self, redis: aioredis.Redis, prefix: str, holder_id: str, ttl_s: float = 10
    ) -> None:
        _check_prefix(prefix)
        if not holder_id:
            raise ValueError("holder_id must be non-empty")
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive: {ttl_s}")
        self.redis = redis
        self.prefix = prefix
        self.holder_id = holder_id
        self.ttl_s = ttl_s
        self.key = f"{prefix}:history:lease"
        self._ttl_ms = max(1, round(ttl_s * 1000))
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    @property
    def renew_interval_s(self) -> float:
        """How often the holder should renew: a third of the ttl."""
        return self.ttl_s / 3

    @property
    def retry_interval_s(self) -> float:
        """How often a writer without the lease should try to acquire it."""
        return self.ttl_s / 3

    async def acquire(self) -> bool:
        """Take the lease if it is free, or extend it if this holder has it."""
        took = await self.redis.set(self.key, self.holder_id, nx=True, px=self._ttl_ms)
        if took:
            return True
        return await self.renew()

    async def renew(self) -> bool:
        """Extend the lease by ``ttl_s``; False when this holder no longer has it."""
        reply: Any = await self._renew(keys=[self.key], args=[self.holder_id, self._ttl_ms])
        return bool(reply)

    async def release(self) -> bool:
        """Drop the lease if this holder has it (True), so another writer takes over now."""
        reply: Any = await self._release(keys=[self.key], args=[self.holder_id])
        return bool(reply)

    async def holder(self) -> str | None:
        """Who holds the lease now, if anyone."""
        value: Any = await self.redis.get(self.key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)
