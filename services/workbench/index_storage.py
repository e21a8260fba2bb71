"""The numpy containers :class:`~services.workbench.index.EntryIndex` is built of.

:class:`Dictionary` codes the values of a column that repeat,
:class:`TextColumn` keeps short strings in a fixed-width byte array, and
:class:`Haystack` is one lower-cased byte blob of every row's searchable
text, searched with vectorised passes. All grow by doubling (:func:`grown`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt

Rows: TypeAlias = npt.NDArray[np.int64]
"""Row positions in an index."""

MIN_CAPACITY: Final = 1024
_MANY_POSITIONS: Final = 1_000_000
"""Past this many matches, rows are found by marking the matches in the blob and
asking each row's segment (two linear passes) rather than by binary search."""


def grown(array: npt.NDArray[np.generic], capacity: int) -> npt.NDArray[np.generic]:
    """``array`` copied into a new zeroed array of ``capacity`` rows."""
    out = np.zeros(capacity, dtype=array.dtype)
    out[: len(array)] = array
    return out


class Dictionary:
    """The distinct values of one categorical column; code 0 is None."""

    __slots__ = ("_lower", "_rank", "codes", "values")

    def __init__(self) -> None:
        self.values: list[str | None] = [None]
        self.codes: dict[str | None, int] = {None: 0}
        self._lower: list[str] = [""]
        self._rank: npt.NDArray[np.int32] = np.full(1, -1, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.values)

    def encode(self, items: Sequence[str | None]) -> npt.NDArray[np.int32]:
        """The codes of ``items``, adding the values not seen before."""
        codes = self.codes
        try:
            return np.fromiter(map(codes.__getitem__, items), dtype=np.int32, count=len(items))
        except KeyError:
            for item in items:
                if item not in codes:
                    codes[item] = len(self.values)
                    self.values.append(item)
                    self._lower.append(item.lower() if item else "")
            return np.fromiter(map(codes.__getitem__, items), dtype=np.int32, count=len(items))

    def code(self, item: str | None) -> int:
        return int(self.encode([item])[0])

    def lookup(self, items: Iterable[str | None]) -> list[int]:
        """The codes of the known ``items`` (unknown ones are left out)."""
        return [self.codes[i] for i in items if i in self.codes]

    def containing(self, term: str) -> list[int]:
        """Codes whose lower-cased value contains ``term``."""
        return [code for code, text in enumerate(self._lower) if term in text and code]

    def rank(self) -> npt.NDArray[np.int32]:
        """Each code's position in case-insensitive order of the values (None, "": -1)."""
        if len(self._rank) != len(self.values):
            order = sorted(
                (c for c in range(1, len(self.values)) if self.values[c]),
                key=lambda c: (self._lower[c], self.values[c] or ""),
            )
            rank = np.full(len(self.values), -1, dtype=np.int32)
            rank[np.asarray(order, dtype=np.int64)] = np.arange(len(order), dtype=np.int32)
            self._rank = rank
        return self._rank

    @property
    def nbytes(self) -> int:
        strings = sum(sys.getsizeof(v) for v in self.values if v is not None)
        lowered = sum(sys.getsizeof(v) for v in self._lower)
        return strings + lowered + sys.getsizeof(self.codes) + 2 * sys.getsizeof(self.values)


