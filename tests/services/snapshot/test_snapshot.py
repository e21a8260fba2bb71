"""The incident snapshot writer against the real Redis: a seeded range, exported whole.

Every test seeds its own prefix (history rows, alert events, parked entries in
two dead-letter queues, audit records) and reads the bundle back from the zip.
The chart renderer here is a stand-in that returns fixed PNG bytes (the real
one is Qt's, tested under tests/widgets); Redis is always the real one.
"""

from __future__ import annotations

import asyncio
import csv
import datetime
import hashlib
import io
import itertools
import json
import re
import threading
import time
import tracemalloc
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from services.alerts.log import AlertLog
from services.alerts.model import AlertEvent
from services.alerts.rules import LatencyRule
from services.config import FieldPaths, Profile, TapBinding
from services.flow.history import HistoryStore, SecondRow
from services.flow.types import FlowFrame
from services.masking.json import HIDDEN, JsonNumber
from services.snapshot.bundle import default_file_name
from services.snapshot.documents import ENTRY_COLUMNS, body_for_export, dumps_line, entry_row
from services.snapshot.job import write_snapshot
from services.snapshot.manifest import profile_for_manifest
from services.snapshot.model import (
    CHARTS,
    MAX_RANGE_S,
    AlertSpan,
    SnapshotCancelled,
    SnapshotProgress,
    SnapshotRequest,
    alert_spans,
)
from services.workbench.codec import MessageRecord
from services.workbench.model import AUDIT_STARTED, AuditRecord, EntryState
from services.workbench.store import ParkingStore, ParkItem, new_entry_id

pytestmark = pytest.mark.integration

FIELDS = FieldPaths()
DLQ = "payments.dlq"
DLQ2 = "refunds.dlq"
AMQP_USER, AMQP_PASSWORD = "snapuser_q7", "s3cr3t-Pa55w0rd"
REDIS_USER, REDIS_PASSWORD = "redisuser_k3", "r3d1s-Pa55w0rd"
QUERY_SECRET = "qs-t0ken-774"
AMQP_URL = f"amqp://{AMQP_USER}:{AMQP_PASSWORD}@mq.internal:5671/payments"
PAN_JSON = "4111111111111111"
PAN_TEXT = "5105105105105100"
PAN_HEADER = "4012888888881881"
PAN_ERROR = "378282246310005"
PAN_BINARY = "6011111111111117"
PAN_GROUPED = "5500 0055 5555 5559"
CVV = "9731"
PANS = (PAN_JSON, PAN_TEXT, PAN_HEADER, PAN_ERROR, PAN_BINARY, PAN_GROUPED, "5500005555555559")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


# --------------------------------------------------------------------------- seeding


def profile_for(prefix: str, **overrides: Any) -> Profile:
    values: dict[str, Any] = {
        "name": "incident-test",
        "amqp_url": AMQP_URL,
        "redis_url": (
            f"redis://{REDIS_USER}:{REDIS_PASSWORD}@127.0.0.1:6379/15?password={QUERY_SECRET}"
        ),
        "tap_exchanges": (TapBinding("payments.events"),),
        "watch_queues": ("payments.process", DLQ),
        "dead_letter_queues": (DLQ, DLQ2),
        "redis_prefix": prefix,
        "operator": "alice",
    }
    values.update(overrides)
    return Profile(**values)


def dead_letter(
    n: int,
    death_ms: int,
    *,
    body: bytes | None = None,
    queue: str = "payments.process",
    reason: str = "rejected",
    merchant: str = "Acme Books",
    **headers: Any,
) -> MessageRecord:
    if body is None:
        body = orjson.dumps(
            {
                "payment_id": f"pay_{n}",
                "merchant": merchant,
                "amount": f"{n}.50",
                "currency": "EUR",
                "card": {"number": PAN_JSON, "cvv": CVV, "holder": "A. Tester"},
                "note": f"grouped card {PAN_GROUPED}",
            }
        )
    return MessageRecord(
        body=body,
        properties={"content_type": "application/json", "message_id": f"m-{n}"},
        headers={
            "x-death": [
                {
                    "count": 1,
                    "reason": reason,
                    "queue": queue,
                    "time": datetime.datetime.fromtimestamp(death_ms / 1000, tz=datetime.UTC),
                    "exchange": "payments",
                    "routing-keys": ["payment.failed"],
                }
            ],
            **headers,
        },
        exchange="payments.dlx",
        routing_key="payment.failed",
    )


