"""The live flow's AMQP side in a child process, and the parent's view of it.

Per-message work (the tap's deliveries, the aggregator's counters) is
CPU-bound during a backlog drain; in a thread it would contend for the GUI
process's GIL. So the AMQP link, the tap, the depth poller and their
``FlowAggregator`` run in a child process started with the ``spawn`` method
(never fork a Qt process), on a plain asyncio loop, and talk to the parent
over one duplex ``multiprocessing`` pipe.

Child to parent (small pickled tuples):

- ``("status", LinkStatus)``, ``("problem", text)``, ``("resolved", text)``;
- ``("update", frame, totals, tap)`` at most ``UPDATE_HZ`` times a second, and
  only when the aggregator's version changed, the second rolled over or the
  tap's state changed. ``frame`` is ``aggregator.frame(n)`` for the few seconds
  since the last update (the previous partial second, now final, through the
  current partial one), so every finished second crosses the pipe about once
  and the parent keeps a full-depth mirror (``FlowMirror``) to build any
  window from;
- ``("alerts", active, events)`` (``list[Alert]``, ``list[AlertEvent]``) at most
  once a second, when the child's ``FlowRecorder`` evaluated a change: the active
  alerts changed (or their values), or rules fired or resolved;
- ``("recorder", RecorderState)`` when the recorder's role, lease holder, last
  written second or detail changed (about once a second while it writes).

Parent to child: ``("release",)`` opens the consume gate, ``("stop",)`` stops.
The child also stops when the pipe reaches EOF or its parent process changes
(the parent died). The child never blocks on the pipe: what cannot be written
now waits in an outbox (updates are merged: the next one covers the seconds
since the last one sent; an alerts message not yet sent is merged with the next
one, keeping every transition; only the latest recorder state is kept).

The child also runs the ``FlowRecorder`` (``services.flow.recorder``): alerts,
and the history and alert log in Redis while it holds the history lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import numpy as np
import numpy.typing as npt
from aio_pika.abc import AbstractConnection

from services.alerts.model import Alert, AlertEvent
from services.config import Profile
from services.flow.aggregator import FlowAggregator
from services.flow.decoder import EventDecoder
from services.flow.depth_poller import DepthPoller
from services.flow.recorder import FINISH_TIMEOUT_S, LEASE_TTL_S, FlowRecorder, RecorderState
from services.flow.tap import FlowTap
from services.flow.types import LATENCY_PERCENTILES, FlowFrame, Headline
from services.links.amqp import AmqpLink
from services.links.backoff import DEFAULT_BACKOFF_S
from services.links.status import LinkState, LinkStatus
from services.masking.text import MaskingFilter

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

UPDATE_HZ = 15
HISTORY_CAPACITY_S = 3600
STOP_TIMEOUT_S = 10.0
KILL_TIMEOUT_S = 2.0
MAX_MESSAGES_PER_READ = 64  # the parent hands the loop back after this many
RESTART_DELAY_S = 5.0
SERVICE = "RabbitMQ"
RECORDER_STOP_S = FINISH_TIMEOUT_S + 1.0
"""How long the child waits for its recorder's last write and lease release."""


@dataclass(frozen=True)
class TapState:
    """What the parent knows of the child's tap (sent with every update)."""

    bound: bool = False
    ready: bool = False
    queue_name: str | None = None
    consumed: int = 0
    probes_sent: int = 0
    probes_received: int = 0


@dataclass(frozen=True)
class ChildConfig:
    """Everything the child needs; pickled once at spawn."""

    profile: Profile
    capacity_s: int = HISTORY_CAPACITY_S
    hold_consume: bool = False
    backoff: tuple[float, ...] = DEFAULT_BACKOFF_S
    log_level: int = logging.WARNING
    record: bool = True  # write the history and the alert log (when holding the lease)
    lease_ttl_s: float = LEASE_TTL_S


# -- the parent's mirror -----------------------------------------------------------


