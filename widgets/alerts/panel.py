"""The Alerts page: the alerts firing now above the log of firings and resolutions.

``ActiveAlertsModel`` and ``AlertLogModel`` hold plain
:mod:`services.alerts.model` values (no per-row widgets); ``AlertLogFilterProxy``
narrows the log by text, severity and event kind.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QAction, QColor, QHideEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from services.alerts.model import Alert, AlertEvent
from services.time_range import format_local_time
from widgets.alerts.display import SEVERITY_RANK, format_age, format_value, most_severe_first
from widgets.common import colors
from widgets.common.record_tables import configure_table
from widgets.common.table_models import ListTableModel, RowFilterProxy, SortRole
from widgets.common.theme import repolish

RowRole: Final = Qt.ItemDataRole.UserRole
"""The row's value: an :class:`Alert` or an :class:`AlertEvent`."""

ACTIVE_COLUMNS: Final = ("severity", "rule", "since", "value", "message")
LOG_COLUMNS: Final = ("time", "rule", "severity", "kind", "value", "message")
COLUMN_TITLES: Final = {
    "severity": "Severity",
    "rule": "Rule",
    "since": "Since",
    "value": "Value",
    "message": "Message",
    "time": "Time",
    "kind": "Event",
}
ALL_SEVERITIES = "All severities"
ALL_KINDS = "All events"


def severity_color(severity: str) -> str:
    """Red for critical, amber for anything else."""
    return colors.RED if severity == "critical" else colors.AMBER


def _row_tint(severity: str, strength: float) -> QColor:
    """A faint wash of the severity's colour over the table background."""
    return QColor(colors.blend(severity_color(severity), strength, colors.PLOT_BG))


_TINTS: Final = {
    ("critical", True): _row_tint("critical", 0.14),
    ("warning", True): _row_tint("warning", 0.10),
    ("critical", False): _row_tint("critical", 0.05),
    ("warning", False): _row_tint("warning", 0.04),
}


def _local(ts: float, *, with_date: bool = True) -> str:
    return format_local_time(ts, date=with_date)


