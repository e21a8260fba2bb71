"""Incident snapshot: one zip of a time range for the people who write the post-mortem.

:func:`write_snapshot` reads the flow history, the alert log, the audit trail
and the parked failed payments of ``from_s <= t < to_s`` from Redis and writes
a bundle:

=========================  ====================================================
``report.html``            the summary, self-contained (inline CSS, charts as
                           ``data:`` images; see :mod:`services.snapshot.report`)
``charts/*.png``           throughput, dead letters, queue depths, latency
                           (alert periods shaded), when a renderer is given
``throughput.csv``         every second of the range: counts per status, dead
                           letters, latency p50/p95/p99, queue depths
``failed_payments.csv``    the workbench rows of every entry of the profile's
                           dead-letter queues parked in the range or named by
                           an audit record of the range, each once
``failed_payments.jsonl``  the same entries with properties, headers, x-death
                           and the body, masked
``audit.jsonl``            the audit records of the range (every DLQ)
``alerts.jsonl``           the alert events of the range
``manifest.json``          tool version, profile without credentials, range,
                           counts, SHA-256 and size of every other file
=========================  ====================================================

Masking: card numbers are masked (first 6 / last 4) and CVV-like fields
hidden in every free-text or message-derived value (bodies, headers,
properties, errors, details, names); binary bodies are described (size,
SHA-256) and non-UTF-8 header values by their size, never copied. Identifiers (entry ids,
stream ids, action ids) and timestamps are not masked: they are ours, and a
hex id can look like a card number. Broker and Redis URLs lose their user,
password and secret-looking query parameters.

Bounded memory: entries and audit records are streamed in batches into
member files in a temporary directory next to the output, hashed while they
are written; only the per-second series of the range (needed for the charts)
and the report's tallies stay in memory. The zip is written to
``OUT.partial`` and renamed when complete; on an error or cancellation the
partial file and the temporary directory are removed. The writer yields to
the event loop between batches, so it can run on the GUI's loop.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime
import functools
import hashlib
import importlib.metadata
import io
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Final, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

import numpy as np
import orjson
import redis.asyncio as aioredis

from services.alerts.engine import RULE_KINDS, AlertEvent, AlertLog
from services.config import Profile, TapBinding
from services.flow.history import HistoryStore, frame_from_rows
from services.flow.types import LATENCY_PERCENTILES, FloatArray, FlowFrame, Headline
from services.masking.json import (
    CACHED_TEXT_LEN,
    CACHED_TEXTS,
    HIDDEN,
    JsonNumber,
    is_cvv_key,
    is_pan_key,
    loads_exact,
    mask_json,
    mask_pan_value,
    mask_sensitive_text,
    mask_untrusted_text,
)
from services.masking.text import MIN_PAN_DIGITS, mask_text
from services.snapshot.report import (
    MAX_TABLE_ROWS,
    TOP_REASONS,
    ActionTally,
    AlertEventRow,
    AlertSpanRow,
    BundleFile,
    ChartImage,
    FailedPaymentTally,
    ReportSummary,
    count_rows,
    render_report,
)
from services.time_range import format_duration, format_local, iso_utc
from services.workbench.model import AuditRecord, ParkedEntry, body_kind
from services.workbench.store import ParkingStore, entry_id_time_ms

log = logging.getLogger(__name__)

FORMAT: Final = "payops-snapshot/1"
TOOL_NAME: Final = "payops-console"
HISTORY_CHUNK_S: Final = 900
AUDIT_SKEW_MS: Final = 5 * 60 * 1000
"""Audit records are looked up by their stream id (Redis's clock) this much beyond the
range, then kept by their own ``ts`` (the acting console's clock)."""
ALERT_LOOKBACK_S: Final = 7 * 86400
"""How far before the range the alert log is read to know what was firing at its start."""
PACK_CHUNK: Final = 1024 * 1024
MAX_RANGE_S: Final = 7 * 86400
"""The longest range a snapshot covers (its per-second series is held in memory)."""

CHARTS: Final = {
    "throughput": ("Throughput by status", "Events per status over the range."),
    "dead_letters": ("Dead-letter arrivals", "Messages dead-lettered over the range."),
    "queue_depths": ("Queue depths", "Depth of the watched queues (messages)."),
    "latency": ("End-to-end latency", "Latency percentiles p50, p95 and p99."),
}
"""The charts a renderer is asked for: name (``charts/<name>.png``) -> (title, caption)."""

STAGE_HISTORY: Final = "flow history"
STAGE_ALERTS: Final = "alerts"
STAGE_AUDIT: Final = "audit trail"
STAGE_ENTRIES: Final = "failed payments"
STAGE_CHARTS: Final = "charts"
STAGE_REPORT: Final = "report"
STAGE_PACKING: Final = "packing"
STAGES: Final = (
    STAGE_HISTORY,
    STAGE_ALERTS,
    STAGE_AUDIT,
    STAGE_ENTRIES,
    STAGE_CHARTS,
    STAGE_REPORT,
    STAGE_PACKING,
)
"""The stages in the order they run (``charts`` only with a renderer)."""

ENTRY_COLUMNS: Final = (
    "entry_id",
    "dlq",
    "dead_lettered_at",
    "parked_at",
    "payment_id",
    "merchant",
    "amount",
    "currency",
    "reason",
    "origin_queue",
    "routing_key",
    "attempts",
    "state",
    "last_operator",
    "last_error",
)

_SECRET_QUERY = re.compile(r"pass|secret|token|auth|cred|key", re.IGNORECASE)
_SECRET_FIELD = re.compile(r"password|secret|token|credential", re.IGNORECASE)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


# --------------------------------------------------------------------------- API types


@dataclasses.dataclass(frozen=True)
class SnapshotRequest:
    """What to snapshot: a profile's data of ``from_s <= t < to_s``, into ``out``.

    ``overwrite`` allows replacing an existing ``out``; ``batch`` is how many
    entries or audit records are read and written at a time.
    """

    profile: Profile
    from_s: int
    to_s: int
    out: Path
    overwrite: bool = False
    batch: int = 200


class AlertSpan(NamedTuple):
    """A stretch of time an alert rule was firing (epoch seconds), clipped to the range.

    A plain tuple ``(start_s, end_s, rule, severity)`` for the chart renderer.
    """

    start_s: float
    end_s: float
    rule: str
    severity: str


@dataclasses.dataclass(frozen=True, slots=True)
class SnapshotProgress:
    """Where the writer is: a stage, and how far into it (``total`` None when unknown)."""

    stage: str
    done: int
    total: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class SnapshotCounts:
    """What the bundle holds; the same numbers report.html shows."""

    seconds: int  # rows of throughput.csv
    events: int
    dead_letters: int
    failed_payments: int  # rows of failed_payments.csv / .jsonl
    audit_records: int  # lines of audit.jsonl
    alert_events: int  # lines of alerts.jsonl


@dataclasses.dataclass(frozen=True, slots=True)
class SnapshotResult:
    """The bundle written: where, what it holds, its SHA-256 and size in bytes."""

    path: Path
    counts: SnapshotCounts
    sha256: str
    size: int


class SnapshotCancelled(Exception):
    """The snapshot was cancelled (its ``cancel`` event was set); nothing was left behind."""


ChartRenderer = Callable[[FlowFrame, Sequence[AlertSpan]], Mapping[str, bytes]]
ProgressCallback = Callable[[SnapshotProgress], None]


# --------------------------------------------------------------------------- helpers


def tool_version() -> str:
    """The installed version of payops-console."""
    try:
        return importlib.metadata.version(TOOL_NAME)
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def url_without_credentials(url: str) -> str:
    """``url`` with no user, no password and no secret-looking query parameter."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _SECRET_QUERY.search(k)
        ]
    )
    text = f"{parts.scheme}://{netloc}{parts.path}"
    return f"{text}?{query}" if query else text


def profile_for_manifest(profile: Profile) -> dict[str, Any]:
    """Every field of the profile, credentials removed, as plain JSON values.

    URLs lose their userinfo; a field whose name sounds secret is left out;
    ``alert_rules`` lists the rules in force (configured or default) with
    their kind.
    """
    data: dict[str, Any] = {}
    for f in dataclasses.fields(profile):
        if f.name == "alert_rules":
            continue
        if _SECRET_FIELD.search(f.name):
            continue
        data[f.name] = _manifest_value(getattr(profile, f.name))
    kinds = {cls: kind for kind, cls in RULE_KINDS.items()}
    data["alert_rules"] = [
        {"kind": kinds.get(type(rule), type(rule).__name__), **_manifest_value(rule)}
        for rule in profile.alerts
    ]
    data["alert_rules_configured"] = profile.alert_rules is not None
    return data


def _manifest_value(value: Any) -> Any:
    if isinstance(value, TapBinding):
        return str(value)  # as the config file writes it: "exchange" or "exchange:key"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _manifest_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_manifest_value(v) for v in value]
    if isinstance(value, str):
        return url_without_credentials(value) if "://" in value else value
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, JsonNumber):  # a number as the message wrote it (42.50 stays 42.50)
        text = str.__str__(value)
        return orjson.Fragment(text) if _JSON_NUMBER.fullmatch(text) else text
    # other subclasses of the JSON types (an enum, a pamqp string ...): as their base type
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def dumps_line(document: Mapping[str, Any]) -> bytes:
    """One JSONL line of ``document`` (numbers kept as written)."""
    return (
        orjson.dumps(document, default=_json_default, option=orjson.OPT_PASSTHROUGH_SUBCLASS)
        + b"\n"
    )


def _masked(text: str | None) -> str:
    return mask_sensitive_text(text) if text else ""


def _csv_cell(text: str) -> str:
    """A spreadsheet must not run a cell as a formula: ``'`` before ``=``, ``+`` ... text."""
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def _binary(data: bytes) -> dict[str, Any]:
    return {"kind": "binary", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _plain(value: Any) -> Any:
    """An AMQP field value as a JSON value (bytes that are not UTF-8: described, not copied)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            # no hash: a short value (a card number and a stray byte) could be guessed from one
            return {"kind": "binary", "size": len(value)}
    if isinstance(value, Decimal):
        return JsonNumber(str(value)) if value.is_finite() else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return str(value)


def _masked_text_values(value: Any) -> Any:
    if isinstance(value, JsonNumber):
        return value
    if isinstance(value, str):
        return mask_sensitive_text(value)
    if isinstance(value, Mapping):
        return {
            (mask_sensitive_text(k) if isinstance(k, str) else k): _masked_text_values(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_masked_text_values(v) for v in value]
    return value


def mask_untrusted(value: Any) -> Any:
    """A message-derived value (headers, properties, a parsed body) as masked JSON data.

    By definition ``_masked_text_values(mask_json(_plain(value)))``: card data masked as
    in a parsed structure, then every string and key masked as free text too. Done in one
    walk (:func:`_untrusted`) that gives the same result.
    """
    return _untrusted(value)


def _untrusted(value: Any) -> Any:
    """``_masked_text_values(mask_json(_plain(value)))``, the common types in one step each."""
    cls = type(value)
    if cls is str:
        # _plain keeps it; mask_json gives mask_text(value), then mask_sensitive_text of that.
        return mask_untrusted_text(value)
    if cls is dict:
        return _untrusted_dict(value)
    if cls is list or cls is tuple:
        # _plain, mask_json and _masked_text_values all map a list item by item.
        return [_untrusted(item) for item in value]
    if value is None or cls is bool:
        return value  # kept by all three passes
    if cls is int:
        # mask_json masks the text of an int that is a card number, then the text is masked
        # as free text; any other int is kept.
        text = str(value)
        masked = mask_text(text)
        return value if masked == text else mask_sensitive_text(masked)
    if cls is JsonNumber and len(value) < MIN_PAN_DIGITS:
        # Kept: mask_json masks a number's text only if it holds 13+ digits, and
        # _masked_text_values leaves JSON numbers alone.
        return value
    if cls is datetime.datetime or cls is datetime.date:
        # _plain writes it as isoformat(), a str the other two passes mask as text.
        return mask_untrusted_text(value.isoformat())
    # Anything else (floats, bytes, Decimals, subclasses, other mappings ...): the passes.
    return _masked_text_values(mask_json(_plain(value)))


_OTHER_KEY: Final = 0
_CVV_KEY: Final = 1
_PAN_KEY: Final = 2


_key_kinds: dict[str, tuple[str, int]] = {}


def _key_kind(name: str) -> tuple[str, int]:
    """How mask_untrusted shows a key (mask_text, then mask_sensitive_text), and what it names.

    Remembered (a pure function of an immutable value; exact str only, as _untrusted_dict
    calls it) for short keys with nothing to mask: the cache never holds card data.
    """
    known = _key_kinds.get(name)
    if known is None:
        kind = _CVV_KEY if is_cvv_key(name) else _PAN_KEY if is_pan_key(name) else _OTHER_KEY
        known = (mask_untrusted_text(name), kind)
        if known[0] == name and len(name) <= CACHED_TEXT_LEN:
            if len(_key_kinds) >= CACHED_TEXTS:
                _key_kinds.clear()
            _key_kinds[name] = known
    return known


def _untrusted_dict(value: dict[Any, Any]) -> Any:
    """:func:`_untrusted` of a dict: each key shown and its value masked as mask_json does."""
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if type(key) is not str:  # not from JSON or AMQP (str keys only): the three passes
            return _masked_text_values(mask_json(_plain(value)))
        shown, kind = _key_kind(key)
        if kind == _OTHER_KEY:
            out[shown] = mask_untrusted_text(item) if type(item) is str else _untrusted(item)
        elif kind == _CVV_KEY:
            out[shown] = HIDDEN  # mask_sensitive_text leaves HIDDEN as it is
        elif type(item) is str:
            # _plain keeps a str; mask_pan_value gives a plain str, _masked_text_values masks it.
            out[shown] = mask_sensitive_text(mask_pan_value(item))
        elif isinstance(item, Mapping | list | tuple):
            out[shown] = _untrusted(item)  # mask_json walks into containers under a PAN key
        else:
            plain = _plain(item)
            if isinstance(plain, Mapping):  # undecodable bytes, described: mask_json walks it
                out[shown] = _untrusted(plain)
            else:
                out[shown] = _masked_text_values(mask_pan_value(plain))
    if len(out) < len(value):
        # Two keys became one when masked: each pass keeps the first key's place and the
        # last value, which one walk does not reproduce - take the passes.
        return _masked_text_values(mask_json(_plain(value)))
    return out


def body_for_export(body: bytes) -> dict[str, Any]:
    """A message body for the JSONL export: masked JSON or text, or a binary description."""
    kind, _ = body_kind(body)
    if kind == "json":
        try:
            return {"kind": "json", "size": len(body), "content": mask_untrusted(loads_exact(body))}
        except (ValueError, RecursionError):
            kind = "text"
    if kind == "text":
        text = body.decode("utf-8", "replace")
        return {"kind": "text", "size": len(body), "content": mask_sensitive_text(text)}
    if kind == "empty":
        return {"kind": "empty", "size": 0}
    return _binary(body)


_entry_time = functools.lru_cache(maxsize=16)(iso_utc)
"""``iso_utc``, remembered: entry_row and entry_document format the same times of an entry."""


def entry_row(entry: ParkedEntry) -> list[str]:
    """The CSV row of one entry (``ENTRY_COLUMNS``), masked."""
    s = entry.summary
    return [
        s.entry_id,
        s.dlq,
        _entry_time(s.dead_lettered_at_ms),
        _entry_time(s.parked_at_ms),
        *(
            _csv_cell(_masked(text))
            for text in (
                s.payment_id,
                s.merchant,
                s.amount,
                s.currency,
                s.reason,
                s.origin_queue,
                s.routing_key,
            )
        ),
        str(s.attempts),
        str(s.state),
        _csv_cell(_masked(s.last_operator)),
        _csv_cell(_masked(entry.last_error)),
    ]


def entry_document(entry: ParkedEntry, *, in_range: bool) -> dict[str, Any]:
    """The JSONL record of one entry: the row's fields plus the whole message, masked."""
    s = entry.summary
    record = entry.record
    return {
        "entry_id": s.entry_id,
        "dlq": s.dlq,
        "state": str(s.state),
        "parked_in_range": in_range,
        "dead_lettered_at": _entry_time(s.dead_lettered_at_ms),
        "parked_at": _entry_time(s.parked_at_ms),
        "updated_at": iso_utc(entry.updated_at_ms),
        "payment_id": _masked(s.payment_id) or None,
        "merchant": _masked(s.merchant) or None,
        "amount": _masked(s.amount) or None,
        "currency": _masked(s.currency) or None,
        "reason": _masked(s.reason),
        "origin_queue": _masked(s.origin_queue),
        "routing_key": _masked(s.routing_key),
        "attempts": s.attempts,
        "last_operator": _masked(s.last_operator) or None,
        "action": _masked(entry.action) or None,
        "action_id": entry.action_id,
        "detail": _masked(entry.detail) or None,
        "last_error": _masked(entry.last_error) or None,
        "message_id": _masked(s.message_id) or None,
        "exchange": _masked(record.exchange),
        "delivered_routing_key": _masked(record.routing_key),
        "properties": mask_untrusted(record.properties),
        "headers": mask_untrusted({k: v for k, v in record.headers.items() if k != "x-death"}),
        "x_death": [
            {
                "queue": _masked(d.queue),
                "reason": _masked(d.reason),
                "count": d.count,
                "time": d.time.isoformat() if d.time else None,
                "exchange": _masked(d.exchange),
                "routing_keys": [_masked(k) for k in d.routing_keys],
            }
            for d in entry.deaths
        ],
        "body": body_for_export(record.body),
    }


def audit_document(record: AuditRecord, dlq: str) -> dict[str, Any]:
    """The JSONL record of one audit record, masked."""
    return {
        "dlq": dlq,
        "stream_id": record.stream_id,
        "ts": record.ts,
        "time": iso_utc(record.ts),
        "operator": _masked(record.operator),
        "host": _masked(record.host),
        "action": _masked(record.action),
        "entry_ids": list(record.entry_ids),
        "target": _masked(record.target),
        "result": _masked(record.result),
        "detail": _masked(record.detail),
        "action_id": record.action_id,
    }


def alert_document(event: AlertEvent) -> dict[str, Any]:
    """The JSONL record of one alert event, masked."""
    return {
        "ts": event.ts_ms,
        "time": iso_utc(event.ts_ms),
        "rule": _masked(event.rule),
        "kind": event.kind,
        "severity": event.severity,
        "value": event.value,
        "message": _masked(event.message),
    }


@dataclasses.dataclass(frozen=True, slots=True)
class _Span:
    span: AlertSpan
    started_before: bool
    still_firing: bool


def alert_spans(
    events: Sequence[AlertEvent],
    from_s: float,
    to_s: float,
    *,
    earlier: Iterable[AlertEvent] = (),
) -> list[AlertSpan]:
    """When each rule was firing within ``[from_s, to_s)``, from the range's events and
    (``earlier``) the events before it, which tell what was firing at its start."""
    return [s.span for s in _alert_spans(events, from_s, to_s, earlier=earlier)]


def _alert_spans(
    events: Sequence[AlertEvent],
    from_s: float,
    to_s: float,
    *,
    earlier: Iterable[AlertEvent] = (),
) -> list[_Span]:
    latest: dict[str, AlertEvent] = {}
    for event in sorted(earlier, key=lambda e: e.ts):
        latest[event.rule] = event
    open_: dict[str, tuple[float, str, bool]] = {
        rule: (from_s, event.severity, True)
        for rule, event in latest.items()
        if event.kind == "firing"
    }
    spans: list[_Span] = []
    for event in sorted(events, key=lambda e: (e.ts, e.kind != "resolved")):
        ts = min(max(event.ts, from_s), to_s)
        if event.kind == "firing":
            open_.setdefault(event.rule, (ts, event.severity, False))
            continue
        start, severity, before = open_.pop(event.rule, (from_s, event.severity, True))
        spans.append(_Span(AlertSpan(start, ts, event.rule, severity), before, False))
    for rule, (start, severity, before) in open_.items():
        spans.append(_Span(AlertSpan(start, to_s, rule, severity), before, True))
    spans.sort(key=lambda s: (s.span.start_s, s.span.rule))
    return spans


# --------------------------------------------------------------------------- members


class _Member:
    """One file of the bundle, written to the work directory and hashed as it is written."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.name = name
        self.path = workdir / name.replace("/", "__")
        self.rows = 0
        self.size = 0
        self._hash = hashlib.sha256()
        self._file: IO[bytes] | None = self.path.open("wb")

    def write(self, data: bytes) -> None:
        assert self._file is not None, f"{self.name} is closed"
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class _CsvMember:
    """A CSV member written a batch of rows at a time."""

    def __init__(self, member: _Member, header: Sequence[str]) -> None:
        self.member = member
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")
        self._writer.writerow(header)
        self.flush()

    def row(self, cells: Iterable[str]) -> None:
        self._writer.writerow(cells)
        self.member.rows += 1

    def flush(self) -> None:
        self.member.write(self._buffer.getvalue().encode("utf-8"))
        self._buffer.seek(0)
        self._buffer.truncate()


# --------------------------------------------------------------------------- the series


class _SeriesBuilder:
    """The dense per-second series of the whole range, filled one chunk frame at a time."""

    def __init__(self, from_s: int, to_s: int) -> None:
        self.from_s = from_s
        self.n = to_s - from_s
        self.counts: dict[str, FloatArray] = {}
        self.depths: dict[str, FloatArray] = {}
        self.dead: FloatArray = np.zeros(self.n)
        self.latency: FloatArray = np.full((len(LATENCY_PERCENTILES), self.n), np.nan)

    def add(self, frame: FlowFrame) -> None:
        if frame.seconds == 0:
            return
        start = int(frame.t[0]) - self.from_s
        end = start + frame.seconds
        for row, name in enumerate(frame.status_names):
            series = self.counts.setdefault(name, np.zeros(self.n))
            series[start:end] = frame.status_counts[row]
        for row, name in enumerate(frame.queue_names):
            series = self.depths.setdefault(name, np.full(self.n, np.nan))
            series[start:end] = frame.queue_depths[row]
        self.dead[start:end] = frame.dead_letters
        self.latency[:, start:end] = frame.latency_ms

    def frame(self, failure_statuses: frozenset[str]) -> FlowFrame:
        names = tuple(self.counts)
        counts = np.vstack([self.counts[n] for n in names]) if names else np.zeros((0, self.n))
        queues = tuple(self.depths)
        depths = np.vstack([self.depths[q] for q in queues]) if queues else np.zeros((0, self.n))
        total = float(counts.sum())
        failures = sum(
            float(counts[i].sum()) for i, n in enumerate(names) if n.lower() in failure_statuses
        )
        p99 = self.latency[-1]
        return FlowFrame(
            t=np.arange(self.from_s, self.from_s + self.n, dtype=np.float64),
            status_names=names,
            status_counts=counts,
            dead_letters=self.dead,
            latency_ms=self.latency,
            queue_names=queues,
            queue_depths=depths,
            headline=Headline(
                events_per_s=total / self.n if self.n else 0.0,
                failure_rate_pct=failures / total * 100.0 if total else None,
                dlq_depth=None,
                latency_p99_ms=None if np.all(np.isnan(p99)) else float(np.nanmax(p99)),
                tap_dropped=0,
                total_events=int(total),
            ),
        )


def _number_cell(value: float) -> str:
    if math.isnan(value):
        return ""
    if value.is_integer():
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


# --------------------------------------------------------------------------- the writer


async def write_snapshot(
    request: SnapshotRequest,
    redis: aioredis.Redis,
    *,
    render_charts: ChartRenderer | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> SnapshotResult:
    """Write the bundle of ``request`` (see the module docstring).

    ``redis`` must be created with ``decode_responses=False``. ``render_charts``
    turns the range's series and alert spans into PNGs by chart name (see
    :data:`CHARTS`); without it the report says there are no charts.
    ``progress`` is called per batch; setting ``cancel`` (or cancelling the
    task) stops at the next batch with :class:`SnapshotCancelled` (or
    ``CancelledError``), leaving no file behind.

    Raises ``ValueError`` for an empty range, ``FileExistsError`` when ``out``
    exists and ``overwrite`` is not set, Redis errors as they come.
    """
    if request.to_s <= request.from_s:
        raise ValueError(f"empty range: {request.from_s} is not before {request.to_s}")
    if request.to_s - request.from_s > MAX_RANGE_S:
        raise ValueError(
            f"a snapshot covers at most {format_duration(MAX_RANGE_S)},"
            f" not {format_duration(request.to_s - request.from_s)}"
        )
    if request.batch <= 0:
        raise ValueError(f"batch must be positive: {request.batch}")
    out = Path(request.out)
    if out.exists() and not request.overwrite:
        raise FileExistsError(f"{out} exists")
    if out.is_dir():
        raise IsADirectoryError(f"{out} is a directory")
    job = _SnapshotJob(
        request, redis, render_charts=render_charts, progress=progress, cancel=cancel
    )
    partial = out.with_name(out.name + ".partial")
    job.workdir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        sha256, size = await job.run(partial)
        os.replace(partial, out)
    except BaseException:
        job.close_members()
        partial.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(job.workdir, ignore_errors=True)
    return SnapshotResult(out, job.counts(), sha256, size)


class _SnapshotJob:
    """One run of :func:`write_snapshot`."""

    def __init__(
        self,
        request: SnapshotRequest,
        redis: aioredis.Redis,
        *,
        render_charts: ChartRenderer | None,
        progress: ProgressCallback | None,
        cancel: threading.Event | None,
    ) -> None:
        self.request = request
        self.profile = request.profile
        self.from_s = int(request.from_s)
        self.to_s = int(request.to_s)
        self.from_ms = self.from_s * 1000
        self.to_ms = self.to_s * 1000
        self.workdir = Path()  # set by write_snapshot once the stores accepted the client
        self.render_charts = render_charts
        self._progress = progress
        self._cancel = cancel
        self.created_at = time.time()
        self.failure_statuses = frozenset(s.lower() for s in self.profile.failure_statuses)
        self.history = HistoryStore.for_profile(redis, self.profile)
        self.alert_log = AlertLog(redis, self.profile.redis_prefix)
        self.store = ParkingStore(redis, self.profile.redis_prefix)
        self.members: list[_Member] = []
        self.frame: FlowFrame | None = None
        self.seconds_with_data = 0
        self.reasons: Counter[str] = Counter()
        self.alert_events: list[AlertEvent] = []
        self.spans: list[_Span] = []
        self.actions = ActionTally()
        self.payments = FailedPaymentTally()
        self.named: dict[str, set[str]] = {}
        self.charts: dict[str, bytes] = {}
        self.charts_note = ""

    # -- plumbing -------------------------------------------------------------------------

    def _member(self, name: str) -> _Member:
        member = _Member(self.workdir, name)
        self.members.append(member)
        return member

    def close_members(self) -> None:
        for member in self.members:
            member.close()

    def _report(self, stage: str, done: int, total: int | None) -> None:
        if self._progress is not None:
            self._progress(SnapshotProgress(stage, done, total))

    async def _tick(self) -> None:
        """Between batches: stop when cancelled, and let the event loop run."""
        if self._cancel is not None and self._cancel.is_set():
            raise SnapshotCancelled("snapshot cancelled")
        await asyncio.sleep(0)
        if self._cancel is not None and self._cancel.is_set():
            raise SnapshotCancelled("snapshot cancelled")

    def counts(self) -> SnapshotCounts:
        frame = self.frame
        by_name = {m.name: m.rows for m in self.members}
        return SnapshotCounts(
            seconds=by_name.get("throughput.csv", 0),
            events=int(frame.status_counts.sum()) if frame is not None else 0,
            dead_letters=int(frame.dead_letters.sum()) if frame is not None else 0,
            failed_payments=by_name.get("failed_payments.csv", 0),
            audit_records=by_name.get("audit.jsonl", 0),
            alert_events=by_name.get("alerts.jsonl", 0),
        )

    # -- the run --------------------------------------------------------------------------

    async def run(self, partial: Path) -> tuple[str, int]:
        await self._read_history()
        await self._write_throughput()
        await self._read_alerts()
        await self._read_audit()
        await self._read_entries()
        await self._render_charts()
        self._write_report()
        self._write_manifest()
        self.close_members()
        return await self._pack(partial)

    async def _read_history(self) -> None:
        total = self.to_s - self.from_s
        builder = _SeriesBuilder(self.from_s, self.to_s)
        self._report(STAGE_HISTORY, 0, total)
        start = self.from_s
        while start < self.to_s:
            end = min(start + HISTORY_CHUNK_S, self.to_s)
            rows = await self.history.read_rows(start, end)
            self.seconds_with_data += len(rows)
            for row in rows:
                self.reasons.update(row.failure_reasons)
            builder.add(frame_from_rows(rows, start, end))
            self._report(STAGE_HISTORY, end - self.from_s, total)
            await self._tick()
            start = end
        self.frame = builder.frame(self.failure_statuses)

    async def _write_throughput(self) -> None:
        frame = self.frame
        assert frame is not None
        header = [
            "time_utc",
            "epoch_s",
            *(_masked(name) for name in frame.status_names),
            "dead_letters",
            *(f"latency_p{p}_ms" for p in LATENCY_PERCENTILES),
            *(f"depth:{_masked(name)}" for name in frame.queue_names),
        ]
        out = _CsvMember(self._member("throughput.csv"), header)
        stamps = np.datetime_as_string(frame.t.astype("datetime64[s]"), unit="s")
        counts = frame.status_counts
        latency = frame.latency_ms
        depths = frame.queue_depths
        for start in range(0, frame.seconds, 3600):
            for i in range(start, min(start + 3600, frame.seconds)):
                out.row(
                    [
                        f"{stamps[i]}Z",
                        str(int(frame.t[i])),
                        *(str(int(v)) for v in counts[:, i]),
                        str(int(frame.dead_letters[i])),
                        *(_number_cell(float(v)) for v in latency[:, i]),
                        *(_number_cell(float(v)) for v in depths[:, i]),
                    ]
                )
            out.flush()
            await self._tick()
        out.member.close()

    async def _read_alerts(self) -> None:
        self._report(STAGE_ALERTS, 0, None)
        self.alert_events = await self.alert_log.read_range(
            self.from_ms, self.to_ms - 1, newest_first=False
        )
        lookback_ms = max(0, self.from_ms - ALERT_LOOKBACK_S * 1000)
        earlier = await self.alert_log.read_range(
            lookback_ms, self.from_ms - 1, newest_first=True, count=5000
        )
        self.spans = _alert_spans(self.alert_events, self.from_s, self.to_s, earlier=earlier)
        member = self._member("alerts.jsonl")
        for start in range(0, len(self.alert_events), self.request.batch):
            batch = self.alert_events[start : start + self.request.batch]
            member.write(b"".join(orjson.dumps(alert_document(e)) + b"\n" for e in batch))
            member.rows += len(batch)
            self._report(STAGE_ALERTS, member.rows, len(self.alert_events))
            await self._tick()
        member.close()
        self._report(STAGE_ALERTS, len(self.alert_events), len(self.alert_events))

    async def _read_audit(self) -> None:
        member = self._member("audit.jsonl")
        self._report(STAGE_AUDIT, 0, None)
        for dlq in self.profile.dead_letter_queues:
            named = self.named.setdefault(dlq, set())
            async for batch in self.store.iter_audit(
                dlq,
                self.from_ms - AUDIT_SKEW_MS,
                self.to_ms + AUDIT_SKEW_MS,
                batch=self.request.batch,
            ):
                lines: list[bytes] = []
                for record in batch:
                    if not self.from_ms <= record.ts < self.to_ms:
                        continue
                    named.update(record.entry_ids)
                    self.actions.add(record, dlq)
                    lines.append(orjson.dumps(audit_document(record, dlq)) + b"\n")
                member.write(b"".join(lines))
                member.rows += len(lines)
                self._report(STAGE_AUDIT, member.rows, None)
                await self._tick()
        member.close()
        self._report(STAGE_AUDIT, member.rows, member.rows)

    async def _read_entries(self) -> None:
        csv_out = _CsvMember(self._member("failed_payments.csv"), ENTRY_COLUMNS)
        jsonl = self._member("failed_payments.jsonl")
        dlqs = self.profile.dead_letter_queues
        total = 0
        for dlq in dlqs:
            total += await self.store.count_between(dlq, self.from_ms, self.to_ms)
            total += sum(1 for i in self.named.get(dlq, ()) if not self._id_in_range(i))
        done = 0
        self._report(STAGE_ENTRIES, 0, total)

        async def write(entries: Sequence[ParkedEntry]) -> None:
            nonlocal done, total
            lines: list[bytes] = []
            for entry in entries:
                in_range = self.from_ms <= entry.summary.parked_at_ms < self.to_ms
                csv_out.row(entry_row(entry))
                lines.append(dumps_line(entry_document(entry, in_range=in_range)))
                self.payments.add(entry.summary, in_range=in_range)
            csv_out.flush()
            jsonl.write(b"".join(lines))
            jsonl.rows += len(lines)
            done += len(entries)
            total = max(total, done)
            self._report(STAGE_ENTRIES, done, total)
            await self._tick()

        for dlq in dlqs:
            named = self.named.get(dlq, set())
            async for entries in self.store.iter_entries_between(
                dlq, self.from_ms, self.to_ms, batch=self.request.batch
            ):
                for entry in entries:
                    named.discard(entry.entry_id)
                await write(entries)
            # Entries parked before (or after) the range that an operator acted on in it.
            rest = sorted(named)
            named.clear()
            for start in range(0, len(rest), self.request.batch):
                found = await self.store.get_many(dlq, rest[start : start + self.request.batch])
                await write([entry for entry in found if entry is not None])
        csv_out.member.close()
        jsonl.close()
        self._report(STAGE_ENTRIES, done, done)

    def _id_in_range(self, entry_id: str) -> bool:
        ms = entry_id_time_ms(entry_id)  # the parking time, for our ids
        return ms is not None and self.from_ms <= ms < self.to_ms

    async def _render_charts(self) -> None:
        if self.render_charts is None:
            self.charts_note = "Charts were not rendered (no chart renderer in this run)."
            return
        assert self.frame is not None
        self._report(STAGE_CHARTS, 0, len(CHARTS))
        await self._tick()
        try:
            rendered = self.render_charts(self.frame, [s.span for s in self.spans])
        except Exception as exc:  # a chart must not cost the operator the whole snapshot
            log.exception("rendering the snapshot charts failed")
            self.charts_note = f"Charts could not be rendered: {_masked(str(exc))}."
            return
        for name in CHARTS:
            png = rendered.get(name)
            if png:
                self.charts[name] = bytes(png)
                member = self._member(f"charts/{name}.png")
                member.write(self.charts[name])
                member.close()
        self._report(STAGE_CHARTS, len(self.charts), len(CHARTS))
        await self._tick()

    def _summary(self) -> ReportSummary:
        frame = self.frame
        assert frame is not None
        counts = frame.status_counts
        per_status = {
            _masked(name): int(counts[i].sum()) for i, name in enumerate(frame.status_names)
        }
        events = int(counts.sum())
        failures = sum(
            int(counts[i].sum())
            for i, name in enumerate(frame.status_names)
            if name.lower() in self.failure_statuses
        )
        per_second = counts.sum(axis=0) if counts.size else np.zeros(frame.seconds)
        peak = int(per_second.max()) if per_second.size else 0
        p99 = frame.latency_ms[-1]
        reasons = {_masked(k): v for k, v in self.reasons.items() if v}
        payments = self.payments
        by_name = {m.name: m for m in self.members}
        return ReportSummary(
            profile_name=self.profile.name,
            tool_version=tool_version(),
            created_at_s=self.created_at,
            from_s=self.from_s,
            to_s=self.to_s,
            seconds=frame.seconds,
            seconds_with_data=self.seconds_with_data,
            events=events,
            statuses=count_rows(per_status, flagged=self._failure_labels(frame)),
            failure_statuses=tuple(self.profile.failure_statuses),
            failures=failures,
            dead_letters=int(frame.dead_letters.sum()),
            peak_events_per_s=peak,
            peak_at_s=int(frame.t[int(per_second.argmax())]) if peak else None,
            max_p99_ms=None if np.all(np.isnan(p99)) else float(np.nanmax(p99)),
            failure_reasons=count_rows(reasons, top=TOP_REASONS),
            failure_reasons_total=sum(reasons.values()),
            failed_payments=payments.total,
            parked_in_range=payments.parked_in_range,
            acted_on_earlier=payments.total - payments.parked_in_range,
            dead_letter_queues_configured=tuple(self.profile.dead_letter_queues),
            entry_states=count_rows(dict(payments.states)),
            reason_queues=payments.reason_queue_rows(),
            reason_queues_total=len(payments.reason_queues),
            merchants=payments.merchant_rows(),
            merchants_total=len(payments.merchants),
            origin_queues=count_rows(dict(payments.origin_queues)),
            dead_letter_queues=count_rows(dict(payments.dlqs)),
            alert_spans=tuple(self._span_row(s) for s in self.spans),
            alert_events=tuple(_event_row(e) for e in self.alert_events[:MAX_TABLE_ROWS]),
            alert_events_total=len(self.alert_events),
            alerts_fired=sum(1 for e in self.alert_events if e.kind == "firing"),
            actions=tuple(self.actions.rows),
            actions_total=self.actions.total,
            actions_by_kind=count_rows(dict(self.actions.kinds)),
            charts=tuple(
                ChartImage(name, CHARTS[name][0], self._caption(name), png)
                for name, png in self.charts.items()
            ),
            charts_note=self.charts_note,
            files=tuple(
                BundleFile(name, description, by_name[name].rows if rows else None)
                for name, description, rows in self._file_list()
            ),
        )

    def _failure_labels(self, frame: FlowFrame) -> list[str]:
        return [_masked(n) for n in frame.status_names if n.lower() in self.failure_statuses]

    def _caption(self, name: str) -> str:
        caption = CHARTS[name][1]
        if self.spans:
            caption += " Shaded: alerts firing (red critical, amber warning)."
        return caption

    def _span_row(self, span: _Span) -> AlertSpanRow:
        s = span.span
        return AlertSpanRow(
            rule=_masked(s.rule),
            severity=s.severity,
            start=format_local(s.start_s),
            end=format_local(s.end_s),
            duration=format_duration(s.end_s - s.start_s),
            started_before=span.started_before,
            still_firing=span.still_firing,
        )

    def _file_list(self) -> list[tuple[str, str, bool]]:
        files = [("report.html", "This report.", False)]
        files += [
            (f"charts/{name}.png", f"Chart: {CHARTS[name][0].lower()}.", False)
            for name in self.charts
        ]
        files += [
            ("throughput.csv", "Every second of the range: events per status, dead letters,"
             " latency p50/p95/p99, queue depths.", True),
            ("failed_payments.csv", "The failed payments (workbench rows).", True),
            ("failed_payments.jsonl", "The failed payments with properties, headers,"
             " x-death and the masked body.", True),
            ("audit.jsonl", "The operator actions (audit records) of the range.", True),
            ("alerts.jsonl", "The alert events of the range.", True),
            ("manifest.json", "Tool version, profile (no credentials), range, counts and the"
             " SHA-256 of every file.", False),
        ]  # fmt: skip
        return files

    def _write_report(self) -> None:
        self._report(STAGE_REPORT, 0, 1)
        member = self._member("report.html")
        member.write(render_report(self._summary()).encode("utf-8"))
        member.close()
        self._report(STAGE_REPORT, 1, 1)

    def _write_manifest(self) -> None:
        counts = dataclasses.asdict(self.counts())
        created = datetime.datetime.fromtimestamp(self.created_at, tz=datetime.UTC)
        manifest = {
            "format": FORMAT,
            "tool": {"name": TOOL_NAME, "version": tool_version()},
            "created_at": created.isoformat().replace("+00:00", "Z"),
            "profile": profile_for_manifest(self.profile),
            "time_range": {
                "from_utc": iso_utc(self.from_ms),
                "to_utc": iso_utc(self.to_ms),
                "from_local": format_local(self.from_s),
                "to_local": format_local(self.to_s),
                "from_epoch_s": self.from_s,
                "to_epoch_s": self.to_s,
                "seconds": self.to_s - self.from_s,
                "end_exclusive": True,
            },
            "counts": counts,
            "charts": sorted(self.charts) if self.charts else self.charts_note,
            "files": [
                {"name": m.name, "size": m.size, "sha256": m.sha256}
                | ({"rows": m.rows} if m.name.endswith((".csv", ".jsonl")) else {})
                for m in self._ordered_members()
            ],
        }
        member = self._member("manifest.json")
        member.write(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
        member.close()

    def _ordered_members(self) -> list[_Member]:
        order = [name for name, _, _ in self._file_list()]
        by_name = {m.name: m for m in self.members}
        return [by_name[name] for name in order if name in by_name]

    async def _pack(self, partial: Path) -> tuple[str, int]:
        members = self._ordered_members()
        members += [m for m in self.members if m not in members]  # the manifest, last
        total = sum(m.size for m in members)
        done = 0
        self._report(STAGE_PACKING, 0, total)
        stamp = time.localtime(self.created_at)[:6]
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            for member in members:
                info = zipfile.ZipInfo(member.name, date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                info.file_size = member.size
                with member.path.open("rb") as src, bundle.open(info, "w") as dst:
                    while chunk := src.read(PACK_CHUNK):
                        dst.write(chunk)
                        done += len(chunk)
                        self._report(STAGE_PACKING, done, total)
                        await self._tick()
                member.path.unlink()
        digest = hashlib.sha256()
        size = 0
        with partial.open("rb") as packed:
            while chunk := packed.read(PACK_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                await self._tick()
        self._report(STAGE_PACKING, total, total)
        return digest.hexdigest(), size


def _event_row(event: AlertEvent) -> AlertEventRow:
    return AlertEventRow(
        time_local=format_local(event.ts),
        time_utc=iso_utc(event.ts_ms),
        rule=_masked(event.rule),
        kind=event.kind,
        severity=event.severity,
        value="" if event.value is None else f"{event.value:,.4g}",
        message=_masked(event.message),
    )


def default_file_name(profile_name: str, from_s: int, to_s: int) -> str:
    """``payops-snapshot-<profile>-<from>-<to>.zip`` (UTC, file-name safe)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", profile_name).strip("._") or "profile"

    def stamp(s: int) -> str:
        return datetime.datetime.fromtimestamp(s, tz=datetime.UTC).strftime("%Y%m%dT%H%M%SZ")

    return f"payops-snapshot-{safe}-{stamp(from_s)}-{stamp(to_s)}.zip"
