"""The pace of a bulk requeue or retry in its confirmation dialog: full speed unless
chosen; a rate and a canary typed into the real fields, checked with the CLI's own
rules, with what is wrong said under them; keyboard only works too."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from services.workbench.actions.pace import Pace
from services.workbench.actions.report import ActionPlan, ActionRequest
from tests.helpers.screens import save_screenshot, show
from widgets.workbench.action_dialogs import ConfirmActionDialog


def shown_active(qtbot, dialog: ConfirmActionDialog) -> ConfirmActionDialog:
    """Shown and active (its fields take the keyboard focus)."""
    show(qtbot, dialog)
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow, timeout=2000)
    return dialog


def type_over(qtbot, field: QWidget, text: str) -> None:
    """Select what the field holds (Ctrl+A), erase it and type ``text``."""
    qtbot.keyClick(field, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(field, Qt.Key.Key_Backspace)
    qtbot.keyClicks(field, text)


def test_full_speed_is_the_default_and_single_entries_and_cancels_have_no_pace(qtbot):
    dialog = show(qtbot, ConfirmActionDialog(ActionPlan("requeue", (("payments.process", 200),))))
    chooser = dialog.pace_chooser
    assert chooser is not None and chooser.isVisible() and not chooser.paced
    assert not chooser.rate_edit.isEnabled() and not chooser.canary_spin.isEnabled()
    assert not chooser.max_failed_spin.isEnabled()
    assert dialog.ok_button.text() == "Requeue 200"
    with qtbot.waitSignal(dialog.confirmed):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.pace() is None  # full speed: the fast path
    single = show(qtbot, ConfirmActionDialog(ActionPlan("retry", (("q", 1),), payment_id="p")))
    assert single.pace_chooser is None and single.pace() is None
    cancel = show(qtbot, ConfirmActionDialog(ActionPlan("cancel", (("q", 5),))))
    assert cancel.pace_chooser is None


def test_a_rate_and_a_canary_typed_in_give_the_jobs_pace(qtbot, tmp_path):
    dialog = shown_active(
        qtbot, ConfirmActionDialog(ActionPlan("retry", (("payments.process", 200),)))
    )
    chooser = dialog.pace_chooser
    assert chooser is not None
    qtbot.mouseClick(chooser.rate_check, Qt.MouseButton.LeftButton)
    assert chooser.rate_edit.isEnabled() and chooser.rate_edit.hasFocus()
    type_over(qtbot, chooser.rate_edit, "600/min")
    assert chooser.rate_hint.text() == "10/s: all 200 in about 20 s"
    qtbot.mouseClick(chooser.canary_check, Qt.MouseButton.LeftButton)
    assert chooser.canary_spin.hasFocus()
    type_over(qtbot, chooser.canary_spin, "25")
    type_over(qtbot, chooser.max_failed_spin, "10")
    assert dialog.ok_button.text() == "Retry 200 paced"
    assert dialog.summary_text().endswith(
        "Paced: at 10/s, canary 25, pauses above 10 % failed again"
    )
    qtbot.wait(50)  # the button's new text laid out
    save_screenshot(dialog, tmp_path, "confirm_paced.png")
    qtbot.keyClicks(dialog.reason_edit, "acquirer back")
    with qtbot.waitSignal(dialog.confirmed) as confirmed:
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert confirmed.args == [ActionRequest("retry", reason="acquirer back")]
    assert dialog.pace() == Pace(rate=10.0, canary=25, max_failed_pct=10.0)


def test_what_is_wrong_with_the_pace_is_said_and_blocks_the_button(qtbot):
    dialog = show(qtbot, ConfirmActionDialog(ActionPlan("requeue", (("payments.process", 30),))))
    chooser = dialog.pace_chooser
    assert chooser is not None
    qtbot.mouseClick(chooser.rate_check, Qt.MouseButton.LeftButton)
    for typed, said in (
        ("fast", "Rate: a rate is like 50/s or 600/min, not 'fast'"),
        ("0/s", "Rate: a rate must be more than 0: '0/s'"),
        ("", "Rate: a rate is like 50/s or 600/min, not ''"),
    ):
        type_over(qtbot, chooser.rate_edit, typed)
        assert dialog.pace_problem_label.isVisible()
        assert dialog.pace_problem_label.text() == said
        assert not dialog.ok_button.isEnabled() and dialog.ok_button.toolTip() == said
        qtbot.keyClick(chooser.rate_edit, Qt.Key.Key_Return)  # Enter does not confirm
        assert dialog.isVisible() and dialog.request() is None
    type_over(qtbot, chooser.rate_edit, "5/s")
    assert dialog.pace_problem_label.isHidden() and dialog.ok_button.isEnabled()
    qtbot.mouseClick(chooser.canary_check, Qt.MouseButton.LeftButton)
    type_over(qtbot, chooser.canary_spin, "30")
    assert dialog.pace_problem_label.text().startswith(
        "The canary (30) must be smaller than the 30 payments to send"
    )
    assert not dialog.ok_button.isEnabled()
    type_over(qtbot, chooser.canary_spin, "3")
    assert dialog.ok_button.isEnabled()
    # Unticking the rate keeps the canary, at full speed after it.
    qtbot.mouseClick(chooser.rate_check, Qt.MouseButton.LeftButton)
    assert dialog.pace() == Pace(rate=0.0, canary=3)
    assert chooser.rate_hint.text() == "full speed after it"


def test_the_pace_is_chosen_with_the_keyboard_alone(qtbot):
    dialog = shown_active(
        qtbot, ConfirmActionDialog(ActionPlan("requeue", (("payments.process", 80),)))
    )
    chooser = dialog.pace_chooser
    assert chooser is not None
    focused = dialog.focusWidget()
    assert focused is not None
    qtbot.keyClick(focused, Qt.Key.Key_L, Qt.KeyboardModifier.AltModifier)  # &Limit the rate
    qtbot.waitUntil(chooser.rate_check.isChecked, timeout=2000)  # a mnemonic animates a click
    assert chooser.rate_edit.hasFocus()
    qtbot.keyClicks(chooser.rate_edit, "20/s")  # the default text was selected: typed over
    qtbot.keyClick(chooser.rate_edit, Qt.Key.Key_F, Qt.KeyboardModifier.AltModifier)  # &first
    qtbot.waitUntil(chooser.canary_check.isChecked, timeout=2000)
    assert chooser.canary_spin.hasFocus()
    qtbot.keyClicks(chooser.canary_spin, "4")
    with qtbot.waitSignal(dialog.confirmed):
        qtbot.keyClick(chooser.canary_spin, Qt.Key.Key_Return)
    assert dialog.pace() == Pace(rate=20.0, canary=4)
