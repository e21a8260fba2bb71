"""The incident snapshot's charts: a range's flow drawn offscreen to PNG bytes.

:func:`render_snapshot_charts` draws four charts of a ``FlowFrame`` with
pyqtgraph in a light print theme (the report is a white page), shades the
periods when alerts were firing, and returns them as PNG bytes by name. Long
ranges are bucketed first (5 s, 10 s, 30 s, 1 min, 5 min ... so that a chart has
at most about 1,000 points: per minute for a day): counts are summed per
bucket, depths and latencies take the bucket's maximum, so no peak is lost.

Spans are plain tuples ``(start_s, end_s, rule, severity)`` (the snapshot
service's ``AlertSpan`` is one), so this module needs nothing from the
services that talk to Redis. A ``QApplication`` must exist.
"""

from __future__ import annotations

import datetime
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QApplication

from services.flow.types import LATENCY_PERCENTILES, FloatArray, FlowFrame
from services.time_range import zone_name
from widgets.common import colors

ChartSpan = tuple[float, float, str, str]
"""An alert period: start and end (epoch seconds), rule name, severity."""

CHART_NAMES: Final = ("throughput", "dead_letters", "queue_depths", "latency")

PAPER: Final = "#ffffff"
INK: Final = "#1d2330"
INK_MUTED: Final = "#5d6673"
RULE_LINE: Final = "#c9d0da"
SPAN_COLORS: Final = {"critical": "#e5484d", "warning": "#f5a524"}
LATENCY_COLORS: Final = {50: "#2b6cb0", 95: "#b7791f", 99: "#c53030"}
"""Percentiles on paper: blue, amber, red (the console's warm pair blurs when darkened)."""

MAX_POINTS: Final = 1500
_BUCKETS: Final = (1, 5, 10, 30, 60, 300, 600, 1800, 3600)
_LEGEND_WIDTH: Final = 190
_MAX_LUMINANCE: Final = 0.3  # contrast with white: (1 + 0.05) / (0.3 + 0.05) = 3
_LABEL_ROWS: Final = 6
_LABEL_STEP: Final = 0.1  # of the data's height, per alert label row


class _SideLegend(pg.LegendItem):
    """A legend in its own layout cell beside the plot, as tall as its entries."""

    def updateSize(self) -> None:
        hint = self.layout.effectiveSizeHint(Qt.SizeHint.PreferredSize)
        self.setMaximumHeight(max(hint.height(), 1.0))
        self.updateGeometry()


@dataclass(frozen=True)
class ChartSeries:
    """A frame's series, bucketed for drawing (``bucket_s`` seconds per point)."""

    t: FloatArray
    bucket_s: int
    status_names: tuple[str, ...]
    status_counts: FloatArray
    dead_letters: FloatArray
    latency_ms: FloatArray
    queue_names: tuple[str, ...]
    queue_depths: FloatArray

    @property
    def rate_unit(self) -> str:
        """``per second``, ``per 5 s``, ``per minute``, ``per 5 min``, ``per hour``."""
        if self.bucket_s in (1, 60, 3600):
            return {1: "per second", 60: "per minute", 3600: "per hour"}[self.bucket_s]
        if self.bucket_s < 60:
            return f"per {self.bucket_s} s"
        return f"per {self.bucket_s // 60} min"


def bucket_size(seconds: int) -> int:
    """Seconds per point for a range of ``seconds``: the smallest of 1 s, 5 s, 10 s,
    30 s, 1 min, 5 min ... that keeps the chart within :data:`MAX_POINTS` points."""
    for bucket in _BUCKETS:
        if seconds <= bucket * MAX_POINTS:
            return bucket
    return _BUCKETS[-1]


def _buckets(values: FloatArray, bucket: int, fill: float) -> FloatArray:
    """``values`` (rows × n) reshaped to (rows × points × bucket), padded with ``fill``."""
    n = values.shape[-1]
    points = math.ceil(n / bucket) if n else 0
    padded = np.full((*values.shape[:-1], points * bucket), fill)
    padded[..., :n] = values
    return padded.reshape(*values.shape[:-1], points, bucket)


