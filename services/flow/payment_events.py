"""The flow's events per payment: what the tap saw of one payment id, kept in Redis.

Key layout (``P`` is the profile's ``redis_prefix``)::

    P:payment:<payment id>   ZSET   member: one packed event (orjson array
                                    ``[status, reason, replayed, key]``, see
                                    ``_grouped``), score: its time (epoch ms, to the
                                    microsecond when the tap saw it)

Bounded two ways. Every payment's events live ``recent_s`` after its latest
write (``EXPIRE … GT`` never shortens a longer expiry); a payment that failed,
was dead-lettered, parked or acted on is *kept*: its key lives for the retention
window (``keep``, or an event whose status is one of ``lasting_statuses``), so
its timeline outlives the recent window. A key holds at most ``MAX_EVENTS``
events (the oldest are dropped).

Writes are idempotent: a member is the packed event without its time (status,
reason, replayed, ``key``), whose ``key`` names the delivery (the message id, or a
digest of the body), and it is added with ``ZADD LT``: a batch written twice (a
retried write, two lease holders at a hand-over, each with its own sighting time)
stores each event once, at its earliest time. An event without a key keeps its
time in the member (``[at_ms, status, reason, replayed, key]``, the first layout,
still read). Appends run as a script over up to ``_KEYS_PER_CALL`` payments per
call (their events as one JSON argument: per-argument packing is most of the
client's cost, and the recorder shares its loop with the tap), straight from the
tap's tuples (no object per event); a new payment's key costs the script three
Redis calls. On a Redis Cluster a call only takes keys of one hash slot, so no
hash tags are needed.

The tap's side is :class:`PaymentEventBuffer`: O(1) appends of plain tuples into
bounded deques, drained by the recorder (``services.flow.recorder``) about once a
second while it holds the history lease.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, cast

import orjson
import redis.asyncio as aioredis
import redis.exceptions
from redis.crc import key_slot

if TYPE_CHECKING:
    from services.config import Profile

MAX_EVENTS: Final = 200
"""The most events kept per payment (the oldest are dropped beyond it)."""
DEFAULT_RECENT_S: Final = 15 * 60
"""How long an ordinary payment's events are kept after its latest event."""
MAX_PAYMENT_ID_LENGTH: Final = 200
"""A longer payment id is not recorded (it would make an unbounded key name)."""

Pending = tuple[str, float, str, str | None, bool, str]
"""An event as the tap buffers it: (payment id, seen at ms, status, reason, replayed, key)."""


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """One event of a payment seen on the flow.

    ``at_ms`` is when the event happened: when the tap saw it (epoch ms). Not the
    body's created time: that is the *payment's* creation time on every one of its
    events (it measures end-to-end latency), so it cannot order them. ``reason``
    is the failure reason in the event (masked free text), ``replayed`` whether it
    belongs to a message an operator sent back, and ``key`` what makes the event
    unique (message id or body digest). ``seen_ms``: the same moment to the
    microsecond when known (the stored score), so that two events of one
    millisecond keep the order they arrived in; not part of equality.
    """

    payment_id: str
    at_ms: int
    status: str
    reason: str | None = None
    replayed: bool = False
    key: str = ""
    seen_ms: float | None = field(default=None, compare=False)

    @property
    def score(self) -> float:
        """Where the event sorts: ``seen_ms``, else ``at_ms``."""
        return self.at_ms if self.seen_ms is None else self.seen_ms

    @classmethod
    def unpack(
        cls, payment_id: str, blob: bytes, at_ms: float | None = None
    ) -> PaymentEvent | None:
        """An event from its stored member and score ``at_ms`` (None when damaged)."""
        seen_ms = at_ms
        try:
            items = orjson.loads(blob)
            if isinstance(items, list) and len(items) == 4:
                status, reason, replayed, key = items
                at_ms = math.floor(at_ms) if at_ms is not None else None
            else:
                at_ms, status, reason, replayed, key = items
        except (orjson.JSONDecodeError, ValueError, TypeError, OverflowError):
            return None
        if not isinstance(at_ms, int) or isinstance(at_ms, bool) or not isinstance(status, str):
            return None
        return cls(
            payment_id,
            at_ms,
            status,
            reason if isinstance(reason, str) else None,
            bool(replayed),
            key if isinstance(key, str) else "",
            seen_ms,
        )


