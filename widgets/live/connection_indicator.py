"""A coloured dot and a line of text for one backing service's connection."""

from __future__ import annotations

import html
import math
import time
from collections.abc import Callable

from PySide6.QtCore import QSize, Qt, QTimer, Slot
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QHBoxLayout, QWidget

from services.links.status import LinkState, LinkStatus
from services.time_range import format_local_time
from widgets.common import colors
from widgets.common.fitted_label import FittedLabel
from widgets.common.theme import repolish

_MAX_REASON_CHARS = 48


class StatusDot(QWidget):
    """A small filled circle."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._colour = QColor(colors.AMBER)
        self.setFixedSize(QSize(12, 12))

    @property
    def colour(self) -> str:
        """The dot's colour as #rrggbb."""
        return self._colour.name()

    def set_colour(self, colour: str) -> None:
        """Repaint in another colour."""
        if QColor(colour) != self._colour:
            self._colour = QColor(colour)
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        """Draw the dot with a faint halo."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        halo = QColor(self._colour)
        halo.setAlpha(70)
        painter.setBrush(halo)
        painter.drawEllipse(self.rect())
        painter.setBrush(self._colour)
        painter.drawEllipse(self.rect().adjusted(2, 2, -2, -2))
        painter.end()


def _shorten(text: str, limit: int = _MAX_REASON_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class ConnectionIndicator(QWidget):
    """Shows one service's ``LinkStatus``: green connected, amber (re)connecting, red failed;
    "connected · failover to host:port" after a Sentinel failover.

    While a retry is pending the text counts down ("retrying in 4 s"); the
    tooltip has the full detail and the target URL.
    """

    def __init__(
        self,
        service: str,
        parent: QWidget | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ConnectionIndicator")
        self.service = service
        self._clock = clock
        self._status = LinkStatus(service=service, state=LinkState.CONNECTING)
        self.dot = StatusDot()
        self.label = FittedLabel()
        self.label.setObjectName("ConnectionText")
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 0, 6, 0)
        row.setSpacing(6)
        row.addWidget(self.dot, 0, Qt.AlignmentFlag.AlignVCenter)
        row.addWidget(self.label, 1, Qt.AlignmentFlag.AlignVCenter)
        self._countdown = QTimer(self)
        self._countdown.setInterval(500)
        self._countdown.timeout.connect(self.on_countdown)
        self._render()

    @property
    def status(self) -> LinkStatus:
        """The status on show."""
        return self._status

    def text(self) -> str:
        """The one-line text (whole: where the status bar is short of room, the label
        shows a shorter form of it - the reason left out, never an address cut)."""
        return self.label.full_text()

    @Slot(object)
    def show_status(self, status: LinkStatus) -> None:
        """Show a new status of this service."""
        self._status = status
        self._render()
        if status.retry_in_s is not None and status.state is not LinkState.CONNECTED:
            self._countdown.start()
        else:
            self._countdown.stop()

    @Slot()
    def on_countdown(self) -> None:
        """Refresh the "retrying in N s" countdown."""
        self._render()
        remaining = self._retry_remaining()
        if remaining is None or remaining <= 0:
            self._countdown.stop()

    def _retry_remaining(self) -> float | None:
        status = self._status
        if status.retry_in_s is None or status.state is LinkState.CONNECTED:
            return None
        return max(status.retry_in_s - (self._clock() - status.since), 0.0)

    def _retry_text(self) -> str:
        remaining = self._retry_remaining()
        if remaining is None:
            return ""
        if remaining <= 0:
            return "retrying now…"
        return f"retrying in {math.ceil(remaining)} s"

    def _render(self) -> None:
        status = self._status
        retry = self._retry_text()
        if status.state is LinkState.CONNECTED:
            short = text = f"{self.service} connected"
            if status.failover_to:
                text += f" · failover to {status.failover_to}"
        elif status.state is LinkState.FAILED:
            reason = f": {_shorten(status.detail)}" if status.detail else ""
            short = f"{self.service} failed"
            text = short + reason
        else:
            short = text = f"{self.service} {status.state.value}" + ("" if retry else "…")
        forms = [text, short]
        if retry and status.state is not LinkState.CONNECTED:
            forms = [text + f" · {retry}", short + f" · {retry}", short]
        self.label.set_texts(*forms)
        self.dot.set_colour(colors.LINK_STATE_COLORS[status.state])
        if self.label.property("state") != status.state.value:
            self.label.setProperty("state", status.state.value)  # its colour: style.qss
            repolish(self.label)
        self.setToolTip(self._tooltip(retry))

    def _tooltip(self, retry: str) -> str:
        status = self._status
        since = format_local_time(status.since, date=False)
        rows = [
            f"<b>{html.escape(self.service)}</b>: {html.escape(status.state.value)}",
            f"Target: {html.escape(status.target) if status.target else 'not known yet'}",
            f"Since: {since}",
        ]
        if status.failover_to and status.state is LinkState.CONNECTED:
            rows.append(
                f"Failover: the master is now {html.escape(status.failover_to)} (since {since})"
            )
        if retry:
            rows.append(f"Next attempt: {html.escape(retry)}")
        if status.detail:
            detail = html.escape(status.detail).replace("\n", "<br>")
            rows.append(f"Detail: {detail}")
        return "<qt>" + "<br>".join(rows) + "</qt>"
