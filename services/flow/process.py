"""The live flow's AMQP side in a child process, and the parent's handle on it.

Per-message work (the tap's deliveries, the aggregator's counters) is
CPU-bound during a backlog drain; in a thread it would contend for the GUI
process's GIL. So the AMQP link, the tap, the depth poller and their
``FlowAggregator`` run in a child process (``services.flow.child``) started
with the ``spawn`` method (never fork a Qt process), on a plain asyncio loop,
and talk to the parent over one duplex ``multiprocessing`` pipe
(``services.flow.protocol``). The parent keeps copies of the child's
aggregator and tap (``services.flow.mirror``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from services.alerts.model import Alert, AlertEvent
from services.flow import protocol
from services.flow.child import child_main
from services.flow.mirror import FlowMirror, TapView
from services.flow.recorder import RecorderState
from services.links.status import LinkState, LinkStatus

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0
KILL_TIMEOUT_S = 2.0
MAX_MESSAGES_PER_READ = 64  # the parent hands the loop back after this many
RESTART_DELAY_S = 5.0
SERVICE = "RabbitMQ"


class FlowProcess:
    """Start, watch and stop the child; dispatch what it sends on the caller's loop.

    ``on_status`` receives the RabbitMQ link's statuses (and a FAILED one when
    the child ends unexpectedly; it is then started again after
    ``RESTART_DELAY_S``; the new child counts from zero, so ``totals_by_status``
    restarts while the plotted history stays), ``on_problem``/``on_resolved``
    the tap's and depth poller's problems. ``on_alerts(active, events)``
    receives the active alerts and the transitions when they change (at most
    once a second), ``on_recorder(state)`` the recorder's ``RecorderState``;
    the latest of each is kept in ``alerts`` and ``recorder``. The pipe is read
    with ``loop.add_reader``: the caller's loop never blocks on the child.
    """

    def __init__(
        self,
        config: protocol.ChildConfig,
        on_status: Callable[[LinkStatus], None],
        on_problem: Callable[[str], None] | None = None,
        on_resolved: Callable[[str], None] | None = None,
        *,
        on_alerts: Callable[[list[Alert], list[AlertEvent]], None] | None = None,
        on_recorder: Callable[[RecorderState], None] | None = None,
    ) -> None:
        self.config = config
        self.mirror = FlowMirror(config.capacity_s)
        self.tap = TapView()
        self.status = LinkStatus(SERVICE, LinkState.CONNECTING, "")
        self.alerts: list[Alert] = []  # the active alerts, as of the child's last evaluation
        self.recorder: RecorderState | None = None  # None until the child reports one
        self._on_status = on_status
        self._on_problem = on_problem
        self._on_resolved = on_resolved
        self._on_alerts = on_alerts
        self._on_recorder = on_recorder
        self._released = not config.hold_consume
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._restart: asyncio.TimerHandle | None = None
        self._reaper: asyncio.Task[None] | None = None

    @property
    def process(self) -> BaseProcess | None:
        """The running child, or None."""
        return self._process

    def start(self) -> None:
        """Spawn the child and start reading from it (on the running loop)."""
        if self._process is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        config = dataclasses.replace(
            self.config,
            hold_consume=not self._released,
            log_level=logging.getLogger().getEffectiveLevel(),
        )
        ctx = multiprocessing.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        process = ctx.Process(
            target=child_main, args=(child_conn, config), name="payops-live-flow", daemon=True
        )
        try:
            process.start()
        finally:
            child_conn.close()  # the child holds its own copy: EOF here means it is gone
        self._process, self._conn = process, parent_conn
        self._loop.add_reader(parent_conn.fileno(), self._on_readable)

    def release_consume(self) -> None:
        """Let the tap start consuming (it was started with ``hold_consume``)."""
        self._released = True
        self._send(protocol.ReleaseConsume())

    async def stop(self) -> None:
        """Tell the child to stop, wait a bounded time, then terminate or kill it."""
        self._stopping = True
        if self._restart is not None:
            self._restart.cancel()
            self._restart = None
        reaper, self._reaper = self._reaper, None
        if reaper is not None:
            await reaper
        process = self._process
        if process is None:
            return
        self._send(protocol.StopChild())
        await _join(process, STOP_TIMEOUT_S)
        if process.is_alive():
            log.error("the live-flow process did not stop in %s s: terminating", STOP_TIMEOUT_S)
            process.terminate()
            await _join(process, KILL_TIMEOUT_S)
        if process.is_alive():
            process.kill()
            await _join(process, None)
        self._drain()  # the child's last words (its final statuses)
        self._stop_reading()
        self._process = None
        process.close()
        self.tap.update(protocol.TapState())

    def _send(self, message: protocol.ParentCommand) -> None:
        conn = self._conn
        if conn is None:
            return
        with contextlib.suppress(OSError):  # the child is gone; _on_readable sees the EOF
            conn.send(message)

    def _stop_reading(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(conn.fileno())
            conn.close()

    def _on_readable(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            for _ in range(MAX_MESSAGES_PER_READ):
                if not conn.poll():
                    return
                self._dispatch(conn.recv())
        except (EOFError, OSError):
            self._child_ended()

    def _drain(self) -> None:
        conn = self._conn
        with contextlib.suppress(EOFError, OSError):
            while conn is not None and conn.poll():
                self._dispatch(conn.recv())

    def _dispatch(self, message: protocol.ChildMessage) -> None:
        try:
            match message:
                case protocol.FlowUpdated(frame, totals, tap):
                    self.mirror.apply(frame, totals)
                    self.tap.update(tap)
                case protocol.LinkChanged(status):
                    self.status = status
                    self._on_status(status)
                case protocol.ProblemFound(text) if self._on_problem is not None:
                    self._on_problem(text)
                case protocol.ProblemResolved(text) if self._on_resolved is not None:
                    self._on_resolved(text)
                case protocol.AlertsEvaluated(active, events):
                    self.alerts = active
                    if self._on_alerts is not None:
                        self._on_alerts(active, events)
                case protocol.RecorderChanged(state):
                    self._set_recorder(state)
        except Exception:
            log.exception("handling %s from the live-flow process failed", type(message).__name__)

    def _set_recorder(self, state: RecorderState) -> None:
        self.recorder = state
        if self._on_recorder is not None:
            self._on_recorder(state)

    def _child_ended(self) -> None:
        """EOF on the pipe: the child closed it (stopping) or died."""
        self._stop_reading()
        if self._stopping or self._loop is None:
            return  # stop() reaps the process
        process, self._process = self._process, None
        self.tap.update(protocol.TapState())
        log.error("the live-flow process ended unexpectedly; restarting it")
        self.status = LinkStatus(
            SERVICE,
            LinkState.FAILED,
            self.status.target,
            "the live-flow process ended unexpectedly; restarting it",
            RESTART_DELAY_S,
        )
        self._on_status(self.status)
        if self.recorder is not None:
            with contextlib.suppress(Exception):
                self._set_recorder(
                    dataclasses.replace(
                        self.recorder,
                        role="unavailable",
                        holder=None,
                        detail="the live-flow process ended unexpectedly; restarting it",
                    )
                )
        if process is not None:
            self._reaper = self._loop.create_task(_reap(process), name="payops-flow-reaper")
        self._restart = self._loop.call_later(RESTART_DELAY_S, self._restart_child)

    def _restart_child(self) -> None:
        self._restart = None
        if not self._stopping:
            self.start()


async def _join(process: BaseProcess, timeout: float | None) -> None:
    """Wait for ``process`` to end (at most ``timeout`` s) without blocking the loop."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while process.is_alive():
        if deadline is not None and time.monotonic() >= deadline:
            return
        await asyncio.sleep(0.02)


async def _reap(process: BaseProcess) -> None:
    """Collect a child that ended on its own (kill it if it only closed the pipe)."""
    await _join(process, STOP_TIMEOUT_S)
    if process.is_alive():
        process.kill()
        await _join(process, None)
    process.join()
    log.info("the live-flow process %s ended with exit code %s", process.pid, process.exitcode)
    process.close()
