"""Config files, profiles and the messages a bad config gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.alerts.rules import FailureRateRule, NewFailureGroupRule, QueueDepthRule
from services.config import (
    ConfigError,
    TapBinding,
    load_profile,
    user_config_path,
)

GOOD = """
default_profile = "prod"

[profiles.prod]
amqp_url = "amqp://ops:s3cret@mq.internal:5672/payments"
redis_url = "redis://:hunter2@redis.internal:6379/2"
tap_exchanges = ["orders.events", "payments.direct:payment.failed"]
watch_queues = ["orders.process"]
dead_letter_queues = ["orders.dlq", "orders.dlq2"]
failure_statuses = ["failed", "error"]
tap_max_length = 1000

[profiles.prod.fields]
payment_id = "data.id"
status = "data.state"

[profiles.staging]
amqp_url = "amqp://guest:guest@staging:5672/"
redis_url = "redis://staging:6379/0"
"""


def write(tmp_path: Path, text: str, name: str = "payops.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_default_is_the_demo_profile() -> None:
    profile = load_profile(env={})
    assert profile.name == "demo"
    assert [str(b) for b in profile.tap_exchanges] == ["payments.events", "payments.dlx"]
    assert profile.dead_letter_queues == ("payments.dlq",)
    assert profile.source == "<built-in default config>"


def test_a_full_profile_is_read(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, GOOD), env={})
    assert profile.name == "prod"
    assert profile.tap_exchanges == (
        TapBinding("orders.events", "#"),
        TapBinding("payments.direct", "payment.failed"),
    )
    assert profile.watch_queues == ("orders.process",)
    assert profile.dead_letter_queues == ("orders.dlq", "orders.dlq2")
    assert profile.failure_statuses == ("failed", "error")
    assert profile.tap_max_length == 1000
    assert profile.fields.payment_id == "data.id"
    assert profile.fields.status == "data.state"
    assert profile.fields.merchant == "merchant"  # default kept
    assert profile.amqp_display_url == "amqp://ops:***@mq.internal:5672/payments"
    assert "hunter2" not in profile.redis_display_url


def test_profile_chosen_by_name_and_by_environment(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    assert load_profile(path, "staging", env={}).name == "staging"
    assert load_profile(path, env={"PAYOPS_PROFILE": "staging"}).name == "staging"


def test_config_file_from_environment_and_user_dir(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    assert load_profile(env={"PAYOPS_CONFIG": str(path)}).name == "prod"
    user = user_config_path()
    user.parent.mkdir(parents=True)
    user.write_text(GOOD.replace("prod", "mine"), encoding="utf-8")
    assert load_profile(env={}).name == "mine"


def test_secrets_from_the_environment(tmp_path: Path) -> None:
    text = """
