"""The outcome of a replayed entry: the vocabulary and how it is stored.

After a requeue or retry an entry's outcome is ``pending`` until the flow tells
what became of its payment: ``succeeded`` (an event whose status is one of the
profile's ``success_statuses``), ``declined`` (one of ``declined_statuses``),
``failed_again`` (one of ``failure_statuses``, or a new dead letter of the same
payment, linked to its new entry), ``cancelled`` (a ``cancelled`` event), or
``no_outcome`` once ``outcome_timeout_s`` passed with none of these. A cancel's
outcome is ``cancelled`` at once.

Stored in the entry's hash (see ``workbench.redis_layout``)::

    outcome      the value below        out_at      when it was settled (epoch ms)
    out_since    events count from it   out_detail  why ("captured at 14:05:31 CEST")
    out_link     the new entry's id     out_aid     the action id it follows
    job          the job the action belonged to

and per dead-letter queue (``B`` is the DLQ's key base ``P:{D}``)::

    B:outpend     HASH  payment id (as shown) -> its pending entry ids, space-separated
    B:outdue      ZSET  pending entry id -> when it becomes ``no_outcome`` (epoch ms)
    B:jobc:<job>  HASH  outcome -> how many of the job's entries in this DLQ have it
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Outcome(StrEnum):
    """What became of a replayed entry (the value is what Redis and JSON hold)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    FAILED_AGAIN = "failed_again"
    NO_OUTCOME = "no_outcome"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        """``failed again``, ``no outcome``: the words people read."""
        return self.value.replace("_", " ")

    @property
    def is_final(self) -> bool:
        return self is not Outcome.PENDING

    @classmethod
    def named(cls, value: str | bytes | None) -> Outcome | None:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not value or value not in cls._value2member_map_:
            return None
        return cls(value)


OUTCOME_ORDER: Final = (
    Outcome.SUCCEEDED,
    Outcome.DECLINED,
    Outcome.FAILED_AGAIN,
    Outcome.NO_OUTCOME,
    Outcome.CANCELLED,
    Outcome.PENDING,
)
"""The order counters are shown in (``180 succeeded, 12 failed again, 8 pending``)."""

CANCELLED_STATUS: Final = "cancelled"
"""The event status that settles a replayed payment as cancelled."""


@dataclass(frozen=True, slots=True)
class EntryOutcome:
    """One entry's outcome as stored (see the module docstring)."""

    outcome: Outcome
    since_ms: int = 0
    at_ms: int | None = None
    detail: str = ""
    link: str | None = None
    job: str | None = None

    @property
    def text(self) -> str:
        """``succeeded: captured at 14:05:31 CEST`` / ``failed again (new entry 01a2…)``."""
        text = self.outcome.label
        if self.detail:
            text += f": {self.detail}"
        if self.link:
            text += f" (new entry {self.link})"
        return text

    def as_json(self) -> dict[str, object]:
        return {
            "outcome": self.outcome.value,
            "detail": self.detail or None,
            "at_ms": self.at_ms,
            "new_entry": self.link,
            "job": self.job,
        }


OUTCOME_FIELDS: Final = (b"outcome", b"out_since", b"out_at", b"out_detail", b"out_link", b"job")


def outcome_from_fields(raw: Mapping[bytes, bytes | None]) -> EntryOutcome | None:
    """An entry's outcome from its hash fields (None when it has none)."""
    outcome = Outcome.named(raw.get(b"outcome"))
    if outcome is None:
        return None

    def text(name: bytes) -> str:
        value = raw.get(name)
        return value.decode("utf-8", "replace") if value else ""

    def number(name: bytes) -> int | None:
        try:
            return int(text(name))
        except ValueError:
            return None

    return EntryOutcome(
        outcome,
        since_ms=number(b"out_since") or 0,
        at_ms=number(b"out_at"),
        detail=text(b"out_detail"),
        link=text(b"out_link") or None,
        job=text(b"job") or None,
    )


def dlq_base(prefix: str, dlq: str) -> str:
    """``P:{D}``: the start of every key of one dead-letter queue (its Redis Cluster hash
    tag is the DLQ's name, so one DLQ's keys share a slot)."""
    if not dlq:
        raise ValueError("dead-letter queue name must not be empty")
    return f"{prefix}:{{{dlq}}}"


def pending_key(base: str) -> str:
    return f"{base}:outpend"


def due_key(base: str) -> str:
    return f"{base}:outdue"


def job_counter_key(base: str, job_id: str) -> str:
    return f"{base}:jobc:{job_id}"


def dlqs_key(prefix: str) -> str:
    """``P:dlqs``: every DLQ something was parked from."""
    return f"{prefix}:dlqs"
