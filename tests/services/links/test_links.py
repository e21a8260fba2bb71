"""AmqpLink and RedisLink against the real services, a closed port and a proxy that dies."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from aio_pika.abc import AbstractConnection

from services.links.amqp import AmqpLink, describe_error
from services.links.redis import RedisLink
from services.links.status import LinkState, LinkStatus
from tests.helpers.tcp_proxy import TcpProxy
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.integration

FAST = (0.05, 0.1, 0.2)
SECRET = "s3cr3t-Pa55"


async def finish(task: asyncio.Task[None]) -> None:
    """Cancel a link's run(): only CancelledError may come out."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def states(statuses: list[LinkStatus]) -> list[LinkState]:
    return [s.state for s in statuses]


def assert_no_secret(statuses: list[LinkStatus], caplog: pytest.LogCaptureFixture) -> None:
    for status in statuses:
        assert SECRET not in f"{status.target} {status.detail}"
    assert SECRET not in caplog.text


class Sessions:
    def __init__(self) -> None:
        self.connections: list[AbstractConnection] = []

    async def __call__(self, connection: AbstractConnection) -> None:
        self.connections.append(connection)


async def test_amqp_closed_port_fails_with_a_reason_and_keeps_trying(
    caplog: pytest.LogCaptureFixture,
) -> None:
    statuses: list[LinkStatus] = []
    link = AmqpLink(
        f"amqp://guest:{SECRET}@127.0.0.1:1/", statuses.append, Sessions(), backoff=FAST
    )
    task = asyncio.create_task(link.run())
    await eventually(lambda: states(statuses).count(LinkState.FAILED) >= 3)
    assert not task.done()
    failed = [s for s in statuses if s.state is LinkState.FAILED]
    assert failed[0].detail == "connection refused to 127.0.0.1:1"
    assert failed[0].retry_in_s == 0.05
    assert [s.retry_in_s for s in failed[:3]] == [0.05, 0.1, 0.2]
    assert statuses[0].state is LinkState.CONNECTING
    assert failed[0].service == "RabbitMQ"
    assert failed[0].target == "amqp://guest:***@127.0.0.1:1/"
    assert_no_secret(statuses, caplog)
    await finish(task)


async def test_amqp_bad_password(amqp_url: str, caplog: pytest.LogCaptureFixture) -> None:
    statuses: list[LinkStatus] = []
    url = amqp_url.replace("guest:guest", f"guest:{SECRET}")
    link = AmqpLink(url, statuses.append, Sessions(), backoff=FAST)
    task = asyncio.create_task(link.run())
    await eventually(lambda: LinkState.FAILED in states(statuses))
    failed = next(s for s in statuses if s.state is LinkState.FAILED)
    assert failed.detail == "authentication failed (ACCESS_REFUSED)"
    assert_no_secret(statuses, caplog)
    await finish(task)


async def test_amqp_connects_runs_the_session_and_closes(amqp_url: str) -> None:
    statuses: list[LinkStatus] = []
    sessions = Sessions()
    link = AmqpLink(amqp_url, statuses.append, sessions, backoff=FAST)
    task = asyncio.create_task(link.run())
    await eventually(lambda: LinkState.CONNECTED in states(statuses))
    assert len(sessions.connections) == 1
    assert link.connection is sessions.connections[0]
    await link.close()
    await asyncio.wait_for(task, 5)  # close() ends run() normally
    assert sessions.connections[0].is_closed
    assert link.connection is None