class PaymentEventStore:
    """Append and read the events of payments (see the module docstring)."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        *,
        recent_s: int = DEFAULT_RECENT_S,
        retention_s: int = 24 * 3600,
    ) -> None:
        if not prefix:
            raise ValueError("redis prefix must be non-empty")
        self.client = client
        self.prefix = prefix
        self.recent_s = recent_s
        self.retention_s = max(retention_s, recent_s)
        self._key_prefix = f"{prefix}:payment:"
        self._append_sha: str | None = None
        self._cluster: bool | None = None

    @classmethod
    def for_profile(cls, client: aioredis.Redis, profile: Profile) -> PaymentEventStore:
        """The store with the profile's prefix, recent window and retention window."""
        return cls(
            client,
            profile.redis_prefix,
            recent_s=profile.payment_events_recent_s,
            retention_s=profile.history_retention_s,
        )

    def key(self, payment_id: str) -> str:
        """The Redis key holding ``payment_id``'s events."""
        return self._key_prefix + payment_id

    async def append(
        self, events: Iterable[PaymentEvent], *, lasting_statuses: Sequence[str] = ()
    ) -> int:
        """Record ``events`` (idempotently): :meth:`append_pending` of their tuples."""
        return await self.append_pending(
            [(e.payment_id, e.score, e.status, e.reason, e.replayed, e.key) for e in events],
            lasting_statuses=lasting_statuses,
        )

    async def append_pending(
        self, events: Iterable[Pending], *, lasting_statuses: Sequence[str] = ()
    ) -> int:
        """Record ``events`` as the tap buffers them (idempotently) in one pipelined round
        trip of script calls, up to ``_KEYS_PER_CALL`` payments each; the number of events
        sent.

        A payment with an event whose status is in ``lasting_statuses``, or a
        replayed event (an operator acted on it), is kept for the retention window;
        the others for ``recent_s`` after their latest event (an expiry already
        longer is never shortened).
        """
        grouped, lasting, sent = _grouped(events, frozenset(lasting_statuses))
        if not grouped:
            return 0
        recent, retention = self.recent_s, self.retention_s
        prefix = self._key_prefix.encode()  # keys as bytes: packed as they are
        single = not await self._is_cluster()
        batches: dict[int, tuple[list[bytes], list[list[Any]]]] = {}
        for payment_id, members in grouped.items():
            item: list[Any] = [retention if payment_id in lasting else recent]
            pairs = members.items()
            for member, score in pairs if len(pairs) <= MAX_EVENTS else list(pairs)[-MAX_EVENTS:]:
                item += (score, member.decode())
            key = prefix + payment_id.encode()
            keys, items = batches.setdefault(0 if single else key_slot(key), ([], []))
            keys.append(key)
            items.append(item)
        await self._run_append(
            [
                (keys[i : i + _KEYS_PER_CALL], items[i : i + _KEYS_PER_CALL])
                for keys, items in batches.values()
                for i in range(0, len(keys), _KEYS_PER_CALL)
            ]
        )
        return sent

    async def _is_cluster(self) -> bool:
        """Whether Redis runs as a cluster (asked once; when it cannot be told, taken
        as one, so every script call stays within one hash slot)."""
        if self._cluster is None:
            try:
                info = await self.client.info("cluster")
            except redis.exceptions.ResponseError:
                self._cluster = True
            else:
                self._cluster = bool(info.get("cluster_enabled"))
        return self._cluster

    async def _run_append(self, calls: Sequence[tuple[list[bytes], list[list[Any]]]]) -> None:
        """One ``EVALSHA`` of the append script per batch of payments (each batch in one
        hash slot on a cluster), pipelined; the script is loaded first, and again when
        Redis lost it (a restart)."""
        for attempt in (1, 2):
            if self._append_sha is None:
                self._append_sha = str(await self.client.script_load(_APPEND_SCRIPT))
            pipe = self.client.pipeline(transaction=False)
            for keys, items in calls:
                # The events as one JSON argument: a few arguments per call, not two per
                # event (packing arguments is most of a pipeline's cost on the client).
                pipe.evalsha(self._append_sha, len(keys), *keys, MAX_EVENTS, orjson.dumps(items))
            try:
                await pipe.execute()
                return
            except redis.exceptions.NoScriptError:
                self._append_sha = None
                if attempt == 2:
                    raise

    async def keep(self, payment_ids: Iterable[str]) -> None:
        """Keep these payments' events for the retention window (they failed, were
        parked or acted on); a payment with no events yet is kept once they come."""
        ids = [p for p in set(payment_ids) if p and len(p) <= MAX_PAYMENT_ID_LENGTH]
        if not ids:
            return
        pipe = self.client.pipeline(transaction=False)
        for payment_id in ids:
            key = self.key(payment_id)
            # An empty ZSET cannot exist: a marker member (score 0) holds the expiry
            # until the first event; ``events`` skips it.
            pipe.zadd(key, {_KEEP_MARKER: 0}, nx=True)
            pipe.expire(key, self.retention_s, gt=True)
            pipe.expire(key, self.retention_s, nx=True)
        await pipe.execute()

    async def events(self, payment_id: str) -> list[PaymentEvent]:
        """Every recorded event of ``payment_id``, oldest first."""
        if not payment_id or len(payment_id) > MAX_PAYMENT_ID_LENGTH:
            return []
        rows = cast(
            list[tuple[bytes, float]],
            await self.client.zrange(self.key(payment_id), 0, -1, withscores=True),
        )
        return _unpacked(payment_id, rows)

    async def last_failures(
        self,
        payment_ids: Iterable[str],
        failure_statuses: Sequence[str],
        *,
        before_ms: int | None = None,
    ) -> dict[str, PaymentEvent]:
        """The latest failure event of each of ``payment_ids`` that has one (at or before
        ``before_ms`` when given), in one round trip: for a page of parked entries."""
        ids = [p for p in dict.fromkeys(payment_ids) if p and len(p) <= MAX_PAYMENT_ID_LENGTH]
        if not ids:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for payment_id in ids:
            pipe.zrange(self.key(payment_id), 0, -1, withscores=True)
        replies = cast(list[list[tuple[bytes, float]]], await pipe.execute())
        failures = set(failure_statuses)
        found: dict[str, PaymentEvent] = {}
        for payment_id, rows in zip(ids, replies, strict=True):
            for event in _unpacked(payment_id, rows):
                if event.status in failures and (before_ms is None or event.at_ms <= before_ms):
                    found[payment_id] = event
        return found

    async def latest_with(
        self, payment_ids: list[str], statuses: tuple[str, ...]
    ) -> dict[str, tuple[str, int]]:
        """Each payment's latest event with one of ``statuses``, as ``(status, at ms)``: the
        replay gate's question (``workbench.actions.gate.FinalLookup``)."""
        found = await self.last_failures(payment_ids, statuses)
        return {payment: (event.status, event.at_ms) for payment, event in found.items()}

    async def last_failure(
        self, payment_id: str, failure_statuses: Sequence[str], *, before_ms: int | None = None
    ) -> PaymentEvent | None:
        """The latest event of ``payment_id`` whose status is a failure (at or before
        ``before_ms`` when given), or None."""
        failures = set(failure_statuses)
        found = None
        for event in await self.events(payment_id):
            if event.status in failures and (before_ms is None or event.at_ms <= before_ms):
                found = event
        return found


