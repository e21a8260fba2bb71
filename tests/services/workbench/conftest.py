"""Fixtures of the workbench tests: a broker sandbox and a parking store under the test's prefix."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import pytest
import redis.asyncio as aioredis

from services.workbench.store import ParkingStore
from tests.helpers.action_kit import Broker
from tests.helpers.private_servers import PrivateRedis


@pytest.fixture
async def broker(amqp_url: str, unique_prefix: str) -> AsyncIterator[Broker]:
    """Queues and exchanges named with the test's prefix, deleted afterwards."""
    connection = await aio_pika.connect(amqp_url)
    state = Broker(connection, unique_prefix, amqp_url)
    await state.open()
    yield state
    await state.cleanup()
    await connection.close()


@pytest.fixture
def store(redis_client: aioredis.Redis, prefix: str) -> ParkingStore:
    """A parking store under the test's prefix (``redis_client`` deletes its keys)."""
    return ParkingStore(redis_client, prefix)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A Redis server of the test's own, for what would disturb the shared one on 6379
    (``SCRIPT FLUSH`` is server-wide)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.kill()
