"""URLs as they may be shown: passwords redacted, credentials removed, IPv6 kept."""

from __future__ import annotations

from services.links.urls import (
    host_port,
    redact_url,
    scrub,
    url_password,
    url_without_credentials,
)

AMQP_URL = "amqp://snapuser_q7:s3cr3t-Pa55w0rd@mq.internal:5671/payments"


def test_redact_url() -> None:
    assert redact_url("amqp://u:p@h:5672/v") == "amqp://u:***@h:5672/v"
    assert redact_url("redis://:pw@h/0") == "redis://:***@h/0"
    assert redact_url("amqp://h/") == "amqp://h/"


def test_redact_url_keeps_ipv6_brackets() -> None:
    assert redact_url("amqp://u:p@[::1]:5672/") == "amqp://u:***@[::1]:5672/"
    assert redact_url("rediss://:pw@[fe80::1]/0") == "rediss://:***@[fe80::1]/0"
    assert host_port("amqp://u:p@[::1]/", 5672) == "[::1]:5672"


def test_redact_url_never_shows_an_unparseable_url() -> None:
    assert redact_url("amqp://u:p@h:notaport/") == "<unparseable URL>"


def test_urls_lose_every_credential() -> None:
    assert url_without_credentials(AMQP_URL) == "amqp://mq.internal:5671/payments"
    assert url_without_credentials("amqps://ops@mq:5671/%2F") == "amqps://mq:5671/%2F"
    assert url_without_credentials("redis://:pw@redis.internal:6379/2") == (
        "redis://redis.internal:6379/2"
    )
    assert (
        url_without_credentials(
            "rediss://u:p@[::1]:6380/0?password=x&ssl_cert_reqs=none&api_token=t"
        )
        == "rediss://[::1]:6380/0?ssl_cert_reqs=none"
    )
    assert url_without_credentials("unix://u:p@/run/redis.sock?db=3") == (
        "unix:///run/redis.sock?db=3"
    )
    assert url_without_credentials("amqp://h:notaport/") == "<unparseable URL>"


def test_host_port_and_password() -> None:
    assert host_port("amqp://u:p@mq:5671/", 5672) == "mq:5671"
    assert host_port("redis:///0", 6379) == "localhost:6379"
    assert url_password("amqp://u:p%40ss@h/") == "p%40ss"
    assert url_password("amqp://u@h/") is None


def test_scrub() -> None:
    assert scrub("user p%40ss and p@ss", "p%40ss") == "user *** and ***"
