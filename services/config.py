"""Configuration: TOML files with named profiles, with secrets from the environment."""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from resources import resource_path
from services.alerts.rules import (
    PARKING_RULE_KINDS,
    RULE_KINDS,
    AlertRule,
    NewFailureGroupRule,
    default_rules,
    failure_group_rule_from_table,
    rule_from_table,
)
from services.links.endpoints import (
    REDIS_MODES,
    SENTINEL_PORT,
    AmqpEndpoint,
    RedisSettings,
    amqp_uses_tls,
    parse_host_port,
    redis_uses_tls,
)
from services.links.tls import TlsFiles, TlsSetting
from services.links.urls import redact_url

ENV_CONFIG = "PAYOPS_CONFIG"
ENV_PROFILE = "PAYOPS_PROFILE"
ENV_AMQP_URL = "PAYOPS_AMQP_URL"
ENV_REDIS_URL = "PAYOPS_REDIS_URL"
CONFIG_FILE_NAME = "config.toml"
PARK_ACK_AFTER = ("write", "aof", "replica")
"""When the parker acks a parked batch (see services.workbench.durability)."""


def replicas_to_confirm(park_ack_after: str, redis_min_replicas: int) -> int:
    """How many replicas ``WAIT`` must confirm before the parker acks a parked batch:
    ``redis_min_replicas``, and at least one with ``park_ack_after = "replica"`` (the one
    place that says so). An action's intent waits for ``redis_min_replicas`` alone."""
    return max(redis_min_replicas, 1 if park_ack_after == "replica" else 0)


TLS_FILES = ("ca", "cert", "key")
"""The TLS file settings: ``tls_ca`` for both services, ``redis_tls_ca``/``amqp_tls_ca`` for one."""


class ConfigError(Exception):
    """A configuration problem, with a message that names the file and the key."""


@dataclass(frozen=True)
class FieldPaths:
    """Dotted paths into a JSON body where the payment fields live."""

    payment_id: str = "payment_id"
    merchant: str = "merchant"
    amount: str = "amount"
    currency: str = "currency"
    status: str = "status"
    timestamp: str = "created_at"
    reason: str = "reason"  # why a failure event failed (counted per second in the history)
    cause_headers: tuple[str, ...] = ()
    """Headers holding a dead letter's failure message, tried before the framework
    defaults (Spring AMQP, MassTransit, NServiceBus: services.workbench.cause)."""
    cause_paths: tuple[str, ...] = ()
    """Dotted paths into a dead letter's JSON body holding its failure message."""

    @property
    def id_paths(self) -> tuple[str, ...]:
        """The paths that hold identifiers: shown as ids, not masked as card numbers
        (the rule: :mod:`services.masking.json`)."""
        return (self.payment_id,)


@dataclass(frozen=True)
class TapBinding:
    """One binding of the console's tap queue."""

    exchange: str
    routing_key: str = "#"

    @classmethod
    def parse(cls, text: str) -> TapBinding:
        """``"exchange"`` binds with ``#``; ``"exchange:key"`` binds with ``key``."""
        exchange, sep, key = text.partition(":")
        return cls(exchange, key if sep else "#")

    def __str__(self) -> str:
        return self.exchange if self.routing_key == "#" else f"{self.exchange}:{self.routing_key}"


