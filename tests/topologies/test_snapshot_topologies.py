"""An incident snapshot of a Redis Cluster (``redis_mode = "cluster"``, the private
three-master cluster) and of a Redis reached over mutual TLS: ``payops snapshot`` over
hundreds of dead letters parked by ``payops dlq park``, an action's audit, flow history
and alerts written through the profile's client; the bundle holds every entry once
(counted by payment id), the history, alert and audit rows, and no card number in any of
its files."""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from app.cli import exit_codes
from app.cli.main import main
from services.alerts.log import AlertLog
from services.alerts.model import AlertEvent
from services.config import load_profile
from services.flow.history import HistoryStore, SecondRow
from services.links.redis_client import make_redis_client
from tests.helpers.dlq_flow import dead_letter
from tests.helpers.snapshot_kit import Bundle

pytestmark = [pytest.mark.integration, pytest.mark.topologies]

PAYMENTS = 300
PAN = "4111111111111111"
ALERT_PAN = "5105105105105100"
HISTORY_S = 600


async def _record_flow(config: str, now: int) -> None:
    """Flow history of the last :data:`HISTORY_S` seconds (spanning buckets, so slots) and
    an alert that fired and resolved, written as the collector writes them."""
    profile = load_profile(config)
    client = make_redis_client(profile.redis_settings, socket_timeout=5)
    try:
        history = HistoryStore.for_profile(client, profile)
        start = now - HISTORY_S - 60
        rows = [
            SecondRow(start + s, {"captured": 5, "failed": 1}, 1, {}, (10.0, 20.0, 30.0))
            for s in range(HISTORY_S)
        ]
        await history.write_seconds(rows)
        await AlertLog(client, profile.redis_prefix).extend(
            [
                AlertEvent(start + 10.0, "failure_rate", "firing", 20.0, f"card {ALERT_PAN}"),
                AlertEvent(start + 70.0, "failure_rate", "resolved", 1.0, "resolved"),
            ]
        )
    finally:
        await client.aclose()


@pytest.fixture(params=["on_cluster", "on_tls_redis"])
def profile_file(request: pytest.FixtureRequest) -> str:
    """A config file whose Redis is the private cluster, or the private Redis over TLS; its
    parker's new-failure-group rule has no baseline (the test's one group alerts)."""
    path: str = request.getfixturevalue(request.param)
    with open(path, "a", encoding="utf-8") as config:
        config.write('[[profiles.t.alerts]]\nkind = "new_failure_group"\nbaseline_s = 0\n')
    return path


def test_a_snapshot_holds_every_entry_once_and_masked(
    profile_file: str,
    amqp_url: str,
    unique_prefix: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    card = {"number": PAN, "cvv": "737", "holder": "A. Tester"}
    dead_letter(amqp_url, unique_prefix, PAYMENTS, card=card, note=f"card {PAN}")
    assert main(["dlq", "park", "--once", "--config", profile_file]) == exit_codes.OK
    assert f"parked {PAYMENTS}, already parked 0" in capsys.readouterr().out
    # An action, for the audit trail and the jobs.
    requeue = ["dlq", "requeue", "--all-matching", "--search", "pay_7", "--yes"]
    assert main([*requeue, "--config", profile_file]) == exit_codes.OK
    said = re.search(r"(\d+) requeued to", capsys.readouterr().out)
    assert said, "the requeue said nothing of what it requeued"
    requeued = int(said.group(1))
    assert requeued > 0
    asyncio.run(_record_flow(profile_file, int(time.time())))
    # A range ends at the last whole second (the one under way holds nothing yet): the
    # action's own second must be over for its records to fall inside.
    time.sleep(math.ceil(time.time()) - time.time() + 0.01)

    out = tmp_path / "incident.zip"
    snapshot = ["snapshot", "--since", "1h", "--out", str(out), "--no-charts"]
    assert main([*snapshot, "--config", profile_file]) == exit_codes.OK, capsys.readouterr().err
    bundle = Bundle(out)

    entries = bundle.jsonl("failed_payments.jsonl")
    assert Counter(e["payment_id"] for e in entries) == Counter(
        {f"pay_{n}": 1 for n in range(PAYMENTS)}
    )
    assert Counter(e["state"] for e in entries) == Counter(
        {"parked": PAYMENTS - requeued, "requeued": requeued}
    )
    assert len(bundle.csv("failed_payments.csv")) == PAYMENTS
    cards = Counter(str(e["body"]["content"]["card"]["number"]) for e in entries)
    assert cards == Counter({"411111******1111": PAYMENTS})  # the bodies are there, masked
    for name, data in bundle.files.items():
        for pan in (PAN, ALERT_PAN):
            assert pan.encode() not in data, f"{pan} in {name}"

    audit = bundle.jsonl("audit.jsonl")
    assert [r["result"] for r in audit] == ["started", f"requeued {requeued}, skipped 0, failed 0"]
    assert len(set(audit[1]["entry_ids"])) == requeued
    assert [job["action"] for job in bundle.jsonl("jobs.jsonl")] == ["requeue"]
    alerts = [a for a in bundle.jsonl("alerts.jsonl") if a["rule"] == "failure_rate"]
    assert [(a["kind"], a["message"]) for a in alerts] == [
        ("firing", "card 510510******5100"),
        ("resolved", "resolved"),
    ]
    # The parker's own alert: a new failure group of the dead letters it parked.
    assert any(a["rule"].startswith("new_failure_group:") for a in bundle.jsonl("alerts.jsonl"))
    throughput = bundle.csv("throughput.csv")
    assert sum(int(row["captured"] or 0) for row in throughput) == 5 * HISTORY_S
    manifest = bundle.manifest
    assert manifest["counts"]["failed_payments"] == PAYMENTS
    assert manifest["counts"]["dead_letters"] == HISTORY_S
