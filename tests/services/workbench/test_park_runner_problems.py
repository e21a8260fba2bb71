"""What the parking runner says while a dead-letter queue it should park does not exist:
one problem, kept until RabbitMQ accepts the consumer - not "parking again" between every
two reports because the connection itself came up (seen in the console's status bar and
log under Xvfb, a profile naming a queue nobody had declared)."""

from __future__ import annotations

import asyncio
import logging
import uuid

import aio_pika
import pytest

from services.workbench.park_runner import ParkingRunner
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import make_profile
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.integration


def _parking_again(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "parking again" in r.getMessage()]


async def test_a_missing_queue_is_one_problem_until_it_exists_and_is_consumed(
    store: ParkingStore, amqp_url: str, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # whatever an earlier test left the root logger at (a Celery worker sets ERROR)
    caplog.set_level(logging.WARNING, logger="services.workbench.park_runner")
    dlq = f"test.missing.{uuid.uuid4().hex[:8]}"
    profile = make_profile(amqp_url, redis_url, store.prefix, [dlq])
    problems: list[tuple[str, bool]] = []
    runner = ParkingRunner(
        profile,
        store,
        [dlq],
        on_problem=lambda text, active: problems.append((text, active)),
        reconnect_delays=(0.05,),
    )
    running = asyncio.ensure_future(runner.run())
    connection = await aio_pika.connect(amqp_url)
    try:
        # several attempts, each connecting and failing on the queue (404)
        await eventually(lambda: len(problems) >= 4, 20, "four reports of the missing queue")
        assert "NOT_FOUND" in problems[0][0] and dlq in problems[0][0]
        assert problems[-1][1], "the problem is shown"
        assert not _parking_again(caplog), "the queue is still missing"

        channel = await connection.channel()
        await channel.declare_queue(dlq, durable=True)
        await eventually(lambda: not problems[-1][1], 20, "the problem cleared once consuming")
        assert _parking_again(caplog) == [f"{dlq}: parking again (RabbitMQ is back)"]
    finally:
        runner.request_stop()
        await asyncio.wait_for(running, 20)
        channel = await connection.channel()
        await channel.queue_delete(dlq)
        await connection.close()
