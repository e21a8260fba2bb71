"""The export's worker processes start in a thread of their own (the first waits for the
fork server's imports), not on the event loop: until they are up the writer says to do
the work here; closed while they start, they are stopped once up. Each worker reads its
batch's entries from Redis itself."""

from __future__ import annotations

import asyncio
import os

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from services.links.endpoints import RedisSettings
from services.snapshot.entries import WORKER_NICENESS, EntrySource, EntryWriter
from services.workbench.model import MessageRecord
from services.workbench.store import ParkingStore
from tests.helpers.snapshot_kit import DLQ, park_records

pytestmark = pytest.mark.integration

RECORD = MessageRecord(
    body=b'{"payment_id": "pay_1"}',
    properties={"content_type": "application/json"},
    headers={},
    exchange="payments",
    routing_key="pay.card",
)


async def test_work_goes_to_the_workers_once_they_are_up(
    redis_client: aioredis.Redis, redis_url: str, prefix: str
) -> None:
    (entry_id,) = await park_records(redis_client, prefix, [RECORD], 1_000)
    source = EntrySource(RedisSettings.standalone(redis_url), prefix)
    store = ParkingStore(redis_client, prefix)
    writer = EntryWriter(0, 2_000, None, reader=store, source=source, workers=2)
    try:
        await writer.started()
        pid = writer.elsewhere(os.getpid)
        assert pid is not None and await pid != os.getpid()
        # the workers give way to the exporting process (the console's GUI loop)
        niceness = writer.elsewhere(os.nice, 0)
        assert niceness is not None
        assert await niceness == min(19, os.nice(0) + WORKER_NICENESS)
        # submit gives the lines of batches already finished (this one, if the worker
        # was quick), drain those still under way: one or the other has it. An id with
        # no entry (deleted since the index was read) is left out.
        batch = [entry_id, "00000000000000000000"]
        (lines,) = [*await writer.submit(DLQ, batch), *await writer.drain()]
        assert [s.entry_id for s in lines.summaries] == [entry_id]
        assert lines.in_range == [True] and b"pay_1" in lines.jsonl
    finally:
        writer.close()
    assert writer.elsewhere(os.getpid) is None  # closed: nothing goes anywhere


async def test_a_worker_that_cannot_reach_redis_fails_the_batch(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    nowhere = EntrySource(RedisSettings.standalone("redis://127.0.0.1:1/15"), prefix)
    writer = EntryWriter(
        0, 2_000, None, reader=ParkingStore(redis_client, prefix), source=nowhere, workers=1
    )
    try:
        with pytest.raises(RedisConnectionError, match=r"127\.0\.0\.1:1\b"):
            await writer.submit(DLQ, ["00000000000000000000"])
            await writer.drain()
    finally:
        writer.close()


async def test_closed_while_the_workers_start_they_are_stopped(
    redis_client: aioredis.Redis, redis_url: str, prefix: str
) -> None:
    source = EntrySource(RedisSettings.standalone(redis_url), prefix)
    store = ParkingStore(redis_client, prefix)
    writer = EntryWriter(0, 1, None, reader=store, source=source, workers=2)
    writer.close()  # at once: the start thread is still starting them
    await asyncio.wait_for(writer.started(), 60)  # the thread ends, having stopped them
    assert writer.elsewhere(os.getpid) is None


async def test_without_workers_everything_is_done_here(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    (entry_id,) = await park_records(redis_client, prefix, [RECORD], 1_000)
    writer = EntryWriter(0, 1, None, reader=ParkingStore(redis_client, prefix), workers=0)
    await writer.started()
    assert writer.elsewhere(os.getpid) is None
    (lines,) = await writer.submit(DLQ, [entry_id])
    assert [s.entry_id for s in lines.summaries] == [entry_id] and lines.in_range == [False]


def test_workers_without_a_redis_to_read_from_are_refused(redis_client: aioredis.Redis) -> None:
    with pytest.raises(ValueError, match="need the Redis"):
        EntryWriter(0, 1, None, reader=ParkingStore(redis_client, "p"), workers=2)
