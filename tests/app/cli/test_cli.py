"""The command line: config errors and exit codes (no broker needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import exit_codes
from app.cli.main import main


def test_missing_config_file_exits_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "absent.toml"
    assert main(["config", "show", "--config", str(missing)]) == exit_codes.USAGE
    assert f"payops: config file {missing} does not exist" in capsys.readouterr().err


def test_bad_key_exits_2_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[profiles.a]\namqp_url = "amqp://h/"\nredis_url = "redis://h/0"\nwatch = []\n')
    assert main(["config", "show", "--config", str(path)]) == exit_codes.USAGE
    err = capsys.readouterr().err
    assert str(path) in err
    assert "unknown key 'profiles.a.watch' (did you mean 'watch_queues'?)" in err


def test_config_show_redacts_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[profiles.a]\namqp_url = "amqp://u:topsecret@h/"\nredis_url = "redis://h/0"\n')
    assert main(["config", "show", "--config", str(path), "--profile", "a"]) == exit_codes.OK
    out = capsys.readouterr().out
    assert "amqp://u:***@h/" in out
    assert "topsecret" not in out


def test_python_dash_m_app_runs_the_cli(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "config", "show", "--config", str(tmp_path / "x.toml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == exit_codes.USAGE
    assert "does not exist" in result.stderr


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--failure-rate", "150%"])
    assert info.value.code == 2
    assert "must be between 0 and 1" in capsys.readouterr().err


def test_incident_at_is_a_time_of_day_that_has_not_passed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import datetime as dt

    from app.cli.main import seconds_until

    now = dt.datetime(2026, 11, 24, 13, 55, 30).astimezone()
    assert seconds_until(dt.time(14, 2), now) == 390.0
    with pytest.raises(ValueError, match="already passed"):
        seconds_until(dt.time(13, 55), now)
    with pytest.raises(SystemExit) as exited:  # argparse rejects it
        main(["simulate", "--incident-at", "25:00"])
    assert exited.value.code == exit_codes.USAGE
    assert "not a time of day" in capsys.readouterr().err


def test_config_show_lists_retention_and_alert_rules(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["config", "show"]) == exit_codes.OK
    out = capsys.readouterr().out
    assert "history_retention_h = 24" in out
    assert "alert failure_rate: threshold_pct=5" in out
    assert "alert queue_depth:payments.dlq:" in out
    assert "alert new_failure_group: min_entries=5, severity='warning'" in out
    assert "NewFailureGroupRule(" not in out  # a rule, not a Python repr


def test_config_show_prints_every_setting_in_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from services.config import Profile

    path = tmp_path / "c.toml"
    path.write_text(
        '[profiles.a]\namqp_url = "amqp://u:topsecret@h/"\nredis_url = "redis://h/0"\n'
        'redis_prefix = "ops2"\nread_only = true\ncancel_exchange = "payments.events"\n'
    )
    monkeypatch.setenv("USER", "nightshift")
    monkeypatch.setattr("getpass.getuser", lambda: "nightshift")
    assert main(["config", "show", "--config", str(path), "--profile", "a"]) == exit_codes.OK
    out = capsys.readouterr().out
    keys = {line.split(" = ")[0] for line in out.splitlines() if " = " in line}
    apart = {"name", "source", "alert_rules", "failure_group_alert", "fields"}
    assert {f.name for f in dataclasses.fields(Profile)} - apart <= keys
    assert "redis_prefix = 'ops2'" in out and "read_only = true" in out
    assert "operator = 'nightshift'  # not set: the OS user" in out
    assert "cancel_exchange = 'payments.events'" in out
    assert (
        "# cancel: publishes payment.cancelled to exchange 'payments.events'"
        " with routing key 'payment.cancelled'"
    ) in out
    assert "topsecret" not in out
