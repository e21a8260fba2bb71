"""Queue depths by passive declare, about once a second, into the aggregator."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

import aiormq.exceptions
from aio_pika.abc import AbstractChannel, AbstractConnection

from services.flow.aggregator import FlowAggregator
from services.links.close import close_quietly
from services.problems import ProblemReporter

log = logging.getLogger(__name__)

# A queue that was missing is asked about only every this many rounds: each
# refusal closes the channel, and reopening it every second for nothing is waste.
MISSING_RETRY_ROUNDS = 5


class DepthPoller:
    """Poll ``queues`` with passive declares every ``interval_s`` on a channel of its own.

    A missing queue (404, which closes the channel) or one the broker will not
    show (405: exclusive to another connection, 403) is recorded as depth None,
    reported once through ``on_problem`` (and kept in ``problems``), and through
    ``on_resolved`` when it is back; a missing queue is asked
    about again every ``MISSING_RETRY_ROUNDS`` rounds; the channel is reopened.
    """

    def __init__(
        self,
        queues: Iterable[str],
        aggregator: FlowAggregator,
        interval_s: float = 1.0,
        on_problem: Callable[[str], None] | None = None,
        on_resolved: Callable[[str], None] | None = None,
    ) -> None:
        self._queues = tuple(dict.fromkeys(queues))
        self._aggregator = aggregator
        self._interval = interval_s
        self._reporter = ProblemReporter(on_problem, on_resolved)
        self.problems = self._reporter.problems
        self._missing: dict[str, int] = {}  # queue -> rounds until it is asked again

    async def run(self, connection: AbstractConnection) -> None:
        """Poll until cancelled; raises only when the connection itself fails."""
        if not self._queues:
            return
        channel: AbstractChannel | None = None
        try:
            while True:
                started = time.monotonic()
                for name in self._queues:
                    wait = self._missing.get(name)
                    if wait is not None and wait > 0:
                        self._missing[name] = wait - 1
                        self._aggregator.record_depth(name, None)
                        continue
                    if channel is None or channel.is_closed:
                        channel = await connection.channel(publisher_confirms=False)
                    self._aggregator.record_depth(name, await self._depth(channel, name))
                elapsed = time.monotonic() - started
                await asyncio.sleep(max(0.05, self._interval - elapsed))
        finally:
            await close_quietly(channel)

    async def _depth(self, channel: AbstractChannel, name: str) -> int | None:
        try:
            queue = await channel.declare_queue(name, passive=True)
        except aiormq.exceptions.AMQPChannelError as exc:
            if name not in self._missing:
                reason = exc.args[0] if exc.args else type(exc).__name__
                self._reporter.report(name, f"cannot read the depth of queue '{name}': {reason}")
            self._missing[name] = MISSING_RETRY_ROUNDS - 1
            return None
        if self._missing.pop(name, None) is not None:
            log.info("queue '%s' is back", name)
            self._reporter.resolve(name)
        return queue.declaration_result.message_count
