"""Park dead letters and requeue them with ``payops dlq`` over mutual TLS to both RabbitMQ
and Redis, counting by payment id: nothing lost, nothing twice. The tests' own set-up and
checks use the servers' plain listeners; the command is given only TLS URLs."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import aio_pika
import orjson
import pytest
import redis.asyncio as aioredis

from app.cli import exit_codes
from app.cli.main import main
from tests.helpers.action_kit import Broker, DeadLetterFlow, payment
from tests.helpers.certs import Certificates
from tests.helpers.private_servers import PrivateRabbit, PrivateRedis

pytestmark = [pytest.mark.integration, pytest.mark.topologies]

PAYMENTS = 40


def _dead_letter(amqp_url: str, prefix: str, count: int) -> DeadLetterFlow:
    """``count`` payments (``pay_0``...) rejected into the flow's DLQ."""

    async def run() -> DeadLetterFlow:
        connection = await aio_pika.connect(amqp_url)
        try:
            broker = Broker(connection, prefix, amqp_url)
            await broker.open()
            flow = DeadLetterFlow(broker, "rejected")
            await flow.declare()
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(flow.payments)
            for n in range(count):
                await exchange.publish(aio_pika.Message(payment(n)), "payment.failed")
            await channel.close()
            await flow.kill(count)
            await broker.drain(flow.other)
            return flow
        finally:
            await connection.close()

    return asyncio.run(run())


def _payments_in(amqp_url: str, prefix: str, queue: str) -> Counter[str]:
    """The payment ids of every message taken off ``queue``."""

    async def run() -> Counter[str]:
        connection = await aio_pika.connect(amqp_url)
        try:
            broker = Broker(connection, prefix, amqp_url)
            records = await broker.drain(queue)
        finally:
            await connection.close()
        return Counter(str(orjson.loads(r.body)["payment_id"]) for r in records)

    return asyncio.run(run())


def _drop_keys(redis_url: str, prefix: str) -> None:
    async def run() -> None:
        client = aioredis.from_url(redis_url)
        try:
            keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
            if keys:
                await client.unlink(*keys)
        finally:
            await client.aclose()

    asyncio.run(run())


@pytest.fixture
def over_tls(
    tls_rabbit: PrivateRabbit,
    tls_redis: PrivateRedis,
    certs: Certificates,
    write_config: Callable[..., Path],
    unique_prefix: str,
) -> Iterator[Callable[..., Path]]:
    """Write a profile that reaches both servers only over mutual TLS (``overrides``
    replace settings); the test's Redis keys are deleted afterwards."""
    redis_prefix = unique_prefix.rstrip(".")

    def write(**overrides: object) -> Path:
        settings: dict[str, object] = {
            "amqp_url": tls_rabbit.tls_url,
            "redis_url": tls_redis.tls_url,
            "tls_ca": str(certs.ca),
            "tls_cert": str(certs.client_cert),
            "tls_key": str(certs.client_key),
            "dead_letter_queues": [f"{unique_prefix}dlq"],
            "redis_prefix": redis_prefix,
            "operator": "tls-tester",
            "allow_volatile_store": True,
        }
        settings.update(overrides)
        return write_config(**settings)

    yield write
    _drop_keys(tls_redis.url, redis_prefix)


def test_park_and_requeue_over_mutual_tls_count_by_payment_id(
    over_tls: Callable[..., Path],
    tls_rabbit: PrivateRabbit,
    unique_prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    flow = _dead_letter(tls_rabbit.url, unique_prefix, PAYMENTS)
    config = str(over_tls())

    assert main(["dlq", "park", "--once", "--config", config]) == exit_codes.OK
    assert f"{flow.dlq}: parked {PAYMENTS}, already parked 0" in capsys.readouterr().out
    assert main(["dlq", "requeue", "--all-matching", "--yes", "--config", config]) == 0
    assert f"{PAYMENTS} requeued to {flow.work}" in capsys.readouterr().out

    requeued = _payments_in(tls_rabbit.url, unique_prefix, flow.work)
    assert requeued == Counter({f"pay_{n}": 1 for n in range(PAYMENTS)})
    assert _payments_in(tls_rabbit.url, unique_prefix, flow.dlq) == Counter()
    assert _payments_in(tls_rabbit.url, unique_prefix, flow.other) == Counter()


def test_a_bad_certificate_is_named_by_the_command(
    over_tls: Callable[..., Path],
    tls_rabbit: PrivateRabbit,
    tls_redis: PrivateRedis,
    certs: Certificates,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = str(over_tls(redis_tls_ca=str(certs.other_ca)))
    assert main(["dlq", "list", "--config", config]) == exit_codes.UNAVAILABLE
    assert (
        f"payops: Redis TLS (127.0.0.1:{tls_redis.tls_port}): the server's certificate is not"
        f" signed by redis_tls_ca={certs.other_ca}"
    ) in capsys.readouterr().err

    config = str(over_tls(amqp_tls_ca=str(certs.other_ca)))
    assert main(["dlq", "park", "--once", "--config", config]) == exit_codes.UNAVAILABLE
    assert (
        f"payops: RabbitMQ TLS (127.0.0.1:{tls_rabbit.tls_port}): the server's certificate is"
        f" not signed by amqp_tls_ca={certs.other_ca}"
    ) in capsys.readouterr().err
