"""Incident snapshot export from the console: the dialog, the writer, its progress."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, Slot
from redis.exceptions import RedisError

from services.config import Profile
from services.links.redis import RedisLink
from services.snapshot.entries import default_workers
from services.snapshot.job import write_snapshot
from services.snapshot.model import (
    SnapshotCancelled,
    SnapshotProgress,
    SnapshotRequest,
    SnapshotResult,
)
from services.stopping import stop_tasks
from widgets.main_window import MainWindow
from widgets.snapshot.chart_process import ChartProcess
from widgets.snapshot.dialog import SnapshotChoice, SnapshotDialog

log = logging.getLogger(__name__)

INCIDENT_TAIL_S = 60  # the range runs on past the last resolution, which it then holds


def default_export_dir() -> Path:
    """Where snapshots go unless the operator picks another folder."""
    for location in (
        QStandardPaths.StandardLocation.DocumentsLocation,
        QStandardPaths.StandardLocation.HomeLocation,
    ):
        path = QStandardPaths.writableLocation(location)
        if path and Path(path).is_dir():
            return Path(path)
    return Path.cwd()


class SnapshotController(QObject):
    """Opens the export dialog on ``snapshot_requested`` and writes the bundle.

    The range is pre-filled with the latest incident (``incident_range``, from
    the alerts). The writer runs on the GUI's loop with the console's Redis
    client, in small steps, reporting progress to the dialog; Cancel (or
    closing the dialog) stops it and leaves no partial file behind.
    """

    def __init__(
        self,
        window: MainWindow,
        profile: Profile,
        redis: RedisLink,
        incident_range: Callable[[], tuple[float, float] | None],
        export_dir: Path | None = None,
    ) -> None:
        super().__init__(window)
        self._window = window
        self._profile = profile
        self._redis = redis
        self._incident_range = incident_range
        self._export_dir = export_dir
        self.dialog: SnapshotDialog | None = None
        self._task: asyncio.Task[None] | None = None
        self._cancel = threading.Event()
        self.last_result: SnapshotResult | None = None
        window.snapshot_requested.connect(self.open_dialog)

    @Slot()
    def open_dialog(self) -> SnapshotDialog:
        """Show the export dialog (or raise the one already open)."""
        if self.dialog is not None:
            self.dialog.raise_()
            self.dialog.activateWindow()
            return self.dialog
        now = datetime.now(UTC).astimezone()
        incident = self._incident_range()
        incident_dt = None
        label = ""
        if incident is not None:
            start = datetime.fromtimestamp(incident[0], UTC).astimezone()
            end = datetime.fromtimestamp(incident[1] + INCIDENT_TAIL_S, UTC).astimezone()
            incident_dt = (start, min(end, now))
            label = "from 5 min before the first alert to 1 min after the last resolved"
        dialog = SnapshotDialog(
            now=now,
            retention_s=self._profile.history_retention_s,
            incident=incident_dt,
            incident_label=label,
            default_dir=self._export_dir or default_export_dir(),
            profile_name=self._profile.name,
            parent=self._window,
        )
        dialog.export_requested.connect(self.on_export_requested)
        dialog.cancel_requested.connect(self.on_cancel_requested)
        dialog.finished.connect(self._on_dialog_finished)
        self.dialog = dialog
        dialog.show()
        return dialog

    def _on_dialog_finished(self) -> None:
        self.on_cancel_requested()
        if self.dialog is not None:
            self.dialog.deleteLater()
        self.dialog = None

    @Slot(object)
    def on_export_requested(self, choice: SnapshotChoice) -> None:
        """Write the snapshot the dialog asked for."""
        if self._task is not None and not self._task.done():
            return
        self._cancel = threading.Event()
        self._task = asyncio.ensure_future(self._export(choice))

    @Slot()
    def on_cancel_requested(self) -> None:
        """Stop an export under way."""
        self._cancel.set()

    async def stop(self) -> None:
        """Cancel any export and close the dialog."""
        with contextlib.suppress(RuntimeError):  # already disconnected
            self._window.snapshot_requested.disconnect(self.open_dialog)
        self._cancel.set()
        task, self._task = self._task, None
        if task is not None:
            await stop_tasks([task], "snapshot export")
        if self.dialog is not None:
            self.dialog.finished.disconnect(self._on_dialog_finished)
            self.dialog.close()
            self.dialog = None

    async def _export(self, choice: SnapshotChoice) -> None:
        dialog = self.dialog
        client = self._redis.client
        if client is None:
            if dialog is not None:
                dialog.fail("Redis is not connected: the snapshot needs the shared state in it.")
            return
        request = SnapshotRequest(
            self._profile, choice.from_s, choice.to_s, choice.path, overwrite=True
        )

        def progress(step: SnapshotProgress) -> None:
            if self.dialog is not None:
                self.dialog.set_progress(step.stage, step.done, step.total)

        try:
            result = await write_snapshot(
                request,
                client,
                render_charts=ChartProcess(),  # drawn in a child: the GUI thread never waits
                progress=progress,
                cancel=self._cancel,
                # Read, decoded and masked by worker processes: the GUI loop only walks
                # the index and writes the files (as the CLI and bench_snapshot do).
                workers=default_workers(),
            )
        except SnapshotCancelled:
            if self.dialog is not None:
                self.dialog.fail("Cancelled: nothing was written.")
            return
        except (RedisError, OSError, ValueError) as exc:
            log.warning("snapshot export failed: %s", exc)
            if self.dialog is not None:
                self.dialog.fail(f"The snapshot could not be written: {exc}")
            return
        self.last_result = result
        counts = result.counts
        summary = (
            f"{counts.events:,} events, {counts.failed_payments:,} failed payments,"
            f" {counts.audit_records:,} operator actions, {counts.alert_events:,} alert events"
            f" · {result.size / 1e6:.1f} MB"
        )
        log.info("snapshot written to %s (%s)", result.path, summary)
        if self.dialog is not None:
            self.dialog.finish(result.path, summary)
