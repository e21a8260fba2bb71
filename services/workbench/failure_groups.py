"""Failure groups in numbers: how many entries, the amount at risk per currency, the
merchants affected, first and last seen - for the CLI, the snapshot report and the GUI.

Pure functions over :class:`~services.workbench.model.EntrySummary` rows (the
index's rows, a store's batches, a snapshot's entries).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from services.workbench.model import EntryState, EntrySummary

OPEN_STATES: Final = frozenset({EntryState.PARKED, EntryState.CLAIMED})
"""Entries still at risk: nobody has requeued, retried or cancelled them yet."""


@dataclass(slots=True)
class FailureGroupStats:
    """One failure group: ``count`` entries (``open`` of them parked or claimed), the
    amount of the open ones per currency (``amount_at_risk``; amounts without a
    currency under ``""``), how many distinct ``merchants``, the first and last
    dead-lettering (epoch ms), where its causes came from (``sources``: source ->
    entries) and one ``example`` cause (the newest)."""

    group: str
    count: int = 0
    open: int = 0
    amount_at_risk: dict[str, float] = field(default_factory=dict)
    merchants: int = 0
    first_seen_ms: int = 0
    last_seen_ms: int = 0
    sources: dict[str, int] = field(default_factory=dict)
    example: str = ""

    @property
    def amount_text(self) -> str:
        """``1,234.50 EUR, 99.00 USD`` (largest first), ``-`` when nothing is at risk."""
        parts = sorted(self.amount_at_risk.items(), key=lambda kv: (-kv[1], kv[0]))
        text = ", ".join(f"{amount:,.2f} {currency}".rstrip() for currency, amount in parts)
        return text or "-"


class FailureGroupTally:
    """Failure group stats fed one row at a time (bounded by the number of groups, not
    of rows: a merchant set per group)."""

    def __init__(self) -> None:
        self._groups: dict[str, FailureGroupStats] = {}
        self._merchants: dict[str, set[str]] = {}
        self._sources: dict[str, Counter[str]] = {}

    def __len__(self) -> int:
        return len(self._groups)

    def add(self, row: EntrySummary) -> None:
        """Count one entry in its failure group."""
        key = row.failure_group or row.cause or row.reason
        when = row.dead_lettered_at_ms
        stats = self._groups.get(key)
        if stats is None:
            stats = self._groups[key] = FailureGroupStats(
                key, first_seen_ms=when, last_seen_ms=when, example=row.cause
            )
            self._merchants[key] = set()
            self._sources[key] = Counter()
        stats.count += 1
        stats.first_seen_ms = min(stats.first_seen_ms, when)
        if when >= stats.last_seen_ms:
            stats.last_seen_ms = when
            stats.example = row.cause or stats.example
        if row.merchant:
            self._merchants[key].add(row.merchant)
        self._sources[key][row.cause_source] += 1
        if row.state in OPEN_STATES:
            stats.open += 1
            if row.amount_value is not None and math.isfinite(row.amount_value):
                currency = row.currency or ""
                risk = stats.amount_at_risk
                risk[currency] = risk.get(currency, 0.0) + row.amount_value

    def stats(self) -> list[FailureGroupStats]:
        """The groups, most entries first (ties: newest last seen first, then by group)."""
        for key, stats in self._groups.items():
            stats.merchants = len(self._merchants[key])
            stats.sources = dict(self._sources[key])
        return sorted(self._groups.values(), key=lambda s: (-s.count, -s.last_seen_ms, s.group))


def failure_group_stats(rows: Iterable[EntrySummary]) -> list[FailureGroupStats]:
    """The failure groups of ``rows`` (see :meth:`FailureGroupTally.stats`)."""
    tally = FailureGroupTally()
    for row in rows:
        tally.add(row)
    return tally.stats()
