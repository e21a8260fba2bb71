"""The group panel's numbers kept up to date as rows are added: counts per group and,
grouped by failure group, each group's stats - from the added rows only.

:class:`GroupTally` counts the rows of an :class:`~services.workbench.index.EntryIndex`
that pass some filters, per value of one column (``group_counts``'s pairs, in its
order) and, for ``failure_group``, what
:func:`services.workbench.index_groups.failure_group_stats` gives (count, open,
amount at risk per currency, distinct merchants, first and last seen, sources,
the newest cause). :meth:`GroupTally.update` folds in the rows added since it
last looked (a load's batch: work in proportion to the batch, not to every row)
and starts again from row 0 when the filters, the column or rows already counted
changed. The amounts are summed a batch at a time, so they can differ from a
single pass in the last bits of a float.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from services.workbench.cause import source_of
from services.workbench.failure_groups import FailureGroupStats
from services.workbench.index import EntryIndex
from services.workbench.index_groups import IS_OPEN
from services.workbench.index_storage import Rows
from services.workbench.query import GroupBy, GroupValue, Query

_NEVER: Final = np.iinfo(np.int64).max
_LONG_AGO: Final = np.iinfo(np.int64).min
TABLE_MAX: Final = 32_000_000
_EVERY_ROW: Final = Query().filters


def _fit(array: npt.NDArray[np.int64], size: int, fill: int = 0) -> npt.NDArray[np.int64]:
    """``array`` with at least ``size`` cells (new ones ``fill``)."""
    if len(array) >= size:
        return array
    out = np.full(max(size, 2 * len(array), 16), fill, dtype=np.int64)
    out[: len(array)] = array
    return out


def _distinct(cells: npt.NDArray[np.int64], cap: int) -> npt.NDArray[np.int64]:
    """The distinct values of ``cells`` (all below ``cap``), ascending: marked in a table
    when it is small (no sort of a million cells), else sorted."""
    if cap <= TABLE_MAX:
        seen = np.zeros(cap, dtype=np.bool_)
        seen[cells] = True
        return np.flatnonzero(seen).astype(np.int64)
    return np.unique(cells)


class GroupTally:
    """Counts per group (and failure group stats) of the rows passing ``filters``."""

    def __init__(self) -> None:
        self._index: EntryIndex | None = None
        self._by: GroupBy | None = None
        self._filters = Query()
        self._upto = 0
        self._version = -1
        self._reset()

    def _reset(self) -> None:
        self._upto = 0
        self._counts = np.zeros(0, dtype=np.int64)
        self._open = np.zeros(0, dtype=np.int64)
        self._first = np.zeros(0, dtype=np.int64)
        self._last = np.zeros(0, dtype=np.int64)
        self._example = np.zeros(0, dtype=np.int64)  # cause code of the newest row
        self._at_risk: dict[tuple[int, int], float] = {}  # (group, currency) -> amount
        self._seen = np.zeros((0, 0), dtype=np.bool_)  # [group, merchant]: counted
        self._pairs: set[int] = set()  # group << 32 | merchant: when the table is too big
        self._merchants = np.zeros(0, dtype=np.int64)
        self._sources: dict[tuple[int, int], float] = {}  # (group, source code) -> rows

    @property
    def upto(self) -> int:
        """The index rows counted: ``[0, upto)``."""
        return self._upto

    def update(self, index: EntryIndex, by: GroupBy, filters: Query) -> int:
        """Count the rows added since (all again when the index, ``by``, ``filters`` or
        rows counted changed); returns how many rows were looked at."""
        filters = filters.filters
        same = index is self._index and by == self._by and filters == self._filters
        if not (same and index.appended_since(self._version, self._upto)):
            self._index, self._by, self._filters = index, by, filters
            self._reset()
        start = self._upto
        rows: Rows | slice
        if filters == _EVERY_ROW:  # the columns' rows as they are: views, no copies
            rows = slice(start, len(index))
        else:
            rows = index.matching(filters) if not start else index.matching_from(filters, start)
        self._add(index, by, rows)
        self._upto, self._version = len(index), index.version
        return len(index) - start

    def _add(self, index: EntryIndex, by: GroupBy, rows: Rows | slice) -> None:
        codes = index.group_codes(by, rows)
        size = int(codes.max()) + 1 if len(codes) else 0
        self._counts = _fit(self._counts, size)
        counts = np.bincount(codes, minlength=size)
        self._counts[:size] += counts
        if by == "failure_group" and len(codes):
            self._add_stats(index, rows, codes, counts)

    def _add_stats(
        self,
        index: EntryIndex,
        rows: Rows | slice,
        group: npt.NDArray[np.int64],
        counts: npt.NDArray[np.int64],
    ) -> None:
        size = len(counts)
        dead, amount, state = index.row_numbers(rows)
        self._open = _fit(self._open, size)
        self._first = _fit(self._first, size, _NEVER)
        self._last = _fit(self._last, size, _LONG_AGO)
        self._example = _fit(self._example, size)
        self._merchants = _fit(self._merchants, size)
        is_open = IS_OPEN[state]
        self._open[:size] += np.bincount(group[is_open], minlength=size)
        np.minimum.at(self._first, group, dead)
        # the newest row's cause: the last row (in row order) with the group's latest time
        last = np.full(size, _LONG_AGO, dtype=np.int64)
        np.maximum.at(last, group, dead)
        cause, _ = index.category_codes("cause", rows)
        newest = dead == last[group]
        example = np.zeros(size, dtype=np.int64)
        example[group[newest]] = cause[newest]
        later = last >= self._last[:size]  # a tie: the batch's rows come later
        take = later & (counts > 0)
        self._example[:size][take] = example[take]
        np.maximum(self._last[:size], last, out=self._last[:size])
        currency, _ = index.category_codes("currency", rows)
        counted = is_open & np.isfinite(amount)
        self._add_cells(self._at_risk, group[counted], currency[counted], amount[counted])
        source, _ = index.category_codes("cause_source", rows)
        self._add_cells(self._sources, group, source, None)
        merchant, names = index.category_codes("merchant", rows)
        named = np.array([bool(m) for m in names], dtype=np.bool_)[merchant]
        self._add_merchants(group[named], merchant[named].astype(np.int64), size, len(names))

    def _add_merchants(
        self, group: npt.NDArray[np.int64], merchant: npt.NDArray[np.int64], size: int, width: int
    ) -> None:
        """Count each (group, merchant) pair not seen before in its group's merchants."""
        rows, columns = self._seen.shape
        if size * width <= TABLE_MAX and not self._pairs:
            if size > rows or width > columns:  # the dictionaries grew
                seen = np.zeros((max(size, 2 * rows), max(width, 2 * columns)), dtype=np.bool_)
                seen[:rows, :columns] = self._seen
                self._seen = seen
            cells = _distinct(group * width + merchant, size * width)
            fresh_group, fresh_merchant = cells // width, cells % width
            fresh = ~self._seen[fresh_group, fresh_merchant]
            self._seen[fresh_group[fresh], fresh_merchant[fresh]] = True
            self._merchants[:size] += np.bincount(fresh_group[fresh], minlength=size)
            return
        if not self._pairs and rows:  # too many to mark: the pairs marked so far, in a set
            marked_group, marked_merchant = np.nonzero(self._seen)
            self._pairs.update(((marked_group << 32) | marked_merchant).tolist())
            self._seen = np.zeros((0, 0), dtype=np.bool_)
        pairs = np.unique((group << 32) | merchant)
        new = [pair for pair in pairs.tolist() if pair not in self._pairs]
        if new:
            self._pairs.update(new)
            self._merchants[:size] += np.bincount(np.asarray(new) >> 32, minlength=size)

    @staticmethod
    def _add_cells(
        into: dict[tuple[int, int], float],
        group: npt.NDArray[np.int64],
        other: npt.NDArray[np.int32],
        weights: npt.NDArray[np.float64] | None,
    ) -> None:
        """Sum ``weights`` (or count rows) per (group, other) cell into ``into``."""
        if not len(group):
            return
        width = int(other.max()) + 1
        cells = group * width + other
        sums = np.bincount(cells, weights=weights)
        for cell in _distinct(cells, len(sums)).tolist():
            key = divmod(cell, width)
            into[key] = into.get(key, 0.0) + float(sums[cell])

    # ------------------------------------------------------------------ reading

    def pairs(self) -> list[tuple[GroupValue, int]]:
        """(value, count) as :meth:`EntryIndex.group_counts` gives them."""
        if self._index is None or self._by is None:
            return []
        return self._index.group_pairs(self._by, self._counts)

    def failure_group_stats(self, groups: int | None = None) -> list[FailureGroupStats]:
        """As :func:`~services.workbench.index_groups.failure_group_stats` gives them
        (grouped by failure group; none otherwise)."""
        index = self._index
        if index is None or self._by != "failure_group":
            return []
        _codes, values = index.category_codes("failure_group", np.zeros(0, dtype=np.int64))
        _codes, causes = index.category_codes("cause", np.zeros(0, dtype=np.int64))
        _codes, currencies = index.category_codes("currency", np.zeros(0, dtype=np.int64))
        _codes, sources = index.category_codes("cause_source", np.zeros(0, dtype=np.int64))
        counts, last = self._counts, self._last
        present = np.flatnonzero(counts).tolist()
        order = sorted(present, key=lambda g: (-int(counts[g]), -int(last[g]), values[g] or ""))
        if groups is not None:
            order = order[:groups]
        at_risk: dict[int, dict[str, float]] = {}
        for (g, c), amount in self._at_risk.items():
            at_risk.setdefault(g, {})[currencies[c] or ""] = amount
        by_source: dict[int, dict[str, int]] = {}
        for (g, s), count in self._sources.items():
            named = by_source.setdefault(g, {})
            name = source_of(sources[s])
            named[name] = named.get(name, 0) + int(count)
        return [
            FailureGroupStats(
                group=values[g] or "",
                count=int(counts[g]),
                open=int(self._open[g]),
                amount_at_risk=at_risk.get(g, {}),
                merchants=int(self._merchants[g]),
                first_seen_ms=int(self._first[g]),
                last_seen_ms=int(last[g]),
                sources=by_source.get(g, {}),
                example=(causes[int(self._example[g])] or "") if self._example[g] else "",
            )
            for g in order
        ]


__all__ = ["GroupTally"]
