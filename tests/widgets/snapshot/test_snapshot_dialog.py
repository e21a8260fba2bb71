"""The incident snapshot dialog: range, file name, validation, export, progress, result.

The tests run with the local zone set to UTC+05:30 (a POSIX TZ string, no
tzdata needed), so a mix-up between local time and UTC cannot go unnoticed:
the dialog shows and takes local time, the choice carries epoch seconds.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QDate, QDateTime, Qt, QTime, QUrl
from PySide6.QtGui import QDesktopServices, QImage
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from widgets.snapshot.dialog import FUTURE_GRACE_S, SnapshotChoice, SnapshotDialog, SnapshotState
from widgets.snapshot.range_text import (
    QUICK_RANGES,
    format_span,
    snapshot_file_name,
    zone_text,
)

IST = timezone(timedelta(hours=5, minutes=30))
NEW_YORK = timezone(timedelta(hours=-5))
NOW = datetime(2024, 3, 5, 15, 20, 7, tzinfo=UTC)  # 20:50:07 local
NOW_S = int(NOW.timestamp())
INCIDENT = (
    datetime(2024, 3, 5, 14, 2, 0, tzinfo=UTC),  # 19:32:00 local
    datetime(2024, 3, 5, 14, 37, 30, tzinfo=UTC),  # 20:07:30 local
)
INCIDENT_S = (int(INCIDENT[0].timestamp()), int(INCIDENT[1].timestamp()))
DAY = 24 * 3600


@pytest.fixture(autouse=True)
def local_zone() -> Iterator[None]:
    """Local time is UTC+05:30 for the test (Qt and Python both follow TZ after tzset)."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "IST-5:30"
    time.tzset()
    yield
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()


