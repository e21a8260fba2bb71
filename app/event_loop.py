"""The console's asyncio loop: qasync's, with two faults of its callback dispatch mended.

A nested Qt event loop inside a task's step (a popup menu's or a dialog's ``exec``
called from a coroutine) made qasync run other tasks' steps inside it; asyncio refuses
those ("Cannot enter into task ... while another task is being executed") and each
refused step is gone: that task never wakes up again. The e2e scenario's menu clicks
left the console's parker waiting for ever that way, and the test's loop never closed
(about one run in five). Here a callback that comes due while a task's step is running
waits until the step has returned, and each Qt timer is killed and its callback taken
off the books before the callback runs.

qasync also dispatches callbacks from Qt's event processing outside ``run_forever``:
its own ``run_until_complete`` runs events "one last time" after ``run_forever`` has
returned and unset the running loop, and so do ``QApplication.processEvents`` and
pytest-qt between test phases. A task stepped then met ``asyncio.sleep``, ``wait_for``
or ``timeout`` with no running loop and reported a false problem, possibly into a
window being deleted. Here such a callback runs with this loop set as the running loop.
"""

from __future__ import annotations

import asyncio
import logging

import qasync
from PySide6.QtCore import QObject, QTimerEvent
from PySide6.QtWidgets import QApplication

log = logging.getLogger(__name__)

NESTED_RETRY_S = 0.01
"""How soon a callback held back by a nested event loop (see :class:`_CallbackTimers`)
is tried again."""


class _CallbackTimers(QObject):
    """One single-shot Qt timer per scheduled callback (qasync's ``_SimpleTimer``'s place)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self._handles: dict[int, asyncio.Handle] = {}
        self._stopped = False

    def add_callback(self, handle: asyncio.Handle, delay: float = 0) -> asyncio.Handle:
        timer_id = self.startTimer(int(max(0.0, delay) * 1000))
        if timer_id == 0:  # Qt could not start it: say so rather than lose it quietly
            log.error("the event loop could not start a timer for %r", handle)
        else:
            self._handles[timer_id] = handle
        return handle

    def timerEvent(self, event: QTimerEvent) -> None:
        timer_id = event.timerId()
        self.killTimer(timer_id)
        handle = self._handles.pop(timer_id, None)
        if handle is None or handle.cancelled() or self._stopped:
            return
        if asyncio.current_task(self._loop) is not None:
            # A task's step runs a nested Qt event loop (a menu's exec): asyncio cannot
            # step another task inside it, and the step would be lost. Later, then.
            self.add_callback(handle, NESTED_RETRY_S)
            return
        if asyncio._get_running_loop() is not None:
            handle._run()
            return
        asyncio._set_running_loop(self._loop)
        try:
            handle._run()
        finally:
            asyncio._set_running_loop(None)

    def stop(self) -> None:
        """The loop closes: nothing more runs."""
        self._stopped = True
        for timer_id in self._handles:
            self.killTimer(timer_id)
        self._handles.clear()

    def set_debug(self, enabled: bool) -> None:
        """qasync's timer logs each callback in debug mode; asyncio's own debug mode does."""


class ConsoleEventLoop(qasync.QEventLoop):
    """:class:`qasync.QEventLoop` with :class:`_CallbackTimers` (see the module docstring)."""

    def __init__(self, app: QApplication) -> None:
        super().__init__(app)
        self._timer = _CallbackTimers(self)


def console_event_loop() -> ConsoleEventLoop:
    """A :class:`ConsoleEventLoop` on the application (made if there is none yet)."""
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    return ConsoleEventLoop(app)
