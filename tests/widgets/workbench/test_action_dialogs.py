"""ConfirmActionDialog and the plans it shows: what it says, what it returns."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from services.config import FieldPaths
from services.masking.json import HIDDEN
from services.workbench.actions.report import ActionPlan, ActionRequest, format_delay, plural
from services.workbench.codec import MessageRecord
from services.workbench.model import EntryState, summarize
from tests.helpers.screens import save_screenshot, show
from widgets.workbench.action_dialogs import DELAY_CHOICES, ConfirmActionDialog

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


LUHN_ID = "pay_17d5570756950439"  # its last 13 digits pass the Luhn check: still an id


def test_confirm_shows_the_payment_id_whole_and_masks_card_numbers_in_free_text(qtbot, tmp_path):
    plan = ActionPlan("retry", (("payments.process", 1),), payment_id=LUHN_ID)
    dialog = show(qtbot, ConfirmActionDialog(plan))
    assert dialog.headline_label.text() == f"Retry payment {LUHN_ID} through payments.process"
    assert dialog.summary_text().splitlines()[0] == dialog.headline_label.text()
    save_screenshot(dialog, tmp_path, "payops_confirm_retry_luhn_id.png")

    # a card number where free text goes (a queue name) stays masked, the id beside it whole
    plan = ActionPlan("requeue", ((f"payments.{PAN}", 1),), payment_id=LUHN_ID)
    dialog = show(qtbot, ConfirmActionDialog(plan))
    assert dialog.headline_label.text() == (f"Requeue payment {LUHN_ID} to payments.{MASKED_PAN}")
    # an id that is nothing but a card number cannot be told from one: masked
    plan = ActionPlan("requeue", (("payments.process", 1),), payment_id=PAN)
    dialog = show(qtbot, ConfirmActionDialog(plan))
    assert PAN not in dialog.headline_label.text() + dialog.summary_text()
    assert MASKED_PAN in dialog.headline_label.text()


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
    assert dialog.ok_button.toolTip().startswith("Give a reason to cancel")
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


def test_cancel_buttons_say_what_they_do_and_the_missing_reason_is_shown(qtbot, tmp_path):
    plan = ActionPlan("cancel", (("payments.process", 3),))
    dialog = show(qtbot, ConfirmActionDialog(plan))
    assert dialog.ok_button.text() == "Cancel 3 payments"
    assert dialog.back_button.text() == "Back"
    texts = [b.text().lower() for b in dialog.buttons.buttons()]
    assert sum("cancel" in t for t in texts) == 1, texts  # one button says "cancel"
    # nothing typed: the reason is asked for in the dialog itself, and the button is off
    assert dialog.problem_label.isVisible()
    assert "Give a reason to cancel" in dialog.problem_label.text()
    assert not dialog.ok_button.isEnabled()
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and dialog.request() is None
    save_screenshot(dialog, tmp_path, "cancel_no_reason.png")
    # they are marked cancelled and stay listed: not "removed"
    assert "removed" not in dialog.consequence_label.text()
    assert "marked Cancelled" in dialog.consequence_label.text()
    assert "stay listed" in dialog.consequence_label.text()

    qtbot.keyClicks(dialog.reason_edit, "merchant closed")
    assert dialog.ok_button.isEnabled() and not dialog.problem_label.isVisible()
    with qtbot.waitSignal(dialog.confirmed) as confirmed:
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert confirmed.args == [ActionRequest("cancel", reason="merchant closed")]


def test_cancel_back_button_closes_without_a_request(qtbot):
    dialog = show(qtbot, ConfirmActionDialog(ActionPlan("cancel", (("q", 1),))))
    assert dialog.ok_button.text() == "Cancel 1 payment"
    qtbot.keyClicks(dialog.reason_edit, "dup")
    with qtbot.waitSignal(dialog.rejected):
        qtbot.mouseClick(dialog.back_button, Qt.MouseButton.LeftButton)
    assert dialog.request() is None


def test_requeue_and_retry_note_goes_into_the_request(qtbot):
    for action, plan in (
        ("requeue", ActionPlan("requeue", (("payments.process", 2),))),
        ("retry", ActionPlan("retry", (("payments.process", 2),))),
    ):
        dialog = show(qtbot, ConfirmActionDialog(plan))
        assert not dialog.problem_label.isVisible()
        qtbot.keyClicks(dialog.reason_edit, f"INC-42 {action}")
        with qtbot.waitSignal(dialog.confirmed) as confirmed:
            qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
        assert confirmed.args[0].reason == f"INC-42 {action}"


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


def test_confirm_masks_a_card_number_used_as_payment_id(qtbot):
    plan = ActionPlan("requeue", (("q", 1),), payment_id=PAN)
    dialog = show(qtbot, ConfirmActionDialog(plan))
    assert dialog.headline_label.text() == f"Requeue payment {MASKED_PAN} to q"
    assert PAN not in dialog.summary_text()


# --------------------------------------------------------------------------- replay gate


def test_the_dialog_says_what_the_replay_gate_holds_back_and_sending_anyway_needs_a_note(
    qtbot,
):
    plan = ActionPlan("requeue", (("payments.process", 5),))
    held = ("captured at 14:05:31 CET by the flow",) * 2
    dialog = show(qtbot, ConfirmActionDialog(plan, held_back=held))
    assert dialog.held_label.isVisible()
    assert dialog.held_label.text().startswith("2 will be held back by the replay gate")
    assert "captured at 14:05:31 CET by the flow" in dialog.summary_text()
    assert dialog.ok_button.isEnabled() and not dialog.forced  # the rest go, the 2 stay

    qtbot.mouseClick(dialog.force_check, Qt.MouseButton.LeftButton)
    assert dialog.forced
    assert not dialog.ok_button.isEnabled()  # overriding the gate needs a note
    assert dialog.problem_label.isVisible() and "replay gate" in dialog.problem_label.text()

    qtbot.keyClicks(dialog.reason_edit, "acquirer says the capture was rolled back")
    assert dialog.ok_button.isEnabled()
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.forced
    assert dialog.request() == ActionRequest(
        "requeue", reason="acquirer says the capture was rolled back"
    )


def test_nothing_held_back_no_gate_text_and_no_choice(qtbot):
    dialog = show(qtbot, ConfirmActionDialog(ActionPlan("retry", (("q", 2),))))
    assert not dialog.held_label.isVisible() and not dialog.force_check.isVisible()
    assert not dialog.forced
