"""The crosshair read-out: every series' value at the second under the mouse, in a box."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QLabel, QWidget

from services.alerts.model import AlertMark
from services.flow.types import LATENCY_PERCENTILES, FlowFrame
from services.time_range import format_local_time
from widgets.common import colors
from widgets.live.plot_items import mark_color

_OFFSET = 16  # from the cursor
_UNITS = {"Throughput": "events/s", "Dead letters": "msgs/s", "Queue depth": "messages"}

ReadoutEntry = tuple[str, str, str, str]
"""(group, series, formatted value, colour)."""


def _format_rate(value: float) -> str:
    if not math.isfinite(value):
        return "—"
    if value == int(value) or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def _format_depth(value: float) -> str:
    return f"{value:,.0f}" if math.isfinite(value) else "—"


def _format_ms(value: float) -> str:
    if not math.isfinite(value):
        return "—"
    return f"{value:,.1f} ms" if value < 10 else f"{value:,.0f} ms"


def marks_at(marks: Sequence[AlertMark], t: float) -> list[AlertMark]:
    """The alert marks whose span holds second ``t`` (still-firing ones reach now)."""
    return [m for m in marks if m.start_s <= t + 0.5 and (m.end_s is None or t - 0.5 <= m.end_s)]


def readout_entries(
    frame: FlowFrame,
    i: int,
    status_colours: Mapping[str, str],
    queue_colours: Mapping[str, str],
    marks: Sequence[AlertMark],
) -> list[ReadoutEntry]:
    """Every series of ``frame`` at column ``i``, and the alerts then, grouped by plot."""
    rows: list[ReadoutEntry] = []
    for k, name in enumerate(frame.status_names):
        value = _format_rate(float(frame.status_counts[k, i]))
        rows.append(("Throughput", name, value, status_colours.get(name, colors.TEXT)))
    value = _format_rate(float(frame.dead_letters[i]))
    rows.append(("Dead letters", "dead letters", value, colors.DEAD_LETTER_COLOR))
    for k, name in enumerate(frame.queue_names):
        value = _format_depth(float(frame.queue_depths[k, i]))
        rows.append(("Queue depth", name, value, queue_colours.get(name, colors.TEXT)))
    for k, p in enumerate(LATENCY_PERCENTILES):
        value = _format_ms(float(frame.latency_ms[k, i]))
        rows.append(("Latency", f"p{p}", value, colors.LATENCY_COLORS.get(p, colors.TEXT)))
    for mark in marks_at(marks, float(frame.t[i])):
        rows.append(("Alerts", mark.rule, mark.severity, mark_color(mark.severity)))
    return rows


class CrosshairReadout(QLabel):
    """A rich-text box over the plots that the mouse passes through."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("CrosshairReadout")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hide()

    def show_entries(self, t: float, entries: Sequence[ReadoutEntry], has_data: bool) -> None:
        """Show the time ``t`` and ``entries`` (a table by group); "no data yet" without data."""
        stamp = format_local_time(t)
        parts = [
            "<table cellspacing='0' cellpadding='1'>",
            f"<tr><td colspan='2'><b>{stamp}</b></td></tr>",
        ]
        group_now = ""
        for group, name, value, colour in entries:
            if group != group_now:
                group_now = group
                unit = _UNITS.get(group, "")
                unit_html = f" · {unit}" if unit else ""
                parts.append(
                    f"<tr><td colspan='2' style='color:{colors.TEXT_MUTED};"
                    f" padding-top:4px'>{group}{unit_html}</td></tr>"
                )
            parts.append(
                f"<tr><td><span style='color:{colour}'>■</span> {html.escape(name)}"
                f"&nbsp;&nbsp;</td><td align='right'>{value}</td></tr>"
            )
        if not has_data:
            parts.append(f"<tr><td style='color:{colors.TEXT_MUTED}'>no data yet</td></tr>")
        parts.append("</table>")
        self.setText("".join(parts))
        self.adjustSize()

    def place(self, cursor: QPoint, area: QRect, plots_right: int) -> None:
        """Put the box beside ``cursor`` within ``area``, on the side where it covers no legend."""
        self.adjustSize()
        size = self.size()
        x = cursor.x() + _OFFSET
        if x + size.width() > plots_right:
            x = cursor.x() - _OFFSET - size.width()
        y = min(max(cursor.y() + _OFFSET, 4), max(area.bottom() - size.height() - 4, 4))
        self.move(max(x, 4), y)
