"""Parking a profile's dead-letter queues for as long as it takes: the console's and the CLI's.

One :class:`~services.workbench.parker.Parker` per dead-letter queue, each on
a connection and channel of its own, so a problem in one queue (missing, a
message that makes the AMQP library close its connection) never stops
another. A lost connection (broker restart, network) is reopened with
back-off (:class:`~services.links.backoff.Backoff`); a Redis outage is held
out by the parker itself (deliveries kept unacked, nothing handed back).
Every problem, and its end, goes to ``on_problem`` and the log.

Before taking anything off a queue, :meth:`ParkingRunner.check_store`
refuses a store that could lose what is parked (see
:mod:`services.workbench.durability`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Final

from services.alerts.new_groups import NewFailureGroups
from services.config import Profile
from services.links.backoff import DEFAULT_BACKOFF_S, Backoff, pause
from services.links.endpoints import node_target
from services.links.tls import describe_tls_error
from services.workbench.cause import FailureLookup
from services.workbench.durability import check_parking_store
from services.workbench.model import Durability
from services.workbench.park_link import ParkLink
from services.workbench.parker import CAUSE_RECHECK_S, Parker, ParkerStats, ParkingFailed
from services.workbench.store import ParkingStore

log = logging.getLogger(__name__)

SESSION_LASTED_S: Final = 10.0
"""A connection that lasted this long resets the reconnect back-off."""
CONNECT_TIMEOUT_S: Final = 10.0

ProblemCallback = Callable[[str, bool], None]
"""``(text, active)``: a problem of one queue's parking (``active``), or the same text
again when it cleared."""


class ParkingRunner:
    """Parks ``dlqs`` of ``profile`` into ``store`` (see the module docstring).

    With ``once``, each queue is drained and its parker ends; an AMQP error
    then ends that queue's parking (no reconnect), and a Redis outage longer
    than ``give_up_after_s`` raises :class:`ParkingFailed` for it.
    ``flow_failures`` gives the parkers the flow's failure events (causes, see
    :class:`~services.workbench.parker.Parker`); the profile's
    ``failure_group_alert`` rule is judged on what they park.
    """

    def __init__(
        self,
        profile: Profile,
        store: ParkingStore,
        dlqs: Sequence[str],
        *,
        once: bool = False,
        on_progress: Callable[[ParkerStats], None] | None = None,
        on_problem: ProblemCallback | None = None,
        give_up_after_s: float | None = None,
        reconnect_delays: Sequence[float] = DEFAULT_BACKOFF_S,
        redis_backoff: Sequence[float] | None = None,
        flow_failures: FailureLookup | None = None,
        cause_recheck_s: Sequence[float] = CAUSE_RECHECK_S,
    ) -> None:
        self.profile = profile
        self.store = store
        self.once = once
        self.on_progress = on_progress
        self.on_problem = on_problem
        self.reconnect_delays = tuple(reconnect_delays)
        self._stop = asyncio.Event()
        self._problems: dict[str, str] = {}
        extra = {} if redis_backoff is None else {"redis_backoff": redis_backoff}
        rule = profile.failure_group_alert
        new_groups = (
            None
            if rule is None
            else NewFailureGroups(
                store.redis, profile.redis_prefix, rule, profile.history_retention_s
            )
        )
        self.parkers = [
            Parker(
                store,
                dlq,
                profile.fields,
                on_progress=self._progress,
                ack_after=profile.park_ack_after,
                give_up_after_s=give_up_after_s,
                flow_failures=flow_failures,
                cause_recheck_s=cause_recheck_s,
                new_groups=new_groups,
                **extra,  # type: ignore[arg-type]
            )
            for dlq in dlqs
        ]

    async def check_store(self) -> Durability:
        """The store's durability; raises :class:`~services.workbench.durability.VolatileStore`
        when the profile does not allow parking into it."""
        return await check_parking_store(
            self.store.redis,
            allow_volatile=self.profile.allow_volatile_store,
            ack_after=self.profile.park_ack_after,
            min_replicas=self.profile.redis_min_replicas,
        )

    def request_stop(self) -> None:
        """Stop every parker: what was delivered is parked and acked, then run() returns."""
        self._stop.set()
        for parker in self.parkers:
            parker.request_stop()

    async def run(self) -> list[ParkerStats | BaseException]:
        """Park until stopped (or drained, with ``once``); per queue its stats or its error."""
        return list(
            await asyncio.gather(
                *(self._run_one(parker) for parker in self.parkers), return_exceptions=True
            )
        )

    # ------------------------------------------------------------------ internals

    async def _run_one(self, parker: Parker) -> ParkerStats:
        backoff = Backoff(self.reconnect_delays)
        while not self._stop.is_set():
            started = time.monotonic()
            link = ParkLink(
                self.profile.amqp_endpoint,
                connect_timeout_s=CONNECT_TIMEOUT_S,
                connection_name=f"PayOps Console parker {parker.dlq}",
            )
            try:
                await link.connect()
                # Cleared once consuming, not once connected: a queue that is missing
                # (404) fails after the connection, and "parking again" would be logged
                # and shown between every two of its reports.
                return await parker.run(
                    link, once=self.once, on_consuming=lambda: self._clear(parker.dlq, "amqp")
                )
            except ParkingFailed:
                raise
            except Exception as exc:
                if self.once or self._stop.is_set():
                    raise
                if time.monotonic() - started >= SESSION_LASTED_S:
                    backoff.reset()
                delay = backoff.next_delay()
                endpoint = self.profile.amqp_endpoint
                why = describe_tls_error(
                    exc, "RabbitMQ", endpoint.tls, node_target(endpoint.url)
                ) or (str(exc) or type(exc).__name__)
                self._report(
                    parker.dlq,
                    "amqp",
                    f"{parker.dlq}: parking stopped ({why}) at {self.profile.amqp_display_url};"
                    f" reconnecting in {delay:g} s",
                )
                await pause(delay, self._stop)
            finally:
                with contextlib.suppress(Exception):
                    await link.close()
        return parker.stats

    def _progress(self, stats: ParkerStats) -> None:
        problem = stats.problem
        if problem is not None:
            self._report(stats.dlq, "redis", problem)
        else:
            self._clear(stats.dlq, "redis")
        if self.on_progress is not None:
            self.on_progress(stats)

    def _report(self, dlq: str, kind: str, text: str) -> None:
        key = f"{dlq}\0{kind}"
        shown = self._problems.get(key)
        if shown is not None and kind == "redis":
            return  # one report per outage; stats keep counting
        if shown is not None and self.on_problem is not None:
            self.on_problem(shown, False)
        self._problems[key] = text
        log.warning("%s", text)
        if self.on_problem is not None and not self._stop.is_set():
            self.on_problem(text, True)

    def _clear(self, dlq: str, kind: str) -> None:
        key = f"{dlq}\0{kind}"
        shown = self._problems.pop(key, None)
        if shown is None:
            return
        what = "RabbitMQ" if kind == "amqp" else "Redis"
        log.warning("%s: parking again (%s is back)", dlq, what)
        if self.on_problem is not None:
            self.on_problem(shown, False)
