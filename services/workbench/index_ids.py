"""Entry id -> row for :class:`~services.workbench.index.EntryIndex`: runs of rows sorted
by id (a ``searchsorted`` in each) folded from a dict of the rows added since, plus a
dict for ids too long for the id column."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from services.workbench.index_storage import Rows, TextColumn

_ID_REBUILD_MIN: Final = 32_768
_ID_REBUILD_MAX: Final = 65_536
"""At most this many recent ids are folded in at once: one step of a load stays short
(sorting 250,000 ids at 1,000,000 rows took one GUI step of 100 ms)."""


class IdLookup:
    """Which row holds an entry id (see the module docstring)."""

    __slots__ = ("_ids", "long", "recent", "runs", "sorted_n")

    def __init__(self, ids: TextColumn) -> None:
        self._ids = ids
        self.runs: list[tuple[npt.NDArray[np.bytes_], Rows]] = []  # (ids, rows)
        self.sorted_n = 0
        self.recent: dict[str, int] = {}
        self.long: dict[str, int] = {}

    @property
    def nbytes(self) -> int:
        total = sum(int(a.nbytes) for run in self.runs for a in run)
        for ids in (self.recent, self.long):
            total += sys.getsizeof(ids) + sum(sys.getsizeof(k) + 32 for k in ids)
        return total

    def added(self, entry_ids: Sequence[str], start: int) -> None:
        """``entry_ids`` are in rows ``start``, ``start + 1``, ... (new rows)."""
        self.recent.update(zip(entry_ids, range(start, start + len(entry_ids)), strict=True))
        for entry_id in self._ids.overflow_keys(start):
            self.long[entry_id] = self.recent.pop(entry_id)
        self._maybe_rebuild()

    def find_many(self, entry_ids: Sequence[str]) -> Rows:
        """The row of each id, -1 for an id not here."""
        out = np.full(len(entry_ids), -1, dtype=np.int64)
        if not entry_ids:
            return out
        recent, long = self.recent, self.long
        rest: list[int] = []
        for i, entry_id in enumerate(entry_ids):
            row = recent.get(entry_id)
            if row is None and long:
                row = long.get(entry_id)
            if row is not None:
                out[i] = row
            else:
                rest.append(i)
        if rest and self.runs:
            keys = [entry_ids[i].encode("utf-8", "surrogatepass") for i in rest]
            for sorted_ids, rows in self.runs:
                width = sorted_ids.dtype.itemsize  # a longer id is not in this run
                fits = [i for i, key in zip(rest, keys, strict=True) if len(key) <= width]
                if not fits:
                    continue
                wanted = np.array(
                    [key for key in keys if len(key) <= width], dtype=sorted_ids.dtype
                )
                at = np.minimum(np.searchsorted(sorted_ids, wanted), len(rows) - 1)
                hit = sorted_ids[at] == wanted
                targets = np.asarray(fits, dtype=np.int64)
                out[targets[hit]] = rows[at[hit]]
        return out

    def _maybe_rebuild(self) -> None:
        """Fold the recent ids into a new sorted run once there are many of them.

        Only the recent ids are sorted (at most ``_ID_REBUILD_MAX``): the work
        of a step does not grow with the index (merging them into one sorted
        array copied every row, about 100 ms at a million); a lookup searches
        each run (about 17 at a million rows).
        """
        if len(self.recent) <= min(max(_ID_REBUILD_MIN, self.sorted_n // 4), _ID_REBUILD_MAX):
            return
        rows = np.fromiter(self.recent.values(), dtype=np.int64, count=len(self.recent))
        keys = self._ids.data[rows]
        by_id = np.argsort(keys, kind="stable")
        self.runs.append((keys[by_id], rows[by_id]))
        self.sorted_n += len(rows)
        self.recent = {}


__all__ = ["IdLookup"]