[profiles.p]
tap_exchanges = ["x"]
"""
    env = {"PAYOPS_AMQP_URL": "amqp://a:b@h/", "PAYOPS_REDIS_URL": "redis://h:1/0"}
    profile = load_profile(write(tmp_path, text), env=env)
    assert profile.amqp_url == "amqp://a:b@h/"
    assert profile.redis_url == "redis://h:1/0"
    # The environment wins over the file, so secrets need not be written down.
    assert load_profile(write(tmp_path, GOOD), env=env).amqp_url == "amqp://a:b@h/"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[profiles.p\n", "is not valid TOML"),
        (
            GOOD.replace("tap_max_length = 1000", "tap_max_lenght = 1000"),
            "unknown key 'profiles.prod.tap_max_lenght' (did you mean 'tap_max_length'?)",
        ),
        (
            GOOD.replace('watch_queues = ["orders.process"]', 'watch_queues = "orders.process"'),
            'profiles.prod.watch_queues must be a list of strings (write ["orders.process"])',
        ),
        (
            GOOD.replace("tap_max_length = 1000", "tap_max_length = 0"),
            "profiles.prod.tap_max_length must be an integer >= 1",
        ),
        (
            GOOD.replace('status = "data.state"', "status = 3"),
            "profiles.prod.fields.status must be a non-empty string",
        ),
        (
            GOOD.replace('status = "data.state"', 'statuss = "x"'),
            "unknown key 'profiles.prod.fields.statuss' (did you mean 'status'?)",
        ),
        (
            GOOD.replace('amqp_url = "amqp://ops', 'amqp_url = "http://ops'),
            "profiles.prod.amqp_url must start with amqp:// or amqps://",
        ),
        (
            '[profiles.p]\nredis_url = "redis://h/0"\n',
            "profiles.p.amqp_url is missing (set it in the file or in PAYOPS_AMQP_URL)",
        ),
        ("title = 'x'\n", "unknown key 'title'"),
        ("default_profile = 'x'\n", "'profiles' must hold at least one [profiles.NAME]"),
        (
            GOOD.replace('default_profile = "prod"', 'default_profile = "nope"'),
            "default_profile 'nope' names no profile (profiles: prod, staging)",
        ),
        (
            GOOD.replace('default_profile = "prod"', ""),
            "several profiles (prod, staging) and no default_profile; choose one with --profile",
        ),
    ],
)
def test_bad_config_names_the_file_and_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_profile(path, env={})
    message = str(info.value)
    assert str(path) in message
    assert expected in message
    assert "s3cret" not in message


def test_missing_file_and_unknown_profile(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=f"config file {missing} does not exist"):
        load_profile(missing, env={})
    with pytest.raises(ConfigError, match=r"config file .* does not exist"):
        load_profile(env={"PAYOPS_CONFIG": str(missing)})
    with pytest.raises(ConfigError, match=r"no profile named 'qa' \(profiles: prod, staging\)"):
        load_profile(write(tmp_path, GOOD), "qa", env={})


def test_binary_file_and_directory(tmp_path: Path) -> None:
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_profile(binary, env={})
    with pytest.raises(ConfigError, match="is a directory"):
        load_profile(tmp_path, env={})


BASE = """
[profiles.p]
amqp_url = "amqp://guest:guest@127.0.0.1:5672/"
redis_url = "redis://127.0.0.1:6379/0"
watch_queues = ["work"]
dead_letter_queues = ["dlq"]
failure_statuses = ["failed", "error"]
"""


def test_history_retention_and_alert_rules_default_sensibly(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, BASE), env={})
    assert profile.history_retention_h == 24.0 and profile.history_retention_s == 86_400
    names = [rule.name for rule in profile.alerts]
    assert names == [
        "failure_rate",
        "dead_letter_rate",
        "latency_p99",
        "flow_stopped",
        "queue_depth:dlq",
        "queue_depth:work",
    ]
    failure = profile.alerts[0]
    assert isinstance(failure, FailureRateRule)
    assert failure.failure_statuses == ("failed", "error")


def test_job_retention_defaults_to_30_days_and_is_read_in_days(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, BASE), env={})
    assert profile.job_retention_days == 30.0 and profile.job_retention_s == 30 * 86_400
    profile = load_profile(write(tmp_path, BASE + "job_retention_days = 7\n"), env={})
    assert profile.job_retention_s == 7 * 86_400


def test_alert_tables_replace_drop_and_add_rules(tmp_path: Path) -> None:
    text = (
        BASE
        + """history_retention_h = 48
