"""``payops snapshot`` against the real Redis (database 15), in process and as ``python -m app``."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis
from PySide6.QtCore import QUrl
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QApplication

from app.cli import exit_codes
from app.cli.main import main
from services.alerts.log import AlertLog
from services.alerts.model import AlertEvent
from services.config import FieldPaths
from services.flow.history import HistoryStore, SecondRow
from services.workbench.codec import MessageRecord
from services.workbench.model import AuditRecord
from services.workbench.store import ParkingStore, new_entry_id
from tests.helpers.paths import REPO_ROOT
from tests.helpers.zones import local_zone

pytestmark = pytest.mark.integration

AMQP_URL = "amqp://cliuser_z9:cl1-Pa55w0rd@mq.example:5672/"
PAN = "4111111111111111"


class Seeded:
    """A profile's Redis data for the last ten minutes, and a config file naming it."""

    def __init__(self, redis_url: str, prefix: str, tmp_path: Path) -> None:
        self.redis_url = redis_url
        self.prefix = prefix.rstrip(".")
        self.dlq = f"{self.prefix}.dlq"
        self.tmp_path = tmp_path
        self.config = self.write_config()
        self.events = 0
        self.entries = 3

    def write_config(self, **extra: object) -> Path:
        lines = [
            'default_profile = "ops"',
            "[profiles.ops]",
            f'amqp_url = "{extra.pop("amqp_url", AMQP_URL)}"',
            f'redis_url = "{extra.pop("redis_url", self.redis_url)}"',
            f'dead_letter_queues = ["{self.dlq}"]',
            f'watch_queues = ["{self.dlq}"]',
            f'redis_prefix = "{self.prefix}"',
        ]
        lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
        path = self.tmp_path / f"payops-{len(list(self.tmp_path.glob('*.toml')))}.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def seed(self) -> None:
        async def run() -> None:
            client = aioredis.from_url(self.redis_url)
            try:
                now = int(time.time())
                rows = [
                    SecondRow(s, {"captured": 7, "failed": 1}, 0, {self.dlq: 3}, (5.0, 9.0, 12.0))
                    for s in range(now - 590, now - 10)
                ]
                self.events = 8 * len(rows)
                await HistoryStore(client, self.prefix).write_seconds(rows)
                await AlertLog(client, self.prefix).append(
                    AlertEvent(now - 200, "failure_rate", "firing", 12.5, "failure rate 12.5 %")
                )
                store = ParkingStore(client, self.prefix)
                ids = []
                for n in range(self.entries):
                    body = orjson.dumps({"payment_id": f"pay_{n}", "merchant": "Acme", "pan": PAN})
                    record = MessageRecord(
                        body=body,
                        properties={"content_type": "application/json"},
                        headers={"x-first-death-reason": "rejected", "x-first-death-queue": "q"},
                    )
                    entry_id = new_entry_id((now - 300 + n) * 1000)
                    ids.append(
                        (
                            await store.park(self.dlq, record, FieldPaths(), entry_id=entry_id)
                        ).entry_id
                    )
                await store.append_audit(
                    self.dlq,
                    AuditRecord(
                        int(time.time() * 1000) - 1000, "erin", "h", "requeue", (ids[0],), "q", "ok"
                    ),
                )
            finally:
                await client.aclose()

        asyncio.run(run())

    def drop(self) -> None:
        async def run() -> None:
            client = aioredis.from_url(self.redis_url)
            keys = [k async for k in client.scan_iter(match=f"{self.prefix}:*", count=1000)]
            if keys:
                await client.unlink(*keys)
            await client.aclose()

        asyncio.run(run())


@pytest.fixture
def seeded(redis_url: str, unique_prefix: str, tmp_path: Path) -> Iterator[Seeded]:
    setup = Seeded(redis_url, unique_prefix, tmp_path)
    setup.seed()
    yield setup
    setup.drop()


def _report_value(report: str, element_id: str) -> int:
    match = re.search(rf'id="{element_id}" data-value="(\d+)"', report)
    assert match, element_id
    return int(match.group(1))


