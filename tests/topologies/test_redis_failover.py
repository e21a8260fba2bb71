"""A Sentinel failover (the master killed with ``kill -9``) while ``payops dlq park`` parks
and while a bulk ``payops dlq requeue`` runs, both real subprocesses, with
``redis_min_replicas = 1`` on a master with two replicas: both ride through it to the
promoted replica the sentinel names (the requeue says so, and ends as if nothing had
happened), and counted by payment id nothing is lost or done twice.

Slow (a failover each, thousands of messages): ``make test-topologies``, not ``make test``.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import aio_pika
import orjson
import pytest
from redis.exceptions import RedisError

from app.cli import exit_codes
from services.workbench.actions.jobs import JobState
from services.workbench.model import EntryState
from services.workbench.store import ParkingStore
from tests.helpers.paths import REPO_ROOT
from tests.helpers.private_servers import PrivateSentinel
from tests.helpers.requeue_kit import RequeueScenario, sentinel_settings

pytestmark = [pytest.mark.integration, pytest.mark.topologies, pytest.mark.faults]

WAVE = 500


async def fail_over(servers: PrivateSentinel) -> None:
    """``kill -9`` the master; until a replica is promoted and the other one follows it."""
    await asyncio.to_thread(servers.master.kill)
    promoted = await asyncio.to_thread(servers.wait_for_failover)
    await asyncio.to_thread(servers.wait_for_replicas, 1, 60, promoted)


async def test_a_failover_mid_requeue_moves_every_entry_exactly_once(
    sentinel_two_replicas: PrivateSentinel, amqp_url: str, unique_prefix: str, tmp_path: Path
) -> None:
    servers = sentinel_two_replicas
    killed = servers.master.port
    scenario = RequeueScenario(
        amqp_url, "redis://payops/0", unique_prefix, "failover", tmp_path, n=2000,
        settings=sentinel_settings(servers),
    )  # fmt: skip
    started = time.monotonic()
    try:
        await scenario.park_dead_letters()
        code, out, err = await scenario.requeue_through(lambda: fail_over(servers))
        scenario.log.append(f"failed over from {killed} to {servers.current_master().port}")
        why = "; ".join(scenario.log)
        assert "Traceback" not in err, err
        # One run rides through the failover: it waits for the promoted replica and goes on.
        assert code == exit_codes.OK, (why, out, err)
        assert f"{scenario.n:,} requeued" in out, (why, out)
        assert "Redis failed during the action's" in err, err
        reconnected = re.findall(r"Redis reconnected to the master at \S+:(\d+)", err)
        assert reconnected and any(int(port) != killed for port in reconnected), err
        # Counted by payment id: every entry moved exactly once, none left in doubt.
        delivered = await scenario.drain_work()
        assert delivered == scenario.expected(), f"lost or duplicated: {why}"
        states = await scenario.states()
        assert Counter(states.values()) == Counter({EntryState.REQUEUED: scenario.n}), why
        async with scenario.store() as store:
            assert await store.in_flight(scenario.dlq) == [], why
        code, out, err = await scenario.payops("resolve", "--all-in-doubt", "--dry-run")
        assert code == exit_codes.OK, (why, out, err)
        assert not re.findall(r"^  in doubt: ", out, re.MULTILINE), out
        job = await scenario.last_job()  # its record closed, each payment counted once
        assert job.state is JobState.DONE and job.finished_ms, (why, job)
        assert job.counts["done"] == sum(delivered.values()) == scenario.n, (why, job)
    finally:
        await scenario.delete_queues()
    print(
        f"failover mid-requeue of {scenario.n}: {time.monotonic() - started:.1f} s;",
        *scenario.log,
        f"{len(reconnected)} calls reconnected",
    )


async def _publish(url: str, queue: str, first: int, count: int) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await asyncio.gather(
            *(
                channel.default_exchange.publish(
                    aio_pika.Message(
                        orjson.dumps({"payment_id": f"pay_{i:05d}"}),
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    queue,
                )
                for i in range(first, first + count)
            )
        )
    finally:
        await connection.close()


async def _depth(url: str, queue: str) -> int:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0
    finally:
        await connection.close()


async def _parked(scenario: RequeueScenario) -> int:
    """How many entries the master the sentinel names now holds (0 while there is none)."""
    try:
        async with scenario.store() as store:
            return await store.count(scenario.dlq)
    except (RedisError, OSError):
        return 0


async def _wait_parked(scenario: RequeueScenario, count: int, timeout_s: float = 120) -> int:
    deadline = time.monotonic() + timeout_s
    while (parked := await _parked(scenario)) < count:
        assert time.monotonic() < deadline, f"{parked} of {count} parked after {timeout_s} s"
        await asyncio.sleep(0.02)
    return parked


async def _payment_ids(store: ParkingStore, dlq: str) -> Counter[str]:
    found: Counter[str] = Counter()
    async for batch in store.iter_summaries(dlq):
        found.update(str(summary.payment_id) for summary in batch)
    return found


async def test_a_failover_mid_park_loses_and_parks_twice_nothing(
    sentinel_two_replicas: PrivateSentinel, amqp_url: str, unique_prefix: str, tmp_path: Path
) -> None:
    servers = sentinel_two_replicas
    scenario = RequeueScenario(
        amqp_url, "redis://payops/0", unique_prefix, "failover", tmp_path, n=3 * WAVE,
        settings=sentinel_settings(servers),
    )  # fmt: skip
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    await channel.declare_queue(scenario.dlq, durable=True)
    await connection.close()
    await _publish(amqp_url, scenario.dlq, 0, WAVE)
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "payops"), "dlq", "park", "--config",
        str(scenario.config), cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await _wait_parked(scenario, WAVE)
        await _publish(amqp_url, scenario.dlq, WAVE, WAVE)
        at = await _wait_parked(scenario, WAVE + 1)  # the second wave is being parked
        await fail_over(servers)
        scenario.log.append(f"master killed with {at} parked")
        await _publish(amqp_url, scenario.dlq, 2 * WAVE, WAVE)
        await _wait_parked(scenario, 3 * WAVE)
        deadline = time.monotonic() + 60
        while await _depth(amqp_url, scenario.dlq):  # every parked dead letter acked
            assert time.monotonic() < deadline, "dead letters left unacked in the queue"
            await asyncio.sleep(0.1)
        assert process.returncode is None, "payops dlq park stopped"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        _, err_bytes = await asyncio.wait_for(process.communicate(), 60)
        await scenario.delete_queues()
    err = err_bytes.decode()
    async with scenario.store() as store:
        ids = await _payment_ids(store, scenario.dlq)
    assert ids == scenario.expected(), (scenario.log, err)  # each exactly once
    assert "Traceback" not in err, err
    assert process.returncode == 0, err
    print("failover mid-park:", *scenario.log)
