"""The failed-payments workbench's browser: search, filters, group-by, table and actions.

:class:`FailedPaymentsView` shows an :class:`~services.workbench.index.EntryIndex`
through a :class:`~widgets.workbench.table_model.FailedPaymentsModel`: a
search box (debounced), a filter bar (state, reason, queue, DLQ, merchant,
dead-lettered time range, amount range), a "group by" panel (counts per
reason / queue / merchant / state / DLQ; a click filters to a group) and a
count line. Every filter is one :class:`~services.workbench.index.Query` run by
the index with numpy on the UI thread, fast enough at a million rows.

It never acts itself. It emits intents with plain data:
``selection_changed(list[str])`` (entry ids) and ``action_requested(str,
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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Final

import numpy as np
from PySide6.QtCore import (
    QDate,
    QDateTime,
    QEvent,
    QItemSelection,
    QItemSelectionModel,
    QLocale,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QPointF,
    QRectF,
    QSize,
    Qt,
    QTime,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QAction,
    QColor,
    QDoubleValidator,
    QGuiApplication,
    QIcon,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QDateTimeEdit,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from services.workbench.index import (
    GROUP_BYS,
    STATES,
    ActionTarget,
    EntryIndex,
    GroupBy,
    GroupValue,
    Query,
    Rows,
)
from services.workbench.model import EntryState
from widgets.common import colors
from widgets.common.theme import ACCENT_DIM
from widgets.workbench.table_model import (
    COLUMN_NAMES,
    COLUMNS,
    STATE_LABELS,
    STATE_ROLE,
    FailedPaymentsModel,
)

SEARCH_DEBOUNCE_MS: Final = 150
READ_ONLY_TIP: Final = "read-only profile"
ACTION_NAMES: Final[tuple[str, ...]] = ("requeue", "retry", "cancel")
GROUP_CHOICES: Final[tuple[tuple[GroupBy, str], ...]] = (
    ("reason", "Reason"),
    ("origin_queue", "Queue"),
    ("merchant", "Merchant"),
    ("state", "State"),
    ("dlq", "DLQ"),
)
FILTER_CHOICES: Final[tuple[tuple[GroupBy, str], ...]] = (
    ("state", "State"),
    ("reason", "Reason"),
    ("origin_queue", "Queue"),
    ("dlq", "DLQ"),
    ("merchant", "Merchant"),
)
MAX_GROUPS_SHOWN: Final = 200
MAX_MENU_OPTIONS: Final = 60
ROW_HEIGHT: Final = 26
MIN_REFRESH_INTERVAL_MS: Final = 250

COLUMN_SAMPLES: Final[dict[str, str]] = {
    # the widest usual text of each column: the table sizes its columns to fit these
    "dead_lettered_at": "May 17 14:03:07",
    "payment_id": "pay_d8d8d8d8d8d8d8",
    "merchant": "Northwind Travel",
    "amount": "1,234.56 EUR",
    "reason": "delivery_limit",
    "origin_queue": "payments.authorize",
    "routing_key": "payment.refund",
    "attempts": "Attempts",
    "state": "Cancelled    ",
    "last_operator": "Last operator",
}
_ACTION_TEXT: Final[dict[str, tuple[str, str, str]]] = {
    # name: (button text, shortcut, what it does)
    "requeue": ("Requeue", "Ctrl+R", "Send back, unchanged, to the queue it died in"),
    "retry": ("Retry…", "Ctrl+Shift+R", "Process again, optionally delayed or with an edited body"),
    "cancel": ("Cancel…", "Delete", "Cancel the payment, with a reason"),
}
_ALL_TEXT: Final[dict[str, str]] = {
    "requeue": "Requeue all",
    "retry": "Retry all",
    "cancel": "Cancel all",
}
_ANY_TIME = QDateTime(QDate(2000, 1, 1), QTime(0, 0))


def _popup(menu: QMenu, where: QPoint) -> QMenu:
    """Show a context menu without blocking (it deletes itself once closed)."""
    menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    menu.popup(where)
    return menu


def _group_by(name: str, default: GroupBy) -> GroupBy:
    """``name`` as a :data:`GroupBy` (``default`` when it names none)."""
    return next((by for by in GROUP_BYS if by == name), default)


def group_label(by: GroupBy, value: GroupValue) -> str:
    """How a group's value is shown."""
    if value is None:
        return "(none)"
    if value == "":
        return "(empty)"
    if by == "state":
        return STATE_LABELS.get(EntryState(value), value)
    return value


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


