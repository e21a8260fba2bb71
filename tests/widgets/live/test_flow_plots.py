"""FlowPlots: exact data into curves, stable colours, NaN gaps, crosshair read-out."""

from __future__ import annotations

import itertools

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainterPath

from services.alerts.model import AlertMark
from services.flow.history import SecondRow, frame_from_rows
from services.flow.types import LATENCY_PERCENTILES
from tests.helpers.frames import make_frame, realistic_frame
from widgets.common import colors
from widgets.live.flow_plots import FlowPlots

T0 = 1_700_000_000.0
T = [T0 + i for i in range(6)]


@pytest.fixture
def plots(qtbot):
    widget = FlowPlots()
    qtbot.addWidget(widget)
    widget.resize(1000, 640)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def small_frame(**overrides):
    args = {
        "statuses": {"authorized": [5, 6, 7, 8, 9, 10], "failed": [0, 1, 0, 2, 0, 3]},
        "dead_letters": [0, 0, 1, 0, 2, 0],
        "latency": [
            [10, 11, np.nan, 12, 13, 14],
            [40, 41, np.nan, 42, 43, 44],
            [90, 91, np.nan, 92, 93, 94],
        ],
        "queues": {"payments.in": [3, 4, 5, np.nan, 7, 8], "payments.dlq": [0, 0, 1, 1, 3, 3]},
    }
    args.update(overrides)
    t = args.pop("t", T)
    return make_frame(t, **args)


def original(curve):
    """The data a curve was given (empty arrays when it was given none)."""
    x, y = curve.getOriginalDataset()
    if x is None:
        return np.array([]), np.array([])
    return np.asarray(x), np.asarray(y)


def test_show_frame_puts_exactly_the_numbers_into_the_curves(plots):
    frame = small_frame()
    plots.show_frame(frame)

    for k, name in enumerate(frame.status_names):
        x, y = original(plots.status_curve(name))
        np.testing.assert_array_equal(x, frame.t)
        np.testing.assert_array_equal(y, frame.status_counts[k])
    np.testing.assert_array_equal(original(plots.dead_letter_curve)[1], frame.dead_letters)
    for k, name in enumerate(frame.queue_names):
        np.testing.assert_array_equal(original(plots.queue_curve(name))[1], frame.queue_depths[k])
    for k, p in enumerate(LATENCY_PERCENTILES):
        np.testing.assert_array_equal(original(plots.latency_curve(p))[1], frame.latency_ms[k])
    # what is on screen (after clipping / downsampling) is the same for a short frame
    x, y = plots.status_curve("authorized").getData()
    np.testing.assert_array_equal(x, frame.t)
    np.testing.assert_array_equal(y, frame.status_counts[0])


def test_each_curve_gets_one_setdata_per_frame(plots, monkeypatch):
    plots.show_frame(small_frame())  # creates the curves
    calls = []
    real = pg.PlotDataItem.setData

    def counting(self, *args, **kwargs):
        calls.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pg.PlotDataItem, "setData", counting)
    plots.show_frame(small_frame(dead_letters=[0, 0, 1, 0, 2, 1]))  # one new number

    curves = 2 + 1 + 2 + len(LATENCY_PERCENTILES)
    assert len(calls) == curves
    assert len({id(c) for c in calls}) == curves


def test_a_new_status_gets_a_new_curve_and_colours_stay(plots):
    plots.show_frame(small_frame())
    authorized = plots.status_curve("authorized")
    failed = plots.status_curve("failed")
    before = {n: plots.status_curve(n).opts["pen"].color().name() for n in ("authorized", "failed")}

    statuses = {
        "mystery": [1, 1, 1, 1, 1, 1],
        "failed": [0, 0, 0, 0, 0, 1],
        "authorized": [1, 2, 3, 4, 5, 6],
    }
    plots.show_frame(small_frame(statuses=statuses))

    assert plots.status_curve("authorized") is authorized
    assert plots.status_curve("failed") is failed
    after = {n: plots.status_curve(n).opts["pen"].color().name() for n in ("authorized", "failed")}
    assert after == before
    assert before["failed"] == colors.RED
    mystery = plots.status_curve("mystery")
    assert mystery is not None
    assert mystery.opts["pen"].color().name() not in before.values()
    np.testing.assert_array_equal(original(mystery)[1], [1, 1, 1, 1, 1, 1])
    assert len(plots.throughput_legend.items) == 3


