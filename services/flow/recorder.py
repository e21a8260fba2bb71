"""The flow recorder: alerts evaluated once a second, history and alert log written to Redis.

It runs inside the live flow's child process (``services.flow.child``), next
to the tap and the aggregator, in every console and in every headless
``payops collect``; ``FlowRecorder.run`` is one more task on the child's loop.

Alerts: once a second an ``AlertEngine`` with the profile's rules judges the
aggregator's recent frame; the active alerts and the transitions go to the
parent (``on_alerts``). Every console evaluates for itself.

Who writes (the lease): many recorders tap the same exchanges, but only one
writes the history and the alert log at a time, the holder of the
``HistoryLease`` (``P:history:lease``, ttl 10 s). A recorder without it tries
to take it every ``retry_interval_s`` (a third of the ttl); the holder renews it
as often and stops writing the moment a renewal fails (or Redis errs). The
holder writes each finished second once, about a second after it ends, and
right after taking the lease it back-fills, from its own aggregator, the
finished seconds after the newest one stored (the gap the previous holder left
when it stopped or died, or all it saw while nobody wrote); stored seconds are
not rewritten, so a console that started late or fell behind does not replace
a better record. On stop the holder writes what is finished and
releases the lease, so another recorder takes over within a few seconds; one
that crashed is replaced when its lease expires. Only the holder appends alert
transitions to ``AlertLog``; a transition seen while not holding is not
recorded, so two consoles never record one alert twice.

A recorder writes only the seconds its tap consumed for the whole second: from
the first full second after the tap became ready, to the last full second
before it lost its consumer (``TapCoverage``). A console whose tap is held
(``hold_consume``) or disconnected therefore never writes zeros over a second
another recorder got right, nor blanks one a later back-fill would fill.

The payment record (``services.flow.payment_events``): the tap appends each
event with a payment id, and each dead letter's payment id, to a bounded
``PaymentEventBuffer``; the holder drains it at every step (about once a
second) into ``PaymentEventStore`` (a payment with a failure status, a dead
letter or a replayed event is kept for the retention window). A recorder not
holding keeps only the last ``handover_s`` of it and writes that when it takes
the lease, so a holder that died leaves no gap; the writes are idempotent, so
what both wrote is stored once. Only the holder writes, so with several
consoles every event is written once. The holder also settles the outcomes of
replayed entries the events finish (``services.outcomes.tracker``: captured ->
succeeded, …) and, every ``OUTCOME_SWEEP_S``, those whose time ran out.

Redis trouble never reaches the tap: the recorder has its own client (short
timeouts, one quick retry), reports ``unavailable`` with the reason, keeps
evaluating alerts, and tries again with back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

import redis.asyncio as aioredis
import redis.exceptions

from services.alerts.log import AlertLog
from services.alerts.model import Alert, AlertEvent
from services.config import Profile
from services.flow.aggregator import FlowAggregator
from services.flow.alert_engine import AlertEngine
from services.flow.history import HistoryLease, HistoryStore, SecondRow, rows_from_frame
from services.flow.payment_events import (
    PaymentEventBuffer,
    PaymentEventStore,
    Pending,
    sightings,
)
from services.flow.types import FlowFrame
from services.links.amqp import describe_error
from services.links.backoff import DEFAULT_BACKOFF_S, Backoff
from services.links.redis_client import make_redis_client
from services.links.tls import describe_tls_error
from services.links.urls import scrub, url_password
from services.outcomes.tracker import OutcomeTracker
from services.stopping import stop_tasks

log = logging.getLogger(__name__)

LEASE_TTL_S: Final = 10.0
REDIS_TIMEOUT_S: Final = 2.0
WATCH_INTERVAL_S: Final = 0.1
"""How often the tap's state is looked at (and whether an evaluation is due)."""
TICK_OFFSET_S: Final = 0.1
"""Evaluate and write this long after a second ends, so it is finished everywhere."""
FINISH_TIMEOUT_S: Final = 3.0
"""How long the last write and the lease's release may take on stop."""
WRITE_CHUNK: Final = 600
"""Rows per Redis pipeline when back-filling."""
OUTCOME_SWEEP_S: Final = 5.0
"""How often the holder settles the replayed entries whose outcome timed out."""
OPEN_SCAN: Final = 1000
"""How many of the newest alert-log events are read to find the alerts it shows firing."""
MAX_RUNS: Final = 64