def _stylesheet() -> str:
    c = colors
    return f"""
    QFrame#WorkbenchBar, QFrame#FilterBar {{
        background: {c.SURFACE};
        border: none;
        border-bottom: 1px solid {c.BORDER};
    }}
    QLineEdit#SearchBox {{
        padding: 5px 8px;
        font-size: 10pt;
    }}
    QToolButton#FilterButton, QToolButton#PresetButton {{
        background: {c.PLOT_BG};
        border: 1px solid {c.BORDER};
        border-radius: 4px;
        padding: 3px 8px;
        color: {c.TEXT_MUTED};
    }}
    QToolButton#FilterButton:hover, QToolButton#PresetButton:hover {{
        border-color: {c.GRID};
        color: {c.TEXT};
    }}
    QToolButton#FilterButton[active="true"] {{
        border-color: {c.ACCENT};
        background: rgba(76, 154, 255, 30);
        color: {c.TEXT};
    }}
    QToolButton#FilterButton::menu-indicator, QToolButton#PresetButton::menu-indicator {{
        subcontrol-position: right center;
        right: 4px;
    }}
    QToolButton#FilterButton {{ padding-right: 16px; }}
    QToolButton#ActionButton {{
        background: {c.SURFACE_RAISED};
        border: 1px solid {c.BORDER};
        border-radius: 4px;
        padding: 4px 12px;
    }}
    QToolButton#ActionButton:hover {{ border-color: {c.ACCENT}; }}
    QToolButton#ActionButton::menu-indicator {{ image: none; width: 0; }}
    QToolButton#ActionButton:disabled {{
        color: {c.TEXT_FAINT};
        background: {c.SURFACE};
    }}
    QToolButton#ActionButton[primary="true"]:enabled {{
        background: {ACCENT_DIM};
        border-color: {c.ACCENT};
        color: #ffffff;
    }}
    QToolButton#ActionButton[danger="true"]:enabled:hover {{
        border-color: {c.RED};
        color: {c.RED};
    }}
    QToolButton#ClearFilters {{
        color: {c.ACCENT};
        border: none;
        padding: 3px 6px;
    }}
    QToolButton#ClearFilters:disabled {{ color: {c.TEXT_FAINT}; }}
    QToolButton#ClearFilters:hover {{ text-decoration: underline; }}
    QLabel#FilterCaption {{ color: {c.TEXT_MUTED}; }}
    QDateTimeEdit, QLineEdit#AmountEdit {{
        background: {c.PLOT_BG};
        border: 1px solid {c.BORDER};
        border-radius: 4px;
        padding: 2px 4px;
    }}
    QDateTimeEdit:focus {{ border-color: {c.ACCENT}; }}
    QScrollArea#FilterScroll, QScrollArea#FilterScroll > QWidget > QWidget {{
        background: {c.SURFACE};
        border: none;
    }}
    QFrame#StatusStrip {{
        background: {c.SURFACE};
        border: none;
        border-top: 1px solid {c.BORDER};
    }}
    QLabel#CountLabel {{ color: {c.TEXT}; }}
    QLabel#SelectedLabel {{ color: {c.ACCENT}; }}
    QLabel#LoadingLabel {{ color: {c.TEXT_MUTED}; }}
    QProgressBar#LoadingBar {{
        background: {c.PLOT_BG};
        border: 1px solid {c.BORDER};
        border-radius: 3px;
        max-height: 6px;
    }}
    QProgressBar#LoadingBar::chunk {{ background: {c.ACCENT}; border-radius: 2px; }}
    QFrame#GroupPanel {{
        background: {c.SURFACE};
        border: none;
        border-left: 1px solid {c.BORDER};
    }}
    QLabel#PanelTitle {{
        color: {c.TEXT_MUTED};
        font-weight: bold;
        letter-spacing: 1px;
    }}
    QTreeWidget#GroupList {{
        background: {c.SURFACE};
        border: none;
        alternate-background-color: {c.SURFACE};
    }}
    QTreeWidget#GroupList::item {{ padding: 4px 2px 7px 2px; }}
    QTreeWidget#GroupList::item:hover {{ background: {c.SURFACE_RAISED}; }}
    QTreeWidget#GroupList::item:selected {{
        background: rgba(76, 154, 255, 45);
        color: #ffffff;
    }}
    QLabel#GroupNote {{ color: {c.TEXT_FAINT}; }}
    QPushButton#SelectGroupButton {{ padding: 5px 6px; }}
    QPushButton#SelectGroupButton:disabled {{ color: {c.TEXT_FAINT}; }}
    QTableView#EntriesTable {{
        border: none;
        background: {c.PLOT_BG};
    }}
    QTableView#EntriesTable::item {{ padding: 0 3px; border: none; }}
    """


# --------------------------------------------------------------------------- small parts


class _CheckableMenu(QMenu):
    """A menu that stays open when a checkable entry is toggled (multi-select)."""

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        action = self.actionAt(event.position().toPoint())
        if action is not None and action.isCheckable() and action.isEnabled():
            action.trigger()
            event.accept()
            return
        super().mouseReleaseEvent(event)


@dataclass(frozen=True, slots=True)
class _Option:
    value: GroupValue
    label: str
    count: int


