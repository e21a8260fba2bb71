"""The pieces the flow plots are made of: plots, legends, curves by series, alert marks."""

from __future__ import annotations

import html
from collections.abc import Callable, Collection, Sequence
from typing import Any, ClassVar

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen

from services.alerts.model import AlertMark
from services.flow.types import FloatArray
from widgets.common import colors

_AXIS_WIDTH = 62  # the same for every plot, so the four x axes line up pixel for pixel
_LEGEND_WIDTH = 168
_TITLE_HEIGHT = 20
_MARK_FILL_ALPHA = {"critical": 56, "warning": 32}
_MARK_Z = -20.0  # under the curves


def over_background(pen: QPen, background: str = colors.PLOT_BG) -> QPen:
    """``pen`` with a translucent colour replaced by that colour blended onto
    ``background``: what it would look like there, drawn opaque."""
    colour = pen.color()
    alpha = colour.alphaF()
    if alpha >= 1.0:
        return pen
    bg = QColor(background)
    opaque = QPen(pen)
    opaque.setColor(
        QColor.fromRgbF(
            colour.redF() * alpha + bg.redF() * (1 - alpha),
            colour.greenF() * alpha + bg.greenF() * (1 - alpha),
            colour.blueF() * alpha + bg.blueF() * (1 - alpha),
        )
    )
    return opaque


_LineSpec = tuple[QPen, QPointF, QPointF]


class _OpaqueGrid:
    """Draws an axis's ticks and grid lines opaque, pre-blended onto the plot background.

    Qt's raster engine draws a translucent aliased line about ten times slower
    than an opaque one; the faint grid lines were three quarters of the cost of
    a repaint of the four plots. On the plain background they look the same
    (over an alert's shading they are a shade lighter).
    """

    def drawPicture(
        self,
        p: QPainter,
        axisSpec: _LineSpec,
        tickSpecs: list[_LineSpec],
        textSpecs: list[tuple[QRectF, int, str]],
    ) -> None:
        opaque = [(over_background(pen), p1, p2) for pen, p1, p2 in tickSpecs]
        super().drawPicture(p, axisSpec, opaque, textSpecs)  # type: ignore[misc]


class ValueAxis(_OpaqueGrid, pg.AxisItem):
    """A value axis whose grid lines are drawn opaque (see ``_OpaqueGrid``)."""


class TimeAxis(_OpaqueGrid, pg.DateAxisItem):
    """A time axis whose grid lines are drawn opaque (see ``_OpaqueGrid``).

    The plots' time axes are linked, so they share one range and width: the
    first to repaint works out the ticks, the others take them (a quarter of
    the date arithmetic of a repaint).
    """

    _shared_ticks: ClassVar[tuple[tuple[object, ...], list[tuple[float, list[float]]], Any, float]]
    _shared_ticks = ((), [], None, 0.0)

    def tickValues(
        self, minVal: float, maxVal: float, size: float
    ) -> list[tuple[float, list[float]]]:
        font = self.style["tickFont"]
        key = (minVal, maxVal, size, self.utcOffset, font.toString() if font else "")
        shared_key, levels, zoom_level, min_spacing = TimeAxis._shared_ticks
        if shared_key == key:
            self.zoomLevel, self.minSpacing = zoom_level, min_spacing  # for tickStrings
        else:
            levels = super().tickValues(minVal, maxVal, size)
            TimeAxis._shared_ticks = (key, levels, self.zoomLevel, self.minSpacing)
        return [(spacing, list(values)) for spacing, values in levels]


class PlotViewBox(pg.ViewBox):
    """A view box that does not take its own move for a change of its items' bounds.

    pyqtgraph's ``ChildGroup`` means to be exempt from telling the view box when
    its transform changes (that is the view moving), but the flag it sets is not
    the one read (pyqtgraph 0.14: ``__inform_view_on_change`` against
    ``__inform_view_on_changes``). So each move queued an auto-range, and as
    the move is applied while painting, a second repaint of every plot: two
    repaints a second on an idle live page instead of one. The items' own
    changes (new data) still queue it, and so does a move of the time axis when
    the value axis ranges over what is visible (``setAutoVisible``).
    """

    def itemBoundsChanged(self, item: object) -> None:
        if item is self.childGroup:
            return
        super().itemBoundsChanged(item)


class SideLegend(pg.LegendItem):
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


