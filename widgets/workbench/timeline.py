"""One payment's whole story as a table: the Timeline tab of the detail pane, and the
page it shows for a payment with no parked entry (opened from the search box).

:class:`TimelineView` takes a :class:`~services.trace_model.PaymentTrace` (plain
data, assembled by the app from Redis with :mod:`services.trace`): every flow
event of the payment (status, time, failure reason), each dead-lettering (each
``x-death`` hop: reason and queue), its parking, and every operator action (who,
when, what, the note and result) with the flow events that followed it, oldest
first. The texts in a trace are masked already; the payment id is shown as an
identifier.
"""

from __future__ import annotations

import datetime
from typing import Final

from PySide6.QtCore import QRect, Qt, QTimer
from PySide6.QtGui import QColor, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QStackedWidget,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from services.masking.json import mask_sensitive_text
from services.time_range import zone_name
from services.trace_model import PaymentTrace, TraceStep
from services.workbench.shown import masked_escaped
from widgets.common import colors
from widgets.workbench.detail_tables import plain_table, table_item

TIMELINE_COLUMNS: Final = ("Time", "What", "By", "Detail")
"""The detail last: it takes the room left and wraps."""
DETAIL_COLUMN: Final = 3
ROW_PADDING: Final = 10
"""A row's height beyond its text (as ``plain_table`` sizes one-line rows)."""
KIND_LABELS: Final[dict[str, str]] = {
    "event": "flow",
    "dead_letter": "dead-letter",
    "parked": "workbench",
    "action": "operator",
}
"""Where each kind of step was seen (the What cell's tooltip)."""
NO_TRACE_TEXT: Final = "Select a failed payment, or type a payment id and press Enter"


def step_time(step: TraceStep, today: datetime.date | None = None) -> str:
    """``14:03:07.250`` today (``14:03:07`` when known to the second only), with the
    date before on other days."""
    moment = datetime.datetime.fromtimestamp(step.at_ms / 1000)
    clock = f"{moment:%H:%M:%S}" + (f".{step.at_ms % 1000:03d}" if step.exact else "")
    if moment.date() == (today or datetime.date.today()):
        return clock
    return f"{moment:%Y-%m-%d} {clock}"


def step_what(step: TraceStep) -> str:
    """The step's name: the status, ``dead-lettered``, ``parked``, the action."""
    return step.what + (" (replayed)" if step.replayed else "")


def step_detail(step: TraceStep) -> str:
    """The reason, the hop, where it was parked, or the note and result and what followed
    (as shown texts are: :func:`~services.workbench.shown.masked_escaped`)."""
    parts = [step.detail] if step.detail else []
    if step.after:
        parts.append("then " + ", ".join(step.after))
    return masked_escaped(" · ".join(parts))


def trace_summary(trace: PaymentTrace) -> str:
    """The line over the table: the payment, how many steps, what is missing."""
    steps = len(trace.steps)
    text = f"Payment {trace.shown_id}: {steps:,} step{'s' if steps != 1 else ''}, oldest first"
    if trace.entries:
        states = ", ".join(
            f"{entry.state.value} in {mask_sensitive_text(entry.dlq)}" for entry in trace.entries
        )
        text += f"; parked entries: {states}"
    else:
        text += "; not parked"
    if not trace.events_recorded:
        text += ". No flow event recorded (expired, or nobody recorded the flow)"
    return text + "."


