"""The live plots draw only what can be seen and what changed (an open console idles).

Driven as a person drives the window: pages switched by clicking the tab bar,
the real window minimised and restored. Drawing is counted where data enters
the plots: ``setData`` of the curves.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QWidget

from tests.helpers.frames import make_frame, make_headline
from widgets.main_window import MainWindow

END = 1_700_000_040.0


def live_frame(end: float, value: float, window_s: int = 300):
    t = np.arange(end - window_s, end, dtype=np.float64)
    return make_frame(
        t, {"authorized": np.full(t.shape, value)}, headline=make_headline(events_per_s=value)
    )


@pytest.fixture
def window(qtbot):
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    return win


class SetDataSpy:
    """Counts ``setData`` calls of every curve of the plots (the plot-data boundary)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, window: MainWindow) -> None:
        self.calls = 0
        plots = window.flow_plots
        curves = [plots.dead_letter_curve, *(plots.latency_curve(p) for p in (50, 95, 99))]
        authorized = plots.status_curve("authorized")
        if authorized is not None:
            curves.append(authorized)
        for curve in curves:
            monkeypatch.setattr(curve, "setData", self._counting(curve.setData))

    def _counting(self, set_data):
        def counted(*args, **kwargs):
            self.calls += 1
            return set_data(*args, **kwargs)

        return counted


def click_tab(window: MainWindow, page: QWidget, qtbot) -> None:
    bar = window.tabs.tabBar()
    qtbot.mouseClick(
        bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(window.tabs.indexOf(page)).center()
    )
    assert window.tabs.currentWidget() is page


def plotted(window: MainWindow) -> tuple[float, float]:
    """(last second, its value) of the authorized curve as the plots hold it."""
    curve = window.flow_plots.status_curve("authorized")
    assert curve is not None
    x, y = curve.getData()
    return float(x[-1]), float(y[-1])


@pytest.mark.parametrize("page", ["workbench", "audit_panel", "alerts_panel"])
def test_a_page_not_shown_is_not_drawn_and_shows_the_newest_data_when_clicked(
    window, qtbot, monkeypatch, page
):
    window.show_frame(live_frame(END, 5.0))
    assert plotted(window) == (END - 1, 5.0)
    spy = SetDataSpy(monkeypatch, window)

    click_tab(window, getattr(window, page), qtbot)
    for k in range(1, 6):
        window.show_frame(live_frame(END + k, 5.0 + k))
    assert spy.calls == 0
    assert plotted(window) == (END - 1, 5.0)
    assert window.headline_bar.tile("events").value_text() == "10"  # the counters follow

    click_tab(window, window.flow_plots, qtbot)
    assert spy.calls > 0
    assert plotted(window) == (END + 4, 10.0)


def test_a_minimised_window_is_not_drawn_and_shows_the_newest_data_when_restored(
    window, qtbot, monkeypatch
):
    window.show_frame(live_frame(END, 5.0))
    spy = SetDataSpy(monkeypatch, window)

    window.showMinimized()
    qtbot.waitUntil(window.isMinimized)
    for k in range(1, 4):
        window.show_frame(live_frame(END + k, 5.0 + k))
    assert spy.calls == 0

    window.showNormal()
    qtbot.waitUntil(lambda: not window.isMinimized())
    assert spy.calls > 0
    assert plotted(window) == (END + 2, 8.0)


def test_a_hidden_window_is_not_drawn_and_shows_the_newest_data_when_shown(
    window, qtbot, monkeypatch
):
    window.show_frame(live_frame(END, 5.0))
    spy = SetDataSpy(monkeypatch, window)

    window.hide()
    window.show_frame(live_frame(END + 1, 6.0))
    assert spy.calls == 0

    window.show()
    qtbot.waitExposed(window)
    assert plotted(window) == (END, 6.0)


def test_a_frame_with_nothing_new_is_not_drawn_again(window, monkeypatch):
    window.show_frame(live_frame(END, 5.0))
    spy = SetDataSpy(monkeypatch, window)
    window.show_frame(live_frame(END, 5.0))  # the same seconds, the same numbers
    assert spy.calls == 0
    window.show_frame(live_frame(END, 6.0))  # the same seconds, new numbers
    assert spy.calls > 0
    assert plotted(window) == (END - 1, 6.0)


def _draws_over_seconds(window, monkeypatch, window_s: int, seconds: int) -> int:
    window.show_frame(live_frame(END, 5.0, window_s))
    curve = window.flow_plots.status_curve("authorized")
    draws = []
    monkeypatch.setattr(curve, "setData", lambda *a, **k: draws.append(1) or None)
    for k in range(1, seconds + 1):
        window.show_frame(live_frame(END + k, 5.0, window_s))
    return len(draws)


def test_a_5_minute_window_is_drawn_every_second_its_pixels_move(window, monkeypatch):
    box = window.flow_plots.throughput_plot.getViewBox()
    assert 300 / box.width() < 1  # a second is wider than a pixel
    assert _draws_over_seconds(window, monkeypatch, 300, 10) == 10


def test_a_1_hour_window_is_drawn_at_the_rate_its_pixels_move(window, monkeypatch):
    seconds_per_pixel = 3600 / window.flow_plots.throughput_plot.getViewBox().width()
    assert seconds_per_pixel > 2
    draws = _draws_over_seconds(window, monkeypatch, 3600, 30)
    assert 30 / (seconds_per_pixel + 1) <= draws <= 30 / seconds_per_pixel + 1


class PaintCounter(QObject):
    """Counts the paint events of one widget (the plots' graphics view)."""

    def __init__(self, watched: QWidget) -> None:
        super().__init__()
        self.paints = 0
        watched.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.paints += 1
        return False


def test_each_live_frame_repaints_the_plots_once_and_they_scroll(window, qtbot):
    window.show_frame(live_frame(END, 5.0))
    qtbot.wait(50)
    counter = PaintCounter(window.flow_plots.graphics.viewport())
    view_box = window.flow_plots.throughput_plot.getViewBox()
    for k in range(1, 6):
        before = counter.paints
        window.show_frame(live_frame(END + k, 5.0 + k))
        qtbot.wait(60)  # every repaint the frame asked for, including any asked while painting
        assert counter.paints - before == 1
        assert plotted(window) == (END + k - 1, 5.0 + k)  # the newest second, its value
        start, end = view_box.viewRange()[0]
        assert (start, end) == (END + k - 300, END + k - 1)  # the time axis moved with it
        assert view_box.viewRange()[1][1] >= 5.0 + k  # the value axis still fits the data


def test_a_latency_curve_with_no_samples_is_not_set_again(window, monkeypatch):
    window.show_frame(live_frame(END, 5.0))  # no latency samples: every value NaN
    latency = window.flow_plots.latency_curve(99)
    calls = []
    monkeypatch.setattr(latency, "setData", lambda *a, **k: calls.append(1))
    window.show_frame(live_frame(END + 1, 6.0))
    assert calls == []
    t = np.arange(END + 2 - 300, END + 2, dtype=np.float64)
    samples = np.full((3, t.shape[0]), np.nan)
    samples[:, -1] = 12.0
    window.show_frame(make_frame(t, {"authorized": np.full(t.shape, 6.0)}, latency=samples))
    assert calls == [1]  # a sample arrived: drawn