def test_a_status_that_goes_away_is_emptied_and_comes_back_in_its_colour(plots):
    plots.show_frame(small_frame())
    colour = plots.status_curve("failed").opts["pen"].color().name()

    plots.show_frame(small_frame(statuses={"authorized": [1, 1, 1, 1, 1, 1]}))
    assert original(plots.status_curve("failed"))[1].size == 0
    assert len(plots.throughput_legend.items) == 1

    plots.show_frame(small_frame())
    assert plots.status_curve("failed").opts["pen"].color().name() == colour
    assert len(plots.throughput_legend.items) == 2


def test_status_colours_are_the_same_in_every_widget(qtbot):
    first, second = FlowPlots(), FlowPlots()
    for widget in (first, second):
        qtbot.addWidget(widget)
        widget.show()  # hidden plots draw nothing
    first.show_frame(small_frame())
    reordered = {"failed": [0] * 6, "authorized": [0] * 6}
    second.show_frame(small_frame(statuses=reordered))
    for name in ("authorized", "failed"):
        assert (
            first.status_curve(name).opts["pen"].color()
            == second.status_curve(name).opts["pen"].color()
        )


def _subpaths(path: QPainterPath) -> int:
    """The runs of the path that draw a line (a bare move, e.g. onto a gap, draws nothing)."""
    types = [path.elementAt(i).type for i in range(path.elementCount())]
    move, line = QPainterPath.ElementType.MoveToElement, QPainterPath.ElementType.LineToElement
    return sum(1 for a, b in itertools.pairwise(types) if a == move and b == line)


def test_nan_shows_as_a_gap(plots):
    plots.show_frame(small_frame())
    latency = plots.latency_curve(LATENCY_PERCENTILES[0])
    assert latency.opts["connect"] == "finite"
    path = latency.curve.getPath()
    assert _subpaths(path) == 2  # [10, 11] and [12, 13, 14]
    points = [path.elementAt(i) for i in range(path.elementCount())]
    assert all(np.isfinite(e.x) and np.isfinite(e.y) for e in points)

    queue = plots.queue_curve("payments.in")
    assert _subpaths(queue.curve.getPath()) == 2


def test_x_range_follows_the_frame(plots):
    plots.show_frame(small_frame())
    for plot in plots.plots:
        left, right = plot.getViewBox().viewRange()[0]
        assert left == pytest.approx(T[0])
        assert right == pytest.approx(T[-1])


def test_the_crosshair_snaps_to_a_second_and_reads_out_every_series(plots):
    frame = small_frame()
    plots.show_frame(frame)

    plots.set_crosshair(T[3] + 0.3)

    assert plots.crosshair_time == T[3]
    assert all(line.isVisible() and line.value() == T[3] for line in plots._crosshair_lines)
    assert plots.readout.isVisible()
    rows = plots.readout_rows()
    assert ("Throughput", "authorized", "8") in rows
    assert ("Throughput", "failed", "2") in rows
    assert ("Dead letters", "dead letters", "0") in rows
    assert ("Queue depth", "payments.in", "—") in rows  # NaN: not polled that second
    assert ("Queue depth", "payments.dlq", "1") in rows
    assert ("Latency", "p99", "92 ms") in rows
    assert len(rows) == 2 + 1 + 2 + len(LATENCY_PERCENTILES)
    text = plots.readout.text()
    assert "authorized" in text
    assert "92 ms" in text

    plots.set_crosshair(None)
    assert not plots.readout.isVisible()
    assert not any(line.isVisible() for line in plots._crosshair_lines)


