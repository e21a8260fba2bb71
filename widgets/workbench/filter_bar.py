"""The filter bar over the failed-payments table.

Multi-select menus for state, reason, queue, DLQ and merchant (each value with
its count under the other filters), a dead-lettered time range with presets,
an amount range, and "Clear" (every filter). :class:`FilterBar` turns its controls
into a :class:`~services.workbench.query.Query` and shows one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Final

from PySide6.QtCore import QDate, QDateTime, QLocale, QObject, QSize, Qt, QTime, Signal, Slot
from PySide6.QtGui import QAction, QDoubleValidator, QKeyEvent, QMouseEvent, QResizeEvent
from PySide6.QtWidgets import (
    QDateTimeEdit,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QWidget,
)

from services.workbench.query import GroupBy, GroupValue, Query
from widgets.common.theme import repolish
from widgets.workbench.group_panel import group_label

FILTER_CHOICES: Final[tuple[tuple[GroupBy, str], ...]] = (
    ("state", "State"),
    ("reason", "Reason"),
    ("origin_queue", "Queue"),
    ("dlq", "DLQ"),
    ("merchant", "Merchant"),
)
MAX_MENU_OPTIONS: Final = 60
_ANY_TIME = QDateTime(QDate(2000, 1, 1), QTime(0, 0))


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
class FilterOption:
    """One value offered by a filter menu: the value, how it is shown, how many entries have it."""

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
        options: Callable[[], Sequence[FilterOption]],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("FilterButton")
        self.caption = caption
        self._options_source = options
        self._selected: frozenset[GroupValue] = frozenset()
        self._labels: dict[GroupValue, str] = {}
        self._any_action: QAction | None = None
        self._values: dict[QAction, GroupValue] = {}
        self._menu = _CheckableMenu(self)
        self._menu.aboutToShow.connect(self._fill)
        # One slot for every entry, told which action fired: PySide6 calls a
        # partial connected to ``triggered`` without the ``checked`` argument,
        # so the tick is read from the action itself.
        self._menu.triggered.connect(self._on_action_triggered)
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
        self._values.clear()
        self._any_action = self._menu.addAction("Any")
        self._any_action.setCheckable(True)
        self._any_action.setChecked(not self._selected)
        self._menu.addSeparator()
        options = list(self._options_source())
        shown = {o.value for o in options}
        # chosen values stay in the menu even when no row has them now
        options += [FilterOption(v, self._labels.get(v, str(v)), 0) for v in self._selected - shown]
        for option in options[:MAX_MENU_OPTIONS]:
            self._labels[option.value] = option.label
            action = self._menu.addAction(f"{option.label}\t{option.count:,}")
            action.setCheckable(True)
            action.setChecked(option.value in self._selected)
            self._values[action] = option.value
        if len(options) > MAX_MENU_OPTIONS:
            more = self._menu.addAction(
                f"… {len(options) - MAX_MENU_OPTIONS:,} more (use the search box)"
            )
            more.setEnabled(False)

    def refresh_counts(self) -> None:
        """While the menu is open, its counts as they are now (entries keep arriving and
        changing state under it); the entries stay where they are under the mouse."""
        if not self._menu.isVisible():
            return
        counts = {o.value: o.count for o in self._options_source()}
        for action, value in self._values.items():
            label = self._labels.get(value, str(value))
            action.setText(f"{label}\t{counts.get(value, 0):,}")

    @Slot(QAction)
    def _on_action_triggered(self, action: QAction) -> None:
        """An entry was clicked (or chosen with the keyboard): it is ticked or unticked now."""
        if action is self._any_action:
            for other in self._menu.actions():
                other.setChecked(other is self._any_action)
            self.choose(())
            return
        if action not in self._values:
            return
        value = self._values[action]
        chosen = set(self._selected)
        if action.isChecked():
            chosen.add(value)
        else:
            chosen.discard(value)
        self.choose(chosen)
        if self._any_action is not None:
            self._any_action.setChecked(not self._selected)

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
        repolish(self)


class FilterOptionalDateTimeEdit(QDateTimeEdit):
    """A date-time edit whose minimum means "any" (no bound)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setCalendarPopup(True)
        self.setDisplayFormat("yyyy-MM-dd HH:mm")
        self.setMinimumDateTime(_ANY_TIME)
        self.setSpecialValueText("any")
        self.setDateTime(_ANY_TIME)
        # as wide as "2026-12-03 10:02" needs in the styled font (a fixed 128 px cut it)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    @property
    def is_any(self) -> bool:
        return self.dateTime() == self.minimumDateTime()

    def value_ms(self) -> int | None:
        return None if self.is_any else int(self.dateTime().toMSecsSinceEpoch())

    def set_value_ms(self, ms: int | None) -> None:
        self.setDateTime(_ANY_TIME if ms is None else QDateTime.fromMSecsSinceEpoch(ms))

    def focusNextPrevChild(self, next: bool) -> bool:
        """Tab and Shift+Tab move on to the next control, as everywhere else: QDateTimeEdit
        would step through its own sections (and, showing "any", swallow Tab), trapping the
        keyboard. Sections change with the arrow keys, or by typing."""
        return QWidget.focusNextPrevChild(self, next)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        plain = not event.modifiers() & (
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
        )
        if plain and event.key() in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab):
            backward = event.key() == Qt.Key.Key_Backtab or bool(
                event.modifiers() & Qt.KeyboardModifier.ShiftModifier
            )
            self.focusNextPrevChild(not backward)
            event.accept()
            return
        super().keyPressEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.is_any:  # open the calendar on today rather than on the year 2000
            today = QDate.currentDate()
            self.calendarWidget().setCurrentPage(today.year(), today.month())
        super().mousePressEvent(event)


