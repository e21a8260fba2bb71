"""Turn one tapped delivery into (status, latency, failure reason, payment id) in one parse."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from services.config import FieldPaths
from services.flow.payment_events import MAX_PAYMENT_ID_LENGTH
from services.json_paths import compile_path
from services.links.headers import ACTION_ID_HEADER
from services.masking.text import mask_text

REPLAY_HEADER = ACTION_ID_HEADER
"""Marks a replayed delivery: a message an operator sent back, or an event emitted for one.

The workbench's actions stamp it on every message they republish; a downstream
service that copies it to the events it emits (the demo's stages do) marks
those too. Such a message keeps the original payment's created time, so its
age is how long it was parked, not how long the flow took: the live flow counts
it by status and apart as replayed, never in the latency.
"""

UNKNOWN_STATUS = "unknown"
MAX_STATUS_LENGTH = 40
MAX_REASON_LENGTH = 80
CLOCK_SKEW_MS = 1000.0
# Below this a numeric timestamp is taken as epoch seconds (1e11 s is the year 5138;
# 1e11 ms is March 1973), at or above it as epoch milliseconds.
_SECONDS_LIMIT = 1e11
# Set by the rabbitmq_message_timestamp plugin: arrival at the broker, epoch ms.
_TIMESTAMP_HEADER = "timestamp_in_ms"
_STATUS_CACHE_LIMIT = 1024
_WHITESPACE = b" \t\r\n"


class EventDecoder:
    """Decode status and latency from a message body, its routing key and properties.

    Status: the body's ``fields.status`` (JSON), else the last dot-segment of
    the routing key, lower-cased, at most 40 characters, ``"unknown"`` when
    empty. Latency: now minus the created time, taken from the body's
    ``fields.timestamp`` (epoch ms, epoch s or ISO-8601; naive means UTC), else
    the ``timestamp_in_ms`` header, else the AMQP ``timestamp`` property (whole
    seconds). Reason: for an event whose status is one of ``failure_statuses``,
    the body's ``fields.reason`` (a string, whitespace-trimmed, at most 80
    characters, card numbers masked), else None. Payment id: the body's
    ``fields.payment_id`` (a string or an integer, at most
    ``MAX_PAYMENT_ID_LENGTH`` characters), else None; it is an identifier, kept
    as it is. ``decode`` never raises.
    """

    __slots__ = (
        "_failure_statuses",
        "_get_payment_id",
        "_get_reason",
        "_get_status",
        "_get_timestamp",
        "_reason_cache",
        "_status_cache",
    )

    def __init__(self, fields: FieldPaths, failure_statuses: Iterable[str] = ("failed",)) -> None:
        self._get_status = compile_path(fields.status)
        self._get_timestamp = compile_path(fields.timestamp)
        self._get_reason = compile_path(fields.reason)
        self._get_payment_id = compile_path(fields.payment_id)
        self._failure_statuses = frozenset(s.lower() for s in failure_statuses)
        self._status_cache: dict[str, str] = {}
        self._reason_cache: dict[str, str] = {}

    def decode(
        self,
        body: bytes,
        routing_key: str,
        headers: Mapping[str, Any] | None,
        timestamp: datetime | int | None,
        now_ms: float,
    ) -> tuple[str, float | None, str | None, str | None]:
        """Return ``(status, latency_ms, reason, payment_id)``; None for what cannot be told."""
        raw_status: Any = None
        created_ms: float | None = None
        payment_id: str | None = None
        document = _parse_object(body)
        if document is not None:
            payment_id = self._payment_id(document)
            try:
                raw_status = self._get_status(document)
                created_ms = _epoch_ms(self._get_timestamp(document))
            except Exception:
                raw_status, created_ms = None, None
        if created_ms is None and headers:
            try:
                created_ms = _number_ms(headers.get(_TIMESTAMP_HEADER))
            except Exception:
                created_ms = None
        if created_ms is None and timestamp is not None:
            # pika gives the AMQP timestamp as epoch seconds, aiormq as a datetime.
            if isinstance(timestamp, datetime):
                created_ms = _datetime_ms(timestamp)
            elif isinstance(timestamp, int) and not isinstance(timestamp, bool):
                created_ms = timestamp * 1000.0
        status = self._status(raw_status, routing_key)
        reason: str | None = None
        if document is not None and status in self._failure_statuses:
            reason = self._reason(document)
        return status, _latency(now_ms, created_ms), reason, payment_id

    def payment_id(self, body: bytes) -> str | None:
        """The payment id of a body alone (a dead letter's), or None; never raises."""
        document = _parse_object(body)
        return None if document is None else self._payment_id(document)

    def _payment_id(self, document: dict[str, Any]) -> str | None:
        try:
            raw = self._get_payment_id(document)
        except Exception:
            return None
        if isinstance(raw, str):
            return raw if 0 < len(raw) <= MAX_PAYMENT_ID_LENGTH else None
        if isinstance(raw, int) and not isinstance(raw, bool):
            return str(raw)
        return None

    def _reason(self, document: dict[str, Any]) -> str | None:
        try:
            raw = self._get_reason(document)
        except Exception:
            return None
        if not isinstance(raw, str) or not raw:
            return None
        cached = self._reason_cache.get(raw)
        if cached is not None:
            return cached
        reason = mask_text(" ".join(raw.split()))[:MAX_REASON_LENGTH] or None
        if reason is not None and len(self._reason_cache) < _STATUS_CACHE_LIMIT:
            self._reason_cache[raw] = reason
        return reason

    def _status(self, raw: Any, routing_key: str) -> str:
        if isinstance(raw, str) and raw:
            text = raw
        elif isinstance(raw, int | float) and not isinstance(raw, bool):
            text = str(raw)
        else:
            text = routing_key.rpartition(".")[2] if isinstance(routing_key, str) else ""
        cached = self._status_cache.get(text)
        if cached is not None:
            return cached
        status = text.strip().lower()[:MAX_STATUS_LENGTH] or UNKNOWN_STATUS
        if len(self._status_cache) < _STATUS_CACHE_LIMIT and len(text) <= 4 * MAX_STATUS_LENGTH:
            self._status_cache[text] = status
        return status


def _parse_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None (not JSON, not an object, not bytes)."""
    try:
        first = body[:1]
        if first and first in _WHITESPACE:
            first = body.lstrip(_WHITESPACE)[:1]
        if first != b"{":
            return None
        document = orjson.loads(body)
    except Exception:
        return None
    return document if isinstance(document, dict) else None


def _epoch_ms(value: Any) -> float | None:
    """A created time from JSON: epoch ms, epoch s, or an ISO-8601 string."""
    if isinstance(value, str):
        return _text_ms(value)
    return _number_ms(value)


def _number_ms(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        return None
    return number * 1000.0 if number < _SECONDS_LIMIT else number


def _text_ms(text: str) -> float | None:
    text = text.strip()
    if not text or len(text) > 64:
        return None
    try:
        return _datetime_ms(datetime.fromisoformat(text))
    except ValueError:
        pass
    try:
        return _number_ms(float(text))
    except ValueError:
        return None


def _datetime_ms(moment: datetime) -> float | None:
    try:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp() * 1000.0
    except (OverflowError, ValueError, OSError):
        return None


def _latency(now_ms: float, created_ms: float | None) -> float | None:
    if created_ms is None:
        return None
    latency = now_ms - created_ms
    if not math.isfinite(latency) or latency < -CLOCK_SKEW_MS:
        return None
    return latency if latency > 0.0 else 0.0
