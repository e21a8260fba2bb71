"""The failed-payments table: a view onto :class:`FailedPaymentsModel` and its delegates.

No per-row widgets and fixed row heights, so a million rows cost what the
visible ones do. States are drawn as coloured pills, payment ids elided in
the middle. A refresh or a re-sort keeps the selection, the current row and
the scroll position by entry, not by position; a change of the filters
(search, filter bar, group) clears the selection: one made among the rows of
a filter never reaches, unseen, into the rows shown without it.

Like a log viewer it follows new entries only while the operator is not
reading: scrolled to the top with nothing selected, new rows show at once;
otherwise the rows on screen, the selection and the row under the mouse stay
where they are, and a "N new entries — show" button counts what arrived above
and reveals it on a click (the browser puts it in the count line below the
table: it covers no row).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from functools import partial
from typing import Final

import numpy as np
from PySide6.QtCore import (
    QItemSelection,
    QItemSelectionModel,
    QPoint,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QColor, QKeyEvent, QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHeaderView,
    QMenu,
    QPushButton,
    QStyle,
    QTableView,
    QWidget,
)

from services.outcomes.model import Outcome
from services.workbench.columns import TABLE_HIDDEN
from services.workbench.index_storage import Rows
from services.workbench.query import Query
from widgets.common import colors
from widgets.common.menus import popup_menu
from widgets.workbench.table_delegates import MiddleElideDelegate, StatePillDelegate
from widgets.workbench.table_header import ARROW_ROOM, EntriesHeader
from widgets.workbench.table_model import (
    COLUMN_NAMES,
    COLUMNS,
    STATE_LABELS,
    FailedPaymentsModel,
)

ROW_HEIGHT: Final = 26
HIDDEN_BY_DEFAULT: Final = TABLE_HIDDEN
"""Columns an operator turns on from the header's menu (``services.workbench.columns``)."""
CONTENT_ROWS: Final = 300
"""How many rows the widths are fitted to."""
TEXT_WIDTHS_KEPT: Final = 20_000
"""Measured text widths remembered (shown texts only: masked)."""
FLOORED: Final = frozenset({"payment_id", "merchant", "amount"})
"""Columns never fitted narrower than their sample: an incident's first rows are alike,
and the payment, merchant and amount of the rows after them must show whole."""
MAX_FITTED_WIDTH: Final = 280
GIVES_WAY: Final = "cause"
"""The column that narrows (elided) when the columns are wider than the table: the
cause is long, and its tooltip and the detail pane show it whole."""
GIVES_WAY_MAX: Final = 560
"""The widest the cause column is fitted (the demo's causes whole at 1600 px)."""
GIVES_WAY_READABLE: Final = 120
"""The cause narrows to this width at most ("acquirer timeout af…") before a column of
:data:`FOLDS_FOR_ROOM` is hidden to give it room (at 1280 px with the detail pane open it
was squeezed to 44 px: "Cau", "ac…")."""
GIVES_WAY_FLOOR: Final = 32
"""The narrowest the cause gets, once every column of :data:`FOLDS_FOR_ROOM` is hidden
(a window too narrow for the rest), and the header's minimum section size."""
FOLDS_FOR_ROOM: Final = ("outcome", "origin_queue")
"""Columns the table hides, in this order, rather than narrow the cause below
:data:`GIVES_WAY_READABLE`, and shows again once there is room: the outcome ("—" until
an action; the detail pane's outcome line says it) and the queue (the Queue filter and
the pane's Origin queue say it). Payment, amount, time, merchant and state always show."""
GROW_INTERVAL_S: Final = 1.0
"""While rows are only added (a load), the columns are fitted to the first rows at most
this often (each fit reads a few hundred rows' texts)."""
ITEM_PADDING: Final = 3
"""A cell's padding each side: ``QTableView#EntriesTable::item`` in resources/style.qss."""

