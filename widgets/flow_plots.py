"""Live flow plots: throughput, dead letters, queue depths and latency on one time axis."""

from __future__ import annotations

import html
import math
import time
from collections.abc import Callable, Collection, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, QRect, QRectF, Qt, Slot
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPolygon
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from services.flow_types import LATENCY_PERCENTILES, FloatArray, FlowFrame
from widgets import colors

_AXIS_WIDTH = 62  # the same for every plot, so the four x axes line up pixel for pixel
_LEGEND_WIDTH = 168
_TITLE_HEIGHT = 20
_READOUT_OFFSET = 16
_DEFAULT_SPAN_S = 300


class _SideLegend(pg.LegendItem):
    """A legend in its own layout cell beside a plot, top-aligned, instead of over the data."""

    def updateSize(self) -> None:
        """Take the height of the entries and let the surrounding layout place the legend."""
        hint = self.layout.effectiveSizeHint(Qt.SizeHint.PreferredSize)
        self.setMaximumHeight(max(hint.height(), 1.0))
        self.updateGeometry()

    def mouseDragEvent(self, ev: object) -> None:
        """A docked legend is not draggable."""
        ignore = getattr(ev, "ignore", None)
        if ignore is not None:
            ignore()


class _SeriesGroup:
    """The curves of one plot keyed by series name (statuses or queues).

    A curve is created the first time its name appears and keeps its colour;
    a name missing from a frame is emptied and leaves the legend until it returns.
    """

    def __init__(
        self,
        plot: pg.PlotItem,
        legend: _SideLegend,
        pick_colour: Callable[[str, Collection[str]], str],
        make_curve: Callable[[pg.PlotItem, _SideLegend, str, str], pg.PlotDataItem],
    ) -> None:
        self.plot = plot
        self.legend = legend
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.colours: dict[str, str] = {}
        self._absent: set[str] = set()
        self._pick_colour = pick_colour
        self._make_curve = make_curve

    def show(self, names: Sequence[str], rows: FloatArray, t: FloatArray) -> None:
        """One ``setData`` per curve."""
        for row, name in enumerate(names):
            curve = self.curves.get(name)
            if curve is None:
                colour = self._pick_colour(name, set(self.colours.values()))
                self.colours[name] = colour
                curve = self.curves[name] = self._make_curve(self.plot, self.legend, name, colour)
            elif name in self._absent:
                self._absent.discard(name)
                self.legend.addItem(curve, _legend_name(name))
            curve.setData(t, rows[row], skipFiniteCheck=True)
        present = set(names)
        for name, curve in self.curves.items():
            if name not in present and name not in self._absent:
                self._absent.add(name)
                curve.setData([], [])
                self.legend.removeItem(curve)


def _legend_name(name: str) -> str:
    """A series name short enough for the legend column (the read-out shows it whole)."""
    metrics = QFontMetrics(_legend_font())
    return html.escape(metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, _LEGEND_WIDTH - 36))


def _legend_font() -> QFont:
    font = QFont()
    font.setPointSizeF(8.0)
    return font


def _translucent(colour: str, alpha: int) -> QColor:
    translucent = QColor(colour)
    translucent.setAlpha(alpha)
    return translucent


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