@dataclass(frozen=True)
class Profile:
    """One named profile: where the broker and Redis are and what to watch."""

    name: str
    amqp_url: str
    redis_url: str
    amqp_urls: tuple[str, ...] = ()
    """The broker's nodes, tried in order (empty: ``amqp_url`` alone)."""
    redis_mode: str = "standalone"
    """``standalone``, ``sentinel`` or ``cluster`` (see services.links.redis_client)."""
    redis_sentinels: tuple[str, ...] = ()
    redis_sentinel_master: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    redis_tls_ca: str | None = None
    redis_tls_cert: str | None = None
    redis_tls_key: str | None = None
    amqp_tls_ca: str | None = None
    amqp_tls_cert: str | None = None
    amqp_tls_key: str | None = None
    tls_check_hostname: bool = True
    tap_exchanges: tuple[TapBinding, ...] = ()
    watch_queues: tuple[str, ...] = ()
    dead_letter_queues: tuple[str, ...] = ()
    failure_statuses: tuple[str, ...] = ("failed",)
    success_statuses: tuple[str, ...] = ("captured",)
    """Event statuses that settle a replayed payment's outcome as ``succeeded``."""
    declined_statuses: tuple[str, ...] = ("declined",)
    """Event statuses that settle a replayed payment's outcome as ``declined``."""
    outcome_timeout_s: float = 600.0
    """How long a replayed entry waits for its outcome before it is ``no outcome``."""
    fields: FieldPaths = field(default_factory=FieldPaths)
    tap_max_length: int = 50_000
    tap_expires_s: int = 60
    depth_poll_interval_s: float = 1.0
    redis_prefix: str = "payops"
    operator: str | None = None
    read_only: bool = False
    allow_volatile_store: bool = False
    """Park even into a Redis that can lose what is parked (see workbench.durability)."""
    park_ack_after: str = "write"
    """Ack a parked batch once Redis has it in memory ("write"), in its AOF ("aof") or on a
    replica ("replica")."""
    redis_min_replicas: int = 0
    """Replicas that must confirm (``WAIT``) a parked batch before it is acked (see
    :attr:`park_wait_replicas`), and an action's intent before it publishes."""
    cancel_exchange: str | None = None
    cancel_routing_key: str = "payment.cancelled"
    history_retention_h: float = 24.0
    job_retention_days: float = 30.0
    """How long a job that is over (done, cancelled, stopped) is kept in Redis with its
    selection and outcome counters; running and paused jobs are kept until they end."""
    payment_events: bool = True
    """Record each payment's flow events in Redis (``payops trace``, the Timeline)."""
    payment_events_recent_min: float = 15.0
    """How long an ordinary payment's events are kept (minutes after its latest event); a
    payment that failed, was dead-lettered or acted on is kept for the retention window."""
    alert_rules: tuple[AlertRule, ...] | None = None  # None: the default rules
    failure_group_alert: NewFailureGroupRule | None = field(default_factory=NewFailureGroupRule)
    """The ``new_failure_group`` rule the parker judges (None: off)."""
    source: str = "<built-in>"

    @property
    def history_retention_s(self) -> int:
        """How long the per-second flow history is kept, in seconds."""
        return round(self.history_retention_h * 3600)

    @property
    def job_retention_s(self) -> int:
        """How long a job that is over is kept, in seconds."""
        return max(1, round(self.job_retention_days * 86400))

    @property
    def payment_events_recent_s(self) -> int:
        """How long an ordinary payment's flow events are kept, in seconds."""
        return round(self.payment_events_recent_min * 60)

    @property
    def park_wait_replicas(self) -> int:
        """The replicas ``WAIT`` must confirm before the parker acks (see
        :func:`replicas_to_confirm`)."""
        return replicas_to_confirm(self.park_ack_after, self.redis_min_replicas)

    @property
    def alerts(self) -> tuple[AlertRule, ...]:
        """The alert rules in force: the configured ones, or the defaults."""
        if self.alert_rules is not None:
            return self.alert_rules
        return default_rules(self.failure_statuses, self.dead_letter_queues, self.watch_queues)

    @property
    def amqp_display_url(self) -> str:
        """The AMQP URL with any password removed, safe to show and log."""
        return redact_url(self.amqp_url)

    @property
    def redis_display_url(self) -> str:
        """The Redis URL with any password removed, safe to show and log."""
        return redact_url(self.redis_url)

    @property
    def amqp_endpoint(self) -> AmqpEndpoint:
        """Where RabbitMQ is: its nodes and, for ``amqps://``, the TLS files."""
        urls = self.amqp_urls or (self.amqp_url,)
        return AmqpEndpoint(urls, self.tls_files("amqp") if amqp_uses_tls(urls[0]) else None)

    @property
    def redis_settings(self) -> RedisSettings:
        """Where Redis is: the mode, the URL, the sentinels and, for ``rediss://``, TLS."""
        tls = self.tls_files("redis") if redis_uses_tls(self.redis_url) else None
        return RedisSettings(
            self.redis_url, self.redis_mode, self.redis_sentinels, self.redis_sentinel_master, tls
        )

    def tls_files(self, service: str) -> TlsFiles:
        """The TLS files of ``service`` (``"redis"`` or ``"amqp"``): its own settings where
        given (``redis_tls_ca``), else the shared ones (``tls_ca``)."""
        chosen: dict[str, TlsSetting | None] = {}
        for part in TLS_FILES:
            own_key, shared_key = f"{service}_tls_{part}", f"tls_{part}"
            own, shared = getattr(self, own_key), getattr(self, shared_key)
            chosen[part] = (
                TlsSetting(own_key, own)
                if own
                else TlsSetting(shared_key, shared)
                if shared
                else None
            )
        return TlsFiles(chosen["ca"], chosen["cert"], chosen["key"], self.tls_check_hostname)