def test_the_crosshair_follows_the_mouse_over_any_plot(plots):
    plots.show_frame(small_frame())
    box = plots.latency_plot.getViewBox()
    x = box.mapViewToScene(QPointF(T[2], 0)).x()
    inside = QPointF(x, box.sceneBoundingRect().center().y())

    plots.graphics.scene().sigMouseMoved.emit(inside)
    assert plots.crosshair_time == T[2]
    assert plots.readout.isVisible()
    assert plots.graphics.rect().contains(plots.readout.geometry())

    plots.graphics.scene().sigMouseMoved.emit(QPointF(-50, -50))
    assert plots.crosshair_time is None


def test_paused_badge(plots):
    assert not plots.paused_badge.isVisible()
    plots.set_paused(True)
    assert plots.paused_badge.isVisible()
    plots.set_paused(False)
    assert not plots.paused_badge.isVisible()


def test_before_any_frame_the_plots_wait_with_axes(plots):
    assert plots.frame is None
    assert plots.waiting_label.isVisible()
    assert plots.status_curve("authorized") is None
    assert plots.latency_plot.getAxis("bottom").isVisible()
    plots.set_crosshair(T0)  # no data: shows the time only, does not fail
    assert plots.readout_rows() == []
    plots.show_frame(small_frame())
    assert not plots.waiting_label.isVisible()


def test_an_empty_frame_is_shown_without_complaint(plots):
    empty = make_frame([], {"authorized": []}, queues={"q": []}, latency=[[], [], []])
    plots.show_frame(empty)
    assert original(plots.status_curve("authorized"))[1].size == 0


def test_a_realistic_hour_renders(plots):
    frame = realistic_frame(3600)
    plots.show_frame(frame)
    plots.grab()
    x, y = original(plots.queue_curve("payments.dlq"))
    assert x.shape == (3600,)
    np.testing.assert_array_equal(y, frame.queue_depths[3])


def test_a_real_mouse_move_drives_the_crosshair(plots, qtbot):
    plots.show_frame(small_frame())
    box = plots.throughput_plot.getViewBox()
    scene_pos = QPointF(
        box.mapViewToScene(QPointF(T[4], 0)).x(), box.sceneBoundingRect().center().y()
    )
    qtbot.mouseMove(plots.graphics.viewport(), plots.graphics.mapFromScene(scene_pos))
    qtbot.waitUntil(lambda: plots.crosshair_time == T[4])
    assert ("Throughput", "authorized", "9") in plots.readout_rows()


# -- alert marks -----------------------------------------------------------------------

CLOCK_NOW = T0 + 10