async def test_amqp_reconnects_after_the_broker_goes_away(amqp_url: str) -> None:
    proxy = TcpProxy(5672)
    await proxy.start()
    statuses: list[LinkStatus] = []
    sessions = Sessions()
    cancelled = asyncio.Event()

    async def session(connection: AbstractConnection) -> None:
        await sessions(connection)
        try:
            await asyncio.Event().wait()  # a long-running session
        except asyncio.CancelledError:
            cancelled.set()
            raise

    url = amqp_url.replace(":5672", f":{proxy.port}")
    link = AmqpLink(url, statuses.append, session, backoff=FAST)
    task = asyncio.create_task(link.run())
    await eventually(lambda: LinkState.CONNECTED in states(statuses))
    await proxy.stop()
    await eventually(lambda: LinkState.RECONNECTING in states(statuses))
    await asyncio.wait_for(cancelled.wait(), 5)  # the session was cancelled
    lost = next(s for s in statuses if s.state is LinkState.RECONNECTING)
    assert lost.detail
    assert lost.retry_in_s is not None
    # While the proxy is down the retries fail, still as RECONNECTING (it worked before).
    await asyncio.sleep(0.5)
    assert LinkState.FAILED not in states(statuses)
    await proxy.start()
    await eventually(lambda: states(statuses).count(LinkState.CONNECTED) == 2)
    assert len(sessions.connections) == 2
    await finish(task)
    assert sessions.connections[1].is_closed
    await proxy.stop()


async def test_amqp_session_failure_reconnects(amqp_url: str) -> None:
    statuses: list[LinkStatus] = []
    calls: list[AbstractConnection] = []

    async def session(connection: AbstractConnection) -> None:
        calls.append(connection)
        if len(calls) == 1:
            raise RuntimeError("tap set-up failed")

    link = AmqpLink(amqp_url, statuses.append, session, backoff=FAST)
    task = asyncio.create_task(link.run())
    await eventually(lambda: len(calls) == 2)
    lost = next(s for s in statuses if s.state is LinkState.RECONNECTING)
    assert lost.detail == "RuntimeError: tap set-up failed"
    assert calls[0].is_closed
    await finish(task)


def test_describe_error() -> None:
    assert describe_error(ConnectionRefusedError(111, "x"), "h:1") == "connection refused to h:1"
    assert describe_error(TimeoutError(), "h:1") == "timed out connecting to h:1"
    group = ExceptionGroup("g", [ConnectionResetError(104, "reset")])
    assert describe_error(group, "h:1") == "connection to h:1 was reset"


async def test_redis_closed_port_then_right_port(redis_url: str) -> None:
    statuses: list[LinkStatus] = []
    link = RedisLink(f"redis://:{SECRET}@127.0.0.1:1/15", statuses.append, backoff=FAST)
    task = asyncio.create_task(link.run())
    await eventually(lambda: states(statuses).count(LinkState.FAILED) >= 2)
    failed = next(s for s in statuses if s.state is LinkState.FAILED)
    assert failed.service == "Redis"
    assert failed.detail == "connection refused to 127.0.0.1:1"
    assert failed.retry_in_s == 0.05
    assert SECRET not in failed.target
    assert link.client is None
    await finish(task)

    statuses.clear()
    good = RedisLink(redis_url, statuses.append, backoff=FAST)
    task = asyncio.create_task(good.run())
    await eventually(lambda: LinkState.CONNECTED in states(statuses))
    assert good.client is not None
    assert await good.client.ping()
    await good.close()
    await asyncio.wait_for(task, 5)
    assert good.client is None


async def test_redis_notices_loss_and_comes_back(redis_url: str) -> None:
    proxy = TcpProxy(6379)
    await proxy.start()
    statuses: list[LinkStatus] = []
    url = redis_url.replace(":6379", f":{proxy.port}")
    link = RedisLink(url, statuses.append, backoff=FAST, ping_interval_s=0.1, timeout_s=1.0)
    task = asyncio.create_task(link.run())
    await eventually(lambda: LinkState.CONNECTED in states(statuses))
    await proxy.stop()
    await eventually(lambda: LinkState.RECONNECTING in states(statuses))
    assert link.client is None
    lost = next(s for s in statuses if s.state is LinkState.RECONNECTING)
    assert lost.detail
    await proxy.start()
    await eventually(lambda: states(statuses).count(LinkState.CONNECTED) == 2)
    assert link.client is not None
    await finish(task)
    await proxy.stop()
