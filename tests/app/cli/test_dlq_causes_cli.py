"""``payops dlq list --group-by cause``, ``--cause`` and the cause fields of ``--json``,
against the real RabbitMQ and Redis (dead letters written with plain pika, parked with
``payops dlq park --once``)."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
import redis

from app.cli import exit_codes
from app.cli.main import main
from tests.helpers.action_kit import PAN, payment

pytestmark = pytest.mark.integration

# (payment, amount, currency, merchant, x-exception-message or None)
ROWS = (
    (1, "10.00", "EUR", "Acme Books", "acquirer timeout after 3012 ms on acq-7"),
    (2, "20.00", "EUR", "Globex", "acquirer timeout after 2999 ms on acq-2"),
    (3, "5.50", "USD", "Acme Books", "acquirer timeout after 15 ms on acq-11"),
    (4, "1.00", "EUR", "Initech", f"card {PAN} refused by issuer 0051"),
    (5, "7.00", "EUR", "Initech", None),
)


class Parked:
    def __init__(self, amqp_url: str, redis_url: str, prefix: str, tmp_path: Path) -> None:
        self.amqp_url = amqp_url
        self.redis_url = redis_url
        self.dlq = f"{prefix}dlq"
        self.redis_prefix = prefix.rstrip(".")
        self.config = tmp_path / "payops.toml"
        self.config.write_text(
            "[profiles.t]\n"
            f'amqp_url = "{amqp_url}"\nredis_url = "{redis_url}"\n'
            f'dead_letter_queues = ["{self.dlq}"]\nredis_prefix = "{self.redis_prefix}"\n'
            'operator = "cause-tester"\nallow_volatile_store = true\n'
        )

    def publish(self) -> None:
        """Dead letters as a Spring AMQP producer and RabbitMQ leave them: not our code."""
        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.queue_declare(self.dlq)
            now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
            for n, amount, currency, merchant, message in ROWS:
                headers: dict[str, object] = {
                    "x-death": [
                        {
                            "count": 1,
                            "reason": "rejected",
                            "queue": "payments.capture",
                            "time": now - datetime.timedelta(minutes=10 - n),
                            "exchange": "payments",
                            "routing-keys": ["payment.requested"],
                        }
                    ]
                }
                if message:
                    headers["x-exception-message"] = message
                body = payment(n, amount=amount, currency=currency, merchant=merchant)
                channel.basic_publish("", self.dlq, body, pika.BasicProperties(headers=headers))
        finally:
            connection.close()

    def cli(self, *args: str) -> int:
        return main(["dlq", *args, "--config", str(self.config)])

    def cleanup(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            connection.channel().queue_delete(self.dlq)
        finally:
            connection.close()
        client = redis.Redis.from_url(self.redis_url)
        keys = list(client.scan_iter(match=f"{self.redis_prefix}:*"))
        if keys:
            client.unlink(*keys)
        client.close()


@pytest.fixture
def parked(
    amqp_url: str, redis_url: str, unique_prefix: str, tmp_path: Path, capsys
) -> Iterator[Parked]:
    state = Parked(amqp_url, redis_url, unique_prefix, tmp_path)
    try:
        state.publish()
        assert state.cli("park", "--once") == exit_codes.OK
        capsys.readouterr()
        yield state
    finally:
        state.cleanup()


def test_list_groups_by_cause_with_exact_counts(parked: Parked, capsys) -> None:
    assert parked.cli("list", "--group-by", "cause") == exit_codes.OK
    out = capsys.readouterr().out
    assert PAN not in out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ENTRIES", "OPEN", "AT", "RISK"]
    assert len(lines) == 4
    assert lines[1].split()[:2] == ["3", "3"]
    assert lines[1].endswith("acquirer timeout after # ms on acq-#")
    assert "30.00 EUR, 5.50 USD" in lines[1]
    assert re.search(r"\b2\s+\d{4}-\d\d-\d\d", lines[1])  # two merchants
    assert {lines[2].rsplit("  ", 1)[-1], lines[3].rsplit("  ", 1)[-1]} == {
        "card # refused by issuer #",
        "rejected",
    }

    assert parked.cli("list", "--group-by", "cause", "--json") == exit_codes.OK
    groups = json.loads(capsys.readouterr().out)
    first = groups[0]
    assert (first["failure_group"], first["entries"]) == ("acquirer timeout after # ms on acq-#", 3)
    assert first["amount_at_risk"] == {"EUR": "30.00", "USD": "5.50"}
    assert (first["open"], first["merchants"], first["cause_sources"]) == (3, 2, {"message": 3})
    assert sorted((g["failure_group"], g["entries"]) for g in groups[1:]) == [
        ("card # refused by issuer #", 1),
        ("rejected", 1),
    ]
    assert PAN not in json.dumps(groups)


def test_json_rows_have_the_cause_and_cause_filters_lists_and_actions(
    parked: Parked, capsys
) -> None:
    assert parked.cli("list", "--json", "--cause", "ACQUIRER timeout") == exit_codes.OK
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["payment_id"] for r in rows) == ["pay_1", "pay_2", "pay_3"]
    by_id = {r["payment_id"]: r for r in rows}
    assert (by_id["pay_2"]["cause"], by_id["pay_2"]["cause_source"]) == (
        "acquirer timeout after 2999 ms on acq-2",
        "message",
    )
    assert by_id["pay_2"]["failure_group"] == "acquirer timeout after # ms on acq-#"
    assert parked.cli("list", "--json", "--cause", "refused") == exit_codes.OK
    (card,) = json.loads(capsys.readouterr().out)
    assert PAN not in card["cause"] and "411111******1111" in card["cause"]
    assert parked.cli("list", "--json", "--search", "rejected", "--cause", "rejected") == 0
    (plain,) = json.loads(capsys.readouterr().out)
    assert (plain["cause"], plain["cause_source"]) == ("rejected", "dead_letter")
    assert parked.cli("list", "--cause", "acq-#") == exit_codes.OK  # the group's text
    assert len(capsys.readouterr().out.splitlines()) == 4  # a header and three rows
    # Every action honours --cause with --all-matching, and refuses it beside entry ids.
    for action in ("requeue", "retry", "cancel"):
        note = ("--note", "cause test") if action == "cancel" else ()
        code = parked.cli(action, "--all-matching", "--cause", "timeout", *note, "--dry-run")
        assert code == exit_codes.OK
        assert "would have" in (out := capsys.readouterr().out) and " 3, would skip 0" in out
        code = parked.cli(action, "some-id", "--cause", "timeout", *note, "--dry-run")
        assert code == exit_codes.USAGE
        assert "filters apply with --all-matching only" in capsys.readouterr().err