def downsample(frame: FlowFrame, bucket_s: int | None = None) -> ChartSeries:
    """The frame's series in buckets of ``bucket_s`` (default: :func:`bucket_size`)."""
    bucket = bucket_s or bucket_size(frame.seconds)
    if bucket == 1:
        return ChartSeries(
            t=frame.t,
            bucket_s=1,
            status_names=frame.status_names,
            status_counts=frame.status_counts,
            dead_letters=frame.dead_letters,
            latency_ms=frame.latency_ms,
            queue_names=frame.queue_names,
            queue_depths=frame.queue_depths,
        )
    t = frame.t[::bucket].copy()
    return ChartSeries(
        t=t,
        bucket_s=bucket,
        status_names=frame.status_names,
        status_counts=_buckets(frame.status_counts, bucket, 0.0).sum(axis=-1),
        dead_letters=_buckets(frame.dead_letters, bucket, 0.0).sum(axis=-1),
        latency_ms=np.fmax.reduce(_buckets(frame.latency_ms, bucket, np.nan), axis=-1),
        queue_names=frame.queue_names,
        queue_depths=np.fmax.reduce(_buckets(frame.queue_depths, bucket, np.nan), axis=-1),
    )


def _luminance(colour: QColor) -> float:
    """WCAG relative luminance (0 black .. 1 white)."""

    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    return (
        0.2126 * channel(colour.redF())
        + 0.7152 * channel(colour.greenF())
        + 0.0722 * channel(colour.blueF())
    )


def on_paper(colour: str) -> str:
    """A series colour dark enough to read on white (3:1 contrast at least; the
    console's palette is made for dark plots)."""
    qcolor = QColor(colour)
    for _ in range(12):
        if _luminance(qcolor) <= _MAX_LUMINANCE:
            break
        qcolor = qcolor.darker(112)
    return str(qcolor.name())


def _font(points: float, bold: bool = False) -> QFont:
    font = QFont()
    font.setPointSizeF(points)
    font.setBold(bold)
    return font


class _ValueAxis(pg.AxisItem):
    """A value axis with thousands separators (``12,000``)."""

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        if spacing < 1:
            return list(super().tickStrings(values, scale, spacing))
        return [f"{v * scale:,.0f}" for v in values]


@dataclass(frozen=True, slots=True)
class _Shade:
    """An alert span as drawn: clipped to the range, its colour, label and label row."""

    start: float
    end: float
    label: str
    colour: QColor
    label_y: float


class _SpanRegions(pg.GraphicsObject):
    """Every alert span's period shaded (the colour, faint) between two lines of the
    colour, the plot's full height: one item behind the curves for all of them."""

    def __init__(self, shades: Sequence[_Shade], bounds: QRectF) -> None:
        super().__init__()
        self._shades = shades
        self._bounds = bounds
        self.setZValue(-10)

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(self, painter: QPainter, *args: object) -> None:
        top, bottom = self._bounds.top(), self._bounds.bottom()
        for shade in self._shades:
            fill = QColor(shade.colour)
            fill.setAlpha(26)
            painter.fillRect(QRectF(shade.start, top, shade.end - shade.start, bottom - top), fill)
            pen = QPen(shade.colour, 1)
            pen.setCosmetic(True)
            painter.setPen(pen)
            for x in (shade.start, shade.end):
                painter.drawLine(QPointF(x, top), QPointF(x, bottom))


class _SpanLabels(pg.GraphicsObject):
    """Every alert span's rule name at its start, in its row, on a white ground (as a
    ``TextItem`` writes it: 4 px of margin), in front of the curves: one item for all."""

    _MARGIN: Final = 4.0

    def __init__(self, shades: Sequence[_Shade], bounds: QRectF) -> None:
        super().__init__()
        self._shades = shades
        self._bounds = bounds
        self._font = _font(8.0, bold=True)
        self.setZValue(20)

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(self, painter: QPainter, *args: object) -> None:
        to_device = painter.transform()
        painter.resetTransform()  # the labels are drawn in pixels, where their spans start
        painter.setFont(self._font)
        metrics = QFontMetricsF(self._font)
        ground = QColor(255, 255, 255, 215)
        margin = self._MARGIN
        for shade in self._shades:
            at = to_device.map(QPointF(shade.start, shade.label_y))
            width = metrics.horizontalAdvance(shade.label) + 2 * margin
            box = QRectF(at.x(), at.y(), width, metrics.height() + 2 * margin)
            painter.fillRect(box, ground)
            painter.setPen(QColor(on_paper(shade.colour.name())))
            painter.drawText(
                QPointF(at.x() + margin, at.y() + margin + metrics.ascent()), shade.label
            )