@pytest.fixture(autouse=True)
def no_real_modal_dialogs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A modal file or message box would block the test; the tests that want one patch it."""

    def refuse(*args, **kwargs):
        raise AssertionError("a modal dialog was opened")

    monkeypatch.setattr(QFileDialog, "getSaveFileName", refuse)
    monkeypatch.setattr(QMessageBox, "question", refuse)


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def make(qtbot, tmp_path: Path, **kwargs) -> SnapshotDialog:
    params: dict = {
        "now": NOW,
        "retention_s": DAY,
        "default_dir": tmp_path,
        "profile_name": "prod-eu",
        "clock": FakeClock(),
    }
    params.update(kwargs)
    dialog = SnapshotDialog(**params)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def with_incident(qtbot, tmp_path: Path, **kwargs) -> SnapshotDialog:
    return make(
        qtbot, tmp_path, incident=INCIDENT, incident_label="DLQ arrivals, latency p99", **kwargs
    )


def local(hour: int, minute: int, second: int = 0, day: int = 5) -> QDateTime:
    """A local date-time in March 2024 (what the operator types)."""
    return QDateTime(QDate(2024, 3, day), QTime(hour, minute, second))


def click(qtbot, button) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def export_and_capture(qtbot, dialog: SnapshotDialog) -> SnapshotChoice:
    with qtbot.waitSignal(dialog.export_requested) as blocker:
        click(qtbot, dialog.export_button)
    (choice,) = blocker.args
    return choice


# --------------------------------------------------------------------------- helpers


def test_format_span():
    assert format_span(0) == "0 s"
    assert format_span(45) == "45 s"
    assert format_span(15 * 60) == "15 min"
    assert format_span(2130) == "35 min 30 s"
    assert format_span(5400) == "1 h 30 min"
    assert format_span(DAY) == "24 h"
    assert format_span(2 * DAY + 3 * 3600) == "2 d 3 h"


def test_file_name_is_in_local_time_and_safe_for_any_profile():
    assert (
        snapshot_file_name("prod-eu", *INCIDENT_S)
        == "payops-snapshot-prod-eu-20240305-1932-2007.zip"
    )
    assert snapshot_file_name("EU / prod", *INCIDENT_S).startswith("payops-snapshot-EU-prod-")
    assert snapshot_file_name("../..", *INCIDENT_S).startswith("payops-snapshot-profile-")


def test_zone_text_names_the_zone():
    assert zone_text(NOW_S) == "IST"


def test_naive_datetimes_are_refused(qtbot, tmp_path):
    with pytest.raises(ValueError, match="timezone-aware"):
        SnapshotDialog(
            now=datetime(2024, 3, 5, 15, 0),
            retention_s=DAY,
            default_dir=tmp_path,
            profile_name="p",
        )


# --------------------------------------------------------------------------- range


def test_prefilled_with_the_incident(qtbot, tmp_path):
    dialog = with_incident(qtbot, tmp_path)
    assert dialog.range_s() == INCIDENT_S
    assert dialog.from_edit.text() == "2024-03-05 19:32:00"
    assert dialog.to_edit.text() == "2024-03-05 20:07:30"
    assert dialog.from_offset_label.text() == "IST"
    assert dialog.incident_note.isVisible()
    assert dialog.incident_note.text() == (
        "Pre-filled with the incident of 19:32–20:07 (alerts: DLQ arrivals, latency p99)"
    )
    assert dialog.incident_button.isEnabled()
    assert dialog.incident_button.isChecked()
    assert dialog.active_range == "Incident"
    assert dialog.duration_label.text().startswith("Duration 35 min 30 s")
    assert dialog.export_button.isEnabled()
    assert dialog.export_button.isDefault()


def test_incident_given_in_another_zone_lands_on_the_same_seconds(qtbot, tmp_path):
    incident = (INCIDENT[0].astimezone(NEW_YORK), INCIDENT[1].astimezone(NEW_YORK))
    dialog = make(qtbot, tmp_path, now=NOW.astimezone(NEW_YORK), incident=incident)
    assert dialog.range_s() == INCIDENT_S
    assert dialog.incident_note.text() == "Pre-filled with the incident of 19:32–20:07"


def test_without_an_incident_the_last_hour(qtbot, tmp_path):
    dialog = make(qtbot, tmp_path)
    assert dialog.range_s() == (NOW_S - 3600, NOW_S)
    assert not dialog.incident_button.isEnabled()
    assert dialog.incident_button.toolTip() == "No incident in the alerts"
    assert not dialog.incident_note.isVisible()
    assert dialog.quick_buttons["Last hour"].isChecked()


def test_default_range_when_there_is_no_incident(qtbot, tmp_path):
    start = datetime(2024, 3, 5, 20, 0, tzinfo=IST)
    dialog = make(qtbot, tmp_path, default_range=(start, start + timedelta(minutes=20)))
    assert dialog.range_s() == (int(start.timestamp()), int(start.timestamp()) + 1200)
    assert dialog.active_range is None


@pytest.mark.parametrize(("label", "span"), QUICK_RANGES)
def test_quick_buttons_set_ranges_ending_now(qtbot, tmp_path, label, span):
    dialog = with_incident(qtbot, tmp_path)
    click(qtbot, dialog.quick_buttons[label])
    assert dialog.range_s() == (NOW_S - span, NOW_S)
    assert dialog.active_range == label
    assert [name for name, b in dialog.quick_buttons.items() if b.isChecked()] == [label]
    assert dialog.export_button.isEnabled()


def test_quick_ranges_are_clamped_to_the_history_kept(qtbot, tmp_path):
    dialog = make(qtbot, tmp_path, retention_s=6 * 3600)
    assert "history goes back only 6 h" in dialog.quick_buttons["Last 24 h"].toolTip()
    click(qtbot, dialog.quick_buttons["Last 24 h"])
    assert dialog.range_s() == (NOW_S - 6 * 3600, NOW_S)
    assert dialog.export_button.isEnabled()


def test_quick_ranges_end_at_the_moving_now(qtbot, tmp_path):
    clock = FakeClock()
    dialog = make(qtbot, tmp_path, clock=clock)
    clock.now += 120
    click(qtbot, dialog.quick_buttons["Last 15 min"])
    assert dialog.range_s() == (NOW_S + 120 - 900, NOW_S + 120)


def test_incident_button_brings_the_incident_back_after_an_edit(qtbot, tmp_path):
    dialog = with_incident(qtbot, tmp_path)
    dialog.from_edit.setDateTime(local(19, 0))
    assert dialog.active_range is None
    assert not any(b.isChecked() for b in dialog.quick_buttons.values())
    click(qtbot, dialog.incident_button)
    assert dialog.range_s() == INCIDENT_S
    assert dialog.incident_button.isChecked()


# --------------------------------------------------------------------------- validation


def test_from_not_before_to_disables_export(qtbot, tmp_path):
    dialog = with_incident(qtbot, tmp_path)
    dialog.from_edit.setDateTime(dialog.to_edit.dateTime())
    assert not dialog.export_button.isEnabled()
    assert dialog.message_label.text() == "“From” must be before “To”."
    assert dialog.message_label.objectName() == "ValidationError"
    assert dialog.duration_label.text().startswith("Duration —")
    dialog.from_edit.setDateTime(local(20, 30))
    assert dialog.problem() == "“From” must be before “To”."
    with qtbot.assertNotEmitted(dialog.export_requested):
        dialog.export()
        qtbot.keyClick(dialog.to_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert dialog.state is SnapshotState.INPUT


def test_from_older_than_the_history_kept_is_refused(qtbot, tmp_path):
    dialog = with_incident(qtbot, tmp_path, retention_s=6 * 3600)
    assert dialog.export_button.isEnabled()
    dialog.from_edit.setDateTime(local(14, 0))  # 6 h 50 min before now
    assert not dialog.export_button.isEnabled()
    assert dialog.message_label.text() == (
        "“From” is older than the history kept (6 h): choose 14:50:07 or later."
    )
    dialog.from_edit.setDateTime(local(14, 50, 7))
    assert dialog.export_button.isEnabled()


def test_an_incident_older_than_the_history_kept_says_so(qtbot, tmp_path):
    dialog = with_incident(qtbot, tmp_path, retention_s=30 * 60)
    assert dialog.range_s() == INCIDENT_S
    assert "older than the history kept (30 min)" in dialog.message_label.text()
    assert not dialog.export_button.isEnabled()


def test_to_in_the_future_is_refused_beyond_a_small_grace(qtbot, tmp_path):
    dialog = make(qtbot, tmp_path)
    dialog.to_edit.setDateTime(QDateTime.fromSecsSinceEpoch(NOW_S + FUTURE_GRACE_S))
    assert dialog.export_button.isEnabled()
    dialog.to_edit.setDateTime(local(21, 0))
    assert not dialog.export_button.isEnabled()
    assert dialog.message_label.text() == "“To” is in the future: it is 20:50:07 now."


def test_output_folder_must_exist_and_be_writable(qtbot, tmp_path, monkeypatch):
    dialog = make(qtbot, tmp_path)
    dialog.path_edit.setText(str(tmp_path / "missing" / "x.zip"))
    assert not dialog.export_button.isEnabled()
    assert dialog.message_label.text() == f"The folder {tmp_path / 'missing'} does not exist."
    dialog.path_edit.setText("")
    assert dialog.message_label.text() == "Choose the file to write."
    dialog.path_edit.setText(str(tmp_path))
    assert dialog.message_label.text() == f"{tmp_path} is a folder: add a file name."
    with monkeypatch.context() as patch:  # tests may run as root, for whom chmod means nothing
        patch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)
        dialog.path_edit.setText(str(tmp_path / "x.zip"))
        assert dialog.message_label.text() == f"The folder {tmp_path} is not writable."
        assert not dialog.export_button.isEnabled()
    dialog.refresh()
    assert dialog.export_button.isEnabled()
    assert dialog.message_label.text() == ""


# --------------------------------------------------------------------------- file name


def test_default_file_name_follows_the_range(qtbot, tmp_path):
    dialog = with_incident(qtbot, tmp_path)
    assert dialog.path_edit.text() == str(
        tmp_path / "payops-snapshot-prod-eu-20240305-1932-2007.zip"
    )
    click(qtbot, dialog.quick_buttons["Last 15 min"])
    assert dialog.path_edit.text() == str(
        tmp_path / "payops-snapshot-prod-eu-20240305-2035-2050.zip"
    )
    dialog.to_edit.setDateTime(local(20, 45))
    assert dialog.path_edit.text().endswith("-20240305-2035-2045.zip")


def test_a_typed_name_is_kept(qtbot, tmp_path):
    dialog = with_incident(qtbot, tmp_path)
    dialog.path_edit.selectAll()
    qtbot.keyClicks(dialog.path_edit, str(tmp_path / "inc-2231.zip"))
    click(qtbot, dialog.quick_buttons["Last 6 h"])
    assert dialog.path_edit.text() == str(tmp_path / "inc-2231.zip")
    assert dialog.output_path() == tmp_path / "inc-2231.zip"
    # an emptied field follows the range again
    dialog.path_edit.selectAll()
    qtbot.keyClick(dialog.path_edit, Qt.Key.Key_Delete)
    assert dialog.path_edit.text() == ""
    click(qtbot, dialog.quick_buttons["Last hour"])
    assert dialog.path_edit.text().endswith("-20240305-1950-2050.zip")


def test_a_bare_name_goes_to_the_default_folder_and_gets_zip(qtbot, tmp_path):
    dialog = make(qtbot, tmp_path)
    dialog.path_edit.selectAll()
    qtbot.keyClicks(dialog.path_edit, "inc-2231")
    assert dialog.output_path() == tmp_path / "inc-2231.zip"
    assert dialog.message_label.text() == "Saved as inc-2231.zip."
    assert export_and_capture(qtbot, dialog).path == tmp_path / "inc-2231.zip"


def test_browse_uses_the_save_dialog(qtbot, tmp_path, monkeypatch):
    dialog = make(qtbot, tmp_path)
    calls = []

    def fake_save(parent, caption, start, filters, selected, options):
        calls.append((start, filters, options))
        return str(tmp_path / "picked"), "Zip archives (*.zip)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", fake_save)
    before = dialog.path_edit.text()
    click(qtbot, dialog.browse_button)
    ((start, filters, options),) = calls
    assert start == before
    assert "*.zip" in filters
    assert options & QFileDialog.Option.DontConfirmOverwrite  # asked once, on export
    assert dialog.path_edit.text() == str(tmp_path / "picked.zip")
    click(qtbot, dialog.quick_buttons["Last 15 min"])
    assert dialog.path_edit.text() == str(tmp_path / "picked.zip")


# --------------------------------------------------------------------------- export


def test_export_emits_the_choice_in_epoch_seconds(qtbot, tmp_path):
    dialog = with_incident(qtbot, tmp_path)
    choice = export_and_capture(qtbot, dialog)
    assert choice == SnapshotChoice(
        from_s=INCIDENT_S[0],
        to_s=INCIDENT_S[1],
        path=tmp_path / "payops-snapshot-prod-eu-20240305-1932-2007.zip",
    )
    assert isinstance(choice.from_s, int)


def test_typed_local_times_become_the_right_epoch_seconds(qtbot, tmp_path):
    dialog = make(qtbot, tmp_path)
    dialog.from_edit.setDateTime(local(20, 0, 15))  # local = UTC+05:30
    dialog.to_edit.setDateTime(local(20, 40))
    choice = export_and_capture(qtbot, dialog)
    assert choice.from_s == int(datetime(2024, 3, 5, 14, 30, 15, tzinfo=UTC).timestamp())
    assert choice.to_s == int(datetime(2024, 3, 5, 20, 40, tzinfo=IST).timestamp())


def test_ctrl_enter_exports(qtbot, tmp_path):
    dialog = with_incident(qtbot, tmp_path)
    with qtbot.waitActive(dialog):  # window shortcuts need the active window
        dialog.activateWindow()
    dialog.path_edit.setFocus()
    with qtbot.waitSignal(dialog.export_requested):
        qtbot.keyClick(dialog.path_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert dialog.state is SnapshotState.EXPORTING


def test_enter_exports_from_the_fields_but_presses_a_focused_quick_button(qtbot, tmp_path):
    dialog = with_incident(qtbot, tmp_path)
    with qtbot.waitActive(dialog):
        dialog.activateWindow()
    button = dialog.quick_buttons["Last 6 h"]
    button.setFocus()
    with qtbot.assertNotEmitted(dialog.export_requested):
        qtbot.keyClick(button, Qt.Key.Key_Return)
    assert dialog.active_range == "Last 6 h"
    dialog.to_edit.setFocus()
    with qtbot.waitSignal(dialog.export_requested):
        qtbot.keyClick(dialog.to_edit, Qt.Key.Key_Return)
    # a second Enter does not cancel the export it just started
    with qtbot.assertNotEmitted(dialog.cancel_requested):
        qtbot.keyClick(QApplication.focusWidget() or dialog, Qt.Key.Key_Return)
    assert dialog.state is SnapshotState.EXPORTING


def test_export_switches_to_progress_with_the_inputs_disabled(qtbot, tmp_path):
    dialog = with_incident(qtbot, tmp_path)
    choice = export_and_capture(qtbot, dialog)
    assert dialog.state is SnapshotState.EXPORTING
    for widget in (
        dialog.from_edit,
        dialog.to_edit,
        dialog.path_edit,
        dialog.browse_button,
        *dialog.quick_buttons.values(),
    ):
        assert not widget.isEnabled()
    assert not dialog.export_button.isVisible()
    assert dialog.cancel_button.isVisible()
    assert dialog.progress_box.isVisible()
    assert dialog.subline_label.text() == str(choice.path)
    with qtbot.assertNotEmitted(dialog.export_requested):
        dialog.export()


def test_progress_determinate_and_busy(qtbot, tmp_path):
    dialog = with_incident(qtbot, tmp_path)
    export_and_capture(qtbot, dialog)
    bar = dialog.progress_bar
    dialog.set_progress("Failed payments", 12_000, 100_000)
    assert dialog.stage_label.text() == "Failed payments 12,000 / 100,000"
    assert bar.maximum() > 0
    assert bar.value() / bar.maximum() == pytest.approx(0.12)
    dialog.set_progress("Rendering charts", 0, None)
    assert dialog.stage_label.text() == "Rendering charts"
    assert (bar.minimum(), bar.maximum()) == (0, 0)  # busy
    dialog.set_progress("Audit trail", 3_400, None)
    assert dialog.stage_label.text() == "Audit trail 3,400"
    dialog.set_progress("Alerts", 0, 0)
    assert bar.value() == bar.maximum()


def test_cancel_emits_once_and_waits_for_the_app(qtbot, tmp_path):
    dialog = with_incident(qtbot, tmp_path)
    export_and_capture(qtbot, dialog)
    with qtbot.waitSignal(dialog.cancel_requested):
        click(qtbot, dialog.cancel_button)
    assert dialog.cancelling
    assert not dialog.cancel_button.isEnabled()
    assert dialog.cancel_button.text() == "Cancelling…"
    with qtbot.assertNotEmitted(dialog.cancel_requested):
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)
        dialog.request_cancel()
    assert dialog.isVisible()
    dialog.fail("Cancelled")
    assert dialog.state is SnapshotState.INPUT
    assert dialog.error_note.isVisible()
    assert dialog.error_note.text() == "Export cancelled."
    assert dialog.error_note.objectName() == "CancelledNote"
    assert dialog.from_edit.isEnabled()
    assert dialog.export_button.isEnabled()


def test_escape_while_exporting_asks_to_cancel_and_does_not_close(qtbot, tmp_path):
    dialog = with_incident(qtbot, tmp_path)
    export_and_capture(qtbot, dialog)
    with qtbot.waitSignal(dialog.cancel_requested):
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert dialog.isVisible()


def test_closing_the_window_while_exporting_asks_to_cancel(qtbot, tmp_path):
    dialog = with_incident(qtbot, tmp_path)
    export_and_capture(qtbot, dialog)
    with qtbot.waitSignal(dialog.cancel_requested):
        dialog.close()
    assert dialog.isVisible()


def test_escape_before_exporting_closes(qtbot, tmp_path):
    dialog = make(qtbot, tmp_path)
    with qtbot.assertNotEmitted(dialog.cancel_requested):
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert not dialog.isVisible()
    assert dialog.result() == SnapshotDialog.DialogCode.Rejected


def test_fail_shows_the_error_and_lets_the_operator_retry(qtbot, tmp_path):
    dialog = with_incident(qtbot, tmp_path)
    export_and_capture(qtbot, dialog)
    dialog.set_progress("Charts", 2, 6)
    dialog.fail("No space left on device")
    assert dialog.state is SnapshotState.INPUT
    assert dialog.error_note.text() == "Export failed: No space left on device"
    assert dialog.error_note.objectName() == "ErrorNote"
    assert not dialog.progress_box.isVisible()
    assert dialog.path_edit.isEnabled()
    dialog.set_progress("Charts", 3, 6)  # late report: ignored
    assert dialog.state is SnapshotState.INPUT
    choice = export_and_capture(qtbot, dialog)
    assert choice.from_s == INCIDENT_S[0]
    assert not dialog.error_note.isVisible()


def test_finish_shows_the_file_and_opens_its_folder(qtbot, tmp_path, monkeypatch):
    dialog = with_incident(qtbot, tmp_path)
    choice = export_and_capture(qtbot, dialog)
    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    dialog.finish(choice.path, "412 failed payments · 6 charts · 2.4 MB")
    assert dialog.state is SnapshotState.DONE
    assert dialog.result_panel.isVisible()
    assert not dialog.form_box.isVisible()
    assert dialog.result_path_label.text() == str(choice.path)
    assert dialog.result_summary_label.text() == "412 failed payments · 6 charts · 2.4 MB"
    assert dialog.result_range_label.text() == (
        "2024-03-05 19:32:00 – 20:07:30  (IST) · 35 min 30 s"
    )
    assert dialog.open_folder_button.isVisible()
    assert not dialog.cancel_button.isVisible()
    assert dialog.close_button.isDefault()
    click(qtbot, dialog.open_folder_button)
    assert opened == [QUrl.fromLocalFile(str(tmp_path))]
    with qtbot.assertNotEmitted(dialog.cancel_requested):
        click(qtbot, dialog.close_button)
    assert not dialog.isVisible()
    assert dialog.result() == SnapshotDialog.DialogCode.Accepted


def test_an_existing_file_is_replaced_only_when_the_operator_says_so(qtbot, tmp_path, monkeypatch):
    dialog = with_incident(qtbot, tmp_path)
    path = dialog.output_path()
    assert path is not None
    path.write_bytes(b"old")
    dialog.refresh()
    assert dialog.message_label.text() == (
        f"{path.name} already exists: you will be asked before it is replaced."
    )
    assert dialog.export_button.isEnabled()
    questions = []

    def answer(reply):
        def question(parent, title, text, buttons, default):
            questions.append(text)
            assert default == QMessageBox.StandardButton.No
            return reply

        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    with qtbot.assertNotEmitted(dialog.export_requested):
        click(qtbot, dialog.export_button)
    assert dialog.state is SnapshotState.INPUT
    assert path.name in questions[0]
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    assert export_and_capture(qtbot, dialog).path == path
    assert len(questions) == 2


def test_no_question_for_a_new_file(qtbot, tmp_path, monkeypatch):
    dialog = with_incident(qtbot, tmp_path)
    export_and_capture(qtbot, dialog)  # the autouse fixture fails the test if it asks


# --------------------------------------------------------------------------- keyboard


def test_tab_order_follows_the_layout(qtbot, tmp_path):
    dialog = with_incident(qtbot, tmp_path)
    order = []
    widget = dialog.incident_button
    for _ in range(len(dialog.quick_buttons) + 5):
        order.append(widget)
        widget = widget.nextInFocusChain()
        while widget.focusPolicy() & Qt.FocusPolicy.TabFocus != Qt.FocusPolicy.TabFocus or (
            widget.focusProxy() is not None
        ):
            widget = widget.nextInFocusChain()
    assert order == [
        *dialog.quick_buttons.values(),
        dialog.from_edit,
        dialog.to_edit,
        dialog.path_edit,
        dialog.browse_button,
        dialog.export_button,
    ]


def test_everything_has_a_tooltip(qtbot, tmp_path):
    dialog = with_incident(qtbot, tmp_path)
    for widget in (
        *dialog.quick_buttons.values(),
        dialog.from_edit,
        dialog.to_edit,
        dialog.path_edit,
        dialog.browse_button,
        dialog.export_button,
    ):
        assert widget.toolTip(), widget.objectName()
    assert "Ctrl+Enter" in dialog.export_button.toolTip()


# --------------------------------------------------------------------------- screenshots


def pixels(image: QImage) -> np.ndarray:
    rgb = image.convertToFormat(QImage.Format.Format_ARGB32)
    height, width, stride = rgb.height(), rgb.width(), rgb.bytesPerLine()
    raw = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=stride * height)
    return raw.reshape(height, stride)[:, : width * 4].copy().view(np.uint32).reshape(height, width)


def save_screenshot(widget, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    assert widget.grab().save(str(path))
    shutil.copy(path, Path("/tmp") / name)
    assert np.unique(pixels(QImage(str(path)))).size > 50


def test_screenshots(qtbot, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dialog = with_incident(qtbot, out)
    QApplication.processEvents()
    save_screenshot(dialog, tmp_path, "payops_snapshot_input.png")
    choice = export_and_capture(qtbot, dialog)
    dialog.set_progress("Failed payments", 12_000, 100_000)
    QApplication.processEvents()
    save_screenshot(dialog, tmp_path, "payops_snapshot_progress.png")
    dialog.finish(choice.path, "412 failed payments · 6 charts · 18 audit records · 2.4 MB")
    QApplication.processEvents()
    save_screenshot(dialog, tmp_path, "payops_snapshot_done.png")
