"""The alert log: every alert transition in a Redis stream, shared by the consoles.

Redis key layout (``P`` is the profile's ``redis_prefix``)::

    P:alerts    STREAM  ts (epoch ms), rule, kind (firing|resolved), severity,
                        value ("" when unknown), message (XADD MAXLEN ~ 100000)

Stream ids carry the event time: an event is added as ``<ts ms>-*``, so range
queries by stream id are queries by event time. An event older than the
stream's newest entry (a writer with a clock behind another's) is added with
the server's time instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from services.alerts.model import AlertEvent

ALERTS_MAXLEN: Final = 100_000
_READ_PAGE: Final = 1000


class AlertLog:
    """Alert transitions in the Redis stream ``{prefix}:alerts`` (see the module docstring).

    Works with clients created with or without ``decode_responses``.
    """

    def __init__(self, redis: aioredis.Redis, prefix: str, maxlen: int = ALERTS_MAXLEN) -> None:
        self.redis = redis
        self.prefix = prefix
        self.key = f"{prefix}:alerts"
        self._maxlen = maxlen

    async def append(self, event: AlertEvent) -> str:
        """Record one event; returns its stream id."""
        fields: dict[str | bytes, str | bytes | int] = {
            "ts": event.ts_ms,
            "rule": event.rule,
            "kind": event.kind,
            "severity": event.severity,
            "value": "" if event.value is None else repr(float(event.value)),
            "message": event.message,
        }
        try:
            stream_id = await self.redis.xadd(
                self.key,
                cast(Any, fields),
                id=f"{event.ts_ms}-*",
                maxlen=self._maxlen,
                approximate=True,
            )
        except ResponseError as exc:
            if "equal or smaller" not in str(exc):
                raise
            stream_id = await self.redis.xadd(
                self.key, cast(Any, fields), maxlen=self._maxlen, approximate=True
            )
        return _text(stream_id)

    async def extend(self, events: Iterable[AlertEvent]) -> list[str]:
        """Record several events in order; returns their stream ids."""
        return [await self.append(event) for event in events]

    async def read_range(
        self,
        from_ms: int | None = None,
        to_ms: int | None = None,
        *,
        newest_first: bool = True,
        count: int | None = None,
    ) -> list[AlertEvent]:
        """Events with ``from_ms <= time <= to_ms`` (either end open when None).

        Newest first by default; at most ``count`` events (the newest ones when
        newest first, the oldest ones otherwise).
        """
        low = "-" if from_ms is None else str(int(from_ms))
        high = "+" if to_ms is None else str(int(to_ms))
        events: list[AlertEvent] = []
        while count is None or len(events) < count:
            page = _READ_PAGE if count is None else min(_READ_PAGE, count - len(events))
            if newest_first:
                reply = _entries(
                    await self.redis.xrevrange(self.key, max=high, min=low, count=page)
                )
            else:
                reply = _entries(await self.redis.xrange(self.key, min=low, max=high, count=page))
            events.extend(_event(data) for _, data in reply)
            if len(reply) < page:
                break
            last = _text(reply[-1][0])
            if newest_first:
                high = "(" + last
            else:
                low = "(" + last
        return events


def _entries(reply: Any) -> list[tuple[str | bytes, dict[Any, Any]]]:
    return cast(list[tuple[str | bytes, dict[Any, Any]]], reply or [])


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _event(data: Mapping[Any, Any]) -> AlertEvent:
    fields = {_text(k): _text(v) for k, v in data.items()}
    kind = fields.get("kind")
    severity = fields.get("severity")
    value = fields.get("value", "")
    return AlertEvent(
        ts=int(fields.get("ts", "0")) / 1000.0,
        rule=fields.get("rule", ""),
        kind="resolved" if kind == "resolved" else "firing",
        value=float(value) if value else None,
        message=fields.get("message", ""),
        severity="critical" if severity == "critical" else "warning",
    )
