"""Regenerate the README screenshots from the real console on the demo flow.

``make screenshots`` (offscreen): starts the demo simulator with an incident,
opens the console on the demo profile, lets the flow run, and saves PNGs
under ``docs/screenshots/``: the live console during the incident (alert
banner and marks), the workbench grouped by cause, a failed payment's timeline
(its id entered in the search box), the alerts page, the snapshot dialog
pre-filled with the incident, the snapshot's report.html rendered by
headless Chromium when it is installed (``apt-get install chromium``), and,
after the incident, the largest group requeued with its job's live outcomes, then the
next group requeued paced (a rate and a canary typed into the confirmation,
``confirm-paced.png``) and its progress dialog following the job live
(``job-paced.png``: sent, pace, canary, outcome counters, Pause / Resume / Cancel job).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import qasync
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from app.console import ConsoleSession, DemoSimulator
from app.ui_state import UiState
from services.config import ENV_AMQP_URL, ENV_REDIS_URL, load_profile
from services.demo.topology import declare_demo_topology_at
from widgets.common.theme import apply_theme
from widgets.main_window import MainWindow
from widgets.snapshot.dialog import SnapshotState
from widgets.workbench.action_dialogs import ConfirmActionDialog
from widgets.workbench.action_progress import ActionProgressDialog
from widgets.workbench.action_summary import ActionSummaryDialog

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


async def live_console(seconds: float, state_path: Path) -> None:
    """Run the console on the demo flow for ``seconds`` and save the window."""
    # The built-in demo profile; its broker and Redis from the environment, as the simulator
    # takes them (a vhost and database of one's own beside other users of a shared broker).
    profile = load_profile(
        env={k: os.environ[k] for k in (ENV_AMQP_URL, ENV_REDIS_URL) if k in os.environ}
    )
    await declare_demo_topology_at(profile.amqp_url)
    simulator = DemoSimulator(
        [
            sys.executable,
            "-m",
            "app",
            "simulate",
            "--rate",
            "40",
            "--incident",
            "--incident-after",
            str(seconds * 0.45),
            "--incident-duration",
            str(seconds * 0.3),
        ]
    )
    session = ConsoleSession(profile, UiState(state_path))
    session.window.resize(1600, 1000)  # the size the README's images show
    window = session.window
    simulator.start()
    runner = asyncio.ensure_future(session.run())
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        # Mid-incident: the failure-rate alert fires about 20 s after it starts.
        await asyncio.sleep(seconds * 0.7)
        window_s = 60 if seconds <= 90 else 300
        window.select_window(window_s)
        session.live.on_window_selected(window_s)
        await asyncio.sleep(1.0)
        save(window, "live-console.png")

        window.tabs.setCurrentWidget(window.workbench)
        view = window.workbench.table_view
        view.refresh()
        await asyncio.sleep(0.5)
        # The largest failure group chosen in the group panel, as an operator does first.
        # (Unfiltered, the newest second of dead letters would fill the table, each showing
        # its dead-letter reason until the parker looks its payment up on the flow again,
        # 2 s after parking: the flow's events are recorded about once a second.)
        await asyncio.sleep(3.0)
        panel = view.group_panel
        items = panel.group_items()
        if items:
            rect = panel.list.visualItemRect(items[0])
            QTest.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        await asyncio.sleep(1.0)
        save(window, "workbench.png")
        if items:  # all groups again
            QTest.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        await timeline_screen(window)

        await asyncio.sleep(max(0.0, seconds * 0.3 - 3))
        session.live.alerts.refresh_log()
        window.show_alerts_page()
        await asyncio.sleep(1.5)
        save(window, "alerts.png")
        await snapshot_screens(session)
        await job_screen(window)
        await paced_job_screen(window)
    finally:
        simulator.stop()
        window.close()
        await runner


async def timeline_screen(window: MainWindow) -> None:
    """A failed payment's timeline, opened as an operator does: its id typed into the
    search box and Enter (the pane opens on the Timeline tab)."""
    page = window.workbench
    view = page.table_view
    model = view.model
    rows = [model.summary_at(r) for r in range(min(model.rowCount(), 200))]
    flow = [s for s in rows if s.cause_source == "flow" and s.payment_id]
    chosen = (flow or [s for s in rows if s.payment_id] or [None])[0]
    if chosen is None or chosen.payment_id is None:
        print("no parked payment: no timeline screenshot")
        return
    view.search_box.setFocus()
    QTest.keyClicks(view.search_box, chosen.payment_id)
    QTest.keyClick(view.search_box, Qt.Key.Key_Return)
    await asyncio.sleep(2.5)
    save(window, "workbench-timeline.png")
    view.search_box.clear()
    QTest.keyClick(view.search_box, Qt.Key.Key_Return)
    page.set_detail_open(False)


async def job_screen(window: MainWindow) -> None:
    """After the incident: the largest failure group requeued from the console (chosen,
    "Select all in group", Requeue, a note, confirmed), and its result dialog a while
    later, its job's outcome counters moving as the demo's workers capture the payments."""
    page = window.workbench
    window.tabs.setCurrentWidget(page)
    view = page.table_view
    panel = view.group_panel
    items = panel.group_items()
    if not items:
        print("no failure group: no job screenshot")
        return
    rect = panel.list.visualItemRect(items[0])
    QTest.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    await asyncio.sleep(0.5)
    QTest.mouseClick(panel.select_all_button, Qt.MouseButton.LeftButton)
    await asyncio.sleep(0.5)
    QTest.mouseClick(view.action_buttons["requeue"], Qt.MouseButton.LeftButton)
    dialog = await _modal(ConfirmActionDialog, 20)
    if dialog is None:
        print("no confirmation dialog: no job screenshot")
        return
    QTest.keyClicks(dialog.reason_edit, "acquirer back after INC-4411")
    QTest.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    deadline = time.monotonic() + 120
    while not window.findChildren(ActionSummaryDialog) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    summaries = window.findChildren(ActionSummaryDialog)
    if not summaries:
        print("no result dialog: no job screenshot")
        return
    await asyncio.sleep(8.0)  # the outcomes arrive as the workers capture the payments
    save(summaries[0], "job-outcomes.png")
    summaries[0].close()


async def paced_job_screen(window: MainWindow) -> None:
    """The next failure group requeued paced: 20/s with a canary of 10 typed into the
    confirmation (saved), then its progress dialog a while into the run (saved); the job
    is cancelled from the dialog afterwards."""
    view = window.workbench.table_view
    panel = view.group_panel
    await asyncio.sleep(2.0)
    items = panel.group_items()[1:]  # the first was requeued by job_screen
    if not items:
        print("no failure group left: no paced job screenshots")
        return
    rect = panel.list.visualItemRect(items[0])
    QTest.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    await asyncio.sleep(0.5)
    QTest.mouseClick(panel.select_all_button, Qt.MouseButton.LeftButton)
    await asyncio.sleep(0.5)
    QTest.mouseClick(view.action_buttons["requeue"], Qt.MouseButton.LeftButton)
    dialog = await _modal(ConfirmActionDialog, 20)
    chooser = dialog.pace_chooser if dialog is not None else None
    if dialog is None or chooser is None:
        print("no bulk confirmation: no paced job screenshots")
        return
    for check, field, text in (
        (chooser.rate_check, chooser.rate_edit, "20/s"),
        (chooser.canary_check, chooser.canary_spin, "10"),
    ):
        QTest.mouseClick(check, Qt.MouseButton.LeftButton)
        QTest.keyClick(field, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
        QTest.keyClicks(field, text)
    QTest.keyClicks(dialog.reason_edit, "acquirer back: paced, canary first")
    await asyncio.sleep(0.3)
    save(dialog, "confirm-paced.png")
    QTest.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    deadline = time.monotonic() + 30
    progress: list[ActionProgressDialog] = []
    while not progress and time.monotonic() < deadline:
        progress = [d for d in window.findChildren(ActionProgressDialog) if d.job_panel]
        await asyncio.sleep(0.2)
    if not progress:
        print("no paced progress dialog: no job-paced screenshot")
        return
    await asyncio.sleep(12.0)  # the canary judged on the workers' outcomes, the rest going
    save(progress[0], "job-paced.png")
    job_panel = progress[0].job_panel
    if job_panel is not None and job_panel.cancel_button.isEnabled():
        QTest.mouseClick(job_panel.cancel_button, Qt.MouseButton.LeftButton)
    deadline = time.monotonic() + 30
    while progress[0].isVisible() and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)
    for summary in window.findChildren(ActionSummaryDialog):
        summary.close()


async def _modal(kind: type[ConfirmActionDialog], timeout_s: float) -> ConfirmActionDialog | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        widget = QApplication.activeModalWidget()
        if isinstance(widget, kind):
            return widget
        await asyncio.sleep(0.1)
    return None


def save(widget: QWidget, name: str) -> Path:
    path = OUT / name
    widget.grab().save(str(path))
    print(f"saved {path}")
    return path


async def snapshot_screens(session: ConsoleSession) -> None:
    """The export dialog pre-filled with the incident, and the report it writes."""
    dialog = session.snapshots.open_dialog()
    await asyncio.sleep(0.5)
    save(dialog, "snapshot-dialog.png")
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "incident.zip"
        dialog.path_edit.setText(str(bundle))
        dialog.export()
        deadline = time.monotonic() + 120
        while dialog.state is not SnapshotState.DONE and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        dialog.close()
        if not bundle.is_file():
            print("the snapshot was not written; no report screenshot")
            return
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            print("no chromium: no report screenshot (apt-get install chromium)")
            return
        with zipfile.ZipFile(bundle) as archive:
            archive.extract("report.html", tmp)
        report = OUT / "snapshot-report.png"
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={tmp}/chromium",
                "--hide-scrollbars",
                "--window-size=1280,1900",
                f"--screenshot={report}",
                Path(tmp, "report.html").as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        print(f"saved {report}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=150.0)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setQuitOnLastWindowClosed(False)
    apply_theme(app)
    with tempfile.TemporaryDirectory() as tmp:  # a first run's layout: no widths remembered
        qasync.run(live_console(args.seconds, Path(tmp) / "console.ini"))


if __name__ == "__main__":
    main()
