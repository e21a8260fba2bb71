"""A command whose reply times out is not sent again by the client. redis-py's cluster
client re-sends one by default (the script below ran 9 times without the product's
setting), as does a client made by ``Redis(...)``; one made from a URL does not in
redis-py 8.2, and the standalone case guards that. A script that outlasts the socket
timeout runs once, counted on the server, on a private Redis and on the private Redis
Cluster (the script blocks the server it runs on, so not on the shared one)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.links.endpoints import RedisSettings
from services.links.redis_client import make_redis_client
from tests.helpers.private_servers import PrivateRedis, PrivateRedisCluster

pytestmark = [pytest.mark.integration, pytest.mark.topologies]

# Counts its run, then keeps its server busy for 0.6 s: longer than the client waits.
SLOW_COUNTED = """
redis.call('INCR', KEYS[1])
local t0 = redis.call('TIME')
while true do
  local t = redis.call('TIME')
  if (t[1] - t0[1]) * 1000000 + (t[2] - t0[2]) > 600000 then break end
end
return 1
"""


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.kill()


async def ran_once(client: aioredis.Redis, key: str) -> int:
    """Runs the slow script through ``client`` (its reply times out); how often it ran."""
    with pytest.raises(RedisTimeoutError):
        await client.eval(SLOW_COUNTED, 1, key)
    await asyncio.sleep(1.5)  # anything re-sent would have run by now
    runs = await client.get(key)  # the client answers again, on a new connection
    await client.delete(key)
    return int(runs or 0)


async def test_a_timed_out_script_runs_once_on_a_standalone_redis(
    private_redis: PrivateRedis,
) -> None:
    client = make_redis_client(RedisSettings.standalone(private_redis.url), socket_timeout=0.2)
    try:
        assert await ran_once(client, "runs") == 1
    finally:
        await client.aclose()


async def test_a_timed_out_script_runs_once_on_a_redis_cluster(
    redis_cluster: PrivateRedisCluster, unique_prefix: str
) -> None:
    settings = RedisSettings(redis_cluster.url, mode="cluster")
    client = make_redis_client(settings, socket_timeout=0.2)
    try:
        assert await ran_once(client, f"{unique_prefix}runs") == 1
    finally:
        await client.aclose()
