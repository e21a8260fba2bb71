"""Exporting an incident snapshot from the console: the dialog, pre-filled, writes the bundle."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
import time
import zipfile
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from app.console import ConsoleSession
from app.ui_state import UiState
from services.alerts.log import AlertLog
from services.alerts.model import AlertEvent
from services.alerts.timeline import incident_window
from services.config import Profile, load_profile
from services.flow.history import HistoryStore, SecondRow
from services.workbench.codec import MessageRecord
from tests.helpers.snapshot_kit import DLQ, PAN_JSON, park_records
from tests.helpers.waiting import eventually
from widgets.snapshot.dialog import SnapshotState

pytestmark = pytest.mark.integration


@pytest.fixture
def profile(amqp_url: str, redis_url: str, prefix: str) -> Profile:
    return dataclasses.replace(
        load_profile(env={}),
        name="incident",
        amqp_url=amqp_url,
        redis_url=redis_url,
        tap_exchanges=(),
        watch_queues=(),
        dead_letter_queues=(DLQ,),
        redis_prefix=prefix,
    )


async def test_export_dialog_prefilled_with_the_incident_writes_a_complete_bundle(
    profile: Profile, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    now = int(time.time())
    store = HistoryStore(redis_client, profile.redis_prefix)
    # Twenty minutes of flow; an acquirer outage from -12 min to -8 min.
    rows = []
    for second in range(now - 1200, now - 1):
        outage = now - 720 <= second < now - 480
        counts = {"captured": 4, "failed": 3 if outage else 0}
        reasons = {"acquirer outage": 3} if outage else {}
        rows.append(SecondRow(second, counts, 1 if outage else 0, {}, (20.0, 40.0, 80.0), reasons))
    await store.write_seconds(rows)
    events = [
        AlertEvent(now - 700, "failure_rate", "firing", 42.0, "failure rate 42 %", "critical"),
        AlertEvent(now - 470, "failure_rate", "resolved", 0.0, "failure rate 0 %", "critical"),
    ]
    await AlertLog(redis_client, profile.redis_prefix).extend(events)
    start_ms, end_ms = incident_window(events, now)  # type: ignore[misc]
    # Three payments that failed in the outage, a card number in each body: the console's
    # export reads, decodes and masks them in worker processes.
    failed = [
        MessageRecord(
            body=orjson.dumps({"payment_id": f"pay_{n}", "card": PAN_JSON}),
            properties={"content_type": "application/json"},
            headers={},
            exchange="payments",
            routing_key="pay.card",
        )
        for n in range(3)
    ]
    parked = await park_records(redis_client, profile.redis_prefix, failed, (now - 600) * 1000)

    session = ConsoleSession(profile, UiState(tmp_path / "state.ini"), workbench=False)
    runner = asyncio.ensure_future(session.run())
    try:
        await eventually(
            lambda: session.live.alerts.incident_range() is not None, 20, "the alert log"
        )
        session.window.snapshot_requested.emit()  # File › Export snapshot… (Ctrl+E)
        dialog = session.snapshots.dialog
        assert dialog is not None and dialog.state is SnapshotState.INPUT
        # From 5 minutes before the firing to a minute after the resolution.
        assert dialog.range_s() == (start_ms // 1000, end_ms // 1000 + 60)

        out = tmp_path / "incident.zip"
        dialog.path_edit.setText(str(out))
        dialog.export()
        await eventually(lambda: dialog.state is SnapshotState.DONE, 60, "the export")
        assert out.is_file()
        assert not list(tmp_path.glob("*.partial"))
    finally:
        session.window.close()
        await asyncio.wait_for(runner, 15)

    from_s, to_s = start_ms // 1000, end_ms // 1000 + 60
    in_range = [r for r in rows if from_s <= r.second < to_s]
    with zipfile.ZipFile(out) as bundle:
        names = set(bundle.namelist())
        assert {
            "report.html",
            "throughput.csv",
            "failed_payments.csv",
            "failed_payments.jsonl",
            "audit.jsonl",
            "alerts.jsonl",
            "manifest.json",
        } <= names
        assert any(name.startswith("charts/") and name.endswith(".png") for name in names)
        table = list(csv.DictReader(io.StringIO(bundle.read("throughput.csv").decode())))
        assert len(table) == to_s - from_s
        assert sum(int(row["failed"]) for row in table) == sum(
            r.status_counts["failed"] for r in in_range
        )
        alerts = bundle.read("alerts.jsonl").decode().splitlines()
        assert [json.loads(line)["kind"] for line in alerts] == ["firing", "resolved"]
        rows = list(csv.DictReader(io.StringIO(bundle.read("failed_payments.csv").decode())))
        assert sorted(row["entry_id"] for row in rows) == sorted(parked)
        documents = [json.loads(line) for line in bundle.read("failed_payments.jsonl").splitlines()]
        assert [d["body"]["content"]["card"] for d in documents] == ["411111******1111"] * 3
        for name in names:
            assert PAN_JSON.encode() not in bundle.read(name), name
        report = bundle.read("report.html").decode()
        assert "acquirer outage" in report
        manifest = json.loads(bundle.read("manifest.json"))
        assert manifest["profile"]["name"] == "incident"
