"""Ctrl+C during a bulk ``payops dlq`` action: stop cleanly first, at once only if asked twice.

asyncio's own handling of Ctrl+C cancels the whole command wherever it is: an
action cancelled between a publish and its confirm leaves entries in doubt, and
on Python 3.11 a cancel racing a completed wait can even be lost (the action
goes on). :class:`BulkInterrupts` replaces it while an action runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from app.cli import exit_codes
from app.cli.dlq_output import print_recovery
from services.workbench.actions.recovery import RecoveryReport, recover
from services.workbench.actions.report import ActionReport
from services.workbench.actions.service import ActionService

T = TypeVar("T")


class BulkInterrupts:
    """Ctrl+C (SIGINT) or SIGTERM during a bulk action. The first sets ``stop``: the
    action sends no further window, the windows already sent finish (their confirms
    recorded) and the summary is printed. A second one (either signal) cancels ``work``
    at once: what awaits a confirm stays in doubt, and is listed. Replaces asyncio's own
    SIGINT handling (a cancel of the whole command) while the action runs.

    The exit code is that of the first signal: 130 for SIGINT, 143 for SIGTERM."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.work: asyncio.Future[Any] | None = None
        self.forced = False
        self.first: signal.Signals | None = None
        self._loop = asyncio.get_running_loop()
        self._previous: dict[int, Any] = {}

    @property
    def exit_code(self) -> int:
        """130 when Ctrl+C stopped the action, 143 when SIGTERM did."""
        return exit_code_of(self.first or signal.SIGINT)

    def __enter__(self) -> BulkInterrupts:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.add_signal_handler(sig, self._interrupted, sig)
                self._previous[sig] = previous
        return self

    def __exit__(self, *_: object) -> None:
        for sig, previous in self._previous.items():
            self._loop.remove_signal_handler(sig)
            signal.signal(sig, previous)

    def _interrupted(self, sig: signal.Signals) -> None:
        if sys.stderr.isatty():
            print(file=sys.stderr)
        if not self.stop.is_set():
            self.first = sig
            self.stop.set()
            what = "interrupted" if sig == signal.SIGINT else "terminated (SIGTERM)"
            print(
                f"payops: {what} - stopping after the windows already sent"
                " (Ctrl+C again to stop at once, leaving unconfirmed entries in doubt)",
                file=sys.stderr,
                flush=True,
            )
            return
        if self.work is not None and not self.work.done() and not self.forced:
            self.forced = True
            print(
                "payops: stopping at once - messages published without a confirm yet stay"
                " in doubt (listed below)",
                file=sys.stderr,
                flush=True,
            )
            self._cancel_until_done()

    def _cancel_until_done(self) -> None:
        """Cancel ``work``, and again every half second until it ends: a library may swallow a
        cancel that lands as its call completes (redis-py 8.1 did, in a script call), and
        the action then goes on waiting for confirms as if nothing had happened."""
        if self.work is not None and not self.work.done():
            self.work.cancel()
            self._loop.call_later(CANCEL_AGAIN_S, self._cancel_until_done)


CANCEL_AGAIN_S = 0.5


def exit_code_of(sig: signal.Signals) -> int:
    """The exit code of a command a signal stopped: 128 + its number (130, 143)."""
    return exit_codes.TERMINATED if sig == signal.SIGTERM else exit_codes.INTERRUPTED


async def run_interruptibly(
    work: Callable[[asyncio.Event], Awaitable[T]],
) -> tuple[T | None, BulkInterrupts]:
    """Run ``work(stop)`` under :class:`BulkInterrupts`: its result (None when a second
    Ctrl+C stopped it at once), and whether it was interrupted (``.stop.is_set()``)."""
    with BulkInterrupts() as interrupts:
        task = asyncio.ensure_future(work(interrupts.stop))
        interrupts.work = task
        try:
            result = await task
        except asyncio.CancelledError:
            if not interrupts.forced:
                raise
            return None, interrupts
        # A second signal stops at once even when the cancel landed as the work ended (or
        # was swallowed by a library): what it left claimed is then recovered and listed.
        return (None if interrupts.forced else result), interrupts


async def interrupted(service: ActionService, report: ActionReport, code: int) -> int:
    """After a Ctrl+C or SIGTERM: what was not attempted stays parked; anything the run
    left claimed (a send that got no confirm) is listed. ``code`` (130 or 143)."""
    print(
        f"payops: interrupted: {report.not_attempted:,} not attempted (still parked)",
        file=sys.stderr,
    )
    await _list_left_behind(service)
    return code


async def stopped_at_once(service: ActionService, code: int) -> int:
    """After a second Ctrl+C (or SIGTERM): the run was cancelled where it stood. Recovery
    releases what it had claimed but not sent and lists what is in doubt, with how to
    settle it. ``code`` (130 or 143)."""
    print(
        "payops: stopped at once; the summary is incomplete: see the audit trail"
        " (`payops dlq audit`) for what went through",
        file=sys.stderr,
    )
    recovered = await _list_left_behind(service, ours_ended=True)
    if not recovered.in_doubt:
        print("payops: nothing was left in doubt", file=sys.stderr)
    return code


async def _list_left_behind(service: ActionService, *, ours_ended: bool = False) -> RecoveryReport:
    """Recover (``ours_ended``: the action of this process was cancelled and may have
    left its lease) and list on stderr what recovery released or found in doubt."""
    if service.read_only:
        recovered = await service.recover()
    else:
        recovered = await recover(
            service.ledger,
            service.dlqs,
            operator=service.operator,
            host=service.host,
            ours_ended=ours_ended,
        )
    if not recovered.clean:
        with contextlib.redirect_stdout(sys.stderr):
            print_recovery(recovered)
    return recovered


__all__ = [
    "BulkInterrupts",
    "exit_code_of",
    "interrupted",
    "run_interruptibly",
    "stopped_at_once",
]