@dataclass
class Scenario:
    """What was seeded, and what the bundle must therefore hold."""

    from_s: int
    to_s: int
    included: dict[str, str] = field(default_factory=dict)  # entry id -> dlq
    excluded: set[str] = field(default_factory=set)
    status_totals: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    audit_in_range: int = 0
    actions_finished: dict[str, int] = field(default_factory=dict)
    alert_events_in_range: int = 0
    binary_id: str = ""
    text_id: str = ""
    error_id: str = ""
    acted_earlier: set[str] = field(default_factory=set)
    empty_second: int = 0


async def seed(client: aioredis.Redis, profile: Profile) -> Scenario:
    now = int(time.time())
    # The range holds "now" so that audit records (stream ids: Redis's clock) fall inside.
    scenario = Scenario(from_s=now - 1800, to_s=now + 120)
    from_s, to_s = scenario.from_s, scenario.to_s
    prefix = profile.redis_prefix

    # Flow history: a row every second except a gap, also rows outside the range.
    history = HistoryStore(client, prefix)
    rows = []
    scenario.empty_second = from_s + 1000
    for second in range(from_s - 300, to_s + 300):
        if second == scenario.empty_second:
            continue
        failed = 3 if from_s + 600 <= second < from_s + 900 else (1 if second % 10 == 0 else 0)
        reasons = {"acquirer timeout": failed} if failed else {}
        row = SecondRow(
            second=second,
            status_counts={"captured": 20, "failed": failed, "declined": second % 2},
            dead_letters=1 if second % 30 == 0 else 0,
            queue_depths={"payments.process": second % 40, DLQ: None},
            latency_ms=(20.0, 55.5, 120.25),
            failure_reasons=reasons,
        )
        rows.append(row)
        if from_s <= second < to_s:
            for status, count in row.status_counts.items():
                scenario.status_totals[status] = scenario.status_totals.get(status, 0) + count
            scenario.dead_letters += row.dead_letters
            for reason, count in reasons.items():
                scenario.reasons[reason] = scenario.reasons.get(reason, 0) + count
    await history.write_seconds(rows)

    # Alerts: latency firing before the range (resolves inside), failure rate inside,
    # flow stopped still firing at the end; one event after the range.
    log = AlertLog(client, prefix)
    events = [
        AlertEvent(from_s - 300, "latency_p99", "firing", 2500.0, "latency p99 2500 ms", "warning"),
        AlertEvent(from_s + 300, "latency_p99", "resolved", 900.0, "resolved: p99 900 ms"),
        AlertEvent(from_s + 600, "failure_rate", "firing", 15.0, "failure rate 15 %", "critical"),
        AlertEvent(
            from_s + 900, "failure_rate", "resolved", 1.0, "resolved: card " + PAN_TEXT, "critical"
        ),
        AlertEvent(from_s + 1500, "flow_stopped", "firing", 31.0, "no events", "critical"),
        AlertEvent(to_s + 10, "flow_stopped", "resolved", 0.0, "resolved"),
    ]
    await log.extend(events)
    scenario.alert_events_in_range = 4

    store = ParkingStore(client, prefix)

    async def park(dlq: str, at_s: float, record: MessageRecord) -> str:
        entry_id = new_entry_id(int(at_s * 1000))
        result = await store.park(dlq, record, FIELDS, entry_id=entry_id)
        assert result.created and result.entry_id == entry_id
        return entry_id

    spring = "x-exception-message"  # a Spring AMQP producer's own error: the cause
    inside = [
        await park(
            DLQ,
            from_s + 100 + n,
            dead_letter(
                n,
                (from_s + 100 + n) * 1000,
                **{spring: f"acquirer timeout after {3000 + n} ms on acq-{n}"},
            ),
        )
        for n in range(5)
    ]
    for entry_id in inside:
        scenario.included[entry_id] = DLQ
    scenario.text_id = await park(
        DLQ,
        from_s + 200,
        dead_letter(
            50,
            (from_s + 200) * 1000,
            body=f"payment pay_50 failed, card {PAN_TEXT}, cvv={CVV}".encode(),
            note=f"card {PAN_HEADER} declined",
            blob=b"\xff\x00 " + PAN_BINARY.encode(),
        ),
    )
    scenario.binary_id = await park(
        DLQ,
        from_s + 201,
        dead_letter(51, (from_s + 201) * 1000, body=b"\xff\xfe\x00pan=" + PAN_BINARY.encode()),
    )
    refunds = [
        await park(
            DLQ2,
            from_s + 300 + n,
            dead_letter(
                60 + n,
                (from_s + 300) * 1000,
                queue="refunds.process",
                reason="expired",
                merchant='=HYPERLINK("http://evil")',
            ),
        )
        for n in range(2)
    ]
    for entry_id in (scenario.text_id, scenario.binary_id):
        scenario.included[entry_id] = DLQ
    for entry_id in refunds:
        scenario.included[entry_id] = DLQ2

    # The last error of a failed action, and a completed action's detail, hold a PAN.
    scenario.error_id = inside[0]
    assert (await store.claim(DLQ, inside[0], "requeue", "act-1", "bob")).ok
    assert (await store.release(DLQ, inside[0], "act-1", f"NO_ROUTE for card {PAN_ERROR}")).ok
    assert (await store.claim(DLQ, inside[1], "cancel", "act-2", "bob")).ok
    done = await store.complete(DLQ, inside[1], "act-2", EntryState.CANCELLED, f"card {PAN_ERROR}")
    assert done.ok

    # Parked before the range: excluded unless acted on in it.
    before = [
        await park(DLQ, from_s - 3600 + n, dead_letter(70 + n, (from_s - 3600) * 1000))
        for n in range(5)
    ]
    scenario.acted_earlier = {before[0], before[1]}
    for entry_id in scenario.acted_earlier:
        scenario.included[entry_id] = DLQ
    scenario.excluded = {before[2], before[3], before[4]}
    after = await park(DLQ, to_s + 60, dead_letter(99, (to_s + 60) * 1000))
    scenario.excluded.add(after)

    now_ms = int(time.time() * 1000)
    records = [
        # in range: names two earlier entries and one inside (each exported once)
        AuditRecord(
            now_ms,
            "bob",
            "ops-1",
            "requeue",
            (before[0], before[1], inside[2]),
            "payments.process",
            "ok",
            "requeued 3",
        ),
        AuditRecord(
            now_ms,
            "bob",
            "ops-1",
            "retry",
            (before[0],),
            "payments.process",
            "failed",
            f"card {PAN_ERROR} refused",
        ),
        # outside the range by its own time: its entry stays out
        AuditRecord(
            (from_s - 600) * 1000,
            "carol",
            "ops-2",
            "cancel",
            (before[2],),
            "payments.cancelled",
            "ok",
            "late write",
        ),
    ]
    for record in records:
        await store.append_audit(DLQ, record)
    await store.append_audit(
        DLQ2, AuditRecord(now_ms, "dave", "ops-3", "cancel", (refunds[0],), "x", "ok", "")
    )
    # One action over both DLQs: a "started" record, then a final record in each.
    run = {"action_id": "run-9", "detail": ""}
    await store.append_audit(
        DLQ, AuditRecord(now_ms, "erin", "ops-4", "requeue", (), "q", AUDIT_STARTED, **run)
    )
    for dlq in (DLQ, DLQ2):
        done_record = AuditRecord(
            now_ms, "erin", "ops-4", "requeue", (before[0],), "q", "ok", **run
        )
        await store.append_audit(dlq, done_record)
    # An action that started and has not finished: not an action (yet).
    await store.append_audit(
        DLQ,
        AuditRecord(now_ms, "erin", "ops-4", "cancel", (), "q", AUDIT_STARTED, action_id="run-10"),
    )
    scenario.audit_in_range = 7
    scenario.actions_finished = {"requeue": 2, "retry": 1, "cancel": 1}
    return scenario


