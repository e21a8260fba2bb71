"""The flow's events per payment: what the tap saw of one payment id, kept in Redis.

Key layout (``P`` is the profile's ``redis_prefix``)::

    P:payment:<payment id>   ZSET   member: one packed event (orjson array, see
                                    ``PaymentEvent.pack``), score: its time (epoch ms)

Bounded two ways. Every payment's events live ``recent_s`` after its latest
write (``EXPIRE … GT`` never shortens a longer expiry); a payment that failed,
was dead-lettered, parked or acted on is *kept*: its key lives for the retention
window (``keep``, or an event whose status is one of ``lasting_statuses``), so
its timeline outlives the recent window. A key holds at most ``MAX_EVENTS``
events (the oldest are dropped).

Writes are idempotent: a member is the packed event itself, whose ``key`` names
the delivery (the message id, or a digest of the body), so a batch written twice
(a retried write, two lease holders at a hand-over) stores each event once. Every
command touches one key, so the store works on Redis Cluster without hash tags.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import orjson
import redis.asyncio as aioredis

MAX_EVENTS: Final = 200
"""The most events kept per payment (the oldest are dropped beyond it)."""
DEFAULT_RECENT_S: Final = 15 * 60
"""How long an ordinary payment's events are kept after its latest event."""
MAX_PAYMENT_ID_LENGTH: Final = 200
"""A longer payment id is not recorded (it would make an unbounded key name)."""


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """One event of a payment seen on the flow.

    ``at_ms`` is when the event happened (its created time, else when the tap
    saw it), ``reason`` the failure reason in the event (masked free text),
    ``replayed`` whether it belongs to a message an operator sent back, and
    ``key`` what makes the event unique (message id or body digest).
    """

    payment_id: str
    at_ms: int
    status: str
    reason: str | None = None
    replayed: bool = False
    key: str = ""

    def pack(self) -> bytes:
        """The stored member: ``[at_ms, status, reason, replayed, key]``."""
        return orjson.dumps([self.at_ms, self.status, self.reason, int(self.replayed), self.key])

    @classmethod
    def unpack(cls, payment_id: str, blob: bytes) -> PaymentEvent | None:
        """An event from its stored member (None when damaged)."""
        try:
            at_ms, status, reason, replayed, key = orjson.loads(blob)
        except (orjson.JSONDecodeError, ValueError, TypeError):
            return None
        if not isinstance(at_ms, int) or not isinstance(status, str):
            return None
        return cls(
            payment_id,
            at_ms,
            status,
            reason if isinstance(reason, str) else None,
            bool(replayed),
            key if isinstance(key, str) else "",
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

    def key(self, payment_id: str) -> str:
        """The Redis key holding ``payment_id``'s events."""
        return f"{self.prefix}:payment:{payment_id}"

    async def append(
        self, events: Iterable[PaymentEvent], *, lasting_statuses: Sequence[str] = ()
    ) -> int:
        """Record ``events`` (idempotently) in one round trip; the number of events sent.

        A payment with an event whose status is in ``lasting_statuses`` is kept
        for the retention window; the others for ``recent_s`` after their latest
        event (an expiry already longer is never shortened).
        """
        lasting = set(lasting_statuses)
        grouped: dict[str, list[PaymentEvent]] = {}
        for event in events:
            if event.payment_id and len(event.payment_id) <= MAX_PAYMENT_ID_LENGTH:
                grouped.setdefault(event.payment_id, []).append(event)
        if not grouped:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for payment_id, group in grouped.items():
            key = self.key(payment_id)
            pipe.zadd(key, {event.pack(): event.at_ms for event in group})
            pipe.zremrangebyrank(key, 0, -MAX_EVENTS - 1)
            keep = any(event.status in lasting for event in group)
            pipe.expire(key, self.retention_s if keep else self.recent_s, gt=True)
            pipe.expire(key, self.retention_s if keep else self.recent_s, nx=True)
        await pipe.execute()
        return sum(len(group) for group in grouped.values())

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
        blobs = await self.client.zrange(self.key(payment_id), 0, -1)
        events = []
        for blob in blobs:
            if not isinstance(blob, bytes) or blob == _KEEP_MARKER:
                continue
            event = PaymentEvent.unpack(payment_id, blob)
            if event is not None:
                events.append(event)
        return events

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