class FilterBar(QFrame):
    """State, reason, queue, DLQ and merchant choices, a time range and an amount range."""

    filters_edited = Signal()

    def __init__(
        self, options: Callable[[GroupBy], Sequence[FilterOption]], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("FilterBar")
        self.buttons: dict[GroupBy, MultiSelectButton] = {
            by: MultiSelectButton(caption, partial(options, by)) for by, caption in FILTER_CHOICES
        }
        self.dead_from = FilterOptionalDateTimeEdit()
        self.dead_from.setToolTip("Dead-lettered at or after (local time)")
        self.dead_to = FilterOptionalDateTimeEdit()
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
        self.clear_button.setText("Clear")
        self.clear_button.setToolTip("Clear every filter: show every entry (keeps the sort order)")
        self.clear_button.setCursor(Qt.CursorShape.PointingHandCursor)

        # The value menus, then the time and amount ranges: one row, or two in a narrow
        # window (the ranges under the menus), so that nothing is cut and no bar scrolls.
        self.choices = QWidget()
        row = QHBoxLayout(self.choices)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        for button in self.buttons.values():
            row.addWidget(button)
        self.ranges = QWidget()
        row = QHBoxLayout(self.ranges)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
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
        self.choices.setParent(self)  # the focus chain: menus, ranges, then Clear
        self.ranges.setParent(self)
        self.clear_button.setParent(self)
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(10, 6, 10, 6)
        self._grid.setHorizontalSpacing(12)
        self._grid.setVerticalSpacing(6)
        self._grid.setColumnStretch(2, 1)
        self._grid.addWidget(self.choices, 0, 0)
        self._grid.addWidget(self.clear_button, 0, 3)
        self.compact = True  # laid out by set_compact below
        self.set_compact(False)

        for button in self.buttons.values():
            button.selection_edited.connect(self.filters_edited)
        self.dead_from.dateTimeChanged.connect(self.filters_edited)
        self.dead_to.dateTimeChanged.connect(self.filters_edited)
        self.amount_min.textChanged.connect(self.filters_edited)
        self.amount_max.textChanged.connect(self.filters_edited)

    def one_row_width(self) -> int:
        """The width the bar needs to hold every control on one row."""
        margins = self._grid.contentsMargins()
        parts = (self.choices, self.ranges, self.clear_button)
        spacing = self._grid.horizontalSpacing() * (len(parts) - 1)
        return sum(w.sizeHint().width() for w in parts) + spacing + margins.left() + margins.right()

    def set_compact(self, compact: bool) -> None:
        """Two rows (the time and amount ranges under the menus and Clear) or one."""
        if compact == self.compact:
            return
        self.compact = compact
        self._grid.removeWidget(self.ranges)
        if compact:
            self._grid.addWidget(self.ranges, 1, 0, 1, 4, Qt.AlignmentFlag.AlignLeft)
        else:
            self._grid.addWidget(self.ranges, 0, 1)
        self._grid.activate()  # its minimum size now: the scroll area decides on it

    def refresh_open_menu(self) -> None:
        """The counts of a filter menu open now, as they are after a refresh."""
        for button in self.buttons.values():
            button.refresh_counts()

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


class FilterScroll(QScrollArea):
    """Holds a bar that scrolls sideways when the window is too narrow for it."""

    def __init__(self, bar: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("FilterScroll")
        self._bar = bar
        self.setWidget(bar)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Tab goes to its filters, not to it
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._fit()

    def _fit(self) -> None:
        bar = self._bar
        if isinstance(bar, FilterBar):  # two rows where one would be cut
            bar.set_compact(self.width() < bar.one_row_width())
        squeezed = self.width() < bar.minimumSizeHint().width()
        extra = self.horizontalScrollBar().sizeHint().height() if squeezed else 0
        self.setFixedHeight(self._bar.sizeHint().height() + extra)

    def minimumSizeHint(self) -> QSize:
        return QSize(120, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:
        bar = self._bar
        width = bar.one_row_width() if isinstance(bar, FilterBar) else bar.sizeHint().width()
        return QSize(width, self.height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._fit()  # one row or two first: the scroll bars are decided on the bar's minimum
        super().resizeEvent(event)
