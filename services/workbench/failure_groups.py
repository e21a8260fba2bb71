"""Failure groups in numbers: how many entries, the amount at risk per currency, the
merchants affected, first and last seen - for the CLI, the snapshot report and the GUI.

Pure functions over :class:`~services.workbench.model.EntrySummary` rows (the
index's rows, a store's batches, a snapshot's entries).
"""

from __future__ import annotations

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


def failure_group_stats(rows: Iterable[EntrySummary]) -> list[FailureGroupStats]:
    """The failure groups of ``rows``, most entries first (ties: newest last seen first,
    then by group)."""
    groups: dict[str, FailureGroupStats] = {}
    merchants: dict[str, set[str]] = {}
    sources: dict[str, Counter[str]] = {}
    for row in rows:
        key = row.failure_group or row.cause or row.reason
        stats = groups.get(key)
        if stats is None:
            stats = groups[key] = FailureGroupStats(
                key, first_seen_ms=row.dead_lettered_at_ms, last_seen_ms=row.dead_lettered_at_ms
            )
            merchants[key] = set()
            sources[key] = Counter()
        stats.count += 1
        when = row.dead_lettered_at_ms
        stats.first_seen_ms = min(when, stats.first_seen_ms)
        if when >= stats.last_seen_ms:
            stats.last_seen_ms = when
            stats.example = row.cause
        if not stats.example:
            stats.example = row.cause
        if row.merchant:
            merchants[key].add(row.merchant)
        sources[key][row.cause_source] += 1
        if row.state in OPEN_STATES:
            stats.open += 1
            if row.amount_value is not None:
                currency = row.currency or ""
                stats.amount_at_risk[currency] = stats.amount_at_risk.get(currency, 0.0) + (
                    row.amount_value
                )
    for key, stats in groups.items():
        stats.merchants = len(merchants[key])
        stats.sources = dict(sources[key])
    return sorted(groups.values(), key=lambda s: (-s.count, -s.last_seen_ms, s.group))
