"""The incident snapshot's documents and the reads behind them: the manifest's profile, alert
spans, bodies, CSV cells, file names, the store's range reads, JSONL numbers.

The seeding, the bundle reader and the stand-in renderer are in tests/helpers/snapshot_kit.py.
"""

from __future__ import annotations

import json
import sys
import time

import pytest
import redis.asyncio as aioredis

from services.alerts.model import AlertEvent
from services.alerts.rules import LatencyRule
from services.masking.json import HIDDEN, JsonNumber
from services.snapshot.bundle import default_file_name
from services.snapshot.documents import ENTRY_COLUMNS, body_for_export, dumps_line, entry_row
from services.snapshot.manifest import profile_for_manifest
from services.snapshot.model import (
    AlertSpan,
    alert_spans,
    firing_spans,
)
from services.snapshot.report import CountRow, failure_reason_rows
from services.workbench.model import AuditRecord, EntryState
from services.workbench.store import ParkingStore, ParkItem, new_entry_id
from tests.helpers.snapshot_kit import (
    AMQP_PASSWORD,
    AMQP_USER,
    DLQ,
    FIELDS,
    PAN_JSON,
    dead_letter,
    profile_for,
)

pytestmark = pytest.mark.integration


def test_the_manifest_profile_keeps_every_setting_but_secrets() -> None:
    profile = profile_for("p", alert_rules=(LatencyRule(p99_ms=900.0),), cancel_exchange="ev")
    data = profile_for_manifest(profile)
    assert data["amqp_url"] == "amqp://mq.internal:5671/payments"
    assert data["cancel_exchange"] == "ev" and data["cancel_routing_key"] == "payment.cancelled"
    assert data["fields"]["payment_id"] == "payment_id"
    assert data["alert_rules"] == [
        {
            "kind": "latency",
            "p99_ms": 900.0,
            "window_s": 60,
            "min_seconds": 10,
            "name": "latency_p99",
            "severity": "warning",
            "resolve_after_s": 30.0,
        }
    ]
    assert data["alert_rules_configured"] is True
    assert AMQP_PASSWORD not in json.dumps(data) and AMQP_USER not in json.dumps(data)


def test_alert_spans_from_events_before_and_inside_the_range() -> None:
    events = [
        AlertEvent(150, "b", "firing", None, "", "critical"),
        AlertEvent(160, "a", "resolved", None, ""),
        AlertEvent(170, "c", "resolved", None, ""),  # its firing is older than the lookback
        AlertEvent(180, "b", "resolved", None, "", "critical"),
        AlertEvent(190, "b", "firing", None, "", "critical"),
    ]
    earlier = [
        AlertEvent(10, "a", "firing", None, ""),
        AlertEvent(20, "d", "firing", None, ""),
        AlertEvent(30, "d", "resolved", None, ""),
    ]
    assert alert_spans(events, 100, 200, earlier=earlier) == [
        AlertSpan(100, 160, "a", "warning"),
        AlertSpan(100, 170, "c", "warning"),
        AlertSpan(150, 180, "b", "critical"),
        AlertSpan(190, 200, "b", "critical"),
    ]


def test_an_alert_that_fires_and_resolves_at_one_instant_is_a_span_of_no_length() -> None:
    # A new-failure-group alert records its firing and its resolve in the same millisecond
    # (in either order in the log): neither "firing before the range" nor "still firing".
    for events in (
        [AlertEvent(150, "g", "firing", None, ""), AlertEvent(150, "g", "resolved", None, "")],
        [AlertEvent(150, "g", "resolved", None, ""), AlertEvent(150, "g", "firing", None, "")],
    ):
        spans = firing_spans(events, 100, 200)
        assert [s.span for s in spans] == [AlertSpan(150, 150, "g", "warning")]
        assert not spans[0].started_before and not spans[0].still_firing
    # A rule firing until an instant that resolves and fires again at it: two spans.
    events = [
        AlertEvent(120, "r", "firing", None, ""),
        AlertEvent(150, "r", "firing", None, ""),
        AlertEvent(150, "r", "resolved", None, ""),
        AlertEvent(170, "r", "resolved", None, ""),
    ]
    assert alert_spans(events, 100, 200) == [
        AlertSpan(120, 150, "r", "warning"),
        AlertSpan(150, 170, "r", "warning"),
    ]


def test_bodies_for_export() -> None:
    assert body_for_export(b"") == {"kind": "empty", "size": 0}
    exact = body_for_export(b'{"amount": 42.50, "pan": "4111 1111 1111 1111"}')
    assert exact["kind"] == "json" and exact["content"]["pan"] == "411111******1111"
    assert str(exact["content"]["amount"]) == "42.50"  # the number as written
    text = body_for_export(b"cvv: 123 card 4111111111111111")
    assert text == {"kind": "text", "size": 30, "content": f"cvv: {HIDDEN} card 411111******1111"}
    binary = body_for_export(b"\x00\x01" + PAN_JSON.encode())
    assert binary["kind"] == "binary" and "content" not in binary