@pytest.fixture
def clocked(qtbot):
    """Plots whose clock stands still at ``CLOCK_NOW``."""
    widget = FlowPlots(clock=lambda: CLOCK_NOW)
    qtbot.addWidget(widget)
    widget.resize(1000, 640)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_alert_marks_shade_every_plot_and_are_replaced(clocked):
    clocked.show_frame(small_frame())
    marks = [
        AlertMark(T[1], T[3], "failure_rate", "critical"),
        AlertMark(T[4], None, "queue_depth:payments.dlq", "warning"),
    ]
    clocked.set_alert_marks(marks)

    assert clocked.alert_marks == tuple(marks)
    for plot in clocked.plots:
        items = clocked.alert_mark_items(plot)
        assert len(items) == 2
        (closed, closed_line), (open_, open_line) = items
        assert all(i in plot.items for i in (closed, closed_line, open_, open_line))
        assert closed.getRegion() == pytest.approx((T[1], T[3]))
        assert open_.getRegion()[0] == pytest.approx(T[4])
        assert open_.getRegion()[1] > CLOCK_NOW  # still firing: to the right edge and on
        assert closed_line.value() == pytest.approx(T[1])
        assert not closed.movable and not closed_line.movable
        assert closed.brush.color().name() == QColor(colors.RED).name()
        assert open_.brush.color().name() == QColor(colors.AMBER).name()
        assert 0 < closed.brush.color().alpha() < 80  # translucent
    label = clocked.alert_mark_items(clocked.throughput_plot)[0][1].label
    assert label.textItem.toPlainText() == "failure_rate"
    label = clocked.alert_mark_items(clocked.throughput_plot)[1][1].label
    assert label.textItem.toPlainText() == "queue_depth:payments.dlq"  # its queue matters

    # a new failure group's digest means nothing on a plot: its label is the kind alone
    clocked.set_alert_marks([AlertMark(T[2], T[2], "new_failure_group:1f08c3a2e9", "warning")])
    label = clocked.alert_mark_items(clocked.throughput_plot)[0][1].label
    assert label.textItem.toPlainText() == "new failure group"
    line = clocked.alert_mark_items(clocked.throughput_plot)[0][1]
    assert "new_failure_group:1f08c3a2e9" in line.toolTip()  # the tooltip names the group
    # a burst of them: one label for the run, every line and tooltip kept
    burst = [AlertMark(T[2] + i, T[2] + i, f"new_failure_group:{i:x}", "warning") for i in range(3)]
    clocked.set_alert_marks(burst)
    items = clocked.alert_mark_items(clocked.throughput_plot)
    assert [line.label.isVisible() for _region, line in items] == [True, False, False]
    assert items[0][1].label.textItem.toPlainText() == "new failure group"
    assert "new_failure_group:2" in items[2][1].toolTip()
    clocked.set_alert_marks([burst[0], AlertMark(T[4], T[5], "latency_p99", "warning")])
    (_r0, _first), (_r1, second) = clocked.alert_mark_items(clocked.throughput_plot)
    assert second.label.isVisible()  # shown again, with its own name
    assert second.label.textItem.toPlainText() == "latency_p99"
    clocked.set_alert_marks(marks)

    item_count = sum(len(plot.items) for plot in clocked.plots)
    clocked.set_alert_marks([AlertMark(T[2], T[5], "latency_p99", "warning")])
    for plot in clocked.plots:
        ((region, _line),) = clocked.alert_mark_items(plot)
        assert region.getRegion() == pytest.approx((T[2], T[5]))
    clocked.set_alert_marks(marks)  # items are reused, never added again
    clocked.set_alert_marks(marks)
    assert sum(len(plot.items) for plot in clocked.plots) == item_count

    clocked.set_alert_marks([])
    assert all(clocked.alert_mark_items(plot) == [] for plot in clocked.plots)


def test_the_readout_lists_the_alerts_at_the_crosshair(clocked):
    clocked.show_frame(small_frame())
    clocked.set_alert_marks(
        [
            AlertMark(T[1], T[2], "failure_rate", "critical"),
            AlertMark(T[4], None, "dead_letter_rate", "warning"),
        ]
    )
    clocked.set_crosshair(T[1])
    assert ("Alerts", "failure_rate", "critical") in clocked.readout_rows()
    assert not any(
        row[0] == "Alerts" and row[1] == "dead_letter_rate" for row in clocked.readout_rows()
    )
    clocked.set_crosshair(T[5])
    assert ("Alerts", "dead_letter_rate", "warning") in clocked.readout_rows()
    assert "dead_letter_rate" in clocked.readout.text()


# -- history ---------------------------------------------------------------------------

END = 1_700_000_040.0  # a whole minute
NOW_S = END + 0.4


def live_frame(window_s, value=5.0, end=END):
    t = np.arange(end - window_s, end, dtype=np.float64)
    return make_frame(t, {"authorized": np.full(t.shape, value)})


@pytest.fixture
def history_plots(qtbot):
    widget = FlowPlots(clock=lambda: NOW_S)
    qtbot.addWidget(widget)
    widget.resize(1000, 640)
    widget.show()
    qtbot.waitExposed(widget)
    widget.activateWindow()
    qtbot.waitUntil(widget.isActiveWindow)
    return widget