class _Chart:
    """One chart: a title, a plot with a local-time axis, a legend column."""

    def __init__(self, title: str, unit: str, width: int, height: int) -> None:
        self.widget = pg.GraphicsLayoutWidget()
        self.widget.setBackground(PAPER)
        self.widget.resize(width, height)
        self.widget.ci.setContentsMargins(8, 6, 10, 6)
        self.widget.ci.setSpacing(4)
        self.widget.addLabel(
            f"<b>{html.escape(title)}</b>"
            f"&nbsp;&nbsp;<span style='color:{INK_MUTED}'>{html.escape(unit)}</span>",
            row=0,
            col=0,
            colspan=2,
            color=INK,
            size="11pt",
            justify="left",
        )
        axis = pg.DateAxisItem(orientation="bottom")
        self.plot: pg.PlotItem = self.widget.addPlot(
            row=1, col=0, axisItems={"bottom": axis, "left": _ValueAxis("left")}
        )
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=True, alpha=0.35)
        for name in ("left", "bottom"):
            ax = self.plot.getAxis(name)
            ax.setPen(pg.mkPen(RULE_LINE))
            ax.setTextPen(pg.mkPen(INK_MUTED))
            ax.setStyle(tickFont=_font(9.0), tickTextOffset=5)
        left = self.plot.getAxis("left")
        left.setWidth(64)
        left.enableAutoSIPrefix(False)
        self.legend = _SideLegend(
            pen=pg.mkPen(None),
            brush=pg.mkBrush(None),
            labelTextColor=INK,
            labelTextSize="9pt",
            verSpacing=-2,
        )
        self.legend.setMinimumWidth(_LEGEND_WIDTH)
        self.legend.setMaximumWidth(_LEGEND_WIDTH)
        self.widget.addItem(self.legend, row=1, col=1)
        self.widget.ci.layout.setAlignment(self.legend, Qt.AlignmentFlag.AlignTop)
        self._y_max = 0.0

    def curve(
        self,
        t: FloatArray,
        values: FloatArray,
        name: str,
        colour: str,
        *,
        fill: bool = False,
        legend: bool = True,
    ) -> None:
        colour = on_paper(colour)
        brush = None
        if fill:
            brush = QColor(colour)
            brush.setAlpha(60)
        item = pg.PlotDataItem(
            t,
            values,
            name=name,
            pen=pg.mkPen(colour, width=1.8),
            connect="finite",
            antialias=True,
            fillLevel=0.0 if fill else None,
            fillBrush=brush,
        )
        self.plot.addItem(item)
        if legend:  # a single series needs none: the title names it
            self.legend.addItem(item, html.escape(name))
        finite = values[np.isfinite(values)]
        if finite.size:
            self._y_max = max(self._y_max, float(finite.max()))

    def finish(
        self, t0: float, t1: float, spans: Sequence[ChartSpan], *, empty_text: str | None
    ) -> None:
        """Fix the axes' ranges, shade the alert spans and say when there is no data.

        The y range leaves headroom above the data for one row of alert labels per
        span (up to :data:`_LABEL_ROWS`), so the labels never hide a curve.
        """
        zone = zone_name(datetime.datetime.fromtimestamp(t1))
        self.plot.getAxis("bottom").setLabel(f"local time ({zone})", color=INK_MUTED)
        data_top = self._y_max if self._y_max > 0 else 1.0
        label_rows = min(len(spans), _LABEL_ROWS)
        row_height = data_top * _LABEL_STEP
        top = data_top * 1.1 + row_height * label_rows
        self.plot.setXRange(t0, max(t1, t0 + 1), padding=0)
        self.plot.setYRange(-top * 0.02, top, padding=0)
        self.plot.disableAutoRange()
        shades = []
        for row, span in enumerate(sorted(spans)):
            start, end, rule, severity = span
            start, end = max(start, t0), min(end, t1)
            if end > start:
                colour = SPAN_COLORS.get(severity, SPAN_COLORS["warning"])
                label_y = top - row_height * (row % _LABEL_ROWS)
                shades.append(_Shade(start, end, f" {rule} ", QColor(colour), label_y))
        if shades:  # two items for all the spans, not two per span (a second of 100 spans)
            bounds = QRectF(t0, -top * 0.02, max(t1, t0 + 1) - t0, top * 1.02)
            for item in (_SpanRegions(shades, bounds), _SpanLabels(shades, bounds)):
                self.plot.addItem(item, ignoreBounds=True)
        if empty_text:
            label = pg.TextItem(empty_text, color=INK_MUTED, anchor=(0.5, 0.5))
            label.setFont(_font(11.0))
            label.setPos((t0 + t1) / 2, top / 2)
            self.plot.addItem(label)

    def png(self) -> bytes:
        widget = self.widget
        # Shown (for the resize) but never on screen. No processEvents(): on the GUI's
        # qasync loop that would run other asyncio callbacks inside this one.
        widget.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
        widget.show()
        widget.ci.layout.activate()
        pixmap = widget.grab()
        widget.close()
        widget.deleteLater()
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        pixmap.save(buffer, "PNG")
        buffer.close()
        return bytes(data.data())


