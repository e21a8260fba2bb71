"""The failed-payments table in memory: a columnar index that stays fast at a million rows.

:class:`EntryIndex` holds :class:`~services.workbench.model.EntrySummary` rows as
numpy columns, not as Python objects: int64 times, float64 amounts, int32
attempts, small-integer codes into per-column dictionaries for the values
that repeat (dead-letter queue, reason, origin queue, routing key, currency,
merchant, state, operator), fixed-width byte columns for the values that do
not (entry id, payment id, amount text, message id), and one lowercase
"haystack" byte blob for free-text search - each column as its ``kind`` in
:mod:`services.workbench.columns` says. A row's summary is built on demand
(:meth:`EntryIndex.row`), for the rows a view shows.

:meth:`EntryIndex.query` filters and sorts with numpy: a
:class:`~services.workbench.query.Query` becomes a handful of vectorised
passes over the columns and one ``argsort`` of the matching rows;
:meth:`EntryIndex.group_counts` is a ``bincount``. Rows are never removed: an
entry that was acted on keeps its row with its final state.

Nothing here does I/O or knows Qt: the app feeds the index from the parking
store (a first page, the full load in batches, the changes stream) and the
views read it.

Entry ids are taken to be unique across dead-letter queues (the parking
store's ids are time plus a per-process counter with a random start).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt

from services.workbench.cause import source_of
from services.workbench.columns import COLUMN, COLUMNS, SortKey
from services.workbench.index_ids import IdLookup
from services.workbench.index_storage import (
    MIN_CAPACITY,
    Dictionary,
    Haystack,
    Rows,
    TextColumn,
    grown,
)
from services.workbench.model import BodyKind, EntryState, EntrySummary
from services.workbench.query import GROUP_BYS, TERM_SEPARATOR, GroupBy, GroupValue, Query

STATES: Final[tuple[EntryState, ...]] = tuple(EntryState)
"""Every state, in life-cycle order (the ``state`` sort order)."""

_STATE_CODE: Final[dict[str, int]] = {state.value: code for code, state in enumerate(STATES)}
_BODY_KINDS: Final[tuple[BodyKind, ...]] = ("json", "text", "binary", "empty")
_BODY_CODE: Final[dict[str, int]] = {kind: code for code, kind in enumerate(_BODY_KINDS)}

_INT32_MAX: Final = 2**31 - 1
_SUBSET_SORT_RATIO: Final = 16
"""A result smaller than 1/16 of the rows is sorted on its own; a larger one is
picked out of the cached order of every row."""
_CACHED_ORDERS: Final = 3


_FIELD_NAMES: Final = tuple(f.name for f in dataclasses.fields(EntrySummary))
_SUMMARY_FIELDS: Final = attrgetter(*_FIELD_NAMES)
_T = TypeVar("_T", bound=np.generic)
_TEXTS: Final = tuple(c for c in COLUMNS if c.kind in ("id", "amount"))
"""Columns kept as text (the amount as written, too: it is searched)."""
_CATEGORIES: Final = tuple(c for c in COLUMNS if c.kind == "category")
_SEARCHED_CATEGORIES: Final = tuple(c.name for c in _CATEGORIES if c.searchable)
_HAYSTACK_FIELDS: Final = tuple(c.field for c in _TEXTS if c.searchable)


def _haystack_texts(values: Mapping[str, Sequence[str | None]], count: int) -> list[bytes]:
    """Each row's searchable texts that are not categories, lower-cased, each followed
    by a NUL (built a column at a time: a row at a time costs twice as much)."""
    parts = [[value or "" for value in values[field]] for field in _HAYSTACK_FIELDS]
    parts.append([""] * count)
    return [
        TERM_SEPARATOR.join(row).lower().encode("utf-8", "surrogatepass")
        for row in zip(*parts, strict=True)
    ]


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
        self._rewritten = 0  # the version of the last change to rows already here
        self._texts = {c.name: TextColumn(max_width=c.max_bytes) for c in _TEXTS}
        self._ids = self._texts["entry_id"]
        self._parked = np.zeros(0, dtype=np.int64)
        self._dead = np.zeros(0, dtype=np.int64)
        self._amount = np.zeros(0, dtype=np.float64)
        self._attempts = np.zeros(0, dtype=np.int32)
        self._size = np.zeros(0, dtype=np.int64)
        self._state = np.zeros(0, dtype=np.int8)
        self._body = np.zeros(0, dtype=np.int8)
        self._row_seg = np.zeros(0, dtype=np.int64)
        self._dicts = {c.name: Dictionary() for c in _CATEGORIES}
        self._dicts["outcome"] = Dictionary()  # kept for the rows, not a column (yet)
        self._codes: dict[str, npt.NDArray[np.int32]] = {
            name: np.zeros(0, dtype=np.int32) for name in self._dicts
        }
        self._hay = Haystack()
        self._id_lookup = IdLookup(self._ids)
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
            *self._codes.values(),
        ]
        total = sum(int(a.nbytes) for a in arrays)
        total += sum(c.nbytes for c in self._texts.values())
        total += self._hay.nbytes
        total += sum(d.nbytes for d in self._dicts.values())
        total += self._id_lookup.nbytes
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
            # a row read again as it is (a load meeting its first page) changes nothing
            updates = {row: s for row, s in updates.items() if self.row(row) != s}
        added = len(new_items)
        if added:
            start = self._n
            self._reserve(start + added)
            rows = np.arange(start, start + added, dtype=np.int64)
            self._write(rows, new_items, fresh=True)
            self._n = start + added
            new_ids = ids if new_items is summaries else [s.entry_id for s in new_items]
            self._id_lookup.added(new_ids, start)
        if updates:
            rows = np.fromiter(updates, dtype=np.int64, count=len(updates))
            self._write(rows, list(updates.values()), fresh=False)
            self._forget_orders()
        self.version += 1
        if updates:
            self._rewritten = self.version
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
        self._rewritten = self.version
        return True

    def appended_since(self, version: int, rows: int) -> bool:
        """Whether every change since ``version`` (when the index held ``rows`` rows) only
        added rows: rows ``[rows, len)`` are then all that is new."""
        return self._rewritten <= version and rows <= self._n

    def reserve(self, rows: int, text_bytes_per_row: int = 96) -> None:
        """Make room for ``rows`` rows in all (the full load's size, when known), so
        the columns are not copied on the way; ``text_bytes_per_row`` sizes the
        search text."""
        self._reserve(rows)
        self._hay.reserve(rows, rows * text_bytes_per_row)

    def _reserve(self, need: int) -> None:
        if need <= self._capacity:
            return
        capacity = max(need, 2 * self._capacity, MIN_CAPACITY)
        for name in ("_parked", "_dead", "_amount", "_attempts", "_size", "_state", "_body"):
            setattr(self, name, grown(getattr(self, name), capacity))
        self._row_seg = grown(self._row_seg, capacity)  # type: ignore[assignment]
        for name, codes in self._codes.items():
            self._codes[name] = grown(codes, capacity)  # type: ignore[assignment]
        for column in self._texts.values():
            column.reserve(capacity)
        self._capacity = capacity

    def _write(self, rows: Rows, items: Sequence[EntrySummary], *, fresh: bool) -> None:
        values = dict(
            zip(_FIELD_NAMES, zip(*map(_SUMMARY_FIELDS, items), strict=True), strict=True)
        )
        for column in _TEXTS:
            if fresh or column.name != "entry_id":  # a row's entry id never changes
                self._texts[column.name].put(rows, values[column.field])
        self._parked[rows] = values["parked_at_ms"]
        self._dead[rows] = values["dead_lettered_at_ms"]
        self._amount[rows] = np.array(values["amount_value"], dtype=np.float64)
        attempts = np.array(values["attempts"], dtype=np.int64)
        self._attempts[rows] = np.clip(attempts, 0, _INT32_MAX)
        self._size[rows] = values["size"]
        self._state[rows] = np.fromiter(
            (_STATE_CODE[s] for s in values["state"]), dtype=np.int8, count=len(items)
        )
        self._body[rows] = np.fromiter(
            (_BODY_CODE.get(k, 2) for k in values["body_kind"]), dtype=np.int8, count=len(items)
        )
        for column in _CATEGORIES:
            codes = self._dicts[column.name].encode(values[column.field])
            self._codes[column.name][rows] = codes
        self._codes["outcome"][rows] = self._dicts["outcome"].encode(values["outcome"])
        texts = _haystack_texts(values, len(items))
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
        if not self._n:
            return np.full(len(entry_ids), -1, dtype=np.int64)
        return self._id_lookup.find_many(entry_ids)

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
            payment_id=self._texts["payment_id"].get(i),
            merchant=d["merchant"].values[c["merchant"][i]],
            amount=self._texts["amount"].get(i),
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
            message_id=self._texts["message_id"].get(i),
            cause=d["cause"].values[c["cause"][i]] or "",
            cause_source=source_of(d["cause_source"].values[c["cause_source"][i]]),
            failure_group=d["failure_group"].values[c["failure_group"][i]] or "",
            origin_exchange=d["origin_exchange"].values[c["origin_exchange"][i]],
            outcome=d["outcome"].values[c["outcome"][i]],
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

    def category_codes(
        self, name: str, rows: Rows | slice | None
    ) -> tuple[npt.NDArray[np.int32], list[str | None]]:
        """A category column at ``rows`` (None: every row; a slice of rows: a read-only
        view, no copy): its codes, and the values they stand for."""
        return self._column(self._codes[name], rows), self._dicts[name].values

    def row_numbers(
        self, rows: Rows | slice | None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int8]]:
        """``dead_lettered_at_ms``, ``amount_value`` (NaN: none) and the state code
        (into :data:`STATES`) of ``rows`` (None: every row, read-only views)."""
        return (
            self._column(self._dead, rows),
            self._column(self._amount, rows),
            self._column(self._state, rows),
        )

    def _column(self, column: npt.NDArray[_T], rows: Rows | slice | None) -> npt.NDArray[_T]:
        if isinstance(rows, slice):
            start, stop, _ = rows.indices(self._n)
            rows = None if start == 0 and stop == self._n else rows
        if rows is not None:
            return column[rows]
        view = column[: self._n]
        view.flags.writeable = False
        return view

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

    def matching_from(self, query: Query, start: int) -> Rows:
        """The rows from ``start`` on passing ``query``'s filters, in row order: what a
        load's batch adds to a result (the work is the new rows', not every row's)."""
        start = min(max(start, 0), self._n)
        if start == self._n:
            return np.zeros(0, dtype=np.int64)
        mask = self._mask(query.filters, start)
        if mask is None:
            return np.arange(start, self._n, dtype=np.int64)
        return np.flatnonzero(mask).astype(np.int64) + start

    def sort_keys(self, rows: Rows, key: SortKey) -> tuple[npt.NDArray[np.generic], Rows]:
        """What ``query`` sorts ``rows`` by (a category's rank, which shifts when a new
        value comes) and which of them have no value (positions into ``rows``)."""
        values, missing = self._sort_keys(rows, key)
        none = np.zeros(0, dtype=np.int64) if missing is None else np.flatnonzero(missing)
        return values, none

    def rank_tag(self, key: SortKey) -> int:
        """Changes when the sort keys of rows already here change (a category's ranks)."""
        return len(self._dicts[key]) if key in self._dicts else 0

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

    def _mask(self, q: Query, start: int = 0) -> npt.NDArray[np.bool_] | None:
        """Which rows of ``[start, len)`` pass ``q`` (None: all of them)."""
        n, s = self._n, start
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
            narrow(lut[self._state[s:n]])
        for name, wanted in (
            ("reason", q.reasons),
            ("dlq", q.dlqs),
            ("origin_queue", q.queues),
            ("merchant", q.merchants),
            ("failure_group", q.failure_groups),
        ):
            if wanted:
                narrow(self._lut_mask(name, self._dicts[name].lookup(wanted), s))
        if q.cause.strip():
            narrow(self._cause_mask(q.cause.strip().lower(), s))
        if q.dead_from_ms is not None:
            narrow(self._dead[s:n] >= q.dead_from_ms)
        if q.dead_until_ms is not None:
            narrow(self._dead[s:n] < q.dead_until_ms)
        if q.amount_min is not None:
            narrow(self._amount[s:n] >= q.amount_min)
        if q.amount_max is not None:
            narrow(self._amount[s:n] <= q.amount_max)
        for term in q.terms:
            if mask is not None and not mask.any():
                break
            narrow(self._text_mask(term, s))
        return mask

    def _lut_mask(self, name: str, codes: Sequence[int], start: int = 0) -> npt.NDArray[np.bool_]:
        lut = np.zeros(len(self._dicts[name]), dtype=np.bool_)
        if codes:
            lut[np.asarray(codes, dtype=np.int64)] = True
        return lut[self._codes[name][start : self._n]]

    def _cause_mask(self, text: str, start: int = 0) -> npt.NDArray[np.bool_]:
        """Rows from ``start`` on whose cause or failure group holds ``text`` (lower-cased)."""
        mask = self._lut_mask("cause", self._dicts["cause"].containing(text), start)
        groups = self._dicts["failure_group"].containing(text)
        if groups:
            np.logical_or(mask, self._lut_mask("failure_group", groups, start), out=mask)
        return mask

    def _text_mask(self, term: str, start: int = 0) -> npt.NDArray[np.bool_]:
        mask = np.zeros(self._n - start, dtype=np.bool_)
        for name in _SEARCHED_CATEGORIES:
            codes = self._dicts[name].containing(term)
            if codes:
                np.logical_or(mask, self._lut_mask(name, codes, start), out=mask)
        # the rows from ``start`` on have their texts from their first segment on
        first = int(self._row_seg[start : self._n].min()) if start else 0
        rows = self._hay.rows_containing(term.encode("utf-8", "surrogatepass"), first)
        rows = rows[rows >= start] - start if start else rows
        mask[rows] = True
        return mask

    def _sort_keys(
        self, rows: Rows, key: SortKey
    ) -> tuple[npt.NDArray[np.generic], npt.NDArray[np.bool_] | None]:
        """The values to sort ``rows`` by, and which rows have none (or None: all have)."""
        kind = COLUMN[key].kind
        if kind == "amount":
            values = self._amount[rows]
            return values, np.isnan(values)
        if kind == "category":
            ranks = self._dicts[key].rank()[self._codes[key][rows]]
            return ranks, ranks < 0
        if kind == "id":
            column = self._texts[key]
            missing = column.null[rows]
            return column.data[rows], missing if missing.any() else None
        numbers: dict[str, npt.NDArray[np.generic]] = {
            "dead_lettered_at": self._dead,
            "parked_at": self._parked,
            "attempts": self._attempts,
            "size": self._size,
            "state": self._state,
        }
        return numbers[key][rows], None

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
            self._orders.pop(key, None)

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
            return self.group_pairs(by, counts)
        column = self._codes[by]
        codes32 = column[: self._n] if rows is None else column[rows]
        return self.group_pairs(by, np.bincount(codes32, minlength=len(self._dicts[by])))

    def group_codes(self, by: GroupBy, rows: Rows | slice) -> npt.NDArray[np.int64]:
        """The codes :meth:`group_pairs` counts for ``rows`` (a state's: its code in
        :data:`STATES`)."""
        return (self._state if by == "state" else self._codes[by])[rows].astype(np.int64)

    def group_pairs(
        self, by: GroupBy, counts: npt.NDArray[np.int64]
    ) -> list[tuple[GroupValue, int]]:
        """(value, count) from counts by code (:meth:`group_codes`), as
        :meth:`group_counts` orders them."""
        if by == "state":
            pairs: list[tuple[GroupValue, int]] = [
                (STATES[code], int(counts[code])) for code in np.flatnonzero(counts).tolist()
            ]
            return sorted(pairs, key=lambda p: (-p[1], _STATE_CODE[str(p[0])]))
        dictionary = self._dicts[by]
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
    "STATES",
    "EntryIndex",
]