# --------------------------------------------------------------------------- reading back


class Bundle:
    """A written snapshot, read back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with zipfile.ZipFile(path) as archive:
            self.names = archive.namelist()
            self.files = {name: archive.read(name) for name in self.names}
            self.infos = {info.filename: info for info in archive.infolist()}

    def text(self, name: str) -> str:
        return self.files[name].decode("utf-8")

    def csv(self, name: str) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self.text(name))))

    def jsonl(self, name: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text(name).splitlines()]

    @property
    def manifest(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.files["manifest.json"])
        return result

    def report_value(self, element_id: str) -> int:
        match = re.search(rf'id="{element_id}" data-value="(\d+)"', self.text("report.html"))
        assert match, f"no {element_id} in report.html"
        return int(match.group(1))


@dataclass
class FakeRenderer:
    """Stands in for the Qt renderer: records what it was given."""

    calls: list[tuple[FlowFrame, list[AlertSpan]]] = field(default_factory=list)

    def __call__(self, frame: FlowFrame, spans: Sequence[AlertSpan]) -> Mapping[str, bytes]:
        self.calls.append((frame, list(spans)))
        return {name: PNG + name.encode() for name in CHARTS}


async def snapshot(
    client: aioredis.Redis,
    profile: Profile,
    scenario: Scenario,
    out: Path,
    **kwargs: Any,
) -> Any:
    batch = kwargs.pop("batch", 3)
    request = SnapshotRequest(profile, scenario.from_s, scenario.to_s, out, batch=batch)
    return await write_snapshot(request, client, **kwargs)


# --------------------------------------------------------------------------- the bundle


async def test_the_bundle_is_complete_and_consistent(
    redis_client: aioredis.Redis, prefix: str, tmp_path: Path
) -> None:
    profile = profile_for(prefix)
    scenario = await seed(redis_client, profile)
    renderer = FakeRenderer()
    out = tmp_path / "snap.zip"
    result = await snapshot(redis_client, profile, scenario, out, render_charts=renderer)

    assert result.path == out and out.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap.zip"]  # no temp leftovers
    assert result.size == out.stat().st_size
    assert result.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    bundle = Bundle(out)
    assert bundle.names == [
        "report.html",
        "charts/throughput.png",
        "charts/dead_letters.png",
        "charts/queue_depths.png",
        "charts/latency.png",
        "throughput.csv",
        "failed_payments.csv",
        "failed_payments.jsonl",
        "audit.jsonl",
        "jobs.jsonl",
        "alerts.jsonl",
        "manifest.json",
    ]
    assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in bundle.infos.values())

    # manifest: every other file with its hash and size; counts; the range
    manifest = bundle.manifest
    listed = {f["name"]: f for f in manifest["files"]}
    assert set(listed) == set(bundle.names) - {"manifest.json"}
    for name, entry in listed.items():
        assert entry["sha256"] == hashlib.sha256(bundle.files[name]).hexdigest(), name
        assert entry["size"] == len(bundle.files[name]), name
    assert manifest["time_range"]["from_epoch_s"] == scenario.from_s
    assert manifest["time_range"]["to_epoch_s"] == scenario.to_s
    assert manifest["tool"]["version"]
    assert manifest["profile"]["amqp_url"] == "amqp://mq.internal:5671/payments"
    assert manifest["profile"]["redis_url"] == "redis://127.0.0.1:6379/15"
    assert manifest["profile"]["dead_letter_queues"] == [DLQ, DLQ2]
    assert manifest["profile"]["tap_exchanges"] == ["payments.events"]
    assert {r["kind"] for r in manifest["profile"]["alert_rules"]} >= {"failure_rate", "latency"}

    # throughput.csv: every second of the range, seeded totals
    rows = bundle.csv("throughput.csv")
    assert len(rows) == scenario.to_s - scenario.from_s
    assert list(rows[0])[:2] == ["time_utc", "epoch_s"]
    assert [int(r["epoch_s"]) for r in rows] == list(range(scenario.from_s, scenario.to_s))
    for status, total in scenario.status_totals.items():
        assert sum(int(r[status] or 0) for r in rows) == total, status
    assert sum(int(r["dead_letters"] or 0) for r in rows) == scenario.dead_letters
    assert rows[0]["time_utc"].endswith("Z")
    assert rows[0]["latency_p95_ms"] == "55.5" and rows[0]["latency_p99_ms"] == "120.25"
    # The second nobody recorded is empty throughout, not zero traffic; a recorded
    # second without a status says 0.
    gap = rows[scenario.empty_second - scenario.from_s]
    assert all(gap[name] == "" for name in gap if name not in ("time_utc", "epoch_s")), gap
    # A quiet second (none of the seeded failures or dead letters fall on it).
    quiet = next(r for r in rows[:600] if int(r["epoch_s"]) % 10 == 5)
    assert quiet["failed"] == "0" and quiet["dead_letters"] == "0"
    assert rows[0][f"depth:{DLQ}"] == ""  # depth unknown in that second

    # failed payments: in range or acted on in range, each once; CSV == JSONL
    table = bundle.csv("failed_payments.csv")
    documents = bundle.jsonl("failed_payments.jsonl")
    assert list(table[0]) == list(ENTRY_COLUMNS)
    ids = [r["entry_id"] for r in table]
    assert sorted(ids) == sorted(scenario.included)
    assert len(set(ids)) == len(ids)
    assert [d["entry_id"] for d in documents] == ids
    assert not set(ids) & scenario.excluded
    by_id = {r["entry_id"]: r for r in table}
    assert {by_id[i]["dlq"] for i in scenario.included} == {DLQ, DLQ2}
    assert by_id[scenario.error_id]["state"] == "parked"
    assert by_id[scenario.error_id]["last_error"] == "NO_ROUTE for card 378282*****0005"
    earlier = [d for d in documents if d["entry_id"] in scenario.acted_earlier]
    assert earlier and not any(d["parked_in_range"] for d in earlier)
    refund = next(r for r in table if r["dlq"] == DLQ2)
    assert refund["merchant"].startswith("'=HYPERLINK")  # no formula in a spreadsheet
    assert refund["reason"] == "expired" and refund["origin_queue"] == "refunds.process"

    # audit and alerts: the range's only
    audit = bundle.jsonl("audit.jsonl")
    assert len(audit) == scenario.audit_in_range
    assert {a["dlq"] for a in audit} == {DLQ, DLQ2}
    assert all(scenario.from_s * 1000 <= a["ts"] < scenario.to_s * 1000 for a in audit)
    alerts = bundle.jsonl("alerts.jsonl")
    assert len(alerts) == scenario.alert_events_in_range
    assert [a["rule"] for a in alerts] == [
        "latency_p99",
        "failure_rate",
        "failure_rate",
        "flow_stopped",
    ]

    # the report's figures are the files' rows
    counts = result.counts
    assert counts.failed_payments == len(table) == len(documents) == len(scenario.included)
    assert counts.audit_records == len(audit)
    assert counts.alert_events == len(alerts)
    assert counts.seconds == len(rows)
    assert counts.events == sum(scenario.status_totals.values())
    assert counts.dead_letters == scenario.dead_letters
    assert manifest["counts"] == {
        "seconds": counts.seconds,
        "events": counts.events,
        "dead_letters": counts.dead_letters,
        "failed_payments": counts.failed_payments,
        "audit_records": counts.audit_records,
        "alert_events": counts.alert_events,
    }
    assert bundle.report_value("count-seconds") == len(rows)
    assert bundle.report_value("count-events") == counts.events
    assert bundle.report_value("count-dead-letters") == scenario.dead_letters
    assert bundle.report_value("count-failed-payments") == len(table)
    assert bundle.report_value("count-audit-records") == len(audit)
    # Operator actions: the finished ones, once each, not the "started" records.
    assert bundle.report_value("count-actions") == sum(scenario.actions_finished.values())
    assert bundle.report_value("count-actions-unfinished") == 1
    kinds = re.findall(r"<b>(requeue|retry|cancel)</b> (\d+)", bundle.text("report.html"))
    assert {kind: int(n) for kind, n in kinds} == scenario.actions_finished
    assert bundle.report_value("count-alert-events") == len(alerts)
    assert bundle.report_value("count-failures") == scenario.status_totals["failed"]
    assert bundle.report_value("count-failure-reasons") == scenario.reasons["acquirer timeout"]
    assert bundle.report_value("count-acted-on-earlier") == len(scenario.acted_earlier)
    assert bundle.report_value("count-alerts-fired") == 2
    report = bundle.text("report.html")
    assert "acquirer timeout" in report and "incident-test" in report
    # Failure groups: the five Spring causes are one group; one of them is cancelled.
    groups = re.findall(
        r'<tr><td title="[^"]*">([^<]*)</td><td class="num" data-value="(\d+)">[^<]*</td>'
        r'<td class="num" data-value="(\d+)">',
        report.split('id="failure-groups"')[1].split("</table>")[0],
    )
    assert ("acquirer timeout after # ms on acq-#", "5", "4") in groups
    assert sum(int(count) for _, count, _ in groups) == len(table)
    assert {"acquirer timeout after 3004 ms on acq-4"} & {row["cause"] for row in table}, (
        "the CSV has the cause column"
    )
    assert "refunds.process" in report and "expired" in report
    assert "Acme Books" in report

    # charts: the renderer saw the whole range and the alert spans
    assert len(renderer.calls) == 1
    frame, spans = renderer.calls[0]
    assert frame.seconds == scenario.to_s - scenario.from_s
    assert spans == [
        AlertSpan(scenario.from_s, scenario.from_s + 300, "latency_p99", "warning"),
        AlertSpan(scenario.from_s + 600, scenario.from_s + 900, "failure_rate", "critical"),
        AlertSpan(scenario.from_s + 1500, scenario.to_s, "flow_stopped", "critical"),
    ]
    for name in CHARTS:
        assert bundle.files[f"charts/{name}.png"] == PNG + name.encode()
    assert report.count('src="data:image/png;base64,') == len(CHARTS)


async def test_worker_processes_write_the_same_bundle(
    redis_client: aioredis.Redis, prefix: str, tmp_path: Path
) -> None:
    """Masking the failed payments in worker processes (several batches in flight)
    changes nothing in the bundle but its creation time; an async renderer's charts
    (drawn while the entries are written) land as a plain one's do."""
    profile = profile_for(prefix)
    scenario = await seed(redis_client, profile)
    here, there = tmp_path / "here.zip", tmp_path / "there.zip"
    plain = FakeRenderer()

    async def drawn_elsewhere(frame: FlowFrame, spans: Sequence[AlertSpan]) -> Mapping[str, bytes]:
        await asyncio.sleep(0.05)
        return plain(frame, spans)

    await snapshot(redis_client, profile, scenario, here, render_charts=plain)
    result = await snapshot(
        redis_client, profile, scenario, there, render_charts=drawn_elsewhere, workers=2
    )
    assert len(plain.calls) == 2
    one, other = Bundle(here), Bundle(there)
    assert one.names == other.names
    assert result.counts.failed_payments == len(one.csv("failed_payments.csv")) > 3
    for name in one.names:
        if name not in ("report.html", "manifest.json"):  # both say when they were made
            assert one.files[name] == other.files[name], name
    for count in ("count-failed-payments", "count-acted-on-earlier", "count-audit-records"):
        assert one.report_value(count) == other.report_value(count), count


