"""A snapshot export whose Redis is killed (``kill -9``) while the worker processes read
the failed payments: the export fails with Redis's error and leaves no file; once Redis
is back, the next export holds every parked entry exactly once, masked."""

from __future__ import annotations

import asyncio
import csv
import io
import random
import time
import zipfile
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis
from redis.exceptions import BusyLoadingError, RedisError

from services.links.endpoints import RedisSettings
from services.snapshot.job import write_snapshot
from services.snapshot.model import STAGE_ENTRIES, SnapshotProgress, SnapshotRequest
from services.workbench.codec import MessageRecord
from tests.helpers.private_servers import PrivateRedis, servers_available
from tests.helpers.snapshot_kit import DLQ, PAN_JSON, park_records, profile_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not servers_available(), reason="RabbitMQ and Redis are not installed"),
]

N = 20_000
WORKERS = 2


def _record(n: int) -> MessageRecord:
    return MessageRecord(
        body=orjson.dumps({"payment_id": f"pay_{n:05d}", "card": PAN_JSON, "amount": "12.50"}),
        properties={"content_type": "application/json", "message_id": f"m-{n}"},
        headers={"x-first-death-reason": "rejected", "x-first-death-queue": "payments.work"},
        exchange="payments",
        routing_key="pay.card",
    )


async def _loaded(client: aioredis.Redis) -> None:
    """Wait until a restarted Redis has loaded its append-only file (it answers LOADING)."""
    for _ in range(200):
        try:
            await client.ping()
            return
        except BusyLoadingError:
            await asyncio.sleep(0.05)
    raise AssertionError("Redis did not finish loading in 10 s")


async def test_an_export_whose_redis_dies_fails_cleanly_and_the_next_one_holds_every_entry_once(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    prefix = "fault"
    now = int(time.time())
    client = aioredis.Redis.from_url(private_redis.url, socket_timeout=5)
    first_ms = (now - 3000) * 1000  # N entries 50 ms apart: all inside the last hour
    ids = await park_records(client, prefix, map(_record, range(N)), first_ms, step_ms=50)
    profile = profile_for(prefix, dead_letter_queues=(DLQ,))
    workers_redis = RedisSettings.standalone(private_redis.url)
    kill_at = random.Random().randrange(N // 10, N * 3 // 4)
    killed_at: list[int] = []

    def kill_on_the_way(step: SnapshotProgress) -> None:
        if step.stage == STAGE_ENTRIES and step.done >= kill_at and not killed_at:
            killed_at.append(step.done)
            private_redis.kill()

    out = tmp_path / "incident.zip"
    request = SnapshotRequest(profile, now - 3600, now, out)
    with pytest.raises(RedisError):
        await write_snapshot(
            request,
            client,
            progress=kill_on_the_way,
            workers=WORKERS,
            worker_redis=workers_redis,
        )
    assert killed_at, f"the export never reached {kill_at} entries"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["redis"], "a file was left behind"

    private_redis.start()  # from its append-only file
    await client.aclose()
    client = aioredis.Redis.from_url(private_redis.url, socket_timeout=5)
    await _loaded(client)
    try:
        result = await write_snapshot(request, client, workers=WORKERS, worker_redis=workers_redis)
    finally:
        await client.aclose()
    assert result.counts.failed_payments == N
    with zipfile.ZipFile(out) as bundle:
        rows = list(csv.DictReader(io.StringIO(bundle.read("failed_payments.csv").decode())))
        lines = bundle.read("failed_payments.jsonl").splitlines()
        texts = [bundle.read(name) for name in bundle.namelist()]
    written = [row["entry_id"] for row in rows]
    assert len(written) == len(set(written)) == N and set(written) == set(ids)
    payments = sorted(orjson.loads(line)["body"]["content"]["payment_id"] for line in lines)
    assert payments == [f"pay_{n:05d}" for n in range(N)]
    assert not any(PAN_JSON.encode() in text for text in texts)
