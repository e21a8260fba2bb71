"""The rows and records of the bundle's data files, masked.

Card numbers are masked (first 6 / last 4) and CVV-like fields hidden in every
free-text or message-derived value (bodies, headers, properties, errors,
details, names; see :mod:`services.masking`); binary bodies are described
(size, SHA-256) and non-UTF-8 header values by their size, never copied.
Identifiers (entry ids, stream ids, action ids) and timestamps are not masked:
they are ours, and a hex id can look like a card number. CSV cells that a
spreadsheet would run as a formula are quoted.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import math
import re
from collections.abc import Callable, Iterator, Mapping
from operator import attrgetter, call
from typing import Any, Final

import numpy as np
import orjson

from services.alerts.model import AlertEvent
from services.flow.types import LATENCY_PERCENTILES, FlowFrame
from services.masking.json import (
    ID_PROPERTIES,
    IdTree,
    JsonNumber,
    dumps_pretty,
    loads_exact,
    mask_optional_identifier,
    mask_optional_text,
    mask_sensitive_text,
)
from services.masking.message import mask_untrusted
from services.time_range import iso_utc
from services.workbench.actions.jobs import Job
from services.workbench.columns import CSV_COLUMNS, EntryColumn
from services.workbench.model import AuditRecord, ParkedEntry, body_kind
from services.workbench.shown import escaped, masked_escaped

ENTRY_COLUMNS: Final = tuple(column.name for column in CSV_COLUMNS)
"""The header of ``failed_payments.csv``."""

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_TOO_DEEP: Final = "(left out: nested too deeply to write; the entry is unchanged in the workbench)"
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


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
    """One JSONL line of ``document`` (numbers kept as written).

    What orjson refuses (an integer beyond 64 bits, nesting deeper than 255) is
    written by the slower exact writer; a document nested deeper than Python's
    recursion allows keeps its fields and says why its content is left out. A
    message never stops the export.
    """
    try:
        return (
            orjson.dumps(document, default=_json_default, option=orjson.OPT_PASSTHROUGH_SUBCLASS)
            + b"\n"
        )
    except orjson.JSONEncodeError:
        pass
    try:  # structural newlines only: the writer escapes those inside strings
        return dumps_pretty(document, indent=0).replace("\n", "").encode() + b"\n"
    except UnicodeEncodeError:  # a text that was not UTF-8 (an exchange, a routing key)
        return dumps_line(_escaped_texts(document))
    except RecursionError:
        flat = {
            key: value if isinstance(value, str | int | float | bool | None) else _TOO_DEEP
            for key, value in document.items()
        }
        return orjson.dumps(flat) + b"\n"


def _escaped_texts(value: Any) -> Any:
    """``value`` with its texts' bytes that were not UTF-8 as ``\\xNN``, masked
    (:func:`services.workbench.shown.masked_escaped`)."""
    if isinstance(value, str):  # a number as written (JsonNumber) stays one
        return value if escaped(value) == value else masked_escaped(value)
    if isinstance(value, Mapping):
        return {_escaped_texts(k): _escaped_texts(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_escaped_texts(v) for v in value]
    return value


def _csv_cell(text: str) -> str:
    """A spreadsheet must not run a cell as a formula: ``'`` before ``=``, ``+`` ... text."""
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def _binary(data: bytes) -> dict[str, Any]:
    return {"kind": "binary", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _without_floats(value: Any) -> bool:
    """Whether parsed JSON holds no float (walked without recursion, any depth)."""
    todo = [value]
    while todo:
        item = todo.pop()
        cls = type(item)
        if cls is dict:
            todo.extend(item.values())
        elif cls is list:
            todo.extend(item)
        elif cls is float:
            return False
    return True


def exact_json(body: bytes, parsed: Any) -> Any:
    """``loads_exact(body)``, given ``parsed = orjson.loads(body)``: ``parsed`` itself when
    it holds no float (the two parsers agree on every other value orjson accepts: ints,
    strings, last key wins; a float - or an int past 64 bits, which orjson makes a float -
    is the one value loads_exact keeps as written), else the body parsed again."""
    return parsed if _without_floats(parsed) else loads_exact(body)


def body_for_export(body: bytes, ids: IdTree | None = None) -> dict[str, Any]:
    """A message body for the JSONL export: masked JSON (``ids``: where the profile's
    identifiers are, shown as ids) or text, or a binary description."""
    kind, parsed = body_kind(body)
    if kind == "json":
        try:
            content = mask_untrusted(exact_json(body, parsed), ids)
            return {"kind": "json", "size": len(body), "content": content}
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


_masked_text = functools.lru_cache(maxsize=8192)(mask_optional_text)
"""``mask_optional_text`` of a text, remembered: the reasons, queues, merchants, causes ...
of a range repeat (the masking is a function of the text alone)."""


def _masked_or_none(value: Any) -> str | None:
    """``mask_optional_text(value) or None``; a text through :data:`_masked_text`."""
    if type(value) is str:
        return _masked_text(value) or None
    return mask_optional_text(value) or None


def _cell(value: Any) -> str:
    """A text column's CSV cell as :func:`entry_row` writes it (not a text: empty)."""
    return _csv_cell(_masked_text(value)) if type(value) is str else ""


_OURS: Final = frozenset({"entry_id", "dlq"})
"""The columns that are ours (ids, the queue's name): written as they are, not masked."""
_IDENTIFIERS: Final = frozenset({"payment_id"})
"""The columns masked as identifiers (:func:`mask_optional_identifier`), not as free text."""


_masked_identifier = functools.lru_cache(maxsize=16)(mask_optional_identifier)
"""``mask_optional_identifier``, remembered: the row and the record mask an entry's payment
id once."""


def _identifier_cell(value: str | None) -> str:
    return _csv_cell(_masked_identifier(value))


def _cell_writer(column: EntryColumn) -> Callable[[Any], str]:
    """How :func:`entry_row` writes a value of ``column`` in its cell.

    Our ids and times are not masked, an identifier is masked as one
    (services.masking.json), every other cell as free text (not a text: empty).
    """
    if column.name in _OURS or column.kind in ("count", "state"):
        return str  # our ids as they are, a number or a state as text
    if column.kind == "time":
        return _entry_time
    if column.name in _IDENTIFIERS:
        return _identifier_cell
    return _cell


_ROW_VALUES: Final = attrgetter(
    *(c.field if c.kind == "detail" else f"summary.{c.field}" for c in CSV_COLUMNS)
)
"""The values of a row's cells, ``ENTRY_COLUMNS`` in order, in one call: the column
definitions (:mod:`services.workbench.columns`) say which there are and where each is."""
_ROW_WRITERS: Final = tuple(_cell_writer(column) for column in CSV_COLUMNS)
"""How each cell of a row is written (:func:`_cell_writer`)."""


def entry_row(entry: ParkedEntry) -> list[str]:
    """The CSV row of one entry (``ENTRY_COLUMNS``), masked."""
    return list(map(call, _ROW_WRITERS, _ROW_VALUES(entry)))  # no Python frame per cell


def entry_document(
    entry: ParkedEntry, *, in_range: bool, ids: IdTree | None = None
) -> dict[str, Any]:
    """The JSONL record of one entry: the row's fields plus the whole message, masked
    (``ids``: where the profile's bodies hold identifiers)."""
    s = entry.summary
    record = entry.record
    return {
        "entry_id": s.entry_id,
        "dlq": s.dlq,
        "state": str(s.state),
        "parked_in_range": in_range,
        "dead_lettered_at": _entry_time(s.dead_lettered_at_ms),
        "parked_at": _entry_time(s.parked_at_ms),
        "updated_at": _entry_time(entry.updated_at_ms),
        "payment_id": mask_optional_identifier(s.payment_id) or None,
        "merchant": mask_optional_text(s.merchant) or None,
        "amount": mask_optional_text(s.amount) or None,
        "currency": mask_optional_text(s.currency) or None,
        "reason": mask_optional_text(s.reason),
        "origin_queue": mask_optional_text(s.origin_queue),
        "routing_key": mask_optional_text(s.routing_key),
        "attempts": s.attempts,
        "last_operator": mask_optional_text(s.last_operator) or None,
        "action": mask_optional_text(entry.action) or None,
        "action_id": entry.action_id,
        "detail": mask_optional_text(entry.detail) or None,
        "last_error": mask_optional_text(entry.last_error) or None,
        "message_id": mask_optional_identifier(s.message_id) or None,
        "exchange": mask_optional_text(record.exchange),
        "delivered_routing_key": mask_optional_text(record.routing_key),
        "properties": mask_untrusted(record.properties, ID_PROPERTIES),
        "headers": mask_untrusted({k: v for k, v in record.headers.items() if k != "x-death"}),
        "x_death": [
            {
                "queue": mask_optional_text(d.queue),
                "reason": mask_optional_text(d.reason),
                "count": d.count,
                "time": d.time.isoformat() if d.time else None,
                "exchange": mask_optional_text(d.exchange),
                "routing_keys": [mask_optional_text(k) for k in d.routing_keys],
            }
            for d in entry.deaths
        ],
        "outcome": _outcome(entry),
        "body": body_for_export(record.body, ids),
    }


def entry_row_and_document(
    entry: ParkedEntry, *, in_range: bool, ids: IdTree | None = None
) -> tuple[list[str], dict[str, Any]]:
    """``(entry_row(entry), entry_document(entry, ...))``, the texts they share masked
    once: what the export writes per entry."""
    s = entry.summary
    record = entry.record
    row = entry_row(entry)
    dead_lettered_at = _entry_time(s.dead_lettered_at_ms)
    parked_at = _entry_time(s.parked_at_ms)
    state = str(s.state)
    payment_id = _masked_identifier(s.payment_id)
    document = {
        "entry_id": s.entry_id,
        "dlq": s.dlq,
        "state": state,
        "parked_in_range": in_range,
        "dead_lettered_at": dead_lettered_at,
        "parked_at": parked_at,
        "updated_at": _entry_time(entry.updated_at_ms),
        "payment_id": payment_id or None,
        "merchant": _masked_or_none(s.merchant),
        "amount": _masked_or_none(s.amount),
        "currency": _masked_or_none(s.currency),
        "reason": _masked_or_none(s.reason) or "",
        "origin_queue": _masked_or_none(s.origin_queue) or "",
        "routing_key": _masked_or_none(s.routing_key) or "",
        "attempts": s.attempts,
        "last_operator": _masked_or_none(s.last_operator),
        "action": _masked_or_none(entry.action),
        "action_id": entry.action_id,
        "detail": mask_optional_text(entry.detail) or None,
        "last_error": _masked_or_none(entry.last_error),
        "message_id": mask_optional_identifier(s.message_id) or None,
        "exchange": _masked_or_none(record.exchange) or "",
        "delivered_routing_key": _masked_or_none(record.routing_key) or "",
        "properties": mask_untrusted(record.properties, ID_PROPERTIES),
        "headers": mask_untrusted({k: v for k, v in record.headers.items() if k != "x-death"}),
        "x_death": [
            {
                "queue": _masked_or_none(d.queue) or "",
                "reason": _masked_or_none(d.reason) or "",
                "count": d.count,
                "time": d.time.isoformat() if d.time else None,
                "exchange": _masked_or_none(d.exchange) or "",
                "routing_keys": [_masked_or_none(k) or "" for k in d.routing_keys],
            }
            for d in entry.deaths
        ],
        "outcome": _outcome(entry),
        "body": body_for_export(record.body, ids),
    }
    return row, document


def _outcome(entry: ParkedEntry) -> dict[str, Any] | None:
    """What became of the payment after the last action (masked), None before any."""
    if entry.outcome is None:
        return None
    data = entry.outcome.as_json()
    data["detail"] = mask_optional_text(entry.outcome.detail) or None
    data["at"] = iso_utc(entry.outcome.at_ms) or None
    return data


def job_document(job: Job) -> dict[str, Any]:
    """The JSONL record of one job: who, what, its counters and its outcome summary."""
    data = job.as_json()
    for key in ("note", "target", "reason", "operator"):
        data[key] = mask_optional_text(data[key]) or None
    data["created_at"] = iso_utc(job.created_ms)
    data["finished_at"] = iso_utc(job.finished_ms) or None
    data["outcome_summary"] = job.outcome_line()
    return data


def audit_document(record: AuditRecord, dlq: str) -> dict[str, Any]:
    """The JSONL record of one audit record, masked."""
    return {
        "dlq": dlq,
        "stream_id": record.stream_id,
        "ts": record.ts,
        "time": iso_utc(record.ts),
        "operator": mask_optional_text(record.operator),
        "host": mask_optional_text(record.host),
        "action": mask_optional_text(record.action),
        "entry_ids": list(record.entry_ids),
        "target": mask_optional_text(record.target),
        "result": mask_optional_text(record.result),
        "detail": mask_optional_text(record.detail),
        "action_id": record.action_id,
    }


def alert_document(event: AlertEvent) -> dict[str, Any]:
    """The JSONL record of one alert event, masked."""
    return {
        "ts": event.ts_ms,
        "time": iso_utc(event.ts_ms),
        "rule": mask_optional_text(event.rule),
        "kind": event.kind,
        "severity": event.severity,
        "value": event.value,
        "message": mask_optional_text(event.message),
    }


# --------------------------------------------------------------------------- throughput.csv


def _number_cell(value: float) -> str:
    if math.isnan(value):
        return ""
    if value.is_integer():
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


def throughput_header(frame: FlowFrame) -> list[str]:
    """The header of throughput.csv: time, counts per status, dead letters, latency, depths."""
    return [
        "time_utc",
        "epoch_s",
        *(mask_optional_text(name) for name in frame.status_names),
        "dead_letters",
        *(f"latency_p{p}_ms" for p in LATENCY_PERCENTILES),
        *(f"depth:{mask_optional_text(name)}" for name in frame.queue_names),
    ]


def throughput_rows(frame: FlowFrame, start: int, stop: int) -> Iterator[list[str]]:
    """The rows of throughput.csv for the seconds ``start <= i < stop`` of ``frame``."""
    stamps = np.datetime_as_string(frame.t[start:stop].astype("datetime64[s]"), unit="s")
    counts = frame.status_counts
    latency = frame.latency_ms
    depths = frame.queue_depths
    for i in range(start, stop):
        yield [
            f"{stamps[i - start]}Z",
            str(int(frame.t[i])),
            *(_number_cell(float(v)) for v in counts[:, i]),  # empty: nobody recorded it
            _number_cell(float(frame.dead_letters[i])),
            *(_number_cell(float(v)) for v in latency[:, i]),
            *(_number_cell(float(v)) for v in depths[:, i]),
        ]


def throughput_csv(frame: FlowFrame, start: int, stop: int) -> bytes:
    """:func:`throughput_rows` as CSV (UTF-8, CRLF-terminated): what a worker process
    writes for the whole range while the entries are read."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(throughput_rows(frame, start, stop))
    return text.getvalue().encode("utf-8")