def collect(plots):
    requested = []
    plots.history_requested.connect(lambda a, b: requested.append((a, b)))
    return requested


@pytest.mark.parametrize("w", [60, 300, 900, 3600])
def test_back_and_forward_step_one_window_at_a_time(history_plots, w):
    plots = history_plots
    plots.set_window_seconds(w)
    plots.show_frame(live_frame(w))
    requested = collect(plots)
    modes = []
    plots.history_mode_changed.connect(modes.append)
    assert not plots.history_controls.forward_action.isEnabled()

    plots.history_controls.back_action.trigger()
    plots.history_controls.back_action.trigger()
    assert requested == [(END - 2 * w, END - w), (END - 3 * w, END - 2 * w)]
    assert not plots.live
    assert modes == [True]
    assert plots.history_controls.forward_action.isEnabled()
    assert plots.throughput_plot.getViewBox().viewRange()[0] == pytest.approx(
        [END - 3 * w, END - 2 * w]
    )

    plots.history_controls.forward_action.trigger()
    assert requested[-1] == (END - 2 * w, END - w)
    plots.history_controls.forward_action.trigger()  # would reach now: live again
    assert plots.live
    assert modes == [True, False]
    assert len(requested) == 3
    assert plots.history_controls.label.text() == "● Live"


def test_back_from_live_rounds_the_end_up_to_a_minute(history_plots):
    plots = history_plots
    plots.show_frame(live_frame(300, end=END + 17))
    requested = collect(plots)
    plots.history_controls.back_action.trigger()
    # the live view is [END - 283, END + 17): back ends at END - 283 rounded up
    assert requested == [(END - 540, END - 240)]  # overlaps it by 43 s, leaves no gap


def test_live_frames_wait_while_history_is_shown(history_plots):
    plots = history_plots
    plots.show_frame(live_frame(300, value=5.0))
    requested = collect(plots)
    plots.history_controls.back_action.trigger()
    (start, end) = requested[0]

    plots.show_frame(live_frame(300, value=9.0))  # ignored while in history
    np.testing.assert_array_equal(original(plots.status_curve("authorized"))[1], [5.0] * 300)

    history = live_frame(300, value=2.0, end=end)
    plots.show_history_frame(history)
    assert plots.frame is history
    np.testing.assert_array_equal(original(plots.status_curve("authorized"))[1], [2.0] * 300)
    assert plots.throughput_plot.getViewBox().viewRange()[0] == pytest.approx([start, end])
    plots.set_crosshair(start + 10)  # the read-out works in history too
    assert ("Throughput", "authorized", "2") in plots.readout_rows()

    plots.show_history_frame(live_frame(300, value=7.0, end=end - 3000))  # a stale answer
    assert plots.frame is history

    plots.history_controls.live_action.trigger()
    assert plots.live
    np.testing.assert_array_equal(original(plots.status_curve("authorized"))[1], [9.0] * 300)
    plots.show_history_frame(history)  # too late: live again
    assert plots.frame is not history