RecorderRole = Literal["writer", "standby", "unavailable"]
AlertsCallback = Callable[[list[Alert], list[AlertEvent]], None]


@dataclass(frozen=True)
class RecorderState:
    """Where the recorder stands, as the parent shows it.

    ``role``: ``writer`` (holds the lease and writes), ``standby`` (another
    recorder holds it, or it is free and will be taken at the next try) or
    ``unavailable`` (Redis cannot be used; ``detail`` says why). ``holder`` is
    the lease holder's id when known (ours while writing). ``last_written``:
    every finished second up to this one has been written by this recorder
    (seconds with nothing known are skipped, not written); None before the
    first write. ``writer_id`` is this recorder's own holder id.
    ``consuming_since``: the first full second of the tap's current consumer
    session (None while the tap does not consume); no earlier second of the
    session is written.
    """

    role: RecorderRole
    holder: str | None = None
    last_written: int | None = None
    detail: str = ""
    writer_id: str = ""
    consuming_since: int | None = None

    def describe(self) -> str:
        """One line for a status bar or a log: ``writing (lease held)`` and the like."""
        if self.role == "writer":
            return "writing (lease held)"
        if self.role == "standby":
            if self.holder:
                return f"standby, {self.holder} writes"
            return f"standby ({self.detail or 'the lease is free'})"
        return f"unavailable: {self.detail}" if self.detail else "unavailable"


class TapSession(Protocol):
    """What the recorder reads of the tap (``FlowTap``): is it consuming, and since when."""

    ready: asyncio.Event  # set while the tap consumes
    queue_name: str | None  # a new name for every consumer session


def new_holder_id() -> str:
    """A lease holder id that tells an operator who writes: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class TapCoverage:
    """The seconds the tap consumed for the whole second, from observations of its state.

    ``observe(ready, session, now)`` is called often (every ``WATCH_INTERVAL_S``
    and before every write). A consumer session starts at the first
    observation that sees it ready; its first full second is the next one. It
    is known to have run through ``now`` at every later observation that sees
    it ready with the same session (queue name); once an observation sees it
    not ready or another session, it ended somewhere after the last good
    observation, so its last full second is the one before that observation's.
    """

    def __init__(self, max_runs: int = MAX_RUNS) -> None:
        self._closed: deque[tuple[int, int]] = deque(maxlen=max_runs)  # [start, end)
        self._start: int | None = None  # first full second of the open run
        self._session: str | None = None
        self._seen: float = 0.0  # last observation of the open run

    def observe(self, ready: bool, session: str | None, now: float) -> None:
        """Note the tap's state at ``now``."""
        if self._start is not None:
            if ready and session == self._session:
                self._seen = max(self._seen, now)
                return
            end = math.floor(self._seen)
            if end > self._start:
                self._closed.append((self._start, end))
            self._start = self._session = None
        if ready:
            self._start = math.floor(now) + 1
            self._session = session
            self._seen = now

    def whole(self, second: int) -> bool:
        """Whether the tap consumed for the whole of ``second`` (as far as observed)."""
        if self._start is not None and self._start <= second < math.floor(self._seen):
            return True
        return any(start <= second < end for start, end in self._closed)

    def earliest(self) -> int | None:
        """The first second of the oldest run still remembered, None if none."""
        if self._closed:
            return self._closed[0][0]
        return self._start

    @property
    def consuming_since(self) -> int | None:
        """The first full second of the running session, None while not consuming."""
        return self._start


