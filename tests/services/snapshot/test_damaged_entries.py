"""Damaged entries among good ones in a real Redis: a summary with numbers, lists and
objects where text belongs (a card number stored as a number among them), an exchange and a
routing key that are not UTF-8. The export writes every entry once, marked
(``<number ...>``, ``\\xNN``), and no card number in any file, in this process and in
worker processes.
"""

from __future__ import annotations

import re
import time
import zipfile
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from services.snapshot.job import write_snapshot
from services.snapshot.model import SnapshotRequest
from services.workbench.codec import MessageRecord
from services.workbench.store import ParkingStore
from tests.helpers.snapshot_kit import (
    DLQ,
    PAN_JSON,
    PAN_TEXT,
    PANS,
    WORKER_REDIS,
    park_records,
    profile_for,
)

pytestmark = pytest.mark.integration

GOOD = 5


def _record(n: int, *, exchange: str = "payments", routing_key: str = "pay.card") -> MessageRecord:
    return MessageRecord(
        body=orjson.dumps({"payment_id": f"pay_{n}", "card": PAN_JSON}),
        properties={"content_type": "application/json", "message_id": f"m-{n}"},
        headers={"x-first-death-reason": "rejected", "x-first-death-queue": "q"},
        exchange=exchange,
        routing_key=routing_key,
    )


def _damaged_summary(n: int) -> bytes:
    """A stored summary with what is not text where text belongs."""
    return orjson.dumps(
        [
            1,
            1_715_947_200_000,
            int(PAN_JSON),  # payment id: a card number stored as a number
            int(PAN_TEXT),  # merchant: another
            12.5,  # amount
            "12.5",  # amount_value: text where a number belongs
            ["EUR"],  # currency
            {"code": n},  # reason
            7,  # origin queue
            True,  # routing key
            1,
            ["json"],  # body kind
            10,
            int(PAN_JSON),  # message id
        ]
    )


@pytest.mark.parametrize("workers", [0, 2])
async def test_damaged_entries_are_written_once_marked_and_masked(
    redis_client: aioredis.Redis, prefix: str, tmp_path: Path, workers: int
) -> None:
    profile = profile_for(prefix, dead_letter_queues=(DLQ,))
    now = int(time.time())
    from_s, to_s = now - 3600, now
    records = [_record(n) for n in range(GOOD)]
    # not UTF-8: the exchange and routing key as the broker gave them (surrogate escapes)
    bad_bytes = f"ex\xff{PAN_TEXT}".encode("latin-1").decode("utf-8", "surrogateescape")
    records.append(_record(GOOD, exchange=bad_bytes, routing_key="rk.\udcfe"))
    records.append(_record(GOOD + 1))
    records.append(_record(GOOD + 2, exchange="\udc80"))
    ids = await park_records(redis_client, prefix, records, (from_s + 1) * 1000)
    store = ParkingStore(redis_client, prefix)
    for n in (GOOD + 1, GOOD + 2):
        await redis_client.hset(store.entry_key(DLQ, ids[n]), "summary", _damaged_summary(n))

    out = tmp_path / "damaged.zip"
    result = await write_snapshot(
        SnapshotRequest(profile, from_s, to_s, out, batch=3),
        redis_client,
        workers=workers,
        worker_redis=WORKER_REDIS,
    )

    assert result.counts.failed_payments == len(records)
    with zipfile.ZipFile(out) as archive:
        texts = {name: archive.read(name) for name in archive.namelist()}
    lines = texts["failed_payments.jsonl"].splitlines()
    documents = {orjson.loads(line)["entry_id"]: orjson.loads(line) for line in lines}
    assert len(lines) == len(records) and sorted(documents) == sorted(ids)
    csv_rows = texts["failed_payments.csv"].decode("utf-8").splitlines()[1:]
    assert sorted(row.split(",")[0] for row in csv_rows) == sorted(ids)
    for name, data in texts.items():
        if name.endswith(".png"):
            continue
        plain = re.sub(rb"[ -]", b"", data)
        for secret in PANS:
            assert secret.replace(" ", "").encode() not in plain, f"{secret!r} in {name}"

    odd = documents[ids[GOOD]]
    assert odd["exchange"] == "ex\\xff510510******5100"
    assert odd["delivered_routing_key"] == "rk.\\xfe"
    assert documents[ids[GOOD + 2]]["exchange"] == "\\x80"
    damaged = documents[ids[GOOD + 1]]
    assert damaged["payment_id"] == "<number 411111******1111>"
    assert damaged["merchant"] == "<number 510510******5100>"
    assert damaged["message_id"] == "<number 411111******1111>"
    assert damaged["amount"] == "<number 12.5>"
    assert damaged["currency"] == '<array ["EUR"]>'
    assert damaged["reason"] == '<object {"code":6}>'
    assert damaged["origin_queue"] == "<number 7>"
    assert damaged["routing_key"] == "<boolean true>"
    report = texts["report.md"].decode("utf-8") if "report.md" in texts else ""
    assert "<number 510510******5100>" in report or "report.md" not in texts


@pytest.mark.parametrize("workers", [0, 2])
async def test_entries_that_cannot_be_decoded_are_written_with_a_note(
    redis_client: aioredis.Redis, prefix: str, tmp_path: Path, workers: int
) -> None:
    # A record field that is not what was stored (properties not JSON, a header's tagged
    # time holding a card number, the body gone) stopped the whole export; now each such
    # entry is written once, with why its message is left out, and the others in full.
    profile = profile_for(prefix, dead_letter_queues=(DLQ,))
    now = int(time.time())
    from_s, to_s = now - 3600, now
    records = [_record(n) for n in range(GOOD)]
    ids = await park_records(redis_client, prefix, records, (from_s + 1) * 1000)
    store = ParkingStore(redis_client, prefix)
    await redis_client.hset(store.entry_key(DLQ, ids[1]), "props", b"{not json")
    await redis_client.hset(
        store.entry_key(DLQ, ids[2]), "headers", orjson.dumps({"x-when": ["T", PAN_TEXT]})
    )
    await redis_client.hdel(store.entry_key(DLQ, ids[3]), "body")

    out = tmp_path / "undecodable.zip"
    result = await write_snapshot(
        SnapshotRequest(profile, from_s, to_s, out, batch=2),
        redis_client,
        workers=workers,
        worker_redis=WORKER_REDIS,
    )

    assert result.counts.failed_payments == GOOD
    with zipfile.ZipFile(out) as archive:
        texts = {name: archive.read(name) for name in archive.namelist()}
    documents = [orjson.loads(line) for line in texts["failed_payments.jsonl"].splitlines()]
    assert sorted(d["entry_id"] for d in documents) == sorted(ids)
    by_id = {d["entry_id"]: d for d in documents}
    for n in (1, 2, 3):
        damaged = by_id[ids[n]]
        assert damaged["last_error"].startswith("the stored entry could not be read"), damaged
        assert damaged["body"] == {"kind": "empty", "size": 0}
        assert damaged["payment_id"] == f"pay_{n}"  # the row as far as the hash gives it
    assert "fields missing: body" in by_id[ids[3]]["last_error"]
    for n in (0, 4):
        assert by_id[ids[n]]["last_error"] is None
        assert by_id[ids[n]]["body"]["kind"] == "json"
    csv_text = texts["failed_payments.csv"].decode("utf-8")
    assert csv_text.count("the stored entry could not be read") == 3
    for name, data in texts.items():
        if name.endswith(".png"):
            continue
        plain = re.sub(rb"[ -]", b"", data)
        for secret in PANS:
            assert secret.replace(" ", "").encode() not in plain, f"{secret!r} in {name}"
