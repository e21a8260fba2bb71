"""How the workbench lays its data out in Redis: key names, hash fields and stream fields.

Keys (``P`` is the profile's ``redis_prefix``, ``D`` the dead-letter queue's
name). Every key of one DLQ carries the Redis Cluster hash tag ``{D}``, so
each multi-key script touches one slot::

    P:{D}:e:<id>      HASH    one entry: the encoded message (body, props,
                              headers, exchange, rkey - see codec), summary
                              (JSON array, the immutable row fields), state,
                              version, action, action_id, operator, detail,
                              updated_at, parked_at, last_error, fingerprint,
                              sending (an action's intent, see actions.ledger),
                              pid (the payment id), cause, cause_src, fgroup
                              (the cause, its source and failure group; an entry
                              parked before causes were kept has none and shows
                              its dead-letter reason)
    P:{D}:idx         ZSET    entry id -> parked_at (epoch ms): table order
    P:{D}:fp          HASH    fingerprint -> newest entry id with it
    P:{D}:unacked     SET     the marks hashes below not yet cleared
    P:{D}:unacked:<s>:<b>  HASH  fingerprint -> how many deliveries of batch
                              ``b`` of parker session ``s`` were parked, their
                              ack not yet confirmed: a redelivery of another
                              session consumes one (see workbench.parker)
    P:{D}:inflight    SET     ids in state ``claimed`` (crash recovery)
    P:{D}:pay         HASH    payment id (as shown, masked as an identifier) -> its
                              entry ids, space-separated (kept by the park and
                              delete scripts; entries parked before it existed
                              are added by the first reader, see below)
    P:{D}:pay:all     STRING  set once every entry parked before ``P:{D}:pay``
                              existed was added to it (ParkingStore.index_payments)
    P:dlqs            SET     every DLQ something was parked from (a payment's
                              entries are looked up in each)
    P:{D}:changes     STREAM  id, state, op, ts, operator per transition; an
                              action's window of claims or finishes is one entry
                              with its ids space-separated in ``ids`` instead of
                              ``id`` (XADD MAXLEN ~ 100000): live views of other consoles
    P:{D}:audit       STREAM  one record per action (never trimmed)
    P:{D}:lease:<run> STRING  a running action's lease (see actions.ledger)
    P:{D}:outpend, P:{D}:outdue, P:{D}:jobc:<job>
                              replayed entries waiting for their outcome, and
                              each job's outcome counters (see outcomes.model;
                              the entry's outcome fields are listed there too)

Entry ids (:func:`services.workbench.store.new_entry_id`) are 20 hex digits:
12 of the parking time in milliseconds and 8 of a per-process counter with a
random start, so they sort by time and are unique.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from services.outcomes.model import dlq_base, due_key, pending_key
from services.workbench.cause import Cause, dead_letter_cause, source_of
from services.workbench.cause import failure_group as failure_group_of
from services.workbench.model import (
    AuditRecord,
    BodyKind,
    ClaimResult,
    EntryState,
    EntrySummary,
)
from services.workbench.shown import masked_escaped, non_text

_SUMMARY_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class DlqKeys:
    """The keys of one dead-letter queue's workbench (see the module docstring)."""

    base: str
    """``P:{D}``: every key of the DLQ starts with it."""

    @classmethod
    def of(cls, prefix: str, dlq: str) -> DlqKeys:
        return cls(dlq_base(prefix, dlq))

    @property
    def idx(self) -> str:
        return f"{self.base}:idx"

    @property
    def fp(self) -> str:
        return f"{self.base}:fp"

    @property
    def unacked(self) -> str:
        return f"{self.base}:unacked"

    def marks(self, session: str, batch: int | None = None) -> str:
        """A batch's marks hash; without ``batch``, the prefix of the session's."""
        return f"{self.base}:unacked:{session}:{'' if batch is None else batch}"

    @property
    def payments(self) -> str:
        return f"{self.base}:pay"

    @property
    def payments_complete(self) -> str:
        return f"{self.base}:pay:all"

    @property
    def inflight(self) -> str:
        return f"{self.base}:inflight"

    @property
    def changes(self) -> str:
        return f"{self.base}:changes"

    @property
    def audit(self) -> str:
        return f"{self.base}:audit"

    def entry(self, entry_id: str) -> str:
        return f"{self.base}:e:{entry_id}"

    def lease(self, run_id: str) -> str:
        return f"{self.base}:lease:{run_id}"

    @property
    def outcomes_pending(self) -> str:
        return pending_key(self.base)

    @property
    def outcomes_due(self) -> str:
        return due_key(self.base)


def text(value: bytes | None) -> str | None:
    """A stored string field (None when missing or empty)."""
    if value is None:
        return None
    text = value.decode("utf-8", "replace")
    return text or None


def integer(value: bytes | None, default: int = 0) -> int:
    """A stored number field (``default`` when missing or not a number)."""
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        return default


_STATES: dict[bytes | str, EntryState] = {
    **{state.value: state for state in EntryState},
    **{state.value.encode(): state for state in EntryState},
}


def state_of(value: bytes | str | None) -> EntryState | None:
    """A stored state (None when missing or unknown)."""
    return None if value is None else _STATES.get(value)


