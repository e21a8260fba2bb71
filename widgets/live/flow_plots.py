"""Flow plots: throughput, dead letters, queue depths and latency on one time axis.

Live by default; ``◀``/``▶``/``Live`` (``history_controls``) step back through
the flow history one window at a time. Alert spans are shaded on every plot.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, QRect, QRectF, Qt, Signal, Slot
from PySide6.QtGui import QAction, QColor, QFont, QFontMetrics, QKeySequence, QPolygon
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from services.alerts.model import AlertMark
from services.flow.types import LATENCY_PERCENTILES, FloatArray, FlowFrame
from widgets.common import colors

_AXIS_WIDTH = 62  # the same for every plot, so the four x axes line up pixel for pixel
_LEGEND_WIDTH = 168
_TITLE_HEIGHT = 20
_READOUT_OFFSET = 16
_DEFAULT_SPAN_S = 300
_MARK_FILL_ALPHA = {"critical": 56, "warning": 32}
_MARK_Z = -20.0  # under the curves
_OPEN_END_AHEAD_S = 6 * 3600.0  # a still-firing alert's shading reaches this far past now
_MAX_MESSAGE_CHARS = 90


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


def mark_color(severity: str) -> str:
    """An alert mark's colour: red for critical, amber for warning."""
    return colors.RED if severity == "critical" else colors.AMBER


class _AlertMarkItems:
    """What draws one alert mark: a shaded span and a firing line on every plot.

    Created when more marks are shown than ever before, then reused: a call of
    ``set_alert_marks`` only moves, recolours, shows or hides these items.
    """

    def __init__(self, plots: Sequence[pg.PlotItem]) -> None:
        self.regions: list[pg.LinearRegionItem] = []
        self.lines: list[pg.InfiniteLine] = []
        self.mark: AlertMark | None = None
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
                "fill": _translucent(colors.PLOT_BG, 210),
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

    def show(self, mark: AlertMark, open_end_s: float, label_at: float = 0.96) -> None:
        """Put the items on ``mark``'s span (to ``open_end_s`` while it still fires)."""
        look = (mark.severity, mark.rule, mark.end_s is None)
        old = self.mark
        changed_look = old is None or (old.severity, old.rule, old.end_s is None) != look
        self.mark = mark
        end = open_end_s if mark.end_s is None else max(mark.end_s, mark.start_s)
        colour = mark_color(mark.severity)
        if changed_look:
            fill = _translucent(colour, _MARK_FILL_ALPHA.get(mark.severity, 38))
            pen = pg.mkPen(colour, width=1.2)
            state = "firing" if mark.end_s is None else "resolved"
            tip = f"{mark.rule} ({mark.severity}) {state}"
            for region, line in zip(self.regions, self.lines, strict=True):
                region.setBrush(pg.mkBrush(fill))
                line.setPen(pen)
                line.setToolTip(tip)
                label = getattr(line, "label", None)
                if isinstance(label, pg.InfLineLabel):
                    label.format = mark.rule.replace("{", "{{").replace("}", "}}")
                    label.setColor(colour)
        label = getattr(self.lines[0], "label", None)
        if isinstance(label, pg.InfLineLabel) and label.orthoPos != label_at:
            label.setPosition(label_at)
        for region, line in zip(self.regions, self.lines, strict=True):
            region.setRegion((mark.start_s, end))
            line.setValue(mark.start_s)
            region.show()
            line.show()

    def hide(self) -> None:
        """Take the items off the plots (kept for the next marks)."""
        self.mark = None
        for region, line in zip(self.regions, self.lines, strict=True):
            region.hide()
            line.hide()

    @property
    def visible(self) -> bool:
        return self.mark is not None


class _ActionButton(QToolButton):
    """A tool button that mirrors an action without being one of its widgets.

    ``setDefaultAction`` would add the action to the button; a toolbar button
    is always on screen, so the action's shortcuts (PgUp, End…) would then work
    on every page. Mirrored, they work only while the plots are on screen.
    """

    def __init__(self, action: QAction, name: str) -> None:
        super().__init__()
        self._action = action
        self.setObjectName(name)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setAutoRaise(True)
        self.clicked.connect(action.trigger)
        action.changed.connect(self.sync)
        self.sync()

    @Slot()
    def sync(self) -> None:
        """Take the action's text, tooltip, enabled state and visibility."""
        self.setText(self._action.text())
        self.setToolTip(self._action.toolTip())
        self.setEnabled(self._action.isEnabled())
        self.setVisible(self._action.isVisible())