_KEEP_MARKER: Final = b"[]"


def sightings(events: Iterable[Pending]) -> Iterator[PaymentEvent]:
    """The buffered events as :class:`PaymentEvent` objects, made as they are read."""
    for payment_id, seen_ms, status, reason, replayed, key in events:
        yield PaymentEvent(payment_id, math.floor(seen_ms), status, reason, replayed, key, seen_ms)


def _unpacked(payment_id: str, rows: Sequence[tuple[bytes, float]]) -> list[PaymentEvent]:
    """The events of a ``ZRANGE ... WITHSCORES`` reply (the marker and damaged ones left out)."""
    events = []
    for blob, score in rows:
        if not isinstance(blob, bytes) or blob == _KEEP_MARKER:
            continue
        event = PaymentEvent.unpack(payment_id, blob, float(score))
        if event is not None:
            events.append(event)
    return events


_KEYS_PER_CALL: Final = 500
"""Payments per script call (one call keeps Redis busy for a millisecond or two)."""

_APPEND_SCRIPT: Final = """
-- KEYS: payments' keys. ARGV[1]: the most events a payment keeps (no key is sent more);
-- ARGV[2]: JSON, per key [expiry (s), time, member, time, member, ...] (times: numbers,
-- parsed and handed to ZADD as exact doubles).
-- ZADD LT: a member already stored keeps its earlier time. A new key (most payments)
-- takes three calls: TTL, ZADD, EXPIRE.
local most = tonumber(ARGV[1])
local data = cjson.decode(ARGV[2])
for i = 1, #KEYS do
    local key = KEYS[i]
    local item = data[i]
    local ttl = item[1]
    local left = redis.call('TTL', key)  -- -2: no such key, -1: no expiry
    local added = redis.call('ZADD', key, 'LT', unpack(item, 2))
    if left == -2 then
        redis.call('EXPIRE', key, ttl)
    else
        if added > 0 and redis.call('ZCARD', key) > most then
            redis.call('ZREMRANGEBYRANK', key, 0, -most - 1)
        end
        -- Never shorten a longer expiry (a kept payment stays kept).
        if left < ttl then
            redis.call('EXPIRE', key, ttl)
        end
    end
end
return #KEYS
"""


