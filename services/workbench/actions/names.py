"""The workbench's three actions: their names and words, and the state each leaves an entry in.

:class:`Action` is a ``StrEnum``: a member *is* its name (``"requeue"``), so it
is written unchanged into Redis, audit records, JSON and CLI words, and a
name read back (``Action("retry")``) is a member again.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from services.workbench.model import EntryState


class Action(StrEnum):
    """Requeue, retry or cancel a parked entry."""

    REQUEUE = "requeue"
    RETRY = "retry"
    CANCEL = "cancel"

    @classmethod
    def named(cls, name: str | None) -> Action | None:
        """The action called ``name``; None when it names none (a stored field, a record
        of another kind such as ``recover``)."""
        if name is None or name not in cls._value2member_map_:
            return None
        return cls(name)

    @property
    def final_state(self) -> EntryState:
        """The state a done action leaves the entry in."""
        return _WORDS[self].final_state

    @property
    def past(self) -> str:
        """``requeued``, ``retried``, ``cancelled`` (the final state's name)."""
        return self.final_state.value

    @property
    def label(self) -> str:
        """``Requeue``, ``Retry``, ``Cancel``: the action on a button or in a headline."""
        return _WORDS[self].label

    @property
    def ongoing(self) -> str:
        """``Requeueing``, ``Retrying``, ``Cancelling``: while it runs."""
        return _WORDS[self].ongoing


@dataclass(frozen=True, slots=True)
class _Words:
    label: str
    ongoing: str
    final_state: EntryState


_WORDS: Final[dict[Action, _Words]] = {
    Action.REQUEUE: _Words("Requeue", "Requeueing", EntryState.REQUEUED),
    Action.RETRY: _Words("Retry", "Retrying", EntryState.RETRIED),
    Action.CANCEL: _Words("Cancel", "Cancelling", EntryState.CANCELLED),
}