@dataclass(frozen=True)
class LoadedConfig:
    """A parsed config file: its path, its default profile and its profile names."""

    path: Path | None
    default_profile: str | None
    profiles: Mapping[str, Mapping[str, Any]]

    @property
    def label(self) -> str:
        """How to name this file in messages."""
        return str(self.path) if self.path else "<built-in default config>"


def user_config_path() -> Path:
    """The platform's per-user config file for PayOps."""
    return Path(platformdirs.user_config_dir("payops")) / CONFIG_FILE_NAME


def find_config_file(
    explicit: str | os.PathLike[str] | None, env: Mapping[str, str]
) -> Path | None:
    """Which config file to read: --config, then $PAYOPS_CONFIG, then the user file.

    Returns None when none is given and the user file does not exist (the
    built-in demo config is used then).
    """
    if explicit:
        return Path(explicit)
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG])
    candidate = user_config_path()
    return candidate if candidate.is_file() else None


def read_config(path: Path | None) -> LoadedConfig:
    """Parse a config file (or the built-in default when ``path`` is None)."""
    real = path or resource_path("default_config.toml")
    label = str(path) if path else "<built-in default config>"
    try:
        raw = real.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {label} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {label} is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(f"config file {label} cannot be read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {label} is not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {label} is not valid TOML: {exc}") from None
    _reject_unknown(data, {"default_profile", "profiles"}, "", label)
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict) or not profiles:
        raise ConfigError(f"config file {label}: 'profiles' must hold at least one [profiles.NAME]")
    for name, body in profiles.items():
        if not isinstance(body, dict):
            raise ConfigError(f"config file {label}: profiles.{name} must be a table")
    default = data.get("default_profile")
    if default is not None and not isinstance(default, str):
        raise ConfigError(f"config file {label}: default_profile must be a string")
    return LoadedConfig(path, default, profiles)


