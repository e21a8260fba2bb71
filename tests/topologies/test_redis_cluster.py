"""Redis Cluster (``redis_mode = "cluster"``, a private three-master cluster): ``payops dlq``
parks, lists, requeues and audits (the broker is the shared one, under the test's own
names), counted by payment id; ``payops dlq recover`` releases the entries of crashed
runs; an action's lease is refreshed and dropped; the flow history, its lease, the alert
log and the payment events are written and read back."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
import redis.asyncio as aioredis

from app.cli import exit_codes
from app.cli.main import main
from services.alerts.log import AlertLog
from services.alerts.model import AlertEvent
from services.config import Profile, load_profile
from services.flow.history import HistoryLease, HistoryStore, SecondRow
from services.flow.payment_events import PaymentEvent, PaymentEventStore
from services.links.redis_client import make_redis_client
from services.workbench.actions.ledger import ActionLedger
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import crash_runs
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


def _profile(redis_cluster: PrivateRedisCluster, prefix: str) -> Profile:
    """A profile whose Redis is the cluster, its keys under ``prefix``."""
    return Profile(
        name="cluster",
        amqp_url="amqp://guest:guest@127.0.0.1:5672/",
        redis_url=redis_cluster.url,
        redis_mode="cluster",
        redis_prefix=prefix,
    )


async def _crash_runs_over_every_entry(config: str, dlq: str) -> list[str]:
    """Every parked entry of ``dlq`` claimed by runs that crashed (half of them with a lease
    left naming a process that is gone); their run ids."""
    profile = load_profile(config)
    client = make_redis_client(profile.redis_settings, socket_timeout=5)
    try:
        store = ParkingStore(client, profile.redis_prefix)
        entry_ids = [e.entry_id async for batch in store.iter_summaries(dlq) for e in batch]
        assert len(entry_ids) == PAYMENTS
        return await crash_runs(ActionLedger(store), dlq, entry_ids)
    finally:
        await client.aclose()


def test_recovery_releases_every_crashed_run_on_a_redis_cluster(
    on_cluster: str, amqp_url: str, unique_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = dead_letter(amqp_url, unique_prefix, PAYMENTS)
    assert main(["dlq", "park", "--once", "--config", on_cluster]) == exit_codes.OK
    capsys.readouterr()
    asyncio.run(_crash_runs_over_every_entry(on_cluster, flow.dlq))

    assert main(["dlq", "recover", "--json", "--config", on_cluster]) == exit_codes.OK
    report = json.loads(capsys.readouterr().out)
    assert not report["in_doubt"] and not report["in_progress"]
    released = Counter(e["payment_id"] for e in report["released"])
    everyone = Counter({f"pay_{n}": 1 for n in range(PAYMENTS)})
    assert released == everyone
    assert main(["dlq", "list", "--json", "--config", on_cluster]) == exit_codes.OK
    rows = json.loads(capsys.readouterr().out)
    assert Counter(row["state"] for row in rows) == Counter({"parked": PAYMENTS})
    # Released, not sent: one requeue then sends each payment once.
    assert payments_in(amqp_url, unique_prefix, flow.work) == Counter()
    assert main(["dlq", "requeue", "--all-matching", "--yes", "--config", on_cluster]) == 0
    assert f"{PAYMENTS} requeued to {flow.work}" in capsys.readouterr().out
    assert payments_in(amqp_url, unique_prefix, flow.work) == everyone


async def test_an_action_lease_is_refreshed_and_dropped_on_a_redis_cluster(
    redis_cluster: PrivateRedisCluster, unique_prefix: str
) -> None:
    prefix = unique_prefix.rstrip(".")
    # The scripts as a restarted cluster has them: none (they load on their first call).
    for node in redis_cluster.nodes:
        plain = aioredis.from_url(node.url)
        try:
            await plain.script_flush()
        finally:
            await plain.aclose()
    client = make_redis_client(_profile(redis_cluster, prefix).redis_settings, socket_timeout=5)
    try:
        ledger = ActionLedger(ParkingStore(client, prefix))
        dlqs = [f"{unique_prefix}dlq-{n}" for n in range(6)]  # leases in several slots
        token = ledger.lease_token("run-1", {"operator": "cluster-tester"})
        await ledger.acquire("run-1", dlqs, token)
        assert await ledger.refresh("run-1", dlqs, token)
        await ledger.drop("run-1", dlqs, token)
        assert [await client.exists(ledger.lease_key(d, "run-1")) for d in dlqs] == [0] * 6
        assert not await ledger.refresh("run-1", dlqs, token)  # lost: the run must stop
    finally:
        await client.aclose()
        await unlink_prefix([node.url for node in redis_cluster.nodes], prefix)


async def test_history_alerts_and_payment_events_on_a_redis_cluster(
    redis_cluster: PrivateRedisCluster, unique_prefix: str
) -> None:
    prefix = unique_prefix.rstrip(".")
    profile = _profile(redis_cluster, prefix)
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
