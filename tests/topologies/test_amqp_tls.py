"""RabbitMQ over mutual TLS (``amqps://``) from a profile: the flow's link (aio-pika), the
action publisher (pika), the first node that answers, and what a bad certificate says."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from services.config import Profile, load_profile
from services.links.amqp import AmqpLink
from services.links.status import LinkState, LinkStatus
from services.workbench.actions.pika_link import AmqpUnavailable
from services.workbench.actions.publisher import ActionPublisher
from tests.helpers.certs import Certificates
from tests.helpers.private_servers import PrivateRabbit
from tests.helpers.tcp_proxy import free_port
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.topologies]


def _profile(write_config: Callable[..., Path], **settings: object) -> Profile:
    settings.setdefault("redis_url", "redis://127.0.0.1:6379/15")
    return load_profile(write_config(**settings))


def _mutual(certs: Certificates, prefix: str = "amqp_") -> dict[str, object]:
    return {
        f"{prefix}tls_ca": str(certs.ca),
        f"{prefix}tls_cert": str(certs.client_cert),
        f"{prefix}tls_key": str(certs.client_key),
    }


async def _link_status(profile: Profile) -> LinkStatus:
    """The flow's AMQP link of ``profile`` once it connected or failed."""
    statuses: list[LinkStatus] = []

    async def session(_connection: object) -> None:
        await asyncio.Event().wait()

    link = AmqpLink(profile.amqp_endpoint, statuses.append, session, backoff=[30.0])
    task = asyncio.create_task(link.run())
    try:
        await eventually(
            lambda: any(s.state in (LinkState.CONNECTED, LinkState.FAILED) for s in statuses),
            30,
            "the AMQP link to connect or fail",
        )
    finally:
        await link.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return next(s for s in statuses if s.state in (LinkState.CONNECTED, LinkState.FAILED))


async def test_the_flow_link_and_the_publisher_connect_over_mutual_tls(
    tls_rabbit: PrivateRabbit, certs: Certificates, write_config: Callable[..., Path]
) -> None:
    profile = _profile(write_config, amqp_url=tls_rabbit.tls_url, **_mutual(certs, ""))
    assert (await _link_status(profile)).state is LinkState.CONNECTED
    publisher = ActionPublisher(profile.amqp_endpoint)
    try:
        await publisher.connect()
        assert publisher.is_open
    finally:
        await publisher.close()


async def test_the_first_node_that_answers_is_used(
    tls_rabbit: PrivateRabbit, certs: Certificates, write_config: Callable[..., Path]
) -> None:
    gone = f"amqps://guest:guest@127.0.0.1:{free_port()}/"
    profile = _profile(write_config, amqp_urls=[gone, tls_rabbit.tls_url], **_mutual(certs))
    assert profile.amqp_url == gone and profile.amqp_endpoint.urls[1] == tls_rabbit.tls_url
    assert (await _link_status(profile)).state is LinkState.CONNECTED
    publisher = ActionPublisher(profile.amqp_endpoint)
    try:
        await publisher.connect()
        assert publisher.is_open
    finally:
        await publisher.close()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("stranger_ca", "the server's certificate is not signed by amqp_tls_ca={other_ca}"),
        ("stranger_client_cert", "amqp_tls_cert={other_cert}"),
        ("key_of_another_cert", "the client key amqp_tls_key={other_key} does not match"),
    ],
)
async def test_a_bad_certificate_says_which_and_why(
    tls_rabbit: PrivateRabbit,
    certs: Certificates,
    write_config: Callable[..., Path],
    case: str,
    expected: str,
) -> None:
    tls = _mutual(certs)
    if case == "stranger_ca":
        tls["amqp_tls_ca"] = str(certs.other_ca)
    elif case == "stranger_client_cert":
        tls.update(
            amqp_tls_cert=str(certs.other_client_cert), amqp_tls_key=str(certs.other_client_key)
        )
    else:
        tls["amqp_tls_key"] = str(certs.other_client_key)
    profile = _profile(write_config, amqp_url=tls_rabbit.tls_url, **tls)
    wanted = expected.format(
        other_ca=certs.other_ca,
        other_cert=certs.other_client_cert,
        other_key=certs.other_client_key,
    )
    status = await _link_status(profile)
    assert status.state is LinkState.FAILED
    assert status.detail.startswith(f"RabbitMQ TLS (127.0.0.1:{tls_rabbit.tls_port})")
    assert wanted in status.detail
    publisher = ActionPublisher(profile.amqp_endpoint, connect_timeout_s=5)
    with pytest.raises(AmqpUnavailable) as raised:
        await publisher.connect()
    assert str(raised.value).startswith("RabbitMQ TLS (127.0.0.1:") and wanted in str(raised.value)
