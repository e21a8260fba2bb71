"""The workbench on a Redis Cluster: ``payops dlq`` parks, lists, requeues and audits with
``redis_mode = "cluster"`` on a private three-master cluster (the broker is the shared
one, under the test's own names), counted by payment id."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.cli import exit_codes
from app.cli.main import main
from tests.helpers.dlq_flow import dead_letter, drop_keys, payments_in
from tests.helpers.private_servers import PrivateRedisCluster

pytestmark = [pytest.mark.integration, pytest.mark.topologies]

PAYMENTS = 60


@pytest.fixture
def on_cluster(
    redis_cluster: PrivateRedisCluster,
    amqp_url: str,
    write_config: Callable[..., Path],
    unique_prefix: str,
) -> Iterator[str]:
    """A config file whose Redis is the cluster (seeded by one node); keys dropped after."""
    redis_prefix = unique_prefix.rstrip(".")
    path = write_config(
        amqp_url=amqp_url,
        redis_mode="cluster",
        redis_url=redis_cluster.url,
        dead_letter_queues=[f"{unique_prefix}dlq"],
        redis_prefix=redis_prefix,
        operator="cluster-tester",
        allow_volatile_store=True,
    )
    yield str(path)
    drop_keys([node.url for node in redis_cluster.nodes], redis_prefix)


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
