"""FlowPlots: exact data into curves, stable colours, NaN gaps, crosshair read-out."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QPainterPath

from services.flow_types import LATENCY_PERCENTILES
from tests.widgets.frames import make_frame, realistic_frame
from widgets import colors
from widgets.flow_plots import FlowPlots

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
    plots.show_frame(small_frame())

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
    qtbot.addWidget(first)
    qtbot.addWidget(second)
    first.show_frame(small_frame())
    reordered = {"failed": [0] * 6, "authorized": [0] * 6}
    second.show_frame(small_frame(statuses=reordered))
    for name in ("authorized", "failed"):
        assert (
            first.status_curve(name).opts["pen"].color()
            == second.status_curve(name).opts["pen"].color()
        )


def _subpaths(path: QPainterPath) -> int:
    return sum(
        1
        for i in range(path.elementCount())
        if path.elementAt(i).type == QPainterPath.ElementType.MoveToElement
    )


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