class SeriesGroup:
    """The curves of one plot keyed by series name (statuses or queues).

    A curve is created the first time its name appears and keeps its colour;
    a name missing from a frame is emptied and leaves the legend until it returns.
    """

    def __init__(
        self,
        plot: pg.PlotItem,
        legend: SideLegend,
        pick_colour: Callable[[str, Collection[str]], str],
    ) -> None:
        self.plot = plot
        self.legend = legend
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.colours: dict[str, str] = {}
        self._absent: set[str] = set()
        self._pick_colour = pick_colour

    def show(self, names: Sequence[str], rows: FloatArray, t: FloatArray) -> None:
        """One ``setData`` per curve."""
        for row, name in enumerate(names):
            curve = self.curves.get(name)
            if curve is None:
                colour = self._pick_colour(name, set(self.colours.values()))
                self.colours[name] = colour
                curve = self.curves[name] = make_curve(self.plot, self.legend, name, colour)
            elif name in self._absent:
                self._absent.discard(name)
                self.legend.addItem(curve, legend_name(name))
            set_curve_data(curve, t, rows[row])
        present = set(names)
        for name, curve in self.curves.items():
            if name not in present and name not in self._absent:
                self._absent.add(name)
                curve.setData([], [])
                self.legend.removeItem(curve)


def set_curve_data(curve: pg.PlotDataItem, t: FloatArray, values: FloatArray) -> None:
    """``curve.setData(t, values)``, unless the curve shows nothing and still would
    (every value NaN, as a latency with no samples): then there is nothing to redraw."""
    shown = curve.yData
    if shown is not None and np.isnan(shown).all() and np.isnan(values).all():
        return
    curve.setData(t, values)


def legend_name(name: str) -> str:
    """A series name short enough for the legend column (the read-out shows it whole)."""
    metrics = QFontMetrics(_legend_font())
    return html.escape(metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, _LEGEND_WIDTH - 36))


def _legend_font() -> QFont:
    font = QFont()
    font.setPointSizeF(8.0)
    return font


def translucent(colour: str, alpha: int) -> QColor:
    """``colour`` with ``alpha`` (0-255) opacity."""
    translucent = QColor(colour)
    translucent.setAlpha(alpha)
    return translucent


def add_plot(
    graphics: pg.GraphicsLayoutWidget, row: int, title: str, unit: str
) -> tuple[pg.PlotItem, SideLegend]:
    """A plot in ``row`` of ``graphics``, legend beside it; later rows share row 0's time axis."""
    axes = {"bottom": TimeAxis(orientation="bottom"), "left": ValueAxis(orientation="left")}
    plot = graphics.addPlot(row=row, col=0, axisItems=axes, viewBox=PlotViewBox())
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
    # Counts, depths and latencies are never negative: the y axis starts at 0.
    plot.setLimits(yMin=0.0)
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
    for hidden in ("top", "right"):  # linked to the view, they would re-label each move
        plot.getAxis(hidden).enableAutoSIPrefix(False)
    if row:
        plot.setXLink(graphics.getItem(0, 0))

    legend = SideLegend(
        pen=pg.mkPen(None),
        brush=pg.mkBrush(None),
        labelTextColor=colors.TEXT,
        labelTextSize="8pt",
        verSpacing=-4,
        frame=False,
    )
    legend.setMinimumWidth(_LEGEND_WIDTH)
    legend.setMaximumWidth(_LEGEND_WIDTH)
    graphics.addItem(legend, row=row, col=1)
    graphics.ci.layout.setAlignment(legend, Qt.AlignmentFlag.AlignTop)
    return plot, legend


def make_curve(
    plot: pg.PlotItem,
    legend: SideLegend | None,
    name: str,
    colour: str,
    fill: bool = False,
) -> pg.PlotDataItem:
    """A curve on ``plot`` (listed in ``legend`` unless None); ``fill`` shades down to 0."""
    curve = pg.PlotDataItem(
        name=name,
        pen=pg.mkPen(colour, width=1.6),
        # Gaps are NaN. Not skipFiniteCheck: pyqtgraph then picks its path by the
        # share of gaps (with it, an all-NaN curve cost ~10 ms a paint).
        connect="finite",
        clipToView=True,
        autoDownsample=True,
        downsampleMethod="peak",
        antialias=True,
        # fillLevel keeps 0 inside the y auto-range; a brush is only set to draw a fill.
        fillLevel=0.0,
        fillBrush=translucent(colour, 60) if fill else None,
    )
    plot.addItem(curve)
    if legend is not None:  # a single series needs no legend: the title names it
        legend.addItem(curve, legend_name(name))
    return curve