COLUMN_SAMPLES: Final[dict[str, str]] = {
    # the widest usual text of each column: the table sizes its columns to fit these
    "dead_lettered_at": "May 17 14:03:07",
    "payment_id": "pay_d8d8d8d8d8d8d8d8",
    "merchant": "Umbrella Pharmacy",
    "amount": "1,234.56 EUR",
    "reason": "delivery_limit",
    "cause": "acquirer timeout after 3012 ms on acq-7",
    "origin_queue": "payments.authorize",
    "routing_key": "payment.refund",
    "attempts": "Attempts",
    "state": "Cancelled    ",
    "last_operator": "Last operator",
}


@dataclass(frozen=True, slots=True)
class _ViewState:
    """What a refresh keeps: the selection, the current row and the top row, by index row."""

    selected: Rows
    filters: Query
    """The query's filters, its sort left out: another one clears the selection."""
    current: int | None
    top: int | None
    follow: bool
    scroll: int


def _filters(query: Query) -> Query:
    """``query`` without its order: what decides which rows are shown."""
    return replace(query, sort_key="dead_lettered_at", descending=True)


class NewEntriesBar(QPushButton):
    """ "12 new entries — show" while the table holds still: a button laid out beside the
    table (over it, it hid the row under it), not over its rows."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("NewEntriesBar")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setToolTip("Scroll to the top to show the entries that arrived (Home)")
        self.count = 0
        self.hide()

    def show_count(self, count: int) -> None:
        self.count = count
        if count <= 0:
            self.hide()
            return
        noun = "entry" if count == 1 else "entries"
        self.setText(f"▲  {count:,} new {noun} — show")
        self.show()


class EntriesTable(QTableView):
    """The table: fixed row heights, no per-row widgets, a message when empty.

    It keeps the selection, the current row and the scroll position by entry
    when its model runs a query again.
    """

    activated_row = Signal(int)
    columns_changed = Signal()
    """Columns shown, hidden or sized again (by the table or the operator)."""

    def __init__(self, model: FailedPaymentsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("EntriesTable")
        self._entries = model
        self._saved: _ViewState | None = None
        self._seen = len(model.entry_index)  # index rows below this were shown: the rest are new
        self._restoring = False
        self.new_entries_bar = NewEntriesBar(self)  # the browser lays it out below the table
        self.new_entries_bar.clicked.connect(self.show_new_entries)
        self.empty_text = "No parked failed payments"
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setShowGrid(False)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setCornerButtonEnabled(False)
        # Rows are selected whole: Tab and Shift+Tab move on to the next field of the page
        # (arrows move between rows), instead of walking the cells and never leaving.
        self.setTabKeyNavigation(False)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        vertical = self.verticalHeader()
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(ROW_HEIGHT)
        vertical.setMinimumSectionSize(ROW_HEIGHT)
        vertical.hide()
        header = EntriesHeader(self)
        self.setHorizontalHeader(header)
        header.setHighlightSections(False)
        header.setStretchLastSection(True)
        header.setSectionsMovable(True)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setMinimumSectionSize(GIVES_WAY_FLOOR)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._on_header_menu)
        header.sectionResized.connect(self._on_section_resized)
        self.header_menu: QMenu | None = None
        self._sizing = False  # the table sizes columns itself (not the operator)
        self._fitted_to_content = False
        self._operator_sized = False  # widths the operator dragged in this run stay
        self._restored: dict[int, int] = {}  # widths of an earlier run: floors, content grows
        self._text_widths: dict[str, int] = {}  # the text widths the columns were sized to
        self._natural: dict[int, int] = {}  # widths before the last column stretched
        self._widths_font = ""
        self._folded: set[int] = set()  # columns hidden for room (FOLDS_FOR_ROOM), not by choice
        self._text_width: dict[str, int] = {}  # text -> pixels in that font (masked texts)
        self._grown_at = 0.0
        self._grow_timer = QTimer(self)
        self._grow_timer.setSingleShot(True)
        self._grow_timer.timeout.connect(self._grow_to_rows_shown)
        self.doubleClicked.connect(lambda index: self.activated_row.emit(index.row()))
        self.setModel(model)
        self.setItemDelegateForColumn(COLUMN_NAMES.index("state"), StatePillDelegate(self))
        self.setItemDelegateForColumn(COLUMN_NAMES.index("payment_id"), MiddleElideDelegate(self))
        for name in HIDDEN_BY_DEFAULT:
            header.setSectionHidden(COLUMN_NAMES.index(name), True)
        if model.rowCount():
            self.fit_columns_to_content()
        else:
            self._fit_columns()
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        model.result_about_to_change.connect(self._save_view_state)
        model.result_changed.connect(self._restore_view_state)

    def _fit_columns(self) -> None:
        """Size the columns to their usual widest text in the table's font."""
        self.ensurePolished()  # the stylesheet's font, not the default one
        metrics = self.fontMetrics()
        widths = {
            c.name: metrics.horizontalAdvance(COLUMN_SAMPLES.get(c.name, "")) for c in COLUMNS
        }
        self._set_widths(widths)

    def fit_columns_to_content(self) -> None:
        """Size every column to its header and the widest text of the first rows shown."""
        self._restored.clear()
        self._set_widths(self._content_widths())
        self._fitted_to_content = True

    def _content_widths(self, rows: int = CONTENT_ROWS) -> dict[str, int]:
        """Each column's widest text among the first rows shown (its sample when none,
        and at least its sample for :data:`FLOORED` columns)."""
        self.ensurePolished()  # the stylesheet's font, not the default one
        metrics = self.fontMetrics()
        font = self.font().key()
        if font != self._widths_font:  # text widths are remembered per font
            self._widths_font, self._text_width = font, {}
        known = self._text_width

        def advance(text: str) -> int:
            width = known.get(text)
            if width is None:
                if len(known) >= TEXT_WIDTHS_KEPT:
                    known.clear()
                width = known[text] = metrics.horizontalAdvance(text)
            return width

        shown = self._entries.display_texts(rows)
        widths: dict[str, int] = {}
        for column in COLUMNS:
            texts = shown[column.name]
            if column.name == "state" and texts:  # states change under the operator's eyes
                texts |= set(STATE_LABELS.values())
            if column.name == "outcome" and texts:  # so do outcomes ("succeeded")
                texts |= {outcome.label for outcome in Outcome}
            widest = max((advance(t) for t in texts), default=0)
            sample = advance(COLUMN_SAMPLES.get(column.name, ""))
            floored = not texts or column.name in FLOORED
            cap = GIVES_WAY_MAX if column.name == GIVES_WAY else MAX_FITTED_WIDTH
            widths[column.name] = min(max(widest, sample if floored else 0), cap)
        return widths

    def _grow_to_rows_shown(self) -> None:
        """While rows are only added: the columns grow to the first screenful (a few
        hundred rows' texts took 30 ms, once a second through a load)."""
        self._grow_to_content(self.viewport().height() // ROW_HEIGHT + 2)

    def _grow_to_content(self, rows: int = CONTENT_ROWS) -> None:
        """New rows wider than the columns (an incident's later merchants, amounts,
        causes): the columns grow to show them whole; they never shrink under the eyes."""
        self._grow_timer.stop()
        self._grown_at = time.perf_counter()
        if self._operator_sized:
            return
        fitted = self._text_widths
        wider = {
            name: width
            for name, width in self._content_widths(rows).items()
            if width > fitted.get(name, 0)
        }
        if wider:
            self._set_widths({**fitted, **wider})

    def _set_widths(self, text_widths: dict[str, int]) -> None:
        self._text_widths = dict(text_widths)
        header = self.horizontalHeader()
        header_metrics = header.fontMetrics()
        hidden = [i for i in range(len(COLUMNS)) if header.isSectionHidden(i)]
        # the style keeps a margin inside the padding: text narrower than this is elided
        margin = self.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, self)
        padding = 2 * (ITEM_PADDING + margin + 1) + 1  # + text drawn at fractional widths
        self._sizing = True
        try:
            for position, column in enumerate(COLUMNS):
                widest = GIVES_WAY_MAX if column.name == GIVES_WAY else MAX_FITTED_WIDTH
                text = min(text_widths.get(column.name, 0), widest) + padding
                if column.name == "state":
                    text += 22 - padding  # the pill: 14 px of ends, 8 px from the cell's edges
                arrow = ARROW_ROOM if column.sort_key == self._entries.query.sort_key else 0
                shown = self._entries.headerData(position, Qt.Orientation.Horizontal)
                title = header_metrics.horizontalAdvance(str(shown)) + 18 + arrow  # "(CET)" too
                restored = self._restored.get(position, 0)
                self._natural[position] = max(column.min_width, text, title, restored)
                self.setColumnWidth(position, self._natural[position])
            for position in hidden:  # a width given shows a column: it keeps it for later
                header.setSectionHidden(position, True)
        finally:
            self._sizing = False
        self._give_way()
        self.columns_changed.emit()

    def _give_way(self) -> None:
        """Fit the chosen columns to the table's width without a horizontal scroll bar: the
        :data:`GIVES_WAY` column narrows (elided) down to :data:`GIVES_WAY_READABLE`, then
        the columns of :data:`FOLDS_FOR_ROOM` hide one by one, then the cause narrows on to
        :data:`GIVES_WAY_FLOOR`; each comes back, in the reverse order, once there is room."""
        header = self.horizontalHeader()
        cause = COLUMN_NAMES.index(GIVES_WAY)
        chosen = self._chosen()
        if not all(i in self._natural for i in chosen):
            return  # not sized yet
        foldable = [p for name in FOLDS_FOR_ROOM if (p := COLUMN_NAMES.index(name)) in chosen]
        cause_shown = cause in chosen
        natural = self._natural[cause]
        need = min(natural, GIVES_WAY_READABLE) if cause_shown else 0
        room = self.viewport().width()
        others = sum(self._natural[i] for i in chosen if i != cause)
        folded: set[int] = set()
        for position in foldable:
            if others + need <= room:
                break
            folded.add(position)
            others -= self._natural[position]
        self._sizing = True
        try:
            for position in foldable + [p for p in self._folded if p not in foldable]:
                hide = position in folded
                if header.isSectionHidden(position) != hide:
                    header.setSectionHidden(position, hide)
                    if not hide:  # a width given shows a column: its own again
                        self.setColumnWidth(position, self._natural[position])
            self._folded = folded
            if cause_shown:
                width = max(GIVES_WAY_FLOOR, min(natural, room - others))
                if header.sectionSize(cause) != width:
                    self.setColumnWidth(cause, width)
        finally:
            self._sizing = False

    def _chosen(self) -> list[int]:
        """The columns the operator shows: on screen, or hidden for room."""
        header = self.horizontalHeader()
        return [
            i for i in range(len(COLUMNS)) if not header.isSectionHidden(i) or i in self._folded
        ]

    def folded_columns(self) -> list[str]:
        """The names of the chosen columns hidden for room (:data:`FOLDS_FOR_ROOM`)."""
        return [n for n in FOLDS_FOR_ROOM if COLUMN_NAMES.index(n) in self._folded]

    def _on_section_resized(self, section: int, _old: int, new: int) -> None:
        dragging = QApplication.mouseButtons() & Qt.MouseButton.LeftButton
        if not self._sizing and dragging and section != self._last_shown():
            self._fitted_to_content = True  # the operator chose a width: keep it
            self._operator_sized = True
            self._natural[section] = new
            self.columns_changed.emit()

    def _last_shown(self) -> int | None:
        """The rightmost shown column: it stretches to the table's edge, so its width
        changes with the table's (a click elsewhere while the pane opens is no choice)."""
        header = self.horizontalHeader()
        for visual in range(header.count() - 1, -1, -1):
            logical = header.logicalIndex(visual)
            if not header.isSectionHidden(logical):
                return logical
        return None

    def preferred_width(self) -> int:
        """The width that shows every chosen column whole (and the scroll bar)."""
        columns = sum(self._natural.get(i, self.columnWidth(i)) for i in self._chosen())
        bar = self.verticalScrollBar()
        bar_width = max(bar.sizeHint().width(), bar.width() if bar.isVisible() else 0)
        return columns + bar_width + 2 * self.frameWidth()

    def narrowest_width(self) -> int:
        """The width that shows every chosen column whole but the one that gives way
        (:data:`GIVES_WAY`, readable: :data:`GIVES_WAY_READABLE`) and those that hide for
        room (:data:`FOLDS_FOR_ROOM`): the detail pane opens at its width down to this."""
        chosen = self._chosen()
        folding = sum(
            self._natural.get(p, 0)
            for n in FOLDS_FOR_ROOM
            if (p := COLUMN_NAMES.index(n)) in chosen
        )
        position = COLUMN_NAMES.index(GIVES_WAY)
        natural = self._natural.get(position, 0) if position in chosen else 0
        return self.preferred_width() - folding - natural + min(natural, GIVES_WAY_READABLE)

    # ------------------------------------------------------------------ columns

    def column_actions(self) -> list[QAction]:
        """One checkable action per column: ticked when shown (the header's menu)."""
        header = self.horizontalHeader()
        shown = self._chosen()
        actions = []
        for logical in sorted(range(len(COLUMNS)), key=header.visualIndex):
            folded = logical in self._folded
            title = COLUMNS[logical].title
            action = QAction(f"{title} (hidden: no room)" if folded else title, self)
            action.setCheckable(True)
            action.setChecked(logical in shown)
            action.setEnabled(shown != [logical])  # the last column shown stays
            tip = COLUMNS[logical].tooltip
            if folded:
                tip += "\nHidden while the table is too narrow: widen the window or fold the pane"
            action.setToolTip(tip)
            action.toggled.connect(partial(self.set_column_shown, COLUMNS[logical].name))
            actions.append(action)
        return actions

    def set_column_shown(self, name: str, shown: bool) -> None:
        position = COLUMN_NAMES.index(name)
        self._folded.discard(position)  # the operator's choice, from now on
        self.horizontalHeader().setSectionHidden(position, not shown)
        self._give_way()
        self.columns_changed.emit()

    def shown_columns(self) -> list[str]:
        """The names of the columns on screen, left to right (not those hidden for room:
        :meth:`folded_columns`)."""
        header = self.horizontalHeader()
        order = sorted(range(len(COLUMNS)), key=header.visualIndex)
        return [COLUMN_NAMES[i] for i in order if not header.isSectionHidden(i)]

    def reset_columns(self) -> None:
        """The columns as they came: default set and order, widths fitted to the rows."""
        header = self.horizontalHeader()
        for position, name in enumerate(COLUMN_NAMES):
            header.moveSection(header.visualIndex(position), position)
            header.setSectionHidden(position, name in HIDDEN_BY_DEFAULT)
        self._folded.clear()
        self._operator_sized = False
        self.fit_columns_to_content()

    def _on_header_menu(self, point: QPoint) -> None:
        menu = QMenu(self)
        menu.setToolTipsVisible(True)
        menu.addSection("Columns")
        menu.addActions(self.column_actions())
        menu.addSeparator()
        menu.addAction("Fit widths to content", self.fit_columns_to_content)
        menu.addAction("Reset columns", self.reset_columns)
        self.header_menu = popup_menu(menu, self.horizontalHeader().mapToGlobal(point))

    def column_settings(self) -> dict[str, object]:
        """Order, visibility and widths of the columns, by name (to remember between runs)."""
        header = self.horizontalHeader()
        order = sorted(range(len(COLUMNS)), key=header.visualIndex)
        return {
            "order": [COLUMN_NAMES[i] for i in order],
            "hidden": [
                COLUMN_NAMES[i]
                for i in order
                if header.isSectionHidden(i) and i not in self._folded  # hidden by choice
            ],
            "widths": {COLUMN_NAMES[i]: self._natural.get(i, header.sectionSize(i)) for i in order},
        }

    def apply_column_settings(self, settings: dict[str, object]) -> None:
        """Restore what ``column_settings`` gave; names it does not know are ignored."""
        header = self.horizontalHeader()
        order, hidden, widths = (
            settings.get("order"),
            settings.get("hidden"),
            settings.get("widths"),
        )
        self._sizing = True
        try:
            if isinstance(order, list):
                known = [n for n in order if n in COLUMN_NAMES]
                known += [n for n in COLUMN_NAMES if n not in known]  # columns added since
                for visual, name in enumerate(known):
                    header.moveSection(header.visualIndex(COLUMN_NAMES.index(name)), visual)
            if isinstance(hidden, list):
                hide = {n for n in hidden if n in COLUMN_NAMES}
                if hide >= set(COLUMN_NAMES):
                    hide.discard(COLUMN_NAMES[0])
                for position, name in enumerate(COLUMN_NAMES):
                    header.setSectionHidden(position, name in hide)
                self._folded.clear()
            if isinstance(widths, dict):
                for name, width in widths.items():
                    if name in COLUMN_NAMES and isinstance(width, int) and width > 0:
                        position = COLUMN_NAMES.index(name)
                        self._natural[position] = self._restored[position] = max(width, 24)
                        was_hidden = header.isSectionHidden(position)
                        self.setColumnWidth(position, self._natural[position])
                        header.setSectionHidden(position, was_hidden)
                self._fitted_to_content = True
        finally:
            self._sizing = False
        if self._restored and self._text_widths:
            self._set_widths(self._text_widths)  # an earlier run's widths, content's at least
        else:
            self.columns_changed.emit()

    def setSelectionModel(self, selectionModel: QItemSelectionModel) -> None:
        super().setSelectionModel(selectionModel)
        # A header asks the selection model whether each visible section is wholly
        # selected, which walks every row (a Python model call each) once all rows are
        # selected: "select all" on a million rows would freeze the UI for seconds. The
        # headers show no selection, so they get an empty selection model of their own.
        model = self.model()
        if model is not None:
            self.horizontalHeader().setSelectionModel(QItemSelectionModel(model, self))
            self.verticalHeader().setSelectionModel(QItemSelectionModel(model, self))

    # ------------------------------------------------------------------ selection

    def selected_spans(self) -> list[tuple[int, int]]:
        """The selected rows as disjoint, ascending (first, last) spans."""
        limit = self._entries.rowCount() - 1
        spans = sorted(
            (r.top(), min(r.bottom(), limit)) for r in self.selectionModel().selection().toList()
        )
        merged: list[tuple[int, int]] = []
        for first, last in spans:
            if last < first:
                continue
            if merged and first <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], last))
            else:
                merged.append((first, last))
        return merged

    def selected_rows(self) -> Rows:
        """Selected table rows, ascending (from the selection's ranges: cheap for a million)."""
        spans = self.selected_spans()
        if not spans:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([np.arange(first, last + 1, dtype=np.int64) for first, last in spans])

    def selected_count(self) -> int:
        return sum(last - first + 1 for first, last in self.selected_spans())

    def select_rows(self, positions: Rows) -> None:
        """Select table rows (ascending) as few contiguous ranges."""
        model = self._entries
        last_column = model.columnCount() - 1
        breaks = np.flatnonzero(np.diff(positions) != 1)
        starts = np.concatenate([positions[:1], positions[breaks + 1]])
        ends = np.concatenate([positions[breaks], positions[-1:]])
        selection = QItemSelection()
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            selection.select(model.index(start, 0), model.index(end, last_column))
        self.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    # ------------------------------------------------------------------ keeping the view

    @property
    def following(self) -> bool:
        """Whether new entries show at once: scrolled to the top, nothing selected."""
        return self.verticalScrollBar().value() == 0 and not self.selectionModel().hasSelection()

    def new_entries_above(self) -> int:
        """Entries that arrived since the operator last saw the top, above the first row shown."""
        top = self.rowAt(0)
        if top <= 0:
            return 0
        return int(np.count_nonzero(self._entries.result[:top] >= self._seen))

    def show_new_entries(self) -> None:
        """Scroll to the top, showing what arrived (the selection stays)."""
        self.verticalScrollBar().setValue(0)
        self._mark_seen()

    def _mark_seen(self) -> None:
        self._seen = len(self._entries.entry_index)
        self.new_entries_bar.show_count(0)

    def _on_scrolled(self, value: int) -> None:
        if self._restoring:
            return
        if value == 0:
            self._mark_seen()
        elif self.new_entries_bar.count:
            self._show_new_count(self.new_entries_above())

    def _save_view_state(self) -> None:
        self._restoring = True
        model = self._entries
        if not len(model.result):
            self._saved = None
            return
        current = self.currentIndex()
        top = self.rowAt(0)
        scroll = self.verticalScrollBar().value()
        self._saved = _ViewState(
            selected=model.index_rows(self.selected_rows()),
            filters=_filters(model.query),
            current=model.index_row(current.row()) if current.isValid() else None,
            top=model.index_row(top) if top >= 0 else None,
            follow=self.following,
            scroll=scroll,
        )

    def _restore_view_state(self, rows: int) -> None:
        if rows and not self._fitted_to_content:
            self.fit_columns_to_content()
        elif rows and self._entries.appended:  # a load's batches: at most once a second
            if not self._grow_timer.isActive():
                wait_s = self._grown_at + GROW_INTERVAL_S - time.perf_counter()
                self._grow_timer.start(max(0, int(wait_s * 1000)))
        elif rows:
            self._grow_to_content()
        saved, self._saved = self._saved, None
        try:
            if saved is None:
                self._mark_seen()
            else:
                self._restore(saved)
        finally:
            self._restoring = False

    def _restore(self, saved: _ViewState) -> None:
        model = self._entries
        result = model.result
        if saved.filters != _filters(model.query):
            self.selectionModel().clearSelection()
        elif len(saved.selected):
            positions = model.table_rows(saved.selected)
            if len(positions):
                self.select_rows(positions)
        if saved.current is not None:
            found = np.flatnonzero(result == saved.current)
            if len(found):
                self.selectionModel().setCurrentIndex(
                    model.index(int(found[0]), 0), QItemSelectionModel.SelectionFlag.NoUpdate
                )
        bar = self.verticalScrollBar()
        if saved.follow:
            bar.setValue(0)
            self._mark_seen()
            return
        top = np.flatnonzero(result == (saved.top if saved.top is not None else -1))
        if len(top):
            # the row on top stays on top: new rows above it wait behind the bar
            self.scrollTo(model.index(int(top[0]), 0), QAbstractItemView.ScrollHint.PositionAtTop)
        else:
            bar.setValue(min(saved.scroll, bar.maximum()))
        if bar.value() == 0:
            self._mark_seen()
        else:
            self._show_new_count(self.new_entries_above())

    def _show_new_count(self, count: int) -> None:
        self.new_entries_bar.show_count(count)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._give_way()

    # ------------------------------------------------------------------ events

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentIndex().isValid():
            self.activated_row.emit(self.currentIndex().row())
            return
        super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        model = self.model()
        if model is not None and model.rowCount() == 0 and self.empty_text:
            painter = QPainter(self.viewport())
            painter.setPen(QColor(colors.TEXT_MUTED))
            painter.drawText(
                self.viewport().rect().adjusted(20, 0, -20, 0),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self.empty_text,
            )
            painter.end()
