"""Servers of the topology tests' own: a Redis and a RabbitMQ node with mutual TLS.

Each is started once per session on free ports, with certificates the tests make
(:mod:`tests.helpers.certs`); the shared servers on 5672 and 6379 are never used.
Both also listen without TLS, for the tests' own set-up and checks: what is under
test connects only over TLS.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

from tests.helpers.certs import Certificates, make_certificates
from tests.helpers.dlq_flow import drop_keys
from tests.helpers.private_servers import (
    PrivateRabbit,
    PrivateRabbitCluster,
    PrivateRedis,
    PrivateRedisCluster,
    PrivateSentinel,
    ServerTls,
    servers_available,
)
from tests.helpers.requeue_kit import ParkOnSentinel, RequeueScenario


class _Server(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


ServerT = TypeVar("ServerT", bound=_Server)


def _serve(make: Callable[[], ServerT]) -> Iterator[ServerT]:
    """Start the server ``make`` builds, yield it, stop it (skip when this machine has no
    redis-server or rabbitmq-server)."""
    if not servers_available():
        pytest.skip("redis-server and rabbitmq-server are needed for the topology tests")
    server = make()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A CA with a server and a client certificate, and a stranger CA."""
    return make_certificates(tmp_path_factory.mktemp("certs"))


def _server_tls(certs: Certificates) -> ServerTls:
    return ServerTls(certs.server_cert, certs.server_key, certs.ca)


@pytest.fixture(scope="session")
def tls_redis(
    tmp_path_factory: pytest.TempPathFactory, certs: Certificates
) -> Iterator[PrivateRedis]:
    """A private Redis listening with mutual TLS on ``tls_port`` (and plainly on ``port``),
    on 127.0.0.1 and 127.0.0.2 (a name its certificate does not hold)."""
    directory = tmp_path_factory.mktemp("tls-redis")
    bind = ("--bind", "127.0.0.1 127.0.0.2")
    yield from _serve(lambda: PrivateRedis(directory, *bind, tls=_server_tls(certs)))


@pytest.fixture(scope="session")
def tls_rabbit(
    tmp_path_factory: pytest.TempPathFactory, certs: Certificates
) -> Iterator[PrivateRabbit]:
    """A private RabbitMQ node with a mutual-TLS listener on ``tls_port``."""
    directory = tmp_path_factory.mktemp("tls-rabbit")
    yield from _serve(lambda: PrivateRabbit(directory, tls=_server_tls(certs)))


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedisCluster]:
    """A private three-master Redis Cluster (no replicas)."""
    directory = tmp_path_factory.mktemp("redis-cluster")
    yield from _serve(lambda: PrivateRedisCluster(directory))


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[PrivateSentinel]:
    """A private Redis master and replica behind one sentinel (one per test: tests kill the
    master)."""
    yield from _serve(lambda: PrivateSentinel(tmp_path / "sentinel"))


@pytest.fixture
def sentinel_two_replicas(tmp_path: Path) -> Iterator[PrivateSentinel]:
    """A private Redis master and two replicas behind one sentinel: after a failover one
    replica is left to confirm ``WAIT 1``."""
    yield from _serve(lambda: PrivateSentinel(tmp_path / "sentinel-2", replicas=2))


@pytest.fixture(scope="session")
def rabbit_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRabbitCluster]:
    """A private three-node RabbitMQ cluster, once per session (about 30 s to start)."""
    directory = tmp_path_factory.mktemp("rabbit-cluster")
    yield from _serve(lambda: PrivateRabbitCluster(directory))


@pytest.fixture
def cluster(rabbit_cluster: PrivateRabbitCluster) -> Iterator[PrivateRabbitCluster]:
    """:func:`rabbit_cluster`, every node running again after the test (tests stop one)."""
    yield rabbit_cluster
    for node in rabbit_cluster.nodes:
        if not node.is_running():
            node.start()
    rabbit_cluster.wait_running(len(rabbit_cluster.nodes))


@pytest.fixture
def parked_on_sentinel(
    sentinel_two_replicas: PrivateSentinel, amqp_url: str, unique_prefix: str, tmp_path: Path
) -> ParkOnSentinel:
    """``await parked_on_sentinel(n)``: a requeue scenario on :func:`sentinel_two_replicas`
    (``redis_min_replicas = 1``) with ``n`` dead letters parked."""

    async def park(n: int) -> RequeueScenario:
        servers = sentinel_two_replicas
        scenario = RequeueScenario.on_sentinel(servers, amqp_url, unique_prefix, tmp_path, n)
        await scenario.park_dead_letters()
        return scenario

    return park


ConfigWriter = Callable[..., Path]


@pytest.fixture
def write_config(tmp_path: Path) -> ConfigWriter:
    """Write a one-profile config file (``[profiles.t]``) of keyword settings; its path."""
    written = itertools.count()

    def write(**settings: object) -> Path:
        path = tmp_path / f"payops-{next(written)}.toml"
        lines = ["[profiles.t]", *(f"{key} = {json.dumps(v)}" for key, v in settings.items())]
        path.write_text("\n".join(lines) + "\n")
        return path

    return write


@pytest.fixture
def on_cluster(
    redis_cluster: PrivateRedisCluster,
    amqp_url: str,
    write_config: ConfigWriter,
    unique_prefix: str,
) -> Iterator[str]:
    """A config file whose Redis is the cluster (seeded by one node), its DLQ the test's
    own ``<prefix>dlq``; the keys dropped after."""
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


@pytest.fixture
def on_tls_redis(
    tls_redis: PrivateRedis,
    certs: Certificates,
    amqp_url: str,
    write_config: ConfigWriter,
    unique_prefix: str,
) -> Iterator[str]:
    """:func:`on_cluster`'s config with the Redis of :func:`tls_redis` reached over mutual
    TLS; the keys dropped after (over its plain port)."""
    redis_prefix = unique_prefix.rstrip(".")
    path = write_config(
        amqp_url=amqp_url,
        redis_url=tls_redis.tls_url,
        tls_ca=str(certs.ca),
        tls_cert=str(certs.client_cert),
        tls_key=str(certs.client_key),
        dead_letter_queues=[f"{unique_prefix}dlq"],
        redis_prefix=redis_prefix,
        operator="tls-tester",
        allow_volatile_store=True,
    )
    yield str(path)
    drop_keys([tls_redis.url], redis_prefix)
