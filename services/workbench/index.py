"""The failed-payments table in memory: a columnar index that stays fast at a million rows.

:class:`EntryIndex` holds :class:`~services.workbench.model.EntrySummary` rows as
numpy columns, not as Python objects: int64 times, float64 amounts, int32
attempts, small-integer codes into per-column dictionaries for the values
that repeat (dead-letter queue, reason, origin queue, routing key, currency,
merchant, state, operator), fixed-width byte columns for the values that do
not (entry id, payment id, amount text, message id), and one lowercase
"haystack" byte blob for free-text search. A row's summary is built on
demand (:meth:`EntryIndex.row`), for the rows a view shows.

:meth:`EntryIndex.query` filters and sorts with numpy: a :class:`Query`
(text, states, reasons, queues, merchants, time and amount ranges, sort key
and order) becomes a handful of vectorised passes over the columns and one
``argsort`` of the matching rows; :meth:`EntryIndex.group_counts` is a
``bincount``. Rows are never removed: an entry that was acted on keeps its
row with its final state.

Nothing here does I/O or knows Qt: the app feeds the index from the parking
store (a first page, the full load in batches, the changes stream) and the
views read it. :class:`ActionTarget` names what an action applies to - some
entry ids, or everything a :class:`Query` matches - and is shared by the
views, the app and the CLI.

Entry ids are taken to be unique across dead-letter queues (the parking
store's ids are time plus a per-process counter with a random start).
"""

from __future__ import annotations

import datetime
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import Final, Literal, TypeAlias, get_args

import numpy as np
import numpy.typing as npt

from services.workbench.model import BodyKind, EntryState, EntrySummary

Rows: TypeAlias = npt.NDArray[np.int64]
"""Row positions in an :class:`EntryIndex` (what :meth:`EntryIndex.query` returns)."""

SortKey = Literal[
    "dead_lettered_at",
    "parked_at",
    "payment_id",
    "merchant",
    "amount",
    "currency",
    "reason",
    "origin_queue",
    "routing_key",
    "attempts",
    "state",
    "last_operator",
    "dlq",
    "entry_id",
    "message_id",
    "size",
]
SORT_KEYS: Final[tuple[SortKey, ...]] = get_args(SortKey)

GroupBy = Literal["reason", "origin_queue", "merchant", "state", "dlq"]
GROUP_BYS: Final[tuple[GroupBy, ...]] = get_args(GroupBy)

GroupValue: TypeAlias = str | None
"""A group's value: the column's text (an :class:`EntryState` for ``state``),
None for rows without one (a body without a merchant)."""

STATES: Final[tuple[EntryState, ...]] = tuple(EntryState)
"""Every state, in life-cycle order (the ``state`` sort order)."""

_STATE_CODE: Final[dict[str, int]] = {state.value: code for code, state in enumerate(STATES)}
_BODY_KINDS: Final[tuple[BodyKind, ...]] = ("json", "text", "binary", "empty")
_BODY_CODE: Final[dict[str, int]] = {kind: code for code, kind in enumerate(_BODY_KINDS)}

_MIN_CAPACITY: Final = 1024
_ID_REBUILD_MIN: Final = 32_768
_INT32_MAX: Final = 2**31 - 1
_SEP: Final = "\x00"
_MANY_POSITIONS: Final = 1_000_000
"""Past this many matches, rows are found by marking the matches in the blob and
asking each row's segment (two linear passes) rather than by binary search."""
_SUBSET_SORT_RATIO: Final = 16
"""A result smaller than 1/16 of the rows is sorted on its own; a larger one is
picked out of the cached order of every row."""
_CACHED_ORDERS: Final = 3


# --------------------------------------------------------------------------- query


