"""The live flow's child process: link, tap, depth poller, aggregator and recorder.

It runs on a plain asyncio loop and reports up the pipe (``services.flow.protocol``).
It stops on ``StopChild``, when the pipe reaches EOF, or when its parent
process changes (the parent died). It never blocks on the pipe: what cannot be
written now waits in an outbox (updates are merged: the next one covers the
seconds since the last one sent; an ``AlertsEvaluated`` not yet sent is merged
with the next one, keeping every transition; only the latest recorder state is
kept).

The child also runs the ``FlowRecorder`` (``services.flow.recorder``): alerts,
and the history, alert log and payment record in Redis while it holds the
history lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import os
import select
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Final

from aio_pika.abc import AbstractConnection

from services.alerts.model import Alert, AlertEvent
from services.flow.aggregator import FlowAggregator
from services.flow.decoder import EventDecoder
from services.flow.depth_poller import DepthPoller
from services.flow.payment_events import PaymentEventBuffer
from services.flow.protocol import (
    AlertsEvaluated,
    ChildConfig,
    ChildMessage,
    FlowUpdated,
    LinkChanged,
    ParentCommand,
    ProblemFound,
    ProblemResolved,
    RecorderChanged,
    ReleaseConsume,
    StopChild,
    TapState,
)
from services.flow.recorder import FINISH_TIMEOUT_S, FlowRecorder, RecorderState
from services.flow.tap import FlowTap
from services.links.amqp import AmqpLink
from services.links.status import LinkStatus
from services.masking.text import MaskingFilter
from services.stopping import bounded, stop_tasks

UPDATE_HZ: Final = 15
IDLE_TICK_LAG_S: Final = 0.01
"""Idle, the child wakes this long after each second turns (to send the new second)."""
RECORDER_STOP_S: Final = FINISH_TIMEOUT_S + 1.0
"""How long the child waits for its recorder's last write and lease release."""


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
    child = FlowChild(conn, config)
    # What start-up made lives as long as the process: out of the collector's sight.
    # Each event leaves a tuple in the payment record's buffer until the next write,
    # so collections run often under load; each full one went over ~54,000 start-up
    # objects (0.3 s of a 100,000-event run in the collector; frozen, 0.03 s).
    gc.freeze()
    # A plain selector loop, whatever event-loop policy an imported module set.
    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        runner.run(child.run())
        if child.abandoned:
            # A task that ignored every cancel would hang the runner's close (it cancels
            # once and waits for ever); the last update is sent and the pipe closed.
            logging.shutdown()
            os._exit(0)


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
        # Each payment's events, for the recorder to write (see services.flow.recorder).
        self.payment_events = (
            PaymentEventBuffer() if config.record and profile.payment_events else None
        )
        self.tap = FlowTap(
            profile,
            self.aggregator,
            EventDecoder(profile.fields, profile.failure_statuses),
            self._problem,
            on_resolved=self._resolved,
            consume_gate=self._gate,
            payment_events=self.payment_events,
        )
        self.depth_poller = DepthPoller(
            (*profile.watch_queues, *profile.dead_letter_queues),
            self.aggregator,
            profile.depth_poll_interval_s,
            self._problem,
            self._resolved,
        )
        self.amqp = AmqpLink(
            profile.amqp_endpoint, self._status, self._run_session, backoff=config.backoff
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
            payment_events=self.payment_events,
        )
        self._outbox: list[ChildMessage] = []
        self._stop = asyncio.Event()
        self._parent_pid = os.getppid()
        self._sent_version = -1
        self._sent_tap = TapState()
        self._pending: tuple[int, int, TapState] = (0, -1, TapState())
        self._abandoned: list[asyncio.Future[object]] = []

    @property
    def abandoned(self) -> bool:
        """Whether a task did not stop when ``run`` ended (logged with where it was)."""
        return any(not task.done() for task in self._abandoned)

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
            # Bounded: a cancel that redis-py's wait_for drops must not keep the child
            # alive after its parent has gone (see services.stopping).
            self._abandoned = await stop_tasks(
                [recorder], "the flow recorder", grace_s=RECORDER_STOP_S
            )
            self._abandoned += await stop_tasks([ticker, link], "the flow child")
            await bounded(self.amqp.close(), "closing the flow child's RabbitMQ link")
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
                command: ParentCommand = self._conn.recv()
                match command:
                    case ReleaseConsume():
                        self._gate.set()
                    case StopChild():
                        self._stop.set()
        except (EOFError, OSError):  # the parent closed the pipe or died
            self._stop.set()
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self._conn.fileno())

    # -- to the parent

    def _status(self, status: LinkStatus) -> None:
        self._send(LinkChanged(status))

    def _problem(self, text: str) -> None:
        self._send(ProblemFound(text))

    def _resolved(self, text: str) -> None:
        self._send(ProblemResolved(text))

    def _alerts(self, active: list[Alert], events: list[AlertEvent]) -> None:
        """Queue the alerts; one not sent yet is merged in (its transitions kept)."""
        earlier: list[AlertEvent] = []
        for message in self._outbox:
            if isinstance(message, AlertsEvaluated):
                earlier.extend(message.events)
        self._send(AlertsEvaluated(active, [*earlier, *events]), replacing=AlertsEvaluated)

    def _recorder_state(self, state: RecorderState) -> None:
        """Queue the recorder's state (replacing one not sent yet)."""
        self._send(RecorderChanged(state), replacing=RecorderChanged)

    def _send(self, message: ChildMessage, replacing: type[ChildMessage] | None = None) -> None:
        """Queue ``message`` (after dropping the queued ones of type ``replacing``) and flush."""
        if replacing is not None:
            self._outbox = [m for m in self._outbox if not isinstance(m, replacing)]
        self._outbox.append(message)
        self._flush()

    async def _tick(self) -> None:
        """Send what changed ``UPDATE_HZ`` times a second while messages arrive; idle,
        once a second (the current second turns) or at the next delivery."""
        interval = 1.0 / UPDATE_HZ
        seen = -1
        while True:
            if os.getppid() != self._parent_pid:  # orphaned: the parent died
                self._stop.set()
                return
            self._queue_update()
            self._flush()
            version = self.aggregator.version
            if version == seen and not self._outbox:
                now = time.time()
                await self.tap.traffic_or_timeout(math.floor(now) + 1 + IDLE_TICK_LAG_S - now)
            else:
                await asyncio.sleep(interval)
            seen = version

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
        self._outbox = [m for m in self._outbox if not isinstance(m, FlowUpdated)]
        self._outbox.append(FlowUpdated(frame, aggregator.totals_by_status(), tap))
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
            if isinstance(message, FlowUpdated):
                self._sent_sec, self._sent_version, self._sent_tap = self._pending
