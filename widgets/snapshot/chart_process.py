"""The snapshot's charts drawn in a child process: the GUI thread never waits for them.

Drawing the four charts with pyqtgraph takes about a second of the thread that
owns the widgets; on the console's GUI thread that froze the window for that
second. :class:`ChartProcess` is an asynchronous chart renderer for
:func:`services.snapshot.job.write_snapshot`: it sends the bucketed series (a
few thousand points, :class:`~widgets.snapshot.charts.ChartJob`) to a child
process of its own, which draws them with the very same code
(:mod:`widgets.snapshot.charts`) on an offscreen ``QApplication`` in the
console's font, and awaits the PNGs. The writer starts it as soon as the
series and the alert spans are known, so the charts are drawn while the failed
payments stream. Widgets may only live on a GUI thread: a process, not a
thread, is what takes them off it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

from services.flow.types import FlowFrame
from widgets.snapshot.charts import ChartJob, ChartSpan, render_chart_job

_CHILD: dict[str, Any] = {}  # the child's QApplication, alive while the child lives


@dataclass(frozen=True)
class ChartStyle:
    """What the charts take from the application: its font (``QFont.toString``)."""

    font: str

    @classmethod
    def current(cls) -> ChartStyle:
        """This process's application font (the default one without an application)."""
        from PySide6.QtGui import QGuiApplication

        app = QGuiApplication.instance()
        return cls(QGuiApplication.font().toString() if app is not None else "")


def _start_child(style: ChartStyle) -> None:
    """The child's set-up: an offscreen QApplication (no display needed) in ``style``."""
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    import pyqtgraph as pg
    from PySide6.QtGui import QFont
    from PySide6.QtWidgets import QApplication

    _CHILD["app"] = QApplication.instance() or QApplication(["payops-charts"])
    if style.font:
        font = QFont()
        if font.fromString(style.font):
            QApplication.setFont(font)
    pg.setConfigOptions(antialias=True)


def _render_in_child(job: ChartJob) -> dict[str, bytes]:
    return render_chart_job(job)


class ChartProcess:
    """An asynchronous chart renderer: the charts of a frame, drawn in a child process."""

    def __init__(self, *, width: int = 1200, height: int = 360) -> None:
        self.width = width
        self.height = height

    async def __call__(self, frame: FlowFrame, spans: Sequence[ChartSpan]) -> dict[str, bytes]:
        """PNG bytes of the four charts by name, as ``render_snapshot_charts`` draws them."""
        job = ChartJob.of(frame, spans, self.width, self.height)
        pool = ProcessPoolExecutor(
            1,
            mp_context=get_context("spawn"),
            initializer=_start_child,
            initargs=(ChartStyle.current(),),
        )
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, _render_in_child, job)
        finally:
            # Not waiting: the child ends on its own once it has answered (or its work is
            # dropped when the snapshot was cancelled).
            pool.shutdown(wait=False, cancel_futures=True)
