"""The demo workers' record of captured payments: what makes them idempotent consumers.

A payment worker must not capture a payment twice when RabbitMQ delivers it
twice (an operator's replay of a payment the flow already captured, a
publisher's retry, a redelivery after a lost ack). The settlement worker
records each capture under the payment id, atomically with the decision to
capture (``SET … NX``); every worker looks a payment up before it works on it,
and a payment already captured is acknowledged and reported as a
``duplicate`` event instead.

Key layout in Redis (``P`` the profile's ``redis_prefix``, ``F`` the demo
flow's name prefix, empty for the ``demo`` profile)::

    P:demo:F:captured:<payment id>   STRING  capture time (epoch ms); TTL the options'
                                             ``idempotency_ttl_s``

Bounded by the TTL: a replay later than that is captured again (the window a
payment provider keeps idempotency keys for). Without Redis (a library caller
that passes none) the record lives in the process, with the same TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Final, Protocol

import redis.asyncio as aioredis

DEFAULT_TTL_S: Final = 6 * 3600
"""How long a capture is remembered: a replay within the operator's day is a duplicate.

At the demo's 20 payments a second that is at most ~430,000 small keys."""


class CaptureLedger(Protocol):
    """Which payments were captured (see the module docstring)."""

    async def captured(self, payment_id: str) -> bool:
        """Whether ``payment_id`` was captured (within the TTL)."""
        ...

    async def record(self, payment_id: str, at_ms: int) -> bool:
        """Record a capture; False when it was already recorded (a duplicate)."""
        ...

    async def forget(self, payment_id: str) -> None:
        """Undo :meth:`record` when the capture could not be completed."""
        ...


def captured_key(redis_prefix: str, flow_prefix: str, payment_id: str) -> str:
    """The Redis key recording that ``payment_id`` was captured."""
    flow = flow_prefix.rstrip(".")
    return f"{redis_prefix}:demo:{flow + ':' if flow else ''}captured:{payment_id}"


class RedisCaptureLedger:
    """The record in Redis: shared by every simulator on the flow, across restarts."""

    def __init__(
        self, client: aioredis.Redis, redis_prefix: str, flow_prefix: str, ttl_s: float
    ) -> None:
        self._client = client
        self._redis_prefix = redis_prefix
        self._flow_prefix = flow_prefix
        self._ttl_ms = max(1, round(ttl_s * 1000))

    def _key(self, payment_id: str) -> str:
        return captured_key(self._redis_prefix, self._flow_prefix, payment_id)

    async def captured(self, payment_id: str) -> bool:
        return bool(await self._client.exists(self._key(payment_id)))

    async def record(self, payment_id: str, at_ms: int) -> bool:
        stored = await self._client.set(self._key(payment_id), at_ms, nx=True, px=self._ttl_ms)
        return bool(stored)

    async def forget(self, payment_id: str) -> None:
        await self._client.delete(self._key(payment_id))


class MemoryCaptureLedger:
    """The record in this process only (no Redis given); same TTL, swept as it goes."""

    def __init__(self, ttl_s: float) -> None:
        self._ttl_s = ttl_s
        self._until: dict[str, float] = {}  # payment id -> expiry (monotonic), oldest first

    def _sweep(self, now: float) -> None:
        while self._until:
            payment_id, until = next(iter(self._until.items()))
            if until > now:
                return
            del self._until[payment_id]

    async def captured(self, payment_id: str) -> bool:
        now = time.monotonic()
        self._sweep(now)
        return self._until.get(payment_id, 0.0) > now

    async def record(self, payment_id: str, at_ms: int) -> bool:
        if await self.captured(payment_id):
            return False
        self._until[payment_id] = time.monotonic() + self._ttl_s
        return True

    async def forget(self, payment_id: str) -> None:
        self._until.pop(payment_id, None)


async def forget_quietly(ledger: CaptureLedger, payment_id: str) -> None:
    """:meth:`CaptureLedger.forget`, shielded from cancellation; a failure is swallowed
    (the record then outlives a capture that did not complete, until its TTL)."""
    with contextlib.suppress(Exception):
        await asyncio.shield(ledger.forget(payment_id))
