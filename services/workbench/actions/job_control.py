"""Steer a running job's windows: its pace, its canary, and pause / resume / cancel
from Redis (so from any console or process; a job at full speed looks at its state
every ``STATE_CHECK_S`` only).

:class:`JobControl` wraps the windows an :class:`~.pipeline.ActionRun` acts on. It cuts
them into pieces of about a tenth of a second's worth at the job's ``rate`` and hands
each out when it is due; before each piece it reads the job's state (``paused``: wait,
``cancelled``: stop), and keeps the job's runner key alive. With a ``canary`` it sends
that many, waits until their outcomes are in (their ``no outcome`` time-out included)
and pauses the job when more than ``max_failed_pct`` of them failed again; later, the
job pauses by itself when the share of its settled entries that failed again passes
the same threshold, or when a critical alert fires (the alert log, written by the
recorder holding the history lease). A paused job goes on when an operator resumes it.

Its reads of Redis, and the pause (a compare-and-set that a repeat leaves paused), ride
through a failover (:func:`~services.links.redis_client.through_failover`), as the run's
own calls do; the runner key's refresh does not need to (it is refreshed again soon).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Final, TypeVar, cast

from redis.exceptions import RedisError

from services.alerts.log import AlertLog
from services.links.redis_client import through_failover
from services.outcomes.model import Outcome
from services.outcomes.tracker import OutcomeTracker
from services.workbench.actions.jobs import JobState, JobStore, Pace
from services.workbench.model import EntrySummary
from services.workbench.store import ParkingStore

log = logging.getLogger(__name__)
T = TypeVar("T")

POLL_S: Final = 0.1
"""How often a paused job, or a canary waiting for its outcomes, looks again."""
RUNNER_REFRESH_S: Final = 3.0
STATE_CHECK_S: Final = 0.5
"""How often a job at full speed looks whether it was paused or cancelled."""
ALERT_CHECK_S: Final = 1.0
"""How often a paced job looks for a critical alert."""
MIN_JUDGED: Final = 10
"""The failure share pauses a job only once this many of its entries (or its canary)
have an outcome."""


class JobControl:
    """See the module docstring. ``stop`` is the run's cancel event: set when the job is
    cancelled, after which the windows pass through undelayed (counted, not sent)."""

    def __init__(
        self,
        jobs: JobStore,
        store: ParkingStore,
        job_id: str,
        pace: Pace,
        tracker: OutcomeTracker,
        *,
        token: str,
        stop: asyncio.Event,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jobs = jobs
        self.store = store
        self.job_id = job_id
        self.pace = pace
        self.tracker = tracker
        self.token = token
        self.stop = stop
        self.clock = clock
        self.sent = 0
        self.paused_by_itself = ""
        self._canary_ids: list[tuple[str, str]] = []
        self._canary_judged = pace.canary <= 0
        self._next_refresh = 0.0
        self.alerts = AlertLog(jobs.redis, jobs.prefix)
        self._alerts_since_ms = int(time.time() * 1000)
        self._next_alert_check = 0.0
        self._next_state_check = 0.0

    async def steer(
        self, windows: AsyncIterator[list[EntrySummary]]
    ) -> AsyncIterator[list[EntrySummary]]:
        """``windows`` paced, paused and stopped as the job says."""
        piece_size = max(1, round(self.pace.rate / 10)) if self.pace.rate > 0 else 0
        due = self.clock()
        async for window in windows:
            rest = list(window)
            while rest:
                size = piece_size or len(rest)
                if not self._canary_judged:
                    size = min(size, self.pace.canary - self.sent) or size
                piece, rest = rest[:size], rest[size:]
                if not self.stop.is_set():
                    await self._before(piece)
                if not self.stop.is_set() and self.pace.rate > 0:
                    now = self.clock()
                    if due > now:
                        await asyncio.sleep(due - now)
                    due = max(due, now) + len(piece) / self.pace.rate
                if not self.stop.is_set():
                    self.sent += len(piece)
                    if not self._canary_judged:
                        self._canary_ids.extend((s.dlq, s.entry_id) for s in piece)
                yield piece

    async def _before(self, piece: Sequence[EntrySummary]) -> None:
        """Judge the canary when it is out, pause on a high failure share or a critical
        alert (paced jobs), wait while the job is paused; a cancel sets ``stop``. A job at
        full speed only looks at its state, at most every ``STATE_CHECK_S``."""
        if not self.pace.paced:
            now = self.clock()
            if now < self._next_state_check:
                return
            self._next_state_check = now + STATE_CHECK_S
            await self._wait_runnable()
            return
        if not self._canary_judged and self.sent >= self.pace.canary:
            self._canary_judged = True
            why = await self._judge_canary()
            if why:
                await self._pause(why)
        elif self._canary_judged and self.sent:
            why = await self._failure_share()
            if why:
                await self._pause(why)
        why = await self._critical_alert()
        if why:
            await self._pause(why)
        await self._wait_runnable()

    async def _critical_alert(self) -> str:
        """A critical alert that fired since the job started (or since the last one that
        paused it), at most once a second; "" when none."""
        now = self.clock()
        if now < self._next_alert_check:
            return ""
        self._next_alert_check = now + ALERT_CHECK_S
        try:
            events = await self.alerts.read_range(self._alerts_since_ms, count=100)
        except RedisError:
            return ""
        for event in events:  # newest first
            if event.kind == "firing" and event.severity == "critical":
                self._alerts_since_ms = event.ts_ms + 1
                return f"critical alert {event.rule} fired: {event.message}"
        return ""

    async def _through(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` riding through a failover (it must be safe to repeat)."""
        return await through_failover(
            call, what=f"job {self.job_id}'s {what}", client=self.jobs.redis
        )

    async def _pause(self, why: str) -> None:
        moved, _ = await self._through(
            "pause",
            lambda: self.jobs.set_state(
                self.job_id, JobState.PAUSED, why, only_from=(JobState.RUNNING,)
            ),
        )
        if moved:
            self.paused_by_itself = why
            log.warning("job %s paused: %s", self.job_id, why)

    async def _wait_runnable(self) -> None:
        while not self.stop.is_set():  # the operator's stop ends a pause too
            await self._refresh_runner()
            state, _ = await self.jobs.state(self.job_id)
            if state is JobState.CANCELLED or state is None:
                self.stop.set()
                return
            if state is not JobState.PAUSED:
                return
            await asyncio.sleep(POLL_S)

    async def _refresh_runner(self) -> None:
        now = self.clock()
        if now >= self._next_refresh:
            self._next_refresh = now + RUNNER_REFRESH_S
            with contextlib.suppress(Exception):
                await self.jobs.refresh_runner(self.job_id, self.token)

    async def _judge_canary(self) -> str:
        """Wait for the canary's outcomes; why the job must pause ("" to go on)."""
        ids = self._canary_ids
        deadline = self.clock() + self.tracker.rules.timeout_s + 30
        outcomes: list[Outcome | None] = []
        while not self.stop.is_set():
            await self._refresh_runner()
            outcomes, claimed = await self._outcomes_of(ids)
            waiting = [o for o in outcomes if o is Outcome.PENDING]
            if (not waiting and outcomes.count(None) == 0) or self.clock() > deadline:
                break
            if not waiting and not claimed:
                break  # the rest were skipped or released: they have no outcome to wait for
            await self.tracker.sweep(int(time.time() * 1000))
            state, _ = await self.jobs.state(self.job_id)
            if state is JobState.CANCELLED:
                self.stop.set()
                return ""
            await asyncio.sleep(POLL_S)
        settled = [o for o in outcomes if o is not None and o is not Outcome.PENDING]
        failed = sum(1 for o in settled if o is Outcome.FAILED_AGAIN)
        if settled and failed * 100 > self.pace.max_failed_pct * len(settled):
            share = failed * 100 / len(settled)
            return (
                f"canary: {failed} of {len(settled)} failed again ({share:.0f} % >"
                f" {self.pace.max_failed_pct:g} %)"
            )
        return ""

    async def _failure_share(self) -> str:
        counts = await self._through("outcomes", lambda: self.jobs.outcome_counts(self.job_id))
        settled = sum(n for name, n in counts.items() if name != Outcome.PENDING.value)
        failed = counts.get(Outcome.FAILED_AGAIN.value, 0)
        if settled < max(MIN_JUDGED, self.pace.canary):
            return ""
        if failed * 100 > self.pace.max_failed_pct * settled:
            return (
                f"{failed} of {settled} replayed payments failed again"
                f" ({failed * 100 / settled:.0f} % > {self.pace.max_failed_pct:g} %)"
            )
        return ""

    async def _outcomes_of(
        self, ids: Sequence[tuple[str, str]]
    ) -> tuple[list[Outcome | None], bool]:
        """The entries' outcomes, and whether any of them is still claimed: read together,
        entry by entry (an entry finished between two reads would look neither claimed
        nor waiting for its outcome); a read: rides through a failover."""

        async def read() -> list[list[bytes | None]]:
            pipe = self.jobs.redis.pipeline(transaction=False)
            for dlq, entry_id in ids:
                pipe.hmget(self.store.entry_key(dlq, entry_id), "outcome", "state")
            return cast(list[list[bytes | None]], await pipe.execute())

        replies = await self._through("canary's outcomes", read)
        outcomes = [Outcome.named(outcome) for outcome, _ in replies]
        return outcomes, any(state == b"claimed" for _, state in replies)


async def attend(
    jobs: JobStore,
    job_id: str,
    token: str,
    operator_stop: asyncio.Event | None,
    stop: asyncio.Event,
) -> None:
    """While a job runs: keep its runner key alive, and pass the operator's stop (Ctrl+C,
    the dialog's Stop) on to the run's ``stop``. Cancel it when the run ends."""
    waiting = asyncio.ensure_future(operator_stop.wait()) if operator_stop is not None else None
    try:
        while True:
            if waiting is None:
                await asyncio.sleep(RUNNER_REFRESH_S)
            else:
                done, _ = await asyncio.wait({waiting}, timeout=RUNNER_REFRESH_S)
                if done:
                    stop.set()
                    waiting = None
            with contextlib.suppress(RedisError, OSError):
                await jobs.refresh_runner(job_id, token)
    finally:
        if waiting is not None:
            waiting.cancel()
