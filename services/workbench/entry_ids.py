"""The entry ids of a selection, looked up when asked: selecting a million rows costs
nothing until somebody reads a million ids."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from services.workbench.index_storage import Rows

if TYPE_CHECKING:
    from services.workbench.index import EntryIndex

CHUNK = 10_000
"""Ids looked up at a time when iterating."""


class EntryIds(Sequence[str]):
    """The entry ids of index ``rows`` (in that order), a read-only sequence of str.

    ``len`` and the first few ids are immediate; a slice, a loop or ``list()`` looks
    them up in the index (vectorised). Equal to any sequence of the same ids.
    """

    __slots__ = ("_index", "_rows")

    def __init__(self, index: EntryIndex, rows: Rows) -> None:
        self._index = index
        self._rows = rows

    @property
    def rows(self) -> Rows:
        """The index rows."""
        return self._rows

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, item: int) -> str: ...

    @overload
    def __getitem__(self, item: slice) -> list[str]: ...

    def __getitem__(self, item: int | slice) -> str | list[str]:
        if isinstance(item, slice):
            return self._index.entry_ids(self._rows[item])
        position = range(len(self._rows))[item]  # IndexError as a list raises it
        return self._index.entry_ids(self._rows[position : position + 1])[0]

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self._rows), CHUNK):
            yield from self._index.entry_ids(self._rows[start : start + CHUNK])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EntryIds):
            return other._index is self._index and np.array_equal(other._rows, self._rows)
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(other) == len(self) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # a sequence that compares by content

    def __repr__(self) -> str:
        shown: list[Any] = self[:3]
        more = ", …" if len(self) > 3 else ""
        return f"EntryIds({len(self):,}: {', '.join(map(repr, shown))}{more})"