[[profiles.p.alerts]]
kind = "failure_rate"
threshold_pct = 2.5
window_s = 120
[[profiles.p.alerts]]
kind = "latency"
enabled = false
[[profiles.p.alerts]]
kind = "queue_depth"
queue = "settlement"
max_depth = 50
severity = "critical"
"""
    )
    profile = load_profile(write(tmp_path, text), env={})
    assert profile.history_retention_s == 48 * 3600
    rules = {rule.name: rule for rule in profile.alerts}
    assert "latency_p99" not in rules
    failure = rules["failure_rate"]
    assert isinstance(failure, FailureRateRule)
    assert (failure.threshold_pct, failure.window_s) == (2.5, 120)
    assert failure.failure_statuses == ("failed", "error")  # from the profile
    depth = rules["queue_depth:settlement"]
    assert isinstance(depth, QueueDepthRule)
    assert (depth.max_depth, depth.severity) == (50, "critical")
    assert "queue_depth:dlq" in rules and "flow_stopped" in rules


def test_alert_defaults_can_be_switched_off(tmp_path: Path) -> None:
    text = (
        BASE
        + 'alert_defaults = false\n[[profiles.p.alerts]]\nkind = "flow_stopped"\nsilent_s = 5\n'
    )
    profile = load_profile(write(tmp_path, text), env={})
    assert [rule.name for rule in profile.alerts] == ["flow_stopped"]
    none = load_profile(write(tmp_path, BASE + "alert_defaults = false\n", "none.toml"), env={})
    assert none.alerts == ()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("history_retention_h = 0\n", "profiles.p.history_retention_h must be a number >= 0.25"),
        ("job_retention_days = 0\n", "profiles.p.job_retention_days must be a number >= 0.01"),
        ('history_retention_h = "1d"\n', "profiles.p.history_retention_h must be a number"),
        ('[[profiles.p.alerts]]\nkind = "loud"\n', "profiles.p.alerts[1]: unknown alert rule"),
        ("[[profiles.p.alerts]]\nthreshold_pct = 3\n", "profiles.p.alerts[1].kind must be one of"),
        (
            '[[profiles.p.alerts]]\nkind = "failure_rate"\nthreshold = 3\n',
            "profiles.p.alerts[1]: alert rule 'failure_rate': unknown keys threshold",
        ),
        (
            '[[profiles.p.alerts]]\nkind = "queue_depth"\nqueue = "q"\n',
            "profiles.p.alerts[1]: queue_depth:q: set max_depth, growing_for_s or both",
        ),
        ('[[profiles.p.alerts]]\nkind = "latency"\nenabled = "no"\n', "enabled must be true"),
        ('alerts = "loud"\n', "profiles.p.alerts must be an array of tables"),
    ],
)
def test_bad_history_and_alert_settings_name_the_key(
    tmp_path: Path, extra: str, expected: str
) -> None:
    path = write(tmp_path, BASE + extra)
    with pytest.raises(ConfigError) as caught:
        load_profile(path, env={})
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_causes_and_the_new_failure_group_rule_are_configured(tmp_path: Path) -> None:
    default = load_profile(write(tmp_path, BASE), env={})
    assert default.failure_group_alert == NewFailureGroupRule()
    assert default.fields.cause_headers == () and default.fields.cause_paths == ()
    assert "new_failure_group" not in {rule.name for rule in default.alerts}  # the flow's
    text = (
        BASE
        + '[[profiles.p.alerts]]\nkind = "new_failure_group"\nmin_entries = 12\n'
        + '[profiles.p.fields]\ncause_headers = ["x-error"]\ncause_paths = ["error.message"]\n'
    )
    profile = load_profile(write(tmp_path, text, "on.toml"), env={})
    assert profile.failure_group_alert == NewFailureGroupRule(min_entries=12)
    assert profile.alert_rules is None  # the flow's rules stay the defaults
    assert profile.fields.cause_headers == ("x-error",)
    assert profile.fields.cause_paths == ("error.message",)
    off = BASE + '[[profiles.p.alerts]]\nkind = "new_failure_group"\nenabled = false\n'
    assert load_profile(write(tmp_path, off, "off.toml"), env={}).failure_group_alert is None
    bare = load_profile(write(tmp_path, BASE + "alert_defaults = false\n", "b.toml"), env={})
    assert bare.failure_group_alert is None
    bad = BASE + '[[profiles.p.alerts]]\nkind = "new_failure_group"\nmin_entries = 0\n'
    with pytest.raises(ConfigError, match=r"alerts\[1\]: new_failure_group: min_entries"):
        load_profile(write(tmp_path, bad, "bad.toml"), env={})
    wrong = BASE + '[profiles.p.fields]\ncause_headers = "x-error"\n'
    with pytest.raises(ConfigError, match=r"fields\.cause_headers must be a list of strings"):
        load_profile(write(tmp_path, wrong, "wrong.toml"), env={})
