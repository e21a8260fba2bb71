"""The failed-payments table model: a lazy window onto an :class:`EntryIndex` result.

The model holds an :class:`~services.workbench.index.EntryIndex` and the current
result - an array of index rows matching a :class:`~services.workbench.query.Query`
in its order. ``data()`` builds the summary of the one row asked for (a few
hundred recent rows are cached), so the cost of showing the table is the
number of visible rows, not the number of entries. ``sort()`` re-runs the
query with another sort key: a numpy ``argsort`` in the index, not Python
sorting.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor

from services.masking.json import mask_identifier
from services.masking.text import mask_text
from services.outcomes.model import Outcome
from services.time_range import zone_name
from services.workbench.columns import TABLE_COLUMNS, EntryColumn, SortKey
from services.workbench.index import EntryIndex
from services.workbench.index_storage import Rows
from services.workbench.model import EntryState, EntrySummary
from services.workbench.query import Query
from services.workbench.result_merge import SortedResult
from services.workbench.shown import masked_escaped
from widgets.common import colors

ModelIndex = QModelIndex | QPersistentModelIndex

NO_VALUE: Final = "—"
ENTRY_ID_ROLE: Final = Qt.ItemDataRole.UserRole + 1
"""The row's entry id (str)."""
STATE_ROLE: Final = Qt.ItemDataRole.UserRole + 2
"""The row's :class:`EntryState` (the state pill delegate draws it)."""
SUMMARY_ROLE: Final = Qt.ItemDataRole.UserRole + 3
"""The row's :class:`EntrySummary`."""

_ROLES_ANSWERED: Final = frozenset(
    int(role)
    for role in (
        Qt.ItemDataRole.DisplayRole,
        Qt.ItemDataRole.ForegroundRole,
        Qt.ItemDataRole.TextAlignmentRole,
        Qt.ItemDataRole.ToolTipRole,
        STATE_ROLE,
        ENTRY_ID_ROLE,
        SUMMARY_ROLE,
    )
)
"""The roles :meth:`FailedPaymentsModel.data` answers (a repaint asks about eight per cell)."""

STATE_LABELS: Final[dict[EntryState, str]] = {state: state.value.title() for state in EntryState}

_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
_CENTER = Qt.AlignmentFlag.AlignCenter
_MIN_WIDTH: Final = 60
_CACHE_ROWS: Final = 1024
_PLAIN_NUMBER = re.compile(r"^(-?)(\d+)(\.\d+)?$")
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the table as Qt shows it: an entry column
    (:data:`services.workbench.columns.TABLE_COLUMNS`) with its alignment and
    smallest width."""

    name: str
    title: str
    sort_key: SortKey
    alignment: Qt.AlignmentFlag
    min_width: int
    tooltip: str
    descending_first: bool = False

    @classmethod
    def of(cls, column: EntryColumn) -> Column:
        return cls(
            column.name,
            column.title,
            column.name,
            _RIGHT if column.numeric else _LEFT,
            _MIN_WIDTH,
            column.tooltip,
            column.descending_first,
        )


COLUMNS: Final[tuple[Column, ...]] = tuple(Column.of(column) for column in TABLE_COLUMNS)
COLUMN_NAMES: Final[tuple[str, ...]] = tuple(c.name for c in COLUMNS)
_TIME_COLUMNS: Final = frozenset(c.name for c in TABLE_COLUMNS if c.kind == "time")


def format_time(ms: int, *, full: bool = False) -> str:
    """Epoch milliseconds as local time: ``May 17 14:03:07`` this year, ``2023-05-17
    14:03`` before (the header names the zone); ``full`` gives ``2024-05-17 14:03:07.250 CET``."""
    try:
        moment = datetime.datetime.fromtimestamp(ms / 1000)
    except (OverflowError, OSError, ValueError):
        return str(ms)
    if full:
        return f"{moment:%Y-%m-%d %H:%M:%S}.{ms % 1000:03d} {zone_name(moment.astimezone())}"
    if moment.year == datetime.date.today().year:
        return f"{_MONTHS[moment.month - 1]} {moment.day:2d} {moment:%H:%M:%S}"
    return f"{moment:%Y-%m-%d %H:%M}"


def format_amount(amount: str | None, currency: str | None) -> str:
    """The amount as written, thousands grouped when it is a plain number, with its currency."""
    if amount is None:
        return NO_VALUE if currency is None else f"{NO_VALUE} {currency}"
    text = amount.strip()
    match = _PLAIN_NUMBER.match(text)
    if match:
        sign, whole, fraction = match.groups()
        text = f"{sign}{int(whole):,}{fraction or ''}"
    return f"{text} {currency}" if currency else text


CAUSE_SOURCE_TEXT: Final[dict[str, str]] = {
    "flow": "the payment's failure event on the flow",
    "message": "the message's own error headers",
    "dead_letter": "the dead-letter reason (x-death): nothing else said why",
}
"""Where a cause came from, as the Cause column's tooltip says it."""