async def test_nothing_secret_and_no_card_number_anywhere(
    redis_client: aioredis.Redis, prefix: str, tmp_path: Path
) -> None:
    profile = profile_for(prefix)
    scenario = await seed(redis_client, profile)
    out = tmp_path / "snap.zip"
    await snapshot(redis_client, profile, scenario, out, render_charts=FakeRenderer())
    bundle = Bundle(out)
    secrets = (
        AMQP_USER,
        AMQP_PASSWORD,
        AMQP_URL,
        REDIS_USER,
        REDIS_PASSWORD,
        QUERY_SECRET,
        profile.redis_url,
        *PANS,
    )
    for name, data in bundle.files.items():
        text = data.decode("latin-1")
        for secret in secrets:
            assert secret not in text, f"{secret!r} in {name}"
        assert f'"cvv":"{CVV}"' not in text and f"cvv={CVV}" not in text, name
    # the entries' message parts, masked field by field
    documents = {d["entry_id"]: d for d in bundle.jsonl("failed_payments.jsonl")}
    json_entry = next(d for d in documents.values() if d["body"]["kind"] == "json")
    assert json_entry["body"]["content"]["card"] == {
        "number": "411111******1111",
        "cvv": HIDDEN,
        "holder": "A. Tester",
    }
    text_entry = documents[scenario.text_id]
    assert text_entry["body"]["kind"] == "text"
    assert "510510******5100" in text_entry["body"]["content"]
    assert f"cvv={HIDDEN}" in text_entry["body"]["content"]
    assert text_entry["headers"]["note"] == "card 401288******1881 declined"
    blob = text_entry["headers"]["blob"]
    assert blob == {"kind": "binary", "size": 3 + len(PAN_BINARY)}
    binary = documents[scenario.binary_id]["body"]
    raw = b"\xff\xfe\x00pan=" + PAN_BINARY.encode()
    assert binary == {"kind": "binary", "size": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    assert documents[scenario.error_id]["last_error"] == "NO_ROUTE for card 378282*****0005"
    assert documents[scenario.binary_id]["x_death"][0]["queue"] == "payments.process"


async def test_report_is_self_contained(
    redis_client: aioredis.Redis, prefix: str, tmp_path: Path
) -> None:
    profile = profile_for(prefix)
    scenario = await seed(redis_client, profile)
    out = tmp_path / "snap.zip"
    await snapshot(redis_client, profile, scenario, out, render_charts=FakeRenderer())
    report = Bundle(out).text("report.html")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", report, re.I)
    assert not re.search(r"<(?:script|link|iframe|object|embed)\b", report, re.I)
    assert "@import" not in report and "url(" not in report
    # message content is escaped, never markup
    assert "=HYPERLINK(&#34;http://evil&#34;)" in report


async def test_without_a_renderer_the_report_says_there_are_no_charts(
    redis_client: aioredis.Redis, prefix: str, tmp_path: Path
) -> None:
    profile = profile_for(prefix)
    scenario = await seed(redis_client, profile)
    out = tmp_path / "snap.zip"
    await snapshot(redis_client, profile, scenario, out)
    bundle = Bundle(out)
    assert not [n for n in bundle.names if n.startswith("charts/")]
    report = bundle.text("report.html")
    assert 'id="charts-missing"' in report and "not rendered" in report
    assert "<img" not in report


async def test_a_failing_renderer_costs_only_the_charts(
    redis_client: aioredis.Redis, prefix: str, tmp_path: Path
) -> None:
    profile = profile_for(prefix)
    scenario = await seed(redis_client, profile)

    def broken(frame: FlowFrame, spans: Sequence[AlertSpan]) -> Mapping[str, bytes]:
        raise RuntimeError(f"no display for card {PAN_JSON}")

    out = tmp_path / "snap.zip"
    result = await snapshot(redis_client, profile, scenario, out, render_charts=broken)
    report = Bundle(out).text("report.html")
    assert "Charts could not be rendered: no display for card 411111******1111" in report
    assert result.counts.failed_payments == len(scenario.included)


async def test_an_empty_range_gives_an_empty_but_valid_bundle(
    redis_client: aioredis.Redis, prefix: str, tmp_path: Path
) -> None:
    profile = profile_for(prefix, dead_letter_queues=())
    from_s = int(time.time()) - 7200
    out = tmp_path / "empty.zip"
    result = await write_snapshot(
        SnapshotRequest(profile, from_s, from_s + 60, out), redis_client, render_charts=None
    )
    bundle = Bundle(out)
    assert result.counts.events == 0 and result.counts.failed_payments == 0
    rows = bundle.csv("throughput.csv")
    assert len(rows) == 60 and list(rows[0]) == [
        "time_utc",
        "epoch_s",
        "dead_letters",
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
    ]
    assert bundle.csv("failed_payments.csv") == []
    assert bundle.text("failed_payments.csv").startswith(",".join(ENTRY_COLUMNS))
    report = bundle.text("report.html")
    assert "No flow history was recorded" in report
    assert "No failed payments" in report
    assert bundle.report_value("count-events") == 0


# --------------------------------------------------------------------------- progress, cancel


async def test_progress_is_reported_per_batch_and_only_grows(
    redis_client: aioredis.Redis, prefix: str, tmp_path: Path
) -> None:
    profile = profile_for(prefix)
    scenario = await seed(redis_client, profile)
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
    redis_client: aioredis.Redis, prefix: str, tmp_path: Path
) -> None:
    profile = profile_for(prefix)
    scenario = await seed(redis_client, profile)
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
    redis_client: aioredis.Redis, prefix: str, tmp_path: Path
) -> None:
    profile = profile_for(prefix)
    scenario = await seed(redis_client, profile)
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
    profile = profile_for(prefix, dead_letter_queues=())
    out = tmp_path / "s.zip"
    out.write_bytes(b"keep me")
    from_s = int(time.time()) - 120
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
    store = ParkingStore(redis_client, prefix)
    filler = "x" * 1500
    total = 20_000
    for start in range(0, total, 1000):
        items = [
            ParkItem(
                MessageRecord(
                    body=orjson.dumps(
                        {"payment_id": f"pay_{n}", "amount": n, "card": PAN_JSON, "pad": filler}
                    ),
                    properties={"content_type": "application/json"},
                    headers={"x-first-death-reason": "rejected", "x-first-death-queue": "q"},
                ),
                entry_id=new_entry_id((from_s + 1) * 1000 + n * 100),
            )
            for n in range(start, start + 1000)
        ]
        await store.park_many(DLQ, items, FIELDS)

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


