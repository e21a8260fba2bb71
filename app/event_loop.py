"""The console's asyncio loop: qasync's, with every callback run as the running loop.

qasync dispatches the loop's callbacks from Qt's event processing, and Qt processes
events outside ``run_forever`` too: qasync's own ``run_until_complete`` runs them
"one last time" after ``run_forever`` has returned and unset the running loop, and
so do ``QApplication.processEvents`` and pytest-qt between test phases. A task
stepped then meets ``asyncio.sleep``, ``wait_for`` or ``timeout`` with no running
loop, gets ``RuntimeError`` instead of its normal path, and reports a false
problem, possibly into a window that is being deleted (a crash). Here such a
callback runs with this loop set as the running loop, as it would inside
``run_forever``; a callback that finds another loop running is left as it is.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any

import qasync
from PySide6.QtWidgets import QApplication


class ConsoleEventLoop(qasync.QEventLoop):
    """:class:`qasync.QEventLoop` whose callbacks always see it as the running loop."""

    def call_later(
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        return super().call_later(  # type: ignore[no-any-return]
            delay, self._as_running_loop, callback, *args, context=context
        )

    def _as_running_loop(self, callback: Callable[..., object], *args: Any) -> None:
        if asyncio._get_running_loop() is not None:
            callback(*args)
            return
        asyncio._set_running_loop(self)
        try:
            callback(*args)
        finally:
            asyncio._set_running_loop(None)


def console_event_loop() -> ConsoleEventLoop:
    """A :class:`ConsoleEventLoop` on the application (made if there is none yet)."""
    app = QApplication.instance() or QApplication([])
    return ConsoleEventLoop(app)