def _throughput(series: ChartSeries, chart: _Chart) -> str | None:
    taken: set[str] = set()
    for row, name in enumerate(series.status_names):
        colour = colors.status_color(name, taken)
        taken.add(colour)
        chart.curve(series.t, series.status_counts[row], name, colour)
    return None if series.status_names else "No events recorded in this range"


def _dead_letters(series: ChartSeries, chart: _Chart) -> str | None:
    chart.curve(
        series.t,
        series.dead_letters,
        "dead letters",
        colors.DEAD_LETTER_COLOR,
        fill=True,
        legend=False,
    )
    return None


def _queue_depths(series: ChartSeries, chart: _Chart) -> str | None:
    taken: set[str] = set()
    for row, name in enumerate(series.queue_names):
        colour = colors.queue_color(name, taken)
        taken.add(colour)
        chart.curve(series.t, series.queue_depths[row], name, colour)
    known = series.queue_depths.size and not np.all(np.isnan(series.queue_depths))
    return None if known else "No queue depth recorded in this range"


def _latency(series: ChartSeries, chart: _Chart) -> str | None:
    for row, p in enumerate(LATENCY_PERCENTILES):
        colour = LATENCY_COLORS.get(p, colors.LATENCY_COLORS.get(p, INK))
        chart.curve(series.t, series.latency_ms[row], f"p{p}", colour)
    known = not np.all(np.isnan(series.latency_ms))
    return None if known else "No latency sample in this range"


_CHARTS: Final[dict[str, tuple[str, Callable[[ChartSeries], str], Callable[..., str | None]]]] = {
    "throughput": ("Throughput by status", lambda s: f"events {s.rate_unit}", _throughput),
    "dead_letters": (
        "Dead-letter arrivals",
        lambda s: f"messages {s.rate_unit}",
        _dead_letters,
    ),
    "queue_depths": (
        "Queue depths",
        lambda s: "messages" if s.bucket_s == 1 else f"messages (max {s.rate_unit})",
        _queue_depths,
    ),
    "latency": (
        "End-to-end latency",
        lambda s: "ms" if s.bucket_s == 1 else f"ms (max {s.rate_unit})",
        _latency,
    ),
}


def render_snapshot_charts(
    frame: FlowFrame,
    spans: Sequence[ChartSpan] = (),
    *,
    width: int = 1200,
    height: int = 360,
) -> dict[str, bytes]:
    """PNG bytes of the four charts by name (:data:`CHART_NAMES`), alert spans shaded."""
    if not isinstance(QApplication.instance(), QApplication):
        raise RuntimeError("render_snapshot_charts needs a QApplication (create one first)")
    return render_chart_job(ChartJob.of(frame, spans, width, height))


@dataclass(frozen=True)
class ChartJob:
    """What drawing the charts needs, small enough to send to another process: the
    bucketed series (at most :data:`MAX_POINTS` points), the range, the spans."""

    series: ChartSeries
    t0: float
    t1: float
    spans: tuple[ChartSpan, ...]
    width: int
    height: int

    @classmethod
    def of(cls, frame: FlowFrame, spans: Sequence[ChartSpan], width: int, height: int) -> ChartJob:
        t0 = float(frame.t[0]) if frame.seconds else 0.0
        t1 = float(frame.t[-1]) + 1 if frame.seconds else 1.0
        plain = tuple((float(a), float(b), str(rule), str(sev)) for a, b, rule, sev in spans)
        return cls(downsample(frame), t0, t1, plain, width, height)


def render_chart_job(job: ChartJob) -> dict[str, bytes]:
    """PNG bytes of the charts of ``job`` by name (a QApplication must exist)."""
    series, t0, t1, spans = job.series, job.t0, job.t1, job.spans
    width, height = job.width, job.height
    charts: dict[str, bytes] = {}
    for name, (title, unit, draw) in _CHARTS.items():
        chart = _Chart(title, unit(series), width, height)
        empty = draw(series, chart)
        chart.finish(t0, t1, spans, empty_text=empty)
        charts[name] = chart.png()
    return charts
