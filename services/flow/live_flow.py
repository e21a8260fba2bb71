"""The live flow: the tap and the depth poller on one self-healing AMQP link, plus Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from services.alerts.model import Alert, AlertEvent
from services.config import Profile
from services.flow.mirror import FlowMirror, TapView
from services.flow.process import FlowProcess
from services.flow.protocol import HISTORY_CAPACITY_S, ChildConfig
from services.flow.recorder import RecorderState
from services.links.backoff import DEFAULT_BACKOFF_S
from services.links.redis import RedisLink
from services.links.status import LinkStatus
from services.stopping import stop_tasks


class LiveFlow:
    """Everything behind the live dashboard, started and stopped as one.

    The AMQP side (link, tap, depth poller and their ``FlowAggregator``) runs
    in a child process (``services.flow.process``), so per-message work never
    contends for this process's GIL and never waits behind the GUI loop.
    ``aggregator`` is this side's mirror of the child's aggregator (``frame``,
    ``headline``, ``totals_by_status``, ``version``), updated up to 15 times a
    second; ``tap`` shows the child's tap (``bound``/``ready`` events, counters).
    Redis stays on the caller's loop, where the workbench uses its client.

    ``on_status`` receives the LinkStatus of both services (``service`` tells
    them apart); ``on_problem`` receives tap and depth-poll problems (a missing
    exchange or queue) and ``on_resolved`` the same text when one clears. All
    callbacks are called on the caller's loop (the one ``start`` runs on).
    ``hold_consume`` holds the tap's consumer back until ``release_consume()``
    (benchmarks fill the tap queue first).

    The child also evaluates the profile's alert rules once a second
    (``on_alerts(active, events)``; the latest active list in ``alerts``) and
    records the flow history and alert log in Redis while it holds the history
    lease (``on_recorder(state)``; the latest in ``recorder``; see
    ``services.flow.recorder``). ``record=False`` turns recording off.
    """

    def __init__(
        self,
        profile: Profile,
        on_status: Callable[[LinkStatus], None],
        on_problem: Callable[[str], None] | None = None,
        on_resolved: Callable[[str], None] | None = None,
        *,
        hold_consume: bool = False,
        capacity_s: int = HISTORY_CAPACITY_S,
        amqp_backoff: Sequence[float] = DEFAULT_BACKOFF_S,
        on_alerts: Callable[[list[Alert], list[AlertEvent]], None] | None = None,
        on_recorder: Callable[[RecorderState], None] | None = None,
        record: bool = True,
    ) -> None:
        self.profile = profile
        self.process = FlowProcess(
            ChildConfig(
                profile,
                capacity_s=capacity_s,
                hold_consume=hold_consume,
                backoff=tuple(amqp_backoff),
                record=record,
            ),
            on_status,
            on_problem,
            on_resolved,
            on_alerts=on_alerts,
            on_recorder=on_recorder,
        )
        self.redis = RedisLink(profile.redis_settings, on_status)
        self._redis_task: asyncio.Task[None] | None = None
        self._started = False

    @property
    def aggregator(self) -> FlowMirror:
        """The parent-side mirror of the child's aggregator."""
        return self.process.mirror

    @property
    def tap(self) -> TapView:
        """The child's tap as this side sees it."""
        return self.process.tap

    @property
    def alerts(self) -> list[Alert]:
        """The active alerts, as of the child's last evaluation."""
        return self.process.alerts

    @property
    def recorder(self) -> RecorderState | None:
        """The recorder's latest state (None before the first report, or when not recording)."""
        return self.process.recorder

    def release_consume(self) -> None:
        """Let the tap consume (after ``hold_consume``)."""
        self.process.release_consume()

    async def start(self) -> None:
        """Start connecting (in the background); returns at once."""
        if self._started:
            return
        self._started = True
        self._redis_task = asyncio.create_task(self.redis.run(), name="payops-redis-link")
        self.process.start()

    async def stop(self) -> None:
        """Stop everything and close both connections; safe to call twice."""
        self._started = False
        await self.process.stop()
        redis_task, self._redis_task = self._redis_task, None
        await self.redis.close()
        if redis_task is not None:
            await stop_tasks([redis_task], "the Redis link")
