"""The profile's connection settings: RabbitMQ's nodes, Redis's mode, TLS files, and the
message each bad combination gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.config import ConfigError, Profile, load_profile
from services.links.tls import TlsSetting

AMQP = "amqp://guest:guest@mq:5672/"
REDIS = "redis://redis:6379/0"


def profile_of(tmp_path: Path, env: dict[str, str] | None = None, **settings: object) -> Profile:
    """The one profile of a file holding ``settings`` (amqp_url and redis_url by default)."""
    if "amqp_urls" not in settings:
        settings.setdefault("amqp_url", AMQP)
    settings.setdefault("redis_url", REDIS)
    lines = ["[profiles.p]", *(f"{key} = {json.dumps(v)}" for key, v in settings.items())]
    path = tmp_path / "payops.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_profile(path, env=env or {})


def files(tmp_path: Path, *names: str) -> list[str]:
    """Empty files named ``names`` under ``tmp_path`` (TLS settings must name real files)."""
    paths = []
    for name in names:
        path = tmp_path / name
        path.write_text("pem\n")
        paths.append(str(path))
    return paths


def test_the_defaults_are_one_node_one_redis_no_tls(tmp_path: Path) -> None:
    profile = profile_of(tmp_path)
    assert profile.amqp_endpoint.urls == (AMQP,) and profile.amqp_endpoint.tls is None
    settings = profile.redis_settings
    assert (settings.mode, settings.url, settings.tls) == ("standalone", REDIS, None)


def test_amqp_urls_list_the_nodes_and_the_first_is_amqp_url(tmp_path: Path) -> None:
    nodes = ["amqp://u:p@mq-1:5672/", "amqp://u:p@mq-2:5672/"]
    profile = profile_of(tmp_path, amqp_urls=nodes)
    assert profile.amqp_endpoint.urls == tuple(nodes) and profile.amqp_url == nodes[0]
    assert profile.amqp_endpoint.display_url == "amqp://u:***@mq-1:5672/ (+1 more)"
    # The environment names the one node to use.
    env = {"PAYOPS_AMQP_URL": "amqp://x:y@elsewhere:5672/"}
    assert profile_of(tmp_path, env, amqp_urls=nodes).amqp_endpoint.urls == (
        "amqp://x:y@elsewhere:5672/",
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"amqp_url": AMQP, "amqp_urls": [AMQP]}, "gives both amqp_url and amqp_urls"),
        ({"amqp_urls": []}, "amqp_urls must be a list of at least one AMQP URL"),
        ({"amqp_urls": [AMQP, "http://mq-2/"]}, "amqp_urls[1] must start with amqp:// or"),
        ({"amqp_urls": [AMQP, "amqps://mq-2/"]}, "mixes amqp:// and amqps://"),
        ({"redis_mode": "replicated"}, 'redis_mode must be "standalone" or "sentinel" or'),
        ({"redis_mode": "sentinel"}, "needs redis_sentinels"),
        (
            {"redis_mode": "sentinel", "redis_sentinels": ["s:x"], "redis_sentinel_master": "m"},
            'redis_sentinels[0] must be "host:port"',
        ),
        ({"redis_sentinels": ["s:26379"]}, 'are for redis_mode = "sentinel"'),
        ({"redis_mode": "cluster", "redis_url": "redis://r:6379/3"}, "only database 0"),
        ({"redis_mode": "cluster", "redis_url": "unix:///r.sock"}, "not a unix socket"),
        ({"redis_tls_ca": "/x"}, "redis_tls_ca is set but redis_url does not use TLS"),
        ({"amqp_tls_cert": "/x"}, "amqp_tls_cert is set but amqp_url does not use TLS"),
        ({"tls_ca": "/x"}, "tls_ca is set but neither amqp_url (amqps://) nor redis_url"),
        ({"redis_url": "rediss://r:6380/0", "tls_ca": "/nowhere/ca.pem"}, "no such file"),
        ({"tls_check_hostname": "yes"}, "tls_check_hostname must be true or false"),
        ({"redis_min_replicas": -1}, "redis_min_replicas must be"),
        ({"redis_mode": "cluster", "redis_min_replicas": 1}, "a Redis Cluster client cannot"),
    ],
)
def test_a_bad_combination_gets_a_clear_message(
    tmp_path: Path, settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        profile_of(tmp_path, **settings)
    assert message in str(raised.value) and "profiles.p" in str(raised.value)


def test_a_tls_key_needs_a_certificate(tmp_path: Path) -> None:
    (key,) = files(tmp_path, "client.key")
    with pytest.raises(ConfigError, match="a TLS key without a certificate for redis"):
        profile_of(tmp_path, redis_url="rediss://r:6380/0", tls_key=key)


def test_sentinel_settings(tmp_path: Path) -> None:
    profile = profile_of(
        tmp_path,
        redis_mode="sentinel",
        redis_sentinels=["s1:26379", "s2", "[::1]:26380"],
        redis_sentinel_master="payops",
        redis_url="redis://:pw@payops/2",
    )
    settings = profile.redis_settings
    assert settings.mode == "sentinel" and settings.sentinel_master == "payops"
    assert settings.sentinels == ("s1:26379", "s2", "[::1]:26380")
    assert settings.target == "master payops via sentinels s1:26379, s2, [::1]:26380"


@pytest.mark.parametrize(
    ("settings", "replicas"),
    [
        ({}, 0),
        ({"park_ack_after": "replica"}, 1),
        ({"redis_min_replicas": 2}, 2),
        ({"redis_min_replicas": 2, "park_ack_after": "replica"}, 2),
        ({"redis_min_replicas": 1, "park_ack_after": "aof"}, 1),
    ],
)
def test_park_ack_after_replica_parks_with_one_replica_at_least(
    tmp_path: Path, settings: dict[str, object], replicas: int
) -> None:
    assert profile_of(tmp_path, **settings).park_wait_replicas == replicas


def test_tls_files_are_shared_and_a_service_may_have_its_own(tmp_path: Path) -> None:
    ca, cert, key, redis_ca = files(tmp_path, "ca.pem", "c.pem", "c.key", "redis-ca.pem")
    profile = profile_of(
        tmp_path,
        amqp_url="amqps://u:p@mq:5671/",
        redis_url="rediss://:pw@r:6380/0",
        tls_ca=ca,
        tls_cert=cert,
        tls_key=key,
        redis_tls_ca=redis_ca,
        tls_check_hostname=False,
    )
    amqp_tls, redis_tls = profile.amqp_endpoint.tls, profile.redis_settings.tls
    assert amqp_tls is not None and redis_tls is not None
    assert amqp_tls.ca == TlsSetting("tls_ca", ca) and amqp_tls.cert == TlsSetting("tls_cert", cert)
    assert redis_tls.ca == TlsSetting("redis_tls_ca", redis_ca)
    assert redis_tls.key == TlsSetting("tls_key", key)
    assert not amqp_tls.check_hostname and not redis_tls.check_hostname


def test_server_name_checking_is_on_by_default_and_tls_keys_apply_to_tls_services_only(
    tmp_path: Path,
) -> None:
    (ca,) = files(tmp_path, "ca.pem")
    profile = profile_of(tmp_path, redis_url="rediss://r:6380/0", tls_ca=ca)
    redis_tls = profile.redis_settings.tls
    assert redis_tls is not None and redis_tls.check_hostname
    assert profile.amqp_endpoint.tls is None  # amqp:// takes no TLS from tls_ca
    assert profile_of(tmp_path, amqp_url="amqps://mq/").amqp_endpoint.tls is not None


def test_the_built_in_config_shows_each_topology() -> None:
    from services.config import build_profile, read_config

    loaded = read_config(None)
    assert {"tls", "sentinel", "cluster"} <= set(loaded.profiles)
    sentinel = build_profile(loaded, "sentinel", {})
    assert sentinel.redis_settings.mode == "sentinel" and len(sentinel.amqp_endpoint.urls) == 3
    with pytest.raises(ConfigError, match=r"tls_ca = '/etc/payops/tls/ca\.pem': no such file"):
        build_profile(loaded, "tls", {})