class FlowMirror:
    """The parent's copy of the child's aggregator, fed with the columns it sends.

    It answers what the frame timer asks of a ``FlowAggregator``: ``frame``,
    ``headline``, ``totals_by_status`` and ``version`` (which increases with
    every update applied). Frames end at the latest second the child reported.
    Status and queue rows only ever grow in the child, in the same order, so
    rows here keep their meaning.
    """

    def __init__(self, capacity_s: int = HISTORY_CAPACITY_S) -> None:
        self.version = 0
        self._cap = capacity_s
        self._ring_sec = np.full(capacity_s, -1, dtype=np.int64)
        self._counts = np.zeros((0, capacity_s), dtype=np.float64)
        self._dead = np.zeros(capacity_s, dtype=np.float64)
        self._latency = np.full((len(LATENCY_PERCENTILES), capacity_s), np.nan)
        self._depths = np.full((0, capacity_s), np.nan)
        self._status_names: tuple[str, ...] = ()
        self._queue_names: tuple[str, ...] = ()
        self._latest_sec: int | None = None
        self._headline = Headline(0.0, None, None, None, 0, 0)
        self._totals: dict[str, int] = {}

    def apply(self, frame: FlowFrame, totals: dict[str, int]) -> None:
        """Write the seconds of ``frame`` (the child's latest) over the mirror."""
        secs = frame.t.astype(np.int64)
        if secs.size == 0:
            return
        self._status_names = _merged(self._status_names, frame.status_names)
        self._counts = _grown(self._counts, len(self._status_names), 0.0)
        self._queue_names = _merged(self._queue_names, frame.queue_names)
        self._depths = _grown(self._depths, len(self._queue_names), np.nan)
        slots = secs % self._cap
        self._ring_sec[slots] = secs
        self._counts[:, slots] = 0.0
        self._counts[_row_index(frame.status_names, self._status_names)[:, None], slots] = (
            frame.status_counts
        )
        self._dead[slots] = frame.dead_letters
        self._latency[:, slots] = frame.latency_ms
        self._depths[:, slots] = np.nan
        self._depths[_row_index(frame.queue_names, self._queue_names)[:, None], slots] = (
            frame.queue_depths
        )
        self._latest_sec = int(secs[-1])
        self._headline = frame.headline
        self._totals = totals
        self.version += 1

    def seed(self, frame: FlowFrame) -> int:
        """Fill the seconds of ``frame`` (flow history) that the mirror does not hold yet.

        Seconds the child already reported are kept (they are live and exact);
        the latest second, the headline and the totals stay as they are, so a
        console opens with its recent history plotted. Returns the number of
        seconds filled.
        """
        secs = frame.t.astype(np.int64)
        if secs.size == 0:
            return 0
        if self._latest_sec is not None:
            keep = (secs > self._latest_sec - self._cap) & (secs <= self._latest_sec)
        else:
            now = int(time.time())
            keep = (secs > now - self._cap) & (secs <= now)
        slots_all = secs % self._cap
        keep &= self._ring_sec[slots_all] != secs
        if not keep.any():
            return 0
        self._status_names = _merged(self._status_names, frame.status_names)
        self._counts = _grown(self._counts, len(self._status_names), 0.0)
        self._queue_names = _merged(self._queue_names, frame.queue_names)
        self._depths = _grown(self._depths, len(self._queue_names), np.nan)
        slots = slots_all[keep]
        self._ring_sec[slots] = secs[keep]
        self._counts[:, slots] = 0.0
        self._counts[_row_index(frame.status_names, self._status_names)[:, None], slots] = (
            frame.status_counts[:, keep]
        )
        self._dead[slots] = frame.dead_letters[keep]
        self._latency[:, slots] = frame.latency_ms[:, keep]
        self._depths[:, slots] = np.nan
        self._depths[_row_index(frame.queue_names, self._queue_names)[:, None], slots] = (
            frame.queue_depths[:, keep]
        )
        self.version += 1
        return int(keep.sum())

    def totals_by_status(self) -> dict[str, int]:
        """The child's exact cumulative event counts by status, as of its last update."""
        return dict(self._totals)

    def headline(self) -> Headline:
        """The headline counters of the child's last update."""
        return self._headline

    def frame(self, window_s: int) -> FlowFrame:
        """The last ``window_s`` seconds up to the child's latest, oldest first."""
        n = max(1, min(int(window_s), self._cap))
        cur = self._latest_sec if self._latest_sec is not None else int(time.time())
        secs = np.arange(cur - n + 1, cur + 1, dtype=np.int64)
        slots = secs % self._cap
        stale = self._ring_sec[slots] != secs
        n_status, n_queue = len(self._status_names), len(self._queue_names)
        counts = self._counts[:n_status, slots]
        counts[:, stale] = 0.0
        dead = self._dead[slots]
        dead[stale] = 0.0
        latency = self._latency[:, slots]
        latency[:, stale] = np.nan
        depths = self._depths[:n_queue, slots]
        depths[:, stale] = np.nan
        return FlowFrame(
            t=secs.astype(np.float64),
            status_names=self._status_names,
            status_counts=counts,
            dead_letters=dead,
            latency_ms=latency,
            queue_names=self._queue_names,
            queue_depths=depths,
            headline=self._headline,
        )


