"""The failed-payments browser: search, filters, group-by, the table and its actions.

:class:`FailedPaymentsView` shows an :class:`~services.workbench.index.EntryIndex`
through a :class:`~widgets.workbench.table_model.FailedPaymentsModel` in an
:class:`~widgets.workbench.entries_table.EntriesTable`: a search box
(debounced) with the action buttons, a
:class:`~widgets.workbench.filter_bar.FilterBar` (state, reason, queue, DLQ,
merchant, dead-lettered time range, amount range), a
:class:`~widgets.workbench.group_panel.GroupByPanel` (counts per cause - the
failure group, with its amount at risk, merchants and first/last seen - /
reason / queue / merchant / state / DLQ; a click filters to a group) and a
count line.
Every filter is one :class:`~services.workbench.query.Query` run by the index
with numpy on the UI thread, fast enough at a million rows.

It never acts itself. It emits intents with plain data:
``selection_changed(EntryIds)`` (entry ids, looked up when read), ``payment_entered(str)`` (Enter
on one word in the search box: the app opens that payment's timeline when it
knows the payment) and ``action_requested(str,
ActionTarget)`` - "requeue", "retry" or "cancel" on the selected entries, or
on everything matching the filter or a group (a :class:`Query` target).
``set_read_only(True)`` disables every action.

The app feeds it: ``set_index`` once, ``refresh`` (or the throttled
``request_refresh``) after adding rows or applying changes to the index,
``set_loading`` while the full load runs. A refresh keeps the selection, the
current row and the scroll position by entry, not by position.
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from typing import Final

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, QRectF, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import (
    QAction,
    QColor,
    QGuiApplication,
    QIcon,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from services.masking.json import mask_sensitive_text
from services.workbench.actions.names import Action
from services.workbench.entry_ids import EntryIds
from services.workbench.group_tally import GroupTally
from services.workbench.index import STATES, EntryIndex
from services.workbench.index_storage import Rows
from services.workbench.query import ActionTarget, GroupBy, GroupValue, Query
from widgets.common import colors
from widgets.common.menus import popup_menu
from widgets.workbench.action_texts import ACTION_TEXT, READ_ONLY_TIP
from widgets.workbench.entries_table import EntriesTable
from widgets.workbench.filter_bar import FilterBar, FilterOption, FilterScroll
from widgets.workbench.group_panel import (
    GROUP_CHOICES,
    MAX_GROUPS_SHOWN,
    GroupByPanel,
    as_group_by,
    group_label,
)
from widgets.workbench.status_strip import StatusStrip
from widgets.workbench.table_model import COLUMNS, FailedPaymentsModel

SEARCH_DEBOUNCE_MS: Final = 150
GROUP_PANEL_WIDTH: Final = 230
"""The group panel's first width: a failure group's name and numbers on a few lines."""
MIN_REFRESH_INTERVAL_MS: Final = 250


def _search_icon(colour: str = colors.TEXT_MUTED) -> QIcon:
    pixmap = QPixmap(32, 32)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    pen = QPen(QColor(colour), 3.2)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    painter.setPen(pen)
    painter.drawEllipse(QRectF(6, 6, 15, 15))
    painter.drawLine(QPointF(19, 19), QPointF(26, 26))
    painter.end()
    return QIcon(pixmap)


class FailedPaymentsView(QWidget):
    """Browse parked failed payments and ask for actions on them (see the module docstring)."""

    selection_changed = Signal(object)  # EntryIds: a sequence of entry ids (no copy into Qt)
    action_requested = Signal(str, object)
    entry_activated = Signal(str)
    query_changed = Signal(object)
    payment_entered = Signal(str)
    """Enter in the search box on one word: it may be a payment id (its timeline)."""

    def __init__(self, index: EntryIndex | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("FailedPaymentsView")
        self.model = FailedPaymentsModel(index)
        self._read_only = False
        self._loading: tuple[int, int] | None = None
        self._unavailable: str | None = None
        self._emitted_rows: Rows = np.zeros(0, dtype=np.int64)
        self._last_refresh_at = 0.0
        self._last_query_s = 0.0
        self._tally = GroupTally()
        self.context_menu: QMenu | None = None

        self._build_top_bar()
        self.filter_bar = FilterBar(self._filter_options)
        self.filter_scroll = FilterScroll(self.filter_bar)
        self.table = EntriesTable(self.model)
        self.group_panel = GroupByPanel()
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setHandleWidth(1)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.group_panel)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setSizes([1080, GROUP_PANEL_WIDTH])
        self.group_panel.setMinimumWidth(160)
        self._group_width = GROUP_PANEL_WIDTH  # when last shown (the page may fold it)
        self._build_status_strip()
        self._build_unavailable_note()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.unavailable_box)
        layout.addWidget(self.top_bar)
        layout.addWidget(self.filter_scroll)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.status_strip)

        self._build_actions()
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DEBOUNCE_MS)
        self._selection_timer = QTimer(self)
        self._selection_timer.setSingleShot(True)
        self._selection_timer.setInterval(0)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._groups_timer = QTimer(self)  # while loading: the groups a GUI step of their own,
        self._groups_timer.setSingleShot(True)  # after the refresh's repaint and a loop step
        self._groups_timer.setInterval(50)  # (at 0 they ran in the refresh's pass of events)
        self._connect_signals()

        header = self.table.horizontalHeader()
        header.setSortIndicator(0, Qt.SortOrder.DescendingOrder)
        self.table.setSortingEnabled(True)
        self._after_query()

    # ------------------------------------------------------------------ construction

    def _build_top_bar(self) -> None:
        self.top_bar = QFrame()
        self.top_bar.setObjectName("WorkbenchBar")
        self.search_box = QLineEdit()
        self.search_box.setObjectName("SearchBox")
        self.search_box.setPlaceholderText(
            "Search payment id, merchant, entry or message id, reason, queue, routing key  (Ctrl+F)"
        )
        self.search_box.setClearButtonEnabled(True)
        self.search_box.addAction(_search_icon(), QLineEdit.ActionPosition.LeadingPosition)
        self.search_box.setToolTip(
            "Every word must occur (case-insensitive) in the payment id, merchant, entry id,"
            " message id, amount, reason, DLQ, queue or routing key"
        )
        self.search_box.installEventFilter(self)
        self.top_bar_layout = QHBoxLayout(self.top_bar)
        self.top_bar_layout.setContentsMargins(10, 8, 10, 8)
        self.top_bar_layout.setSpacing(6)
        self.top_bar_layout.addWidget(self.search_box, 1)
        self.top_bar_layout.addSpacing(12)

    def _build_status_strip(self) -> None:
        self.status_strip = StatusStrip()
        self.status_strip.add_new_entries_button(self.table.new_entries_bar)
        self.count_label = self.status_strip.count_label
        self.selected_label = self.status_strip.selected_label
        self.loading_label = self.status_strip.loading_label
        self.loading_bar = self.status_strip.loading_bar

    def _build_unavailable_note(self) -> None:
        """Says, above everything, that the list cannot be read and why (hidden while it can)."""
        self.unavailable_box = QWidget()
        self.unavailable_label = QLabel()
        self.unavailable_label.setObjectName("ErrorNote")
        self.unavailable_label.setWordWrap(True)
        self.unavailable_label.setTextFormat(Qt.TextFormat.PlainText)
        self.unavailable_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout(self.unavailable_box)
        row.setContentsMargins(10, 8, 10, 0)
        row.addWidget(self.unavailable_label)
        self.unavailable_box.hide()

    def _build_actions(self) -> None:
        scope = Qt.ShortcutContext.WidgetWithChildrenShortcut
        self.actions_by_name: dict[Action, QAction] = {}
        self.all_matching_actions: dict[Action, QAction] = {}
        for name in Action:
            text, keys, _ = ACTION_TEXT[name]
            action = QAction(text, self)
            action.setIconText(text)  # keep the "…": these open a dialog
            action.setShortcut(QKeySequence(keys))
            if name is Action.CANCEL:
                # Delete cancels only from the table: never while typing in a field.
                action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
                self.table.addAction(action)
            else:
                action.setShortcutContext(scope)
                self.addAction(action)
            action.triggered.connect(partial(self._request_selection, name))
            self.actions_by_name[name] = action
            every = QAction(f"{name.label} all matching…", self)
            every.triggered.connect(partial(self._request_matching, name))
            self.all_matching_actions[name] = every
        self.focus_search_action = QAction("Find", self)
        self.focus_search_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Find))
        self.focus_search_action.setShortcutContext(scope)
        self.addAction(self.focus_search_action)
        self.copy_ids_action = QAction("Copy entry ids", self)
        self.copy_ids_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Copy))
        self.copy_ids_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.table.addAction(self.copy_ids_action)
        self.copy_payment_ids_action = QAction("Copy payment ids", self)

        self.action_buttons: dict[Action, QToolButton] = {}
        for name in Action:
            button = QToolButton()
            button.setObjectName("ActionButton")
            button.setDefaultAction(self.actions_by_name[name])
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setProperty("primary", name is Action.REQUEUE)
            button.setProperty("danger", name is Action.CANCEL)
            self.top_bar_layout.addWidget(button)
            self.action_buttons[name] = button
        self.all_matching_button = QToolButton()
        self.all_matching_button.setObjectName("ActionButton")
        self.all_matching_button.setText("All matching  ▾")
        self.all_matching_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.all_matching_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        menu = QMenu(self.all_matching_button)
        menu.setToolTipsVisible(True)
        menu.addActions(list(self.all_matching_actions.values()))
        self.all_matching_button.setMenu(menu)
        self.top_bar_layout.addWidget(self.all_matching_button)

    def _connect_signals(self) -> None:
        """All of the view's own wiring, in one place."""
        self.search_box.textChanged.connect(self._on_search_edited)
        self.search_box.returnPressed.connect(self._on_search_entered)
        self._search_timer.timeout.connect(self._apply_filters)
        self.filter_bar.filters_edited.connect(self._on_filters_edited)
        self.filter_bar.clear_button.clicked.connect(self.clear_filters)
        self.group_panel.group_by_changed.connect(self._on_group_by_changed)
        self.group_panel.group_clicked.connect(self.on_group_clicked)
        self.group_panel.select_all_clicked.connect(self.select_all_in_group)
        self.group_panel.group_action_requested.connect(self._request_group)
        self.model.result_changed.connect(self._on_result_changed)
        selection = self.table.selectionModel()
        selection.selectionChanged.connect(self._on_selection_changed)
        self._selection_timer.timeout.connect(self._emit_selection)
        self._refresh_timer.timeout.connect(self.refresh)
        self._groups_timer.timeout.connect(self._update_groups)
        self.table.customContextMenuRequested.connect(self._on_context_menu)
        self.table.activated_row.connect(self._on_row_activated)
        self.focus_search_action.triggered.connect(self.focus_search)
        self.copy_ids_action.triggered.connect(self._copy_entry_ids)
        self.copy_payment_ids_action.triggered.connect(self._copy_payment_ids)

    # ------------------------------------------------------------------ state

    @property
    def index(self) -> EntryIndex:
        return self.model.entry_index

    @property
    def query(self) -> Query:
        """The query the table shows (filters and sort)."""
        return self.model.query

    @property
    def read_only(self) -> bool:
        return self._read_only

    def selected_table_rows(self) -> Rows:
        """Selected table rows, ascending (from the selection's ranges: cheap for a million)."""
        return self.table.selected_rows()

    def selected_index_rows(self) -> Rows:
        """The index rows of the selection, in table order."""
        return self.model.index_rows(self.selected_table_rows())

    def selected_entry_ids(self) -> list[str]:
        return self.index.entry_ids(self.selected_index_rows())

    # ------------------------------------------------------------------ slots

    @Slot(object)
    def set_index(self, index: EntryIndex) -> None:
        """Show another index (keeps the filters)."""
        self.model.set_index(index)
        self._after_query()

    @Slot()
    def refresh(self) -> None:
        """Show the index as it is now (rows added: merged in; states changed: the query
        run again), keeping selection and scroll."""
        self._refresh_timer.stop()
        if self._search_timer.isActive():  # the operator's edits not applied yet: with them
            self._search_timer.stop()  # (a refresh would set the filters back to the query)
            query = self.filter_bar.apply_to(replace(self.model.query, text=self.search_box.text()))
            self._run(query)
            return
        self._run(None)

    @Slot()
    def request_refresh(self) -> None:
        """Refresh soon, at most every few hundred milliseconds (for bursts of changes)."""
        if self._refresh_timer.isActive():
            return
        interval_s = max(MIN_REFRESH_INTERVAL_MS / 1000, 4 * self._last_query_s)
        wait_s = max(0.0, self._last_refresh_at + interval_s - time.perf_counter())
        self._refresh_timer.start(int(wait_s * 1000))

    @Slot(int, int)
    def set_loading(self, loaded: int, total: int) -> None:
        """The full load's progress; ``loaded >= total`` ends it."""
        self._loading = (loaded, total) if total > 0 and 0 <= loaded < total else None
        self.status_strip.show_loading(self._loading)
        self._update_counts()

    @Slot(object)
    def set_unavailable(self, why: str | None) -> None:
        """Say that the list cannot be read now, and ``why``; None: it can be read again."""
        why = " ".join(why.split()) if why else None
        if why == self._unavailable:
            return
        self._unavailable = why
        if why is None:
            self.unavailable_box.hide()
        else:
            held = (
                "The rows below are from the last successful read and may be out of date."
                if len(self.index)
                else ""
            )
            self.unavailable_label.setText(
                f"The failed payments cannot be read: {why}. Retrying every few seconds. {held}"
            )
            self.unavailable_box.show()
        self._after_query()

    @property
    def unavailable(self) -> str | None:
        """Why the list cannot be read now (None while it can)."""
        return self._unavailable

    def set_group_panel_folded(self, folded: bool) -> None:
        """Fold the group panel away (the table takes its room) or show it again: the
        page folds it where the window is too narrow for it, the table and the detail."""
        if folded == self.group_panel_folded:
            return
        if folded:
            self._group_width = self.splitter.sizes()[1] or GROUP_PANEL_WIDTH
        self.group_panel.setVisible(not folded)
        if not folded:
            total = sum(self.splitter.sizes())
            self.splitter.setSizes([max(total - self._group_width, 0), self._group_width])

    @property
    def group_panel_folded(self) -> bool:
        return self.group_panel.isHidden()

    @Slot(bool)
    def set_read_only(self, read_only: bool) -> None:
        """Disable (or enable again) every action."""
        self._read_only = read_only
        self.group_panel.set_read_only(read_only)
        self._update_actions()

    @Slot(object)
    def set_query(self, query: Query) -> None:
        """Show ``query`` (filters, search text and sort) as if the operator had chosen it."""
        self._search_timer.stop()
        blocked = self.search_box.blockSignals(True)
        self.search_box.setText(query.text)
        self.search_box.blockSignals(blocked)
        self._run(query)

    @Slot()
    def clear_filters(self) -> None:
        """Every entry, in the current sort order."""
        current = self.model.query
        self.set_query(Query(sort_key=current.sort_key, descending=current.descending))

    @Slot()
    def focus_search(self) -> None:
        self.search_box.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_box.selectAll()

    @Slot(str, object)
    def on_group_clicked(self, by: str, value: GroupValue) -> None:
        """Filter to one group; the group already filtered to: show all again."""
        group = as_group_by(by, self.group_panel.by)
        query = self.model.query
        chosen: frozenset[GroupValue] = frozenset({value})
        new = () if query.group_values(group) == chosen else chosen
        self._run(query.with_group(group, new))

    @Slot(str)
    def select_entry(self, entry_id: str) -> bool:
        """Select one entry's row and bring it into view; False when the table does not
        show it (not loaded, or filtered out)."""
        rows = self.model.table_rows(self.index.positions([entry_id]))
        if not len(rows):
            return False
        row = int(rows[0])
        self.table.selectRow(row)
        self.table.scrollTo(self.model.index_at(row, 0))
        return True

    @Slot()
    def select_all_in_group(self) -> None:
        """Select every row of the group the table is filtered to."""
        chosen = self.group_panel.chosen_group()
        if chosen is None:
            return
        value, _ = chosen
        by = self.group_panel.by
        if self.model.query.group_values(by) != {value}:
            self._run(self.model.query.with_group(by, {value}))
        self.table.selectAll()
        self.table.setFocus(Qt.FocusReason.OtherFocusReason)

    # ------------------------------------------------------------------ running queries

    def _on_search_edited(self, _text: str) -> None:
        self._search_timer.start()

    def _on_filters_edited(self) -> None:
        self._search_timer.start()

    def _on_search_entered(self) -> None:
        self._apply_filters()
        words = self.search_box.text().split()
        if len(words) == 1:
            self.payment_entered.emit(words[0])

    def _apply_filters(self) -> None:
        self._search_timer.stop()
        current = self.model.query
        query = self.filter_bar.apply_to(replace(current, text=self.search_box.text()))
        if query != current:
            self._run(query)

    def _run(self, query: Query | None) -> None:
        """Show ``query`` (None: the index as it is now under the current one)."""
        started = time.perf_counter()
        if query is None:
            self.model.refresh()
        else:
            self.model.set_query(query)
        self._after_query()
        self._last_refresh_at = time.perf_counter()
        self._last_query_s = self._last_refresh_at - started

    def _after_query(self) -> None:
        """Bring everything around the table in line with the model's query."""
        query = self.model.query
        self.filter_bar.show_query(query)
        self.filter_bar.refresh_open_menu()
        column = self.model.column_of(query.sort_key)
        header = self.table.horizontalHeader()
        order = Qt.SortOrder.DescendingOrder if query.descending else Qt.SortOrder.AscendingOrder
        if column is not None and (header.sortIndicatorSection(), header.sortIndicatorOrder()) != (
            column,
            order,
        ):
            blocked = header.blockSignals(True)
            header.setSortIndicator(column, order)
            header.blockSignals(blocked)
            header.viewport().update()
        if self._unavailable is not None:
            self.table.empty_text = "The failed payments cannot be read (see above)"
        elif query.is_filtered and len(self.index):
            self.table.empty_text = "No entries match the search and filters"
        else:
            self.table.empty_text = "No parked failed payments"
        self.table.viewport().update()
        if self._loading is None:
            self._update_groups()
        else:  # a million rows' groups and the table's refresh: two steps, not one long
            self._groups_timer.start()
        self._update_counts()
        self._update_actions()
        self.query_changed.emit(query)

    def _on_group_by_changed(self, _by: str) -> None:
        self._update_groups()

    def _update_groups(self) -> None:
        by = self.group_panel.by
        query = self.model.query
        # Facet counts: the other filters apply, this column's own filter does not,
        # so every group stays visible (and clickable) while one is chosen. Rows only
        # added since the last time (a load's batches): only they are counted.
        self._tally.update(self.index, by, query.without_group(by))
        stats = None
        if by == "failure_group":  # each group's amount at risk, merchants, first/last seen
            found = self._tally.failure_group_stats(groups=MAX_GROUPS_SHOWN)
            stats = {s.group: s for s in found}
        self.group_panel.show_groups(self._tally.pairs(), query.group_values(by), stats)

    def _filter_options(self, by: GroupBy) -> list[FilterOption]:
        """Values for a filter menu with their counts under the other filters."""
        rows = self.index.matching(self.model.query.without_group(by))
        pairs = self.index.group_counts(by, rows)
        if by == "state":
            counts = dict(pairs)
            return [FilterOption(s, group_label(by, s), counts.get(s, 0)) for s in STATES]
        return [FilterOption(value, group_label(by, value), count) for value, count in pairs]

    def _on_result_changed(self, _rows: int) -> None:
        # the table has put the selection, current row and scroll back by entry
        self._schedule_selection_emit()
        self.table.viewport().update()

    # ------------------------------------------------------------------ selection

    def _on_selection_changed(self, *_args: object) -> None:
        self._schedule_selection_emit()

    def _schedule_selection_emit(self) -> None:
        self._selection_timer.start()
        self._update_counts()
        self._update_actions()

    def _emit_selection(self) -> None:
        rows = self.selected_index_rows()
        if np.array_equal(rows, self._emitted_rows):
            return
        self._emitted_rows = rows
        self.selection_changed.emit(EntryIds(self.index, rows))  # ids looked up when read

    def _update_counts(self) -> None:
        self.status_strip.show_counts(
            self.model.rowCount(),
            len(self.index),
            self.table.selected_count(),
            self._unavailable is not None,
            self._loading,
        )

    def _update_actions(self) -> None:
        selected = self.table.selected_count()
        matching = self.model.rowCount()
        for name, action in self.actions_by_name.items():
            _text, keys, what = ACTION_TEXT[name]
            action.setEnabled(not self._read_only and selected > 0)
            if self._read_only:
                action.setToolTip(READ_ONLY_TIP)
            else:
                target = f"the {selected:,} selected entries" if selected != 1 else "the entry"
                action.setToolTip(f"{what}: {target} ({keys})" if selected else f"{what} ({keys})")
        for name, action in self.all_matching_actions.items():
            dots = "…" if name is not Action.REQUEUE else ""
            action.setText(f"{name.label} all {matching:,} matching{dots}")
            action.setEnabled(not self._read_only and matching > 0)
            action.setToolTip(READ_ONLY_TIP if self._read_only else self.model.query.describe())
        self.all_matching_button.setEnabled(not self._read_only and matching > 0)
        self.all_matching_button.setToolTip(
            READ_ONLY_TIP
            if self._read_only
            else "Act on every entry matching the search and filters"
        )
        self.copy_ids_action.setEnabled(selected > 0)
        self.copy_payment_ids_action.setEnabled(selected > 0)

    # ------------------------------------------------------------------ intents

    def _request_selection(self, name: str, _checked: bool = False) -> None:
        if self._read_only:
            return
        ids = self.selected_entry_ids()
        if ids:
            self.action_requested.emit(name, ActionTarget.for_entries(ids))

    def _request_matching(self, name: str, _checked: bool = False) -> None:
        if self._read_only or not self.model.rowCount():
            return
        query = self.model.query
        self.action_requested.emit(name, ActionTarget.for_query(query, self.model.rowCount()))

    def _request_group(self, name: str, by: str, value: GroupValue) -> None:
        if self._read_only:
            return
        group = as_group_by(by, self.group_panel.by)
        query = self.model.query.with_group(group, {value})
        count = self.index.count(query)
        if count:
            label = group_label(group, value)
            caption = dict(GROUP_CHOICES)[group].lower()
            description = f"all {count:,} entries in {caption} “{mask_sensitive_text(label)}”"
            if query.without_group(group).is_filtered:
                description += f" matching {query.without_group(group).describe()}"
            self.action_requested.emit(name, ActionTarget.for_query(query, count, description))

    def _on_row_activated(self, row: int) -> None:
        if 0 <= row < self.model.rowCount():
            self.entry_activated.emit(self.model.entry_id_at(row))

    def _copy_entry_ids(self) -> None:
        QGuiApplication.clipboard().setText("\n".join(self.selected_entry_ids()))

    def _copy_payment_ids(self) -> None:
        rows = self.selected_table_rows()
        ids = [s.payment_id for s in self.model.summaries_at(rows[:100_000]) if s.payment_id]
        QGuiApplication.clipboard().setText("\n".join(ids))

    def _on_context_menu(self, point: QPoint) -> None:
        clicked = self.table.indexAt(point)
        if clicked.isValid() and not self.table.selectionModel().isRowSelected(clicked.row()):
            self.table.selectRow(clicked.row())
        menu = QMenu(self)
        menu.setToolTipsVisible(True)
        menu.addActions([self.actions_by_name[name] for name in Action])
        menu.addSeparator()
        menu.addActions(list(self.all_matching_actions.values()))
        if clicked.isValid():
            column = COLUMNS[clicked.column()].name
            by_column: dict[str, GroupBy] = {
                "cause": "failure_group",
                "reason": "reason",
                "origin_queue": "origin_queue",
                "merchant": "merchant",
                "state": "state",
            }
            if column in by_column:
                by = by_column[column]
                summary = self.model.summary_at(clicked.row())
                value: GroupValue = summary.state if by == "state" else getattr(summary, by)
                menu.addSeparator()
                what = dict(GROUP_CHOICES)[by].lower() if by != "failure_group" else "cause"
                menu.addAction(
                    f"Show only {what} “{group_label(by, value)}”",
                    lambda: self._run(self.model.query.with_group(by, {value})),
                )
        menu.addSeparator()
        menu.addAction(self.copy_ids_action)
        menu.addAction(self.copy_payment_ids_action)
        self.context_menu = popup_menu(menu, self.table.viewport().mapToGlobal(point))

    # ------------------------------------------------------------------ events

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.search_box and event.type() == QEvent.Type.KeyPress:
            key_event = event if isinstance(event, QKeyEvent) else None
            if key_event is not None and key_event.key() == Qt.Key.Key_Escape:
                if self.search_box.text():
                    self.search_box.clear()
                    self._apply_filters()
                else:
                    self.table.setFocus(Qt.FocusReason.ShortcutFocusReason)
                return True
            if key_event is not None and key_event.key() == Qt.Key.Key_Down:
                self.table.setFocus(Qt.FocusReason.ShortcutFocusReason)
                if not self.table.currentIndex().isValid() and self.model.rowCount():
                    self.table.selectRow(0)
                return True
        return super().eventFilter(watched, event)

    def sizeHint(self) -> QSize:
        return QSize(1280, 800)