@dataclass(frozen=True, slots=True)
class Query:
    """Which rows to show, and in which order. Frozen and hashable.

    An empty set means "no filter on that column". ``text`` is split on
    whitespace; every word must occur, case-insensitively, in one of the
    row's payment id, merchant, entry id, message id, amount, reason,
    dead-letter queue, origin queue or routing key. ``dead_from_ms`` is
    inclusive and ``dead_until_ms`` exclusive (epoch milliseconds, on
    ``dead_lettered_at_ms``); ``amount_min``/``amount_max`` are inclusive on
    ``amount_value``, and a row without an amount matches no amount range.
    ``merchants`` may hold None for "no merchant".

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
    sort_key: SortKey = "dead_lettered_at"
    descending: bool = True

    def __post_init__(self) -> None:
        if self.sort_key not in SORT_KEYS:
            raise ValueError(f"unknown sort key {self.sort_key!r}")
        for name in ("states", "reasons", "dlqs", "queues", "merchants"):
            value = getattr(self, name)
            if not isinstance(value, frozenset):
                object.__setattr__(self, name, frozenset(value))
        if self.states:
            object.__setattr__(self, "states", frozenset(EntryState(s) for s in self.states))

    @property
    def terms(self) -> tuple[str, ...]:
        """The lower-cased words of ``text``."""
        return tuple(self.text.lower().replace(_SEP, " ").split())

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
            fields_text = [
                s.payment_id,
                s.merchant,
                s.entry_id,
                s.message_id,
                s.amount,
                s.reason,
                s.dlq,
                s.origin_queue,
                s.routing_key,
            ]
            lowered = [f.lower() for f in fields_text if f]
            if not all(any(term in f for f in lowered) for term in terms):
                return False
        return True

    def describe(self) -> str:
        """The filters in words, for confirmations and the audit trail."""
        parts: list[str] = []

        def listed(name: str, values: Iterable[str | None]) -> None:
            shown = sorted((v if v is not None else "(none)") for v in values)
            if shown:
                more = f" +{len(shown) - 3} more" if len(shown) > 3 else ""
                parts.append(f"{name} {', '.join(shown[:3])}{more}")

        if self.text.strip():
            parts.append(f"text “{self.text.strip()}”")
        listed("state", (str(s) for s in self.states))
        listed("reason", self.reasons)
        listed("queue", self.queues)
        listed("DLQ", self.dlqs)
        listed("merchant", self.merchants)
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
}


def _local_minute(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True, slots=True)
class ActionTarget:
    """What an action (requeue, retry, cancel) applies to.

    Either ``entry_ids`` - these entries, exactly - or ``query`` - every entry
    matching it when the action runs ("all matching the filter"); never
    both. ``count`` is how many entries that was when the operator chose
    (for a query, the controller re-resolves it), ``description`` says it
    in words for the confirmation dialog and the audit trail.
    """

    entry_ids: tuple[str, ...] | None
    query: Query | None
    count: int
    description: str

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
            description = f"entry {ids[0]}" if len(ids) == 1 else f"{len(ids):,} selected entries"
        return cls(ids, None, len(ids), description)

    @classmethod
    def for_query(cls, query: Query, count: int, description: str = "") -> ActionTarget:
        """Everything ``query`` matches (``count`` of them when chosen)."""
        if not description:
            noun = "entry" if count == 1 else "entries"
            description = f"all {count:,} {noun} matching {query.describe()}"
        return cls(None, query.filters, count, description)

    @property
    def is_query(self) -> bool:
        return self.query is not None


# --------------------------------------------------------------------------- storage


def _grown(array: npt.NDArray[np.generic], capacity: int) -> npt.NDArray[np.generic]:
    """``array`` copied into a new zeroed array of ``capacity`` rows."""
    out = np.zeros(capacity, dtype=array.dtype)
    out[: len(array)] = array
    return out


class _Dictionary:
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


class _TextColumn:
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
        self.data = _grown(self.data, capacity)  # type: ignore[assignment]
        self.null = _grown(self.null, capacity)  # type: ignore[assignment]

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


class _Haystack:
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
            self.blob = _grown(self.blob, size)  # type: ignore[assignment]
        if segments > len(self.seg_start):
            self.seg_start = _grown(self.seg_start, segments)  # type: ignore[assignment]
            self.seg_row = _grown(self.seg_row, segments)  # type: ignore[assignment]

    def append(self, rows: Rows, texts: Sequence[bytes]) -> npt.NDArray[np.int64]:
        """Add one segment per row; returns the segments' numbers."""
        count = len(texts)
        joined = np.frombuffer(b"".join(texts), dtype=np.uint8)
        size = len(joined)
        if self.used + size > len(self.blob):
            self.blob = _grown(self.blob, max(self.used + size, 2 * len(self.blob), 1 << 16))  # type: ignore[assignment]
        if self.nseg + count > len(self.seg_start):
            capacity = max(self.nseg + count, 2 * len(self.seg_start), _MIN_CAPACITY)
            self.seg_start = _grown(self.seg_start, capacity)  # type: ignore[assignment]
            self.seg_row = _grown(self.seg_row, capacity)  # type: ignore[assignment]
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

    def rows_containing(self, needle: bytes) -> npt.NDArray[np.int32]:
        """Rows whose text contains ``needle`` (may repeat a row; never stale ones)."""
        m = len(needle)
        if m == 0 or m > self.used or any(self.hist[b] == 0 for b in needle):
            return np.zeros(0, dtype=np.int32)
        seg_start = self.seg_start[: self.nseg]
        seg_row = self.seg_row[: self.nseg]
        if m == 1:  # one pass: which segments hold the byte at all
            hits = self.blob[: self.used] == needle[0]
            rows = seg_row[np.logical_or.reduceat(hits, seg_start)]
            return rows[rows >= 0]
        starts = self.positions(needle)
        if len(starts) > _MANY_POSITIONS:
            hits = np.zeros(self.used, dtype=np.bool_)
            hits[starts] = True
            rows = seg_row[np.logical_or.reduceat(hits, seg_start)]
        else:
            rows = seg_row[np.searchsorted(seg_start, starts, side="right") - 1]
        return rows[rows >= 0]

    def positions(self, needle: bytes) -> npt.NDArray[np.int64]:
        """Every start position of ``needle`` (two bytes or more), unordered, vectorised.

        Anchors on the needle's rarest two-byte pair (running pair counts say
        which): two passes over the blob read as 16-bit words, at even and at
        odd offsets, find where the pair occurs; the needle's other bytes are
        then checked at those candidates only, rarest first.
        """
        m = len(needle)
        blob = self.blob[: self.used]
        pairs = [needle[k] | needle[k + 1] << 8 for k in range(m - 1)]
        anchor = min(range(m - 1), key=lambda k: (int(self.pair_hist[pairs[k]]), k))
        found = []
        for parity in (0, 1):
            words = (self.used - parity) // 2
            view = blob[parity : parity + 2 * words].view("<u2")
            found.append(np.flatnonzero(view == pairs[anchor]) * 2 + (parity - anchor))
        candidates = np.concatenate(found)
        candidates = candidates[(candidates >= 0) & (candidates <= self.used - m)]
        rest = [k for k in range(m) if k not in (anchor, anchor + 1)]
        for k in sorted(rest, key=lambda k: int(self.hist[needle[k]])):
            if not len(candidates):
                break
            candidates = candidates[blob[candidates + k] == needle[k]]
        return candidates.astype(np.int64, copy=False)

    @property
    def nbytes(self) -> int:
        return int(
            self.blob.nbytes
            + self.seg_start.nbytes
            + self.seg_row.nbytes
            + self.hist.nbytes
            + self.pair_hist.nbytes
        )


