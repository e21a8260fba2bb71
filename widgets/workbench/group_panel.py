"""The "group by" panel beside the failed-payments table.

Counts the matching entries per cause (failure group, the default), reason,
queue, merchant, state or DLQ (the other filters apply, the grouped column's
own filter does not); a click filters the table to a group, its context menu
acts on a whole group. A failure group shows, under its name, the amount at
risk per currency, the merchants affected and when it was first and last seen
(:class:`~services.workbench.failure_groups.FailureGroupStats`, plain data).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Final

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QRectF,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QPainter, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from services.masking.json import mask_sensitive_text
from services.workbench.actions.names import Action
from services.workbench.failure_groups import FailureGroupStats
from services.workbench.model import EntryState
from services.workbench.query import GROUP_BYS, GroupBy, GroupValue
from widgets.common import colors
from widgets.common.menus import popup_menu
from widgets.workbench.action_texts import READ_ONLY_TIP
from widgets.workbench.table_model import STATE_LABELS

GROUP_CHOICES: Final[tuple[tuple[GroupBy, str], ...]] = (
    ("failure_group", "Cause"),
    ("reason", "Reason"),
    ("origin_queue", "Queue"),
    ("merchant", "Merchant"),
    ("state", "State"),
    ("dlq", "DLQ"),
)
MAX_GROUPS_SHOWN: Final = 200
DEFAULT_GROUP_BY: Final[GroupBy] = "failure_group"
SHOWN_CURRENCIES: Final = 3
"""A failure group's amounts at risk under its name: the largest currencies (all of them
in its tooltip)."""
SOURCE_NAMES: Final[dict[str, str]] = {
    "flow": "the flow's failure events",
    "message": "the messages' error headers",
    "dead_letter": "the dead-letter reason",
}


def as_group_by(name: str, default: GroupBy) -> GroupBy:
    """``name`` as a :data:`GroupBy` (``default`` when it names none)."""
    return next((by for by in GROUP_BYS if by == name), default)


NO_ORIGIN_QUEUE: Final = "no origin queue"
"""An entry's queue when it names none (a dead letter without ``x-death``)."""


def group_label(by: GroupBy, value: GroupValue) -> str:
    """How a group's value is shown (masked: the group list, the filter menus and their
    buttons)."""
    if value is None:
        return "(none)"
    if value == "":  # the filter menus and the group list show the same words
        return NO_ORIGIN_QUEUE if by == "origin_queue" else "(empty)"
    if by == "state":
        return STATE_LABELS.get(EntryState(value), value)
    if by == "dlq":
        return value  # our queue's name
    return mask_sensitive_text(value)  # reasons, queues, merchants, groups: free text


def _clock(ms: int, today: datetime.date) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000)
    return f"{moment:%H:%M}" if moment.date() == today else f"{moment:%b %d %H:%M}"


def stats_lines(stats: FailureGroupStats, today: datetime.date | None = None) -> list[str]:
    """A failure group's numbers under its name: the amount at risk per currency, then
    the merchants affected and the first and last dead-lettering (local time)."""
    today = today or datetime.date.today()
    merchants = f"{stats.merchants:,} merchant{'s' if stats.merchants != 1 else ''}"
    first, last = _clock(stats.first_seen_ms, today), _clock(stats.last_seen_ms, today)
    seen = first if first == last else f"{first}–{last}"
    parts = sorted(stats.amount_at_risk.items(), key=lambda kv: (-kv[1], kv[0]))
    # one amount never wraps inside itself: "47,625.72 EUR" is held together (no-break space)
    shown = [f"{amount:,.2f}\u00a0{currency}".rstrip() for currency, amount in parts]
    if len(shown) > SHOWN_CURRENCIES:  # the rest in the tooltip
        more = len(shown) - SHOWN_CURRENCIES + 1
        shown = [*shown[: SHOWN_CURRENCIES - 1], f"+{more}\u00a0more\u00a0currencies"]
    risk = " · ".join(shown)
    return [f"{risk} at risk" if risk else "nothing at risk", f"{merchants} · {seen}"]


def stats_tooltip(label: str, stats: FailureGroupStats, share: str) -> str:
    """Everything about a failure group: the newest cause whole, counts, where from."""
    first = datetime.datetime.fromtimestamp(stats.first_seen_ms / 1000)
    last = datetime.datetime.fromtimestamp(stats.last_seen_ms / 1000)
    sources = ", ".join(
        f"{SOURCE_NAMES.get(name, name)} ({count:,})"
        for name, count in sorted(stats.sources.items(), key=lambda kv: -kv[1])
    )
    lines = [
        label,
        f"{stats.count:,} entries ({share}), {stats.open:,} still parked or claimed",
        f"At risk: {stats.amount_text}",
        f"Merchants affected: {stats.merchants:,}",
        f"First seen {first:%Y-%m-%d %H:%M:%S}, last seen {last:%Y-%m-%d %H:%M:%S}",
    ]
    if sources:
        lines.append(f"Causes from {sources}")
    if stats.example and stats.example != label:
        lines.append(f"Newest: {mask_sensitive_text(stats.example)}")
    return "\n".join(lines)


