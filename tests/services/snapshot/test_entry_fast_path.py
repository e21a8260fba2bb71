"""The export's fast path per entry gives what the general one gives: ``decode_record`` of a
hash as HGETALL gives it (its fields looked up) against the same hash with text keys (every
name decoded), and ``entry_row_and_document`` (the texts masked once) against ``entry_row``
and ``entry_document``, and the hashes packed by a script as the export reads them against
HGETALL's, on varied stored entries: binary, text, empty and huge bodies,
header values that are not text, x-death in every shape, damaged summaries (numbers, lists
and objects where text belongs), an exchange and a routing key that are not UTF-8,
operators' fields and outcomes; neither path lets a card number through.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import io

import orjson
import pytest
import redis.asyncio as aioredis

from services.masking.json import id_tree
from services.snapshot.documents import (
    dumps_line,
    entry_document,
    entry_row,
    entry_row_and_document,
)
from services.snapshot.entries import hash_lines
from services.workbench.codec import MessageRecord, decode_record, encode_properties
from services.workbench.store import ParkingStore, ParkItem, new_entry_id
from services.workbench.store_reading import entry_from_hash
from tests.helpers.snapshot_kit import (
    DLQ,
    FIELDS,
    PAN_BINARY,
    PAN_ERROR,
    PAN_HEADER,
    PAN_JSON,
    PAN_TEXT,
    dead_letter,
)

pytestmark = pytest.mark.integration

AT_MS = 1_715_947_200_000
WHEN = datetime.datetime.fromtimestamp(AT_MS / 1000, tz=datetime.UTC)


def _odd_headers() -> dict[str, object]:
    return {
        "x-raw": b"\xff\xfe card " + PAN_HEADER.encode(),  # a long string, not UTF-8
        "x-bytes": bytearray(b"\x00\x01\x02"),
        "x-decimal": decimal.Decimal("1.50"),
        "x-big": 2**70,
        "x-nan": float("nan"),
        "x-float": 2.5,
        "x-naive": datetime.datetime(2024, 5, 17, 12, 0, 0),  # naive, as a header may hold
        "x-nested": {"card": [1, PAN_HEADER, {"cvv": "123"}], "flag": True, "none": None},
        "x-card": f"card {PAN_HEADER}",
    }


def _records() -> list[MessageRecord]:
    plain = dead_letter(1, AT_MS)
    huge = orjson.dumps(
        {"payment_id": "pay_huge", "rows": [{"n": i, "pan": PAN_JSON} for i in range(40_000)]}
    )
    wire_props = {"content_type": "application/json", "message_id": "m-wire", "priority": 3}
    records = [
        plain,
        dead_letter(2, AT_MS, body=b"\x00\x01PAYv2 " + PAN_BINARY.encode()),
        dead_letter(3, AT_MS, body=f"declined card {PAN_TEXT} cvv=123".encode()),
        dead_letter(4, AT_MS, body=b""),
        dead_letter(5, AT_MS, body=huge),
        dead_letter(6, AT_MS, body=b'{"amount": 42.50, "payment_id": "pay_6", "n": 1e400}'),
        dead_letter(7, AT_MS, merchant="@SUM(A1:A9)", **_odd_headers()),
        dead_letter(8, AT_MS, reason=f"card {PAN_ERROR}", queue="=cmd|' /C calc'!A0"),
        MessageRecord(  # x-death as one table; first-death headers that match none
            body=b'{"payment_id": "pay_9"}',
            properties={"timestamp": WHEN, "delivery_mode": 2, "expiration": "60000"},
            headers={
                "x-death": {"queue": "q", "reason": "expired", "count": 2, "time": WHEN},
                "x-first-death-queue": "elsewhere",
                "x-first-death-reason": "rejected",
            },
        ),
        MessageRecord(  # x-death entries of odd types, a non-table entry
            body=b'{"payment_id": "pay_10"}',
            headers={
                "x-death": [
                    {
                        "queue": b"q\xffbytes",
                        "reason": 7,
                        "count": "3",
                        "time": AT_MS,
                        "routing-keys": "one.key",
                        "exchange": None,
                    },
                    "not a table",
                    {"count": decimal.Decimal("2.7"), "time": 1.5e9, "routing-keys": [b"k", 3]},
                ]
            },
        ),
        MessageRecord(body=b'{"payment_id": "pay_11"}', headers={"x-death": "nonsense"}),
        MessageRecord(body=b'{"payment_id": "pay_12"}', headers={"x-death": []}),
        MessageRecord(
            body=b'{"payment_id": "pay_13"}',
            properties=wire_props,
            headers={"x-trace": "t"},
            exchange="échange",
            wire=encode_properties(wire_props, {"x-trace": "t"}),
        ),
        MessageRecord(  # an exchange and a routing key that are not UTF-8, as the broker gave
            body=b'{"payment_id": "pay_14"}',
            exchange=f"ex\udcff{PAN_TEXT}",
            routing_key="rk.\udcfe",
        ),
    ]
    return records


async def _stored(redis: aioredis.Redis, prefix: str) -> list[tuple[str, dict[bytes, bytes]]]:
    store = ParkingStore(redis, prefix)
    items = [ParkItem(r, entry_id=new_entry_id(AT_MS + i)) for i, r in enumerate(_records())]
    await store.park_many(DLQ, items, FIELDS)
    ids = [item.entry_id for item in items if item.entry_id]
    # What operators, actions and damage leave in the hash.
    await redis.hset(
        store.entry_key(DLQ, ids[0]),
        mapping={
            "operator": "ops@example.com",
            "action": "requeue",
            "action_id": "a-1",
            "detail": f"edited card {PAN_ERROR}",
            "last_error": f"broker said no for {PAN_ERROR}",
            "updated_at": str(AT_MS + 5000),
            "outcome": "declined",
            "out_since": str(AT_MS + 1000),
            "out_at": str(AT_MS + 6000),
            "out_detail": f"declined {PAN_ERROR}",
            "state": "done",
        },
    )
    await redis.hset(store.entry_key(DLQ, ids[1]), "summary", b"not json")
    odd_summary = [1, "x", None, "=M", "1e3", None, "", "", None, None, "x", "text", "9", None]
    await redis.hset(store.entry_key(DLQ, ids[2]), "summary", orjson.dumps(odd_summary))
    await redis.hset(store.entry_key(DLQ, ids[3]), "summary", b"")
    numbers = [1, AT_MS, int(PAN_JSON), int(PAN_TEXT), 12.5, "12.5", ["EUR"], {"code": 7}]
    numbers += [7, True, 1, ["json"], 10, int(PAN_JSON), 5]  # not text where text belongs
    await redis.hset(store.entry_key(DLQ, ids[6]), "summary", orjson.dumps(numbers))
    await redis.hset(store.entry_key(DLQ, ids[4]), "state", b"no such state")
    await redis.hdel(store.entry_key(DLQ, ids[5]), "cause", "parked_at")
    hashes = await store.get_many_hashes(DLQ, ids)
    assert all(hashes)
    return list(zip(ids, hashes, strict=True))


async def test_the_fast_path_gives_what_the_general_one_gives(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    stored = await _stored(redis_client, prefix)
    ids = id_tree(["payment_id", "rows.0.n"])
    old_csv = io.StringIO()
    rows = csv.writer(old_csv, lineterminator="\r\n")
    old_jsonl = []
    for entry_id, raw in stored:
        named = {key.decode(): value for key, value in raw.items()}  # the general decode
        assert repr(decode_record(raw)) == repr(decode_record(named))  # NaN != NaN
        entry = entry_from_hash(DLQ, entry_id, raw)
        for in_range in (True, False):
            for tree in (None, ids):
                row, document = entry_row_and_document(entry, in_range=in_range, ids=tree)
                assert row == entry_row(entry)
                expected = entry_document(entry, in_range=in_range, ids=tree)
                assert document == expected
                assert dumps_line(document) == dumps_line(expected)
        rows.writerow(entry_row(entry))
        inside = AT_MS <= entry.summary.parked_at_ms < AT_MS + 10
        old_jsonl.append(dumps_line(entry_document(entry, in_range=inside, ids=ids)))
    # As the export reads them (a worker: get_many_hashes), all in one batch.
    lines = hash_lines(DLQ, stored, AT_MS, AT_MS + 10, ids)
    assert lines.csv == old_csv.getvalue().encode("utf-8")
    assert lines.jsonl == b"".join(old_jsonl)
    assert len(lines.summaries) == len(stored)
    written = lines.csv.decode("utf-8") + lines.jsonl.decode("utf-8")
    for secret in (PAN_JSON, PAN_TEXT):
        assert secret not in written
    damaged = orjson.loads(lines.jsonl.splitlines()[6])
    assert damaged["payment_id"] == "<number 411111******1111>"
    assert damaged["reason"] == '<object {"code":7}>'
    odd = orjson.loads(lines.jsonl.splitlines()[13])
    assert (odd["exchange"], odd["delivered_routing_key"]) == (
        "ex\\xff510510******5100",
        "rk.\\xfe",
    )