def _merged(known: tuple[str, ...], names: tuple[str, ...]) -> tuple[str, ...]:
    """``known`` with the names in ``names`` it lacks appended.

    The child only appends names, so its list normally extends ours; after a
    restart of the child the order may differ, so rows are matched by name.
    """
    if names[: len(known)] == known:
        return names if len(names) > len(known) else known
    seen = set(known)
    return (*known, *(name for name in names if name not in seen))


def _row_index(names: tuple[str, ...], known: tuple[str, ...]) -> npt.NDArray[np.intp]:
    """The mirror's row of each of ``names`` (all in ``known``)."""
    if names == known[: len(names)]:
        return np.arange(len(names), dtype=np.intp)
    position = {name: row for row, name in enumerate(known)}
    return np.array([position[name] for name in names], dtype=np.intp)


def _grown(array: FloatArray, rows: int, fill: float) -> FloatArray:
    """``array`` with at least ``rows`` rows (new ones filled with ``fill``)."""
    if array.shape[0] >= rows:
        return array
    grown = np.full((max(rows, 2 * array.shape[0]), array.shape[1]), fill)
    grown[: array.shape[0]] = array
    return grown


class TapView:
    """The parent's view of the child's tap: ``bound``/``ready`` events and counters."""

    def __init__(self) -> None:
        self.bound = asyncio.Event()  # set while the tap queue is declared and bound
        self.ready = asyncio.Event()  # set while the tap is consuming
        self.state = TapState()

    @property
    def queue_name(self) -> str | None:
        return self.state.queue_name

    @property
    def consumed(self) -> int:
        return self.state.consumed

    def update(self, state: TapState) -> None:
        self.state = state
        for event, flag in ((self.bound, state.bound), (self.ready, state.ready)):
            if flag:
                event.set()
            else:
                event.clear()


# -- the parent's handle -------------------------------------------------------------


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
        config: ChildConfig,
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
        self._send(("release",))

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
        self._send(("stop",))
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
        self.tap.update(TapState())

    def _send(self, message: tuple[Any, ...]) -> None:
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

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        try:
            if kind == "update":
                _, frame, totals, tap = message
                self.mirror.apply(frame, totals)
                self.tap.update(tap)
            elif kind == "status":
                self.status = message[1]
                self._on_status(message[1])
            elif kind == "problem" and self._on_problem is not None:
                self._on_problem(message[1])
            elif kind == "resolved" and self._on_resolved is not None:
                self._on_resolved(message[1])
            elif kind == "alerts":
                _, active, events = message
                self.alerts = active
                if self._on_alerts is not None:
                    self._on_alerts(active, events)
            elif kind == "recorder":
                self._set_recorder(message[1])
        except Exception:
            log.exception("handling %r from the live-flow process failed", kind)

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
        self.tap.update(TapState())
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


# -- the child -----------------------------------------------------------------------


def child_main(conn: Connection, config: ChildConfig) -> None:
    """The child process's entry point: run the live flow until told to stop."""
    # Ctrl+C reaches the whole process group, and so may a service manager's
    # SIGTERM; the parent decides when we stop (or we notice it has gone), so the
    # recorder can write its last seconds and release the history lease.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s [flow] %(name)s: %(message)s"
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(MaskingFilter())  # card numbers never reach a log line
    # A plain selector loop, whatever event-loop policy an imported module set.
    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        runner.run(FlowChild(conn, config).run())


