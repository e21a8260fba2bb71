"""A refused login is not an unreachable server: exit 4, the server and the user named,
never the password. Against the real RabbitMQ (a wrong password) and a private Redis
that requires one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from yarl import URL

from app.cli import exit_codes
from app.cli.main import main
from tests.helpers.private_servers import PrivateRedis, servers_available

pytestmark = [pytest.mark.integration]

SECRET = "s3cret-Pa55"
WRONG = "wr0ng-Pa55"


def _config(tmp_path: Path, amqp_url: str, redis_url: str) -> str:
    path = tmp_path / f"payops-{len(list(tmp_path.glob('*.toml')))}.toml"
    path.write_text(
        "[profiles.t]\n"
        f'amqp_url = "{amqp_url}"\n'
        f'redis_url = "{redis_url}"\n'
        'dead_letter_queues = ["tlogin.dlq"]\n'
        'redis_prefix = "tlogin"\n'
    )
    return str(path)


def _wrong_amqp(amqp_url: str) -> str:
    return str(URL(amqp_url).with_password(WRONG))


@pytest.mark.parametrize(
    "command",
    [
        ("dlq", "requeue", "18f8a3c2e00000004111", "--yes"),  # the action publisher (pika)
        ("dlq", "park", "--once"),  # the parker (aio-pika)
        ("topology", "declare"),
    ],
    ids=["requeue", "park", "topology"],
)
def test_a_wrong_amqp_password_says_the_login_was_refused(
    amqp_url: str,
    redis_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: tuple[str, ...],
) -> None:
    config = _config(tmp_path, _wrong_amqp(amqp_url), redis_url)
    assert main([*command, "--config", config]) == exit_codes.LOGIN_REFUSED
    captured = capsys.readouterr()
    user = URL(amqp_url).user
    assert f"RabbitMQ at 127.0.0.1:5672 refused the login for user {user}" in captured.err
    assert "cannot reach" not in captured.err
    assert WRONG not in captured.err + captured.out


def test_an_unreachable_broker_is_still_exit_3(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, "amqp://guest:guest@127.0.0.1:1/", redis_url)
    assert main(["dlq", "park", "--once", "--config", config]) == exit_codes.UNAVAILABLE
    assert "cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/" in capsys.readouterr().err


@pytest.fixture
def locked_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if not servers_available():
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path / "redis", "--requirepass", SECRET)
    server.start()
    yield server
    server.kill()


def test_redis_auth_failures_say_so(
    amqp_url: str,
    locked_redis: PrivateRedis,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    where = f"127.0.0.1:{locked_redis.port}"
    wrong = f"redis://:{WRONG}@{where}/0"
    assert main(["dlq", "list", "--config", _config(tmp_path, amqp_url, wrong)]) == 4
    err = capsys.readouterr().err
    assert f"Redis at {where} refused the login for user default" in err
    assert WRONG not in err and "cannot reach" not in err

    bare = f"redis://{where}/0"
    assert main(["dlq", "audit", "--config", _config(tmp_path, amqp_url, bare)]) == 4
    assert f"Redis at {where} requires a password and redis_url gives none" in (
        capsys.readouterr().err
    )

    right = f"redis://:{SECRET}@{where}/0"
    assert main(["dlq", "list", "--config", _config(tmp_path, amqp_url, right)]) == 0
    capsys.readouterr()
