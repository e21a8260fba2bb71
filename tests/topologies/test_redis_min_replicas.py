"""``redis_min_replicas = 1`` on a private Redis master with one replica: the parker acks a
dead letter, and an action counts its intent, only once ``WAIT 1`` says the replica has it.
With the replica stopped the parker holds its deliveries unacked and says why, an action
publishes nothing, and both go on once the replica is back: each payment once."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from app.cli import exit_codes
from app.cli.main import main
from services.config import load_profile
from services.links.redis_client import make_redis_client
from services.workbench.park_runner import ParkingRunner
from services.workbench.parker import ParkerStats
from services.workbench.store import ParkingStore
from tests.helpers.dlq_flow import dead_letter, drop_keys, payments_in
from tests.helpers.private_servers import PrivateSentinel

pytestmark = [pytest.mark.integration, pytest.mark.topologies]

PAYMENTS = 20


def _config(write_config: Callable[..., Path], amqp_url: str, redis_url: str, prefix: str) -> str:
    return str(
        write_config(
            amqp_url=amqp_url,
            redis_url=redis_url,
            dead_letter_queues=[f"{prefix}dlq"],
            redis_prefix=prefix.rstrip("."),
            operator="replica-tester",
            allow_volatile_store=True,
            redis_min_replicas=1,
        )
    )


def _parked_payments(config: str, capsys: pytest.CaptureFixture[str]) -> Counter[str]:
    assert main(["dlq", "list", "--json", "--config", config]) == exit_codes.OK
    return Counter(row["payment_id"] for row in json.loads(capsys.readouterr().out))


async def _park_while_the_replica_is_away(config: str, servers: PrivateSentinel) -> list[str]:
    """Run a parker whose Redis loses its replica before the first batch: the problems it
    reports while it holds them, until the replica is back and everything is acked."""
    profile = load_profile(config)
    redis = make_redis_client(profile.redis_settings, socket_timeout=10)
    store = ParkingStore(redis, profile.redis_prefix, min_replicas=profile.redis_min_replicas)
    problems: list[str] = []
    progress: list[ParkerStats] = []
    runner = ParkingRunner(
        profile,
        store,
        profile.dead_letter_queues,
        on_progress=progress.append,
        on_problem=lambda text, active: problems.append(text) if active else None,
        redis_backoff=(0.2,),
    )
    await runner.check_store()  # the replica is there when parking starts
    await asyncio.to_thread(servers.replica.stop)
    await asyncio.to_thread(servers.wait_for_replicas, 0)
    task = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(60):
            while not problems:
                await asyncio.sleep(0.05)
        assert progress[-1].acked == 0, "acked without a replica's confirmation"
        assert progress[-1].holding == PAYMENTS
        await asyncio.to_thread(servers.replica.start)
        async with asyncio.timeout(60):
            while not progress or progress[-1].acked < PAYMENTS:
                await asyncio.sleep(0.05)
    finally:
        runner.request_stop()
        await task
        await redis.aclose()
    return problems


def test_without_its_replica_the_parker_holds_the_dead_letters_and_says_why(
    sentinel: PrivateSentinel,
    amqp_url: str,
    write_config: Callable[..., Path],
    unique_prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = _config(write_config, amqp_url, sentinel.master.url, unique_prefix)
    flow = dead_letter(amqp_url, unique_prefix, PAYMENTS)
    try:
        # Parking does not even start on a Redis with fewer replicas than asked for.
        sentinel.replica.stop()
        sentinel.wait_for_replicas(0)
        assert main(["dlq", "park", "--once", "--config", config]) != exit_codes.OK
        assert (
            "redis_min_replicas = 1 needs a connected replica; this Redis has none"
            in capsys.readouterr().err
        )
        sentinel.replica.start()
        sentinel.wait_for_replicas(1)

        problems = asyncio.run(_park_while_the_replica_is_away(config, sentinel))
        assert problems, "the parker never said why it held the dead letters"
        assert f"holding {PAYMENTS} dead letters" in problems[0]
        assert "only 0 of 1 replica confirmed the batch" in problems[0]
        assert "a failover could lose it" in problems[0]
        assert _parked_payments(config, capsys) == Counter({f"pay_{n}": 1 for n in range(PAYMENTS)})
        assert payments_in(amqp_url, unique_prefix, flow.dlq) == Counter()
    finally:
        drop_keys([sentinel.master.url], unique_prefix.rstrip("."))


def test_without_its_replica_an_action_publishes_nothing_and_recovery_releases_it(
    sentinel: PrivateSentinel,
    amqp_url: str,
    write_config: Callable[..., Path],
    unique_prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = _config(write_config, amqp_url, sentinel.master.url, unique_prefix)
    flow = dead_letter(amqp_url, unique_prefix, PAYMENTS)
    everyone = Counter({f"pay_{n}": 1 for n in range(PAYMENTS)})
    try:
        assert main(["dlq", "park", "--once", "--config", config]) == exit_codes.OK
        capsys.readouterr()

        sentinel.replica.stop()
        sentinel.wait_for_replicas(0)
        main(["dlq", "requeue", "--all-matching", "--yes", "--config", config])
        said = capsys.readouterr()
        assert "only 0 of 1 replica confirmed the action's claims" in said.out + said.err
        assert payments_in(amqp_url, unique_prefix, flow.work) == Counter()

        sentinel.replica.start()
        sentinel.wait_for_replicas(1)
        assert main(["dlq", "recover", "--config", config]) == exit_codes.OK
        recovered = capsys.readouterr().out
        assert "in doubt" not in recovered or "0 in doubt" in recovered, recovered
        assert _parked_payments(config, capsys) == everyone
        assert main(["dlq", "requeue", "--all-matching", "--yes", "--config", config]) == 0
        assert f"{PAYMENTS} requeued to {flow.work}" in capsys.readouterr().out
        assert payments_in(amqp_url, unique_prefix, flow.work) == everyone
    finally:
        drop_keys([sentinel.master.url], unique_prefix.rstrip("."))