def test_the_keys_step_through_history(history_plots, qtbot):
    plots = history_plots
    plots.show_frame(live_frame(300))
    requested = collect(plots)
    qtbot.keyClick(plots, Qt.Key.Key_PageUp)
    qtbot.keyClick(plots, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    assert requested == [(END - 600, END - 300), (END - 900, END - 600)]
    qtbot.keyClick(plots, Qt.Key.Key_PageDown)
    qtbot.keyClick(plots, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    assert plots.live
    qtbot.keyClick(plots, Qt.Key.Key_PageUp)
    qtbot.keyClick(plots, Qt.Key.Key_End)
    assert plots.live
    assert requested[-1] == (END - 600, END - 300)


def test_a_new_window_in_history_keeps_the_end(history_plots):
    plots = history_plots
    plots.show_frame(live_frame(300))
    requested = collect(plots)
    plots.history_controls.back_action.trigger()
    plots.set_window_seconds(3600)
    assert requested == [(END - 600, END - 300), (END - 300 - 3600, END - 300)]
    assert plots.history_range.to_s == END - 300
    plots.history_controls.back_action.trigger()
    assert requested[-1] == (END - 300 - 7200, END - 300 - 3600)


def test_loading_and_unavailable_show_in_the_label(history_plots):
    plots = history_plots
    assert plots.history_controls.label.text() == "● Live"
    assert plots.history_controls.live_button.isHidden()
    plots.history_loading(True)  # ignored while live
    assert plots.history_controls.busy.isHidden()

    plots.show_frame(live_frame(300))
    plots.history_controls.back_action.trigger()
    assert plots.history_controls.label.text().startswith("History ")
    assert " – " in plots.history_controls.label.text()
    assert not plots.history_controls.live_button.isHidden()
    assert plots.history_badge.isVisible()
    plots.history_loading(True)
    assert not plots.history_controls.busy.isHidden()
    assert "reading" in plots.history_controls.label.toolTip()
    assert plots.history_badge.text() == "History · loading…"

    plots.history_unavailable("Redis unreachable: connection refused")
    assert plots.history_controls.busy.isHidden()
    assert plots.history_controls.label.text() == (
        "History unavailable: Redis unreachable: connection refused"
    )
    assert plots.history_controls.label.property("mode") == "unavailable"

    plots.go_live()
    assert plots.history_controls.label.text() == "● Live"
    assert not plots.history_badge.isVisible()


def test_an_empty_history_says_so(history_plots):
    plots = history_plots
    plots.show_frame(live_frame(300))
    requested = collect(plots)
    plots.history_controls.back_action.trigger()
    start, end = requested[0]
    plots.show_history_frame(make_frame(np.arange(start, end), {}))
    assert plots.waiting_label.isVisible()
    assert "No flow history" in plots.waiting_label.text()
    plots.go_live()
    assert not plots.waiting_label.isVisible()


def test_show_history_at_centres_a_moment(history_plots):
    plots = history_plots
    plots.show_frame(live_frame(300))
    requested = collect(plots)
    plots.show_history_at(END - 3000)  # ends 100 s later, rounded up to a minute
    assert requested == [(END - 3180, END - 2880)]
    plots.show_history_at(END - 30)  # recent: live shows it
    assert plots.live


def test_history_nobody_recorded_is_a_gap_not_zero_traffic(history_plots, qtbot):
    plots = history_plots
    plots.show_frame(live_frame(300))
    requested = collect(plots)
    qtbot.mouseClick(plots.history_controls.back_button, Qt.MouseButton.LeftButton)
    start, end = (int(x) for x in requested[0])
    # Recorded except for 100 s in the middle (the recorder was down).
    rows = [
        SecondRow(s, {"captured": 5}, 1, {"payments.dlq": 3}, (10.0, 20.0, 30.0))
        for s in range(start, end)
        if not start + 100 <= s < start + 200
    ]
    plots.show_history_frame(frame_from_rows(rows, start, end))
    curves = [plots.status_curve("captured"), plots.dead_letter_curve]
    curves += [plots.queue_curve("payments.dlq"), plots.latency_curve(99)]
    for curve in curves:
        assert curve is not None
        assert _subpaths(curve.curve.getPath()) == 2, curve.name()
    plots.grab().save("/tmp/flow_plots_history_gap.png")


def test_the_y_axes_never_run_below_zero(plots):
    n = 60
    plots.show_frame(
        make_frame(
            [T0 + i for i in range(n)],
            {"captured": [0] * n},
            dead_letters=[0] * n,
            latency=[[np.nan] * n] * 3,
            queues={"payments.dlq": [0] * n},
        )
    )
    for plot in plots.plots:
        assert plot.getViewBox().viewRange()[1][0] >= 0.0