class ActiveAlertsModel(ListTableModel[Alert]):
    """The alerts firing now, most severe (then oldest) first."""

    def __init__(
        self, parent: QObject | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(ACTIVE_COLUMNS, COLUMN_TITLES, parent)
        self._clock = clock

    def set_alerts(self, alerts: Sequence[Alert]) -> None:
        """Replace the alerts shown."""
        self.beginResetModel()
        self._rows = most_severe_first(alerts)
        self.endResetModel()

    def alerts(self) -> list[Alert]:
        """The alerts, in the order shown."""
        return list(self._rows)

    def refresh_ages(self) -> None:
        """Repaint the "since" column ("(2m ago)" moves on)."""
        if self._rows:
            column = self.columns.index("since")
            self.dataChanged.emit(
                self.index(0, column),
                self.index(len(self._rows) - 1, column),
                [Qt.ItemDataRole.DisplayRole],
            )

    def _cell_data(self, alert: Alert, column: str, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(alert, column)
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == "severity":
                return QColor(severity_color(alert.severity))
            if column == "since":
                return QColor(colors.TEXT_MUTED)
            return None
        if role == Qt.ItemDataRole.BackgroundRole:
            return _TINTS[(alert.severity, True)]
        if role == Qt.ItemDataRole.ToolTipRole:
            clearing = (
                f"<br>condition false since {_local(alert.clear_since)}: resolving"
                if alert.clear_since is not None
                else ""
            )
            return (
                f"<qt><b>{html.escape(alert.rule)}</b> ({alert.severity})<br>"
                f"{html.escape(alert.message)}<br>firing since {_local(alert.since)}{clearing}</qt>"
            )
        if role == Qt.ItemDataRole.TextAlignmentRole and column == "value":
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == RowRole:
            return alert
        return None

    def _text(self, alert: Alert, column: str) -> str:
        if column == "severity":
            return f"● {alert.severity}"
        if column == "rule":
            return alert.rule
        if column == "since":
            age = format_age(self._clock() - alert.since)
            clearing = " · clearing" if alert.clear_since is not None else ""
            return f"{_local(alert.since, with_date=False)} ({age} ago){clearing}"
        if column == "value":
            return format_value(alert.value)
        return " ".join(alert.message.split())


class AlertLogModel(ListTableModel[AlertEvent]):
    """Recorded firings and resolutions, newest first."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(LOG_COLUMNS, COLUMN_TITLES, parent)
        self._haystacks: list[str] = []

    def set_rows(self, rows: Sequence[AlertEvent]) -> None:
        """Replace the log (any order; kept newest first)."""
        ordered = sorted(rows, key=lambda r: (r.ts, r.kind == "firing"), reverse=True)
        self.beginResetModel()
        self._rows = ordered
        self._haystacks = [
            f"{r.rule}\n{r.kind}\n{r.severity}\n{r.message}".lower() for r in ordered
        ]
        self.endResetModel()

    def row(self, index: int) -> AlertEvent:
        """The log row at ``index`` (model order)."""
        return self._rows[index]

    def rows(self) -> list[AlertEvent]:
        """Every row, newest first."""
        return list(self._rows)

    def haystack(self, index: int) -> str:
        return self._haystacks[index]

    def _cell_data(self, row: AlertEvent, column: str, role: int) -> Any:
        firing = row.kind == "firing"
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column)
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == "severity":
                return QColor(severity_color(row.severity))
            if column == "kind":
                return QColor(severity_color(row.severity) if firing else colors.GREEN)
            if column == "time":
                return QColor(colors.TEXT_MUTED)
            if not firing:
                return QColor(colors.TEXT_MUTED)
            return None
        if role == Qt.ItemDataRole.BackgroundRole:
            return _TINTS[(row.severity, firing)]
        if role == Qt.ItemDataRole.ToolTipRole:
            return (
                f"<qt><b>{html.escape(row.rule)}</b> {row.kind} ({row.severity})"
                f" at {_local(row.ts)}<br>{html.escape(row.message)}"
                f"<br>value {format_value(row.value)}"
                "<br><i>Double-click to see the flow around this moment</i></qt>"
            )
        if role == Qt.ItemDataRole.TextAlignmentRole and column == "value":
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == RowRole:
            return row
        if role == SortRole:
            if column == "time":
                return row.ts
            if column == "value":
                return row.value if row.value is not None else float("-inf")
            if column == "severity":
                return SEVERITY_RANK.get(row.severity, 9)
            return self._text(row, column).lower()
        return None

    @staticmethod
    def _text(row: AlertEvent, column: str) -> str:
        if column == "time":
            return _local(row.ts)
        if column == "rule":
            return row.rule
        if column == "severity":
            return f"● {row.severity}"
        if column == "kind":
            return "▲ firing" if row.kind == "firing" else "✓ resolved"
        if column == "value":
            return format_value(row.value)
        return " ".join(row.message.split())


class AlertLogFilterProxy(RowFilterProxy):
    """Narrows an :class:`AlertLogModel`: every word of the text, one severity, one kind."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._words: tuple[str, ...] = ()
        self._severity: str | None = None
        self._kind: str | None = None

    def set_text(self, text: str) -> None:
        """Keep the rows holding every word of ``text`` (rule, message, severity, event)."""
        self._set_filter("_words", tuple(text.lower().split()))

    def set_severity(self, severity: str | None) -> None:
        """Keep one severity ("critical" / "warning"), or all with None."""
        self._set_filter("_severity", severity or None)

    def set_kind(self, kind: str | None) -> None:
        """Keep one kind of event ("firing" / "resolved"), or all with None."""
        self._set_filter("_kind", kind or None)

    def filterAcceptsRow(
        self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex
    ) -> bool:
        model = self.sourceModel()
        if not isinstance(model, AlertLogModel):
            return True
        row = model.row(source_row)
        if self._severity is not None and row.severity != self._severity:
            return False
        if self._kind is not None and row.kind != self._kind:
            return False
        haystack = model.haystack(source_row)
        return all(word in haystack for word in self._words)


class AlertsPanel(QWidget):
    """The alerts firing now (rule, severity, since, value, message) over the alert log.

    ``show_active`` and ``show_log`` replace what is shown. The log is newest
    first and narrows by text (``Ctrl+F``), severity and event kind; firing rows
    are tinted by severity. ``Refresh`` (F5) emits ``refresh_requested``,
    "Export incident…" emits ``export_incident_requested``, and double-clicking
    a log row emits ``time_activated`` with its time (to look at the flow then).
    F5 and Ctrl+F work while the panel is on screen.
    """

    refresh_requested = Signal()
    export_incident_requested = Signal()
    time_activated = Signal(float)

    ACTIVE_WIDTHS: Final = {"severity": 100, "rule": 210, "since": 220, "value": 80}
    LOG_WIDTHS: Final = {
        "time": 185,
        "rule": 210,
        "severity": 100,
        "kind": 100,
        "value": 80,
    }

    def __init__(
        self,
        parent: QWidget | None = None,
        clock: Callable[[], float] = time.time,
        log_span: str = "the last 24 h",
    ) -> None:
        super().__init__(parent)
        self.setObjectName("AlertsPanel")
        self._clock = clock
        self.log_span = log_span
        self._log_unavailable: str | None = None  # why the log cannot be read, while it cannot
        self._flow_unavailable: str | None = None  # why the rules cannot be judged, meanwhile
        self._updated_at: float | None = None
        self._flow_down_since = 0.0

        self.active_model = ActiveAlertsModel(self, clock=clock)
        self.log_model = AlertLogModel(self)
        self.log_proxy = AlertLogFilterProxy(self)
        self.log_proxy.setSourceModel(self.log_model)

        self._build_actions()
        self._build_active_section()
        self._build_log_section()

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("AlertsSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.active_section)
        self.splitter.addWidget(self.log_section)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setSizes([200, 520])
        column = QVBoxLayout(self)
        column.setContentsMargins(8, 8, 8, 8)
        column.setSpacing(6)
        column.addWidget(self.splitter, 1)

        self._age_timer = QTimer(self)
        self._age_timer.setInterval(1000)
        self._age_timer.timeout.connect(self.active_model.refresh_ages)
        self._connect_signals()
        self.show_active([])
        self._update_log_count()

    # -- construction -------------------------------------------------------------------

    def _build_actions(self) -> None:
        self.refresh_action = QAction("Refresh", self)
        self.refresh_action.setShortcut(QKeySequence(Qt.Key.Key_F5))
        self.refresh_action.setToolTip("Read the active alerts and the log again (F5)")
        self.find_action = QAction("Find", self)
        self.find_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Find))
        self.export_action = QAction("Export incident…", self)
        self.export_action.setToolTip(
            "Write an incident snapshot (flow, alerts, parked messages) of the latest incident"
            " (Ctrl+E)"
        )
        # Window-wide, but only while the panel is on screen (Qt skips hidden widgets).
        self.addActions([self.refresh_action, self.find_action])

    def _build_active_section(self) -> None:
        self.active_section = QWidget()
        title = QLabel("Active alerts")
        title.setObjectName("AlertsSectionTitle")
        self.active_count = QLabel("0")
        self.active_count.setObjectName("ActiveCount")
        self.active_count.setProperty("severity", "")
        self.active_count.setToolTip("Alerts firing now")
        self.updated_label = QLabel()
        self.updated_label.setObjectName("AlertsUpdated")
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setObjectName("AlertsRefreshButton")
        self.refresh_button.setToolTip(self.refresh_action.toolTip())
        self.export_button = QPushButton("Export incident…")
        self.export_button.setObjectName("AlertsExportButton")
        self.export_button.setToolTip(self.export_action.toolTip())
        for button in (self.refresh_button, self.export_button):
            button.setAutoDefault(False)

        self.active_table = QTableView()
        self.active_table.setObjectName("ActiveAlertsTable")
        self.active_table.setModel(self.active_model)
        configure_table(self.active_table, stretch=None)
        self.active_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.active_table.setAlternatingRowColors(False)
        header = self.active_table.horizontalHeader()
        for name, width in self.ACTIVE_WIDTHS.items():
            header.resizeSection(self.active_model.columns.index(name), width)
        self.no_active_label = QLabel("✓  No alerts firing")
        self.no_active_label.setObjectName("NoActiveAlerts")
        self.no_active_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.active_stack = QStackedWidget()
        self.active_stack.addWidget(self.active_table)
        self.active_stack.addWidget(self.no_active_label)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.setSpacing(8)
        top.addWidget(title)
        top.addWidget(self.active_count, 0, Qt.AlignmentFlag.AlignVCenter)
        top.addStretch(1)
        top.addWidget(self.updated_label)
        top.addWidget(self.refresh_button)
        top.addWidget(self.export_button)
        column = QVBoxLayout(self.active_section)
        column.setContentsMargins(0, 0, 0, 4)
        column.setSpacing(6)
        column.addLayout(top)
        column.addWidget(self.active_stack, 1)

    def _build_log_section(self) -> None:
        self.log_section = QWidget()
        title = QLabel("Alert log")
        title.setObjectName("AlertsSectionTitle")
        self.filter_edit = QLineEdit()
        self.filter_edit.setObjectName("AlertLogFilter")
        self.filter_edit.setPlaceholderText("Filter: rule, message or any text (Ctrl+F)")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setToolTip(
            "Keep the events whose rule, message, severity or event hold every word (Ctrl+F)"
        )
        self.severity_combo = QComboBox()
        self.severity_combo.setObjectName("AlertSeverityFilter")
        self.severity_combo.setToolTip("Show one severity only")
        self.severity_combo.addItem(ALL_SEVERITIES, "")
        self.severity_combo.addItem("Critical", "critical")
        self.severity_combo.addItem("Warning", "warning")
        self.kind_combo = QComboBox()
        self.kind_combo.setObjectName("AlertKindFilter")
        self.kind_combo.setToolTip("Show firings or resolutions only")
        self.kind_combo.addItem(ALL_KINDS, "")
        self.kind_combo.addItem("Firing", "firing")
        self.kind_combo.addItem("Resolved", "resolved")
        self.log_count = QLabel()
        self.log_count.setObjectName("AlertLogCount")

        self.log_table = QTableView()
        self.log_table.setObjectName("AlertLogTable")
        self.log_table.setModel(self.log_proxy)
        configure_table(self.log_table, stretch=None)
        self.log_table.setAlternatingRowColors(False)
        self.log_table.setSortingEnabled(True)
        self.log_table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        header = self.log_table.horizontalHeader()
        for name, width in self.LOG_WIDTHS.items():
            header.resizeSection(self.log_model.columns.index(name), width)
        self.log_empty = QLabel()
        self.log_empty.setObjectName("AlertsEmpty")
        self.log_empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.log_stack = QStackedWidget()
        self.log_stack.addWidget(self.log_table)
        self.log_stack.addWidget(self.log_empty)

        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.setSpacing(6)
        controls.addWidget(title)
        controls.addSpacing(8)
        controls.addWidget(self.filter_edit, 1)
        controls.addWidget(self.severity_combo)
        controls.addWidget(self.kind_combo)
        controls.addWidget(self.log_count)
        column = QVBoxLayout(self.log_section)
        column.setContentsMargins(0, 6, 0, 0)
        column.setSpacing(6)
        column.addLayout(controls)
        column.addWidget(self.log_stack, 1)

    def _connect_signals(self) -> None:
        self.refresh_action.triggered.connect(self.refresh_requested)
        self.refresh_button.clicked.connect(self.refresh_action.trigger)
        self.export_action.triggered.connect(self.export_incident_requested)
        self.export_button.clicked.connect(self.export_action.trigger)
        self.find_action.triggered.connect(self.focus_filter)
        self.filter_edit.textChanged.connect(self.on_filter_text_changed)
        self.severity_combo.currentIndexChanged.connect(self.on_severity_changed)
        self.kind_combo.currentIndexChanged.connect(self.on_kind_changed)
        self.log_table.doubleClicked.connect(self.on_log_double_clicked)

    # -- slots ---------------------------------------------------------------------------

    @Slot(object)
    def show_active(self, alerts: Sequence[Alert]) -> None:
        """Show the alerts firing now (any order; most severe, then oldest, first)."""
        self.active_model.set_alerts(alerts)
        shown = self.active_model.alerts()
        severity = shown[0].severity if shown else ""
        self.active_count.setText(str(len(shown)))
        if self.active_count.property("severity") != severity:
            self.active_count.setProperty("severity", severity)
            repolish(self.active_count)
        self._show_no_active_text()
        self.active_stack.setCurrentWidget(self.active_table if shown else self.no_active_label)
        if shown and self.isVisible():
            self._age_timer.start()
        elif not shown:
            self._age_timer.stop()

    @Slot(object)
    def show_log(self, rows: Sequence[AlertEvent]) -> None:
        """Show the recorded transitions (any order; newest first)."""
        self.log_model.set_rows(rows)
        self._updated_at = self._clock()
        self._show_updated()
        self._update_log_count()

    @Slot(object)
    def set_flow_unavailable(self, why: str | None) -> None:
        """The flow the rules are judged on cannot be read (``why``: RabbitMQ unreachable),
        or None once it can: meanwhile the page does not say "No alerts firing" nor show a
        fresh "updated" stamp as if the rules had been judged."""
        if why is not None and self._flow_unavailable is None:
            self._flow_down_since = self._clock()
        self._flow_unavailable = why
        self._show_no_active_text()
        self._show_updated()

    def _show_no_active_text(self) -> None:
        why = self._flow_unavailable
        self.no_active_label.setText(
            "✓  No alerts firing" if why is None else f"?  Alerts not judged: {why}"
        )

    def _show_updated(self) -> None:
        if self._flow_unavailable is not None:
            since = _local(self._flow_down_since, with_date=False)
            self.updated_label.setText(f"flow unreachable since {since}")
        elif self._updated_at is not None:
            self.updated_label.setText(f"updated {_local(self._updated_at, with_date=False)}")

    @Slot(object)
    def set_log_unavailable(self, why: str | None) -> None:
        """The alert log cannot be read now (``why``: host:port and the error), or None once
        it can: the log says so rather than "No alerts recorded in the last 24 h"."""
        self._log_unavailable = why
        self._update_log_count()

    @Slot(str)
    def set_filter_text(self, text: str) -> None:
        """Filter the log as if typed into the box."""
        self.filter_edit.setText(text)

    @Slot()
    def focus_filter(self) -> None:
        """Put the cursor in the filter box, its text selected."""
        self.filter_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_edit.selectAll()

    @Slot(str)
    def on_filter_text_changed(self, text: str) -> None:
        self.log_proxy.set_text(text)
        self._update_log_count()

    @Slot(int)
    def on_severity_changed(self, index: int) -> None:
        data = self.severity_combo.itemData(index)
        self.log_proxy.set_severity(data if isinstance(data, str) and data else None)
        self._update_log_count()

    @Slot(int)
    def on_kind_changed(self, index: int) -> None:
        data = self.kind_combo.itemData(index)
        self.log_proxy.set_kind(data if isinstance(data, str) and data else None)
        self._update_log_count()

    @Slot(QModelIndex)
    def on_log_double_clicked(self, index: QModelIndex) -> None:
        row = index.data(RowRole)
        if isinstance(row, AlertEvent):
            self.time_activated.emit(float(row.ts))

    # -- state ---------------------------------------------------------------------------

    def shown_log(self) -> list[AlertEvent]:
        """The log rows that pass the filters, in the order shown."""
        out = []
        for r in range(self.log_proxy.rowCount()):
            row = self.log_proxy.index(r, 0).data(RowRole)
            if isinstance(row, AlertEvent):
                out.append(row)
        return out

    def empty_text(self) -> str:
        """What the log says when it shows no row."""
        return self.log_empty.text()

    def _update_log_count(self) -> None:
        total = self.log_model.rowCount()
        shown = self.log_proxy.rowCount()
        if total == 0 and self._log_unavailable is not None:
            self.log_count.setText("cannot be read")
            self.log_empty.setText(
                f"The alert log cannot be read: {self._log_unavailable}."
                " Retrying every few seconds."
            )
        elif total == 0:
            self.log_count.setText("0 events")
            self.log_empty.setText(f"No alerts recorded in {self.log_span}")
        elif shown == total:
            self.log_count.setText(f"{total:,} event{'s' if total != 1 else ''}")
        else:
            self.log_count.setText(f"{shown:,} of {total:,} events")
            self.log_empty.setText("No alert events match the filter")
        self.log_stack.setCurrentWidget(self.log_table if shown else self.log_empty)

    # -- events --------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        """Keep the "(2m ago)" column moving while on screen."""
        super().showEvent(event)
        if self.active_model.rowCount():
            self._age_timer.start()

    def hideEvent(self, event: QHideEvent) -> None:
        """No repaints while off screen."""
        self._age_timer.stop()
        super().hideEvent(event)