def add_crosshair_line(plot: pg.PlotItem) -> pg.InfiniteLine:
    """A hidden dashed vertical line on ``plot``, above everything, for the crosshair."""
    line = pg.InfiniteLine(
        angle=90,
        movable=False,
        pen=pg.mkPen(colors.TEXT_MUTED, width=1, style=Qt.PenStyle.DashLine),
    )
    line.setZValue(1000)
    line.hide()
    plot.addItem(line, ignoreBounds=True)
    return line


def mark_color(severity: str) -> str:
    """An alert mark's colour: red for critical, amber for warning."""
    return colors.RED if severity == "critical" else colors.AMBER


class AlertMarkItems:
    """What draws one alert mark: a shaded span and a firing line on every plot.

    Created when more marks are shown than ever before, then reused: a call of
    ``set_alert_marks`` only moves, recolours, shows or hides these items.
    """

    def __init__(self, plots: Sequence[pg.PlotItem]) -> None:
        self.regions: list[pg.LinearRegionItem] = []
        self.lines: list[pg.InfiniteLine] = []
        self.mark: AlertMark | None = None
        self._look: tuple[object, ...] = ()
        for row, plot in enumerate(plots):
            region = pg.LinearRegionItem(
                values=(0.0, 1.0), movable=False, pen=pg.mkPen(None), brush=pg.mkBrush(None)
            )
            region.setZValue(_MARK_Z)
            for edge in region.lines:
                edge.setPen(pg.mkPen(None))
                edge.setHoverPen(pg.mkPen(None))
            plot.addItem(region, ignoreBounds=True)
            # The rule's name once, at the top of the first plot.
            label_opts = {
                "position": 0.96,
                "anchors": [(0, 0), (0, 0)],
                "fill": translucent(colors.PLOT_BG, 210),
            }
            line = pg.InfiniteLine(
                angle=90,
                movable=False,
                pen=pg.mkPen(None),
                label="" if row == 0 else None,
                labelOpts=label_opts if row == 0 else None,
            )
            line.setZValue(_MARK_Z + 1)
            plot.addItem(line, ignoreBounds=True)
            self.regions.append(region)
            self.lines.append(line)

    def show(
        self, mark: AlertMark, open_end_s: float, label_at: float = 0.96, labelled: bool = True
    ) -> None:
        """Put the items on ``mark``'s span (to ``open_end_s`` while it still fires); its
        label unless ``labelled`` is False (a mark of the same name just before has it)."""
        look = (mark.severity, mark.rule, mark.end_s is None, labelled)
        changed_look = self._look != look
        self._look = look
        self.mark = mark
        end = open_end_s if mark.end_s is None else max(mark.end_s, mark.start_s)
        colour = mark_color(mark.severity)
        if changed_look:
            fill = translucent(colour, _MARK_FILL_ALPHA.get(mark.severity, 38))
            pen = pg.mkPen(colour, width=1.2)
            state = "firing" if mark.end_s is None else "resolved"
            tip = f"{mark.rule} ({mark.severity}) {state}"
            for region, line in zip(self.regions, self.lines, strict=True):
                region.setBrush(pg.mkBrush(fill))
                line.setPen(pen)
                line.setToolTip(tip)
                label = getattr(line, "label", None)
                if isinstance(label, pg.InfLineLabel):
                    label.format = mark.label.replace("{", "{{").replace("}", "}}")
                    label.setColor(colour)
        label = getattr(self.lines[0], "label", None)
        if isinstance(label, pg.InfLineLabel) and label.orthoPos != label_at:
            label.setPosition(label_at)
        for region, line in zip(self.regions, self.lines, strict=True):
            region.setRegion((mark.start_s, end))
            line.setValue(mark.start_s)
            region.show()
            line.show()
        if isinstance(label, pg.InfLineLabel):
            label.setVisible(labelled)
            if labelled:
                label.valueChanged()  # its text, set while it was hidden, is drawn now

    def hide(self) -> None:
        """Take the items off the plots (kept for the next marks)."""
        self.mark = None
        self._look = ()
        for region, line in zip(self.regions, self.lines, strict=True):
            region.hide()
            line.hide()

    @property
    def visible(self) -> bool:
        return self.mark is not None
