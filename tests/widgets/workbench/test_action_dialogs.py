"""Confirm, progress and summary dialogs: what they say, what they return, what they emit."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QDialog

from services.config import FieldPaths
from services.masking.json import HIDDEN
from services.workbench.actions.report import (
    ActionOutcome,
    ActionPlan,
    ActionReport,
    ActionRequest,
    format_delay,
    plural,
)
from services.workbench.codec import MessageRecord
from services.workbench.model import EntryState, summarize
from widgets.workbench.action_dialogs import DELAY_CHOICES, ConfirmActionDialog
from widgets.workbench.action_progress import ActionProgressDialog, format_duration
from widgets.workbench.action_summary import ActionSummaryDialog

PAN = "4111111111111111"
MASKED_PAN = "411111******1111"
CVV = "918"
RAW_BODY = json.dumps(
    {
        "payment_id": "pay_8f2c1a77",
        "amount": 0,
        "currency": "EUR",
        "card": {"number": PAN, "cvv": CVV},
    }
).replace('"amount": 0', '"amount": 42.50')


def show(qtbot, dialog: QDialog) -> QDialog:
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def pixels(image: QImage) -> np.ndarray:
    rgb = image.convertToFormat(QImage.Format.Format_ARGB32)
    height, width, stride = rgb.height(), rgb.width(), rgb.bytesPerLine()
    raw = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=stride * height)
    return raw.reshape(height, stride)[:, : width * 4].copy().view(np.uint32).reshape(height, width)


def save_screenshot(widget, tmp_path: Path, name: str) -> QImage:
    path = tmp_path / name
    assert widget.grab().save(str(path))
    shutil.copy(path, Path("/tmp") / name)
    image = QImage(str(path))
    assert np.unique(pixels(image)).size > 50
    return image


# --------------------------------------------------------------------------- plans


def summary_row(entry_id: str, queue: str, state: EntryState = EntryState.PARKED):
    record = MessageRecord(
        body=json.dumps({"payment_id": f"pay_{entry_id}"}).encode(),
        headers={"x-death": [{"count": 1, "reason": "rejected", "queue": queue}]},
    )
    return summarize("payments.dlq", entry_id, record, FieldPaths(), 0, state=state)


def test_plan_from_summaries_groups_by_origin_queue_and_skips_what_is_not_parked():
    rows = [summary_row(f"a{i}", "payments.process") for i in range(3)]
    rows += [summary_row("b0", "payments.settlement")]
    rows += [summary_row("c0", "payments.process", EntryState.REQUEUED)]
    rows += [summary_row("c1", "payments.process", EntryState.CLAIMED)]
    plan = ActionPlan.from_summaries("requeue", rows)
    assert plan.targets == (("payments.process", 3), ("payments.settlement", 1))
    assert plan.total == 4
    assert plan.skipped == 2
    assert plan.payment_id is None
    single = ActionPlan.from_summaries("retry", [summary_row("a0", "payments.process")])
    assert single.payment_id == "pay_a0"
    assert single.describe() == "Retry payment pay_a0 through payments.process"


def test_plan_texts():
    assert plural(1, "failed payment") == "1 failed payment"
    assert plural(1234, "failed payment") == "1,234 failed payments"
    assert format_delay(0) == "no delay"
    assert format_delay(90) == "1 min 30 s"
    assert format_delay(3600) == "1 h"
    plan = ActionPlan("retry", (("payments.process", 2),))
    assert plan.describe(300) == "Retry 2 failed payments through payments.process after 5 min"
    many = ActionPlan("requeue", tuple((f"q{i}", 10 - i) for i in range(6)))
    assert many.describe() == (
        "Requeue 45 failed payments: 10 → q0, 9 → q1, 8 → q2, 18 → 3 other queues"
    )
    assert ActionPlan("cancel", (("q", 3),)).describe() == "Cancel 3 failed payments"


# --------------------------------------------------------------------------- confirm


def test_confirm_says_how_many_and_where_to(qtbot):
    plan = ActionPlan("requeue", (("payments.process", 1234),))
    dialog = show(qtbot, ConfirmActionDialog(plan))
    assert dialog.summary_text().splitlines()[0] == (
        "Requeue 1,234 failed payments to payments.process"
    )
    assert dialog.headline_label.text() == "Requeue 1,234 failed payments to payments.process"
    assert dialog.ok_button.text() == "Requeue 1,234"
    assert dialog.ok_button.isEnabled()
    assert not dialog.skipped_label.isVisible()
    assert not dialog.delay_combo.isVisible()
    assert not dialog.edit_check.isVisible()


def test_confirm_single_payment(qtbot):
    plan = ActionPlan("requeue", (("payments.process", 1),), payment_id="pay_8f2c1a77")
    dialog = show(qtbot, ConfirmActionDialog(plan))
    assert dialog.headline_label.text() == "Requeue payment pay_8f2c1a77 to payments.process"
    assert dialog.ok_button.text() == "Requeue"


def test_confirm_groups_by_target_queue_and_says_what_is_skipped(qtbot):
    plan = ActionPlan(
        "requeue", (("payments.process", 812), ("payments.settlement", 422)), skipped=12
    )
    dialog = show(qtbot, ConfirmActionDialog(plan))
    assert dialog.summary_text().splitlines()[0] == (
        "Requeue 1,234 failed payments: 812 → payments.process, 422 → payments.settlement"
    )
    # shown with no-break spaces so "812 → queue" never wraps apart
    assert dialog.headline_label.text().replace("\u00a0", " ") == plan.describe()
    assert dialog.skipped_label.isVisible()
    assert dialog.skipped_label.text() == "12 will be skipped because they are not parked"


def test_confirm_with_nothing_to_do_cannot_be_confirmed(qtbot):
    dialog = show(qtbot, ConfirmActionDialog(ActionPlan("requeue", (), skipped=5)))
    assert dialog.headline_label.text() == "Nothing to requeue"
    assert not dialog.ok_button.isEnabled()
    assert "5 will be skipped" in dialog.skipped_label.text()


def test_cancel_requires_a_reason(qtbot):
    plan = ActionPlan("cancel", (("payments.process", 3),), cancel_event="exchange 'events'")
    dialog = show(qtbot, ConfirmActionDialog(plan))
    assert "payment.cancelled event is published to exchange 'events'" in (
        dialog.consequence_label.text()
    )
    assert not dialog.ok_button.isEnabled()
    assert dialog.ok_button.toolTip() == "Give a reason to cancel"
    dialog.reason_edit.setText("   ")
    assert not dialog.ok_button.isEnabled()
    # Enter does nothing while the form is invalid
    qtbot.keyClick(dialog.reason_edit, Qt.Key.Key_Return)
    assert dialog.isVisible()
    assert dialog.request() is None
    qtbot.keyClicks(dialog.reason_edit, "customer asked")
    assert dialog.ok_button.isEnabled()
    with qtbot.waitSignal(dialog.confirmed) as confirmed:
        qtbot.keyClick(dialog.reason_edit, Qt.Key.Key_Return)
    assert confirmed.args == [ActionRequest("cancel", reason="customer asked")]
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.request() == ActionRequest("cancel", reason="customer asked")


def test_cancel_without_an_event_says_nothing_is_published(qtbot):
    dialog = show(qtbot, ConfirmActionDialog(ActionPlan("cancel", (("q", 1),))))
    assert "nothing is published" in dialog.consequence_label.text()


def test_escape_rejects(qtbot):
    dialog = show(qtbot, ConfirmActionDialog(ActionPlan("requeue", (("q", 2),))))
    with qtbot.waitSignal(dialog.rejected):
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert dialog.request() is None


@pytest.mark.parametrize(
    ("label", "expected"),
    [("No delay", 0), ("30 s", 30), ("1 min", 60), ("5 min", 300), ("15 min", 900), ("1 h", 3600)],
)
def test_retry_delay_choices(qtbot, label, expected):
    plan = ActionPlan("retry", (("payments.process", 2),))
    dialog = show(qtbot, ConfirmActionDialog(plan))
    assert dialog.delay_combo.isVisible()
    dialog.delay_combo.setCurrentIndex(dialog.delay_combo.findText(label))
    assert dialog.delay_s() == expected
    if expected:
        assert (
            dialog.headline_label.text()
            .replace("\u00a0", " ")
            .endswith(f"after {format_delay(expected)}")
        )
    dialog.accept()
    assert dialog.request() == ActionRequest("retry", delay_s=expected)


def test_retry_custom_delay(qtbot):
    dialog = show(qtbot, ConfirmActionDialog(ActionPlan("retry", (("q", 2),))))
    assert [label for label, _ in DELAY_CHOICES][-1] == "Custom…"
    assert not dialog.custom_delay_spin.isVisible()
    dialog.delay_combo.setCurrentIndex(dialog.delay_combo.count() - 1)
    assert dialog.custom_delay_spin.isVisible()
    dialog.custom_delay_spin.setValue(45)
    dialog.reason_edit.setText("downstream fixed")
    dialog.accept()
    assert dialog.request() == ActionRequest("retry", reason="downstream fixed", delay_s=45)


def retry_one(qtbot, raw_body: bytes | None = RAW_BODY.encode()) -> ConfirmActionDialog:
    plan = ActionPlan("retry", (("payments.process", 1),), payment_id="pay_8f2c1a77")
    return show(qtbot, ConfirmActionDialog(plan, raw_body=raw_body))


def test_body_editor_is_offered_only_for_one_json_entry(qtbot):
    assert retry_one(qtbot).can_edit_body
    assert not retry_one(qtbot, b"not json").can_edit_body
    assert not retry_one(qtbot, b"").can_edit_body
    assert not retry_one(qtbot, None).can_edit_body
    two = ActionPlan("retry", (("q", 2),))
    assert not show(qtbot, ConfirmActionDialog(two, raw_body=RAW_BODY.encode())).can_edit_body
    requeue = ActionPlan("requeue", (("q", 1),))
    assert not show(qtbot, ConfirmActionDialog(requeue, raw_body=RAW_BODY.encode())).can_edit_body


def test_body_editor_shows_the_body_masked_with_a_warning(qtbot):
    dialog = retry_one(qtbot)
    assert dialog.edit_check.isVisible()
    assert not dialog.editor_box.isVisible()
    dialog.edit_check.setChecked(True)
    assert dialog.editor_box.isVisible()
    assert "recorded in the audit trail" in dialog.edit_warning.text()
    text = dialog.body_edit.toPlainText()
    assert f'"number": "{MASKED_PAN}"' in text
    assert f'"cvv": "{HIDDEN}"' in text
    assert PAN not in text and CVV not in text
    assert '"amount": 42.50' in text
    assert dialog.body_status_label.text() == "Valid JSON · unchanged"
    dialog.accept()
    assert dialog.request().edited_body is None  # nothing changed: the body goes as it is


def test_invalid_json_disables_ok_and_says_where(qtbot):
    dialog = retry_one(qtbot)
    dialog.edit_check.setChecked(True)
    text = dialog.body_edit.toPlainText().replace('"EUR",', '"EUR"', 1)
    dialog.body_edit.setPlainText(text)
    line = text.splitlines().index('  "card": {') + 1
    assert dialog.body_status_label.text() == f"Line {line}, column 3: Expecting ',' delimiter"
    assert dialog.body_status_label.objectName() == "ValidationError"
    assert not dialog.ok_button.isEnabled()
    assert len(dialog.body_edit.extraSelections()) == 1
    dialog.accept()  # Enter/OK while invalid: nothing happens
    assert dialog.request() is None
    assert dialog.isVisible()


def test_valid_edit_returns_the_real_body_with_the_change(qtbot):
    dialog = retry_one(qtbot)
    dialog.edit_check.setChecked(True)
    dialog.body_edit.setPlainText(dialog.body_edit.toPlainText().replace("42.50", "43.00"))
    assert dialog.ok_button.isEnabled()
    assert dialog.body_status_label.text() == "Valid JSON · edited"
    dialog.delay_combo.setCurrentIndex(dialog.delay_combo.findText("1 min"))
    dialog.accept()
    request = dialog.request()
    assert request.action == "retry" and request.delay_s == 60
    assert isinstance(request.edited_body, bytes)
    body = json.loads(request.edited_body)
    assert body == {
        "payment_id": "pay_8f2c1a77",
        "amount": 43.0,
        "currency": "EUR",
        "card": {"number": PAN, "cvv": CVV},  # the real values, not the masks
    }
    assert b'"amount":43.00' in request.edited_body


def test_unticking_the_editor_sends_the_body_unchanged(qtbot):
    dialog = retry_one(qtbot)
    dialog.edit_check.setChecked(True)
    dialog.body_edit.setPlainText("{ broken")
    assert not dialog.ok_button.isEnabled()
    dialog.edit_check.setChecked(False)
    assert dialog.ok_button.isEnabled()
    dialog.accept()
    assert dialog.request().edited_body is None


def test_changing_a_masked_value_warns(qtbot):
    dialog = retry_one(qtbot)
    dialog.edit_check.setChecked(True)
    dialog.body_edit.setPlainText(
        dialog.body_edit.toPlainText().replace(MASKED_PAN, "411111******1112")
    )
    assert dialog.body_status_label.objectName() == "ValidationWarn"
    assert "411111******1112" in dialog.body_status_label.text()


def test_confirm_screenshot(qtbot, tmp_path):
    plan = ActionPlan(
        "requeue", (("payments.process", 812), ("payments.settlement", 422)), skipped=12
    )
    dialog = show(qtbot, ConfirmActionDialog(plan))
    dialog.reason_edit.setText("settlement service is back (INC-2231)")
    qtbot.wait(20)
    save_screenshot(dialog, tmp_path, "payops_confirm.png")

    retry = retry_one(qtbot)
    retry.delay_combo.setCurrentIndex(retry.delay_combo.findText("5 min"))
    retry.edit_check.setChecked(True)
    retry.resize(640, 640)
    retry.body_edit.setPlainText(retry.body_edit.toPlainText().replace('"EUR",', '"EUR"'))
    qtbot.wait(20)
    save_screenshot(retry, tmp_path, "payops_confirm_retry.png")


# --------------------------------------------------------------------------- progress


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


# --------------------------------------------------------------------------- summary


def make_report(stopped: bool = False) -> ActionReport:
    outcomes = [ActionOutcome(f"e{i:04d}", f"pay_{i}", True, "done") for i in range(1230)]
    outcomes += [
        ActionOutcome("e9001", "pay_9001", False, "failed", "unroutable: NO_ROUTE"),
        ActionOutcome("e9002", "pay_9002", False, "failed", "nacked by the broker"),
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
    assert report.headline() == ("Requeue: 1,230 succeeded, 2 skipped, 2 failed, 6 not attempted")
    assert report.reasons("skipped") == [("already requeued by alice", 2)]
    assert [o.status for o in report.problems] == ["failed", "failed", "skipped", "skipped"]


def test_summary_lists_what_did_not_succeed_and_why(qtbot):
    dialog = show(qtbot, ActionSummaryDialog(make_report()))
    assert dialog.headline_label.text() == "Requeue: 1,230 succeeded, 2 skipped, 2 failed"
    assert dialog.tiles["done"].value_label.text() == "1,230"
    assert dialog.tiles["failed"].value_label.text() == "2"
    assert dialog.tiles["skipped"].value_label.text() == "2"
    assert "not_attempted" not in dialog.tiles
    model = dialog.model
    rows = [[model.cell_text(r, c) for c in range(4)] for r in range(model.rowCount())]
    assert rows == [
        ["Failed", "e9001", "pay_9001", "unroutable: NO_ROUTE"],
        ["Failed", "e9002", "pay_9002", "nacked by the broker"],
        ["Skipped", "e9003", MASKED_PAN, "already requeued by alice"],
        ["Skipped", "e9004", "—", "already requeued by alice"],
    ]
    reasons = dialog.reasons_label.text()
    assert "unroutable: NO_ROUTE" in reasons and "2 ×" in reasons
    assert "took 0:02" in dialog.subline_label.text()


def test_summary_copy_puts_a_masked_text_report_on_the_clipboard(qtbot):
    dialog = show(qtbot, ActionSummaryDialog(make_report(stopped=True)))
    assert "not_attempted" in dialog.tiles
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    text = QGuiApplication.clipboard().text()
    assert text.startswith("Requeue: 1,230 succeeded, 2 skipped, 2 failed, 6 not attempted\n")
    assert "Failed\te9001\tpay_9001\tunroutable: NO_ROUTE" in text
    assert PAN not in text and MASKED_PAN in text
    assert dialog.copy_button.text() == "Copied"


def test_summary_when_everything_succeeded(qtbot):
    report = ActionReport("retry", "q", (ActionOutcome("e1", "p1", True, "done"),), 0, 1000)
    dialog = show(qtbot, ActionSummaryDialog(report))
    assert dialog.table_caption.text() == "Every payment went through."
    assert not dialog.table.isVisible()
    assert not dialog.reasons_label.isVisible()


def test_summary_screenshot(qtbot, tmp_path):
    dialog = show(qtbot, ActionSummaryDialog(make_report(stopped=True)))
    dialog.resize(760, 520)
    qtbot.wait(20)
    image = save_screenshot(dialog, tmp_path, "payops_summary.png")
    assert (image.width(), image.height()) == (760, 520)

    progress = show(qtbot, ActionProgressDialog("requeue", 1234))
    progress.show_progress(0, 1234, 0)
    time.sleep(0.05)
    progress.show_progress(812, 1234, 3)
    qtbot.wait(20)
    save_screenshot(progress, tmp_path, "payops_progress.png")


def test_confirm_masks_a_card_number_used_as_payment_id(qtbot):
    plan = ActionPlan("requeue", (("q", 1),), payment_id=PAN)
    dialog = show(qtbot, ConfirmActionDialog(plan))
    assert dialog.headline_label.text() == f"Requeue payment {MASKED_PAN} to q"
    assert PAN not in dialog.summary_text()