def test_snapshot_in_process(
    seeded: Seeded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "incident.zip"
    code = main(
        [
            "snapshot",
            "--config",
            str(seeded.config),
            "--since",
            "10m",
            "--out",
            str(out),
            "--no-charts",
        ]
    )
    captured = capsys.readouterr()
    assert code == exit_codes.OK, captured.err
    assert captured.out.splitlines()[0] == str(out)
    assert re.search(r"failed payments\s+3\b", captured.out)
    assert re.search(rf"events\s+{seeded.events:,}\b", captured.out)
    assert re.search(r"audit records\s+1\b", captured.out)
    assert "payops: snapshot: flow history" in captured.err  # a line a stage (not a TTY)
    assert "payops: snapshot: packing" in captured.err
    with zipfile.ZipFile(out) as bundle:
        report = bundle.read("report.html").decode()
        table = bundle.read("failed_payments.csv").decode().splitlines()
        manifest = json.loads(bundle.read("manifest.json"))
        everything = b"".join(bundle.read(name) for name in bundle.namelist())
    assert len(table) == 1 + seeded.entries
    assert _report_value(report, "count-failed-payments") == seeded.entries
    assert _report_value(report, "count-events") == seeded.events
    assert _report_value(report, "count-seconds") == 600
    assert manifest["profile"]["amqp_url"] == "amqp://mq.example:5672/"
    for secret in (b"cliuser_z9", b"cl1-Pa55w0rd", PAN.encode()):
        assert secret not in everything
    assert list(tmp_path.glob("*.partial")) == []


def test_snapshot_as_a_command_with_charts_and_a_report_that_opens(
    seeded: Seeded, tmp_path: Path, qapp: QApplication
) -> None:
    out = tmp_path / "incident.zip"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)  # the command picks the offscreen platform itself
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "snapshot",
            "--since",
            "10m",
            "--out",
            str(out),
            "--config",
            str(seeded.config),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == exit_codes.OK, result.stderr
    with zipfile.ZipFile(out) as bundle:
        names = bundle.namelist()
        report = bundle.read("report.html").decode()
        charts = {name: bundle.read(name) for name in names if name.startswith("charts/")}
    assert sorted(charts) == [
        "charts/dead_letters.png",
        "charts/latency.png",
        "charts/queue_depths.png",
        "charts/throughput.png",
    ]
    assert all(png.startswith(b"\x89PNG") for png in charts.values())
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", report, re.I)

    document = QTextDocument()
    document.setHtml(report)
    text = document.toPlainText()
    assert "incident snapshot" in text.lower() and "ops" in text
    assert f"{seeded.events:,}" in text  # the events figure
    assert "Failed payments" in text and "Operator actions" in text
    sources = re.findall(r'<img src="(data:image/png;base64,[^"]+)"', report)
    assert len(sources) == 4
    image = document.resource(QTextDocument.ResourceType.ImageResource, QUrl(sources[0]))
    assert image is not None and not image.isNull()  # the chart loads with no network


def test_an_existing_file_needs_force(
    seeded: Seeded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "incident.zip"
    out.write_bytes(b"older snapshot")
    args = ["snapshot", "--config", str(seeded.config), "--out", str(out), "--no-charts"]
    assert main(args) == exit_codes.USAGE
    assert "exists; use --force" in capsys.readouterr().err
    assert out.read_bytes() == b"older snapshot"
    assert main([*args, "--force"]) == exit_codes.OK
    assert zipfile.is_zipfile(out)


def test_default_output_name_in_the_current_directory(
    seeded: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["snapshot", "--config", str(seeded.config), "--no-charts"]) == exit_codes.OK
    written = list(tmp_path.glob("payops-snapshot-ops-*.zip"))
    assert len(written) == 1
    assert re.fullmatch(r"payops-snapshot-ops-\d{8}T\d{6}Z-\d{8}T\d{6}Z\.zip", written[0].name)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--from", "+1h", "--to", "+2h"], "starts in the future"),
        (["--from", "-1h", "--to", "-2h"], "empty range"),
        (["--since", "3d"], "before the retention window"),
        (["--since", "10 minutes"], "not a duration"),
        (["--since", "1h", "--from", "-2h"], "either --since or --from/--to"),
        (["--from", "yesterday"], "not a time"),
        (["--to", "-1h"], "--to needs --from"),
    ],
)
def test_bad_ranges_are_usage_errors(
    seeded: Seeded,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    message: str,
) -> None:
    now = datetime.datetime.now().astimezone()
    resolved = [
        # a time relative to now, written as ISO 8601
        (now + datetime.timedelta(hours=int(option[:-1]))).isoformat(timespec="seconds")
        if re.fullmatch(r"[+-]\d+h", option)
        else option
        for option in options
    ]
    out = tmp_path / "x.zip"
    code = main(["snapshot", "--config", str(seeded.config), "--out", str(out), *resolved])
    assert code == exit_codes.USAGE
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_redis_unreachable_is_exit_3(
    seeded: Seeded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = seeded.write_config(redis_url="redis://127.0.0.1:1/15")
    out = tmp_path / "x.zip"
    code = main(["snapshot", "--config", str(config), "--out", str(out), "--no-charts"])
    assert code == exit_codes.UNAVAILABLE
    err = capsys.readouterr().err
    assert "cannot reach Redis at redis://127.0.0.1:1/15" in err
    assert not out.exists() and list(tmp_path.glob(".x.zip*")) == []


def test_snapshot_times_name_the_zone(
    seeded: Seeded,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The printed range, the report and the manifest show local times with the zone
    named (CET, CEST), never a bare UTC offset; the report keeps its UTC column."""
    out = tmp_path / "zones.zip"
    args = ["snapshot", "--config", str(seeded.config), "--since", "10m", "--out", str(out)]
    with local_zone(monkeypatch, "Europe/Berlin"):
        code = main([*args, "--no-charts"])
    captured = capsys.readouterr()
    assert code == exit_codes.OK, captured.err
    local = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T"
    assert re.search(rf"range\s+{local} → {local} \(10 min\)", captured.out), captured.out
    with zipfile.ZipFile(out) as bundle:
        report = bundle.read("report.html").decode()
        manifest = json.loads(bundle.read("manifest.json"))
    assert re.fullmatch(local, manifest["time_range"]["from_local"])
    assert re.search(rf'id="range-from-local">{local}<', report)
    assert re.search(r'id="range-from-utc">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC<', report)
    assert "UTC+0" not in report and "UTC+0" not in captured.out
