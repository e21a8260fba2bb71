"""The Audit page's jobs: each bulk action's job, newest first, with the outcome summary
of its payments (``180 succeeded, 12 failed again, 8 pending``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QTableView, QWidget

from services.masking.text import mask_text
from services.outcomes.model import Outcome
from services.time_range import format_local_time
from widgets.common import colors
from widgets.common.record_tables import configure_table
from widgets.common.table_models import ListTableModel
from widgets.workbench.job_panel import JobStatus

JOB_TITLES: Final = {
    "started": "Started",
    "job": "Job",
    "action": "Action",
    "operator": "Operator",
    "state": "State",
    "outcomes": "Outcomes",
}


class JobsTableModel(ListTableModel[JobStatus]):
    """Jobs as rows: when, which, what, who, its state, its outcome summary."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(tuple(JOB_TITLES), JOB_TITLES, parent)

    def set_jobs(self, jobs: Sequence[JobStatus]) -> None:
        self.beginResetModel()
        self._rows = list(jobs)
        self.endResetModel()

    def job(self, row: int) -> JobStatus:
        return self._rows[row]

    @staticmethod
    def text(job: JobStatus, column: str) -> str:
        if column == "started":
            return format_local_time(job.created_ms / 1000) if job.created_ms else "—"
        if column == "job":
            return job.job_id
        if column == "action":
            return job.action
        if column == "operator":
            return mask_text(job.operator)
        if column == "state":
            state = "paused by itself" if job.paused_by_itself else job.state
            return state + (f": {mask_text(job.reason)}" if job.reason else "")
        return job.outcome_line()

    def _cell_data(self, row: JobStatus, column: str, role: int) -> Any:
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self.text(row, column)
        if role == Qt.ItemDataRole.ForegroundRole and column == "outcomes":
            worst = next((o for o in (Outcome.FAILED_AGAIN, Outcome.PENDING) if row.count(o)), None)
            if worst is not None:
                return QColor(colors.OUTCOME_COLORS[worst])
            if row.count(Outcome.SUCCEEDED):
                return QColor(colors.OUTCOME_COLORS[Outcome.SUCCEEDED])
        return None


class JobsTable(QTableView):
    """The table of :class:`JobsTableModel` (``show_jobs`` replaces its rows)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("JobsTable")
        self.jobs_model = JobsTableModel(self)
        self.setModel(self.jobs_model)
        configure_table(self)
        header = self.horizontalHeader()
        for name, width in (("started", 175), ("job", 170), ("action", 70), ("operator", 90)):
            header.resizeSection(self.jobs_model.columns.index(name), width)
        header.resizeSection(self.jobs_model.columns.index("state"), 220)
        header.setStretchLastSection(True)
        self.setMaximumHeight(170)

    def show_jobs(self, jobs: Sequence[JobStatus]) -> None:
        self.jobs_model.set_jobs(jobs)