def load_profile(
    config: str | os.PathLike[str] | None = None,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Profile:
    """Find the config file, pick the profile and validate it."""
    env = os.environ if env is None else env
    loaded = read_config(find_config_file(config, env))
    name = pick_profile_name(loaded, profile or env.get(ENV_PROFILE))
    return build_profile(loaded, name, env)


def pick_profile_name(loaded: LoadedConfig, requested: str | None) -> str:
    """The profile to use: the requested one, the file's default, or its only one."""
    names = sorted(loaded.profiles)
    if requested:
        if requested not in loaded.profiles:
            raise ConfigError(
                f"config file {loaded.label}: no profile named '{requested}'"
                f" (profiles: {', '.join(names)})"
            )
        return requested
    if loaded.default_profile:
        if loaded.default_profile not in loaded.profiles:
            raise ConfigError(
                f"config file {loaded.label}: default_profile '{loaded.default_profile}'"
                f" names no profile (profiles: {', '.join(names)})"
            )
        return loaded.default_profile
    if len(names) == 1:
        return names[0]
    raise ConfigError(
        f"config file {loaded.label}: several profiles ({', '.join(names)}) and no"
        " default_profile; choose one with --profile"
    )


RULE_KIND_NAMES = (*RULE_KINDS, *PARKING_RULE_KINDS)
_PROFILE_KEYS = (
    {f.name for f in fields(Profile)} - {"name", "source", "alert_rules", "failure_group_alert"}
) | {
    "alerts",
    "alert_defaults",
}
_FIELD_KEYS = {f.name for f in fields(FieldPaths)}
_FIELD_LIST_KEYS = frozenset({"cause_headers", "cause_paths"})


def build_profile(loaded: LoadedConfig, name: str, env: Mapping[str, str]) -> Profile:
    """Validate ``profiles.NAME`` of a loaded file into a Profile."""
    raw = dict(loaded.profiles[name])
    where = f"profiles.{name}"
    checker = _Checker(loaded.label, where)
    _reject_unknown(raw, _PROFILE_KEYS, where, loaded.label)

    amqp_urls = tuple(checker.string_list(raw, "amqp_urls"))
    if amqp_urls and "amqp_url" in raw:
        raise ConfigError(
            f"config file {loaded.label}: {where} gives both amqp_url and amqp_urls;"
            " keep amqp_urls (the cluster's nodes) or amqp_url (one node)"
        )
    if "amqp_urls" in raw and not amqp_urls:
        raise checker.fail("amqp_urls", "a list of at least one AMQP URL", raw["amqp_urls"])
    amqp_url = env.get(ENV_AMQP_URL) or (
        amqp_urls[0] if amqp_urls else checker.optional_string(raw, "amqp_url")
    )
    if env.get(ENV_AMQP_URL):
        amqp_urls = ()  # the environment names the one node to use
    redis_url = env.get(ENV_REDIS_URL) or checker.optional_string(raw, "redis_url")
    if not amqp_url:
        raise ConfigError(
            f"config file {loaded.label}: {where}.amqp_url is missing"
            f" (set it in the file or in {ENV_AMQP_URL})"
        )
    if not redis_url:
        raise ConfigError(
            f"config file {loaded.label}: {where}.redis_url is missing"
            f" (set it in the file or in {ENV_REDIS_URL})"
        )
    for number, url in enumerate(amqp_urls or (amqp_url,)):
        key = f"{where}.amqp_urls[{number}]" if amqp_urls else f"{where}.amqp_url"
        _check_url_scheme(url, ("amqp", "amqps"), key, loaded.label)
    if len({amqp_uses_tls(url) for url in amqp_urls}) > 1:
        raise ConfigError(
            f"config file {loaded.label}: {where}.amqp_urls mixes amqp:// and amqps://;"
            " use one scheme for all of the cluster's nodes"
        )
    _check_url_scheme(redis_url, ("redis", "rediss", "unix"), f"{where}.redis_url", loaded.label)
    links = _link_settings(raw, checker, amqp_url, redis_url)

    fields_raw = raw.get("fields", {})
    if not isinstance(fields_raw, dict):
        raise ConfigError(f"config file {loaded.label}: {where}.fields must be a table")
    _reject_unknown(fields_raw, _FIELD_KEYS, f"{where}.fields", loaded.label)
    field_checker = _Checker(loaded.label, f"{where}.fields")
    field_values: dict[str, Any] = {
        k: tuple(field_checker.string_list(fields_raw, k))
        if k in _FIELD_LIST_KEYS
        else field_checker.string(fields_raw, k)
        for k in fields_raw
    }
    field_paths = FieldPaths(**field_values)

    defaults = Profile(name=name, amqp_url="", redis_url="")
    bindings = tuple(TapBinding.parse(text) for text in checker.string_list(raw, "tap_exchanges"))
    profile = Profile(
        name=name,
        amqp_url=amqp_url,
        redis_url=redis_url,
        amqp_urls=amqp_urls,
        **links,
        tap_exchanges=bindings,
        watch_queues=tuple(checker.string_list(raw, "watch_queues")),
        dead_letter_queues=tuple(checker.string_list(raw, "dead_letter_queues")),
        failure_statuses=tuple(
            checker.string_list(raw, "failure_statuses", default=defaults.failure_statuses)
        ),
        success_statuses=tuple(
            checker.string_list(raw, "success_statuses", default=defaults.success_statuses)
        ),
        declined_statuses=tuple(
            checker.string_list(raw, "declined_statuses", default=defaults.declined_statuses)
        ),
        outcome_timeout_s=checker.number(raw, "outcome_timeout_s", defaults.outcome_timeout_s, 1),
        fields=field_paths,
        tap_max_length=checker.integer(raw, "tap_max_length", defaults.tap_max_length, 1),
        tap_expires_s=checker.integer(raw, "tap_expires_s", defaults.tap_expires_s, 1),
        depth_poll_interval_s=checker.number(
            raw, "depth_poll_interval_s", defaults.depth_poll_interval_s, 0.1
        ),
        redis_prefix=checker.optional_string(raw, "redis_prefix") or defaults.redis_prefix,
        operator=checker.optional_string(raw, "operator"),
        read_only=checker.boolean(raw, "read_only", defaults.read_only),
        allow_volatile_store=checker.boolean(
            raw, "allow_volatile_store", defaults.allow_volatile_store
        ),
        park_ack_after=checker.choice(
            raw, "park_ack_after", defaults.park_ack_after, PARK_ACK_AFTER
        ),
        cancel_exchange=checker.optional_string(raw, "cancel_exchange"),
        cancel_routing_key=checker.optional_string(raw, "cancel_routing_key")
        or defaults.cancel_routing_key,
        history_retention_h=checker.number(
            raw, "history_retention_h", defaults.history_retention_h, 0.25
        ),
        job_retention_days=checker.number(
            raw, "job_retention_days", defaults.job_retention_days, 0.01
        ),
        payment_events=checker.boolean(raw, "payment_events", defaults.payment_events),
        payment_events_recent_min=checker.number(
            raw, "payment_events_recent_min", defaults.payment_events_recent_min, 1
        ),
        source=loaded.label,
    )
    rules = _alert_rules(raw, profile, checker)
    profile = replace(profile, failure_group_alert=_failure_group_rule(raw, checker))
    return profile if rules is None else replace(profile, alert_rules=rules)


def _link_settings(
    raw: Mapping[str, Any], checker: _Checker, amqp_url: str, redis_url: str
) -> dict[str, Any]:
    """The Redis topology and TLS settings of a profile, checked against its URLs."""
    mode = checker.choice(raw, "redis_mode", "standalone", REDIS_MODES)
    sentinels = tuple(checker.string_list(raw, "redis_sentinels"))
    master = checker.optional_string(raw, "redis_sentinel_master")
    if mode == "sentinel":
        if not sentinels or not master:
            raise ConfigError(
                f'config file {checker.label}: {checker.where}: redis_mode = "sentinel" needs'
                ' redis_sentinels (["host:26379", ...]) and redis_sentinel_master (its name)'
            )
        for number, text in enumerate(sentinels):
            try:
                parse_host_port(text, SENTINEL_PORT)
            except ValueError:
                raise checker.fail(f"redis_sentinels[{number}]", '"host:port"', text) from None
    elif sentinels or master:
        raise ConfigError(
            f"config file {checker.label}: {checker.where}: redis_sentinels and"
            f' redis_sentinel_master are for redis_mode = "sentinel" (the mode is "{mode}")'
        )
    if mode != "standalone" and redis_url.startswith("unix://"):
        raise ConfigError(
            f'config file {checker.label}: {checker.where}: redis_mode = "{mode}" needs a'
            " redis:// or rediss:// redis_url, not a unix socket"
        )
    if mode == "cluster" and urlsplit(redis_url).path.strip("/") not in ("", "0"):
        raise ConfigError(
            f"config file {checker.label}: {checker.where}.redis_url: a Redis Cluster has only"
            f" database 0 (got {redact_url(redis_url)!r})"
        )
    min_replicas = checker.integer(raw, "redis_min_replicas", 0, 0)
    if mode == "cluster" and min_replicas:
        raise ConfigError(
            f"config file {checker.label}: {checker.where}: redis_min_replicas is for"
            ' redis_mode = "standalone" or "sentinel": a Redis Cluster client cannot WAIT on'
            " the connection that wrote"
        )
    tls: dict[str, Any] = {"tls_check_hostname": checker.boolean(raw, "tls_check_hostname", True)}
    uses = {"redis": redis_uses_tls(redis_url), "amqp": amqp_uses_tls(amqp_url)}
    for part in TLS_FILES:
        for service, key in ((None, f"tls_{part}"), *((s, f"{s}_tls_{part}") for s in uses)):
            path = checker.optional_string(raw, key)
            if path is not None and service is not None and not uses[service]:
                url_key, scheme = (
                    ("redis_url", "rediss://") if service == "redis" else ("amqp_url", "amqps://")
                )
                raise ConfigError(
                    f"config file {checker.label}: {checker.where}.{key} is set but {url_key}"
                    f" does not use TLS (it would start with {scheme})"
                )
            if path is not None and not any(uses.values()):
                raise ConfigError(
                    f"config file {checker.label}: {checker.where}.{key} is set but neither"
                    " amqp_url (amqps://) nor redis_url (rediss://) uses TLS"
                )
            if path is not None and not Path(path).expanduser().is_file():
                raise ConfigError(
                    f"config file {checker.label}: {checker.where}.{key} = {path!r}: no such file"
                )
            tls[key] = str(Path(path).expanduser()) if path is not None else None
    for service in ("redis", "amqp"):
        has_key = tls[f"{service}_tls_key"] or tls["tls_key"]
        has_cert = tls[f"{service}_tls_cert"] or tls["tls_cert"]
        if uses[service] and has_key and not has_cert:
            raise ConfigError(
                f"config file {checker.label}: {checker.where}: a TLS key without a certificate"
                f" for {service}: set tls_cert (or {service}_tls_cert) too"
            )
    return {
        "redis_mode": mode,
        "redis_sentinels": sentinels,
        "redis_sentinel_master": master,
        "redis_min_replicas": min_replicas,
        **tls,
    }


def _failure_group_rule(raw: Mapping[str, Any], checker: _Checker) -> NewFailureGroupRule | None:
    """The profile's ``new_failure_group`` rule: its last ``[[alerts]]`` table of that kind
    (``enabled = false`` turns it off), else the default unless ``alert_defaults = false``."""
    rule: NewFailureGroupRule | None = (
        NewFailureGroupRule() if checker.boolean(raw, "alert_defaults", True) else None
    )
    tables = raw.get("alerts", [])
    if not isinstance(tables, list):
        return rule
    for number, table in enumerate(tables, start=1):
        if not isinstance(table, dict) or table.get("kind") not in PARKING_RULE_KINDS:
            continue
        enabled = table.get("enabled", True)
        if not isinstance(enabled, bool):
            raise checker.fail(f"alerts[{number}].enabled", "true or false", enabled)
        fields_ = {k: v for k, v in table.items() if k not in ("kind", "enabled")}
        try:
            built = failure_group_rule_from_table(fields_)
        except ValueError as exc:
            raise ConfigError(
                f"config file {checker.label}: {checker.where}.alerts[{number}]: {exc}"
            ) from None
        rule = built if enabled else None
    return rule


def _alert_rules(
    raw: Mapping[str, Any], profile: Profile, checker: _Checker
) -> tuple[AlertRule, ...] | None:
    """The profile's ``[[alerts]]`` tables merged over the defaults (None: defaults only).

    A table's ``kind`` names the rule; its other keys are the rule's fields. A
    table whose rule name matches a default rule replaces it, ``enabled = false``
    drops it, and ``alert_defaults = false`` starts from no rules at all.
    """
    use_defaults = checker.boolean(raw, "alert_defaults", True)
    tables = raw.get("alerts", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise checker.fail("alerts", "an array of tables ([[profiles.NAME.alerts]])", tables)
    tables = [t for t in tables if t.get("kind") not in PARKING_RULE_KINDS]
    if use_defaults and not tables:
        return None
    rules: dict[str, AlertRule] = {}
    if use_defaults:
        rules = {rule.name: rule for rule in profile.alerts}
    for number, table in enumerate(tables, start=1):
        where = f"alerts[{number}]"
        kind = table.get("kind")
        if not isinstance(kind, str):
            raise checker.fail(f"{where}.kind", "one of " + ", ".join(RULE_KIND_NAMES), kind)
        fields_ = {k: v for k, v in table.items() if k not in ("kind", "enabled")}
        enabled = table.get("enabled", True)
        if not isinstance(enabled, bool):
            raise checker.fail(f"{where}.enabled", "true or false", enabled)
        if kind == "failure_rate" and "failure_statuses" not in fields_:
            fields_["failure_statuses"] = list(profile.failure_statuses)
        try:
            rule = rule_from_table(kind, fields_)
        except ValueError as exc:
            raise ConfigError(
                f"config file {checker.label}: {checker.where}.{where}: {exc}"
            ) from None
        if enabled:
            rules[rule.name] = rule
        else:
            rules.pop(rule.name, None)
    return tuple(rules.values())


@dataclass(frozen=True)
class _Checker:
    """Type checks for one table, with messages naming the file and the key."""

    label: str
    where: str

    def fail(self, key: str, expected: str, value: object) -> ConfigError:
        return ConfigError(
            f"config file {self.label}: {self.where}.{key} must be {expected},"
            f" not {type(value).__name__} {value!r}"
        )

    def optional_string(self, raw: Mapping[str, Any], key: str) -> str | None:
        if key not in raw:
            return None
        value = raw[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "a non-empty string", value)
        return value

    def string(self, raw: Mapping[str, Any], key: str) -> str:
        value = self.optional_string(raw, key)
        if value is None:
            raise ConfigError(f"config file {self.label}: {self.where}.{key} is missing")
        return value

    def string_list(
        self, raw: Mapping[str, Any], key: str, default: tuple[str, ...] = ()
    ) -> list[str]:
        if key not in raw:
            return list(default)
        value = raw[key]
        if isinstance(value, str):
            raise self.fail(key, f'a list of strings (write ["{value}"])', value)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, "a list of non-empty strings", value)
        return value

    def integer(self, raw: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(key, f"an integer >= {minimum}", value)
        return value

    def choice(
        self, raw: Mapping[str, Any], key: str, default: str, choices: tuple[str, ...]
    ) -> str:
        value = raw.get(key, default)
        if value not in choices:
            raise self.fail(key, " or ".join(f'"{c}"' for c in choices), value)
        return str(value)

    def boolean(self, raw: Mapping[str, Any], key: str, default: bool) -> bool:
        value = raw.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "true or false", value)
        return value

    def number(self, raw: Mapping[str, Any], key: str, default: float, minimum: float) -> float:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise self.fail(key, f"a number >= {minimum}", value)
        return float(value)


def _reject_unknown(raw: Mapping[str, Any], known: set[str], where: str, label: str) -> None:
    for key in raw:
        if key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1) or sorted(
            k for k in known if k.startswith(key) or key.startswith(k)
        )
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        path = f"{where}.{key}" if where else key
        raise ConfigError(f"config file {label}: unknown key '{path}'{hint}")


def _check_url_scheme(url: str, schemes: tuple[str, ...], key: str, label: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme not in schemes:
        raise ConfigError(
            f"config file {label}: {key} must start with {' or '.join(s + '://' for s in schemes)}"
            f" (got {redact_url(url)!r})"
        )
