"""Redis Cluster (``redis_mode = "cluster"``, a private three-master cluster): ``payops dlq``
parks, lists, requeues and audits (the broker is the shared one, under the test's own
names), counted by payment id; the flow history, its lease, the alert log and the
payment events are written and read back."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from app.cli import exit_codes
from app.cli.main import main
from services.alerts.log import AlertLog
from services.alerts.model import AlertEvent
from services.config import Profile
from services.flow.history import HistoryLease, HistoryStore, SecondRow
from services.flow.payment_events import PaymentEvent, PaymentEventStore
from services.links.redis_client import make_redis_client
from tests.helpers.dlq_flow import dead_letter, payments_in, unlink_prefix
from tests.helpers.private_servers import PrivateRedisCluster

pytestmark = [pytest.mark.integration, pytest.mark.topologies]

PAYMENTS = 60


def test_park_list_requeue_and_audit_on_a_redis_cluster(
    on_cluster: str, amqp_url: str, unique_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = dead_letter(amqp_url, unique_prefix, PAYMENTS)

    assert main(["dlq", "park", "--once", "--config", on_cluster]) == exit_codes.OK
    assert f"{flow.dlq}: parked {PAYMENTS}, already parked 0" in capsys.readouterr().out
    assert main(["dlq", "list", "--json", "--config", on_cluster]) == exit_codes.OK
    rows = json.loads(capsys.readouterr().out)
    assert sorted(row["payment_id"] for row in rows) == sorted(f"pay_{n}" for n in range(PAYMENTS))

    assert main(["dlq", "requeue", "--all-matching", "--yes", "--config", on_cluster]) == 0
    assert f"{PAYMENTS} requeued to {flow.work}" in capsys.readouterr().out
    requeued = payments_in(amqp_url, unique_prefix, flow.work)
    assert requeued == Counter({f"pay_{n}": 1 for n in range(PAYMENTS)})

    # Nothing twice: a second requeue finds nothing parked.
    assert main(["dlq", "requeue", "--all-matching", "--yes", "--config", on_cluster]) == 0
    capsys.readouterr()
    assert payments_in(amqp_url, unique_prefix, flow.work) == Counter()
    assert main(["dlq", "audit", "--config", on_cluster]) == exit_codes.OK
    assert "requeue" in capsys.readouterr().out


async def test_history_alerts_and_payment_events_on_a_redis_cluster(
    redis_cluster: PrivateRedisCluster, unique_prefix: str
) -> None:
    prefix = unique_prefix.rstrip(".")
    profile = Profile(
        name="cluster",
        amqp_url="amqp://guest:guest@127.0.0.1:5672/",
        redis_url=redis_cluster.url,
        redis_mode="cluster",
        redis_prefix=prefix,
    )
    client = make_redis_client(profile.redis_settings, socket_timeout=5)
    try:
        lease = HistoryLease(client, prefix, "holder-a")
        assert await lease.acquire() and await lease.renew() and await lease.holder() == "holder-a"

        history = HistoryStore.for_profile(client, profile)
        start = 1_800_000_000
        rows = [SecondRow(start + s, {"ok": s}, 0, {}, (None, None, None)) for s in range(3600)]
        await history.write_seconds(rows)  # spans several buckets, in several slots
        read = await history.read_rows(start, start + 3600)
        assert [row.status_counts.get("ok", 0) for row in read] == list(range(3600))

        log = AlertLog(client, prefix)
        await log.extend([AlertEvent(start + 1.0, "failure_rate", "firing", 7.0, "7 %")])

        events = PaymentEventStore.for_profile(client, profile)
        sent = [PaymentEvent(f"pay_{n}", 1_800_000_000_000 + n, "failed") for n in range(700)]
        assert await events.append(sent) == 700  # one script call per slot's batch
        assert await events.events("pay_123") == [sent[123]]
        assert await lease.release()
    finally:
        await client.aclose()
        await unlink_prefix([node.url for node in redis_cluster.nodes], prefix)