# --------------------------------------------------------------------------- pieces


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


# --------------------------------------------------------------------------- ids and CVVs

LUHN_ID = "pay_17d5570756950439"  # its last 13 digits pass the Luhn check (issue 9)


async def test_ids_that_pass_luhn_are_exported_whole_and_nothing_cvv_like(
    redis_client: aioredis.Redis, prefix: str, tmp_path: Path
) -> None:
    fields = FieldPaths(payment_id="payment.id")  # the profile's id path decides, not a name
    profile = profile_for(prefix, fields=fields, dead_letter_queues=(DLQ,))
    now_s = int(time.time())
    body = {
        "payment": {"id": LUHN_ID},
        "payment_id": f"pay_{PAN_JSON}",  # not this profile's id path: free text
        "note": PAN_TEXT,
        "memo": f"cvv {CVV}, CVC: {CVV}",
    }
    record = MessageRecord(
        body=orjson.dumps(body),
        properties={"message_id": f"msg-{PAN_HEADER}", "correlation_id": f"corr_{PAN_HEADER}"},
        headers={"cvv": CVV, "CVC": CVV, "cvv2": 737, "security_code": CVV.encode()},
    )
    store = ParkingStore(redis_client, prefix)
    parked = await store.park(DLQ, record, fields, entry_id=new_entry_id(now_s * 1000))
    out = tmp_path / "ids.zip"
    await write_snapshot(
        SnapshotRequest(profile, now_s - 60, now_s + 60, out), redis_client, render_charts=None
    )
    bundle = Bundle(out)
    [row] = bundle.csv("failed_payments.csv")
    assert row["entry_id"] == parked.entry_id and row["payment_id"] == LUHN_ID
    [document] = bundle.jsonl("failed_payments.jsonl")
    assert document["payment_id"] == LUHN_ID
    assert document["message_id"] == f"msg-{PAN_HEADER}"
    assert document["properties"]["message_id"] == f"msg-{PAN_HEADER}"
    assert document["properties"]["correlation_id"] == f"corr_{PAN_HEADER}"
    hidden = {"cvv": HIDDEN, "CVC": HIDDEN, "cvv2": HIDDEN, "security_code": HIDDEN}
    assert document["headers"] == hidden
    content = document["body"]["content"]
    assert content["payment"] == {"id": LUHN_ID}
    assert content["payment_id"] == "pay_411111******1111"
    assert content["note"] == "510510******5100"
    assert content["memo"] == f"cvv {HIDDEN}, CVC: {HIDDEN}"
    for name in ("failed_payments.csv", "failed_payments.jsonl"):
        text = bundle.text(name).replace(f"msg-{PAN_HEADER}", "").replace(f"corr_{PAN_HEADER}", "")
        for secret in PANS:
            assert secret not in text, f"{secret!r} in {name}"
        for shown in (f'"{CVV}"', f" {CVV}", "737"):
            assert shown not in text, f"{shown!r} in {name}"
