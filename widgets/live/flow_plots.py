"""Flow plots: throughput, dead letters, queue depths and latency on one time axis.

Live by default; ``◀``/``▶``/``Live`` (``history_controls``) step back through
the flow history one window at a time. Alert spans are shaded on every plot.
"""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, QRect, QRectF, Qt, Signal, Slot
from PySide6.QtGui import QPolygon, QShowEvent
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from services.alerts.model import AlertMark
from services.flow.types import LATENCY_PERCENTILES, FlowFrame
from services.time_range import zone_name
from widgets.common import colors
from widgets.live.crosshair_readout import CrosshairReadout, ReadoutEntry, readout_entries
from widgets.live.history_controls import HistoryControls, HistoryRange, format_range
from widgets.live.plot_items import (
    AlertMarkItems,
    SeriesGroup,
    add_crosshair_line,
    add_plot,
    make_curve,
    set_curve_data,
)

_DEFAULT_SPAN_S = 300
_OPEN_END_AHEAD_S = 6 * 3600.0  # a still-firing alert's shading reaches this far past now
_MAX_LIVE_STEP_S = 10  # live frames are drawn at least this often, however long the window


class FlowPlots(QWidget):
    """Four stacked plots sharing one linked time axis, with a crosshair read-out.

    Curves are created once per series and then updated with one ``setData``
    per curve per frame; NaN samples show as gaps. Each frame sets the time
    axis to the frame's span; between frames (and while the caller holds them
    back, i.e. paused) the operator can pan and zoom the time axis, and the
    crosshair reads out every series at the second under the mouse.

    History (the actions of ``history_controls``, whose buttons and range
    label go in the caller's toolbar): ``back_action`` (Alt+Left, PgUp) shows
    the window before the one on screen and emits ``history_requested(from_s,
    to_s)``; the caller answers with ``show_history_frame``. Live frames
    (``show_frame``) are kept but not drawn while in history; ``forward_action``
    (Alt+Right, PgDown) steps forward and returns to live past now;
    ``live_action`` (End) returns at once. ``set_window_seconds`` in history
    keeps the end and asks again. ``history_mode_changed`` tells the caller when
    history starts and ends. The shortcuts work only while the plots are on screen.

    Alert marks (``set_alert_marks``) shade each alert's span on every plot,
    with a line at the firing; the read-out lists the alerts at the crosshair.

    Nothing is drawn that cannot be seen or did not change: a live frame that
    arrives while the plots are hidden (another page, a minimised or hidden
    window) is kept and drawn when they show again; a frame equal to the one on
    screen is not drawn again; and a live frame whose time axis moved less than
    a pixel since the last one drawn waits (a 1 h window moves about a pixel in
    three seconds), though never more than ``_MAX_LIVE_STEP_S``. A curve that
    shows nothing and still would (every value NaN) is not given the new frame,
    and curves are clipped and downsampled only when a frame holds more seconds
    than the plots have pixels.
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
        self._mark_items: list[AlertMarkItems] = []
        self._open_end_s: float | None = None
        self._dense = True  # as ``add_plot`` sets the plots up

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground(colors.PLOT_BG)
        self.graphics.ci.setContentsMargins(6, 4, 6, 4)
        self.graphics.ci.setSpacing(0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)

        self.throughput_plot, self.throughput_legend = add_plot(
            self.graphics, 0, "Throughput by status", "events/s"
        )
        self.dead_letter_plot, self.dead_letter_legend = add_plot(
            self.graphics, 1, "Dead-letter arrivals", "msgs/s"
        )
        self.queue_plot, self.queue_legend = add_plot(self.graphics, 2, "Queue depth", "messages")
        self.latency_plot, self.latency_legend = add_plot(
            self.graphics, 3, "End-to-end latency", "ms"
        )
        self.plots: tuple[pg.PlotItem, ...] = (
            self.throughput_plot,
            self.dead_letter_plot,
            self.queue_plot,
            self.latency_plot,
        )
        self._statuses = SeriesGroup(
            self.throughput_plot, self.throughput_legend, colors.status_color
        )
        self._queues = SeriesGroup(self.queue_plot, self.queue_legend, colors.queue_color)
        bottom = self.latency_plot.getAxis("bottom")
        bottom.setStyle(showValues=True)
        self._zone = ""
        self._label_zone(self._clock())

        self.dead_letter_curve = make_curve(
            self.dead_letter_plot, None, "dead letters", colors.DEAD_LETTER_COLOR, fill=True
        )
        self._latency_curves: dict[int, pg.PlotDataItem] = {
            p: make_curve(
                self.latency_plot,
                self.latency_legend,
                f"p{p}",
                colors.LATENCY_COLORS.get(p, colors.TEXT),
            )
            for p in LATENCY_PERCENTILES
        }
        self._crosshair_lines = [add_crosshair_line(plot) for plot in self.plots]

        self.readout = CrosshairReadout(self.graphics)
        self.paused_badge = self._overlay_label(
            "PausedBadge", "Plots frozen · counters live · hover to inspect"
        )
        self.waiting_label = self._overlay_label("WaitingLabel", "Waiting for the first frame…")
        self.waiting_label.show()
        self.history_badge = self._overlay_label("HistoryBadge", "History")
        self.history_controls = HistoryControls(self)

        now = self._clock()
        self.throughput_plot.setXRange(now - _DEFAULT_SPAN_S, now, padding=0)
        for plot in self.plots:  # a sensible empty scale until data arrives
            plot.getViewBox().setRange(yRange=(0.0, 10.0), padding=0, disableAutoRange=False)
        self._connect_signals()
        self._update_history_controls()

    # -- construction -------------------------------------------------------------------

    def _overlay_label(self, name: str, text: str) -> QLabel:
        """A label over the plots; its look is ``QWidget#FlowPlots QLabel#<name>`` in style.qss."""
        label = QLabel(text, self.graphics)
        label.setObjectName(name)
        label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        label.adjustSize()
        label.hide()
        return label

    def _connect_signals(self) -> None:
        self.graphics.scene().sigMouseMoved.connect(self.on_mouse_moved)
        self.throughput_plot.getViewBox().sigResized.connect(self._place_overlays)
        self.graphics.installEventFilter(self)
        self.history_controls.back_action.triggered.connect(self.go_back)
        self.history_controls.forward_action.triggered.connect(self.go_forward)
        self.history_controls.live_action.triggered.connect(self.go_live)

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
        """Put one live frame on screen (kept, not drawn, while showing history, while
        the plots cannot be seen, or while it would change nothing visible)."""
        self._live_frame = frame
        if self._history is not None or not self.on_screen:
            return
        if self._worth_drawing(frame):
            self._draw(frame)
        self._refresh_open_marks()

    @property
    def on_screen(self) -> bool:
        """Whether the plots can be seen: shown, on the page shown, window not minimised."""
        return self.isVisible() and not self.window().isMinimized()

    def showEvent(self, event: QShowEvent) -> None:
        """Shown again (page switched back, window restored): draw the newest live frame."""
        super().showEvent(event)
        frame = self._live_frame
        stale = frame is not None and frame is not self._frame
        if stale and self._history is None and self.on_screen and not self._paused:
            assert frame is not None
            self._draw(frame)
            self._refresh_open_marks()

    def _worth_drawing(self, frame: FlowFrame) -> bool:
        """Whether ``frame`` differs visibly from the live frame on screen."""
        drawn = self._frame
        if drawn is None or drawn.seconds != frame.seconds or not frame.seconds:
            return True
        if (drawn.status_names, drawn.queue_names) != (frame.status_names, frame.queue_names):
            return True
        moved = float(frame.t[-1] - drawn.t[-1])
        if moved < 0:
            return True
        width = max(1, self.throughput_plot.getViewBox().width())
        if moved and moved < min(_MAX_LIVE_STEP_S, frame.seconds / width):
            return False  # the axis would move less than a pixel
        return moved > 0 or not _same_data(drawn, frame)

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
            self._mark_items.append(AlertMarkItems(self.plots))
        open_end = self._clock() + _OPEN_END_AHEAD_S
        self._open_end_s = open_end if any(m.end_s is None for m in marks) else None
        # One label for a run of marks of the same name (new failure groups come in
        # bursts): the next is labelled again an eighth of the window later.
        labelled_until: dict[str, float] = {}
        for k, (items, mark) in enumerate(zip(self._mark_items, marks, strict=False)):
            labelled = mark.start_s >= labelled_until.get(mark.label, -math.inf)
            if labelled:
                labelled_until[mark.label] = mark.start_s + self._window_s / 8
            # labels stagger in three rows
            items.show(mark, open_end, label_at=0.96 - 0.16 * (k % 3), labelled=labelled)
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
        tip = self.history_controls.show_state(
            history,
            loading=self._history_loading,
            problem=self._history_problem,
            now=self._clock(),
        )
        self.paused_badge.setVisible(self._paused and history is None)
        if history is None:
            self.history_badge.hide()
        else:
            span = format_range(history.from_s, history.to_s, self._clock())
            badge = "History · loading…" if self._history_loading else f"History · {span}"
            self.history_badge.setText(badge)
            self.history_badge.setToolTip(tip)
            self.history_badge.show()
        self._place_overlays()

    def _label_zone(self, t: float) -> None:
        """Name the time axis's zone (it changes with daylight saving time)."""
        zone = zone_name(datetime.datetime.fromtimestamp(t))
        if zone != self._zone:
            self._zone = zone
            label = f"local time ({zone})"
            self.latency_plot.getAxis("bottom").setLabel(label, color=colors.TEXT_MUTED)

    def _draw(self, frame: FlowFrame, x_range: tuple[float, float] | None = None) -> None:
        """One ``setData`` per curve; the time axis on ``x_range`` or the frame's span."""
        self._frame = frame
        t = frame.t
        if t.shape[0]:
            self._label_zone(float(t[-1]))
        self._thin_out_when_dense(t.shape[0])
        self._statuses.show(frame.status_names, frame.status_counts, t)
        set_curve_data(self.dead_letter_curve, t, frame.dead_letters)
        self._queues.show(frame.queue_names, frame.queue_depths, t)
        for row, p in enumerate(LATENCY_PERCENTILES):
            set_curve_data(self._latency_curves[p], t, frame.latency_ms[row])
        if x_range is not None:
            self.throughput_plot.setXRange(*x_range, padding=0)
        elif t.shape[0]:
            start = float(t[0])
            end = max(float(t[-1]), start + 1.0)
            self.throughput_plot.setXRange(start, end, padding=0)
        # Move the views now: pyqtgraph would do it when it paints, and a move made
        # while painting asks for another repaint of every plot.
        self.graphics.scene().prepareForPaint()
        self.waiting_label.hide()
        if self._crosshair_t is not None:
            self._update_readout()

    def _thin_out_when_dense(self, seconds: int) -> None:
        """Clip curves to the view and downsample them only when the frame holds more
        seconds than the plots have pixels: otherwise each move of the time axis
        would rebuild every curve's data a second time, for nothing."""
        dense = seconds > self.throughput_plot.getViewBox().width()
        if dense != self._dense:
            self._dense = dense
            for plot in self.plots:
                plot.setClipToView(dense)
                plot.setDownsampling(auto=dense)

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

    def _readout_entries(self) -> list[ReadoutEntry]:
        """(group, series, formatted value, colour) for every series at the crosshair."""
        frame = self._frame
        if self._crosshair_t is None or frame is None:
            return []
        i = self._index_at(self._crosshair_t)
        if i is None:
            return []
        return readout_entries(frame, i, self._statuses.colours, self._queues.colours, self._marks)

    def _update_readout(self) -> None:
        if self._crosshair_t is None:
            return
        entries = self._readout_entries()
        self.readout.show_entries(self._crosshair_t, entries, self._frame is not None)
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
        self.readout.place(cursor, self.graphics.rect(), self._plot_area().right())

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


def _same_data(a: FlowFrame, b: FlowFrame) -> bool:
    """Whether two frames of the same seconds hold the same numbers (NaN equal to NaN)."""
    pairs = (
        (a.t, b.t),
        (a.status_counts, b.status_counts),
        (a.dead_letters, b.dead_letters),
        (a.latency_ms, b.latency_ms),
        (a.queue_depths, b.queue_depths),
    )
    return all(x.shape == y.shape and np.array_equal(x, y, equal_nan=True) for x, y in pairs)
