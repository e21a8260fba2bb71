"""Failure group stats over the index's rows, vectorised: what the workbench's group
panel shows for each failure group at a million rows.

The same numbers as :func:`services.workbench.failure_groups.failure_group_stats`
(count, open, amount at risk per currency, merchants affected, first and last
seen, where the causes came from, the newest cause), computed with ``bincount``
over the index's column codes instead of a Python loop over rows. A group is a
value of the ``failure_group`` column, as the index groups and filters it
(``Query.with_group("failure_group", ...)``).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from services.workbench.cause import source_of
from services.workbench.failure_groups import OPEN_STATES, FailureGroupStats
from services.workbench.index import STATES, EntryIndex
from services.workbench.index_storage import Rows

IS_OPEN: Final = np.array([state in OPEN_STATES for state in STATES], dtype=np.bool_)
"""By state code: whether the state is open (a lookup: ``np.isin`` took 60 ms on 1M rows)."""
_BITMAP_MAX: Final = 32_000_000
"""Distinct (group, merchant) pairs are marked in a bitmap up to this many cells;
beyond, they are found by sorting."""


def failure_group_stats(
    index: EntryIndex, rows: Rows | None = None, groups: int | None = None
) -> list[FailureGroupStats]:
    """The failure groups of ``rows`` (every row when None), most entries first (ties:
    newest last seen first, then by group); only the first ``groups`` when given."""
    if rows is not None and _every_row(rows, len(index)):
        rows = None  # read the columns as they are: no copy of a million rows each
    codes, group_values = index.category_codes("failure_group", rows)
    size = len(group_values)
    group: npt.NDArray[np.int64] = codes.astype(np.int64)
    counts = np.bincount(group, minlength=size)
    present = np.flatnonzero(counts)
    if not len(present):
        return []
    dead, amount, state = index.row_numbers(rows)
    last = np.full(size, np.iinfo(np.int64).min, dtype=np.int64)
    first = np.full(size, np.iinfo(np.int64).max, dtype=np.int64)
    np.maximum.at(last, group, dead)
    np.minimum.at(first, group, dead)
    order = sorted(
        present.tolist(),
        key=lambda g: (-int(counts[g]), -int(last[g]), group_values[g] or ""),
    )
    if groups is not None:
        order = order[:groups]
    is_open = IS_OPEN[state]
    open_counts = np.bincount(group[is_open], minlength=size)
    at_risk = _amounts_at_risk(
        index, rows, group, size, counted=is_open & np.isfinite(amount), amount=amount
    )
    merchants = _distinct_merchants(index, rows, group, size)
    sources = _sources(index, rows, group, size)
    newest = _newest_causes(index, rows, group, size, dead=dead, last=last)
    return [
        FailureGroupStats(
            group=group_values[g] or "",
            count=int(counts[g]),
            open=int(open_counts[g]),
            amount_at_risk=at_risk.get(g, {}),
            merchants=int(merchants[g]),
            first_seen_ms=int(first[g]),
            last_seen_ms=int(last[g]),
            sources=sources.get(g, {}),
            example=newest.get(g, ""),
        )
        for g in order
    ]


def _every_row(rows: Rows, count: int) -> bool:
    """Whether ``rows`` is every row of the index in order (0, 1, ... count - 1)."""
    if len(rows) != count:
        return False
    if count == 0:
        return True
    return int(rows[0]) == 0 and int(rows[-1]) == count - 1 and bool(np.all(rows[1:] > rows[:-1]))


def _amounts_at_risk(
    index: EntryIndex,
    rows: Rows | None,
    group: npt.NDArray[np.int64],
    size: int,
    *,
    counted: npt.NDArray[np.bool_],
    amount: npt.NDArray[np.float64],
) -> dict[int, dict[str, float]]:
    """Group code -> currency -> the open entries' amounts."""
    currency, currencies = index.category_codes("currency", rows)
    width = len(currencies)
    cells = group[counted] * width + currency[counted]
    sums = np.bincount(cells, weights=amount[counted], minlength=size * width)
    out: dict[int, dict[str, float]] = {}
    for cell in np.flatnonzero(np.bincount(cells, minlength=size * width)).tolist():
        g, c = divmod(cell, width)
        out.setdefault(g, {})[currencies[c] or ""] = float(sums[cell])
    return out


def _distinct_merchants(
    index: EntryIndex, rows: Rows | None, group: npt.NDArray[np.int64], size: int
) -> npt.NDArray[np.int64]:
    """Per group code, how many distinct merchants (no merchant is not one)."""
    merchant, merchants = index.category_codes("merchant", rows)
    named = np.array([bool(m) for m in merchants], dtype=np.bool_)[merchant]
    width = len(merchants)
    pairs = group[named] * width + merchant[named]
    if size * width <= _BITMAP_MAX:
        seen = np.zeros(size * width, dtype=np.bool_)
        seen[pairs] = True
        per_group: npt.NDArray[np.int64] = seen.reshape(size, width).sum(axis=1, dtype=np.int64)
        return per_group
    distinct = np.unique(pairs)
    counts: npt.NDArray[np.int64] = np.bincount(distinct // width, minlength=size)
    return counts


def _sources(
    index: EntryIndex, rows: Rows | None, group: npt.NDArray[np.int64], size: int
) -> dict[int, dict[str, int]]:
    """Group code -> cause source -> entries."""
    source, names = index.category_codes("cause_source", rows)
    width = len(names)
    cells = np.bincount(group * width + source, minlength=size * width)
    out: dict[int, dict[str, int]] = {}
    for cell in np.flatnonzero(cells).tolist():
        g, s = divmod(cell, width)
        name = source_of(names[s])
        sources = out.setdefault(g, {})
        sources[name] = sources.get(name, 0) + int(cells[cell])
    return out


def _newest_causes(
    index: EntryIndex,
    rows: Rows | None,
    group: npt.NDArray[np.int64],
    size: int,
    *,
    dead: npt.NDArray[np.int64],
    last: npt.NDArray[np.int64],
) -> dict[int, str]:
    """Group code -> the cause of its newest entry (the group's example)."""
    cause, causes = index.category_codes("cause", rows)
    newest = dead == last[group]
    example = np.zeros(size, dtype=np.int64)
    example[group[newest]] = cause[newest]
    return {int(g): causes[int(example[g])] or "" for g in np.flatnonzero(example).tolist()}


__all__ = ["failure_group_stats"]
