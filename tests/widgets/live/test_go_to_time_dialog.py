"""GoToTimeDialog: a local date-time within the retention window, read as the CLI reads it."""

from __future__ import annotations

import time

from PySide6.QtCore import QDateTime, Qt
from PySide6.QtWidgets import QApplication

from services.time_range import parse_moment, parse_time_point
from widgets.live.go_to_time_dialog import GoToTimeDialog

NOW = 1_715_956_215.0  # 2024-05-17 14:30:15 UTC


def test_the_moment_shown_means_the_same_on_the_command_line(qtbot):
    """The dialog's text, typed as ``--from``/``--since``, is the moment it returns."""
    dialog = GoToTimeDialog(6 * 3600, clock=lambda: NOW)
    qtbot.addWidget(dialog)
    for moment in (NOW - 3600, NOW - 5 * 3600 - 59, NOW):
        dialog.edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(moment)))
        assert dialog.moment() == moment
        assert parse_time_point(dialog.edit.text()) == moment
        assert parse_moment(dialog.edit.text()) == moment


def test_starts_an_hour_back_within_the_retention_window(qtbot):
    now = time.time()
    dialog = GoToTimeDialog(1800, clock=lambda: now)
    qtbot.addWidget(dialog)
    assert dialog.moment() == int(now) - 1800  # an hour back is before the window: its start
    assert dialog.edit.maximumDateTime().toSecsSinceEpoch() == int(now)


def _local(text: str) -> int:
    return QDateTime.fromString(text, "yyyy-MM-dd HH:mm:ss").toSecsSinceEpoch()


def test_a_full_date_time_typed_or_pasted_after_select_all_is_the_moment(qtbot):
    # The trial: Ctrl+A, then a full date-time typed or pasted came out as "now" (the
    # editor re-read each keystroke section by section against its bounds).
    now = _local("2026-12-05 01:17:30")
    for target in ("2026-12-05 01:09:00", "2026-12-05 00:30:15", "2026-12-04 23:59:00"):
        for paste in (False, True):
            dialog = GoToTimeDialog(24 * 3600, clock=lambda: now)
            qtbot.addWidget(dialog)
            dialog.show()
            qtbot.keyClick(dialog.edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
            if paste:
                QApplication.clipboard().setText(target)
                qtbot.keyClick(dialog.edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
            else:
                qtbot.keyClicks(dialog.edit, target)
            assert dialog.edit.text() == target
            with qtbot.waitSignal(dialog.accepted, timeout=1000):
                qtbot.mouseClick(dialog.go_button, Qt.MouseButton.LeftButton)
            assert dialog.moment() == _local(target)


def test_up_down_step_the_part_under_the_cursor_and_a_moment_out_of_range_is_refused(qtbot):
    now = _local("2026-12-05 01:17:30")
    dialog = GoToTimeDialog(6 * 3600, initial=_local("2026-12-05 00:10:00"), clock=lambda: now)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.edit.setCursorPosition(12)  # in the hour
    qtbot.keyClick(dialog.edit, Qt.Key.Key_Up)
    assert dialog.edit.text() == "2026-12-05 01:10:00"
    dialog.edit.setCursorPosition(15)  # in the minutes
    qtbot.keyClick(dialog.edit, Qt.Key.Key_Down)
    assert dialog.edit.text() == "2026-12-05 01:09:00"
    qtbot.keyClick(dialog.edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(dialog.edit, "2026-12-04 12:00:00")  # before the 6 h kept
    assert not dialog.go_button.isEnabled() and "Before the history kept" in (
        dialog.problem_label.text()
    )
    qtbot.keyClick(dialog.edit, Qt.Key.Key_Return)
    assert dialog.result() == 0 and dialog.isVisible()  # not gone to "now" or the start
    qtbot.keyClick(dialog.edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(dialog.edit, "not a time")
    assert not dialog.go_button.isEnabled() and "Not a time" in dialog.problem_label.text()