class FlowChild:
    """The child's side: link, tap, depth poller and aggregator, reporting up the pipe."""

    def __init__(self, conn: Connection, config: ChildConfig) -> None:
        self._conn = conn
        self._config = config
        # The last (partial) second sent; the first update covers all since start.
        self._sent_sec = int(time.time())
        profile = config.profile
        self.aggregator = FlowAggregator(
            capacity_s=config.capacity_s,
            failure_statuses=profile.failure_statuses,
            dead_letter_queues=profile.dead_letter_queues,
        )
        self._gate = threading.Event()
        if not config.hold_consume:
            self._gate.set()
        self.tap = FlowTap(
            profile,
            self.aggregator,
            EventDecoder(profile.fields, profile.failure_statuses),
            self._problem,
            on_resolved=self._resolved,
            consume_gate=self._gate,
        )
        self.depth_poller = DepthPoller(
            (*profile.watch_queues, *profile.dead_letter_queues),
            self.aggregator,
            profile.depth_poll_interval_s,
            self._problem,
            self._resolved,
        )
        self.amqp = AmqpLink(
            profile.amqp_url, self._status, self._run_session, backoff=config.backoff
        )
        self.recorder = FlowRecorder(
            profile,
            self.aggregator,
            self.tap,
            on_alerts=self._alerts,
            on_state=self._recorder_state,
            record=config.record,
            capacity_s=config.capacity_s,
            lease_ttl_s=config.lease_ttl_s,
            backoff=config.backoff,
        )
        self._outbox: list[tuple[Any, ...]] = []
        self._stop = asyncio.Event()
        self._parent_pid = os.getppid()
        self._sent_version = -1
        self._sent_tap = TapState()
        self._pending: tuple[int, int, TapState] = (0, -1, TapState())

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self._conn.fileno(), self._on_command)
        link = asyncio.create_task(self.amqp.run(), name="payops-amqp-link")
        ticker = asyncio.create_task(self._tick(), name="payops-flow-updates")
        recorder = asyncio.create_task(self.recorder.run(), name="payops-flow-recorder")
        try:
            await self._stop.wait()
        finally:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(self._conn.fileno())
            # The recorder first, while the tap still consumes: its last write
            # covers every finished second, then it releases the lease.
            self.recorder.request_stop()
            _, pending = await asyncio.wait([recorder], timeout=RECORDER_STOP_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(recorder, return_exceptions=True)
            ticker.cancel()
            link.cancel()
            await asyncio.gather(ticker, link, return_exceptions=True)
            await self.amqp.close()
            self._queue_update(force=True)
            self._flush(wait_s=1.0)
            self._conn.close()

    async def _run_session(self, connection: AbstractConnection) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self.tap.run(connection), name="payops-tap")
            group.create_task(self.depth_poller.run(connection), name="payops-depth-poller")

    # -- from the parent

    def _on_command(self) -> None:
        try:
            while self._conn.poll():
                command = self._conn.recv()
                if command[0] == "release":
                    self._gate.set()
                elif command[0] == "stop":
                    self._stop.set()
        except (EOFError, OSError):  # the parent closed the pipe or died
            self._stop.set()
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self._conn.fileno())

    # -- to the parent

    def _status(self, status: LinkStatus) -> None:
        self._outbox.append(("status", status))
        self._flush()

    def _problem(self, text: str) -> None:
        self._outbox.append(("problem", text))
        self._flush()

    def _resolved(self, text: str) -> None:
        self._outbox.append(("resolved", text))
        self._flush()

    def _alerts(self, active: list[Alert], events: list[AlertEvent]) -> None:
        """Queue the alerts; one not sent yet is merged in (its transitions kept)."""
        earlier: list[AlertEvent] = []
        for message in self._outbox:
            if message[0] == "alerts":
                earlier.extend(message[2])
        self._outbox = [m for m in self._outbox if m[0] != "alerts"]
        self._outbox.append(("alerts", active, [*earlier, *events]))
        self._flush()

    def _recorder_state(self, state: RecorderState) -> None:
        """Queue the recorder's state (replacing one not sent yet)."""
        self._outbox = [m for m in self._outbox if m[0] != "recorder"]
        self._outbox.append(("recorder", state))
        self._flush()

    async def _tick(self) -> None:
        interval = 1.0 / UPDATE_HZ
        while True:
            if os.getppid() != self._parent_pid:  # orphaned: the parent died
                self._stop.set()
                return
            self._queue_update()
            self._flush()
            await asyncio.sleep(interval)

    def _tap_state(self) -> TapState:
        tap = self.tap
        return TapState(
            bound=tap.bound.is_set(),
            ready=tap.ready.is_set(),
            queue_name=tap.queue_name,
            consumed=tap.consumed,
            probes_sent=tap.probes_sent,
            probes_received=tap.probes_received,
        )

    def _queue_update(self, *, force: bool = False) -> None:
        """Queue an update when anything changed (replacing one not yet sent)."""
        aggregator = self.aggregator
        now = int(time.time())
        tap = self._tap_state()
        if (
            not force
            and aggregator.version == self._sent_version
            and now == self._sent_sec
            and tap == self._sent_tap
        ):
            return
        version = aggregator.version
        # From the last second sent (final now) through the current one; one more
        # in case the clock turns a second while the frame is built.
        frame = aggregator.frame(min(self._config.capacity_s, max(1, now - self._sent_sec + 2)))
        self._outbox = [m for m in self._outbox if m[0] != "update"]
        self._outbox.append(("update", frame, aggregator.totals_by_status(), tap))
        self._pending = (int(frame.t[-1]), version, tap)

    def _flush(self, wait_s: float = 0.0) -> None:
        """Send what the pipe takes now (or within ``wait_s``), without blocking."""
        while self._outbox:
            try:
                _, writable, _ = select.select([], [self._conn], [], wait_s)
                if not writable:
                    return
                message = self._outbox.pop(0)
                self._conn.send(message)
            except (OSError, ValueError):  # the parent is gone
                self._outbox.clear()
                self._stop.set()
                return
            if message[0] == "update":
                self._sent_sec, self._sent_version, self._sent_tap = self._pending