def _grouped(
    events: Iterable[Pending], lasting_statuses: frozenset[str]
) -> tuple[dict[str, dict[bytes, float]], set[str], int]:
    """The events by payment, as ``{member: earliest time}``; the payments to keep for
    the retention window (a lasting status or a replayed event); how many events."""
    grouped: dict[str, dict[bytes, float]] = {}
    lasting: set[str] = set()
    dumps = orjson.dumps
    sent = 0
    for payment_id, seen_ms, status, reason, replayed, key in events:
        if not payment_id or len(payment_id) > MAX_PAYMENT_ID_LENGTH:
            continue
        sent += 1
        if key:
            member = dumps((status, reason, 1 if replayed else 0, key))
        else:
            member = dumps((math.floor(seen_ms), status, reason, 1 if replayed else 0, ""))
        if replayed or status in lasting_statuses:
            lasting.add(payment_id)
        members = grouped.get(payment_id)
        if members is None:
            grouped[payment_id] = {member: seen_ms}
        else:
            earlier = members.get(member)
            if earlier is None or seen_ms < earlier:
                members[member] = seen_ms
    return grouped, lasting, sent


BUFFER_CAPACITY: Final = 100_000
"""The most events (and dead-lettered payment ids) the tap's buffer holds; beyond it
the oldest are dropped (the recorder fell behind, or Redis is down)."""


class PaymentEventBuffer:
    """Between the tap (O(1) appends of plain tuples) and the recorder (``drain``).

    ``events`` gets a :data:`Pending` per event with a payment id; ``kept`` a
    ``(seen at ms, payment id)`` per dead letter the tap saw (that payment is
    kept for the retention window). Both are bounded (:data:`BUFFER_CAPACITY`):
    the oldest go first. A recorder not holding the lease ``trim``s them to the
    last few seconds, so that when it takes over from a holder that died, it
    writes what that holder may not have (writes are idempotent).
    """

    __slots__ = ("capacity", "events", "kept", "overflowed")

    def __init__(self, capacity: int = BUFFER_CAPACITY) -> None:
        self.capacity = capacity
        self.events: deque[Pending] = deque(maxlen=capacity)
        self.kept: deque[tuple[float, str]] = deque(maxlen=capacity)
        self.overflowed = 0
        """Times a drain found a deque full (events were dropped before it)."""

    def __len__(self) -> int:
        return len(self.events) + len(self.kept)

    def trim(self, before_ms: float) -> None:
        """Forget what was seen before ``before_ms``."""
        events, kept = self.events, self.kept
        while events and events[0][1] < before_ms:
            events.popleft()
        while kept and kept[0][0] < before_ms:
            kept.popleft()

    def drain(self) -> tuple[list[Pending], list[str]]:
        """Take everything buffered: the events (as buffered, for
        :meth:`PaymentEventStore.append_pending`) and the payment ids to keep."""
        events, kept = self.events, self.kept
        if len(events) == events.maxlen or len(kept) == kept.maxlen:
            self.overflowed += 1
        taken = list(events)
        ids = [pid for _, pid in kept]
        events.clear()
        kept.clear()
        return taken, ids
