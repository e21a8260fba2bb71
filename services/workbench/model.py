"""What the failed-payments workbench, the CLI and the views share about parked entries.

Plain frozen dataclasses and one pure function, :func:`summarize`, that reads
the payment fields out of a parked message. No I/O, no broker or Redis
client: views may import this module.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal, NamedTuple

import orjson

from services.config import FieldPaths
from services.json_paths import JsonGetter, compile_path
from services.masking.json import mask_identifier
from services.masking.text import mask_text
from services.outcomes.model import EntryOutcome
from services.workbench.cause import Cause, CauseSource, dead_letter_cause, resolve
from services.workbench.codec import DeathRecord, MessageRecord, parse_x_death
from services.workbench.death_history import (
    Origin,
    origin_of,
    original_routing_key,
    total_deaths,
)

ATTEMPT_HEADER = "payops-attempt"
"""Our own attempt counter (a retry sets it); not an ``x-`` header, which
RabbitMQ 4 would ignore when a client sets it."""

MAX_JSON_BYTES = 16 * 1024 * 1024
"""Bodies larger than this are not parsed as JSON (shown as text or binary)."""

_EXACT_AMOUNT_BYTES = 256 * 1024

BodyKind = Literal["json", "text", "binary", "empty"]


class EntryState(StrEnum):
    """Where a parked entry is in its life.

    ``parked`` -> ``claimed`` (an action holds it) -> ``requeued`` /
    ``retried`` / ``cancelled`` when the action is done, or back to
    ``parked`` when it failed.
    """

    PARKED = "parked"
    CLAIMED = "claimed"
    REQUEUED = "requeued"
    RETRIED = "retried"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True for the states an action ends in."""
        return self in FINAL_STATES


FINAL_STATES: frozenset[EntryState] = frozenset(
    {EntryState.REQUEUED, EntryState.RETRIED, EntryState.CANCELLED}
)


