"""A three-node RabbitMQ cluster of the test's own, quorum dead-letter and origin queues,
a profile with ``amqp_urls``: a bulk requeue while the node leading the queues is killed,
parking and a retry with a delay while it is down, and a delayed retry whose (quorum)
wait queue's node is killed during the delay; counted by payment id, nothing lost and
nothing twice.

Slow (three nodes start in about 30 s, on two cores): ``make test-topologies`` only.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import orjson
import pytest

from app.cli import exit_codes
from services.workbench.model import EntryState
from tests.helpers.dlq_flow import unlink_prefix
from tests.helpers.private_servers import PrivateRabbitCluster
from tests.helpers.requeue_kit import RequeueScenario

pytestmark = [pytest.mark.integration, pytest.mark.topologies, pytest.mark.faults]


def _scenario(
    cluster: PrivateRabbitCluster,
    redis_url: str,
    prefix: str,
    tmp_path: Path,
    n: int,
    urls: list[str] | None = None,
) -> RequeueScenario:
    """Dead letters of quorum queues declared through the first node (which then leads
    them: RabbitMQ places a new quorum queue's leader on the node the client is on);
    the profile's ``amqp_urls`` are ``urls`` (default: the cluster's, in order)."""
    return RequeueScenario(
        cluster.nodes[0].url, redis_url, prefix, prefix.rstrip("."), tmp_path, n=n,
        settings={"amqp_urls": urls or cluster.urls, "allow_volatile_store": True},
    )  # fmt: skip


async def _cleanup(scenario: RequeueScenario, cluster: PrivateRabbitCluster) -> None:
    scenario.amqp_url = next(node.url for node in cluster.nodes if node.is_running())
    await scenario.delete_queues()
    await unlink_prefix([scenario.redis_url], scenario.redis_prefix)


async def test_a_requeue_goes_on_when_the_node_leading_its_queues_is_killed(
    cluster: PrivateRabbitCluster, redis_url: str, unique_prefix: str, tmp_path: Path
) -> None:
    """The requeue is connected to the node leading the queues, which is killed: it
    reconnects to another and goes on. Its first publishes there can land before the
    queue has a new leader, and RabbitMQ 3.10 then nacks that queue on that channel for
    as long as the node is down (tests/topologies/test_quorum_publish.py): they go again
    on a fresh channel, so no entry fails; only what was in flight is in doubt, and
    resolving it leaves each payment in the queue once."""
    scenario = _scenario(cluster, redis_url, unique_prefix, tmp_path, 2000)
    started = time.monotonic()
    try:
        await scenario.park_dead_letters()
        leader = await asyncio.to_thread(cluster.leader_of, scenario.work)
        assert leader is cluster.nodes[0], leader.nodename

        async def kill_the_leader() -> None:
            await asyncio.to_thread(leader.kill)
            scenario.amqp_url = cluster.nodes[1].url  # the test's own checks go there

        code, out, err = await scenario.requeue_through(kill_the_leader)
        scenario.log.append(f"requeue said: {err.strip().splitlines()[-1:] or out[-200:]}")
        waits = [line for line in err.splitlines() if "publishing them again" in line]
        scenario.log.append(f"{len(waits)} waits for nacked publishes")
        assert "Traceback" not in err, err
        assert code in (exit_codes.OK, exit_codes.FAILED), scenario.log
        # What was in flight on the lost connection is in doubt (the dead node may or may
        # not have taken it); nothing is refused for good: what RabbitMQ nacked while
        # the queue had no leader went again on a fresh channel (none "stay parked").
        assert "stay parked" not in err and "refused" not in out, (out[-2000:], err[-2000:])
        failures = [line for line in out.splitlines() if " failed" in line]
        assert all("in doubt" in line for line in failures), failures
        delivered = await scenario.check_after_fault()
        # Settled and finished by `payops dlq` commands that skip the dead first node.
        await scenario.settle_and_finish(delivered)
    finally:
        await _cleanup(scenario, cluster)
    print(f"leader killed mid-requeue: {time.monotonic() - started:.1f} s;", *scenario.log)


async def test_one_requeue_run_moves_everything_once_while_its_queues_leader_is_killed(
    cluster: PrivateRabbitCluster, redis_url: str, unique_prefix: str, tmp_path: Path
) -> None:
    """The requeue (paced, so the kill lands mid-run) is connected to another node than
    the one leading the queues (the profile lists that one last): one run moves every
    entry, each payment once, none failed. What RabbitMQ nacks meanwhile is published
    again after a back-off, on a fresh channel (it was not enqueued); the number of
    waits is printed."""
    urls = [node.url for node in (*cluster.nodes[1:], cluster.nodes[0])]
    scenario = _scenario(cluster, redis_url, unique_prefix, tmp_path, 1000, urls)
    try:
        await scenario.park_dead_letters()
        leader = await asyncio.to_thread(cluster.leader_of, scenario.work)
        assert leader is cluster.nodes[0], leader.nodename

        async def kill_the_leader() -> None:
            await asyncio.to_thread(leader.kill)
            scenario.amqp_url = cluster.nodes[1].url  # the test's own checks go there

        code, out, err = await scenario.requeue_through(kill_the_leader, "--rate", "250/s")
        waits = [line for line in err.splitlines() if "publishing them again" in line]
        scenario.log.append(f"{len(waits)} waits for nacked publishes")
        assert "Traceback" not in err, err
        assert code == exit_codes.OK, (scenario.log, out[-2000:], err[-3000:])
        assert "failed" not in out, out[-2000:]
        assert await scenario.drain_work() == scenario.expected(), scenario.log
        states = await scenario.states()
        assert Counter(states.values()) == Counter({EntryState.REQUEUED: scenario.n})
    finally:
        await _cleanup(scenario, cluster)
    print("leader killed mid paced requeue:", *scenario.log)


async def _drain_until(scenario: RequeueScenario, count: int, timeout_s: float) -> Counter[str]:
    """The payments taken off the origin queue until ``count`` came (and 3 s more, for
    any that would arrive twice)."""
    deadline = time.monotonic() + timeout_s
    found: Counter[str] = Counter()
    while found.total() < count:
        assert time.monotonic() < deadline, f"{found.total()} of {count} came back"
        found += await scenario.drain_work()
        await asyncio.sleep(0.5)
    await asyncio.sleep(3)  # nothing more arrives later
    return found + await scenario.drain_work()


async def _publish_dead_letters(url: str, queue: str, origin: str, first: int, count: int) -> None:
    """Dead letters of ``origin`` (an ``x-death`` header as RabbitMQ writes one) into
    ``queue``."""
    death = {
        "queue": origin, "reason": "rejected", "count": 1, "exchange": "",
        "routing-keys": [origin], "time": datetime.now(UTC).replace(microsecond=0),
    }  # fmt: skip
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        for i in range(first, first + count):
            body = orjson.dumps({"payment_id": f"pay_{i:05d}", "amount": "1.00"})
            message = aio_pika.Message(
                body,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers={"x-death": [death]},
            )
            await channel.default_exchange.publish(message, queue)
    finally:
        await connection.close()


async def test_parking_and_a_delayed_retry_work_while_the_leading_node_is_down(
    cluster: PrivateRabbitCluster, redis_url: str, unique_prefix: str, tmp_path: Path
) -> None:
    n, more = 300, 200
    scenario = _scenario(cluster, redis_url, unique_prefix, tmp_path, n)
    try:
        await scenario.park_dead_letters()
        leader = await asyncio.to_thread(cluster.leader_of, scenario.dlq)
        await asyncio.to_thread(leader.kill)
        scenario.amqp_url = next(node.url for node in cluster.nodes if node.is_running())

        # Dead letters keep arriving; `payops dlq park` connects to a node that answers.
        await _publish_dead_letters(scenario.amqp_url, scenario.dlq, scenario.work, n, more)
        code, out, err = await scenario.payops("park", "--once")
        assert code == exit_codes.OK, (out, err)
        assert f"parked {more}, already parked 0" in out, out
        states = await scenario.states()
        assert sorted(states) == [f"pay_{i:05d}" for i in range(n + more)]

        # A retry through a wait queue: each payment reaches its origin queue once.
        code, out, err = await scenario.payops("retry", "--all-matching", "--delay", "2", "--yes")
        assert code == exit_codes.OK, (out, err)
        found = await _drain_until(scenario, n + more, 60)
        assert found == Counter({f"pay_{i:05d}": 1 for i in range(n + more)})
    finally:
        await _cleanup(scenario, cluster)


async def test_a_delayed_retry_outlives_the_node_holding_its_wait_queue(
    cluster: PrivateRabbitCluster, redis_url: str, unique_prefix: str, tmp_path: Path
) -> None:
    """On a cluster profile the wait queue is a quorum queue: its leader's node is killed
    while the payments wait, and each still reaches its origin queue once."""
    n, delay_s = 300, 8
    scenario = _scenario(cluster, redis_url, unique_prefix, tmp_path, n)
    try:
        await scenario.park_dead_letters()
        code, out, err = await scenario.payops(
            "retry", "--all-matching", "--delay", str(delay_s), "--yes"
        )
        assert code == exit_codes.OK, (out, err)
        wait_queue = f"payops.delay.{scenario.work}.{delay_s}s.quorum"
        holder = await asyncio.to_thread(cluster.leader_of, wait_queue)
        await asyncio.to_thread(holder.kill)
        scenario.amqp_url = next(node.url for node in cluster.nodes if node.is_running())
        found = await _drain_until(scenario, n, 90)
        assert found == scenario.expected(), f"{found.total()} of {n} came back"
    finally:
        await _cleanup(scenario, cluster)
