"""The demo flow's test kit: the real RabbitMQ under a unique prefix per test, and the
real Redis for the workers' record of captured payments."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import orjson
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from services.demo.simulator import SimulationOptions, SimulationStats, run_simulation
from services.demo.topology import (
    DEFAULT_FRAUDCHECK_TTL_MS,
    DemoTopology,
    declare_demo_topology,
    delete_demo_topology,
)

CAUSES = {
    "acquirer timeout": r"acquirer timeout after \d{4} ms on acq-\d",
    "schema validation failed": (
        r"schema validation failed: (amount \d+\.\d{3} has more than 2 decimals"
        r"|body is not a JSON payment)"
    ),
    "risk engine unavailable": r"risk engine unavailable: HTTP 503 from risk-\d after \d{3,4} ms",
    "acquirer outage": r"acquirer outage: acq-\d refused the connection \(10\.20\.0\.\d+:8443\)",
    "settlement retries exhausted": (
        r"settlement retries exhausted after 4 attempts, last on acq-\d"
    ),
}
"""Every failure cause the simulator writes, by kind."""


def cause_kind(reason: str) -> str:
    """The kind of a failure cause; fails the test for a cause of no known kind."""
    kinds = [kind for kind, pattern in CAUSES.items() if re.fullmatch(pattern, reason)]
    assert len(kinds) == 1, reason
    return kinds[0]


def cause_group(reason: str) -> str:
    """A cause with its numbers blanked: causes that differ only in numbers and ids agree."""
    return re.sub(r"\d+", "#", reason)


class Broker:
    """A connection for the test's own look at the queues, and the cleanup."""

    def __init__(self, amqp_url: str, connection: AbstractConnection, prefix: str) -> None:
        self.url = amqp_url
        self.connection = connection
        self.prefix = prefix
        self.topology = DemoTopology.for_prefix(prefix)
        self.extra_queues: list[str] = []

    async def channel(self) -> AbstractChannel:
        return await self.connection.channel()

    async def declare(self, **kwargs: Any) -> DemoTopology:
        channel = await self.channel()
        topology = await declare_demo_topology(channel, self.prefix, **kwargs)
        await channel.close()
        return topology

    async def tap_events(self, fraudcheck_ttl_ms: int = DEFAULT_FRAUDCHECK_TTL_MS) -> str:
        """A queue of our own bound to the events exchange with '#' (as the console does)."""
        await self.declare(fraudcheck_ttl_ms=fraudcheck_ttl_ms)
        channel = await self.channel()
        name = f"{self.prefix}test.events"
        queue = await channel.declare_queue(name, durable=False)
        await queue.bind(self.topology.events_exchange, "#")
        self.extra_queues.append(name)
        await channel.close()
        return name

    async def depth(self, queue: str) -> int:
        channel = await self.channel()
        declared = await channel.declare_queue(queue, passive=True)
        await channel.close()
        return declared.declaration_result.message_count or 0

    async def take_all(self, queue: str, expected: int, timeout: float = 10.0) -> list[Any]:
        """Wait until ``queue`` holds ``expected`` messages (dead-lettering is asynchronous),
        then take them all (and make sure no more arrive)."""
        deadline = time.monotonic() + timeout
        while await self.depth(queue) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        channel = await self.channel()
        declared = await channel.get_queue(queue)
        messages: list[AbstractIncomingMessage] = []
        while (message := await declared.get(no_ack=True, fail=False)) is not None:
            messages.append(message)
        await channel.close()
        return messages


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[Broker]:
    connection = await aio_pika.connect(amqp_url)
    prefix = f"t{uuid.uuid4().hex[:8]}."
    try:
        yield (helper := Broker(amqp_url, connection, prefix))
    finally:
        channel = await connection.channel()
        for name in helper.extra_queues:
            await channel.queue_delete(name)
        await delete_demo_topology(channel, prefix)
        await connection.close()


Simulate = Callable[..., Awaitable[SimulationStats]]


@pytest.fixture
def simulate(amqp_url: str, redis_client: aioredis.Redis, prefix: str) -> Simulate:
    """``run_simulation`` with the workers' capture record in the real Redis under the
    test's key prefix (``ledger`` names a record of its own; the same name shares it)."""

    async def run(
        options: SimulationOptions, ledger: str = "demo", **kwargs: Any
    ) -> SimulationStats:
        return await run_simulation(
            amqp_url, options, redis=redis_client, redis_prefix=f"{prefix}:{ledger}", **kwargs
        )

    return run


def events_by_status(messages: list[AbstractIncomingMessage]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        event = orjson.loads(message.body)
        assert message.routing_key == f"payment.{event['status']}"
        grouped.setdefault(event["status"], []).append(event)
    return grouped


def recovered(message: AbstractIncomingMessage) -> bool:
    """Whether a dead letter was put into the DLQ by the Spring-style recoverer (its
    ``x-exception-message``, no ``x-death``), not dead-lettered by the broker."""
    return "x-exception-message" in (message.headers or {})


def counts(grouped: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    return {status: len(events) for status, events in grouped.items()}


def x_death(message: AbstractIncomingMessage) -> dict[str, Any]:
    """The latest ``x-death`` entry of a dead letter the broker dead-lettered."""
    deaths = message.headers["x-death"]
    assert isinstance(deaths, list)
    assert deaths
    first = deaths[0]
    assert isinstance(first, dict)
    return first