class TimelineView(QWidget):
    """A payment's steps in a table (time, what, detail, by); a note says what is known."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("TimelineView")
        self._trace: PaymentTrace | None = None
        self.note = QLabel(NO_TRACE_TEXT)
        self.note.setObjectName("SectionNote")
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table: QTableWidget = plain_table(TIMELINE_COLUMNS)
        self.table.setObjectName("TimelineTable")
        self.table.setWordWrap(True)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setTextElideMode(Qt.TextElideMode.ElideNone)
        # rows as tall as their wrapped details whenever the column's width changes (a
        # payment has at most a few hundred steps: measuring them is cheap)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.horizontalHeader().sectionResized.connect(self._on_section_resized)
        self._fit_timer = QTimer(self)  # dies with the view: never fires on a deleted table
        self._fit_timer.setSingleShot(True)
        self._fit_timer.setInterval(0)
        self._fit_timer.timeout.connect(self.fit_rows)
        self.empty_label = QLabel("Nothing is known of this payment yet")
        self.empty_label.setObjectName("Placeholder")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.table)
        self.stack.addWidget(self.empty_label)
        column = QVBoxLayout(self)
        column.setContentsMargins(8, 8, 8, 8)
        column.setSpacing(6)
        column.addWidget(self.note)
        column.addWidget(self.stack, 1)
        self._muted = QColor(colors.TEXT_MUTED)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._fit_timer.start()  # once the layout has given the columns their widths

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_timer.start()

    def _on_section_resized(self, section: int, _old: int, _new: int) -> None:
        if section == DETAIL_COLUMN:
            self.fit_rows()

    def fit_rows(self) -> None:
        """Each row as tall as its detail wrapped to the Detail column's width."""
        table = self.table
        metrics = table.fontMetrics()
        room = max(table.columnWidth(DETAIL_COLUMN) - ROW_PADDING, 20)
        base = metrics.height() + ROW_PADDING
        for row in range(table.rowCount()):
            item = table.item(row, DETAIL_COLUMN)
            text = item.text() if item is not None else ""
            lines = metrics.boundingRect(
                QRect(0, 0, room, 100_000), int(Qt.TextFlag.TextWordWrap), text
            ).height()
            table.setRowHeight(row, max(base, lines + ROW_PADDING))

    @property
    def trace(self) -> PaymentTrace | None:
        return self._trace

    @property
    def step_count(self) -> int:
        return len(self._trace.steps) if self._trace is not None else 0

    def rows(self) -> list[tuple[str, ...]]:
        """The table's texts, row by row (what a person reads)."""
        table = self.table
        return [
            tuple(
                (item.text() if (item := table.item(row, col)) is not None else "")
                for col in range(table.columnCount())
            )
            for row in range(table.rowCount())
        ]

    def show_trace(self, trace: PaymentTrace | None) -> None:
        """Show ``trace`` (None: nothing yet)."""
        self._trace = trace
        table = self.table
        if trace is None:
            table.setRowCount(0)
            self.note.setText(NO_TRACE_TEXT)
            self.stack.setCurrentWidget(self.empty_label)
            return
        self.note.setText(trace_summary(trace))
        table.setRowCount(len(trace.steps))
        today = datetime.date.today()
        for row, step in enumerate(trace.steps):
            when = table_item(step_time(step, today), tooltip=False)
            zone = zone_name(datetime.datetime.fromtimestamp(step.at_ms / 1000).astimezone())
            exact = "" if step.exact else " (to the second: RabbitMQ's x-death time)"
            when.setToolTip(
                f"{datetime.datetime.fromtimestamp(step.at_ms / 1000):%Y-%m-%d %H:%M:%S} {zone}"
                + exact
            )
            what = table_item(step_what(step), tooltip=False)
            what.setToolTip(f"Seen by the {KIND_LABELS.get(step.kind, step.kind)}")
            if step.kind == "event":  # the flow's colour of the status (failed: red)
                what.setForeground(QColor(colors.status_color(step.what)))
            elif step.kind in ("dead_letter", "parked"):
                what.setForeground(self._muted)
            detail = table_item(step_detail(step))
            detail.setToolTip(step_detail(step))
            who = table_item(mask_sensitive_text(step.operator) if step.operator else "")
            for col, item in enumerate((when, what, who, detail)):
                table.setItem(row, col, item)
        for col in range(DETAIL_COLUMN):
            table.resizeColumnToContents(col)
        self.fit_rows()
        self._fit_timer.start()  # the Detail column's width once laid out
        self.stack.setCurrentWidget(table if trace.steps else self.empty_label)
