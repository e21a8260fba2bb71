"""Redis over mutual TLS (``rediss://``) from a profile, and what a bad certificate says."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio.connection import SSLConnection

from services.config import load_profile
from services.links.redis import RedisLink
from services.links.redis_client import make_redis_client
from services.links.status import LinkState, LinkStatus
from tests.helpers.certs import Certificates
from tests.helpers.private_servers import PrivateRedis
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.topologies]


def _profile_file(write_config: Callable[..., Path], redis_url: str, **tls: object) -> Path:
    return write_config(amqp_url="amqp://guest:guest@127.0.0.1:5672/", redis_url=redis_url, **tls)


def _mutual(certs: Certificates) -> dict[str, object]:
    return {
        "tls_ca": str(certs.ca),
        "tls_cert": str(certs.client_cert),
        "tls_key": str(certs.client_key),
    }


async def _link_status(path: Path) -> LinkStatus:
    """The RedisLink of the profile in ``path`` once it connected or failed."""
    statuses: list[LinkStatus] = []
    link = RedisLink(load_profile(path).redis_settings, statuses.append, backoff=[30.0])
    task = asyncio.create_task(link.run())
    try:
        await eventually(
            lambda: any(s.state in (LinkState.CONNECTED, LinkState.FAILED) for s in statuses),
            20,
            "the Redis link to connect or fail",
        )
    finally:
        await link.close()
        await asyncio.wait_for(task, 20)
    return next(s for s in statuses if s.state in (LinkState.CONNECTED, LinkState.FAILED))


async def test_a_profile_reaches_redis_over_mutual_tls(
    tls_redis: PrivateRedis, certs: Certificates, write_config: Callable[..., Path]
) -> None:
    path = _profile_file(write_config, tls_redis.tls_url, **_mutual(certs))
    assert (await _link_status(path)).state is LinkState.CONNECTED
    client = make_redis_client(load_profile(path).redis_settings, socket_timeout=5)
    try:
        await client.set("tls-check", b"over tls")
        assert await client.get("tls-check") == b"over tls"
        assert issubclass(client.connection_pool.connection_class, SSLConnection)
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("stranger_ca", "the server's certificate is not signed by tls_ca={other_ca}"),
        ("no_client_cert", "requires a client certificate and refused ours"),
        ("stranger_client_cert", "refused our client certificate tls_cert={other_cert}"),
        ("key_of_another_cert", "the client key tls_key={other_key} does not match"),
        ("other_host_name", "the server's certificate does not name the host"),
    ],
)
async def test_a_bad_certificate_says_which_and_why(
    tls_redis: PrivateRedis,
    certs: Certificates,
    write_config: Callable[..., Path],
    case: str,
    expected: str,
) -> None:
    tls = _mutual(certs)
    url = tls_redis.tls_url
    if case == "stranger_ca":
        tls["tls_ca"] = str(certs.other_ca)
    elif case == "no_client_cert":
        del tls["tls_cert"], tls["tls_key"]
    elif case == "stranger_client_cert":
        tls.update(tls_cert=str(certs.other_client_cert), tls_key=str(certs.other_client_key))
    elif case == "key_of_another_cert":
        tls["tls_key"] = str(certs.other_client_key)
    else:
        url = url.replace("127.0.0.1", "127.0.0.2")
    status = await _link_status(_profile_file(write_config, url, **tls))
    assert status.state is LinkState.FAILED
    assert status.detail.startswith("Redis TLS (127.0.0.")
    assert (
        expected.format(
            other_ca=certs.other_ca,
            other_cert=certs.other_client_cert,
            other_key=certs.other_client_key,
        )
        in status.detail
    )


async def test_server_name_checking_can_be_turned_off(
    tls_redis: PrivateRedis, certs: Certificates, write_config: Callable[..., Path]
) -> None:
    url = tls_redis.tls_url.replace("127.0.0.1", "127.0.0.2")
    path = _profile_file(write_config, url, tls_check_hostname=False, **_mutual(certs))
    assert (await _link_status(path)).state is LinkState.CONNECTED
