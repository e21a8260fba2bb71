"""Keeps an action's dialogs live: polls its job in Redis and pushes its progress and
outcome counters into the dialog (the progress dialog of a paced job while it runs, the
result dialog after), and turns the dialog's Pause / Resume / Cancel into job state
changes in Redis (so they reach the job wherever it runs). A paced job's progress dialog
follows its job from the moment it exists (``ActionService.on_job_created``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMessageBox
from qasync import asyncSlot
from redis.exceptions import RedisError

from services.masking.text import mask_text
from services.workbench.actions.jobs import Job, JobState
from services.workbench.actions.service import ActionRefused, ActionService
from widgets.common.notice import show_notice
from widgets.workbench.action_progress import ActionProgressDialog
from widgets.workbench.action_summary import ActionSummaryDialog
from widgets.workbench.job_panel import JobStatus

log = logging.getLogger(__name__)

JOB_POLL_S: Final = 0.5
"""How often an open result dialog reads its job's counters."""

_FROM: Final = {
    "pause": (JobState.PAUSED, (JobState.RUNNING,)),
    "cancel": (JobState.CANCELLED, (JobState.RUNNING, JobState.PAUSED, JobState.STOPPED)),
}


def job_status(job: Job) -> JobStatus:
    """A job as the dialog takes it (plain data)."""
    return JobStatus(
        job.job_id,
        job.state.value,
        job.reason,
        job.total,
        dict(job.outcomes),
        job.runner_alive,
        job.action,
        job.operator,
        job.created_ms,
        job.pace.rate,
        job.pace.canary,
        job.pace.max_failed_pct,
        dict(job.counts),
    )


class JobWatch(QObject):
    """One open dialog's job: polled until the dialog closes (see the module docstring).
    ``stop`` ends the polling (the console closes)."""

    def __init__(
        self,
        actions: ActionService,
        dialog: ActionSummaryDialog | ActionProgressDialog,
        job_id: str,
    ) -> None:
        super().__init__(dialog)
        self.actions = actions
        self.dialog = dialog
        self.job_id = job_id
        self._closed = asyncio.Event()
        self._wake = asyncio.Event()
        dialog.finished.connect(self._closed.set)
        dialog.destroyed.connect(self._closed.set)
        dialog.job_control_requested.connect(self.on_job_control_requested)
        self.task = asyncio.ensure_future(self._poll())

    def stop(self) -> None:
        self._closed.set()

    async def _poll(self) -> None:
        """Read the job and push it into the dialog until the dialog closes; after its
        outcomes are all in, once more a while so a late change still shows."""
        while not self._closed.is_set():
            try:
                job = await self.actions.jobs.get(self.job_id)
            except (RedisError, OSError) as exc:
                log.warning("job %s cannot be read: %s", self.job_id, exc)
                job = None
            if job is not None and not self._closed.is_set():
                self.dialog.show_job(job_status(job))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait_either(), JOB_POLL_S)

    async def _wait_either(self) -> None:
        waits = [asyncio.ensure_future(e.wait()) for e in (self._closed, self._wake)]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    @asyncSlot(str, str)
    async def on_job_control_requested(self, job_id: str, verb: str) -> None:
        """Pause, resume or cancel the job in Redis (resume runs the rest here when the
        process that ran it is gone)."""
        actions = self.actions
        try:
            actions.refuse_if_read_only(verb)
            if verb == "resume":
                self._wake.set()
                await actions.resume_job(job_id)
            else:
                state, allowed = _FROM[verb]
                who = f"{state.value} by {actions.operator} from the console"
                moved, before = await actions.jobs.set_state(
                    job_id, state, mask_text(who), only_from=allowed
                )
                if not moved:
                    show_notice(
                        self.dialog,
                        QMessageBox.Icon.Information,
                        "Job",
                        f"Job {job_id} is {before}: it cannot be {verb}d",
                    )
        except ActionRefused as exc:
            show_notice(self.dialog, QMessageBox.Icon.Warning, "Job", str(exc))
        except (RedisError, OSError) as exc:
            show_notice(
                self.dialog, QMessageBox.Icon.Critical, "Job", f"{type(exc).__name__}: {exc}"
            )
        self._wake.set()
