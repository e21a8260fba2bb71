"""Which failed payments to show or act on: :class:`Query` and :class:`ActionTarget`.

A :class:`Query` (text, states, reasons, queues, merchants, time and amount
ranges, sort key and order) is what the views, the app and the CLI hand to
the :class:`~services.workbench.index.EntryIndex`; an :class:`ActionTarget`
names what an action applies to - some entry ids, or everything a query
matches. Plain frozen data, no numpy: views may import it.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Final, Literal, TypeAlias, get_args

from services.masking.json import mask_identifier, mask_sensitive_text
from services.time_range import zone_name
from services.workbench.columns import COLUMNS, SORT_KEYS, SortKey
from services.workbench.model import EntryState, EntrySummary

GroupBy = Literal["reason", "origin_queue", "merchant", "state", "dlq", "failure_group"]
GROUP_BYS: Final[tuple[GroupBy, ...]] = get_args(GroupBy)

GroupValue: TypeAlias = str | None
"""A group's value: the column's text (an :class:`EntryState` for ``state``),
None for rows without one (a body without a merchant)."""

SEARCHABLE_COLUMNS: Final = tuple(column for column in COLUMNS if column.searchable)
TERM_SEPARATOR: Final = "\x00"
"""Never part of a search term (the index separates a row's texts with it)."""


@dataclass(frozen=True, slots=True)
class Query:
    """Which rows to show, and in which order. Frozen and hashable.

    An empty set means "no filter on that column". ``text`` is split on
    whitespace; every word must occur, case-insensitively, in one of the
    row's searchable columns (:mod:`services.workbench.columns`: payment id,
    merchant, entry id, message id, amount, reason, dead-letter queue, origin
    queue, routing key). ``dead_from_ms`` is
    inclusive and ``dead_until_ms`` exclusive (epoch milliseconds, on
    ``dead_lettered_at_ms``); ``amount_min``/``amount_max`` are inclusive on
    ``amount_value``, and a row without an amount matches no amount range.
    ``merchants`` may hold None for "no merchant". ``failure_groups`` keeps the rows
    of those failure groups (exactly); ``cause`` the rows whose cause or failure
    group holds that text (case-insensitive).

    Sorting is stable on (key, row position), descending reverses it, and
    rows without a value for the key (no merchant, no amount, an empty
    reason) come last in either order, in row order. Text columns sort
    case-insensitively, ids (payment, entry, message) by their bytes.
    """

    text: str = ""
    states: frozenset[EntryState] = frozenset()
    reasons: frozenset[str] = frozenset()
    dlqs: frozenset[str] = frozenset()
    queues: frozenset[str] = frozenset()
    merchants: frozenset[str | None] = frozenset()
    dead_from_ms: int | None = None
    dead_until_ms: int | None = None
    amount_min: float | None = None
    amount_max: float | None = None
    failure_groups: frozenset[str] = frozenset()
    cause: str = ""
    sort_key: SortKey = "dead_lettered_at"
    descending: bool = True

    def __post_init__(self) -> None:
        if self.sort_key not in SORT_KEYS:
            raise ValueError(f"unknown sort key {self.sort_key!r}")
        for name in ("states", "reasons", "dlqs", "queues", "merchants", "failure_groups"):
            value = getattr(self, name)
            if not isinstance(value, frozenset):
                object.__setattr__(self, name, frozenset(value))
        if self.states:
            object.__setattr__(self, "states", frozenset(EntryState(s) for s in self.states))

    @property
    def terms(self) -> tuple[str, ...]:
        """The lower-cased words of ``text``."""
        return tuple(self.text.lower().replace(TERM_SEPARATOR, " ").split())

    @property
    def filters(self) -> Query:
        """This query without its sort order (what decides *which* rows match)."""
        return replace(self, sort_key="dead_lettered_at", descending=True)

    @property
    def is_filtered(self) -> bool:
        """Whether anything narrows the rows (every row matches otherwise)."""
        return self.filters != Query()

    def sorted_by(self, key: SortKey, descending: bool) -> Query:
        """The same filters with another sort order."""
        return replace(self, sort_key=key, descending=descending)

    def group_values(self, by: GroupBy) -> frozenset[GroupValue]:
        """The values this query keeps for the ``by`` column (empty: all)."""
        return frozenset(getattr(self, _GROUP_FIELD[by]))

    def with_group(self, by: GroupBy, values: Iterable[GroupValue]) -> Query:
        """The same query restricted to ``values`` of the ``by`` column (replacing
        any filter it had on that column; no values: no filter)."""
        chosen = frozenset(values)
        if by == "state":
            return replace(self, states=frozenset(EntryState(v) for v in chosen if v is not None))
        if by == "merchant":
            return replace(self, merchants=chosen)
        strings = frozenset(v for v in chosen if v is not None)
        if by == "reason":
            return replace(self, reasons=strings)
        if by == "origin_queue":
            return replace(self, queues=strings)
        if by == "failure_group":
            return replace(self, failure_groups=strings)
        return replace(self, dlqs=strings)

    def without_group(self, by: GroupBy) -> Query:
        """The same query with no filter on the ``by`` column."""
        return self.with_group(by, ())

    def matches(self, summary: EntrySummary) -> bool:
        """Whether one summary passes the filters (plain Python; the index is faster)."""
        s = summary
        if self.states and EntryState(s.state) not in self.states:
            return False
        if self.reasons and s.reason not in self.reasons:
            return False
        if self.dlqs and s.dlq not in self.dlqs:
            return False
        if self.queues and s.origin_queue not in self.queues:
            return False
        if self.merchants and s.merchant not in self.merchants:
            return False
        if self.failure_groups and s.failure_group not in self.failure_groups:
            return False
        cause = self.cause.strip().lower()
        if cause and cause not in s.cause.lower() and cause not in s.failure_group.lower():
            return False
        if self.dead_from_ms is not None and s.dead_lettered_at_ms < self.dead_from_ms:
            return False
        if self.dead_until_ms is not None and s.dead_lettered_at_ms >= self.dead_until_ms:
            return False
        if self.amount_min is not None or self.amount_max is not None:
            value = s.amount_value
            if value is None or math.isnan(value):
                return False
            if self.amount_min is not None and value < self.amount_min:
                return False
            if self.amount_max is not None and value > self.amount_max:
                return False
        terms = self.terms
        if terms:
            fields_text = [column.text(s) for column in SEARCHABLE_COLUMNS]
            lowered = [f.lower() for f in fields_text if f]
            if not all(any(term in f for f in lowered) for term in terms):
                return False
        return True

    def describe(self) -> str:
        """The filters in words, for confirmations and the audit trail, card data masked
        piece by piece: a search text that is one id token (``pay_17d5570756950439``)
        whole, as the id it is; other search texts and the values as free text."""
        parts: list[str] = []

        def listed(name: str, values: Iterable[str | None]) -> None:
            shown = sorted((mask_sensitive_text(v) if v is not None else "(none)") for v in values)
            if shown:
                more = f" +{len(shown) - 3} more" if len(shown) > 3 else ""
                parts.append(f"{name} {', '.join(shown[:3])}{more}")

        if self.text.strip():
            # one token (a pasted payment id) shown whole, as an id; words masked as free text
            parts.append(f"text “{mask_identifier(self.text.strip())}”")
        listed("state", (str(s) for s in self.states))
        listed("reason", self.reasons)
        listed("queue", self.queues)
        listed("DLQ", self.dlqs)
        listed("merchant", self.merchants)
        listed("failure group", self.failure_groups)
        if self.cause.strip():
            parts.append(f"cause “{mask_sensitive_text(self.cause.strip())}”")
        if self.dead_from_ms is not None or self.dead_until_ms is not None:
            start = _local_minute(self.dead_from_ms) if self.dead_from_ms is not None else "…"
            end = _local_minute(self.dead_until_ms) if self.dead_until_ms is not None else "…"
            parts.append(f"dead-lettered {start} – {end}")
        if self.amount_min is not None or self.amount_max is not None:
            low = f"{self.amount_min:g}" if self.amount_min is not None else "…"
            high = f"{self.amount_max:g}" if self.amount_max is not None else "…"
            parts.append(f"amount {low} – {high}")
        return "; ".join(parts) if parts else "no filter"


_GROUP_FIELD: Final[dict[GroupBy, str]] = {
    "reason": "reasons",
    "origin_queue": "queues",
    "merchant": "merchants",
    "state": "states",
    "dlq": "dlqs",
    "failure_group": "failure_groups",
}


def _local_minute(ms: int) -> str:
    """``2026-12-03 14:05 CET``: local time with its zone, as everywhere."""
    moment = datetime.datetime.fromtimestamp(ms / 1000).astimezone()
    return f"{moment:%Y-%m-%d %H:%M} {zone_name(moment)}"


@dataclass(frozen=True, slots=True)
class ActionTarget:
    """What an action (requeue, retry, cancel) applies to.

    Either ``entry_ids`` - these entries, exactly - or ``query`` - every entry
    matching it when it is resolved ("all matching the filter"); never
    both. ``count`` is how many entries that was when the operator chose
    (for a query, :meth:`frozen` sets it to what it matched), ``description`` says it
    in words for the confirmation dialog and the audit trail, card data masked piece
    by piece (an entry id as an identifier, shown whole when it is a token).

    ``rows`` (with ``missing``, the entry ids that did not exist) is the target
    resolved once, when the operator was asked (:meth:`frozen`): the confirmation
    counts them and the action acts on exactly them, without resolving again (an
    entry that changed state meanwhile is skipped by its claim). None: resolved when
    the action runs.
    """

    entry_ids: tuple[str, ...] | None
    query: Query | None
    count: int
    description: str
    rows: tuple[EntrySummary, ...] | None = field(default=None, compare=False, repr=False)
    missing: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if (self.entry_ids is None) == (self.query is None):
            raise ValueError("an action target names either entry ids or a query")
        if self.entry_ids is not None and self.count != len(self.entry_ids):
            raise ValueError(f"count {self.count} does not match {len(self.entry_ids)} entry ids")
        if self.count < 0:
            raise ValueError("count must not be negative")

    @classmethod
    def for_entries(cls, entry_ids: Iterable[str], description: str = "") -> ActionTarget:
        """These entries (a selection, or one entry)."""
        ids = tuple(entry_ids)
        if not description:
            description = (
                f"entry {mask_identifier(ids[0])}"
                if len(ids) == 1
                else f"{len(ids):,} selected entries"
            )
        return cls(ids, None, len(ids), description)

    @classmethod
    def for_query(cls, query: Query, count: int, description: str = "") -> ActionTarget:
        """Everything ``query`` matches (``count`` of them when chosen)."""
        if not description:
            noun = "entry" if count == 1 else "entries"
            description = f"all {count:,} {noun} matching {query.describe()}"
        return cls(None, query.filters, count, description)

    def frozen(self, rows: Iterable[EntrySummary], missing: Iterable[str] = ()) -> ActionTarget:
        """This target resolved: ``rows`` (and ``missing``) are what the action acts on;
        a query's ``count`` becomes how many rows it matched."""
        kept = tuple(rows)
        absent = tuple(missing)
        count = self.count if self.entry_ids is not None else len(kept)
        return replace(self, count=count, rows=kept, missing=absent)

    @property
    def is_query(self) -> bool:
        return self.query is not None


__all__ = [
    "GROUP_BYS",
    "ActionTarget",
    "GroupBy",
    "GroupValue",
    "Query",
]
