"""Park dead letters and requeue them with ``payops dlq`` over mutual TLS to both RabbitMQ
and Redis, counting by payment id: nothing lost, nothing twice. The tests' own set-up and
checks use the servers' plain listeners; the command is given only TLS URLs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.cli import exit_codes
from app.cli.main import main
from tests.helpers.certs import Certificates
from tests.helpers.dlq_flow import dead_letter, drop_keys, payments_in
from tests.helpers.private_servers import PrivateRabbit, PrivateRedis

pytestmark = [pytest.mark.integration, pytest.mark.topologies]

PAYMENTS = 40


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
    drop_keys([tls_redis.url], redis_prefix)


def test_park_and_requeue_over_mutual_tls_count_by_payment_id(
    over_tls: Callable[..., Path],
    tls_rabbit: PrivateRabbit,
    unique_prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    flow = dead_letter(tls_rabbit.url, unique_prefix, PAYMENTS)
    config = str(over_tls())

    assert main(["dlq", "park", "--once", "--config", config]) == exit_codes.OK
    assert f"{flow.dlq}: parked {PAYMENTS}, already parked 0" in capsys.readouterr().out
    assert main(["dlq", "requeue", "--all-matching", "--yes", "--config", config]) == 0
    assert f"{PAYMENTS} requeued to {flow.work}" in capsys.readouterr().out

    requeued = payments_in(tls_rabbit.url, unique_prefix, flow.work)
    assert requeued == Counter({f"pay_{n}": 1 for n in range(PAYMENTS)})
    assert payments_in(tls_rabbit.url, unique_prefix, flow.dlq) == Counter()
    assert payments_in(tls_rabbit.url, unique_prefix, flow.other) == Counter()


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