class TextColumn:
    """Short strings, one per row, in a fixed-width ``S`` array.

    The width grows to the longest value up to ``max_width`` bytes; longer
    values (and values a fixed-width array would alter: trailing NULs) keep
    their full text in ``overflow`` and a truncated prefix (for sorting) in
    the array. ``null`` tells None from "".
    """

    __slots__ = ("data", "max_width", "null", "overflow")

    def __init__(self, max_width: int) -> None:
        self.max_width = max_width
        self.data: npt.NDArray[np.bytes_] = np.zeros(0, dtype="S1")
        self.null: npt.NDArray[np.bool_] = np.zeros(0, dtype=np.bool_)
        self.overflow: dict[int, str] = {}

    def reserve(self, capacity: int) -> None:
        self.data = grown(self.data, capacity)  # type: ignore[assignment]
        self.null = grown(self.null, capacity)  # type: ignore[assignment]

    @property
    def width(self) -> int:
        return int(self.data.dtype.itemsize)

    def put(self, rows: Rows, values: Sequence[str | None]) -> None:
        encoded = [v.encode("utf-8", "surrogatepass") if v is not None else b"" for v in values]
        longest = max(map(len, encoded), default=0)
        if longest > self.width and self.width < self.max_width:
            self.data = self.data.astype(f"S{min(longest, self.max_width)}")
        width = self.width
        self.data[rows] = encoded
        self.null[rows] = [v is None for v in values]
        if self.overflow:
            for row in rows.tolist():
                self.overflow.pop(row, None)
        if longest > width or b"\x00" in b"".join(encoded):
            for row, value, raw in zip(rows.tolist(), values, encoded, strict=True):
                if len(raw) > width or raw.endswith(b"\x00"):
                    self.overflow[row] = value or ""

    def overflow_keys(self, first_row: int) -> list[str]:
        """The over-long values of rows from ``first_row`` on."""
        return [value for row, value in self.overflow.items() if row >= first_row]

    def get(self, row: int) -> str | None:
        if self.null[row]:
            return None
        long = self.overflow.get(row)
        if long is not None:
            return long
        return bytes(self.data[row]).decode("utf-8", "surrogatepass")

    def take(self, rows: Rows) -> list[str]:
        """The values of ``rows`` ("" for None), vectorised: one decode of all of
        them joined, not one per value (a million ids in well under 100 ms)."""
        raw: list[bytes] = self.data[rows].tolist()
        joined = b"\x00".join(raw)
        if joined.count(b"\x00") == max(len(raw) - 1, 0):
            texts = joined.decode("utf-8", "surrogatepass").split("\x00") if raw else []
        else:  # a value holds a NUL: one at a time
            texts = [b.decode("utf-8", "surrogatepass") for b in raw]
        if self.overflow:
            for position, row in enumerate(rows.tolist()):
                long = self.overflow.get(row)
                if long is not None:
                    texts[position] = long
        return texts

    @property
    def nbytes(self) -> int:
        extra = sum(sys.getsizeof(v) + 100 for v in self.overflow.values())
        return int(self.data.nbytes + self.null.nbytes) + extra