@dataclass(frozen=True, slots=True)
class EntrySummary:
    """One row of the failed-payments table.

    ``amount`` is the amount as written in the body (a JSON number keeps its
    text), ``amount_value`` the same as a float when it is a finite number.
    ``dead_lettered_at_ms`` is the time of the most recent ``x-death`` entry,
    or the parking time when the message carries none. ``origin_queue`` is the
    queue the message was dead-lettered from (``x-death[0].queue``), where a
    requeue sends it back through the default exchange; a dead letter the
    application republished without ``x-death`` (Spring AMQP) names its original
    exchange (``origin_exchange``, with ``origin_queue`` empty unless that is the
    default exchange) and routing key (``routing_key``) instead, see
    :func:`~services.workbench.death_history.origin_of` and :attr:`origin`.
    ``attempts`` sums the ``x-death`` counts, the deaths
    of earlier cycles (``payops-deaths``, see :mod:`.death_history`) and our own
    ``payops-attempt`` header. Payment ids are masked as identifiers, merchants
    as text (:mod:`services.masking.json`). ``cause`` is why the payment failed
    (masked), ``cause_source`` where that came from (the flow, the message, the
    dead-letter reason) and ``failure_group`` the cause normalised
    (:mod:`services.workbench.cause`).
    """

    entry_id: str
    dlq: str
    parked_at_ms: int
    dead_lettered_at_ms: int
    payment_id: str | None
    merchant: str | None
    amount: str | None
    amount_value: float | None
    currency: str | None
    reason: str
    origin_queue: str
    routing_key: str
    attempts: int
    state: EntryState
    last_operator: str | None
    body_kind: BodyKind
    size: int
    message_id: str | None
    cause: str = ""
    cause_source: CauseSource = "dead_letter"
    failure_group: str = ""
    origin_exchange: str | None = None
    outcome: str | None = None
    """What became of the payment after a replay (an ``outcomes.model.Outcome`` value;
    None before any action)."""

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its field values, a plain tuple (a slotted dataclass's own way is a
        Python loop per field; a snapshot's workers send 100,000 rows to the writer)."""
        return (EntrySummary, _summary_values(self))

    def with_cause(self, cause: Cause) -> EntrySummary:
        """The same row with another cause."""
        return replace(self, cause=cause.text, cause_source=cause.source, failure_group=cause.group)

    @property
    def origin(self) -> Origin | None:
        """Where a requeue or retry sends the message (None: nowhere known)."""
        if self.origin_exchange is not None:
            return Origin(self.origin_exchange, self.routing_key)
        return Origin("", self.origin_queue) if self.origin_queue else None


_summary_values = operator.attrgetter(*(f.name for f in fields(EntrySummary)))
"""An EntrySummary's field values, in order (C speed)."""


@dataclass(frozen=True, slots=True)
class ParkedEntry:
    """One parked message in full, with where its current action stands.

    ``action``/``action_id``/``operator`` name the action that holds the entry
    (state ``claimed``) or that last finished or released it; ``detail`` is
    what that action reported; ``last_error`` why the last action failed.
    """

    summary: EntrySummary
    record: MessageRecord
    deaths: tuple[DeathRecord, ...]
    fingerprint: str
    version: int
    last_error: str | None = None
    action: str | None = None
    action_id: str | None = None
    operator: str | None = None
    detail: str | None = None
    updated_at_ms: int | None = None
    outcome: EntryOutcome | None = None
    """What became of the payment after the last action (None before any)."""

    @property
    def entry_id(self) -> str:
        return self.summary.entry_id

    @property
    def dlq(self) -> str:
        return self.summary.dlq

    @property
    def state(self) -> EntryState:
        return self.summary.state


@dataclass(frozen=True, slots=True)
class ParkResult:
    """The outcome of parking one message: its entry and whether it is new.

    ``created`` is False when the message was recognised as already parked
    (a redelivery, or a retried batch) and ``entry_id`` names that entry.
    ``by_earlier_attempt`` tells the retried batch apart: an earlier attempt of
    this very item (same entry id, same content) stored it, so for the caller
    it is new all the same (see :attr:`parked_by_this_item`).
    """

    entry_id: str
    created: bool
    summary: EntrySummary | None = field(default=None, compare=False, repr=False)
    """The row the message was parked with (its cause included)."""
    by_earlier_attempt: bool = False

    @property
    def parked_by_this_item(self) -> bool:
        """Parked now or by an earlier attempt of this item: a new entry for the caller
        (False only for a recognised redelivery)."""
        return self.created or self.by_earlier_attempt


class ClaimResult(NamedTuple):
    """The outcome of a compare-and-set transition.

    ``ok`` says whether this caller's transition happened. Either way
    ``state``/``operator``/``action``/``action_id`` describe the entry as it
    now is, so a loser learns who holds it or who acted. ``state`` is None
    when the entry does not exist. A named tuple: an action makes two per entry
    (its claim, its finish), and a tuple is built several times faster than a
    frozen dataclass.
    """

    ok: bool
    state: EntryState | None
    operator: str | None = None
    action: str | None = None
    action_id: str | None = None

    @property
    def missing(self) -> bool:
        return self.state is None


@dataclass(frozen=True, slots=True)
class Change:
    """One entry transition from the changes stream (for live views).

    ``op`` is what happened: ``park``, ``claim``, ``complete``, ``release``;
    ``ts`` is epoch milliseconds; ``stream_id`` is the cursor for the next read.
    """

    stream_id: str
    dlq: str
    entry_id: str
    state: EntryState
    op: str
    ts: int
    operator: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One action in the audit trail: who did what to which entries, and how it went.

    ``ts`` is epoch milliseconds. ``stream_id`` is set on records read back.
    """

    ts: int
    operator: str
    host: str
    action: str
    entry_ids: tuple[str, ...]
    target: str
    result: str
    detail: str = ""
    action_id: str = ""
    stream_id: str | None = None


AUDIT_STARTED = "started"
"""The ``result`` of the record an action writes (per DLQ) before it claims anything;
the record it writes when it finished says what it did."""


@dataclass(frozen=True, slots=True)
class Durability:
    """Whether the parking store survives a Redis restart.

    ``durable`` is None when it could not be found out (the ACL refused
    ``CONFIG GET``); ``detail`` says why, for the UI. ``volatile``: Redis can
    lose every parked message (no AOF and no RDB save point, or an evicting
    ``maxmemory-policy``), so parking is refused unless the profile allows it.
    """

    durable: bool | None
    detail: str
    volatile: bool = False


# --------------------------------------------------------------------------- summarize


@dataclass(frozen=True, slots=True)
class _Getters:
    payment_id: JsonGetter
    merchant: JsonGetter
    amount: JsonGetter
    currency: JsonGetter


@lru_cache(maxsize=32)
def _getters(fields: FieldPaths) -> _Getters:
    return _Getters(
        payment_id=compile_path(fields.payment_id),
        merchant=compile_path(fields.merchant),
        amount=compile_path(fields.amount),
        currency=compile_path(fields.currency),
    )


_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_JSON_START = frozenset(b'{["-0123456789tfn')
_WHITESPACE = b" \t\r\n"


def body_kind(body: bytes) -> tuple[BodyKind, Any]:
    """How to show a body, and the parsed JSON when it is JSON (else None)."""
    if not body:
        return "empty", None
    if len(body) <= MAX_JSON_BYTES:
        stripped = body.lstrip(_WHITESPACE)
        if stripped and stripped[0] in _JSON_START:
            try:
                return "json", orjson.loads(body)
            except orjson.JSONDecodeError:
                pass
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "binary", None
    if _CONTROL.search(body):
        return "binary", None
    return "text", None


def _scalar_text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return str(value)


def _amount_value(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(Decimal(value.strip()))
        except (InvalidOperation, ValueError, OverflowError):
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _exact_number_text(body: bytes, getter: JsonGetter, fallback: float) -> str:
    """A JSON number's text as written (``42.50`` stays ``42.50``), for small bodies."""
    if len(body) <= _EXACT_AMOUNT_BYTES:
        try:
            value = getter(json.loads(body, parse_float=str, parse_constant=str))
        except ValueError:
            value = None
        if isinstance(value, str):
            return value
    return repr(fallback)


def _masked(value: str | None) -> str | None:
    return mask_text(value) if value else value


def _identifier(value: str | None) -> str | None:
    return mask_identifier(value) if value else value


def summarize(
    dlq: str,
    entry_id: str,
    record: MessageRecord,
    fields: FieldPaths,
    parked_at_ms: int,
    *,
    state: EntryState = EntryState.PARKED,
    last_operator: str | None = None,
    deaths: tuple[DeathRecord, ...] | None = None,
) -> EntrySummary:
    """The table row of one parked message; never raises (``deaths``: its ``x-death``
    parsed already, :func:`~services.workbench.codec.parse_x_death`).

    Payment fields come from the JSON body at the profile's ``[fields]``
    paths where the body is JSON; anything else (text, invalid UTF-8, empty,
    huge) leaves them None.
    """
    body = record.body
    try:
        kind, parsed = body_kind(body)
    except Exception:  # pragma: no cover - body_kind is defensive already
        kind, parsed = "binary", None
    payment_id = merchant = amount = currency = None
    amount_value: float | None = None
    if parsed is not None:
        try:
            getters = _getters(fields)
            payment_id = _identifier(_scalar_text(getters.payment_id(parsed)))
            merchant = _masked(_scalar_text(getters.merchant(parsed)))
            currency = _scalar_text(getters.currency(parsed))
            raw_amount = getters.amount(parsed)
            amount_value = _amount_value(raw_amount)
            if isinstance(raw_amount, float):
                amount = _exact_number_text(body, getters.amount, raw_amount)
            else:
                amount = _scalar_text(raw_amount)
        except Exception:  # a path helper that trips over odd data must not lose the entry
            payment_id = merchant = amount = currency = None
            amount_value = None

    headers = record.headers
    if deaths is None:
        deaths = parse_x_death(headers)
    latest = deaths[0] if deaths else None
    reason = latest.reason if latest and latest.reason else _header_text(headers, "reason")
    origin = origin_of(headers, deaths)
    if latest and latest.routing_keys:
        routing_key = latest.routing_keys[0]
    else:
        routing_key = original_routing_key(headers) or record.routing_key
    dead_at = latest.time_ms if latest else None
    attempts = total_deaths(headers, deaths) + attempt_header(headers)
    message_id = record.properties.get("message_id")
    try:
        cause = resolve(
            headers, parsed, reason, headers_first=fields.cause_headers, paths=fields.cause_paths
        )
    except Exception:  # odd header values must not lose the entry
        cause = dead_letter_cause(reason)
    return EntrySummary(
        entry_id=entry_id,
        dlq=dlq,
        parked_at_ms=parked_at_ms,
        dead_lettered_at_ms=dead_at if dead_at is not None else parked_at_ms,
        payment_id=payment_id,
        merchant=merchant,
        amount=amount,
        amount_value=amount_value,
        currency=currency,
        reason=reason,
        origin_queue=origin.queue or "" if origin is not None else "",
        origin_exchange=origin.exchange if origin is not None and origin.queue is None else None,
        routing_key=routing_key,
        attempts=attempts,
        state=state,
        last_operator=last_operator,
        body_kind=kind,
        size=len(body),
        message_id=message_id if isinstance(message_id, str) else None,
        cause=cause.text,
        cause_source=cause.source,
        failure_group=cause.group,
    )


def _header_text(headers: dict[str, Any], which: str) -> str:
    value = headers.get(f"x-first-death-{which}")
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return ""


def attempt_header(headers: Mapping[str, Any]) -> int:
    """Our own attempt counter (:data:`ATTEMPT_HEADER`) as a number; 0 when absent or
    unreadable."""
    value = headers.get(ATTEMPT_HEADER)
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, str | bytes | bytearray):
        text = value.decode("ascii", "replace") if isinstance(value, bytes | bytearray) else value
        text = text.strip()
        return int(text) if text.isdigit() and len(text) < 10 else 0
    return 0
