"""The status bar's problems area: the latest problem, the recent ones in the tooltip."""

from __future__ import annotations

import html
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from services.time_range import format_local_time
from widgets.common import colors
from widgets.common.elided_label import ElidedLabel
from widgets.common.theme import repolish

NO_PROBLEMS = "No problems"


@dataclass
class Problem:
    """One problem message; repeats in a row are counted, not listed again."""

    text: str
    first_at: float
    last_at: float
    count: int = 1
    resolved_at: float | None = None


class ProblemsView(QWidget):
    """Shows the latest problem ("exchange 'x' not found") and lists recent ones in its tooltip."""

    problems_changed = Signal(int)

    def __init__(
        self,
        parent: QWidget | None = None,
        max_problems: int = 50,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ProblemsView")
        self._clock = clock
        self._problems: deque[Problem] = deque(maxlen=max_problems)
        self.icon = QLabel("⚠")
        self.icon.setObjectName("ProblemIcon")
        self.text_label = ElidedLabel()
        self.text_label.setObjectName("ProblemText")
        self.count_label = QLabel()
        self.count_label.setObjectName("ProblemCount")
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 0, 6, 0)
        row.setSpacing(6)
        row.addWidget(self.icon)
        row.addWidget(self.count_label, 0, Qt.AlignmentFlag.AlignVCenter)
        row.addWidget(self.text_label, 1)
        self._render()

    def problems(self) -> list[Problem]:
        """The recent problems, newest first."""
        return list(reversed(self._problems))

    def active(self) -> list[Problem]:
        """The problems not resolved yet, newest first."""
        return [p for p in reversed(self._problems) if p.resolved_at is None]

    def latest_text(self) -> str:
        """The full text of the newest unresolved problem ("" when there is none)."""
        active = self.active()
        return active[0].text if active else ""

    @Slot(str)
    def show_problem(self, text: str) -> None:
        """Add a problem (a repeat of the newest one only bumps its count)."""
        text = " ".join(text.split())
        now = self._clock()
        newest_problem = self._problems[-1] if self._problems else None
        if newest_problem and newest_problem.text == text and newest_problem.resolved_at is None:
            newest = newest_problem
            newest.count += 1
            newest.last_at = now
        else:
            self._problems.append(Problem(text, now, now))
        self._render()
        self.problems_changed.emit(len(self.active()))

    @Slot(str)
    def resolve_problem(self, text: str) -> None:
        """Mark the problems reported with ``text`` as resolved (kept in the tooltip)."""
        text = " ".join(text.split())
        now = self._clock()
        for problem in self._problems:
            if problem.text == text and problem.resolved_at is None:
                problem.resolved_at = now
        self._render()
        self.problems_changed.emit(len(self.active()))

    @Slot()
    def clear(self) -> None:
        """Forget every problem."""
        self._problems.clear()
        self._render()
        self.problems_changed.emit(0)

    def _render(self) -> None:
        active = self.active()
        has = bool(active)
        self.icon.setText("⚠" if has else "✓")
        self.text_label.set_full_text(self.latest_text() if has else NO_PROBLEMS)
        for label in (self.icon, self.text_label):  # amber, or green / grey: style.qss
            if label.property("problems") != has:
                label.setProperty("problems", has)
                repolish(label)
        total = sum(p.count for p in active)
        self.count_label.setText(str(total))
        self.count_label.setVisible(total > 1)
        self.setToolTip(self._tooltip())

    def _tooltip(self) -> str:
        if not self._problems:
            return "No problems reported since the console started."
        rows = []
        for problem in self.problems():
            stamp = format_local_time(problem.last_at, date=False)
            repeat = (
                f" <span style='color:{colors.TEXT_MUTED}'>×{problem.count}</span>"
                if problem.count > 1
                else ""
            )
            if problem.resolved_at is not None:
                repeat += f" <span style='color:{colors.GREEN}'>resolved</span>"
            rows.append(
                f"<tr><td style='color:{colors.TEXT_MUTED}'>{stamp}&nbsp;&nbsp;</td>"
                f"<td>{html.escape(problem.text)}{repeat}</td></tr>"
            )
        return f"<qt><b>Recent problems</b> (newest first)<table>{''.join(rows)}</table></qt>"
