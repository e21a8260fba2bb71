"""The console's loop runs a task's steps as the running loop, even when Qt dispatches them
outside ``run_forever`` (qasync's last round of events, ``processEvents`` elsewhere)."""

from __future__ import annotations

import asyncio
import time

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from app.event_loop import console_event_loop


def test_a_task_stepped_outside_run_forever_finds_its_loop(qapp: QApplication) -> None:
    loop = console_event_loop()
    seen: list[asyncio.AbstractEventLoop] = []

    async def in_the_background() -> None:
        await asyncio.sleep(0.05)  # wakes up after the loop has stopped running
        seen.append(asyncio.get_running_loop())
        await asyncio.sleep(0)  # needs the running loop, as wait_for and timeout do

    async def start() -> asyncio.Task[None]:
        return asyncio.ensure_future(in_the_background())

    try:
        task = loop.run_until_complete(start())
        assert not loop.is_running()
        deadline = time.monotonic() + 10
        while not task.done() and time.monotonic() < deadline:
            qapp.processEvents()  # as pytest-qt and modal dialogs do
        assert task.done()
        task.result()  # no RuntimeError('no running event loop')
        assert seen == [loop]
        assert asyncio._get_running_loop() is None  # and left as it was
    finally:
        loop.close()


def test_a_nested_qt_event_loop_in_a_task_loses_no_callback(qapp: QApplication) -> None:
    """A task that runs a nested Qt event loop (a popup menu's ``exec``, as a click on a
    menu button does) must not cost another task its wake-up: qasync ran the other
    task's step inside, asyncio refused it, and that task hung for ever."""
    loop = console_event_loop()
    ticks: list[int] = []

    async def ticking() -> None:
        for tick in range(200):
            await asyncio.sleep(0)
            ticks.append(tick)

    async def nested_loops() -> None:
        for _ in range(20):
            nested = QEventLoop()
            QTimer.singleShot(5, nested.quit)
            nested.exec()  # inside this task's step, as QMenu.exec() would be
            await asyncio.sleep(0)

    async def scenario() -> None:
        ticker = asyncio.ensure_future(ticking())
        await nested_loops()
        await asyncio.wait_for(ticker, 10)

    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert ticks == list(range(200))
    assert errors == []  # no "Cannot enter into task ... while another task is being executed"
