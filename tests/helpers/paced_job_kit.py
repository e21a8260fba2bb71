"""A paced job started from the console as a person starts one: a worker on the work
queue that reports each payment's status, the failure group's requeue confirmed with a
rate and a canary typed in, the job's progress dialog (the paced-job controller tests)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator

import aio_pika
import orjson
from PySide6.QtCore import Qt
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMenu, QWidget

from app.console import ConsoleSession
from services.config import Profile
from tests.helpers.waiting import eventually
from tests.helpers.workbench_console import click, confirm_dialog
from widgets.workbench.action_dialogs import ConfirmActionDialog
from widgets.workbench.action_progress import ActionProgressDialog
from widgets.workbench.job_panel import JobPanel


class Worker:
    """Consumes the work queue: each arrival's time and payment, then its status event
    (published again every second until the test ends: the console's tap may still be
    binding when the first goes out, and an outcome moves only once)."""

    def __init__(self, channel: aio_pika.abc.AbstractChannel, events: str, status: str) -> None:
        self.channel = channel
        self.events = events
        self.status = status
        self.arrivals: list[tuple[float, str]] = []
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    async def start(self, queue: aio_pika.abc.AbstractQueue) -> asyncio.Task[None]:
        self._exchange = await self.channel.get_exchange(self.events)
        await queue.consume(self._on_message)
        return asyncio.ensure_future(self._repeat())

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        payment = str(orjson.loads(message.body)["payment_id"])
        self.arrivals.append((time.monotonic(), payment))
        await message.ack()
        await self._publish(payment)

    async def _publish(self, payment: str) -> None:
        assert self._exchange is not None
        body = orjson.dumps(
            {"payment_id": payment, "status": self.status, "event_at": int(time.time() * 1000)}
        )
        await self._exchange.publish(aio_pika.Message(body), routing_key=f"payment.{self.status}")

    async def _repeat(self) -> None:
        while True:
            await asyncio.sleep(1)
            for _, payment in list(self.arrivals):
                await self._publish(payment)


@dataclasses.dataclass
class PacedFlow:
    """Dead letters parked from ``work``, the profile that parks them, and the exchange
    the worker reports statuses on (the console taps it)."""

    profile: Profile
    channel: aio_pika.abc.AbstractChannel
    work: aio_pika.abc.AbstractQueue
    events: str


@contextlib.asynccontextmanager
async def worker_on(flow: PacedFlow, status: str) -> AsyncIterator[Worker]:
    """A :class:`Worker` on ``flow``'s work queue reporting ``status``; stopped after."""
    worker = Worker(flow.channel, flow.events, status)
    repeating = await worker.start(flow.work)
    try:
        yield worker
    finally:
        repeating.cancel()


def type_over(field: QWidget, text: str) -> None:
    """Select what the field holds (Ctrl+A) and type ``text`` over it."""
    field.setFocus()
    QTest.keyClick(field, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClicks(field, text)


async def requeue_the_group(session: ConsoleSession, count: int) -> ConfirmActionDialog:
    """Right-click the failure group and click 'Requeue all N in …' in its menu."""
    view = session.window.workbench.table_view
    await eventually(lambda: view.model.rowCount() == count, 30, f"{count} parked entries")
    panel = view.group_panel
    await eventually(lambda: panel.list.topLevelItemCount() >= 1, 10, "the failure group")
    item = panel.list.topLevelItem(0)
    assert item is not None
    viewport = panel.list.viewport()
    pos = panel.list.visualItemRect(item).center()
    QApplication.sendEvent(
        viewport,
        QContextMenuEvent(QContextMenuEvent.Reason.Mouse, pos, viewport.mapToGlobal(pos)),
    )
    menu = panel.context_menu
    assert isinstance(menu, QMenu) and menu.isVisible()
    requeue = next(a for a in menu.actions() if a.text().startswith(f"Requeue all {count}"))
    QTest.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(requeue).center())
    return await confirm_dialog(20, "the confirmation")


def choose_pace(dialog: ConfirmActionDialog, rate: str, canary: str) -> None:
    chooser = dialog.pace_chooser
    assert chooser is not None and not chooser.paced  # full speed unless chosen
    assert dialog.ok_button.text().endswith("paced") is False
    click(chooser.rate_check)
    type_over(chooser.rate_edit, "fast")  # a wrong rate says why and blocks the button
    assert not dialog.ok_button.isEnabled()
    assert dialog.pace_problem_label.text() == "Rate: a rate is like 50/s or 600/min, not 'fast'"
    type_over(chooser.rate_edit, rate)
    click(chooser.canary_check)
    type_over(chooser.canary_spin, canary)
    assert dialog.pace_problem_label.isHidden()
    assert dialog.ok_button.isEnabled() and dialog.ok_button.text().endswith("paced")


async def progress_dialog(session: ConsoleSession) -> ActionProgressDialog:
    window = session.window
    await eventually(
        lambda: any(d.job_panel is not None for d in window.findChildren(ActionProgressDialog)),
        20,
        "the progress dialog following its job",
    )
    return next(d for d in window.findChildren(ActionProgressDialog) if d.job_panel)


async def paced_confirmation(
    session: ConsoleSession, count: int, rate: str, canary: str
) -> ConfirmActionDialog:
    """The window at 1366 x 768, the requeue of the failure group of ``count`` entries
    asked for, ``rate`` and ``canary`` typed into its confirmation (not yet clicked)."""
    session.window.resize(1366, 768)
    dialog = await requeue_the_group(session, count)
    choose_pace(dialog, rate, canary)
    return dialog


async def start_confirmed(
    session: ConsoleSession, dialog: ConfirmActionDialog
) -> tuple[ActionProgressDialog, JobPanel]:
    """Click the confirmation's OK: the progress dialog following the job, and its panel."""
    click(dialog.ok_button)
    progress = await progress_dialog(session)
    panel = progress.job_panel
    assert panel is not None
    return progress, panel
