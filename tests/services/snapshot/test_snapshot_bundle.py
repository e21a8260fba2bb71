"""The incident snapshot's bundle against the real Redis: a seeded range, exported whole and read
back from the zip (files, counts, masking, report, charts, empty range).

The seeding, the bundle reader and the stand-in renderer are in tests/helpers/snapshot_kit.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import orjson
import pytest
import redis.asyncio as aioredis

from services.config import FieldPaths
from services.flow.types import FlowFrame
from services.masking.json import HIDDEN
from services.snapshot.documents import ENTRY_COLUMNS
from services.snapshot.job import write_snapshot
from services.snapshot.model import (
    CHARTS,
    AlertSpan,
    SnapshotRequest,
)
from services.workbench.codec import MessageRecord
from tests.helpers.snapshot_kit import (
    AMQP_PASSWORD,
    AMQP_URL,
    AMQP_USER,
    CVV,
    DLQ,
    DLQ2,
    PAN_BINARY,
    PAN_HEADER,
    PAN_JSON,
    PAN_TEXT,
    PANS,
    PNG,
    QUERY_SECRET,
    REDIS_PASSWORD,
    REDIS_USER,
    Bundle,
    FakeRenderer,
    Seeded,
    empty_profile,
    park_records,
    profile_for,
    seeded_bundle,
    snapshot,
)

pytestmark = pytest.mark.integration


async def test_the_bundle_is_complete_and_consistent(
    redis_client: aioredis.Redis, seeded: Seeded, tmp_path: Path
) -> None:
    profile, scenario = seeded.profile, seeded.scenario
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
    redis_client: aioredis.Redis, seeded: Seeded, tmp_path: Path
) -> None:
    """Masking the failed payments in worker processes (several batches in flight), and
    decoding the history there, changes nothing in the bundle but its creation time; an
    async renderer's charts (drawn while the entries are written) land as a plain one's do."""
    profile, scenario = seeded.profile, seeded.scenario
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
    counts = ("count-failed-payments", "count-acted-on-earlier", "count-audit-records")
    for count in (*counts, "count-failures", "count-failure-reasons"):
        assert one.report_value(count) == other.report_value(count), count
    (frame, _), (elsewhere, _) = plain.calls  # the history's series, decoded here and there
    assert frame.status_names == elsewhere.status_names
    assert frame.queue_names == elsewhere.queue_names
    assert frame.headline == elsewhere.headline
    for name in ("t", "status_counts", "dead_letters", "latency_ms", "queue_depths"):
        assert np.array_equal(getattr(frame, name), getattr(elsewhere, name), equal_nan=True)


async def test_nothing_secret_and_no_card_number_anywhere(
    redis_client: aioredis.Redis, prefix: str, tmp_path: Path
) -> None:
    profile, scenario, bundle = await seeded_bundle(
        redis_client, prefix, tmp_path / "snap.zip", render_charts=FakeRenderer()
    )
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
    _, _, bundle = await seeded_bundle(
        redis_client, prefix, tmp_path / "snap.zip", render_charts=FakeRenderer()
    )
    report = bundle.text("report.html")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", report, re.I)
    assert not re.search(r"<(?:script|link|iframe|object|embed)\b", report, re.I)
    assert "@import" not in report and "url(" not in report
    # message content is escaped, never markup
    assert "=HYPERLINK(&#34;http://evil&#34;)" in report


async def test_without_a_renderer_the_report_says_there_are_no_charts(
    redis_client: aioredis.Redis, prefix: str, tmp_path: Path
) -> None:
    _, _, bundle = await seeded_bundle(redis_client, prefix, tmp_path / "snap.zip")
    assert not [n for n in bundle.names if n.startswith("charts/")]
    report = bundle.text("report.html")
    assert 'id="charts-missing"' in report and "not rendered" in report
    assert "<img" not in report


async def test_a_failing_renderer_costs_only_the_charts(
    redis_client: aioredis.Redis, seeded: Seeded, tmp_path: Path
) -> None:
    profile, scenario = seeded.profile, seeded.scenario

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
    profile, from_s = empty_profile(prefix, ago_s=7200)
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
    [entry_id] = await park_records(redis_client, prefix, [record], now_s * 1000, fields=fields)
    out = tmp_path / "ids.zip"
    await write_snapshot(
        SnapshotRequest(profile, now_s - 60, now_s + 60, out), redis_client, render_charts=None
    )
    bundle = Bundle(out)
    [row] = bundle.csv("failed_payments.csv")
    assert row["entry_id"] == entry_id and row["payment_id"] == LUHN_ID
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
