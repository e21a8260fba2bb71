"""A paced job followed live in its progress dialog: sent of selected, its pace and where
its canary is, its outcome counters, why it paused by itself, and Pause / Resume /
Cancel job as intents (the app turns them into job states in Redis)."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

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
    assert panel.state_label.text() == "paused by itself"
    assert not panel.reason_label.isVisible()  # the why is the note's
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


def one_line(label: QLabel) -> bool:
    """Whether ``label``'s text, laid out in the width it has, takes one line."""
    metrics = label.fontMetrics()
    flags = Qt.TextFlag.TextWordWrap if label.wordWrap() else Qt.TextFlag.TextSingleLine
    laid_out = metrics.boundingRect(label.contentsRect(), int(flags), label.text())
    return (
        label.text() != ""
        and laid_out.height() <= metrics.lineSpacing() + 1
        and (laid_out.width() <= label.contentsRect().width())
    )


def test_the_job_header_fits_on_one_line_at_the_dialog_s_default_size(qtbot, tmp_path):
    dialog = show(qtbot, ActionProgressDialog("requeue", 183))
    panel = dialog.attach_job("01a242a9176109bc23")  # the length of a real job id
    qtbot.waitUntil(panel.isVisible, timeout=2000)
    dialog.show_progress(154, 183, 0)
    running = dataclasses.replace(status("running", 148, succeeded=146, pending=2), selected=183)
    paused_by = dataclasses.replace(running, state="paused", reason="paused by alice")
    gone = dataclasses.replace(running, runner_alive=False)
    canary = status("paused", 10, "canary: 8 of 10 failed again (80 % > 20 %)", failed_again=8)
    for shown, why in (
        (running, ""),
        (paused_by, "paused by alice"),
        (gone, "its process is gone: Resume runs the rest here"),
        (canary, ""),  # said by the pause note
    ):
        dialog.show_job(dataclasses.replace(shown, job_id="01a242a9176109bc23"))
        qtbot.wait(20)  # laid out
        assert dialog.width() == dialog.minimumWidth(), shown  # its default size: not grown
        assert one_line(panel.title_label) and one_line(panel.state_label), (
            panel.state_label.text(),
            panel.state_label.contentsRect().width(),
        )
        assert panel.title_label.geometry().right() < panel.state_label.geometry().left()
        assert panel.reason_label.text() == why and panel.reason_label.isVisible() == bool(why)
        if shown is gone:
            save_screenshot(dialog, tmp_path, "job_header_gone.png")


def test_sent_is_the_job_s_own_count_not_an_estimate_from_its_outcomes(qtbot):
    dialog = show(qtbot, ActionProgressDialog("requeue", 200))
    panel = dialog.attach_job(JOB)
    qtbot.waitUntil(panel.isVisible, timeout=2000)
    # Outcomes of payments counted elsewhere (another run of the job) are no sign of sends.
    dialog.show_job(status("running", 4, pending=3, succeeded=9))
    assert panel.progress_label.text().startswith("Sent 4 of 200")
    assert "canary of 10: sending (4 out)" in panel.pace_label.text()