def format_range(from_s: float, to_s: float, now: float) -> str:
    """ "13:05:00 – 14:05:00", with dates when the range is not all today."""
    start, end, today = time.localtime(from_s), time.localtime(to_s), time.localtime(now)
    clock = "%H:%M:%S"
    if start[:3] == end[:3]:
        head = clock if start[:3] == today[:3] else f"%b %d {clock}"
        return f"{time.strftime(head, start)} – {time.strftime(clock, end)}"
    return f"{time.strftime(f'%b %d {clock}', start)} – {time.strftime(f'%b %d {clock}', end)}"


@dataclass(frozen=True, slots=True)
class HistoryRange:
    """The span of history on screen: ``from_s <= t < to_s`` (epoch seconds)."""

    from_s: float
    to_s: float


_HISTORY_STYLE = f"""
QLabel#HistoryRange {{ color: {colors.TEXT_MUTED}; padding: 0 4px; }}
QLabel#HistoryRange[mode="live"] {{ color: {colors.GREEN}; }}
QLabel#HistoryRange[mode="history"] {{ color: {colors.ACCENT}; font-weight: bold; }}
QLabel#HistoryRange[mode="unavailable"] {{ color: {colors.AMBER}; }}
QToolButton#HistoryBack, QToolButton#HistoryForward {{ padding: 4px 7px; }}
QToolButton:disabled {{ color: {colors.TEXT_FAINT}; }}
QProgressBar#HistoryBusy {{
    background: {colors.PLOT_BG}; border: 1px solid {colors.BORDER}; border-radius: 3px;
    max-height: 6px;
}}
QProgressBar#HistoryBusy::chunk {{ background: {colors.ACCENT}; border-radius: 2px; }}
"""