async def test_csv_cells_cannot_be_formulas(redis_client: aioredis.Redis, prefix: str) -> None:
    store = ParkingStore(redis_client, prefix)
    record = dead_letter(1, 1_715_947_200_000, merchant="@SUM(A1:A9)")
    result = await store.park(DLQ, record, FIELDS)
    entry = await store.get(DLQ, result.entry_id)
    assert entry is not None
    row = dict(zip(ENTRY_COLUMNS, entry_row(entry), strict=True))
    assert row["merchant"] == "'@SUM(A1:A9)"
    assert row["amount"] == "1.50" and row["dead_lettered_at"] == "2024-05-17T12:00:00.000Z"


def test_default_file_name() -> None:
    assert default_file_name("prod eu/1", 1_715_947_200, 1_715_950_800) == (
        "payops-snapshot-prod_eu_1-20240517T120000Z-20240517T130000Z.zip"
    )


async def test_store_range_reads_page_through_ties_and_bounds(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    store = ParkingStore(redis_client, prefix)
    at_ms = 1_715_947_200_000
    items = [ParkItem(dead_letter(n, at_ms), entry_id=new_entry_id(at_ms)) for n in range(7)]
    items += [
        ParkItem(dead_letter(10 + n, at_ms), entry_id=new_entry_id(at_ms + 5 + n)) for n in range(4)
    ]
    items.append(ParkItem(dead_letter(20, at_ms), entry_id=new_entry_id(at_ms + 1000)))  # end: out
    items.append(ParkItem(dead_letter(21, at_ms), entry_id=new_entry_id(at_ms - 1)))  # before: out
    await store.park_many(DLQ, items, FIELDS)
    inside = sorted(item.entry_id for item in items[:11] if item.entry_id)

    assert await store.count_between(DLQ, at_ms, at_ms + 1000) == 11
    for batch in (1, 3, 7, 100):
        seen = [
            e.entry_id
            async for page in store.iter_entries_between(DLQ, at_ms, at_ms + 1000, batch=batch)
            for e in page
        ]
        assert sorted(seen) == inside and len(seen) == len(set(seen)), batch
        rows = [
            s.entry_id
            async for page in store.iter_summaries_between(DLQ, at_ms, at_ms + 1000, batch=batch)
            for s in page
        ]
        assert sorted(rows) == inside, batch
    found = await store.get_many(DLQ, [inside[0], "0" * 20, inside[1]])
    assert [e.entry_id if e else None for e in found] == [inside[0], None, inside[1]]

    now_ms = int(time.time() * 1000)
    for n in range(5):
        await store.append_audit(DLQ, AuditRecord(n, "op", "h", "requeue", (str(n),), "q", "ok"))
    records = [
        r.ts
        async for page in store.iter_audit(DLQ, now_ms - 60_000, now_ms + 60_000, batch=2)
        for r in page
    ]
    assert records == [0, 1, 2, 3, 4]  # oldest first, every page
    assert [r async for r in store.iter_audit(DLQ, 0, now_ms - 60_000)] == []


def test_jsonl_lines_keep_numbers_as_written() -> None:
    line = dumps_line(
        {"a": JsonNumber("42.50"), "b": EntryState.PARKED, "c": JsonNumber("NaN"), "d": [1.5]}
    )
    assert line == b'{"a":42.50,"b":"parked","c":"NaN","d":[1.5]}\n'


def test_a_jsonl_line_orjson_refuses_is_written_all_the_same() -> None:
    huge = 2**70  # beyond orjson's 64 bits
    deep: object = "4111 **** 1111"
    for _ in range(300):  # orjson stops at 255 levels
        deep = [deep]
    line = dumps_line(
        {"entry_id": "e1", "amount": huge, "price": JsonNumber("42.50"), "body": deep}
    )
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    written = json.loads(line)
    assert written["amount"] == huge and written["body"] == deep and b"42.50" in line


def test_a_jsonl_line_too_deep_for_python_keeps_its_fields_and_says_why() -> None:
    deep: object = "x"
    for _ in range(sys.getrecursionlimit() + 100):
        deep = {"k": deep}
    written = json.loads(dumps_line({"entry_id": "e2", "attempts": 3, "body": deep}))
    assert written["entry_id"] == "e2" and written["attempts"] == 3
    assert "nested too deeply" in written["body"]


def test_top_failure_reasons_are_failure_groups_with_one_other_row() -> None:
    # What the trial's report showed: raw reasons with numbers in them, each its own row,
    # and the tap's own "other" (reasons past its cap) as a row beside "other (N)".
    reasons = {f"timeout after {3000 + i} ms on acq-{i % 9}": 2 for i in range(40)}
    reasons |= {f"card declined by issuer {i}": 1 for i in range(30)}
    reasons |= {f"insufficient funds ({i})": 1 for i in range(5)}
    reasons |= {"other": 400}
    rows = failure_reason_rows(reasons, top=3)
    assert [r.label for r in rows] == [
        "timeout after # ms on acq-#",
        "card declined by issuer #",
        "other (1 more groups, reasons the tap did not tell apart)",
    ]
    assert [r.count for r in rows] == [80, 30, 405]
    assert sum(r.count for r in rows) == sum(reasons.values())
    assert [r.label.split()[0] for r in rows].count("other") == 1
    assert failure_reason_rows({"timeout after 12 ms": 1, "timeout after 13 ms": 3}) == (
        CountRow("timeout after # ms", 4, 100.0),
    )