class MultiSelectButton(QToolButton):
    """A filter button with a menu of checkable values: "Reason ▾", "Reason: expired ▾".

    ``options`` is called when the menu opens (values with counts, current).
    """

    selection_edited = Signal()

    def __init__(
        self,
        caption: str,
        options: Callable[[], Sequence[_Option]],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("FilterButton")
        self.caption = caption
        self._options_source = options
        self._selected: frozenset[GroupValue] = frozenset()
        self._labels: dict[GroupValue, str] = {}
        self._any_action: QAction | None = None
        self._menu = _CheckableMenu(self)
        self._menu.aboutToShow.connect(self._fill)
        self.setMenu(self._menu)
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self._render()

    @property
    def selected(self) -> frozenset[GroupValue]:
        return self._selected

    def set_selected(self, values: Iterable[GroupValue], labels: dict[GroupValue, str]) -> None:
        """Show ``values`` as chosen (no signal)."""
        self._selected = frozenset(values)
        self._labels.update(labels)
        self._render()

    def choose(self, values: Iterable[GroupValue]) -> None:
        """Choose ``values`` as a user would (emits ``selection_edited``)."""
        self._selected = frozenset(values)
        self._render()
        self.selection_edited.emit()

    def _fill(self) -> None:
        self._menu.clear()
        self._any_action = self._menu.addAction("Any")
        self._any_action.setCheckable(True)
        self._any_action.setChecked(not self._selected)
        self._any_action.triggered.connect(self._choose_any)
        self._menu.addSeparator()
        options = list(self._options_source())
        shown = {o.value for o in options}
        # chosen values stay in the menu even when no row has them now
        options += [_Option(v, self._labels.get(v, str(v)), 0) for v in self._selected - shown]
        for option in options[:MAX_MENU_OPTIONS]:
            self._labels[option.value] = option.label
            action = self._menu.addAction(f"{option.label}\t{option.count:,}")
            action.setCheckable(True)
            action.setChecked(option.value in self._selected)
            action.triggered.connect(partial(self._toggle, option.value))
        if len(options) > MAX_MENU_OPTIONS:
            more = self._menu.addAction(
                f"… {len(options) - MAX_MENU_OPTIONS:,} more (use the search box)"
            )
            more.setEnabled(False)

    def _toggle(self, value: GroupValue, checked: bool = False) -> None:
        chosen = set(self._selected)
        if checked:
            chosen.add(value)
        else:
            chosen.discard(value)
        self.choose(chosen)
        if self._any_action is not None:
            self._any_action.setChecked(not self._selected)

    def _choose_any(self, _checked: bool = False) -> None:
        for action in self._menu.actions():
            action.setChecked(action is self._any_action)
        self.choose(())

    def _render(self) -> None:
        if not self._selected:
            text = self.caption
        elif len(self._selected) == 1:
            (value,) = self._selected
            text = f"{self.caption}: {self._labels.get(value, str(value))}"
        else:
            text = f"{self.caption}: {len(self._selected)} selected"
        self.setText(text)
        self.setToolTip(
            "\n".join(sorted(self._labels.get(v, str(v)) for v in self._selected))
            or f"Filter by {self.caption.lower()}"
        )
        self.setProperty("active", bool(self._selected))
        self.style().unpolish(self)
        self.style().polish(self)


class _OptionalDateTimeEdit(QDateTimeEdit):
    """A date-time edit whose minimum means "any" (no bound)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setCalendarPopup(True)
        self.setDisplayFormat("yyyy-MM-dd HH:mm")
        self.setMinimumDateTime(_ANY_TIME)
        self.setSpecialValueText("any")
        self.setDateTime(_ANY_TIME)
        self.setFixedWidth(128)

    @property
    def is_any(self) -> bool:
        return self.dateTime() == self.minimumDateTime()

    def value_ms(self) -> int | None:
        return None if self.is_any else int(self.dateTime().toMSecsSinceEpoch())

    def set_value_ms(self, ms: int | None) -> None:
        self.setDateTime(_ANY_TIME if ms is None else QDateTime.fromMSecsSinceEpoch(ms))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.is_any:  # open the calendar on today rather than on the year 2000
            today = QDate.currentDate()
            self.calendarWidget().setCurrentPage(today.year(), today.month())
        super().mousePressEvent(event)


class FilterBar(QFrame):
    """State, reason, queue, DLQ and merchant choices, a time range and an amount range."""

    filters_edited = Signal()

    def __init__(
        self, options: Callable[[GroupBy], Sequence[_Option]], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("FilterBar")
        self.buttons: dict[GroupBy, MultiSelectButton] = {
            by: MultiSelectButton(caption, partial(options, by)) for by, caption in FILTER_CHOICES
        }
        self.dead_from = _OptionalDateTimeEdit()
        self.dead_from.setToolTip("Dead-lettered at or after (local time)")
        self.dead_to = _OptionalDateTimeEdit()
        self.dead_to.setToolTip("Dead-lettered up to the end of this minute (local time)")
        self.presets = QToolButton()
        self.presets.setObjectName("PresetButton")
        self.presets.setText("Last…")
        self.presets.setToolTip("Dead-lettered in the last 15 min, hour, day or week")
        self.presets.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        preset_menu = QMenu(self.presets)
        for label, minutes in (
            ("15 minutes", 15),
            ("hour", 60),
            ("4 hours", 240),
            ("24 hours", 1440),
            ("7 days", 10080),
        ):
            preset_menu.addAction(f"Last {label}", partial(self.set_last_minutes, minutes))
        preset_menu.addSeparator()
        preset_menu.addAction("Any time", partial(self.set_last_minutes, None))
        self.presets.setMenu(preset_menu)
        self.amount_min = self._amount_edit("min", "Smallest amount (inclusive)")
        self.amount_max = self._amount_edit("max", "Largest amount (inclusive)")
        self.clear_button = QToolButton()
        self.clear_button.setObjectName("ClearFilters")
        self.clear_button.setText("Clear filters")
        self.clear_button.setToolTip("Show every entry (keeps the sort order)")
        self.clear_button.setCursor(Qt.CursorShape.PointingHandCursor)

        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 10, 6)
        row.setSpacing(6)
        for button in self.buttons.values():
            row.addWidget(button)
        row.addSpacing(8)
        row.addWidget(self._caption("Time"))
        row.addWidget(self.dead_from)
        row.addWidget(self._caption("–"))
        row.addWidget(self.dead_to)
        row.addWidget(self.presets)
        row.addSpacing(8)
        row.addWidget(self._caption("Amount"))
        row.addWidget(self.amount_min)
        row.addWidget(self._caption("–"))
        row.addWidget(self.amount_max)
        row.addStretch(1)
        row.addWidget(self.clear_button)

        for button in self.buttons.values():
            button.selection_edited.connect(self.filters_edited)
        self.dead_from.dateTimeChanged.connect(self.filters_edited)
        self.dead_to.dateTimeChanged.connect(self.filters_edited)
        self.amount_min.textChanged.connect(self.filters_edited)
        self.amount_max.textChanged.connect(self.filters_edited)

    @staticmethod
    def _caption(text: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName("FilterCaption")
        return label

    @staticmethod
    def _amount_edit(placeholder: str, tooltip: str) -> QLineEdit:
        edit = QLineEdit()
        edit.setObjectName("AmountEdit")
        edit.setPlaceholderText(placeholder)
        edit.setToolTip(tooltip)
        edit.setFixedWidth(64)
        edit.setAlignment(Qt.AlignmentFlag.AlignRight)
        validator = QDoubleValidator(-1e15, 1e15, 6, edit)
        validator.setLocale(QLocale.c())
        validator.setNotation(QDoubleValidator.Notation.StandardNotation)
        edit.setValidator(validator)
        edit.setClearButtonEnabled(False)
        return edit

    def set_last_minutes(self, minutes: int | None) -> None:
        """Show entries dead-lettered in the last ``minutes`` (None: any time)."""
        if minutes is None:
            self.dead_from.set_value_ms(None)
        else:
            now = QDateTime.currentDateTime()
            self.dead_from.setDateTime(now.addSecs(-60 * minutes))
        self.dead_to.set_value_ms(None)

    @staticmethod
    def _amount(edit: QLineEdit) -> float | None:
        text = edit.text().strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            return None

    def apply_to(self, query: Query) -> Query:
        """``query`` with this bar's filters."""
        until = self.dead_to.value_ms()
        q = query
        for by, button in self.buttons.items():
            q = q.with_group(by, button.selected)
        return replace(
            q,
            dead_from_ms=self.dead_from.value_ms(),
            dead_until_ms=until + 60_000 if until is not None else None,
            amount_min=self._amount(self.amount_min),
            amount_max=self._amount(self.amount_max),
        )

    def show_query(self, query: Query) -> None:
        """Set the controls from ``query`` (no signals)."""
        widgets: list[QObject] = [
            *self.buttons.values(),
            self.dead_from,
            self.dead_to,
            self.amount_min,
            self.amount_max,
        ]
        blocked = [w.blockSignals(True) for w in widgets]
        try:
            for by, button in self.buttons.items():
                values = query.group_values(by)
                button.set_selected(values, {v: group_label(by, v) for v in values})
            self.dead_from.set_value_ms(query.dead_from_ms)
            until = query.dead_until_ms
            self.dead_to.set_value_ms(until - 60_000 if until is not None else None)
            for edit, value in (
                (self.amount_min, query.amount_min),
                (self.amount_max, query.amount_max),
            ):
                if self._amount(edit) != value:
                    edit.setText("" if value is None else f"{value:g}")
        finally:
            for widget, was in zip(widgets, blocked, strict=True):
                widget.blockSignals(was)
        self.clear_button.setEnabled(query.is_filtered)


class _SideScroll(QScrollArea):
    """Holds a bar that scrolls sideways when the window is too narrow for it."""

    def __init__(self, bar: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("FilterScroll")
        self._bar = bar
        self.setWidget(bar)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._fit()

    def _fit(self) -> None:
        squeezed = self.width() < self._bar.minimumSizeHint().width()
        extra = self.horizontalScrollBar().sizeHint().height() if squeezed else 0
        self.setFixedHeight(self._bar.sizeHint().height() + extra)

    def minimumSizeHint(self) -> QSize:
        return QSize(120, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:
        return QSize(self._bar.sizeHint().width(), self.height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()


class _GroupBarDelegate(QStyledItemDelegate):
    """Draws a group's share as a faint bar behind its name."""

    SHARE_ROLE = Qt.ItemDataRole.UserRole + 10

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        share = index.data(self.SHARE_ROLE)
        if isinstance(share, float) and share > 0:
            cell = option.rect
            width = max(2, int((cell.width() - 8) * min(share, 1.0)))
            bar = QRectF(cell.left() + 4, cell.bottom() - 4, width, 3)
            painter.save()
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            colour = QColor(colors.ACCENT)
            colour.setAlpha(150)
            painter.setBrush(colour)
            painter.drawRoundedRect(bar, 1.5, 1.5)
            painter.restore()
        super().paint(painter, option, index)


class GroupByPanel(QFrame):
    """Counts per value of one column; a click filters the table to that group."""

    group_by_changed = Signal(str)
    group_clicked = Signal(str, object)
    select_all_clicked = Signal()
    group_action_requested = Signal(str, str, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("GroupPanel")
        self._by: GroupBy = "reason"
        self._active: frozenset[GroupValue] = frozenset()
        self._counts: dict[GroupValue, int] = {}
        self._read_only = False
        self.context_menu: QMenu | None = None
        title = QLabel("GROUP BY")
        title.setObjectName("PanelTitle")
        self.choice = QComboBox()
        for by, label in GROUP_CHOICES:
            self.choice.addItem(label, by)
        self.choice.setToolTip("Count the matching entries per value of this column")
        self.list = QTreeWidget()
        self.list.setObjectName("GroupList")
        self.list.setColumnCount(2)
        self.list.setHeaderHidden(True)
        self.list.setRootIsDecorated(False)
        self.list.setUniformRowHeights(True)
        self.list.setIndentation(0)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.setItemDelegateForColumn(0, _GroupBarDelegate(self.list))
        self.list.setToolTip("Click a group to show only it; click it again to show all")
        header = self.list.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.note = QLabel()
        self.note.setObjectName("GroupNote")
        self.note.setWordWrap(True)
        self.select_all_button = QPushButton("Select all in group")
        self.select_all_button.setObjectName("SelectGroupButton")
        self.select_all_button.setToolTip(
            "Select every entry of the chosen group in the table, for a bulk action"
        )

        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(title)
        head.addStretch(1)
        head.addWidget(self.choice)
        column = QVBoxLayout(self)
        column.setContentsMargins(8, 8, 8, 10)
        column.setSpacing(6)
        column.addLayout(head)
        column.addWidget(self.list, 1)
        column.addWidget(self.note)
        column.addWidget(self.select_all_button)

        self.choice.currentIndexChanged.connect(self._on_choice_changed)
        self.list.itemClicked.connect(self._on_item_clicked)
        self.list.customContextMenuRequested.connect(self._on_context_menu)
        self.select_all_button.clicked.connect(self.select_all_clicked)
        self._update_button()

    @property
    def by(self) -> GroupBy:
        return self._by

    @property
    def active(self) -> frozenset[GroupValue]:
        return self._active

    def set_by(self, by: GroupBy) -> None:
        position = next(i for i, (b, _) in enumerate(GROUP_CHOICES) if b == by)
        self.choice.setCurrentIndex(position)

    def set_read_only(self, read_only: bool) -> None:
        self._read_only = read_only

    def show_groups(
        self,
        pairs: Sequence[tuple[GroupValue, int]],
        active: frozenset[GroupValue],
    ) -> None:
        """Show (value, count) pairs, most common first; highlight ``active``."""
        self._active = active
        self._counts = dict(pairs)
        shown = list(pairs[:MAX_GROUPS_SHOWN])
        shown_values = {v for v, _ in shown}
        shown += [(v, 0) for v in active if v not in shown_values]
        top = max((count for _, count in shown), default=0)
        total = sum(count for _, count in pairs)
        self.list.setUpdatesEnabled(False)
        try:
            self.list.clear()
            items = []
            for value, count in shown:
                item = QTreeWidgetItem([group_label(self._by, value), f"{count:,}"])
                item.setData(0, Qt.ItemDataRole.UserRole, value)
                item.setData(0, _GroupBarDelegate.SHARE_ROLE, count / top if top else 0.0)
                item.setTextAlignment(
                    1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                )
                item.setForeground(1, QColor(colors.TEXT_MUTED))
                share = f"{100 * count / total:.1f} %" if total else "—"
                item.setToolTip(0, f"{group_label(self._by, value)}: {count:,} entries ({share})")
                if self._by == "state" and value is not None:
                    item.setForeground(0, QColor(colors.STATE_COLORS[EntryState(value)]))
                items.append(item)
            self.list.addTopLevelItems(items)
            for item in items:
                if item.data(0, Qt.ItemDataRole.UserRole) in active:
                    item.setSelected(True)
        finally:
            self.list.setUpdatesEnabled(True)
        hidden = len(pairs) - min(len(pairs), MAX_GROUPS_SHOWN)
        notes = [f"{len(pairs):,} groups" if len(pairs) != 1 else "1 group"]
        if hidden:
            notes.append(f"the {hidden:,} smallest not listed")
        self.note.setText(" · ".join(notes))
        self._update_button()

    def chosen_group(self) -> tuple[GroupValue, int] | None:
        """The group the table is filtered to (exactly one), with its count."""
        if len(self._active) != 1:
            return None
        (value,) = self._active
        return value, self._counts.get(value, 0)

    def _update_button(self) -> None:
        chosen = self.chosen_group()
        if chosen is None:
            self.select_all_button.setText("Select all in group")
            self.select_all_button.setEnabled(False)
        else:
            _value, count = chosen
            self.select_all_button.setText(f"Select all {count:,} in group")
            self.select_all_button.setEnabled(count > 0)

    def _on_choice_changed(self, position: int) -> None:
        self._by = GROUP_CHOICES[position][0]
        self.group_by_changed.emit(self._by)

    def _on_item_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        self.group_clicked.emit(self._by, item.data(0, Qt.ItemDataRole.UserRole))

    def _on_context_menu(self, point: QPoint) -> None:
        item = self.list.itemAt(point)
        if item is None:
            return
        value = item.data(0, Qt.ItemDataRole.UserRole)
        count = self._counts.get(value, 0)
        label = group_label(self._by, value)
        menu = QMenu(self)
        menu.addAction(f"Show only “{label}”", lambda: self.group_clicked.emit(self._by, value))
        menu.addSeparator()
        for name in ACTION_NAMES:
            dots = "…" if name != "requeue" else ""
            action = menu.addAction(
                f"{_ALL_TEXT[name]} {count:,} in “{label}”{dots}",
                partial(self.group_action_requested.emit, name, self._by, value),
            )
            action.setEnabled(not self._read_only and count > 0)
            if self._read_only:
                action.setToolTip(READ_ONLY_TIP)
        menu.setToolTipsVisible(True)
        self.context_menu = _popup(menu, self.list.viewport().mapToGlobal(point))


class MiddleElideDelegate(QStyledItemDelegate):
    """Elides in the middle, so both ends of an id stay readable."""

    def initStyleOption(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideMiddle


class StatePillDelegate(QStyledItemDelegate):
    """Draws an entry's state as a small coloured pill."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        value = index.data(STATE_ROLE)
        try:
            state = EntryState(value)
        except ValueError:
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        text = opt.text
        opt.text = ""
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        cell = opt.rect
        metrics = opt.fontMetrics
        height = metrics.height() + 2
        width = min(metrics.horizontalAdvance(text) + 14, cell.width() - 8)
        pill = QRectF(cell.left() + 5, cell.center().y() - height / 2 + 1, width, height)
        colour = QColor(colors.STATE_COLORS.get(state, colors.TEXT))
        fill = QColor(colour)
        fill.setAlpha(36)
        edge = QColor(colour)
        edge.setAlpha(120)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(edge, 1))
        painter.setBrush(fill)
        painter.drawRoundedRect(pill, height / 2, height / 2)
        painter.setPen(colour)
        painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()


class EntriesTable(QTableView):
    """The table: fixed row heights, no per-row widgets, a message when empty."""

    activated_row = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("EntriesTable")
        self.empty_text = "No parked failed payments"
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setShowGrid(False)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setCornerButtonEnabled(False)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        vertical = self.verticalHeader()
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(ROW_HEIGHT)
        vertical.setMinimumSectionSize(ROW_HEIGHT)
        vertical.hide()
        header = self.horizontalHeader()
        header.setHighlightSections(False)
        header.setStretchLastSection(True)
        header.setSectionsMovable(True)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setMinimumSectionSize(48)
        self.doubleClicked.connect(lambda index: self.activated_row.emit(index.row()))

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


@dataclass(frozen=True, slots=True)
class _ViewState:
    """What a refresh keeps: the selection, the current row and the top row, by index row."""

    selected: Rows
    current: int | None
    top: int | None
    at_top: bool
    scroll: int


# --------------------------------------------------------------------------- the view


class FailedPaymentsView(QWidget):
    """Browse parked failed payments and ask for actions on them (see the module docstring)."""

    selection_changed = Signal(object)  # list[str]: entry ids (object: no copy into Qt types)
    action_requested = Signal(str, object)
    entry_activated = Signal(str)
    query_changed = Signal(object)

    def __init__(self, index: EntryIndex | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("FailedPaymentsView")
        self.setStyleSheet(_stylesheet())
        self.model = FailedPaymentsModel(index)
        self._read_only = False
        self._loading: tuple[int, int] | None = None
        self._saved: _ViewState | None = None
        self._emitted_rows: Rows = np.zeros(0, dtype=np.int64)
        self._last_refresh_at = 0.0
        self._last_query_s = 0.0
        self.context_menu: QMenu | None = None

        self._build_top_bar()
        self.filter_bar = FilterBar(self._filter_options)
        self.filter_scroll = _SideScroll(self.filter_bar)
        self.table = EntriesTable()
        self.table.setModel(self.model)
        self.table.setItemDelegateForColumn(
            COLUMN_NAMES.index("state"), StatePillDelegate(self.table)
        )
        self.table.setItemDelegateForColumn(
            COLUMN_NAMES.index("payment_id"), MiddleElideDelegate(self.table)
        )
        self._fit_columns()
        self.group_panel = GroupByPanel()
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setHandleWidth(1)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.group_panel)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setSizes([1080, 200])
        self.group_panel.setMinimumWidth(160)
        self._build_status_strip()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
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
        self._connect_signals()

        header = self.table.horizontalHeader()
        header.setSortIndicator(0, Qt.SortOrder.DescendingOrder)
        self.table.setSortingEnabled(True)
        self._after_query()

    # ------------------------------------------------------------------ construction

    def _fit_columns(self) -> None:
        """Size the columns to their usual widest text in the table's font."""
        metrics = self.table.fontMetrics()
        header_metrics = self.table.horizontalHeader().fontMetrics()
        for position, column in enumerate(COLUMNS):
            sample = COLUMN_SAMPLES.get(column.name, "")
            text = metrics.horizontalAdvance(sample) + 12  # cell padding
            arrow = 14 if column.sort_key == self.model.query.sort_key else 0
            title = header_metrics.horizontalAdvance(column.title) + 16 + arrow
            self.table.setColumnWidth(position, max(column.min_width, text, title))

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
        self.status_strip = QFrame()
        self.status_strip.setObjectName("StatusStrip")
        self.count_label = QLabel()
        self.count_label.setObjectName("CountLabel")
        self.selected_label = QLabel()
        self.selected_label.setObjectName("SelectedLabel")
        self.loading_label = QLabel()
        self.loading_label.setObjectName("LoadingLabel")
        self.loading_bar = QProgressBar()
        self.loading_bar.setObjectName("LoadingBar")
        self.loading_bar.setTextVisible(False)
        self.loading_bar.setFixedWidth(160)
        self.loading_bar.setFixedHeight(6)
        row = QHBoxLayout(self.status_strip)
        row.setContentsMargins(10, 4, 10, 4)
        row.setSpacing(10)
        row.addWidget(self.count_label)
        row.addWidget(self.selected_label)
        row.addStretch(1)
        row.addWidget(self.loading_label)
        row.addWidget(self.loading_bar, 0, Qt.AlignmentFlag.AlignVCenter)
        self.loading_label.hide()
        self.loading_bar.hide()

    def _build_actions(self) -> None:
        scope = Qt.ShortcutContext.WidgetWithChildrenShortcut
        self.actions_by_name: dict[str, QAction] = {}
        self.all_matching_actions: dict[str, QAction] = {}
        for name in ACTION_NAMES:
            text, keys, _ = _ACTION_TEXT[name]
            action = QAction(text, self)
            action.setIconText(text)  # keep the "…": these open a dialog
            action.setShortcut(QKeySequence(keys))
            if name == "cancel":
                # Delete cancels only from the table: never while typing in a field.
                action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
                self.table.addAction(action)
            else:
                action.setShortcutContext(scope)
                self.addAction(action)
            action.triggered.connect(partial(self._request_selection, name))
            self.actions_by_name[name] = action
            every = QAction(f"{_ALL_TEXT[name]} matching…", self)
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

        self.action_buttons: dict[str, QToolButton] = {}
        for name in ACTION_NAMES:
            button = QToolButton()
            button.setObjectName("ActionButton")
            button.setDefaultAction(self.actions_by_name[name])
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setProperty("primary", name == "requeue")
            button.setProperty("danger", name == "cancel")
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
        self.search_box.returnPressed.connect(self._apply_filters)
        self._search_timer.timeout.connect(self._apply_filters)
        self.filter_bar.filters_edited.connect(self._on_filters_edited)
        self.filter_bar.clear_button.clicked.connect(self.clear_filters)
        self.group_panel.group_by_changed.connect(self._on_group_by_changed)
        self.group_panel.group_clicked.connect(self.on_group_clicked)
        self.group_panel.select_all_clicked.connect(self.select_all_in_group)
        self.group_panel.group_action_requested.connect(self._request_group)
        self.model.result_about_to_change.connect(self._save_view_state)
        self.model.result_changed.connect(self._restore_view_state)
        self.model.result_changed.connect(self._on_result_changed)
        selection = self.table.selectionModel()
        selection.selectionChanged.connect(self._on_selection_changed)
        self._selection_timer.timeout.connect(self._emit_selection)
        self._refresh_timer.timeout.connect(self.refresh)
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

    def _selected_spans(self) -> list[tuple[int, int]]:
        """The selected rows as disjoint, ascending (first, last) spans."""
        limit = self.model.rowCount() - 1
        spans = sorted(
            (r.top(), min(r.bottom(), limit))
            for r in self.table.selectionModel().selection().toList()
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

    def selected_table_rows(self) -> Rows:
        """Selected table rows, ascending (from the selection's ranges: cheap for a million)."""
        spans = self._selected_spans()
        if not spans:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([np.arange(first, last + 1, dtype=np.int64) for first, last in spans])

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
        """Run the query again (rows added, states changed), keeping selection and scroll."""
        self._refresh_timer.stop()
        self._run(self.model.query)

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
        if self._loading is None:
            self.loading_label.hide()
            self.loading_bar.hide()
        else:
            self.loading_label.setText(f"Loading {100 * loaded / total:.0f} %")
            self.loading_bar.setRange(0, total)
            self.loading_bar.setValue(loaded)
            self.loading_label.show()
            self.loading_bar.show()
        self._update_counts()

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
        group = _group_by(by, self.group_panel.by)
        query = self.model.query
        chosen: frozenset[GroupValue] = frozenset({value})
        new = () if query.group_values(group) == chosen else chosen
        self._run(query.with_group(group, new))

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

    def _apply_filters(self) -> None:
        self._search_timer.stop()
        current = self.model.query
        query = self.filter_bar.apply_to(replace(current, text=self.search_box.text()))
        if query != current:
            self._run(query)

    def _run(self, query: Query) -> None:
        started = time.perf_counter()
        self.model.set_query(query)
        self._after_query()
        self._last_refresh_at = time.perf_counter()
        self._last_query_s = self._last_refresh_at - started

    def _after_query(self) -> None:
        """Bring everything around the table in line with the model's query."""
        query = self.model.query
        self.filter_bar.show_query(query)
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
        self.table.empty_text = (
            "No entries match the search and filters"
            if query.is_filtered and len(self.index)
            else "No parked failed payments"
        )
        self._update_groups()
        self._update_counts()
        self._update_actions()
        self.query_changed.emit(query)

    def _on_group_by_changed(self, _by: str) -> None:
        self._update_groups()

    def _update_groups(self) -> None:
        by = self.group_panel.by
        query = self.model.query
        # Facet counts: the other filters apply, this column's own filter does not,
        # so every group stays visible (and clickable) while one is chosen.
        rows = self.index.matching(query.without_group(by))
        self.group_panel.show_groups(self.index.group_counts(by, rows), query.group_values(by))

    def _filter_options(self, by: GroupBy) -> list[_Option]:
        """Values for a filter menu with their counts under the other filters."""
        rows = self.index.matching(self.model.query.without_group(by))
        pairs = self.index.group_counts(by, rows)
        if by == "state":
            counts = dict(pairs)
            return [_Option(s, group_label(by, s), counts.get(s, 0)) for s in STATES]
        return [_Option(value, group_label(by, value), count) for value, count in pairs]

    def _on_result_changed(self, _rows: int) -> None:
        self.table.viewport().update()

    # ------------------------------------------------------------------ keeping the view

    def _save_view_state(self) -> None:
        if not len(self.model.result):
            self._saved = None
            return
        current = self.table.currentIndex()
        top = self.table.rowAt(0)
        scroll = self.table.verticalScrollBar().value()
        self._saved = _ViewState(
            selected=self.selected_index_rows(),
            current=self.model.index_row(current.row()) if current.isValid() else None,
            top=self.model.index_row(top) if top >= 0 else None,
            at_top=scroll == 0,
            scroll=scroll,
        )

    def _restore_view_state(self, _rows: int) -> None:
        saved, self._saved = self._saved, None
        if saved is None:
            self._schedule_selection_emit()
            return
        model = self.model
        result = model.result
        if len(saved.selected):
            positions = model.table_rows(saved.selected)
            if len(positions):
                self._select_table_rows(positions)
        if saved.current is not None:
            found = np.flatnonzero(result == saved.current)
            if len(found):
                self.table.selectionModel().setCurrentIndex(
                    model.index(int(found[0]), 0), QItemSelectionModel.SelectionFlag.NoUpdate
                )
        bar = self.table.verticalScrollBar()
        if saved.at_top:
            bar.setValue(0)
        elif saved.top is not None:
            found = np.flatnonzero(result == saved.top)
            if len(found):
                self.table.scrollTo(
                    model.index(int(found[0]), 0), QAbstractItemView.ScrollHint.PositionAtTop
                )
            else:
                bar.setValue(min(saved.scroll, bar.maximum()))
        self._schedule_selection_emit()

    def _select_table_rows(self, positions: Rows) -> None:
        """Select table rows (ascending) as few contiguous ranges."""
        last_column = self.model.columnCount() - 1
        breaks = np.flatnonzero(np.diff(positions) != 1)
        starts = np.concatenate([positions[:1], positions[breaks + 1]])
        ends = np.concatenate([positions[breaks], positions[-1:]])
        selection = QItemSelection()
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            selection.select(self.model.index(start, 0), self.model.index(end, last_column))
        self.table.selectionModel().select(
            selection, QItemSelectionModel.SelectionFlag.ClearAndSelect
        )

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
        self.selection_changed.emit(self.index.entry_ids(rows))

    def _selected_count(self) -> int:
        return sum(last - first + 1 for first, last in self._selected_spans())

    def _update_counts(self) -> None:
        shown, total = self.model.rowCount(), len(self.index)
        text = f"{shown:,} of {total:,} entries"
        if self._loading is not None:
            loaded, expected = self._loading
            text += f" (loading {loaded:,} / {expected:,}…)"
        self.count_label.setText(text)
        selected = self._selected_count()
        self.selected_label.setText(f"{selected:,} selected" if selected else "")

    def _update_actions(self) -> None:
        selected = self._selected_count()
        matching = self.model.rowCount()
        for name, action in self.actions_by_name.items():
            _text, keys, what = _ACTION_TEXT[name]
            action.setEnabled(not self._read_only and selected > 0)
            if self._read_only:
                action.setToolTip(READ_ONLY_TIP)
            else:
                target = f"the {selected:,} selected entries" if selected != 1 else "the entry"
                action.setToolTip(f"{what}: {target} ({keys})" if selected else f"{what} ({keys})")
        for name, action in self.all_matching_actions.items():
            dots = "…" if name != "requeue" else ""
            action.setText(f"{_ALL_TEXT[name]} {matching:,} matching{dots}")
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
        group = _group_by(by, self.group_panel.by)
        query = self.model.query.with_group(group, {value})
        count = self.index.count(query)
        if count:
            label = group_label(group, value)
            caption = dict(GROUP_CHOICES)[group].lower()
            description = f"all {count:,} entries in {caption} “{label}”"
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
        menu.addActions([self.actions_by_name[name] for name in ACTION_NAMES])
        menu.addSeparator()
        menu.addActions(list(self.all_matching_actions.values()))
        if clicked.isValid():
            column = COLUMNS[clicked.column()].name
            by_column: dict[str, GroupBy] = {
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
                menu.addAction(
                    f"Show only {COLUMNS[clicked.column()].title.lower()}"
                    f" “{group_label(by, value)}”",
                    lambda: self._run(self.model.query.with_group(by, {value})),
                )
        menu.addSeparator()
        menu.addAction(self.copy_ids_action)
        menu.addAction(self.copy_payment_ids_action)
        self.context_menu = _popup(menu, self.table.viewport().mapToGlobal(point))

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


__all__ = [
    "ACTION_NAMES",
    "READ_ONLY_TIP",
    "SEARCH_DEBOUNCE_MS",
    "EntriesTable",
    "FailedPaymentsView",
    "FilterBar",
    "GroupByPanel",
    "MultiSelectButton",
    "StatePillDelegate",
]
