"""GoToTimeDialog: a local date-time within the retention window, read as the CLI reads it."""

from __future__ import annotations

import time

from PySide6.QtCore import QDateTime

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