class FlowPlots(QWidget):
    """Four stacked plots sharing one linked time axis, with a crosshair read-out.

    Curves are created once per series and then updated with one ``setData``
    per curve per frame; NaN samples show as gaps. Each frame sets the time
    axis to the frame's span; between frames (and while the caller holds them
    back, i.e. paused) the operator can pan and zoom the time axis, and the
    crosshair reads out every series at the second under the mouse.

    History: ``back_action`` (Alt+Left, PgUp) shows the window before the one
    on screen and emits ``history_requested(from_s, to_s)``; the caller answers
    with ``show_history_frame``. Live frames (``show_frame``) are kept but not
    drawn while in history; ``forward_action`` (Alt+Right, PgDown) steps
    forward and returns to live past now; ``live_action`` (End) returns at once.
    ``set_window_seconds`` in history keeps the end and asks again.
    ``history_mode_changed`` tells the caller when history starts and ends.
    The shortcuts work only while the plots are on screen; ``history_controls``
    holds the buttons and the range label for the caller's toolbar.

    Alert marks (``set_alert_marks``) shade each alert's span on every plot,
    with a line at the firing; the read-out lists the alerts at the crosshair.
    """

    history_requested = Signal(float, float)
    history_mode_changed = Signal(bool)

    def __init__(
        self, parent: QWidget | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(parent)
        self.setObjectName("FlowPlots")
        self._clock = clock
        self._frame: FlowFrame | None = None
        self._live_frame: FlowFrame | None = None
        self._crosshair_t: float | None = None
        self._window_s = float(_DEFAULT_SPAN_S)
        self._history: HistoryRange | None = None
        self._history_loading = False
        self._history_problem = ""
        self._paused = False
        self._marks: tuple[AlertMark, ...] = ()
        self._mark_items: list[_AlertMarkItems] = []
        self._open_end_s: float | None = None

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
        self.history_badge = self._overlay_label(
            "HistoryBadge",
            "History",
            f"background: rgba(76, 154, 255, 40); color: {colors.ACCENT};"
            f" border: 1px solid {colors.ACCENT}; border-radius: 4px; padding: 2px 8px;"
            " font-weight: bold;",
        )
        self._build_history_controls()

        now = self._clock()
        self.throughput_plot.setXRange(now - _DEFAULT_SPAN_S, now, padding=0)
        for plot in self.plots:  # a sensible empty scale until data arrives
            plot.getViewBox().setRange(yRange=(-0.5, 10.5), padding=0, disableAutoRange=False)
        self._connect_signals()
        self._update_history_controls()

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

    def _build_history_controls(self) -> None:
        self.back_action = QAction("◀", self)
        self.back_action.setShortcuts([QKeySequence("Alt+Left"), QKeySequence(Qt.Key.Key_PageUp)])
        self.back_action.setToolTip("Back one window in the flow history (Alt+Left, PgUp)")
        self.forward_action = QAction("▶", self)
        self.forward_action.setShortcuts(
            [QKeySequence("Alt+Right"), QKeySequence(Qt.Key.Key_PageDown)]
        )
        self.forward_action.setToolTip(
            "Forward one window; past now, back to live (Alt+Right, PgDown)"
        )
        self.live_action = QAction("Live", self)
        self.live_action.setShortcut(QKeySequence(Qt.Key.Key_End))
        self.live_action.setToolTip("Back to the live flow (End)")
        # On the plots only: Qt skips the shortcuts of a widget that is not on screen.
        self.addActions([self.back_action, self.forward_action, self.live_action])

        self.history_controls = QWidget()
        self.history_controls.setObjectName("HistoryControls")
        self.history_controls.setStyleSheet(_HISTORY_STYLE)
        self.back_button = _ActionButton(self.back_action, "HistoryBack")
        self.forward_button = _ActionButton(self.forward_action, "HistoryForward")
        self.live_button = _ActionButton(self.live_action, "HistoryLive")
        self.history_label = QLabel()
        self.history_label.setObjectName("HistoryRange")
        self.history_busy = QProgressBar()
        self.history_busy.setObjectName("HistoryBusy")
        self.history_busy.setRange(0, 0)
        self.history_busy.setTextVisible(False)
        self.history_busy.setFixedSize(28, 6)
        self.history_busy.setToolTip("Reading the flow history…")
        self.history_busy.hide()
        row = QHBoxLayout(self.history_controls)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        for button in (self.back_button, self.forward_button, self.live_button):
            row.addWidget(button)
        row.addSpacing(4)
        row.addWidget(self.history_label)
        row.addWidget(self.history_busy, 0, Qt.AlignmentFlag.AlignVCenter)

    def _connect_signals(self) -> None:
        self.graphics.scene().sigMouseMoved.connect(self.on_mouse_moved)
        self.throughput_plot.getViewBox().sigResized.connect(self._place_overlays)
        self.graphics.installEventFilter(self)
        self.back_action.triggered.connect(self.go_back)
        self.forward_action.triggered.connect(self.go_forward)
        self.live_action.triggered.connect(self.go_live)

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

    @property
    def live(self) -> bool:
        """Whether the plots follow the live flow (not history)."""
        return self._history is None

    @property
    def history_range(self) -> HistoryRange | None:
        """The span of history on screen, or None when live."""
        return self._history

    @property
    def window_seconds(self) -> float:
        """The length of the time window, in seconds."""
        return self._window_s

    @property
    def alert_marks(self) -> tuple[AlertMark, ...]:
        """The alert marks on the plots."""
        return self._marks

    def alert_mark_items(
        self, plot: pg.PlotItem
    ) -> list[tuple[pg.LinearRegionItem, pg.InfiniteLine]]:
        """The (shaded span, firing line) of each mark shown on ``plot``."""
        row = self.plots.index(plot)
        return [
            (items.regions[row], items.lines[row]) for items in self._mark_items if items.visible
        ]

    # -- slots ---------------------------------------------------------------------------

    @Slot(object)
    def show_frame(self, frame: FlowFrame) -> None:
        """Put one live frame on screen (kept, not drawn, while showing history)."""
        self._live_frame = frame
        if self._history is not None:
            return
        self._draw(frame)
        self._refresh_open_marks()

    @Slot(object)
    def show_history_frame(self, frame: FlowFrame) -> None:
        """Draw a frame read back from history (ignored when live or not of the range shown).

        The time axis keeps the requested range, so a frame with missing
        seconds at either end still lines up.
        """
        history = self._history
        if history is None:
            return
        t = frame.t
        if t.shape[0] and (float(t[-1]) < history.from_s - 1 or float(t[0]) > history.to_s):
            return  # an answer to an earlier request
        self._history_loading = False
        self._history_problem = ""
        self._draw(frame, x_range=(history.from_s, history.to_s))
        if not frame.status_names and not frame.queue_names:
            self.waiting_label.setText("No flow history recorded for this range")
            self.waiting_label.show()
            self._place_overlays()
        self._update_history_controls()

    @Slot(bool)
    def history_loading(self, loading: bool) -> None:
        """Show (or stop showing) that a history read is under way."""
        self._history_loading = loading and self._history is not None
        if self._history_loading:
            self._history_problem = ""
        self._update_history_controls()

    @Slot(str)
    def history_unavailable(self, text: str) -> None:
        """Say why the history cannot be shown (e.g. "Redis unreachable")."""
        self._history_loading = False
        self._history_problem = " ".join(text.split()) or "unavailable"
        self._update_history_controls()

    @Slot(float)
    def set_window_seconds(self, seconds: float) -> None:
        """Take the length of the time window; in history, keep the end and ask again."""
        seconds = float(seconds)
        if seconds <= 0 or seconds == self._window_s:
            return
        self._window_s = seconds
        if self._history is not None:
            self._show_history(self._history.to_s)
        elif self._frame is None:
            now = self._clock()
            self.throughput_plot.setXRange(now - seconds, now, padding=0)

    @Slot()
    def go_back(self) -> None:
        """Show the window before the one on screen.

        From live, the end is rounded up to a whole minute (10 s for windows
        under 5 minutes), so the ranges read well; it may overlap the live view
        by less than that, never leave a gap.
        """
        if self._history is not None:
            self._show_history(self._history.to_s - self._window_s)
        else:
            self._show_history(self._round_up(self._live_end() - self._window_s))

    @Slot()
    def go_forward(self) -> None:
        """Show the next window; back to live when it would reach now."""
        if self._history is None:
            return
        end = self._history.to_s + self._window_s
        if end >= math.floor(self._clock()):
            self.go_live()
        else:
            self._show_history(end)

    @Slot()
    def go_live(self) -> None:
        """Follow the live flow again, from the newest live frame."""
        if self._history is None:
            return
        self._history = None
        self._history_loading = False
        self._history_problem = ""
        self.set_crosshair(None)
        self.waiting_label.setText("Waiting for the first frame…")
        if self._live_frame is not None:
            self._draw(self._live_frame)
        else:
            self.waiting_label.show()
            now = self._clock()
            self.throughput_plot.setXRange(now - self._window_s, now, padding=0)
        self._update_history_controls()
        self.history_mode_changed.emit(False)

    @Slot(float)
    def show_history_at(self, t: float) -> None:
        """Show the window around ``t`` (epoch seconds): ``t`` at two thirds of the way."""
        end = self._round_up(t + self._window_s / 3)
        if end >= math.floor(self._clock()):
            if self._history is None:
                return  # already on screen, live
            self.go_live()
            return
        self._show_history(end)

    @Slot(object)
    def set_alert_marks(self, marks: Sequence[AlertMark]) -> None:
        """Shade each alert's span on every plot (replacing the marks shown); cheap to repeat."""
        marks = tuple(marks)
        if marks == self._marks and not self._open_end_due():
            return
        self._marks = marks
        while len(self._mark_items) < len(marks):
            self._mark_items.append(_AlertMarkItems(self.plots))
        open_end = self._clock() + _OPEN_END_AHEAD_S
        self._open_end_s = open_end if any(m.end_s is None for m in marks) else None
        for k, (items, mark) in enumerate(zip(self._mark_items, marks, strict=False)):
            items.show(mark, open_end, label_at=0.96 - 0.16 * (k % 3))  # labels stagger
        for items in self._mark_items[len(marks) :]:
            if items.visible:
                items.hide()
        if self._crosshair_t is not None:
            self._update_readout()

    def _open_end_due(self) -> bool:
        """Whether still-firing marks need their shading stretched (now is catching up)."""
        return self._open_end_s is not None and self._clock() > self._open_end_s - 3600

    def _refresh_open_marks(self) -> None:
        if self._open_end_due():
            self.set_alert_marks(self._marks)

    def _round_up(self, t: float) -> float:
        w = self._window_s
        step = 60 if w >= 300 else 10 if w >= 60 else 1
        return float(math.ceil(t / step) * step)

    def _live_end(self) -> float:
        frame = self._live_frame
        if frame is not None and frame.t.shape[0]:
            return float(frame.t[-1]) + 1.0
        return float(math.floor(self._clock()))

    def _show_history(self, end: float) -> None:
        end = float(round(end))
        entering = self._history is None
        self._history = HistoryRange(end - self._window_s, end)
        self._history_problem = ""
        self.set_crosshair(None)  # the mouse is over another second now
        self.throughput_plot.setXRange(end - self._window_s, end, padding=0)
        self._update_history_controls()
        if entering:
            self.history_mode_changed.emit(True)
        self.history_requested.emit(end - self._window_s, end)

    def _update_history_controls(self) -> None:
        history = self._history
        self.forward_action.setEnabled(history is not None)
        self.live_action.setEnabled(history is not None)
        self.live_action.setVisible(history is not None)  # the label says "Live" already
        label = self.history_label
        if history is None:
            mode, text = "live", "● Live"
            tip = "The plots follow the live flow; ◀ (Alt+Left, PgUp) looks back"
        else:
            span = format_range(history.from_s, history.to_s, self._clock())
            if self._history_problem:
                mode = "unavailable"
                problem = self._history_problem
                if len(problem) > _MAX_MESSAGE_CHARS:
                    problem = problem[: _MAX_MESSAGE_CHARS - 1] + "…"
                text = f"History unavailable: {problem}"
            else:
                mode, text = "history", f"History {span}"
            tip = (
                f"Showing the flow history {span}"
                f"{' (' + self._history_problem + ')' if self._history_problem else ''};"
                " End returns to live"
            )
        if self._history_loading:
            tip += " (reading the flow history…)"
        label.setText(text)
        label.setToolTip(tip)
        if label.property("mode") != mode:
            label.setProperty("mode", mode)
            label.style().unpolish(label)
            label.style().polish(label)
        self.history_busy.setVisible(self._history_loading)
        self.paused_badge.setVisible(self._paused and history is None)
        if history is None:
            self.history_badge.hide()
        else:
            badge = "History · loading…" if self._history_loading else f"History · {span}"
            self.history_badge.setText(badge)
            self.history_badge.setToolTip(tip)
            self.history_badge.show()
        self._place_overlays()

    def _draw(self, frame: FlowFrame, x_range: tuple[float, float] | None = None) -> None:
        """One ``setData`` per curve; the time axis on ``x_range`` or the frame's span."""
        self._frame = frame
        t = frame.t
        self._statuses.show(frame.status_names, frame.status_counts, t)
        self.dead_letter_curve.setData(t, frame.dead_letters, skipFiniteCheck=True)
        self._queues.show(frame.queue_names, frame.queue_depths, t)
        for row, p in enumerate(LATENCY_PERCENTILES):
            self._latency_curves[p].setData(t, frame.latency_ms[row], skipFiniteCheck=True)
        if x_range is not None:
            self.throughput_plot.setXRange(*x_range, padding=0)
        elif t.shape[0]:
            start = float(t[0])
            end = max(float(t[-1]), start + 1.0)
            self.throughput_plot.setXRange(start, end, padding=0)
        self.waiting_label.hide()
        if self._crosshair_t is not None:
            self._update_readout()

    @Slot(bool)
    def set_paused(self, paused: bool) -> None:
        """Show or hide the PAUSED badge (the caller stops sending frames).

        History is frozen anyway: the badge waits until the plots are live again.
        """
        self._paused = paused
        self.paused_badge.setVisible(paused and self._history is None)
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
        for mark in self._marks_at(float(frame.t[i])):
            rows.append(("Alerts", mark.rule, mark.severity, mark_color(mark.severity)))
        return rows

    def _marks_at(self, t: float) -> list[AlertMark]:
        """The alert marks whose span holds second ``t`` (still-firing ones reach now)."""
        return [
            m
            for m in self._marks
            if m.start_s <= t + 0.5 and (m.end_s is None or t - 0.5 <= m.end_s)
        ]

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
        self.history_badge.adjustSize()
        self.history_badge.move(box.right() - self.history_badge.width(), 4)
        self.waiting_label.adjustSize()
        self.waiting_label.move(
            box.center().x() - self.waiting_label.width() // 2,
            box.center().y() - self.waiting_label.height() // 2,
        )
