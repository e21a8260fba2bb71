"""Times on the live page: local time, and the zone named beside it, everywhere."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from services.links.status import LinkState, LinkStatus
from tests.helpers.frames import make_frame
from tests.helpers.zones import local_zone
from widgets.live.connection_indicator import ConnectionIndicator
from widgets.live.flow_plots import FlowPlots
from widgets.live.go_to_time_dialog import GoToTimeDialog

WINTER = 1_700_000_040.0  # 2023-11-14 22:14 UTC: 23:14 CET
SUMMER = 1_690_000_020.0  # 2023-07-22 04:27 UTC: 06:27 CEST


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with local_zone(monkeypatch, "Europe/Berlin"):
        yield


def frame_ending(end: float, n: int = 120):
    t = [end - n + i for i in range(n)]
    return make_frame(t, {"captured": [5.0] * n}, latency=[[10.0] * n] * 3)


def axis_label(plots: FlowPlots) -> str:
    return str(plots.latency_plot.getAxis("bottom").labelText)


def test_the_plots_name_the_zone_of_their_local_times(berlin, qtbot):
    plots = FlowPlots(clock=lambda: WINTER + 0.5)
    qtbot.addWidget(plots)
    plots.resize(1000, 640)
    plots.show()
    qtbot.waitExposed(plots)
    plots.show_frame(frame_ending(WINTER))
    assert axis_label(plots) == "local time (CET)"

    # The read-out under the mouse: the same local time, the zone named.
    box = plots.throughput_plot.getViewBox()
    target = WINTER - 10
    scene_pos = QPointF(
        box.mapViewToScene(QPointF(target, 0)).x(), box.sceneBoundingRect().center().y()
    )
    qtbot.mouseMove(plots.graphics.viewport(), plots.graphics.mapFromScene(scene_pos))
    qtbot.waitUntil(lambda: plots.crosshair_time == target)
    assert "2023-11-14 23:13:50 CET" in plots.readout.text()

    # History: the range in the toolbar says its zone too.
    qtbot.mouseClick(plots.history_controls.back_button, Qt.MouseButton.LeftButton)
    assert plots.history_controls.label.text().endswith(":00 CET")
    assert plots.history_badge.text().endswith(":00 CET")
    plots.grab().save("/tmp/flow_plots_zone.png")


def test_the_zone_follows_the_frame_across_daylight_saving(berlin, qtbot):
    plots = FlowPlots(clock=lambda: SUMMER + 0.5)
    qtbot.addWidget(plots)
    plots.show()  # hidden plots draw nothing
    plots.show_frame(frame_ending(SUMMER))
    assert axis_label(plots) == "local time (CEST)"
    plots.show_frame(frame_ending(WINTER))
    assert axis_label(plots) == "local time (CET)"
    assert not np.isnan(plots.frame.t).any()


def test_the_go_to_time_dialog_names_the_zone(berlin, qtbot):
    dialog = GoToTimeDialog(24 * 3600, clock=lambda: WINTER)
    qtbot.addWidget(dialog)
    assert "(CET)" in dialog.edit.toolTip()


def test_the_connection_tooltip_names_the_zone(berlin, qtbot):
    indicator = ConnectionIndicator("RabbitMQ")
    qtbot.addWidget(indicator)
    indicator.show_status(LinkStatus("RabbitMQ", LinkState.CONNECTED, "mq:5672", since=WINTER))
    assert "Since: 23:14:00 CET" in indicator.toolTip()
