"""A bulk ``payops dlq requeue`` (a real subprocess) while RabbitMQ or Redis restarts under
it: every payment ends exactly once in its origin queue, none lost, none twice (see
:mod:`tests.faults.requeue_kit` for what is checked when).

The broker restarts need a private RabbitMQ node (slow: ``make faults``); the Redis
restart runs on a private Redis beside the shared broker, in the default run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.cli import exit_codes
from tests.helpers.private_servers import PrivateRabbit, PrivateRedis, servers_available
from tests.helpers.requeue_kit import RequeueScenario

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not servers_available(), reason="RabbitMQ and Redis are not installed"),
]


@pytest.fixture
async def private_rabbit(tmp_path: Path) -> AsyncIterator[PrivateRabbit]:
    node = PrivateRabbit(tmp_path / "rabbit")
    await asyncio.to_thread(node.start)
    yield node
    await asyncio.to_thread(node.kill)


@pytest.mark.faults
@pytest.mark.parametrize("how", ["kill-9", "stop"])
async def test_the_broker_restarted_mid_requeue_loses_and_duplicates_nothing(
    private_rabbit: PrivateRabbit, private_redis: PrivateRedis, tmp_path: Path, how: str
) -> None:
    scenario = RequeueScenario(
        private_rabbit.url, private_redis.url, "payments.", "faults", tmp_path, n=3000
    )
    await scenario.park_dead_letters()

    async def restart() -> None:
        await asyncio.to_thread(private_rabbit.kill if how == "kill-9" else private_rabbit.stop)
        await asyncio.to_thread(private_rabbit.start)

    code, out, err = await scenario.requeue_through(restart)
    # one summary line per kind of outcome, not per entry (an entry id in a detail split them)
    assert len(out.splitlines()) <= 8, out
    assert code in (exit_codes.OK, exit_codes.FAILED, exit_codes.UNAVAILABLE), scenario.log
    assert "Traceback" not in err, err
    if code == exit_codes.FAILED:  # cut off: it says what it left and how to settle it
        assert "in doubt" in err or "not attempted" in err or "unsettled" in err, err
    delivered = await scenario.check_after_fault()
    await scenario.settle_and_finish(delivered)


async def test_redis_restarted_mid_requeue_loses_and_duplicates_nothing(
    amqp_url: str, unique_prefix: str, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    scenario = RequeueScenario(
        amqp_url, private_redis.url, unique_prefix, "faults", tmp_path, n=3000
    )
    try:
        await scenario.park_dead_letters()

        async def restart() -> None:
            await asyncio.to_thread(private_redis.kill)
            await asyncio.to_thread(private_redis.start)

        code, out, err = await scenario.requeue_through(restart)
        assert len(out.splitlines()) <= 8, out
        assert "Traceback" not in err, err
        if code != exit_codes.OK:  # cut off: it says that Redis failed, and what to do
            assert code == exit_codes.FAILED, (scenario.log, err)
            assert "Redis failed during the action" in err and "payops dlq recover" in err, err
            assert "stay parked" not in err.split("not attempted")[0], err
        delivered = await scenario.check_after_fault()
        await scenario.settle_and_finish(delivered)
    finally:
        await scenario.delete_queues()
