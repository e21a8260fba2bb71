"""ActionProgressDialog: done / total, rate, elapsed, ETA, and asking to stop."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt

from tests.helpers.screens import save_screenshot, show
from widgets.workbench.action_progress import ActionProgressDialog, format_duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_progress_shows_done_total_rate_elapsed_eta(qtbot):
    clock = FakeClock()
    dialog = show(qtbot, ActionProgressDialog("requeue", 1234, clock=clock))
    assert dialog.title_label.text() == "Requeueing 1,234 failed payments…"
    assert dialog.rate_label.text() == "—"
    clock.now += 2.0
    dialog.show_progress(800, 1234, 3)
    assert dialog.counts_label.text() == "800 / 1,234"
    assert dialog.progress_bar.value() == 800
    assert dialog.progress_bar.maximum() == 1234
    assert dialog.failed_label.text() == "3"
    assert dialog.rate_label.text() == "400/s"
    assert dialog.elapsed_label.text() == "0:02"
    assert dialog.eta_label.text() == "0:01"  # 434 left at 400/s
    assert format_duration(3723) == "1:02:03"


def test_progress_cancel_emits_once_and_esc_does_not_close(qtbot):
    dialog = show(qtbot, ActionProgressDialog("retry", 10))
    with qtbot.waitSignal(dialog.cancel_requested):
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert dialog.cancelling
    assert not dialog.cancel_button.isEnabled()
    assert dialog.stopping_label.isVisible()
    with qtbot.assertNotEmitted(dialog.cancel_requested):
        dialog.request_cancel()
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert dialog.isVisible()  # stays until the work has stopped
    dialog.finish()
    assert not dialog.isVisible()


def test_progress_escape_asks_to_stop(qtbot):
    dialog = show(qtbot, ActionProgressDialog("requeue", 10))
    with qtbot.waitSignal(dialog.cancel_requested):
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert dialog.isVisible()


def test_progress_screenshot(qtbot, tmp_path):
    progress = show(qtbot, ActionProgressDialog("requeue", 1234))
    progress.show_progress(0, 1234, 0)
    time.sleep(0.05)
    progress.show_progress(812, 1234, 3)
    qtbot.wait(20)
    save_screenshot(progress, tmp_path, "payops_progress.png")


def test_the_headline_and_the_counter_agree_when_entries_are_skipped(qtbot):
    # The trial: the title said 893 while the counter, which counts the skipped entry as
    # handled, ran to 894.
    dialog = show(qtbot, ActionProgressDialog("requeue", 894, clock=FakeClock(), skipped=1))
    assert dialog.title_label.text() == (
        "Requeueing 893 failed payments… (1 of the 894 selected skipped: not parked)"
    )
    dialog.show_progress(894, 894, 0)
    assert dialog.counts_label.text() == "894 / 894"
