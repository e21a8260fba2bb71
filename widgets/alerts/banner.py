"""A strip under the headline counters while any alert fires: the worst one, and how long."""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from services.alerts.model import Alert
from services.time_range import format_local_time
from widgets.alerts.display import format_age, format_value, most_severe_first
from widgets.common import colors
from widgets.common.elided_label import ElidedLabel
from widgets.common.theme import repolish

_TICK_MS = 1000  # refresh "(2m ago)" while shown


def since_text(since: float, now: float) -> str:
    """ "since 14:03:12 CET (2m ago)"; with the date when it began on another day."""
    same_day = time.localtime(now)[:3] == time.localtime(since)[:3]
    stamp = format_local_time(since, date=not same_day)
    return f"since {stamp} ({format_age(now - since)} ago)"


class AlertBanner(QFrame):
    """Hidden while no alert fires; else the most severe (then oldest) alert's message.

    Red for critical, amber for warning. "+N more" counts the other alerts;
    the tooltip lists them all. The strip has a fixed height and the message
    is elided, so alerts coming and going never move the rest of the window
    except for showing or hiding the strip itself.
    """

    show_alerts_requested = Signal()
    export_incident_requested = Signal()

    def __init__(
        self, parent: QWidget | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(parent)
        self.setObjectName("AlertBanner")
        self.setProperty("severity", "critical")
        self._clock = clock
        self._alerts: list[Alert] = []

        self.badge = QLabel("CRITICAL")
        self.badge.setObjectName("AlertBadge")
        self.badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.badge.setMinimumWidth(self.badge.fontMetrics().horizontalAdvance("CRITICAL") + 28)
        self.message_label = ElidedLabel()
        self.message_label.setObjectName("AlertMessage")
        self.since_label = QLabel()
        self.since_label.setObjectName("AlertSince")
        self.more_label = QLabel()
        self.more_label.setObjectName("AlertMore")
        self.show_button = QPushButton("Show alerts")
        self.show_button.setObjectName("ShowAlertsButton")
        self.show_button.setToolTip("Open the Alerts page: every active alert and the log (Alt+4)")
        self.export_button = QPushButton("Export incident…")
        self.export_button.setObjectName("ExportIncidentButton")
        self.export_button.setToolTip(
            "Write an incident snapshot (flow, alerts, parked messages) for the post-mortem"
            " (Ctrl+E)"
        )
        for button in (self.show_button, self.export_button):
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.setAutoDefault(False)

        row = QHBoxLayout(self)
        row.setContentsMargins(10, 5, 8, 5)
        row.setSpacing(10)
        row.addWidget(self.badge, 0, Qt.AlignmentFlag.AlignVCenter)
        row.addWidget(self.message_label, 1)
        row.addWidget(self.since_label)
        row.addWidget(self.more_label, 0, Qt.AlignmentFlag.AlignVCenter)
        row.addSpacing(4)
        row.addWidget(self.show_button)
        row.addWidget(self.export_button)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(self.sizeHint().height())

        self._timer = QTimer(self)
        self._timer.setInterval(_TICK_MS)
        self._timer.timeout.connect(self._render)
        self.show_button.clicked.connect(self.show_alerts_requested)
        self.export_button.clicked.connect(self.export_incident_requested)
        self.hide()

    # -- state ---------------------------------------------------------------------------

    @property
    def alerts(self) -> list[Alert]:
        """The active alerts, most severe (then oldest) first."""
        return list(self._alerts)

    @property
    def top_alert(self) -> Alert | None:
        """The alert the strip shows, or None when none fires."""
        return self._alerts[0] if self._alerts else None

    @property
    def severity(self) -> str:
        """The strip's colour: "critical", "warning", or "" when hidden."""
        return self._alerts[0].severity if self._alerts else ""

    # -- slots ---------------------------------------------------------------------------

    @Slot(object)
    def show_alerts(self, alerts: Sequence[Alert]) -> None:
        """Show these active alerts (any order); hide when there are none."""
        self._alerts = most_severe_first(alerts)
        if not self._alerts:
            self._timer.stop()
            self.hide()
            return
        severity = self._alerts[0].severity
        if self.property("severity") != severity:
            self.setProperty("severity", severity)
            for widget in (self, self.badge, self.show_button, self.export_button):
                repolish(widget)
        self._render()
        if not self._timer.isActive():
            self._timer.start()
        self.show()

    @Slot()
    def _render(self) -> None:
        if not self._alerts:
            return
        now = self._clock()
        top = self._alerts[0]
        self.badge.setText(top.severity.upper())
        self.message_label.set_full_text(top.message or top.rule)
        since = since_text(top.since, now)
        if top.clear_since is not None:
            since += " · clearing"
        self.since_label.setText(since)
        others = len(self._alerts) - 1
        self.more_label.setText(f"+{others} more" if others else "")
        self.more_label.setVisible(others > 0)
        tip = self._tooltip(now)
        for widget in (self, self.message_label, self.more_label):
            widget.setToolTip(tip)

    def _tooltip(self, now: float) -> str:
        rows = []
        for alert in self._alerts:
            colour = colors.RED if alert.severity == "critical" else colors.AMBER
            rows.append(
                f"<tr><td style='color:{colour}'>■&nbsp;</td>"
                f"<td><b>{html.escape(alert.rule)}</b>&nbsp;&nbsp;</td>"
                f"<td>{html.escape(alert.message)}</td>"
                f"<td style='color:{colors.TEXT_MUTED}'>&nbsp;&nbsp;value"
                f" {format_value(alert.value)} · {html.escape(since_text(alert.since, now))}"
                "</td></tr>"
            )
        count = len(self._alerts)
        title = f"{count} active alert{'s' if count != 1 else ''}"
        return f"<qt><b>{title}</b> (most severe first)<table>{''.join(rows)}</table></qt>"

    def hideEvent(self, event: QHideEvent) -> None:
        """Stop the clock while hidden."""
        self._timer.stop()
        super().hideEvent(event)

    def showEvent(self, event: QShowEvent) -> None:
        """Restart the clock when shown again with alerts."""
        super().showEvent(event)
        if self._alerts and not self._timer.isActive():
            self._render()
            self._timer.start()
