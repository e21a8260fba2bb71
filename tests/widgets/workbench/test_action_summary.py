"""ActionSummaryDialog and the report it shows: counts, reasons, what did not succeed."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from services.outcomes.model import Outcome
from services.workbench.actions.report import ActionOutcome, ActionReport
from tests.helpers.screens import save_screenshot, show
from widgets.workbench.action_summary import ActionSummaryDialog
from widgets.workbench.job_panel import JobStatus

PAN = "4111111111111111"
MASKED_PAN = "411111******1111"
LUHN_ID = "pay_17d5570756950439"  # an id, though its last 13 digits pass the Luhn check


def make_report(stopped: bool = False) -> ActionReport:
    outcomes = [ActionOutcome(f"e{i:04d}", f"pay_{i}", True, "done") for i in range(1230)]
    outcomes += [
        ActionOutcome("e9001", "pay_9001", False, "failed", "unroutable: NO_ROUTE"),
        ActionOutcome("e9002", LUHN_ID, False, "failed", "nacked by the broker"),
        ActionOutcome("e9003", PAN, False, "skipped", "already requeued by alice"),
        ActionOutcome("e9004", None, False, "skipped", "already requeued by alice"),
    ]
    return ActionReport(
        "requeue",
        "payments.process",
        tuple(outcomes),
        started_ms=1_700_000_000_000,
        finished_ms=1_700_000_002_400,
        requested=1240 if stopped else None,
        stopped=stopped,
    )


def test_report_counts():
    report = make_report(stopped=True)
    assert (report.succeeded, report.skipped, report.failed, report.not_attempted) == (
        1230,
        2,
        2,
        6,
    )
    assert report.headline() == ("Requeue: 1,230 requeued, 2 skipped, 2 failed, 6 not attempted")
    assert report.reasons("skipped") == [("already requeued by alice", 2)]
    assert [o.status for o in report.problems] == ["failed", "failed", "skipped", "skipped"]


def test_summary_lists_what_did_not_succeed_and_why(qtbot):
    dialog = show(qtbot, ActionSummaryDialog(make_report()))
    assert dialog.headline_label.text() == "Requeue: 1,230 requeued, 2 skipped, 2 failed"
    assert dialog.tiles["done"].value_label.text() == "1,230"
    assert dialog.tiles["done"].caption_label.text() == "REQUEUED"  # "succeeded" is the job's
    assert dialog.tiles["failed"].value_label.text() == "2"
    assert dialog.tiles["skipped"].value_label.text() == "2"
    assert "not_attempted" not in dialog.tiles
    model = dialog.model
    rows = [[model.cell_text(r, c) for c in range(4)] for r in range(model.rowCount())]
    assert rows == [
        ["Failed", "e9001", "pay_9001", "unroutable: NO_ROUTE"],
        ["Failed", "e9002", LUHN_ID, "nacked by the broker"],
        ["Skipped", "e9003", MASKED_PAN, "already requeued by alice"],
        ["Skipped", "e9004", "—", "already requeued by alice"],
    ]
    assert dialog.table_caption.text() == (
        "Not done (4): 2 failed and stay parked; 2 skipped, left as they were"
    )
    reasons = dialog.reasons_label.text()
    assert "unroutable: NO_ROUTE" in reasons and "2 ×" in reasons
    assert "took 0:02" in dialog.subline_label.text()


def test_summary_copy_puts_a_masked_text_report_on_the_clipboard(qtbot):
    dialog = show(qtbot, ActionSummaryDialog(make_report(stopped=True)))
    assert "not_attempted" in dialog.tiles
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    text = QGuiApplication.clipboard().text()
    assert text.startswith("Requeue: 1,230 requeued, 2 skipped, 2 failed, 6 not attempted\n")
    assert "Failed\te9001\tpay_9001\tunroutable: NO_ROUTE" in text
    assert PAN not in text and MASKED_PAN in text
    assert dialog.copy_button.text() == "Copied"


def test_summary_when_everything_succeeded(qtbot):
    report = ActionReport("retry", "q", (ActionOutcome("e1", "p1", True, "done"),), 0, 1000)
    dialog = show(qtbot, ActionSummaryDialog(report))
    assert dialog.table_caption.text() == "1 retried through q."
    assert not dialog.table.isVisible()
    assert not dialog.reasons_label.isVisible()


def test_summary_screenshot(qtbot, tmp_path):
    dialog = show(qtbot, ActionSummaryDialog(make_report(stopped=True)))
    dialog.resize(760, 520)
    qtbot.wait(20)
    image = save_screenshot(dialog, tmp_path, "payops_summary.png")
    assert (image.width(), image.height()) == (760, 520)


def job_report(job_id: str = "0193a7c2e4f1a3b9c2") -> ActionReport:
    outcomes = tuple(ActionOutcome(f"e{i:03d}", f"pay_{i}", True, "done") for i in range(200))
    return ActionReport("requeue", "payments.settlement", outcomes, 0, 4000, job_id=job_id)


def test_a_jobs_counters_move_as_outcomes_arrive_and_its_buttons_follow_its_state(qtbot):
    dialog = show(qtbot, ActionSummaryDialog(job_report()))
    panel = dialog.job_panel
    assert panel is not None and panel.isVisible()
    assert not any(b.isEnabled() for b in panel.buttons.values())  # nothing read yet

    dialog.show_job(
        JobStatus("0193a7c2e4f1a3b9c2", "running", selected=200, outcomes={"pending": 200})
    )
    assert panel.outcome_label.text() == "200 pending"
    assert panel.pause_button.isEnabled() and panel.cancel_button.isEnabled()
    assert not panel.resume_button.isEnabled()

    dialog.show_job(
        JobStatus(
            "0193a7c2e4f1a3b9c2",
            "paused",
            "canary: 3 of 10 failed again (30 % > 20 %)",
            200,
            {"succeeded": 180, "failed_again": 12, "pending": 8},
        )
    )
    assert panel.outcome_label.text() == "180 succeeded, 12 failed again, 8 pending"
    assert panel.tiles[Outcome.SUCCEEDED].value_label.text() == "180"
    assert panel.tiles[Outcome.FAILED_AGAIN].value_label.text() == "12"
    assert panel.state_label.text().startswith("paused by itself")
    assert panel.pause_note.text().startswith("Paused by itself: canary: 3 of 10 failed again")
    assert panel.resume_button.isEnabled() and not panel.pause_button.isEnabled()
    assert "180 succeeded, 12 failed again, 8 pending" in dialog.summary_text()

    dialog.show_job(JobStatus("someone-else", "done", outcomes={"succeeded": 1}))
    assert panel.tiles[Outcome.SUCCEEDED].value_label.text() == "180"  # another job's: no


def test_the_job_buttons_ask_the_app_to_steer_the_job(qtbot):
    dialog = show(qtbot, ActionSummaryDialog(job_report("j1")))
    panel = dialog.job_panel
    assert panel is not None
    asked = []
    dialog.job_control_requested.connect(lambda job, verb: asked.append((job, verb)))
    dialog.show_job(JobStatus("j1", "running", outcomes={"pending": 5}))
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    assert asked == [("j1", "pause")]
    assert not panel.pause_button.isEnabled()  # until the next status says what it is
    dialog.show_job(JobStatus("j1", "paused", outcomes={"pending": 5}))
    qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
    dialog.show_job(JobStatus("j1", "running", outcomes={"pending": 5}))
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert asked == [("j1", "pause"), ("j1", "resume"), ("j1", "cancel")]
    dialog.show_job(JobStatus("j1", "cancelled", outcomes={"succeeded": 5}))
    assert not any(b.isEnabled() for b in panel.buttons.values())


def test_an_action_without_a_job_has_no_job_panel(qtbot):
    dialog = show(qtbot, ActionSummaryDialog(make_report()))
    assert dialog.job_panel is None
