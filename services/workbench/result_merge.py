"""A query's result kept in order as rows are added: what a load's batch costs the table
is the new rows' filter and sort plus one merge, not a query over every row.

:class:`SortedResult` holds the rows of an :class:`~services.workbench.index.EntryIndex`
matching a :class:`~services.workbench.query.Query`, in the order
:meth:`EntryIndex.query` gives (rows with a value by (key, row), reversed when
descending, then the rows without one by row). :meth:`SortedResult.extended`
filters and sorts only the rows added since and merges them in (``searchsorted``
and ``np.insert``: a copy of the result, no sorting of it); it gives up (None)
when rows already there changed, and the caller runs the query again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from services.workbench.index import EntryIndex
from services.workbench.index_storage import Rows
from services.workbench.query import Query


@dataclass(frozen=True, slots=True)
class _Keys:
    """The sort keys of the result's rows that have one, ascending, and how many."""

    tag: int
    ascending: npt.NDArray[np.generic]


@dataclass(frozen=True, slots=True)
class SortedResult:
    """``rows`` (table order) match ``query`` over the index's rows ``[0, upto)`` as of
    ``version``; ``present`` of them (the first) have a sort key."""

    query: Query
    rows: Rows
    upto: int
    version: int
    present: int
    keys: _Keys | None = None

    @classmethod
    def of(cls, index: EntryIndex, query: Query, rows: Rows) -> SortedResult:
        """``rows``, just given by ``index.query(query)`` (the keys are taken when first
        needed)."""
        return cls(query, rows, len(index), index.version, -1)

    def _with_keys(self, index: EntryIndex) -> tuple[int, npt.NDArray[np.generic]]:
        """How many rows have a key, and their keys ascending (taken once, then merged)."""
        key = self.query.sort_key
        tag = index.rank_tag(key)
        if self.keys is not None and self.keys.tag == tag and self.present >= 0:
            return self.present, self.keys.ascending
        values, missing = index.sort_keys(self.rows, key)
        present = len(self.rows) - len(missing)  # rows without a key are last
        head = values[:present]
        return present, head[::-1] if self.query.descending else head

    def extended(self, index: EntryIndex) -> tuple[SortedResult, int] | None:
        """This result with the rows added to ``index`` since, and how many of them
        match; None when rows already there changed (run the query again)."""
        if index.version == self.version:
            return self, 0
        if not index.appended_since(self.version, self.upto):
            return None
        query = self.query
        new = index.matching_from(query, self.upto)
        if not len(new):
            same = SortedResult(
                query, self.rows, len(index), index.version, self.present, self.keys
            )
            return same, 0
        present, ascending = self._with_keys(index)
        key = query.sort_key
        values, missing = index.sort_keys(new, key)
        has = np.ones(len(new), dtype=np.bool_)
        has[missing] = False
        new_rows, new_values = new[has], values[has]
        by_key = np.argsort(new_values, kind="stable")  # new rows are in row order: (key, row)
        new_rows, new_values = new_rows[by_key], new_values[by_key]
        if ascending.dtype != new_values.dtype:  # a wider text column
            wider = np.promote_types(ascending.dtype, new_values.dtype)
            ascending, new_values = ascending.astype(wider), new_values.astype(wider)
        at = np.searchsorted(ascending, new_values, side="right")  # ties: older rows first
        head = self.rows[:present]
        if query.descending:  # (key, row) descending: the reverse, new rows before older ties
            head = np.insert(head, (present - at)[::-1], new_rows[::-1])
        else:
            head = np.insert(head, at, new_rows)
        keys = _Keys(index.rank_tag(key), np.insert(ascending, at, new_values))
        missing_rows = new[~has]
        if present == len(self.rows) and not len(missing_rows):
            rows = head  # every row has a key: no third copy
        else:
            rows = np.concatenate([head, self.rows[present:], missing_rows])
        rows.setflags(write=False)
        grown = SortedResult(query, rows, len(index), index.version, len(head), keys)
        return grown, len(new)


__all__ = ["SortedResult"]
