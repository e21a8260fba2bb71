"""MainWindow: time window shortcuts, pause, problems, link status, layout persistence."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QByteArray, Qt

from services.link_status import LinkState, LinkStatus
from tests.widgets.frames import make_frame, make_headline, realistic_frame
from widgets.main_window import MainWindow


@pytest.fixture
def window(qtbot):
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow)
    return win


def frame_with(value: float, failure_rate: float = 1.0):
    t = [1_700_000_000.0 + i for i in range(4)]
    return make_frame(
        t,
        {"authorized": [value] * 4},
        headline=make_headline(events_per_s=value, failure_rate_pct=failure_rate),
    )


def throughput(window, name="authorized"):
    return np.asarray(window.flow_plots.status_curve(name).getOriginalDataset()[1])


def test_usable_before_any_data(window):
    assert window.window_seconds == 300
    assert window.window_actions[300].isChecked()
    assert window.headline_bar.tile("events").value_text() == "—"
    assert window.rabbitmq_indicator.text() == "RabbitMQ connecting…"
    assert window.redis_indicator.text() == "Redis connecting…"
    assert window.problems_view.text_label.full_text() == "No problems"
    assert window.flow_plots.waiting_label.isVisible()
    assert not window.paused


@pytest.mark.parametrize(
    ("key", "seconds"),
    [(Qt.Key.Key_1, 60), (Qt.Key.Key_2, 300), (Qt.Key.Key_3, 900), (Qt.Key.Key_4, 3600)],
)
def test_ctrl_digit_selects_the_time_window(window, qtbot, key, seconds):
    if seconds == 300:
        window.select_window(60)
    with qtbot.waitSignal(window.window_selected, timeout=1000) as blocker:
        qtbot.keyClick(window, key, Qt.KeyboardModifier.ControlModifier)
    assert blocker.args == [seconds]
    assert window.window_seconds == seconds
    assert window.window_actions[seconds].isChecked()


def test_the_actions_emit_the_window_in_seconds(window, qtbot):
    emitted = []
    window.window_selected.connect(emitted.append)
    for seconds in (60, 900, 3600, 300):
        window.window_actions[seconds].trigger()
    assert emitted == [60, 900, 3600, 300]
    checked = [s for s, a in window.window_actions.items() if a.isChecked()]
    assert checked == [300]


def test_select_window_checks_without_emitting(window, qtbot):
    with qtbot.assertNotEmitted(window.window_selected):
        window.select_window(3600)
    assert window.window_seconds == 3600
    with pytest.raises(ValueError, match="no time window of 120 s"):
        window.select_window(120)


def test_space_toggles_pause(window, qtbot):
    with qtbot.waitSignal(window.pause_toggled, timeout=1000) as blocker:
        qtbot.keyClick(window, Qt.Key.Key_Space)
    assert blocker.args == [True]
    assert window.paused
    qtbot.waitUntil(window.paused_badge.isVisible)  # the toolbar lays out on the next loop
    assert window.flow_plots.paused_badge.isVisible()
    assert window.pause_action.text() == "Resume"
    assert "paused" in window.windowTitle()

    with qtbot.waitSignal(window.pause_toggled, timeout=1000) as blocker:
        qtbot.keyClick(window, Qt.Key.Key_Space)
    assert blocker.args == [False]
    assert not window.paused
    qtbot.waitUntil(lambda: not window.paused_badge.isVisible())
    assert window.pause_action.text() == "Pause"


def test_the_toolbar_button_pauses_too(window, qtbot):
    button = window.toolbar.widgetForAction(window.pause_action)
    with qtbot.waitSignal(window.pause_toggled, timeout=1000) as blocker:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert blocker.args == [True]


def test_paused_frames_do_not_change_the_plots_but_the_counters_stay_live(window):
    window.show_frame(frame_with(5.0))
    window.set_paused(True)

    window.show_frame(frame_with(9.0, failure_rate=12.0))

    np.testing.assert_array_equal(throughput(window), [5.0] * 4)
    assert window.headline_bar.tile("events").value_text() == "9.0"
    assert window.headline_bar.tile("failure_rate").value_text() == "12.0"

    window.flow_plots.set_crosshair(1_700_000_002.0)  # the crosshair still works
    assert ("Throughput", "authorized", "5") in window.flow_plots.readout_rows()

    window.set_paused(False)  # resuming shows the newest frame at once
    np.testing.assert_array_equal(throughput(window), [9.0] * 4)


def test_link_status_goes_to_the_indicator_of_its_service(window):
    window.show_link_status(LinkStatus("RabbitMQ", LinkState.CONNECTED, "amqp://mq/"))
    window.show_link_status(
        LinkStatus("Redis", LinkState.FAILED, "redis://cache/0", detail="NOAUTH")
    )
    assert window.rabbitmq_indicator.text() == "RabbitMQ connected"
    assert window.redis_indicator.text() == "Redis failed: NOAUTH"
    assert "redis://cache/0" in window.redis_indicator.toolTip()


def test_a_status_of_an_unknown_service_is_a_problem(window):
    window.show_link_status(LinkStatus("Kafka", LinkState.CONNECTED))
    assert "Kafka" in window.problems_view.latest_text()


def test_problems_show_the_latest_and_list_all_in_the_tooltip(window):
    window.show_problem("exchange 'x' not found")
    window.show_problem("queue 'payments.dlq' not found")
    view = window.problems_view
    assert view.text_label.full_text() == "queue 'payments.dlq' not found"
    tooltip = view.toolTip()
    assert "exchange &#x27;x&#x27; not found" in tooltip
    assert tooltip.index("payments.dlq") < tooltip.index("exchange")  # newest first
    assert view.count_label.text() == "2"

    window.show_problem("queue 'payments.dlq' not found")  # a repeat is counted
    assert [p.count for p in view.problems()] == [2, 1]
    assert view.count_label.text() == "3"

    window.clear_problems_action.trigger()
    assert view.problems() == []
    assert view.text_label.full_text() == "No problems"


def test_profile_in_status_bar_and_title(window):
    window.set_profile("prod-eu", "RabbitMQ amqp://mq.prod/\nRedis redis://cache.prod/0")
    assert "prod-eu" in window.profile_label.text()
    assert "amqp://mq.prod/" in window.profile_label.toolTip()
    assert window.windowTitle() == "PayOps Console — prod-eu"


def test_layout_round_trip(window, qtbot):
    # restoreGeometry fits the window to the screen (800x600 on the offscreen platform)
    screen = window.screen().availableGeometry()
    size = (min(1000, screen.width() - 40), min(700, screen.height() - 50))
    window.resize(*size)
    window.toolbar.hide()
    data = window.save_layout()
    assert isinstance(data, QByteArray)

    other = MainWindow()
    qtbot.addWidget(other)
    assert other.restore_layout(data)
    other.show()
    qtbot.waitExposed(other)
    assert (other.width(), other.height()) == size
    assert other.toolbar.isHidden()


@pytest.mark.parametrize("junk", [None, QByteArray(), QByteArray(b"not a layout at all"), b"POPS"])
def test_a_bad_layout_is_refused(window, junk):
    size = window.size()
    assert window.restore_layout(junk) is False
    assert window.size() == size


def test_quit_closes_and_reports_it(window, qtbot):
    with qtbot.waitSignal(window.closed, timeout=1000):
        qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert not window.isVisible()


def test_short_windows_get_compact_counters(window, qtbot):
    window.resize(900, 600)
    qtbot.waitUntil(lambda: not window.headline_bar.tile("events").detail_label.isVisible())
    window.resize(1280, 800)
    qtbot.waitUntil(window.headline_bar.tile("events").detail_label.isVisible)


def test_a_realistic_frame_fills_every_plot(window):
    frame = realistic_frame()
    window.show_frame(frame)
    plots = window.flow_plots
    for name in frame.status_names:
        assert plots.status_curve(name) is not None
    for name in frame.queue_names:
        assert plots.queue_curve(name) is not None
    assert window.headline_bar.tile("failure_rate").value_text() != "—"


def test_a_resolved_problem_leaves_the_status_bar_but_stays_in_the_tooltip(window):
    window.show_problem("tap cannot bind to exchange 'payments.events': NOT_FOUND")
    window.show_problem("cannot read the depth of queue 'payments.dlq': NOT_FOUND")
    window.resolve_problem("cannot read the depth of queue 'payments.dlq': NOT_FOUND")
    view = window.problems_view
    assert view.latest_text() == "tap cannot bind to exchange 'payments.events': NOT_FOUND"
    window.resolve_problem("tap cannot bind to exchange 'payments.events': NOT_FOUND")
    assert view.latest_text() == ""
    assert view.active() == []
    assert view.toolTip().count("resolved") == 2
