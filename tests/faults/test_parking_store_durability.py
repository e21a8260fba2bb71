"""Parking refuses a Redis that can lose what it parks, against private Redis servers
configured each way (the shared one is never reconfigured)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from services.config import FieldPaths
from services.workbench.codec import MessageRecord
from services.workbench.durability import VolatileStore, check_parking_store
from services.workbench.store import ParkingStore, ParkItem
from tests.helpers.private_servers import PrivateRedis, servers_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not servers_available(), reason="RabbitMQ and Redis are not installed"),
]

AOF = ("--appendonly", "yes", "--appendfsync", "everysec")
EVICTING = ("--maxmemory", "3mb", "--maxmemory-policy", "allkeys-lru")


def dead_letter_record(body: bytes) -> MessageRecord:
    return MessageRecord(body, {"message_id": body[-8:].decode(errors="replace")})


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[object]:
    servers: list[PrivateRedis] = []

    def start(*settings: str) -> PrivateRedis:
        server = PrivateRedis(tmp_path / f"redis{len(servers)}", *settings)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.kill()


@pytest.fixture
async def clients() -> AsyncIterator[list[aioredis.Redis]]:
    opened: list[aioredis.Redis] = []
    yield opened
    for client in opened:
        await client.aclose()


def connect(server: PrivateRedis, opened: list[aioredis.Redis], **kwargs: object) -> aioredis.Redis:
    client = aioredis.Redis.from_url(server.url, **kwargs)  # type: ignore[arg-type]
    opened.append(client)
    return client


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ((), "keeps nothing on disk"),
        ((*AOF, *EVICTING), "maxmemory-policy allkeys-lru"),
    ],
    ids=["no-persistence", "evicting"],
)
async def test_a_store_that_can_lose_parked_messages_is_refused_unless_allowed(
    start_redis: object, clients: list[aioredis.Redis], settings: tuple[str, ...], reason: str
) -> None:
    server = start_redis(*settings)  # type: ignore[operator]
    redis = connect(server, clients)
    with pytest.raises(VolatileStore) as refused:
        await check_parking_store(redis, allow_volatile=False)
    assert "parking refused" in str(refused.value) and reason in str(refused.value)
    assert "allow_volatile_store = true" in str(refused.value)
    allowed = await check_parking_store(redis, allow_volatile=True)
    assert allowed.volatile and reason in allowed.detail  # still said, for the banner


@pytest.mark.parametrize(
    "settings",
    [AOF, ("--save", "60 1"), (*AOF, "--maxmemory", "3mb", "--maxmemory-policy", "volatile-lru")],
    ids=["aof", "rdb", "aof-volatile-lru"],
)
async def test_a_store_that_keeps_parked_messages_is_accepted(
    start_redis: object, clients: list[aioredis.Redis], settings: tuple[str, ...]
) -> None:
    server = start_redis(*settings)  # type: ignore[operator]
    durability = await check_parking_store(connect(server, clients), allow_volatile=False)
    assert not durability.volatile


async def test_an_evicting_redis_loses_what_was_parked_which_is_why_it_is_refused(
    start_redis: object, clients: list[aioredis.Redis]
) -> None:
    server = start_redis(*EVICTING)  # type: ignore[operator]
    store = ParkingStore(connect(server, clients), "evict")
    body = b"x" * 2000
    items = [ParkItem(dead_letter_record(body + str(i).encode())) for i in range(3000)]
    ids: list[str] = []
    for start in range(0, len(items), 500):
        results = await store.park_many("dlq", items[start : start + 500], FieldPaths())
        ids += [result.entry_id for result in results]
    assert len(ids) == 3000  # every write was accepted: a parker would have acked them all
    kept = [entry for entry in await store.get_many("dlq", ids) if entry is not None]
    assert len(kept) < 3000  # and Redis evicted entries: lost without a trace


async def test_config_get_refused_by_the_acl_means_unknown_and_refused_unless_allowed(
    start_redis: object, clients: list[aioredis.Redis]
) -> None:
    server = start_redis(*AOF)  # type: ignore[operator]
    admin = connect(server, clients)
    await admin.execute_command("ACL", "SETUSER", "parker", "on", ">pw", "~*", "+@all", "-config")
    limited = aioredis.Redis(host="127.0.0.1", port=server.port, username="parker", password="pw")
    clients.append(limited)
    with pytest.raises(VolatileStore) as refused:
        await check_parking_store(limited, allow_volatile=False)
    assert "CONFIG GET was refused" in str(refused.value)
    assert (await check_parking_store(limited, allow_volatile=True)).durable is None


async def test_park_ack_after_aof_needs_redis_7_2_and_replica_needs_a_replica(
    start_redis: object, clients: list[aioredis.Redis]
) -> None:
    primary = start_redis(*AOF)  # type: ignore[operator]
    redis = connect(primary, clients)
    version = (await redis.info("server"))["redis_version"]
    if tuple(int(p) for p in str(version).split(".")[:2]) < (7, 2):
        with pytest.raises(VolatileStore, match=r"needs WAITAOF \(Redis 7.2 or later\)"):
            await check_parking_store(redis, allow_volatile=False, ack_after="aof")
    else:
        await check_parking_store(redis, allow_volatile=False, ack_after="aof")
    with pytest.raises(VolatileStore, match="needs a connected replica"):
        await check_parking_store(redis, allow_volatile=False, ack_after="replica")

    start_redis(*AOF, "--replicaof", "127.0.0.1", str(primary.port))  # type: ignore[operator]
    deadline = time.monotonic() + 30
    while int((await redis.info("replication")).get("connected_slaves", 0)) < 1:
        assert time.monotonic() < deadline, "the replica never connected"
        await asyncio.sleep(0.05)
    await check_parking_store(redis, allow_volatile=False, ack_after="replica")
    store = ParkingStore(redis, "wait")
    results = await store.park_many(
        "dlq", [ParkItem(dead_letter_record(b"1"))], FieldPaths(), ack_after="replica"
    )
    assert results[0].created