class FlowPlots(QWidget):
    """Four stacked plots sharing one linked time axis, with a crosshair read-out.

    Curves are created once per series and then updated with one ``setData``
    per curve per frame; NaN samples show as gaps. Each frame sets the time
    axis to the frame's span; between frames (and while the caller holds them
    back, i.e. paused) the operator can pan and zoom the time axis, and the
    crosshair reads out every series at the second under the mouse.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("FlowPlots")
        self._frame: FlowFrame | None = None
        self._crosshair_t: float | None = None

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground(colors.PLOT_BG)
        self.graphics.ci.setContentsMargins(6, 4, 6, 4)
        self.graphics.ci.setSpacing(0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)

        self.throughput_plot, self.throughput_legend = self._add_plot(
            0, "Throughput by status", "events/s"
        )
        self.dead_letter_plot, self.dead_letter_legend = self._add_plot(
            1, "Dead-letter arrivals", "msgs/s"
        )
        self.queue_plot, self.queue_legend = self._add_plot(2, "Queue depth", "messages")
        self.latency_plot, self.latency_legend = self._add_plot(3, "End-to-end latency", "ms")
        self.plots: tuple[pg.PlotItem, ...] = (
            self.throughput_plot,
            self.dead_letter_plot,
            self.queue_plot,
            self.latency_plot,
        )
        self._statuses = _SeriesGroup(
            self.throughput_plot, self.throughput_legend, colors.status_color, self._make_curve
        )
        self._queues = _SeriesGroup(
            self.queue_plot, self.queue_legend, colors.queue_color, self._make_curve
        )
        bottom = self.latency_plot.getAxis("bottom")
        bottom.setStyle(showValues=True)
        bottom.setLabel("local time", color=colors.TEXT_MUTED)

        self.dead_letter_curve = self._make_curve(
            self.dead_letter_plot, None, "dead letters", colors.DEAD_LETTER_COLOR, fill=True
        )
        self._latency_curves: dict[int, pg.PlotDataItem] = {
            p: self._make_curve(
                self.latency_plot,
                self.latency_legend,
                f"p{p}",
                colors.LATENCY_COLORS.get(p, colors.TEXT),
            )
            for p in LATENCY_PERCENTILES
        }
        self._crosshair_lines = [self._add_crosshair_line(plot) for plot in self.plots]

        self.readout = QLabel(self.graphics)
        self.readout.setObjectName("CrosshairReadout")
        self.readout.setTextFormat(Qt.TextFormat.RichText)
        self.readout.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.readout.setStyleSheet(
            f"QLabel#CrosshairReadout {{ background: #0f1216;"
            f" color: {colors.TEXT}; border: 1px solid {colors.BORDER};"
            " border-radius: 6px; padding: 6px 8px; }"
        )
        self.readout.hide()
        self.paused_badge = self._overlay_label(
            "PausedBadge",
            "Plots frozen · counters live · hover to inspect",
            f"background: rgba(245, 165, 36, 40); color: {colors.AMBER};"
            f" border: 1px solid {colors.AMBER}; border-radius: 4px; padding: 2px 8px;"
            " font-weight: bold;",
        )
        self.waiting_label = self._overlay_label(
            "WaitingLabel",
            "Waiting for the first frame…",
            f"background: transparent; color: {colors.TEXT_MUTED}; padding: 4px;",
        )
        self.waiting_label.show()

        now = time.time()
        self.throughput_plot.setXRange(now - _DEFAULT_SPAN_S, now, padding=0)
        for plot in self.plots:  # a sensible empty scale until data arrives
            plot.getViewBox().setRange(yRange=(-0.5, 10.5), padding=0, disableAutoRange=False)
        self._connect_signals()

    # -- construction -------------------------------------------------------------------

    def _add_plot(self, row: int, title: str, unit: str) -> tuple[pg.PlotItem, _SideLegend]:
        axis = pg.DateAxisItem(orientation="bottom")
        plot = self.graphics.addPlot(row=row, col=0, axisItems={"bottom": axis})
        plot.setTitle(html.escape(title), color=colors.TEXT, size="9pt", bold=True, justify="left")
        plot.layout.setRowFixedHeight(0, _TITLE_HEIGHT)
        plot.titleLabel.setMaximumHeight(_TITLE_HEIGHT)
        plot.showGrid(x=True, y=True, alpha=0.18)
        plot.hideButtons()
        plot.setMenuEnabled(False)
        plot.setMouseEnabled(x=True, y=False)
        plot.setClipToView(True)
        plot.setDownsampling(auto=True, mode="peak")
        plot.getViewBox().setAutoVisible(y=True)
        plot.getViewBox().enableAutoRange(y=True)
        tick_font = QFont()
        tick_font.setPointSizeF(8.0)
        for name in ("left", "bottom"):
            ax = plot.getAxis(name)
            ax.setPen(pg.mkPen(colors.GRID))
            ax.setTextPen(pg.mkPen(colors.TEXT_MUTED))
            ax.setStyle(tickFont=tick_font, tickTextOffset=4)
        left = plot.getAxis("left")
        left.setWidth(_AXIS_WIDTH)
        left.enableAutoSIPrefix(False)
        left.setLabel(unit, color=colors.TEXT_MUTED, **{"font-size": "8pt"})
        plot.getAxis("bottom").setStyle(showValues=False)
        if row:
            plot.setXLink(self.graphics.getItem(0, 0))

        legend = _SideLegend(
            pen=pg.mkPen(None),
            brush=pg.mkBrush(None),
            labelTextColor=colors.TEXT,
            labelTextSize="8pt",
            verSpacing=-4,
            frame=False,
        )
        legend.setMinimumWidth(_LEGEND_WIDTH)
        legend.setMaximumWidth(_LEGEND_WIDTH)
        self.graphics.addItem(legend, row=row, col=1)
        self.graphics.ci.layout.setAlignment(legend, Qt.AlignmentFlag.AlignTop)
        return plot, legend

    @staticmethod
    def _make_curve(
        plot: pg.PlotItem,
        legend: _SideLegend | None,
        name: str,
        colour: str,
        fill: bool = False,
    ) -> pg.PlotDataItem:
        curve = pg.PlotDataItem(
            name=name,
            pen=pg.mkPen(colour, width=1.6),
            connect="finite",
            skipFiniteCheck=True,
            clipToView=True,
            autoDownsample=True,
            downsampleMethod="peak",
            antialias=True,
            # fillLevel keeps 0 inside the y auto-range; a brush is only set to draw a fill.
            fillLevel=0.0,
            fillBrush=_translucent(colour, 60) if fill else None,
        )
        plot.addItem(curve)
        if legend is not None:  # a single series needs no legend: the title names it
            legend.addItem(curve, _legend_name(name))
        return curve

    @staticmethod
    def _add_crosshair_line(plot: pg.PlotItem) -> pg.InfiniteLine:
        line = pg.InfiniteLine(
            angle=90,
            movable=False,
            pen=pg.mkPen(colors.TEXT_MUTED, width=1, style=Qt.PenStyle.DashLine),
        )
        line.setZValue(1000)
        line.hide()
        plot.addItem(line, ignoreBounds=True)
        return line

    def _overlay_label(self, name: str, text: str, style: str) -> QLabel:
        label = QLabel(text, self.graphics)
        label.setObjectName(name)
        label.setStyleSheet(f"QLabel#{name} {{ {style} }}")
        label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        label.adjustSize()
        label.hide()
        return label

    def _connect_signals(self) -> None:
        self.graphics.scene().sigMouseMoved.connect(self.on_mouse_moved)
        self.throughput_plot.getViewBox().sigResized.connect(self._place_overlays)
        self.graphics.installEventFilter(self)

    # -- series access (for callers and tests) -------------------------------------------

    def status_curve(self, name: str) -> pg.PlotDataItem | None:
        """The throughput curve of one status, if it was ever shown."""
        return self._statuses.curves.get(name)

    def queue_curve(self, name: str) -> pg.PlotDataItem | None:
        """The depth curve of one queue, if it was ever shown."""
        return self._queues.curves.get(name)

    def latency_curve(self, percentile: int) -> pg.PlotDataItem:
        """The latency curve of one percentile (see ``LATENCY_PERCENTILES``)."""
        return self._latency_curves[percentile]

    @property
    def frame(self) -> FlowFrame | None:
        """The frame on screen."""
        return self._frame

    @property
    def crosshair_time(self) -> float | None:
        """The second the crosshair is on, or None when it is hidden."""
        return self._crosshair_t

    # -- slots ---------------------------------------------------------------------------

    @Slot(object)
    def show_frame(self, frame: FlowFrame) -> None:
        """Put one frame on screen: one ``setData`` per curve."""
        self._frame = frame
        t = frame.t
        self._statuses.show(frame.status_names, frame.status_counts, t)
        self.dead_letter_curve.setData(t, frame.dead_letters, skipFiniteCheck=True)
        self._queues.show(frame.queue_names, frame.queue_depths, t)
        for row, p in enumerate(LATENCY_PERCENTILES):
            self._latency_curves[p].setData(t, frame.latency_ms[row], skipFiniteCheck=True)
        if t.shape[0]:
            start = float(t[0])
            end = max(float(t[-1]), start + 1.0)
            self.throughput_plot.setXRange(start, end, padding=0)
        self.waiting_label.hide()
        if self._crosshair_t is not None:
            self._update_readout()

    @Slot(bool)
    def set_paused(self, paused: bool) -> None:
        """Show or hide the PAUSED badge (the caller stops sending frames)."""
        self.paused_badge.setVisible(paused)
        self._place_overlays()

    @Slot(object)
    def set_crosshair(self, t: float | None) -> None:
        """Put the crosshair on the second nearest ``t`` (epoch seconds), or hide it."""
        if t is None or not math.isfinite(t):
            self._crosshair_t = None
            for line in self._crosshair_lines:
                line.hide()
            self.readout.hide()
            return
        index = self._index_at(t)
        if index is not None and self._frame is not None:
            t = float(self._frame.t[index])
        else:
            t = float(round(t))
        if t == self._crosshair_t and self.readout.isVisible():
            return  # same second: nothing new to read out
        self._crosshair_t = t
        for line in self._crosshair_lines:
            line.setPos(t)
            line.show()
        self._update_readout()

    @Slot(QPointF)
    def on_mouse_moved(self, pos: QPointF) -> None:
        """Follow the mouse with the crosshair while it is over one of the plots."""
        for plot in self.plots:
            box = plot.getViewBox()
            if box.sceneBoundingRect().contains(pos):
                self.set_crosshair(box.mapSceneToView(pos).x())
                self._place_readout(self.graphics.mapFromScene(pos))
                return
        self.set_crosshair(None)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Hide the crosshair when the mouse leaves; keep overlays placed on resize."""
        # Qt may still deliver events while the Python side is being torn down.
        if watched is getattr(self, "graphics", None):
            if event.type() == QEvent.Type.Leave:
                self.set_crosshair(None)
            elif event.type() == QEvent.Type.Resize:
                self._place_overlays()
        return super().eventFilter(watched, event)

    # -- read-out ------------------------------------------------------------------------

    def _index_at(self, t: float) -> int | None:
        frame = self._frame
        if frame is None or frame.t.shape[0] == 0:
            return None
        times = frame.t
        i = int(np.searchsorted(times, t))
        if i <= 0:
            return 0
        if i >= times.shape[0]:
            return int(times.shape[0] - 1)
        return i - 1 if t - times[i - 1] <= times[i] - t else i

    def readout_rows(self) -> list[tuple[str, str, str]]:
        """What the read-out shows: (group, series, formatted value) at the crosshair."""
        return [(group, name, value) for group, name, value, _ in self._readout_entries()]

    def _readout_entries(self) -> list[tuple[str, str, str, str]]:
        """(group, series, formatted value, colour) for every series at the crosshair."""
        frame = self._frame
        if self._crosshair_t is None or frame is None:
            return []
        i = self._index_at(self._crosshair_t)
        if i is None:
            return []
        rows: list[tuple[str, str, str, str]] = []
        for k, name in enumerate(frame.status_names):
            value = _format_rate(float(frame.status_counts[k, i]))
            rows.append(("Throughput", name, value, self._statuses.colours.get(name, colors.TEXT)))
        value = _format_rate(float(frame.dead_letters[i]))
        rows.append(("Dead letters", "dead letters", value, colors.DEAD_LETTER_COLOR))
        for k, name in enumerate(frame.queue_names):
            value = _format_depth(float(frame.queue_depths[k, i]))
            rows.append(("Queue depth", name, value, self._queues.colours.get(name, colors.TEXT)))
        for k, p in enumerate(LATENCY_PERCENTILES):
            value = _format_ms(float(frame.latency_ms[k, i]))
            rows.append(("Latency", f"p{p}", value, colors.LATENCY_COLORS.get(p, colors.TEXT)))
        return rows

    def _update_readout(self) -> None:
        if self._crosshair_t is None:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self._crosshair_t))
        units = {"Throughput": "events/s", "Dead letters": "msgs/s", "Queue depth": "messages"}
        parts = [
            "<table cellspacing='0' cellpadding='1'>",
            f"<tr><td colspan='2'><b>{stamp}</b></td></tr>",
        ]
        group_now = ""
        for group, name, value, colour in self._readout_entries():
            if group != group_now:
                group_now = group
                unit = units.get(group, "")
                unit_html = f" · {unit}" if unit else ""
                parts.append(
                    f"<tr><td colspan='2' style='color:{colors.TEXT_MUTED};"
                    f" padding-top:4px'>{group}{unit_html}</td></tr>"
                )
            parts.append(
                f"<tr><td><span style='color:{colour}'>■</span> {html.escape(name)}"
                f"&nbsp;&nbsp;</td><td align='right'>{value}</td></tr>"
            )
        if self._frame is None:
            parts.append(f"<tr><td style='color:{colors.TEXT_MUTED}'>no data yet</td></tr>")
        parts.append("</table>")
        self.readout.setText("".join(parts))
        self.readout.adjustSize()
        if not self.readout.isVisible():
            top = self.throughput_plot.getViewBox().sceneBoundingRect().topLeft()
            anchor = self.graphics.mapFromScene(
                QPointF(
                    self.throughput_plot.getViewBox()
                    .mapViewToScene(QPointF(self._crosshair_t, 0))
                    .x(),
                    top.y(),
                )
            )
            self._place_readout(anchor)
        self.readout.show()
        self.readout.raise_()

    def _place_readout(self, cursor: QPoint) -> None:
        """Put the read-out beside the cursor, on the side where it covers no legend."""
        self.readout.adjustSize()
        size = self.readout.size()
        area = self.graphics.rect()
        plots_right = self._plot_area().right()
        x = cursor.x() + _READOUT_OFFSET
        if x + size.width() > plots_right:
            x = cursor.x() - _READOUT_OFFSET - size.width()
        y = min(max(cursor.y() + _READOUT_OFFSET, 4), max(area.bottom() - size.height() - 4, 4))
        self.readout.move(max(x, 4), y)

    def _plot_area(self) -> QRect:
        """Where the data is drawn, in the graphics view's pixels (legends excluded)."""
        box: QRectF = self.throughput_plot.getViewBox().sceneBoundingRect()
        polygon: QPolygon = self.graphics.mapFromScene(box)
        return polygon.boundingRect()

    def _place_overlays(self) -> None:
        box = self._plot_area()
        self.paused_badge.adjustSize()
        self.paused_badge.move(box.right() - self.paused_badge.width(), 4)
        self.waiting_label.adjustSize()
        self.waiting_label.move(
            box.center().x() - self.waiting_label.width() // 2,
            box.center().y() - self.waiting_label.height() // 2,
        )
