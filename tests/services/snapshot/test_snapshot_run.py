"""The incident snapshot writer's run against the real Redis: progress, cancellation, an
existing file, streaming in batches, a client it refuses.

The seeding, the bundle reader and the stand-in renderer are in tests/helpers/snapshot_kit.py.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from services.snapshot.job import write_snapshot
from services.snapshot.model import (
    MAX_RANGE_S,
    SnapshotCancelled,
    SnapshotProgress,
    SnapshotRequest,
)
from services.workbench.codec import MessageRecord
from tests.helpers.snapshot_kit import (
    DLQ,
    PAN_JSON,
    Seeded,
    empty_profile,
    park_records,
    profile_for,
    snapshot,
)

pytestmark = pytest.mark.integration


async def test_progress_is_reported_per_batch_and_only_grows(
    redis_client: aioredis.Redis, seeded: Seeded, tmp_path: Path
) -> None:
    profile, scenario = seeded.profile, seeded.scenario
    seen: list[SnapshotProgress] = []
    await snapshot(
        redis_client, profile, scenario, tmp_path / "s.zip", progress=seen.append, batch=2
    )
    stages = list(dict.fromkeys(p.stage for p in seen))
    assert stages == [
        "flow history",
        "alerts",
        "audit trail",
        "failed payments",
        "report",
        "packing",
    ]
    for stage in stages:
        done = [p.done for p in seen if p.stage == stage]
        assert done == sorted(done), stage
        last = [p for p in seen if p.stage == stage][-1]
        assert last.total is not None and last.done == last.total, stage
    entries = [p for p in seen if p.stage == "failed payments"]
    assert len(entries) > len(scenario.included) // 2  # a call per batch of 2
    assert max(b.done - a.done for a, b in itertools.pairwise(entries)) <= 2


async def test_cancelling_leaves_nothing_behind(
    redis_client: aioredis.Redis, seeded: Seeded, tmp_path: Path
) -> None:
    profile, scenario = seeded.profile, seeded.scenario
    for stage in ("flow history", "failed payments", "packing"):
        cancel = threading.Event()

        def progress(
            p: SnapshotProgress, stage: str = stage, cancel: threading.Event = cancel
        ) -> None:
            if p.stage == stage and p.done > 0:
                cancel.set()

        out = tmp_path / "s.zip"
        with pytest.raises(SnapshotCancelled):
            await snapshot(
                redis_client, profile, scenario, out, progress=progress, cancel=cancel, batch=2
            )
        assert list(tmp_path.iterdir()) == [], stage


async def test_task_cancellation_leaves_nothing_behind(
    redis_client: aioredis.Redis, seeded: Seeded, tmp_path: Path
) -> None:
    profile, scenario = seeded.profile, seeded.scenario
    out = tmp_path / "s.zip"
    task: asyncio.Task[Any] | None = None

    def progress(p: SnapshotProgress) -> None:
        if p.stage == "packing" and p.done > 0 and task is not None:
            task.cancel()

    task = asyncio.ensure_future(snapshot(redis_client, profile, scenario, out, progress=progress))
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list(tmp_path.iterdir()) == []


async def test_an_existing_file_is_kept_unless_overwrite(
    redis_client: aioredis.Redis, prefix: str, tmp_path: Path
) -> None:
    profile, from_s = empty_profile(prefix)
    out = tmp_path / "s.zip"
    out.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        await write_snapshot(SnapshotRequest(profile, from_s, from_s + 60, out), redis_client)
    assert out.read_bytes() == b"keep me"
    await write_snapshot(
        SnapshotRequest(profile, from_s, from_s + 60, out, overwrite=True), redis_client
    )
    assert zipfile.is_zipfile(out)
    with pytest.raises(ValueError, match="empty range"):
        await write_snapshot(SnapshotRequest(profile, from_s, from_s, out, True), redis_client)
    with pytest.raises(ValueError, match="at most 7 d"):
        await write_snapshot(
            SnapshotRequest(profile, from_s - MAX_RANGE_S, from_s + 1, out, True), redis_client
        )


# --------------------------------------------------------------------------- streaming


async def test_twenty_thousand_entries_stream_in_batches(
    redis_client: aioredis.Redis, prefix: str, tmp_path: Path
) -> None:
    profile = profile_for(prefix, dead_letter_queues=(DLQ,))
    now = int(time.time())
    from_s, to_s = now - 3600, now
    filler = "x" * 1500
    total = 20_000
    records = (
        MessageRecord(
            body=orjson.dumps(
                {"payment_id": f"pay_{n}", "amount": n, "card": PAN_JSON, "pad": filler}
            ),
            properties={"content_type": "application/json"},
            headers={"x-first-death-reason": "rejected", "x-first-death-queue": "q"},
        )
        for n in range(total)
    )
    await park_records(redis_client, prefix, records, (from_s + 1) * 1000)

    seen: list[SnapshotProgress] = []
    out = tmp_path / "big.zip"
    tracemalloc.start()
    try:
        result = await write_snapshot(
            SnapshotRequest(profile, from_s, to_s, out, batch=500),
            redis_client,
            progress=seen.append,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.counts.failed_payments == total
    entries = [p for p in seen if p.stage == "failed payments"]
    assert entries[0].total == total
    steps = [b.done - a.done for a, b in itertools.pairwise(entries)]
    assert max(steps) <= 500 and len(entries) >= total // 500
    # 20,000 bodies of ~1.6 kB are ~32 MB of JSONL: far more than is ever held at once
    with zipfile.ZipFile(out) as archive:
        jsonl_size = archive.getinfo("failed_payments.jsonl").file_size
        with archive.open("failed_payments.csv") as table:
            assert sum(1 for _ in table) == total + 1
    assert jsonl_size > 30_000_000
    assert peak < jsonl_size / 3, f"peak {peak:,} bytes for {jsonl_size:,} bytes of JSONL"


async def test_a_decoding_client_is_refused_before_anything_is_written(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses=False"):
            await write_snapshot(
                SnapshotRequest(profile_for(prefix), 0, 60, tmp_path / "s.zip"), client
            )
    finally:
        await client.aclose()
    assert list(tmp_path.iterdir()) == []