class _GroupBarDelegate(QStyledItemDelegate):
    """Draws a group's share as a faint bar under its name; a failure group's name
    wraps, with its numbers (:data:`STATS_ROLE`) in muted lines under it."""

    SHARE_ROLE = Qt.ItemDataRole.UserRole + 10
    STATS_ROLE = Qt.ItemDataRole.UserRole + 11
    _PAD = 4

    def _text_width(self, option: QStyleOptionViewItem) -> int:
        view = self.parent()
        width = view.columnWidth(0) if isinstance(view, QTreeWidget) else option.rect.width()
        return max(width - 2 * self._PAD - 4, 40)

    def _blocks(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> tuple[str, list[str], int, int]:
        name = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        lines = index.data(self.STATS_ROLE)
        stats = [str(line) for line in lines] if isinstance(lines, list) else []
        width = self._text_width(option)
        flags = int(Qt.TextFlag.TextWordWrap)
        metrics = option.fontMetrics
        name_height = metrics.boundingRect(QRect(0, 0, width, 10_000), flags, name).height()
        stats_height = sum(
            metrics.boundingRect(QRect(0, 0, width, 10_000), flags, line).height() for line in stats
        )
        return name, stats, name_height, stats_height

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        hint = super().sizeHint(option, index)
        if not isinstance(index.data(self.STATS_ROLE), list):
            return hint
        _name, _stats, name_height, stats_height = self._blocks(option, index)
        return QSize(hint.width(), name_height + stats_height + 2 * self._PAD + 6)

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        if isinstance(index.data(self.STATS_ROLE), list):
            self._paint_stats(painter, option, index)
        else:
            self._paint_bar(painter, option, index)
            super().paint(painter, option, index)

    def _paint_stats(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        name, stats, name_height, _ = self._blocks(option, index)
        flags = int(Qt.TextFlag.TextWordWrap)
        cell = option.rect
        width = self._text_width(option)
        top = cell.top() + self._PAD
        painter.save()
        ink = index.data(Qt.ItemDataRole.ForegroundRole)
        painter.setPen(ink.color() if hasattr(ink, "color") else option.palette.text().color())
        painter.drawText(QRect(cell.left() + self._PAD, top, width, name_height), flags, name)
        top += name_height
        painter.setPen(QColor(colors.TEXT_MUTED))
        metrics = option.fontMetrics
        for line in stats:
            height = metrics.boundingRect(QRect(0, 0, width, 10_000), flags, line).height()
            painter.drawText(QRect(cell.left() + self._PAD, top, width, height), flags, line)
            top += height
        painter.restore()
        self._paint_bar(painter, option, index)

    def _paint_bar(
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


class GroupByPanel(QFrame):
    """Counts per value of one column; a click filters the table to that group."""

    group_by_changed = Signal(str)
    group_clicked = Signal(str, object)
    select_all_clicked = Signal()
    group_action_requested = Signal(str, str, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("GroupPanel")
        self._by: GroupBy = DEFAULT_GROUP_BY
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
        self.list.setUniformRowHeights(False)  # a failure group's name wraps
        self.list.setIndentation(0)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.setItemDelegateForColumn(0, _GroupBarDelegate(self.list))
        self.list.setWordWrap(True)
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
        stats: Mapping[str, FailureGroupStats] | None = None,
    ) -> None:
        """Show (value, count) pairs, most common first; highlight ``active``. ``stats``
        (grouped by failure group): each group's numbers, by its value."""
        self._active = active
        self._counts = dict(pairs)
        shown = list(pairs[:MAX_GROUPS_SHOWN])
        shown_values = {v for v, _ in shown}
        shown += [(v, 0) for v in active if v not in shown_values]
        top = max((count for _, count in shown), default=0)
        total = sum(count for _, count in pairs)
        today = datetime.date.today()
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
                label = group_label(self._by, value)
                numbers = stats.get(value or "") if stats is not None else None
                if numbers is not None:
                    item.setData(0, _GroupBarDelegate.STATS_ROLE, stats_lines(numbers, today))
                    item.setToolTip(0, stats_tooltip(label, numbers, share))
                else:
                    item.setToolTip(0, f"{label}: {count:,} entries ({share})")
                item.setToolTip(1, item.toolTip(0))
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

    def group_items(self) -> list[QTreeWidgetItem]:
        """The groups listed, top to bottom."""
        return [
            item
            for i in range(self.list.topLevelItemCount())
            if (item := self.list.topLevelItem(i)) is not None
        ]

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.list.doItemsLayout()  # a failure group's name wraps to the new width

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
        for name in Action:
            dots = "…" if name is not Action.REQUEUE else ""
            action = menu.addAction(
                f"{name.label} all {count:,} in “{label}”{dots}",
                partial(self.group_action_requested.emit, name, self._by, value),
            )
            action.setEnabled(not self._read_only and count > 0)
            if self._read_only:
                action.setToolTip(READ_ONLY_TIP)
        menu.setToolTipsVisible(True)
        self.context_menu = popup_menu(menu, self.list.viewport().mapToGlobal(point))
