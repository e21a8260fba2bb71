"""Redis behind Sentinel (``redis_mode = "sentinel"``): ``payops dlq`` parks with
``park_ack_after = "replica"``, the master is killed, the sentinel promotes the replica,
and the commands find every parked entry on the new master and requeue each once."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from app.cli import exit_codes
from app.cli.main import main
from tests.helpers.dlq_flow import dead_letter, drop_keys, payments_in
from tests.helpers.private_servers import PrivateSentinel

pytestmark = [pytest.mark.integration, pytest.mark.topologies]

PAYMENTS = 50


def test_parked_entries_survive_a_failover_and_are_requeued_once(
    sentinel: PrivateSentinel,
    amqp_url: str,
    write_config: Callable[..., Path],
    unique_prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    redis_prefix = unique_prefix.rstrip(".")
    config = str(
        write_config(
            amqp_url=amqp_url,
            redis_mode="sentinel",
            redis_sentinels=[sentinel.sentinel],
            redis_sentinel_master=sentinel.master_name,
            redis_url="redis://payops/0",
            dead_letter_queues=[f"{unique_prefix}dlq"],
            redis_prefix=redis_prefix,
            operator="sentinel-tester",
            allow_volatile_store=True,
            park_ack_after="replica",  # acked only once the replica has it
        )
    )
    flow = dead_letter(amqp_url, unique_prefix, PAYMENTS)
    try:
        assert main(["dlq", "park", "--once", "--config", config]) == exit_codes.OK
        assert f"{flow.dlq}: parked {PAYMENTS}, already parked 0" in capsys.readouterr().out

        sentinel.master.kill()
        sentinel.wait_for_failover()

        assert main(["dlq", "list", "--json", "--config", config]) == exit_codes.OK
        rows = json.loads(capsys.readouterr().out)
        assert Counter(row["payment_id"] for row in rows) == Counter(
            {f"pay_{n}": 1 for n in range(PAYMENTS)}
        )
        assert main(["dlq", "requeue", "--all-matching", "--yes", "--config", config]) == 0
        assert f"{PAYMENTS} requeued to {flow.work}" in capsys.readouterr().out
        assert payments_in(amqp_url, unique_prefix, flow.work) == Counter(
            {f"pay_{n}": 1 for n in range(PAYMENTS)}
        )
    finally:
        drop_keys([sentinel.replica.url], redis_prefix)
