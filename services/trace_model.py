"""One payment's timeline as plain data (:mod:`services.trace` assembles it from Redis):
what the Timeline tab and ``payops trace`` show. Redis-free, so views may take it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from services.masking.json import mask_identifier
from services.workbench.model import EntryState

StepKind = Literal["event", "dead_letter", "parked", "action"]


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One step of a payment's timeline.

    ``what`` is the event's status, ``dead-lettered``, ``parked`` or the
    action's name; ``detail`` the failure reason, the hop (``rejected in
    payments.process``), where it was parked, or the action's note and result
    (masked). ``exact``: False when the time is known to the second only.
    ``after`` (actions): the statuses of the flow events that followed, up to
    the next action.
    """

    at_ms: int
    kind: StepKind
    what: str
    detail: str = ""
    operator: str | None = None
    dlq: str | None = None
    entry_id: str | None = None
    replayed: bool = False
    exact: bool = True
    after: tuple[str, ...] = ()
    sort_ms: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TracedEntry:
    """A parked entry of the payment: where it is and in which state."""

    dlq: str
    entry_id: str
    state: EntryState
    parked_at_ms: int


@dataclass(frozen=True, slots=True)
class PaymentTrace:
    """Everything known of one payment, oldest first."""

    payment_id: str
    steps: tuple[TraceStep, ...]
    entries: tuple[TracedEntry, ...]
    events_recorded: bool
    """Whether the flow's record had events of it (it may have expired, or be off)."""

    @property
    def found(self) -> bool:
        """Whether anything at all is known of the payment."""
        return bool(self.steps)

    @property
    def shown_id(self) -> str:
        """The payment id as shown to people."""
        return mask_identifier(self.payment_id)
