"""MainWindow: time window shortcuts, pause, problems, link status, layout persistence,
alerts (banner, page, marks), snapshot export and history navigation."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QByteArray, QDateTime, QPoint, Qt
from PySide6.QtGui import QGuiApplication, QImage

from services.alerts.model import Alert, AlertEvent, AlertMark
from services.flow.types import Headline
from services.links.status import LinkState, LinkStatus
from tests.helpers.frames import make_frame, make_headline, realistic_frame, stage_demo_window
from widgets.live.go_to_time_dialog import GoToTimeDialog
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


def test_a_redis_failover_shows_on_the_redis_indicator_while_connected(window):
    window.show_link_status(
        LinkStatus("Redis", LinkState.CONNECTED, "redis://payops/0", failover_to="10.0.0.7:6379")
    )
    assert window.redis_indicator.text() == "Redis connected · failover to 10.0.0.7:6379"
    assert "Failover: the master is now 10.0.0.7:6379" in window.redis_indicator.toolTip()
    window.show_link_status(LinkStatus("Redis", LinkState.RECONNECTING, "redis://payops/0"))
    assert "failover" not in window.redis_indicator.text()


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


# -- alerts, snapshot, history ---------------------------------------------------------


def active(rule="failure_rate", severity="critical", since=1_700_000_000.0):
    return Alert(rule, severity, since, 41.2, f"{rule}: failure rate 41.2 % over 60 s")


def test_alt_digits_switch_pages_including_alerts(window, qtbot):
    qtbot.keyClick(window, Qt.Key.Key_4, Qt.KeyboardModifier.AltModifier)
    assert window.tabs.currentWidget() is window.alerts_panel
    assert window.tabs.tabText(3) == "Alerts"
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.AltModifier)
    assert window.tabs.currentWidget() is window.flow_plots
    assert [a.shortcut().toString() for a in window.page_actions] == [
        "Alt+1",
        "Alt+2",
        "Alt+3",
        "Alt+4",
    ]


def test_ctrl_e_and_both_export_buttons_request_a_snapshot(window, qtbot):
    with qtbot.waitSignal(window.snapshot_requested, timeout=1000):
        qtbot.keyClick(window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    assert window.export_snapshot_action in window.menuBar().actions()[0].menu().actions()
    window.show_alerts([active()])
    with qtbot.waitSignal(window.snapshot_requested, timeout=1000):
        qtbot.mouseClick(window.alert_banner.export_button, Qt.MouseButton.LeftButton)
    window.show_alerts_page()
    with qtbot.waitSignal(window.snapshot_requested, timeout=1000):
        qtbot.mouseClick(window.alerts_panel.export_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(window.alerts_refresh_requested, timeout=1000):
        qtbot.keyClick(window, Qt.Key.Key_F5)


def test_window_shortcuts_work_while_typing_in_a_text_field(window, qtbot):
    """Ctrl+E from the search box: a line edit would take it as "end of line" and swallow it."""
    window.tabs.setCurrentWidget(window.workbench)
    search = window.workbench.table_view.search_box
    search.setFocus()
    qtbot.waitUntil(search.hasFocus)
    qtbot.keyClicks(search, "pay_1")
    with qtbot.waitSignal(window.snapshot_requested, timeout=1000):
        qtbot.keyClick(search, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    assert search.text() == "pay_1"  # the shortcut did not type into the field either
    # the audit page's filter box too, and Alt+1 from it switches pages
    window.tabs.setCurrentWidget(window.audit_panel)
    audit_filter = window.audit_panel.filter_edit
    audit_filter.setFocus()
    qtbot.waitUntil(audit_filter.hasFocus)
    with qtbot.waitSignal(window.snapshot_requested, timeout=1000):
        qtbot.keyClick(audit_filter, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(audit_filter, Qt.Key.Key_1, Qt.KeyboardModifier.AltModifier)
    assert window.tabs.currentWidget() is window.flow_plots
    # keys a field needs stay the field's: Space types a space, it does not pause
    window.tabs.setCurrentWidget(window.workbench)
    search.setFocus()
    qtbot.waitUntil(search.hasFocus)
    qtbot.keyClick(search, Qt.Key.Key_Space)
    assert search.text() == "pay_1 " and not window.paused


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs Xvfb (apt-get install xvfb)")
def test_window_shortcuts_work_while_typing_under_a_real_x_server():
    """The test above, on X11: there a line edit claims Ctrl+E ("end of line") for itself.

    The offscreen platform uses the Windows keyboard scheme, where no text field
    wants Ctrl+E, so only an X server shows the bug an operator hit.
    """
    if QGuiApplication.platformName() == "xcb":
        pytest.skip("this session runs on X11: the test above covers it")
    test = f"{__file__}::test_window_shortcuts_work_while_typing_in_a_text_field"
    done = subprocess.run(
        ["xvfb-run", "-a", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        env={**os.environ, "QT_QPA_PLATFORM": "xcb"},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout


def test_the_banner_sits_between_counters_and_pages_and_opens_the_alerts_page(window, qtbot):
    assert window.alert_banner.isHidden()
    window.show_alerts([active("dead_letter_rate", "warning"), active(since=1_700_000_100.0)])
    banner = window.alert_banner
    assert banner.isVisible()
    assert banner.severity == "critical"
    assert window.headline_bar.geometry().bottom() < banner.geometry().top()
    assert banner.geometry().bottom() < window.tabs.geometry().top()
    assert window.tabs.tabText(3) == "Alerts (2)"
    assert window.alerts_panel.active_model.rowCount() == 2

    qtbot.mouseClick(banner.show_button, Qt.MouseButton.LeftButton)
    assert window.tabs.currentWidget() is window.alerts_panel

    window.show_alerts([])
    assert banner.isHidden()
    assert window.tabs.tabText(3) == "Alerts"


def test_the_alert_log_and_marks_are_forwarded(window):
    row = AlertEvent(1_700_000_000.0, "failure_rate", "firing", 41.2, "bad", "critical")
    window.show_alert_log([row])
    assert window.alerts_panel.shown_log() == [row]
    window.show_frame(frame_with(5.0))
    mark = AlertMark(1_700_000_001.0, None, "failure_rate", "critical")
    window.show_alert_marks([mark])
    assert window.flow_plots.alert_marks == (mark,)
    for plot in window.flow_plots.plots:
        assert len(window.flow_plots.alert_mark_items(plot)) == 1


def test_the_notifier_says_no_on_a_platform_without_a_tray(window):
    assert window.notifier.available is False
    assert window.notifier.notify("failure_rate", "failure rate 41.2 %", critical=True) is False
    assert window.notifier.notify("dead_letter_rate", "44 dead letters", critical=False) is False
    assert window.notifier.tray is None


def test_history_from_the_toolbar_and_back(window, qtbot):
    live = frame_with(5.0)
    window.show_frame(live)
    requested = []
    window.history_requested.connect(lambda a, b: requested.append((a, b)))
    modes = []
    window.history_mode_changed.connect(modes.append)
    end = float(live.t[-1]) + 1

    qtbot.mouseClick(window.flow_plots.history_controls.back_button, Qt.MouseButton.LeftButton)
    ((start, stop),) = requested
    assert stop - start == 300
    assert stop >= end - 300 and stop < end - 300 + 60
    assert modes == [True]
    assert window.windowTitle().endswith("(history)")

    window.show_frame(frame_with(9.0))  # live frames wait
    np.testing.assert_array_equal(throughput(window), [5.0] * 4)
    history = make_frame(np.arange(start, stop), {"authorized": np.full(300, 2.0)})
    window.history_loading(True)
    assert not window.flow_plots.history_controls.busy.isHidden()
    window.show_history_frame(history)
    assert window.flow_plots.frame is history

    window.window_actions[900].trigger()  # a new window keeps the end
    assert requested[-1] == (stop - 900, stop)

    window.history_unavailable("Redis is down")
    assert "Redis is down" in window.flow_plots.history_controls.label.text()

    qtbot.keyClick(window, Qt.Key.Key_End)
    assert window.live
    assert modes == [True, False]
    np.testing.assert_array_equal(throughput(window), [9.0] * 4)
    assert not window.windowTitle().endswith("(history)")


def test_history_keys_only_work_on_the_live_flow_page(window, qtbot):
    window.show_frame(frame_with(5.0))
    requested = []
    window.history_requested.connect(lambda a, b: requested.append((a, b)))
    window.show_alerts_page()
    qtbot.keyClick(window, Qt.Key.Key_PageUp)
    assert requested == []
    assert window.live
    window.tabs.setCurrentWidget(window.flow_plots)
    qtbot.keyClick(window, Qt.Key.Key_PageUp)
    assert len(requested) == 1


def test_double_clicking_an_alert_event_shows_the_flow_then(window, qtbot):
    window.show_frame(frame_with(5.0))
    requested = []
    window.history_requested.connect(lambda a, b: requested.append((a, b)))
    window.show_alerts_page()
    window.alerts_panel.time_activated.emit(1_600_000_000.0)
    assert window.tabs.currentWidget() is window.flow_plots
    ((start, stop),) = requested
    assert start < 1_600_000_000.0 < stop


def test_screenshot_with_a_critical_alert_and_marks(window, qtbot, tmp_path):
    frame = stage_demo_window(window, realistic_frame(end=None))
    t = frame.t
    window.show_alerts(
        [
            Alert(
                "failure_rate",
                "critical",
                float(t[215]),
                14.2,
                "failure rate 14.2 % over 60 s (threshold 5 %)",
            ),
            Alert("queue_depth:payments.dlq", "warning", float(t[240]), 757.0, "dlq deep"),
        ]
    )
    window.show_alert_marks(
        [
            AlertMark(float(t[215]), None, "failure_rate", "critical"),
            AlertMark(float(t[20]), float(t[60]), "latency_p99", "warning"),
        ]
    )
    qtbot.waitUntil(window.alert_banner.isVisible)
    path = tmp_path / "payops_main_window_alert.png"
    assert window.grab().save(str(path))
    if keep := os.environ.get("PAYOPS_SCREENSHOT_DIR"):
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
    image = QImage(str(path))
    banner = window.alert_banner
    pixel = image.pixelColor(banner.mapTo(window, QPoint(banner.width() // 2, banner.height() - 1)))
    assert pixel.red() > 150 and pixel.green() < 120  # the strip's red rule


def test_paused_badges_wait_while_history_is_shown(window, qtbot):
    window.show_frame(frame_with(5.0))
    window.set_paused(True)
    qtbot.waitUntil(window.paused_badge.isVisible)
    window.flow_plots.history_controls.back_action.trigger()
    qtbot.waitUntil(lambda: not window.paused_badge.isVisible())
    assert not window.flow_plots.paused_badge.isVisible()
    assert window.flow_plots.history_badge.isVisible()
    window.flow_plots.history_controls.live_action.trigger()
    qtbot.waitUntil(window.paused_badge.isVisible)
    assert window.flow_plots.paused_badge.isVisible()
    assert window.windowTitle().endswith("(paused)")


def test_go_to_time_shows_the_flow_around_the_chosen_moment(window, qtbot):
    import time

    window.set_history_retention(6 * 3600)
    window.tabs.setCurrentIndex(2)
    with qtbot.waitSignal(window.history_requested) as requested:
        window.go_to_time_action.trigger()
        dialog = window.findChild(GoToTimeDialog)
        assert dialog is not None and dialog.isVisible()
        now = time.time()
        earliest = dialog.edit.minimumDateTime().toSecsSinceEpoch()
        assert now - 6 * 3600 - 5 <= earliest <= now - 6 * 3600 + 5
        moment = int(now) - 2 * 3600
        dialog.edit.setDateTime(QDateTime.fromSecsSinceEpoch(moment))
        dialog.accept()
    from_s, to_s = requested.args
    assert from_s <= moment < to_s and to_s - from_s == window.window_seconds
    assert window.tabs.currentWidget() is window.flow_plots
    window.grab().save("/tmp/go_to_time_main.png")


def test_while_rabbitmq_is_down_the_counters_and_alerts_page_do_not_claim_a_measure(window, qtbot):
    # The trial: EVENTS "0.0/s", TAP DROPPED "0 · tap keeping up", and the Alerts page
    # "✓ No alerts firing" with a fresh "updated" stamp, all while RabbitMQ was down.
    idle = Headline(0.0, None, None, None, 0, 1234)
    window.show_link_status(LinkStatus("RabbitMQ", LinkState.CONNECTED, "mq:5672"))
    window.show_headline(idle)
    bar = window.headline_bar
    assert bar.tile("events").value_text() == "0.0"
    assert bar.tile("tap_dropped").detail_label.text() == "tap keeping up"
    window.show_alerts([])
    window.show_alert_log([])
    panel = window.alerts_panel
    assert panel.no_active_label.text() == "✓  No alerts firing"
    assert panel.updated_label.text().startswith("updated ")

    window.show_link_status(
        LinkStatus("RabbitMQ", LinkState.RECONNECTING, "mq:5672", detail="refused")
    )
    window.show_headline(idle)  # the aggregator goes on counting nothing
    window.show_alerts([])
    window.show_alert_log([])
    for key in ("events", "failure_rate", "latency_p99", "dlq_depth", "tap_dropped"):
        tile = bar.tile(key)
        assert tile.value_text() == "—", key
        assert "not measured: RabbitMQ at mq:5672 reconnecting" in tile.detail_label.text()
    assert "keeping up" not in bar.tile("tap_dropped").detail_label.text()
    qtbot.mouseClick(
        window.tabs.tabBar(),
        Qt.MouseButton.LeftButton,
        pos=window.tabs.tabBar().tabRect(window.tabs.indexOf(panel)).center(),
    )
    assert window.tabs.currentWidget() is panel
    assert "No alerts firing" not in panel.no_active_label.text()
    assert "Alerts not judged: RabbitMQ at mq:5672 reconnecting" in panel.no_active_label.text()
    assert panel.updated_label.text().startswith("flow unreachable since ")

    window.show_link_status(LinkStatus("RabbitMQ", LinkState.CONNECTED, "mq:5672"))
    window.show_headline(idle)
    window.show_alert_log([])
    assert bar.tile("events").value_text() == "0.0"
    assert panel.no_active_label.text() == "✓  No alerts firing"
    assert panel.updated_label.text().startswith("updated ")


def test_at_1280_px_the_status_bar_drops_details_rather_than_cutting_an_address(window, qtbot):
    # The trial (01-status.png): at 1280 px "History: unavailable: Redis: connection
    # refused to 127.0.0.1:6…" and "RabbitMQ failed: … 127.0.0.1:5679 ·" were cut mid-text.
    window.resize(1280, 800)
    window.set_profile("demo", "")
    window.show_recorder_state(
        "unavailable: Redis: connection refused to 127.0.0.1:6390", "the recorder cannot write"
    )
    for service, port in (("RabbitMQ", 5679), ("Redis", 6390)):
        window.show_link_status(
            LinkStatus(
                service,
                LinkState.FAILED,
                f"127.0.0.1:{port}",
                detail=f"connection refused to 127.0.0.1:{port}",
                retry_in_s=30.0,
            )
        )
    qtbot.waitUntil(lambda: window.statusBar().width() <= 1280)
    labels = [window.recorder_label, *(i.label for i in window.indicators.values())]
    qtbot.wait(50)  # the layout settles
    for label in labels:
        shown = label.text()  # shown whole: not clipped by the status bar
        assert label.fontMetrics().horizontalAdvance(shown) <= label.contentsRect().width(), shown
        assert shown in label.texts()  # one of its forms, not a cut
        assert label.full_text() in label.toolTip() or label.parent().toolTip()
        # An address is shown whole or not at all.
        assert set(re.findall(r"127\.0\.0\.1:?(\d*)", shown)) <= {"5679", "6390"}, shown
        assert not shown.endswith("…"), shown
    assert window.rabbitmq_indicator.text().startswith("RabbitMQ failed: connection refused")
    window.resize(2400, 800)
    qtbot.waitUntil(lambda: window.recorder_label.text() == window.recorder_label.full_text())