def shown_cell(text: str) -> str:
    """A free-text cell: its card numbers masked, and where it holds a control character
    (an ESC, a NUL: drawn as boxes) as every view shows such text
    (:func:`~services.workbench.shown.masked_escaped`); printable text, nearly all, takes
    the cheap path (a table paints and measures many cells)."""
    masked = mask_text(text)
    return masked if masked.isprintable() else masked_escaped(text)


def cause_tooltip(s: EntrySummary) -> str:
    """The cause whole, where it came from, and its failure group (masked, control
    characters as ``\\xNN``: :func:`~services.workbench.shown.masked_escaped`)."""
    if not s.cause:
        return "No cause known"
    source = CAUSE_SOURCE_TEXT.get(s.cause_source, s.cause_source)
    lines = [masked_escaped(s.cause), f"From {masked_escaped(source)}"]
    if s.failure_group and s.failure_group != s.cause:
        lines.append(f"Failure group: {masked_escaped(s.failure_group)}")
    if s.reason and s.cause_source != "dead_letter":
        lines.append(f"Dead-lettered: {masked_escaped(s.reason)}")
    return "\n".join(lines)


class FailedPaymentsModel(QAbstractTableModel):
    """Rows of an :class:`EntryIndex` matching a :class:`Query`, shown lazily.

    ``result_about_to_change`` and ``result_changed`` frame every change of
    the result (a new query, a sort, a refresh), so a view can keep its
    selection and scroll position by entry rather than by position.

    A refresh after rows were only added (a load's batches, new parks) merges the
    matching new rows into the result (:class:`SortedResult`) and tells Qt that
    rows were inserted, not that the model was reset: ``appended`` is then True
    until the next change.
    """

    result_about_to_change = Signal()
    result_changed = Signal(int)

    def __init__(self, index: EntryIndex | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._index = index if index is not None else EntryIndex()
        self._query = Query()
        self._result: Rows = np.zeros(0, dtype=np.int64)
        self._sorted: SortedResult | None = None
        self.appended = False
        self._cache: dict[int, EntrySummary] = {}
        self._cache_version = -1
        self._muted = QColor(colors.TEXT_MUTED)
        self._faint = QColor(colors.TEXT_FAINT)
        self._state_colors = {state: QColor(c) for state, c in colors.STATE_COLORS.items()}
        self.set_query(self._query)

    # ------------------------------------------------------------------ state

    @property
    def entry_index(self) -> EntryIndex:
        """The index the rows come from (``index()`` is Qt's)."""
        return self._index

    @property
    def query(self) -> Query:
        """The query the result came from (filters and sort)."""
        return self._query

    @property
    def result(self) -> Rows:
        """Index rows in table order (read-only)."""
        return self._result

    def set_index(self, index: EntryIndex) -> None:
        """Show another index (same query)."""
        self._index = index
        self.set_query(self._query)

    def set_query(self, query: Query) -> None:
        """Run ``query`` on the index and show its result."""
        result = self._index.query(query)
        self.set_result(result, query)
        self._sorted = SortedResult.of(self._index, query, result)

    def refresh(self) -> None:
        """Show the index as it is now: the new rows merged in when rows were only
        added, else the current query run again (changed states)."""
        grown = self._sorted.extended(self._index) if self._sorted is not None else None
        if grown is None or grown[0].query != self._query:
            self.set_query(self._query)
            return
        self._sorted, added = grown
        if not added:
            return
        first = len(self._result)
        self.result_about_to_change.emit()
        # The new rows are inserted all through the result: Qt is told that as many
        # rows came at the end (no reset: the view keeps its header, selection model and
        # scroll) and that every row may show another entry; the view puts the
        # selection, current row and scroll back by entry (result_changed).
        self.beginInsertRows(QModelIndex(), first, first + added - 1)
        self._result = self._sorted.rows
        self._cache.clear()
        self._cache_version = self._index.version
        self.endInsertRows()
        self.appended = True
        self.dataChanged.emit(
            self.index_at(0, 0), self.index_at(first + added - 1, len(COLUMNS) - 1)
        )
        self.result_changed.emit(len(self._result))

    def set_result(self, rows: Rows | Iterable[int], query: Query | None = None) -> None:
        """Show ``rows`` (index positions, in table order) - a full model reset."""
        result = np.asarray(rows, dtype=np.int64)
        self._sorted = None
        self.appended = False
        self.result_about_to_change.emit()
        self.beginResetModel()
        self._result = result
        if query is not None:
            self._query = query
        self._cache.clear()
        self._cache_version = self._index.version
        self.endResetModel()
        self.result_changed.emit(len(result))

    def notify_rows_changed(self) -> None:
        """Repaint every row from the index without re-running the query (a state
        change that does not move rows)."""
        self._cache.clear()
        if len(self._result):
            self.dataChanged.emit(
                self.index_at(0, 0), self.index_at(len(self._result) - 1, len(COLUMNS) - 1)
            )

    # ------------------------------------------------------------------ lookups

    def index_at(self, row: int, column: int) -> QModelIndex:
        return self.index(row, column)

    def index_row(self, row: int) -> int:
        """The index row shown at table row ``row``."""
        return int(self._result[row])

    def index_rows(self, rows: Iterable[int] | Rows) -> Rows:
        """The index rows shown at table ``rows``."""
        return self._result[np.asarray(rows, dtype=np.int64)]

    def table_rows(self, index_rows: Rows) -> Rows:
        """Table rows (ascending) showing any of ``index_rows``."""
        if not len(index_rows) or not len(self._result):
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(np.isin(self._result, index_rows)).astype(np.int64)

    def summary_at(self, row: int) -> EntrySummary:
        """The summary shown at table row ``row``."""
        if self._cache_version != self._index.version:
            self._cache.clear()
            self._cache_version = self._index.version
        cached = self._cache.get(row)
        if cached is None:
            if len(self._cache) >= _CACHE_ROWS:
                self._cache.clear()
            cached = self._index.row(int(self._result[row]))
            self._cache[row] = cached
        return cached

    def summaries_at(self, rows: Iterable[int]) -> list[EntrySummary]:
        return [self.summary_at(int(r)) for r in rows]

    def display_texts(self, rows: int) -> dict[str, set[str]]:
        """The distinct texts each column shows in the first ``rows`` table rows (what
        ``data()`` shows, without a Qt call per cell: the table fits its widths to them)."""
        texts: dict[str, set[str]] = {c.name: set() for c in COLUMNS}
        for row in range(min(rows, len(self._result))):
            summary = self.summary_at(row)
            for name, shown in texts.items():
                shown.add(self._display(summary, name))
        return texts

    def entry_id_at(self, row: int) -> str:
        return self._index.entry_ids(self._result[row : row + 1])[0]

    def entry_ids_at(self, rows: Iterable[int] | Rows) -> list[str]:
        """Entry ids of table ``rows`` (vectorised: fine for a million)."""
        return self._index.entry_ids(self.index_rows(rows))

    @staticmethod
    def column_of(sort_key: SortKey) -> int | None:
        for position, column in enumerate(COLUMNS):
            if column.sort_key == sort_key:
                return position
        return None

    # ------------------------------------------------------------------ Qt model

    def rowCount(self, parent: ModelIndex | None = None) -> int:
        if parent is not None and parent.isValid():
            return 0
        return len(self._result)

    def columnCount(self, parent: ModelIndex | None = None) -> int:
        if parent is not None and parent.isValid():
            return 0
        return len(COLUMNS)

    # flags() is QAbstractTableModel's (selectable, enabled): Qt calls it per cell when it
    # walks a selection, and a C++ call costs nothing next to a Python one.

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        column = COLUMNS[section]
        # The time cells are too narrow for the zone in each: the header names it once.
        zone = f" ({zone_name()})" if column.name in _TIME_COLUMNS else ""
        if role == Qt.ItemDataRole.DisplayRole:  # "Dead-lettered (CET)": as narrow as before
            return column.title.removesuffix(" at") + zone
        if role == Qt.ItemDataRole.ToolTipRole:
            return column.tooltip + zone
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(column.alignment)
        if role == Qt.ItemDataRole.InitialSortOrderRole:
            return (
                Qt.SortOrder.DescendingOrder
                if column.descending_first
                else Qt.SortOrder.AscendingOrder
            )
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role not in _ROLES_ANSWERED:  # font, check state, decoration, background: half
            return None  # of what painting a cell asks, answered before any lookup
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        if not 0 <= row < len(self._result):
            return None
        name = COLUMNS[col].name
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(self.summary_at(row), name)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._foreground(self.summary_at(row), name)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(COLUMNS[col].alignment)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(self.summary_at(row), name)
        if role == STATE_ROLE:
            return self.summary_at(row).state
        if role == ENTRY_ID_ROLE:
            return self.summary_at(row).entry_id
        if role == SUMMARY_ROLE:
            return self.summary_at(row)
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort by ``column`` through the index (numpy), keeping the filters."""
        if not 0 <= column < len(COLUMNS):
            return
        descending = order == Qt.SortOrder.DescendingOrder
        key = COLUMNS[column].sort_key
        if (key, descending) == (self._query.sort_key, self._query.descending):
            return
        self.set_query(self._query.sorted_by(key, descending))

    # ------------------------------------------------------------------ cells

    @staticmethod
    def _display(s: EntrySummary, name: str) -> str:
        if name == "dead_lettered_at":
            return format_time(s.dead_lettered_at_ms)
        if name == "payment_id":
            return mask_identifier(s.payment_id) if s.payment_id else NO_VALUE
        if name == "merchant":
            return shown_cell(s.merchant) if s.merchant else NO_VALUE
        if name == "amount":
            return shown_cell(format_amount(s.amount, s.currency))
        if name == "reason":
            return shown_cell(s.reason) if s.reason else NO_VALUE
        if name == "cause":
            return shown_cell(s.cause) if s.cause else NO_VALUE
        if name == "origin_queue":
            return shown_cell(s.origin_queue) if s.origin_queue else NO_VALUE
        if name == "routing_key":
            return shown_cell(s.routing_key) if s.routing_key else NO_VALUE
        if name == "attempts":
            return str(s.attempts)
        if name == "state":
            return STATE_LABELS.get(s.state, str(s.state))
        if name == "last_operator":
            return shown_cell(s.last_operator) if s.last_operator else NO_VALUE
        if name == "outcome":
            outcome = Outcome.named(s.outcome)
            return outcome.label if outcome is not None else NO_VALUE
        return ""

    def _foreground(self, s: EntrySummary, name: str) -> QColor | None:
        if name == "state":
            return self._state_colors.get(s.state)
        if name == "outcome" and (outcome := Outcome.named(s.outcome)) is not None:
            return QColor(colors.OUTCOME_COLORS[outcome])
        if self._display(s, name) == NO_VALUE:
            return self._faint
        if s.state.is_final or name == "last_operator":
            return self._muted
        return None

    @staticmethod
    def _tooltip(s: EntrySummary, name: str) -> str:
        if name == "dead_lettered_at":
            return (
                f"Dead-lettered {format_time(s.dead_lettered_at_ms, full=True)}\n"
                f"Parked {format_time(s.parked_at_ms, full=True)}\n"
                f"Entry {s.entry_id} in {s.dlq}"
            )
        if name == "state":
            who = f" by {s.last_operator}" if s.last_operator else ""
            return f"{STATE_LABELS.get(s.state, str(s.state))}{who}"
        if name == "amount":
            return shown_cell(format_amount(s.amount, s.currency))
        if name == "payment_id":
            payment = mask_identifier(s.payment_id) if s.payment_id else "no payment id"
            message = f"\nMessage id {mask_identifier(s.message_id)}" if s.message_id else ""
            return f"{payment}{message}\n{s.body_kind} body, {s.size:,} bytes"
        if name == "cause":
            return cause_tooltip(s)
        return FailedPaymentsModel._display(s, name)
