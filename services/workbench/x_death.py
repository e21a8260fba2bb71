"""The ``x-death`` header RabbitMQ writes on a dead letter, read tolerantly:
:class:`DeathRecord`, :func:`parse_x_death` and :func:`first_death` (re-exported by
:mod:`services.workbench.codec`, where they were)."""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class DeathRecord:
    """One entry of the ``x-death`` header: a (queue, reason) the message died for."""

    queue: str
    reason: str
    count: int = 0
    time: datetime.datetime | None = None
    exchange: str = ""
    routing_keys: tuple[str, ...] = ()

    @property
    def time_ms(self) -> int | None:
        """``time`` in epoch milliseconds (naive times are taken as UTC)."""
        if self.time is None:
            return None
        moment = self.time
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        return int(moment.timestamp() * 1000)


def _text(value: Any, errors: str = "replace") -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors)
    return ""


def _exchange(value: Any) -> str:
    """The exchange keeps bytes that are not UTF-8 (surrogate escapes, as the record's
    exchange does): only shown (:func:`services.workbench.shown.shown_death`) and written
    back in the death history; queue and reason, which pick where a requeue goes and the
    failure group, read such bytes as U+FFFD."""
    return _text(value, "surrogateescape")


def _count(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float | decimal.Decimal):
        try:
            return max(int(value), 0)
        except (OverflowError, ValueError):
            return 0
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return 0


def _time(value: Any) -> datetime.datetime | None:
    if isinstance(value, datetime.datetime):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = value / 1000 if value > 0xFFFFFFFF else value
            return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _routing_keys(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(_text(v) for v in value if isinstance(v, str | bytes | bytearray))
    if isinstance(value, str | bytes | bytearray):
        return (_text(value),)
    return ()


def _death(entry: Mapping[Any, Any]) -> DeathRecord:
    return DeathRecord(
        queue=_text(entry.get("queue")),
        reason=_text(entry.get("reason")),
        count=_count(entry.get("count")),
        time=_time(entry.get("time")),
        exchange=_exchange(entry.get("exchange")),
        routing_keys=_routing_keys(entry.get("routing-keys")),
    )


def parse_x_death(headers: Any) -> tuple[DeathRecord, ...]:
    """The ``x-death`` history, most recent first; never raises.

    Malformed input (no headers, ``x-death`` not a list, entries not tables,
    fields of odd types) gives what can be read: unreadable fields become
    empty strings, 0 or None, entries that are not tables are skipped.
    """
    if not isinstance(headers, Mapping):
        return ()
    raw = headers.get("x-death")
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list | tuple):
        return ()
    return tuple(_death(entry) for entry in raw if isinstance(entry, Mapping))


def first_death(headers: Any) -> DeathRecord | None:
    """Where and why the message died first (``x-first-death-*``); never raises.

    The matching ``x-death`` entry gives count, time and routing keys; without
    ``x-first-death-*`` headers the oldest ``x-death`` entry is used; None when
    the message carries no death information at all.
    """
    deaths = parse_x_death(headers)
    if not isinstance(headers, Mapping):
        return None
    queue = _text(headers.get("x-first-death-queue"))
    reason = _text(headers.get("x-first-death-reason"))
    exchange = _exchange(headers.get("x-first-death-exchange"))
    if queue or reason:
        for death in deaths:
            if death.queue == queue and death.reason == reason:
                return death
        return DeathRecord(queue=queue, reason=reason, exchange=exchange)
    return deaths[-1] if deaths else None