def summary_blob(summary: EntrySummary) -> bytes:
    """The immutable fields of a table row, as the entry's ``summary`` field (a text
    that was not UTF-8, a routing key as the broker gave it: with ``\\xNN`` escapes)."""
    row = [
        _SUMMARY_VERSION,
        summary.dead_lettered_at_ms,
        summary.payment_id,
        summary.merchant,
        summary.amount,
        summary.amount_value,
        summary.currency,
        summary.reason,
        summary.origin_queue,
        summary.routing_key,
        summary.attempts,
        summary.body_kind,
        summary.size,
        summary.message_id,
        summary.origin_exchange,
    ]
    try:
        return orjson.dumps(row)
    except TypeError:  # surrogates: orjson writes UTF-8 only
        return orjson.dumps([masked_escaped(v) if isinstance(v, str) else v for v in row])


_BODY_KINDS: dict[str, BodyKind] = {
    "json": "json",
    "text": "text",
    "binary": "binary",
    "empty": "empty",
}


_TEXT_AT: Final = (2, 3, 4, 6, 7, 8, 9, 13)
"""Where a ``summary`` row holds text (payment id ... message id)."""


def summary_from_blob(
    dlq: str,
    entry_id: str,
    parked_at_ms: int,
    blob: bytes | None,
    *,
    state: EntryState,
    operator: str | None,
    cause: bytes | None = None,
    cause_source: bytes | None = None,
    failure_group: bytes | None = None,
    outcome: bytes | None = None,
) -> EntrySummary:
    """The table row of an entry from its ``summary`` field (a damaged one gives an
    empty row) and the fields that change. An entry without a cause (parked before
    causes were kept) shows its dead-letter reason as its cause; one stored before
    ``origin_exchange`` was (14 fields) has none."""
    row: list[Any] = []
    if blob:
        try:
            loaded = orjson.loads(blob)
            if isinstance(loaded, list) and len(loaded) >= 14:
                row = loaded
        except orjson.JSONDecodeError:
            row = []
    if not row:
        row = [_SUMMARY_VERSION, parked_at_ms, None, None, None, None, None, "", "", "", 0]
        row += ["binary", 0, None]
    else:
        for i in _TEXT_AT:  # a damaged row: what is not text shown as marked text
            value = row[i]
            if value is not None and type(value) is not str:
                row[i] = non_text(value)
        if row[5] is not None and type(row[5]) is not float and type(row[5]) is not int:
            row[5] = None
    reason = row[7] or ""
    kept = text(cause)
    found = (
        Cause(kept, source_of(text(cause_source)), text(failure_group) or failure_group_of(kept))
        if kept
        else dead_letter_cause(reason)
    )
    return EntrySummary(
        entry_id=entry_id,
        dlq=dlq,
        parked_at_ms=parked_at_ms,
        dead_lettered_at_ms=row[1] if isinstance(row[1], int) else parked_at_ms,
        payment_id=row[2],
        merchant=row[3],
        amount=row[4],
        amount_value=row[5],
        currency=row[6],
        reason=reason,
        origin_queue=row[8] or "",
        routing_key=row[9] or "",
        attempts=row[10] if isinstance(row[10], int) else 0,
        state=state,
        last_operator=operator,
        body_kind=_BODY_KINDS.get(row[11], "binary") if type(row[11]) is str else "binary",
        size=row[12] if isinstance(row[12], int) else 0,
        message_id=row[13],
        origin_exchange=row[14] if len(row) > 14 and isinstance(row[14], str) else None,
        cause=found.text,
        cause_source=found.source,
        failure_group=found.group,
        outcome=text(outcome),
    )


def claim_result(reply: Sequence[Any]) -> ClaimResult:
    """The reply of ``claim.lua`` / ``finish.lua``: ``{ok, state, operator, action, action_id}``.
    Two per entry of an action: built as the tuple it is, the texts decoded inline."""
    state, operator, action, action_id = reply[1:5]
    return _new_claim_result(
        (
            bool(int(reply[0])),
            None if state is None else _STATES.get(state),
            None if operator is None else operator.decode("utf-8", "replace") or None,
            None if action is None else action.decode("utf-8", "replace") or None,
            None if action_id is None else action_id.decode("utf-8", "replace") or None,
        )
    )


_new_claim_result: Final = functools.partial(tuple.__new__, ClaimResult)


_AUDIT_FIELDS = (
    "ts",
    "operator",
    "host",
    "action",
    "entry_ids",
    "target",
    "result",
    "detail",
    "action_id",
)


def audit_record(stream_id: str, data: Mapping[bytes, bytes]) -> AuditRecord:
    """An audit record read back from its stream entry."""
    values = {name: data.get(name.encode()) for name in _AUDIT_FIELDS}
    try:
        ids = orjson.loads(values["entry_ids"] or b"[]")
    except orjson.JSONDecodeError:
        ids = []
    return AuditRecord(
        ts=integer(values["ts"]),
        operator=text(values["operator"]) or "",
        host=text(values["host"]) or "",
        action=text(values["action"]) or "",
        entry_ids=tuple(str(i) for i in ids) if isinstance(ids, list) else (),
        target=text(values["target"]) or "",
        result=text(values["result"]) or "",
        detail=text(values["detail"]) or "",
        action_id=text(values["action_id"]) or "",
        stream_id=stream_id,
    )


def audit_fields(record: AuditRecord) -> dict[str, str | bytes | int]:
    """An audit record as the fields of its stream entry."""
    fields: dict[str, str | bytes | int] = {name: getattr(record, name) for name in _AUDIT_FIELDS}
    fields["entry_ids"] = orjson.dumps(list(record.entry_ids))
    return fields