_SUMMARY_FIELDS = attrgetter(
    "entry_id",
    "dlq",
    "parked_at_ms",
    "dead_lettered_at_ms",
    "payment_id",
    "merchant",
    "amount",
    "amount_value",
    "currency",
    "reason",
    "origin_queue",
    "routing_key",
    "attempts",
    "state",
    "last_operator",
    "body_kind",
    "size",
    "message_id",
)


def _haystack_text(s: EntrySummary) -> bytes:
    text = f"{s.payment_id or ''}\0{s.entry_id}\0{s.message_id or ''}\0{s.amount or ''}\0"
    return text.lower().encode("utf-8", "surrogatepass")


@dataclass(frozen=True, slots=True)
class _Order:
    """Rows ``[0, upto)`` sorted by one key: ``present`` ascending by (key, row) with
    their ``keys``, then ``missing`` (no value) by row. ``tag`` is the size of the
    key's dictionary when the ranks were taken (0 for other keys)."""

    upto: int
    tag: int
    present: Rows
    keys: npt.NDArray[np.generic]
    missing: Rows


# --------------------------------------------------------------------------- the index


class EntryIndex:
    """Columnar, Qt-free index of parked-entry summaries (see the module docstring).

    ``version`` grows with every change, so views and caches can tell
    whether what they hold is current.
    """

    def __init__(self) -> None:
        self._n = 0
        self._capacity = 0
        self.version = 0
        self._ids = _TextColumn(max_width=128)
        self._payment = _TextColumn(max_width=64)
        self._amount_text = _TextColumn(max_width=32)
        self._message = _TextColumn(max_width=64)
        self._parked = np.zeros(0, dtype=np.int64)
        self._dead = np.zeros(0, dtype=np.int64)
        self._amount = np.zeros(0, dtype=np.float64)
        self._attempts = np.zeros(0, dtype=np.int32)
        self._size = np.zeros(0, dtype=np.int64)
        self._state = np.zeros(0, dtype=np.int8)
        self._body = np.zeros(0, dtype=np.int8)
        self._row_seg = np.zeros(0, dtype=np.int64)
        self._dicts: dict[str, _Dictionary] = {
            name: _Dictionary()
            for name in (
                "dlq",
                "reason",
                "origin_queue",
                "routing_key",
                "currency",
                "merchant",
                "last_operator",
            )
        }
        self._codes: dict[str, npt.NDArray[np.int32]] = {
            name: np.zeros(0, dtype=np.int32) for name in self._dicts
        }
        self._hay = _Haystack()
        # id -> row: a permutation sorting rows [0, _sorted_n) by id (searchsorted),
        # plus a dict for the rows added since it was built and for over-long ids.
        self._id_order = np.zeros(0, dtype=np.int64)
        self._id_sorted: npt.NDArray[np.bytes_] = np.zeros(0, dtype="S1")
        self._sorted_n = 0
        self._id_recent: dict[str, int] = {}
        self._id_long: dict[str, int] = {}
        self._orders: dict[SortKey, _Order] = {}
        self._filter_cache: tuple[Query, int, Rows] | None = None
        self._result_cache: tuple[Query, int, Rows] | None = None

    # ------------------------------------------------------------------ size

    def __len__(self) -> int:
        return self._n

    @property
    def nbytes(self) -> int:
        """Memory held by the index, arrays at capacity plus an estimate of its dicts."""
        arrays: list[npt.NDArray[np.generic]] = [
            self._parked,
            self._dead,
            self._amount,
            self._attempts,
            self._size,
            self._state,
            self._body,
            self._row_seg,
            self._id_order,
            self._id_sorted,
            *self._codes.values(),
        ]
        total = sum(int(a.nbytes) for a in arrays)
        total += sum(c.nbytes for c in (self._ids, self._payment, self._amount_text, self._message))
        total += self._hay.nbytes
        total += sum(d.nbytes for d in self._dicts.values())
        for ids in (self._id_recent, self._id_long):
            total += sys.getsizeof(ids) + sum(sys.getsizeof(k) + 32 for k in ids)
        return total

    # ------------------------------------------------------------------ writing

    def add(self, summaries: Sequence[EntrySummary]) -> int:
        """Add rows; a summary whose entry is already here replaces its row.

        Returns how many rows are new. Amortised O(1) per row: the columns
        grow by doubling, and the id lookup is rebuilt geometrically.
        """
        if not summaries:
            return 0
        ids = [s.entry_id for s in summaries]
        found = self._find_many(ids)
        if not (found >= 0).any() and len(set(ids)) == len(ids):
            new_items: Sequence[EntrySummary] = summaries
            updates: dict[int, EntrySummary] = {}
        else:
            new_items, updates = self._split(summaries, ids, found)
        added = len(new_items)
        if added:
            start = self._n
            self._reserve(start + added)
            rows = np.arange(start, start + added, dtype=np.int64)
            self._write(rows, new_items, fresh=True)
            self._n = start + added
            new_ids = ids if new_items is summaries else [s.entry_id for s in new_items]
            self._id_recent.update(zip(new_ids, range(start, start + added), strict=True))
            for entry_id in self._ids.overflow_keys(start):
                self._id_long[entry_id] = self._id_recent.pop(entry_id)
            self._maybe_rebuild_ids()
        if updates:
            rows = np.fromiter(updates, dtype=np.int64, count=len(updates))
            self._write(rows, list(updates.values()), fresh=False)
            self._forget_orders()
        self.version += 1
        return added

    def _split(
        self, summaries: Sequence[EntrySummary], ids: list[str], found: Rows
    ) -> tuple[list[EntrySummary], dict[int, EntrySummary]]:
        """New summaries (first of each id) and updates {row: latest summary}."""
        new_items: list[EntrySummary] = []
        updates: dict[int, EntrySummary] = {}
        pending: dict[str, int] = {}
        next_row = self._n
        for summary, entry_id, row in zip(summaries, ids, found.tolist(), strict=True):
            if row >= 0:
                updates[row] = summary
                continue
            new_row = pending.get(entry_id, -1)
            if new_row < 0:
                pending[entry_id] = next_row
                next_row += 1
                new_items.append(summary)
            else:  # a repeat within the batch of an id that is new: the last one wins
                new_items[new_row - self._n] = summary
        return new_items, updates

    def update(self, summary: EntrySummary) -> None:
        """Replace an entry's row (or add it when it is not here)."""
        self.add([summary])

    def update_state(self, entry_id: str, state: EntryState, operator: str | None) -> bool:
        """A live state change (the changes stream); False when the entry is not here."""
        row = self.find(entry_id)
        if row is None:
            return False
        self._state[row] = _STATE_CODE[EntryState(state).value]
        self._codes["last_operator"][row] = self._dicts["last_operator"].code(operator or None)
        self._forget_orders("state", "last_operator")
        self.version += 1
        return True

    def reserve(self, rows: int, text_bytes_per_row: int = 96) -> None:
        """Make room for ``rows`` rows in all (the full load's size, when known), so
        the columns are not copied on the way; ``text_bytes_per_row`` sizes the
        search text."""
        self._reserve(rows)
        self._hay.reserve(rows, rows * text_bytes_per_row)

    def _reserve(self, need: int) -> None:
        if need <= self._capacity:
            return
        capacity = max(need, 2 * self._capacity, _MIN_CAPACITY)
        for name in ("_parked", "_dead", "_amount", "_attempts", "_size", "_state", "_body"):
            setattr(self, name, _grown(getattr(self, name), capacity))
        self._row_seg = _grown(self._row_seg, capacity)  # type: ignore[assignment]
        for name, codes in self._codes.items():
            self._codes[name] = _grown(codes, capacity)  # type: ignore[assignment]
        for column in (self._ids, self._payment, self._amount_text, self._message):
            column.reserve(capacity)
        self._capacity = capacity

    def _write(self, rows: Rows, items: Sequence[EntrySummary], *, fresh: bool) -> None:
        (
            entry_id,
            dlq,
            parked_at,
            dead_at,
            payment_id,
            merchant,
            amount,
            amount_value,
            currency,
            reason,
            origin_queue,
            routing_key,
            attempts,
            state,
            last_operator,
            body_kind,
            size,
            message_id,
        ) = zip(*map(_SUMMARY_FIELDS, items), strict=True)
        if fresh:
            self._ids.put(rows, entry_id)
        self._payment.put(rows, payment_id)
        self._amount_text.put(rows, amount)
        self._message.put(rows, message_id)
        self._parked[rows] = parked_at
        self._dead[rows] = dead_at
        self._amount[rows] = np.array(amount_value, dtype=np.float64)
        self._attempts[rows] = np.clip(np.array(attempts, dtype=np.int64), 0, _INT32_MAX)
        self._size[rows] = size
        self._state[rows] = np.fromiter(
            (_STATE_CODE[s] for s in state), dtype=np.int8, count=len(items)
        )
        self._body[rows] = np.fromiter(
            (_BODY_CODE.get(k, 2) for k in body_kind), dtype=np.int8, count=len(items)
        )
        columns = {
            "dlq": dlq,
            "reason": reason,
            "origin_queue": origin_queue,
            "routing_key": routing_key,
            "currency": currency,
            "merchant": merchant,
            "last_operator": last_operator,
        }
        for name, values in columns.items():
            self._codes[name][rows] = self._dicts[name].encode(values)
        texts = [_haystack_text(s) for s in items]
        if fresh:
            self._row_seg[rows] = self._hay.append(rows, texts)
            return
        changed = [
            i
            for i, (row, text) in enumerate(zip(rows.tolist(), texts, strict=True))
            if self._hay.segment(int(self._row_seg[row])) != text
        ]
        if changed:
            picked = rows[np.asarray(changed, dtype=np.int64)]
            self._hay.retire(self._row_seg[picked])
            self._row_seg[picked] = self._hay.append(picked, [texts[i] for i in changed])

    # ------------------------------------------------------------------ id lookup

    def find(self, entry_id: str) -> int | None:
        """The row of an entry, or None."""
        row = int(self._find_many([entry_id])[0])
        return row if row >= 0 else None

    def positions(self, entry_ids: Iterable[str]) -> Rows:
        """The rows of the entries that are here (unknown ids are left out)."""
        found = self._find_many(list(entry_ids))
        return found[found >= 0]

    def _find_many(self, entry_ids: Sequence[str]) -> Rows:
        out = np.full(len(entry_ids), -1, dtype=np.int64)
        if not self._n or not entry_ids:
            return out
        recent, long = self._id_recent, self._id_long
        rest: list[int] = []
        for i, entry_id in enumerate(entry_ids):
            row = recent.get(entry_id)
            if row is None and long:
                row = long.get(entry_id)
            if row is not None:
                out[i] = row
            else:
                rest.append(i)
        if rest and self._sorted_n:
            width = self._ids.width
            keys = [entry_ids[i].encode("utf-8", "surrogatepass") for i in rest]
            fitting = [(i, key) for i, key in zip(rest, keys, strict=True) if len(key) <= width]
            if fitting:
                fits = [i for i, _ in fitting]
                wanted = np.array([key for _, key in fitting], dtype=self._ids.data.dtype)
                order = self._id_order
                at = np.searchsorted(self._id_sorted, wanted)
                at = np.minimum(at, len(order) - 1)
                rows = order[at]
                hit = self._id_sorted[at] == wanted
                targets = np.asarray(fits, dtype=np.int64)
                out[targets[hit]] = rows[hit]
        return out

    def _maybe_rebuild_ids(self) -> None:
        """Fold the recent ids into the sorted lookup once there are many of them:
        sort those alone and merge them in (O(n) copies, no full sort)."""
        if len(self._id_recent) <= max(_ID_REBUILD_MIN, self._sorted_n // 4):
            return
        rows = np.fromiter(self._id_recent.values(), dtype=np.int64, count=len(self._id_recent))
        keys = self._ids.data[rows]
        by_id = np.argsort(keys, kind="stable")
        sorted_ids = self._id_sorted
        if sorted_ids.dtype != keys.dtype:
            sorted_ids = sorted_ids.astype(np.promote_types(sorted_ids.dtype, keys.dtype))
        at = np.searchsorted(sorted_ids, keys[by_id])
        self._id_sorted = np.insert(sorted_ids, at, keys[by_id].astype(sorted_ids.dtype))
        self._id_order = np.insert(self._id_order, at, rows[by_id])
        self._sorted_n = len(self._id_order)
        self._id_recent = {}

    # ------------------------------------------------------------------ reading

    def row(self, position: int) -> EntrySummary:
        """The summary of one row, built on demand."""
        if not 0 <= position < self._n:
            raise IndexError(f"row {position} out of range (0..{self._n - 1})")
        i = position
        d, c = self._dicts, self._codes
        amount_value = float(self._amount[i])
        kind = _BODY_KINDS[int(self._body[i])]
        return EntrySummary(
            entry_id=self._ids.get(i) or "",
            dlq=d["dlq"].values[c["dlq"][i]] or "",
            parked_at_ms=int(self._parked[i]),
            dead_lettered_at_ms=int(self._dead[i]),
            payment_id=self._payment.get(i),
            merchant=d["merchant"].values[c["merchant"][i]],
            amount=self._amount_text.get(i),
            amount_value=None if math.isnan(amount_value) else amount_value,
            currency=d["currency"].values[c["currency"][i]],
            reason=d["reason"].values[c["reason"][i]] or "",
            origin_queue=d["origin_queue"].values[c["origin_queue"][i]] or "",
            routing_key=d["routing_key"].values[c["routing_key"][i]] or "",
            attempts=int(self._attempts[i]),
            state=STATES[int(self._state[i])],
            last_operator=d["last_operator"].values[c["last_operator"][i]],
            body_kind=kind,
            size=int(self._size[i]),
            message_id=self._message.get(i),
        )

    def rows(self, positions: Iterable[int]) -> list[EntrySummary]:
        return [self.row(int(p)) for p in positions]

    def entry_ids(self, positions: Rows | Sequence[int]) -> list[str]:
        """The entry ids of ``positions``, vectorised (for selections of any size)."""
        return self._ids.take(np.asarray(positions, dtype=np.int64))

    def state_of(self, position: int) -> EntryState:
        return STATES[int(self._state[position])]

    def states(self, positions: Rows) -> npt.NDArray[np.int8]:
        """State codes (indexes into :data:`STATES`) of ``positions``."""
        return self._state[positions]

    def dead_lettered_range(self) -> tuple[int, int] | None:
        """The oldest and newest ``dead_lettered_at_ms`` (None when empty)."""
        if not self._n:
            return None
        dead = self._dead[: self._n]
        return int(dead.min()), int(dead.max())

    # ------------------------------------------------------------------ query

    def query(self, query: Query) -> Rows:
        """Positions of the rows matching ``query``, in its order."""
        cached = self._result_cache
        if cached is not None and cached[0] == query and cached[1] == self.version:
            return cached[2]
        rows = self._filtered(query.filters)
        result = self._sorted(rows, query.sort_key, query.descending)
        result.setflags(write=False)
        self._result_cache = (query, self.version, result)
        return result

    def matching(self, query: Query) -> Rows:
        """Positions of the rows passing ``query``'s filters, in row order (no sort)."""
        return self._filtered(query.filters)

    def count(self, query: Query) -> int:
        """How many rows match ``query``'s filters."""
        return len(self._filtered(query.filters))

    def _filtered(self, filters: Query) -> Rows:
        cached = self._filter_cache
        if cached is not None and cached[0] == filters and cached[1] == self.version:
            return cached[2]
        mask = self._mask(filters)
        rows = (
            np.arange(self._n, dtype=np.int64)
            if mask is None
            else np.flatnonzero(mask).astype(np.int64)
        )
        rows.setflags(write=False)
        self._filter_cache = (filters, self.version, rows)
        return rows

    def _mask(self, q: Query) -> npt.NDArray[np.bool_] | None:
        n = self._n
        mask: npt.NDArray[np.bool_] | None = None

        def narrow(part: npt.NDArray[np.bool_]) -> None:
            nonlocal mask
            if mask is None:
                mask = part if part.base is None else part.copy()
            else:
                np.logical_and(mask, part, out=mask)

        if q.states:
            lut = np.zeros(len(STATES), dtype=np.bool_)
            lut[[_STATE_CODE[s.value] for s in q.states]] = True
            narrow(lut[self._state[:n]])
        for name, wanted in (
            ("reason", q.reasons),
            ("dlq", q.dlqs),
            ("origin_queue", q.queues),
            ("merchant", q.merchants),
        ):
            if wanted:
                narrow(self._lut_mask(name, self._dicts[name].lookup(wanted)))
        if q.dead_from_ms is not None:
            narrow(self._dead[:n] >= q.dead_from_ms)
        if q.dead_until_ms is not None:
            narrow(self._dead[:n] < q.dead_until_ms)
        if q.amount_min is not None:
            narrow(self._amount[:n] >= q.amount_min)
        if q.amount_max is not None:
            narrow(self._amount[:n] <= q.amount_max)
        for term in q.terms:
            if mask is not None and not mask.any():
                break
            narrow(self._text_mask(term))
        return mask

    def _lut_mask(self, name: str, codes: Sequence[int]) -> npt.NDArray[np.bool_]:
        lut = np.zeros(len(self._dicts[name]), dtype=np.bool_)
        if codes:
            lut[np.asarray(codes, dtype=np.int64)] = True
        return lut[self._codes[name][: self._n]]

    def _text_mask(self, term: str) -> npt.NDArray[np.bool_]:
        n = self._n
        mask = np.zeros(n, dtype=np.bool_)
        for name in ("merchant", "reason", "dlq", "origin_queue", "routing_key"):
            codes = self._dicts[name].containing(term)
            if codes:
                np.logical_or(mask, self._lut_mask(name, codes), out=mask)
        rows = self._hay.rows_containing(term.encode("utf-8", "surrogatepass"))
        mask[rows] = True
        return mask

    def _sort_keys(
        self, rows: Rows, key: SortKey
    ) -> tuple[npt.NDArray[np.generic], npt.NDArray[np.bool_] | None]:
        """The values to sort ``rows`` by, and which rows have none (or None: all have)."""
        if key == "dead_lettered_at":
            return self._dead[rows], None
        if key == "parked_at":
            return self._parked[rows], None
        if key == "attempts":
            return self._attempts[rows], None
        if key == "size":
            return self._size[rows], None
        if key == "state":
            return self._state[rows], None
        if key == "amount":
            values = self._amount[rows]
            return values, np.isnan(values)
        if key in self._dicts:
            ranks = self._dicts[key].rank()[self._codes[key][rows]]
            return ranks, ranks < 0
        column = {"payment_id": self._payment, "entry_id": self._ids, "message_id": self._message}[
            key
        ]
        missing = column.null[rows]
        return column.data[rows], missing if missing.any() else None

    def _sorted(self, rows: Rows, key: SortKey, descending: bool) -> Rows:
        if len(rows) < 2:
            return rows.copy()
        if len(rows) * _SUBSET_SORT_RATIO >= self._n:
            # Most rows: pick them out of the whole index's order, O(n), no sorting.
            order = self._order(key)
            if len(rows) == self._n:
                with_value, without = order.present, order.missing
            else:
                chosen = np.zeros(self._n, dtype=np.bool_)
                chosen[rows] = True
                with_value = order.present[chosen[order.present]]
                without = order.missing[chosen[order.missing]]
            head = with_value[::-1] if descending else with_value
            return np.concatenate([head, without])
        values, missing = self._sort_keys(rows, key)
        if missing is not None and missing.any():
            present = ~missing
            head = self._sorted_present(rows[present], values[present], descending)
            return np.concatenate([head, rows[missing]])
        return self._sorted_present(rows, values, descending)

    def _order(self, key: SortKey) -> _Order:
        """Every row in ``key`` order, kept between queries and merged with new rows.

        A cached order is dropped when existing rows change that key (an
        update, a state change) or, for a text column, when a new value
        shifts the ranks; rows added since are sorted alone and merged in.
        """
        tag = len(self._dicts[key]) if key in self._dicts else 0
        order = self._orders.pop(key, None)
        if order is None or order.tag != tag:
            order = self._order_of(np.arange(self._n, dtype=np.int64), key, tag)
        elif order.upto < self._n:
            new = self._order_of(np.arange(order.upto, self._n, dtype=np.int64), key, tag)
            keys = order.keys
            if keys.dtype != new.keys.dtype:  # a wider text column
                keys = keys.astype(np.promote_types(keys.dtype, new.keys.dtype))
            at = np.searchsorted(keys, new.keys, side="right")  # ties: older rows first
            order = _Order(
                upto=self._n,
                tag=tag,
                present=np.insert(order.present, at, new.present),
                keys=np.insert(keys, at, new.keys.astype(keys.dtype)),
                missing=np.concatenate([order.missing, new.missing]),
            )
        self._orders[key] = order  # most recently used last
        while len(self._orders) > _CACHED_ORDERS:
            del self._orders[next(iter(self._orders))]
        return order

    def _order_of(self, rows: Rows, key: SortKey, tag: int) -> _Order:
        values, missing = self._sort_keys(rows, key)
        if missing is not None and missing.any():
            present_rows, present_values = rows[~missing], values[~missing]
            missing_rows = rows[missing]
        else:
            present_rows, present_values = rows, values
            missing_rows = np.zeros(0, dtype=np.int64)
        by_key = np.argsort(present_values, kind="stable")
        return _Order(
            upto=self._n,
            tag=tag,
            present=present_rows[by_key],
            keys=present_values[by_key],
            missing=missing_rows,
        )

    def _forget_orders(self, *keys: str) -> None:
        """Drop cached orders whose keys changed for existing rows (all when none named)."""
        if not keys:
            self._orders.clear()
        for key in keys:
            self._orders.pop(key, None)  # type: ignore[call-overload]

    @staticmethod
    def _sorted_present(rows: Rows, values: npt.NDArray[np.generic], descending: bool) -> Rows:
        order = np.argsort(values, kind="stable")
        result = rows[order]
        return result[::-1].copy() if descending else result

    # ------------------------------------------------------------------ groups

    def group_counts(self, by: GroupBy, rows: Rows | None = None) -> list[tuple[GroupValue, int]]:
        """(value, count) of the ``by`` column over ``rows`` (all rows when None),
        most common first, ties in case-insensitive value order."""
        if by not in GROUP_BYS:
            raise ValueError(f"cannot group by {by!r}")
        if by == "state":
            codes = self._state[: self._n] if rows is None else self._state[rows]
            counts = np.bincount(codes.astype(np.int64), minlength=len(STATES))
            pairs: list[tuple[GroupValue, int]] = [
                (STATES[code], int(counts[code])) for code in np.flatnonzero(counts).tolist()
            ]
            return sorted(pairs, key=lambda p: (-p[1], _STATE_CODE[str(p[0])]))
        dictionary = self._dicts[by]
        column = self._codes[by]
        codes32 = column[: self._n] if rows is None else column[rows]
        counts = np.bincount(codes32, minlength=len(dictionary))
        present = np.flatnonzero(counts)
        rank = dictionary.rank().astype(np.int64)
        rank[rank < 0] = len(rank)  # None and "" after every value with the same count
        order = np.lexsort((rank[present], -counts[present]))
        return [(dictionary.values[code], int(counts[code])) for code in present[order].tolist()]

    def values(self, by: GroupBy) -> list[GroupValue]:
        """The distinct values of a column over all rows, in case-insensitive order."""
        pairs = self.group_counts(by)
        if by == "state":
            return [v for v in STATES if v in {p[0] for p in pairs}]
        return sorted((p[0] for p in pairs), key=lambda v: (v is None, (v or "").lower(), v or ""))


__all__ = [
    "GROUP_BYS",
    "SORT_KEYS",
    "STATES",
    "ActionTarget",
    "EntryIndex",
    "GroupBy",
    "GroupValue",
    "Query",
    "Rows",
    "SortKey",
]