class Haystack:
    """One lower-cased byte blob of every row's searchable text, NUL-separated.

    Each row owns one segment (``seg_start``, ``seg_row``); a row whose text
    changes gets a new segment and its old one is marked stale (row -1).
    Segments are appended in blob order, so a match position maps to its
    segment with one ``searchsorted``.
    """

    __slots__ = ("blob", "hist", "nseg", "pair_hist", "seg_row", "seg_start", "used")

    def __init__(self) -> None:
        self.blob: npt.NDArray[np.uint8] = np.zeros(0, dtype=np.uint8)
        self.used = 0
        self.seg_start: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.seg_row: npt.NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self.nseg = 0
        self.hist: npt.NDArray[np.int64] = np.zeros(256, dtype=np.int64)
        self.pair_hist: npt.NDArray[np.int64] = np.zeros(1 << 16, dtype=np.int64)

    def reserve(self, segments: int, size: int) -> None:
        if size > len(self.blob):
            self.blob = grown(self.blob, size)  # type: ignore[assignment]
        if segments > len(self.seg_start):
            self.seg_start = grown(self.seg_start, segments)  # type: ignore[assignment]
            self.seg_row = grown(self.seg_row, segments)  # type: ignore[assignment]

    def append(self, rows: Rows, texts: Sequence[bytes]) -> npt.NDArray[np.int64]:
        """Add one segment per row; returns the segments' numbers."""
        count = len(texts)
        joined = np.frombuffer(b"".join(texts), dtype=np.uint8)
        size = len(joined)
        if self.used + size > len(self.blob):
            self.blob = grown(self.blob, max(self.used + size, 2 * len(self.blob), 1 << 16))  # type: ignore[assignment]
        if self.nseg + count > len(self.seg_start):
            capacity = max(self.nseg + count, 2 * len(self.seg_start), MIN_CAPACITY)
            self.seg_start = grown(self.seg_start, capacity)  # type: ignore[assignment]
            self.seg_row = grown(self.seg_row, capacity)  # type: ignore[assignment]
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=count)
        starts = self.used + np.cumsum(lengths) - lengths
        segments = np.arange(self.nseg, self.nseg + count, dtype=np.int64)
        self.blob[self.used : self.used + size] = joined
        self.hist += np.bincount(joined, minlength=256)
        if size > 1:
            pairs = joined[:-1].astype(np.uint16) | (joined[1:].astype(np.uint16) << 8)
            self.pair_hist += np.bincount(pairs, minlength=1 << 16)
        self.seg_start[segments] = starts
        self.seg_row[segments] = rows
        self.used += size
        self.nseg += count
        return segments

    def segment(self, seg: int) -> bytes:
        start = int(self.seg_start[seg])
        end = int(self.seg_start[seg + 1]) if seg + 1 < self.nseg else self.used
        return self.blob[start:end].tobytes()

    def retire(self, segments: npt.NDArray[np.int64]) -> None:
        self.seg_row[segments] = -1

    def rows_containing(self, needle: bytes, first: int = 0) -> npt.NDArray[np.int32]:
        """Rows whose text contains ``needle`` (may repeat a row; never stale ones), in
        segments ``first`` on (a load's new rows: the blob from their first segment)."""
        m = len(needle)
        first = min(max(first, 0), self.nseg)
        begin = int(self.seg_start[first]) if first < self.nseg else self.used
        if m == 0 or m > self.used - begin or any(self.hist[b] == 0 for b in needle):
            return np.zeros(0, dtype=np.int32)
        seg_start = self.seg_start[first : self.nseg] - begin
        seg_row = self.seg_row[first : self.nseg]
        if m == 1:  # one pass: which segments hold the byte at all
            hits = self.blob[begin : self.used] == needle[0]
            rows = seg_row[np.logical_or.reduceat(hits, seg_start)]
            return rows[rows >= 0]
        starts = self.positions(needle, begin) - begin
        if len(starts) > _MANY_POSITIONS:
            hits = np.zeros(self.used - begin, dtype=np.bool_)
            hits[starts] = True
            rows = seg_row[np.logical_or.reduceat(hits, seg_start)]
        else:
            rows = seg_row[np.searchsorted(seg_start, starts, side="right") - 1]
        return rows[rows >= 0]

    def positions(self, needle: bytes, begin: int = 0) -> npt.NDArray[np.int64]:
        """Every start position of ``needle`` (two bytes or more) from ``begin`` on,
        unordered, vectorised.

        Anchors on the needle's rarest two-byte pair (running pair counts say
        which): two passes over the blob read as 16-bit words, at even and at
        odd offsets, find where the pair occurs; the needle's other bytes are
        then checked at those candidates only, rarest first.
        """
        m = len(needle)
        size = self.used - begin
        blob = self.blob[begin : self.used]
        pairs = [needle[k] | needle[k + 1] << 8 for k in range(m - 1)]
        anchor = min(range(m - 1), key=lambda k: (int(self.pair_hist[pairs[k]]), k))
        found = []
        for parity in (0, 1):
            words = (size - parity) // 2
            view = blob[parity : parity + 2 * words].view("<u2")
            found.append(np.flatnonzero(view == pairs[anchor]) * 2 + (parity - anchor))
        candidates = np.concatenate(found)
        candidates = candidates[(candidates >= 0) & (candidates <= size - m)]
        rest = [k for k in range(m) if k not in (anchor, anchor + 1)]
        for k in sorted(rest, key=lambda k: int(self.hist[needle[k]])):
            if not len(candidates):
                break
            candidates = candidates[blob[candidates + k] == needle[k]]
        return candidates.astype(np.int64, copy=False) + begin

    @property
    def nbytes(self) -> int:
        return int(
            self.blob.nbytes
            + self.seg_start.nbytes
            + self.seg_row.nbytes
            + self.hist.nbytes
            + self.pair_hist.nbytes
        )