class FlowRecorder:
    """Evaluates alerts once a second; while it holds the lease, writes history and alerts.

    ``on_alerts(active, events)`` is called after an evaluation that changed
    the active alerts or their values, or had transitions; ``on_state(state)``
    whenever ``state`` changes. With ``record=False`` only alerts are evaluated
    (no Redis at all, no state). Call ``run()`` as a task and ``request_stop()``
    to end it: it then writes what is finished and releases the lease (within
    ``FINISH_TIMEOUT_S``) before returning.
    """

    def __init__(
        self,
        profile: Profile,
        aggregator: FlowAggregator,
        tap: TapSession,
        *,
        on_alerts: AlertsCallback | None = None,
        on_state: Callable[[RecorderState], None] | None = None,
        record: bool = True,
        capacity_s: int = 3600,
        holder_id: str | None = None,
        lease_ttl_s: float = LEASE_TTL_S,
        backoff: Sequence[float] = DEFAULT_BACKOFF_S,
        clock: Callable[[], float] = time.time,
        payment_events: PaymentEventBuffer | None = None,
    ) -> None:
        self._backoff = Backoff(backoff)
        self.profile = profile
        self.engine = AlertEngine(profile.alerts, clock=clock)
        self.holder_id = holder_id or new_holder_id()
        self.coverage = TapCoverage()
        self.active: list[Alert] = []
        self.state = RecorderState("unavailable", detail="not started", writer_id=self.holder_id)
        self._aggregator = aggregator
        self._tap = tap
        self._on_alerts = on_alerts
        self._on_state = on_state
        self._record = record
        self._cap = capacity_s
        self._ttl = lease_ttl_s
        self._clock = clock
        self._stop = asyncio.Event()
        self._target = profile.redis_settings.target
        self._password = url_password(profile.redis_url)
        # Redis side (created on first use).
        self._client: aioredis.Redis | None = None
        self._lease: HistoryLease | None = None
        self._store: HistoryStore | None = None
        self._alert_log: AlertLog | None = None
        # The payment record: what the tap buffered, and what a failed write left.
        self._payments = payment_events if record else None
        self._payment_store: PaymentEventStore | None = None
        self._outcomes: OutcomeTracker | None = None
        self._next_sweep = 0.0
        self._unsent: tuple[list[Pending], list[str]] = ([], [])
        self.handover_s = 2 * lease_ttl_s + 5
        """How much of the payment record a recorder not holding keeps for a take-over."""
        # Lease bookkeeping.
        self._holding = False
        self._lease_at = 0.0  # when the lease was last confirmed (acquired or renewed)
        self._next_renew = 0.0
        self._next_acquire = 0.0
        self._through: int | None = None  # every finished second up to it is written
        self._last_written: int | None = None
        self._pending: list[AlertEvent] = []  # transitions seen while holding, to record
        # The rules the alert log shows firing (rule -> its firing event), read when
        # the lease is taken and kept up to date while holding; None when not holding.
        self._open_logged: dict[str, AlertEvent] | None = None

    @property
    def holding(self) -> bool:
        """Whether this recorder holds the lease (and writes)."""
        return self._holding

    def request_stop(self) -> None:
        """Ask ``run()`` to finish: write what is finished, release the lease, return."""
        self._stop.set()

    async def run(self) -> None:
        """Evaluate and record until ``request_stop()``; then finish and return."""
        tasks = [asyncio.create_task(self._watch(), name="payops-recorder-watch")]
        if self._record:
            tasks.append(asyncio.create_task(self._keep_history(), name="payops-recorder-redis"))
        try:
            try:
                await self._stop.wait()
            finally:
                await stop_tasks(tasks, "history")
            if self._record:
                try:
                    await asyncio.wait_for(self._finish(), FINISH_TIMEOUT_S)
                except Exception as exc:
                    log.warning("history: the last write on stop failed: %s", self._describe(exc))
        finally:
            await self._close_client()

    # -- alerts and the tap ------------------------------------------------------

    async def _watch(self) -> None:
        next_eval = math.floor(self._clock()) + 1 + TICK_OFFSET_S
        while True:
            now = self._clock()
            self._observe(now)
            if now >= next_eval:
                next_eval = math.floor(now) + 1 + TICK_OFFSET_S
                try:
                    self._evaluate()
                except Exception:
                    log.exception("alert evaluation failed")
            await asyncio.sleep(WATCH_INTERVAL_S)

    def _observe(self, now: float) -> None:
        self.coverage.observe(self._tap.ready.is_set(), self._tap.queue_name, now)

    def _evaluate(self) -> None:
        engine = self.engine
        events = engine.evaluate(self._aggregator.frame(engine.window_s))
        active = engine.active()
        if self._holding:
            self._pending.extend(events)  # only the holder records
        for event in events:
            log.info("alert %s %s: %s", event.rule, event.kind, event.message)
        if events or active != self.active:
            self.active = active
            if self._on_alerts is not None:
                self._on_alerts(active, events)

    # -- Redis: lease, history, alert log ------------------------------------------

    async def _keep_history(self) -> None:
        self._backoff.reset()
        while True:
            try:
                await self._history_step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                detail = self._describe(exc)
                if self.state.role != "unavailable" or self.state.detail != detail:
                    log.warning("history: Redis unavailable (%s); retrying", detail)
                self._let_go()
                self._trim_payment_events(self._clock())
                self._set_state("unavailable", None, detail)
                delay = self._backoff.next_delay()
            else:
                self._backoff.reset()
                now = self._clock()
                delay = math.floor(now) + 1 + TICK_OFFSET_S - now
            await asyncio.sleep(delay)

    async def _history_step(self) -> None:
        lease = self._connect()
        now = self._clock()
        if self._holding and now - self._lease_at >= self._ttl:
            log.warning("history: the lease was not renewed in time; standing by")
            self._let_go()
        if not self._holding:
            self._trim_payment_events(now)
        if self._holding:
            if now >= self._next_renew:
                if not await lease.renew():
                    log.warning("history: lost the lease; standing by")
                    self._let_go()
                    self._set_state("standby", await lease.holder())
                    return
                self._lease_at, self._next_renew = now, now + lease.renew_interval_s
            await self._write_finished()
            await self._record_alerts()
            await self._write_payment_events()
            self._set_state("writer", self.holder_id)
            return
        if now < self._next_acquire:
            return
        self._next_acquire = now + lease.retry_interval_s
        if await lease.acquire():
            self._holding = True
            self._lease_at, self._next_renew = now, now + lease.renew_interval_s
            await self._backfill()
            await self._write_payment_events()
            self._set_state("writer", self.holder_id)
        else:
            self._set_state("standby", await lease.holder())

    def _connect(self) -> HistoryLease:
        if self._lease is None:
            profile = self.profile
            client = make_redis_client(
                profile.redis_settings,
                decode_responses=False,
                socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S,
            )
            self._client = client
            self._lease = HistoryLease(client, profile.redis_prefix, self.holder_id, self._ttl)
            self._store = HistoryStore.for_profile(client, profile)
            self._alert_log = AlertLog(client, profile.redis_prefix)
            self._payment_store = PaymentEventStore.for_profile(client, profile)
            self._outcomes = OutcomeTracker.for_profile(client, profile)
        return self._lease

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        self._lease = self._store = self._alert_log = None
        self._payment_store = None
        self._outcomes = None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.aclose(), REDIS_TIMEOUT_S)

    def _let_go(self) -> None:
        """Stop writing at once (the lease is lost, or cannot be confirmed)."""
        if self._holding:
            self._holding = False
            self._next_acquire = 0.0
        self._through = None
        self._open_logged = None
        if self._pending:
            log.info(
                "history: %d alert transition(s) not recorded (not holding)", len(self._pending)
            )
            self._pending.clear()

    async def _write_payment_events(self) -> None:
        """Drain the tap's buffer into the payment record, and settle the outcomes of
        replayed entries its events finish (only the holder does)."""
        buffer, store = self._payments, self._payment_store
        if buffer is None or store is None:
            return
        outcomes = self._outcomes
        now = self._clock()
        if outcomes is not None and now >= self._next_sweep:
            self._next_sweep = now + OUTCOME_SWEEP_S
            await outcomes.sweep(round(now * 1000))
        overflowed = buffer.overflowed
        events, kept = buffer.drain()
        if buffer.overflowed != overflowed:
            log.warning("payment record: the buffer was full; its oldest events were dropped")
        unsent_events, unsent_kept = self._unsent
        if unsent_events or unsent_kept:
            events, kept = unsent_events + events, unsent_kept + kept
        if not events and not kept:
            return
        self._unsent = (events[-buffer.capacity :], kept[-buffer.capacity :])
        await store.append_pending(events, lasting_statuses=self.profile.failure_statuses)
        if kept:
            await store.keep(kept)
        if outcomes is not None and events:
            await outcomes.observe(sightings(events))
        self._unsent = ([], [])

    def _trim_payment_events(self, now: float) -> None:
        """Not holding: keep only the last ``handover_s`` of the payment record."""
        buffer = self._payments
        if buffer is None:
            return
        cutoff_ms = (now - self.handover_s) * 1000.0
        buffer.trim(cutoff_ms)
        events, kept = self._unsent
        if events or kept:
            self._unsent = ([e for e in events if e[1] >= cutoff_ms], [])

    def _rows(self, frame: FlowFrame, upto: int, since: int) -> list[SecondRow]:
        """The one place rows are built: the finished seconds ``since <= s < upto`` of ``frame``.

        Only the seconds the tap consumed for whole are kept (see ``TapCoverage``).
        """
        reasons = self._aggregator.failure_reasons(since, upto)
        rows = rows_from_frame(frame, upto, since_second=since, reasons=reasons)
        return [row for row in rows if self.coverage.whole(row.second)]

    async def _write_finished(self) -> None:
        """Write the seconds finished since the last write."""
        if self._through is None:
            await self._backfill()
            return
        now = self._clock()
        self._observe(now)
        current = math.floor(now)
        low = max(self._through + 1, current - self._cap + 2)
        if low < current:
            # One more second than needed, in case the aggregator's clock turns meanwhile.
            frame = self._aggregator.frame(current - low + 2)
            assert self._store is not None
            await self._store.write_seconds(self._rows(frame, current, low))
        self._advance(current - 1)

    async def _backfill(self) -> None:
        """Right after taking the lease: write the finished seconds after the newest stored one.

        Those are the seconds the previous holder left (it stopped or died, or
        there was none); the ones it wrote stay as they are.
        """
        now = self._clock()
        self._observe(now)
        current = math.floor(now)
        earliest = self.coverage.earliest()
        low = current if earliest is None else max(earliest, current - self._cap + 2)
        if low < current:
            assert self._store is not None
            stored = await self._store.read_rows(low, current)
            if stored:
                low = max(low, stored[-1].second + 1)
        if low < current:
            assert self._store is not None
            frame = self._aggregator.frame(current - low + 2)
            rows = self._rows(frame, current, low)
            for i in range(0, len(rows), WRITE_CHUNK):
                await self._store.write_seconds(rows[i : i + WRITE_CHUNK])
            if rows:
                log.info("history: back-filled %d second(s) from %d", len(rows), low)
        self._advance(current - 1)

    def _advance(self, through: int) -> None:
        self._through = through
        last = self._last_written
        self._last_written = through if last is None else max(last, through)

    async def _record_alerts(self) -> None:
        """Keep the alert log in step with this recorder's engine (only the holder does).

        The transitions seen while holding are appended, oldest first, unless the
        log already says so (another writer recorded the same firing). Alerts
        that were firing before the lease was taken and that the log lacks are
        recorded as firing since they began. Once the engine has watched the
        flow for its longest window, a rule the log shows firing but the engine
        does not (it resolved while nobody recorded, or a writer stopped while
        it fired) is recorded as resolved, so no alert stays open forever.
        """
        alert_log = self._alert_log
        assert alert_log is not None
        if self._open_logged is None:
            self._open_logged = await self._read_open_alerts(alert_log)
        opened = self._open_logged
        while self._pending:
            event = self._pending[0]
            if (event.kind == "firing") != (event.rule in opened):
                await self._append(alert_log, opened, event)
            self._pending.pop(0)
        active = self.engine.active()
        for alert in active:
            if alert.rule not in opened:
                firing = AlertEvent(
                    alert.since, alert.rule, "firing", alert.value, alert.message, alert.severity
                )
                await self._append(alert_log, opened, firing)
        now = self._clock()
        since = self.coverage.consuming_since
        if since is None or now - since < self.engine.window_s:
            return  # too early to tell that a logged alert is over
        firing_now = {alert.rule for alert in active}
        for rule, firing in list(opened.items()):
            if rule not in firing_now:
                resolved = AlertEvent(
                    now,
                    rule,
                    "resolved",
                    None,
                    f"resolved: not firing when {self.holder_id} took over the alert log",
                    firing.severity,
                )
                await self._append(alert_log, opened, resolved)

    @staticmethod
    async def _append(
        alert_log: AlertLog, opened: dict[str, AlertEvent], event: AlertEvent
    ) -> None:
        await alert_log.append(event)
        if event.kind == "firing":
            opened[event.rule] = event
        else:
            opened.pop(event.rule, None)
        log.info("alert log: %s %s recorded", event.rule, event.kind)

    async def _read_open_alerts(self, alert_log: AlertLog) -> dict[str, AlertEvent]:
        """The rules whose latest event in the log (the last ``OPEN_SCAN`` events) is a firing."""
        latest: dict[str, AlertEvent] = {}
        for event in await alert_log.read_range(count=OPEN_SCAN):  # newest first
            latest.setdefault(event.rule, event)
        return {rule: e for rule, e in latest.items() if e.kind == "firing"}

    async def _finish(self) -> None:
        """On stop: write what is finished and release the lease."""
        lease = self._lease
        if not self._holding or lease is None:
            return
        try:
            await self._write_finished()
            await self._record_alerts()
            await self._write_payment_events()
        finally:
            self._holding = False
            self._through = None
            released = await lease.release()
            log.info("history: %s the lease", "released" if released else "had already lost")
            self._set_state("standby", None, "stopped, lease released")

    def _set_state(self, role: RecorderRole, holder: str | None, detail: str = "") -> None:
        state = RecorderState(
            role,
            holder,
            self._last_written,
            detail,
            self.holder_id,
            self.coverage.consuming_since,
        )
        if state == self.state:
            return
        if state.role != self.state.role or state.holder != self.state.holder:
            log.info("history: %s (this recorder: %s)", state.describe(), self.holder_id)
        self.state = state
        if self._on_state is not None:
            self._on_state(state)

    def _describe(self, exc: BaseException) -> str:
        target = self._target
        tls_failure = describe_tls_error(exc, "Redis", self.profile.redis_settings.tls, target)
        if tls_failure is not None:
            text = tls_failure
        elif isinstance(exc, redis.exceptions.AuthenticationError):
            text = f"Redis {target}: authentication failed"
        elif isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, OSError):
                text = f"Redis: {describe_error(cause, target)}"
            elif isinstance(exc, redis.exceptions.TimeoutError):
                text = f"Redis: timed out talking to {target}"
            else:
                text = f"Redis {target}: {exc}"
        elif isinstance(exc, TimeoutError):
            text = f"Redis: timed out talking to {target}"
        else:
            text = f"Redis {target}: {type(exc).__name__}: {exc}"
        return scrub(text, self._password)
