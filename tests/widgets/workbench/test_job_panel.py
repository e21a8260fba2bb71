"""A paced job followed live in its progress dialog: sent of selected, its pace and where
its canary is, its outcome counters, why it paused by itself, and Pause / Resume /
Cancel job as intents (the app turns them into job states in Redis)."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.helpers.screens import save_screenshot, show
from widgets.workbench.action_progress import ActionProgressDialog
from widgets.workbench.job_panel import JobStatus

JOB = "0193a7c2e4f1a3b9c2"


def status(state: str, sent: int, reason: str = "", **outcomes: int) -> JobStatus:
    return JobStatus(
        JOB,
        state,
        reason,
        selected=200,
        outcomes=outcomes,
        rate=20.0,
        canary=10,
        max_failed_pct=20.0,
        counts={"done": sent, "held": 2},
    )


def test_a_paced_jobs_progress_dialog_shows_its_pace_canary_and_outcomes_live(qtbot, tmp_path):
    dialog = show(qtbot, ActionProgressDialog("requeue", 200))
    assert dialog.job_panel is None and dialog.cancel_button.text() == "Cancel"
    panel = dialog.attach_job(JOB)
    qtbot.waitUntil(panel.isVisible, timeout=2000)  # shown by the layout, on the next turn
    assert dialog.job_panel is panel and dialog.cancel_button.text() == "Stop here"
    dialog.show_progress(4, 200, 0)
    dialog.show_job(status("running", 4, pending=4))
    assert panel.progress_label.text() == ("Sent 4 of 200 · 2 held back by the replay gate")
    assert panel.pace_label.text() == (
        "Pace 20/s · canary of 10: sending (4 out) · pauses above 20 % failed again or on a"
        " critical alert"
    )
    dialog.show_job(status("running", 10, pending=3, succeeded=7))
    assert "canary of 10: out, waiting for its outcomes" in panel.pace_label.text()
    dialog.show_job(status("running", 60, pending=40, succeeded=19, failed_again=1))
    assert "canary of 10: judged, sending the rest" in panel.pace_label.text()
    assert panel.outcome_label.text() == "19 succeeded, 1 failed again, 40 pending"
    assert panel.pause_button.isEnabled() and not panel.resume_button.isEnabled()
    assert not panel.pause_note.isVisible()
    with qtbot.waitSignal(dialog.job_control_requested) as asked:
        qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    assert asked.args == [JOB, "pause"]
    # Paused by a person: the state says who, no "by itself" note.
    dialog.show_job(status("paused", 61, "paused by alice from the console", succeeded=20))
    assert not panel.pause_note.isVisible() and panel.resume_button.isEnabled()


def test_a_job_paused_by_its_canary_says_why_and_offers_resume_and_cancel(qtbot, tmp_path):
    dialog = show(qtbot, ActionProgressDialog("retry", 200))
    dialog.resize(1366, 768)
    panel = dialog.attach_job(JOB)
    qtbot.waitUntil(panel.isVisible, timeout=2000)  # shown by the layout, on the next turn
    why = "canary: 8 of 10 failed again (80 % > 20 %)"
    dialog.show_progress(10, 200, 0)
    dialog.show_job(status("paused", 10, why, failed_again=8, succeeded=2))
    assert panel.pause_note.isVisible()
    assert panel.pause_note.text() == (
        f"Paused by itself: {why}. Resume sends the rest anyway; Cancel job sends nothing more."
    )
    assert "canary of 10: failed again, job paused" in panel.pace_label.text()
    assert panel.state_label.text() == "paused by itself · 200 selected"
    assert panel.resume_button.isEnabled() and panel.cancel_button.isEnabled()
    assert dialog.progress_bar.format() == "10 / 200" and dialog.eta_label.text() == "paused"
    assert not panel.pause_button.isEnabled()
    dialog.adjustSize()
    qtbot.wait(50)
    save_screenshot(dialog, tmp_path, "progress_paced_paused.png")
    assert dialog.width() <= 1366 and dialog.height() <= 768  # whole at 1366x768
    with qtbot.waitSignal(dialog.job_control_requested) as asked:
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert asked.args == [JOB, "cancel"]
    # A failure share or a critical alert pauses it by itself too.
    alert = "critical alert queue_depth:dlq fired: payments.dlq holds 812"
    dialog.show_job(status("paused", 80, alert, succeeded=60, pending=20))
    assert panel.pause_note.text().startswith(f"Paused by itself: {alert}.")
