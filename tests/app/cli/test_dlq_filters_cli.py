"""``payops dlq`` filters: every filter of ``list`` is honoured by every action's
``--all-matching`` (compared with ``--dry-run``), ``--reason`` is refused, numbers are checked.

Against the real RabbitMQ and Redis: the entries are dead letters with ``x-death``
headers as RabbitMQ writes them, published to two dead-letter queues and parked
with ``payops dlq park --once``.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
import redis

from app.cli import exit_codes
from app.cli.dlq import FILTERS
from app.cli.main import build_parser, main
from tests.helpers.action_kit import payment

pytestmark = pytest.mark.integration

# (payment, merchant, amount, dead-letter reason, origin queue, minutes ago, dlq)
ROWS = (
    (1, "Acme Books", "10.00", "rejected", "qa", 10, "dlq"),
    (2, "Other Shop", "50.00", "delivery_limit", "qb", 180, "dlq"),
    (3, "Acme Books", "200.00", "expired", "qb", 1, "dlq2"),
    (4, "Other Shop", "5.00", "delivery_limit", "qa", 120, "dlq2"),
    (5, "Acme Books", "75.00", "maxlen", "qa", 30, "dlq"),
)


class Parked:
    """Five dead letters parked from two DLQs, one of them cancelled; a config file."""

    def __init__(self, amqp_url: str, redis_url: str, prefix: str, tmp_path: Path) -> None:
        self.amqp_url = amqp_url
        self.redis_url = redis_url
        self.prefix = prefix
        self.redis_prefix = prefix.rstrip(".")
        self.dlqs = [f"{prefix}dlq", f"{prefix}dlq2"]
        self.config = tmp_path / "payops.toml"
        self.config.write_text(
            "[profiles.t]\n"
            f'amqp_url = "{amqp_url}"\n'
            f'redis_url = "{redis_url}"\n'
            f"dead_letter_queues = {self.dlqs!r}\n".replace("'", '"')
            + f'redis_prefix = "{self.redis_prefix}"\n'
            'operator = "filter-tester"\n'
            "allow_volatile_store = true\n"  # the test Redis keeps nothing on disk
        )

    def publish(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            for dlq in self.dlqs:
                channel.queue_declare(dlq)
            now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
            for n, merchant, amount, reason, queue, ago, dlq in ROWS:
                death = {
                    "count": 1,
                    "reason": reason,
                    "queue": f"{self.prefix}{queue}",
                    "time": now - datetime.timedelta(minutes=ago),
                    "exchange": f"{self.prefix}payments",
                    "routing-keys": ["payment.failed"],
                }
                channel.basic_publish(
                    "",
                    f"{self.prefix}{dlq}",
                    payment(n, merchant=merchant, amount=amount),
                    pika.BasicProperties(headers={"x-death": [death]}),
                )
        finally:
            connection.close()

    def cli(self, *args: str) -> int:
        return main(["dlq", *args, "--config", str(self.config)])

    def cleanup(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            channel = connection.channel()
            for dlq in self.dlqs:
                channel.queue_delete(dlq)
        finally:
            connection.close()
        client = redis.Redis.from_url(self.redis_url)
        keys = list(client.scan_iter(match=f"{self.redis_prefix}:*"))
        if keys:
            client.unlink(*keys)
        client.close()


@pytest.fixture
def parked(
    amqp_url: str,
    redis_url: str,
    unique_prefix: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Parked]:
    state = Parked(amqp_url, redis_url, unique_prefix, tmp_path)
    try:
        state.publish()
        assert state.cli("park", "--once") == exit_codes.OK
        capsys.readouterr()
        # pay_4 is cancelled for real, so that --state has something to tell apart
        assert state.cli("list", "--json", "--search", "pay_4") == exit_codes.OK
        (entry_id,) = re.findall(r'"entry_id": "([^"]+)"', capsys.readouterr().out)
        assert state.cli("cancel", entry_id, "--note", "duplicate", "--yes") == exit_codes.OK
        capsys.readouterr()
        yield state
    finally:
        state.cleanup()


# each filter flag, with a value that picks some of the five entries but not all
FLAG_VALUES = {
    "state": ("--state", "cancelled"),
    "dead_letter_reason": ("--dead-letter-reason", "delivery_limit"),
    "queue": ("--queue", "{prefix}qb"),
    "dlq": ("--dlq", "{prefix}dlq2"),
    "merchant": ("--merchant", "Acme Books"),
    "search": ("--search", "pay_1"),
    "cause": ("--cause", "LIMIT"),  # the cause of these is their dead-letter reason
    "since": ("--since", "45m"),
    "until": ("--until", "45m"),
    "min_amount": ("--min-amount", "50"),
    "max_amount": ("--max-amount", "50"),
}


def test_every_filter_flag_of_list_has_a_case_here() -> None:
    """A filter added to ``list`` must be in FILTERS (read by query_from) and so here."""
    parser = build_parser()
    listed = vars(parser.parse_args(["dlq", "list"]))
    not_filters = {"command", "dlq_command", "handler", "json", "limit", "reason", "group_by"}
    assert set(listed) - not_filters == set(FILTERS)
    for command in ("requeue", "retry", "cancel"):
        args = vars(parser.parse_args(["dlq", command, "--note", "x"]))
        assert set(FILTERS) <= set(args), command
    assert set(FLAG_VALUES) == set(FILTERS)


def _listed(parked: Parked, capsys: pytest.CaptureFixture[str], *flags: str) -> int:
    assert parked.cli("list", "--json", "--limit", "1000", *flags) == exit_codes.OK
    return len(re.findall(r'"entry_id"', capsys.readouterr().out))


@pytest.mark.parametrize("name", sorted(FLAG_VALUES))
def test_each_filter_is_honoured_by_every_action_as_by_list(
    parked: Parked, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    flag, value = FLAG_VALUES[name]
    filters = (flag, value.format(prefix=parked.prefix))
    everything = _listed(parked, capsys)
    matching = _listed(parked, capsys, *filters)
    # the actions default to parked entries; list does not, so say it there
    states = () if name == "state" else ("--state", "parked")
    parked_matching = _listed(parked, capsys, *filters, *states)
    assert 0 < matching < everything, f"{flag} must pick some entries for this test to mean much"
    for action in ("requeue", "retry", "cancel"):
        note = ("--note", "filter test") if action == "cancel" else ()
        code = parked.cli(action, "--all-matching", *filters, *note, "--dry-run")
        assert code == exit_codes.OK
        out = capsys.readouterr().out
        found = re.search(r"would have \w+ ([\d,]+), would skip ([\d,]+)", out)
        assert found is not None, out
        would, skip = (int(group.replace(",", "")) for group in found.groups())
        assert would + skip == parked_matching, (action, out)
        if name != "state":
            assert skip == 0 and would == parked_matching, (action, out)


def test_reason_is_refused_naming_the_two_flags(
    parked: Parked, capsys: pytest.CaptureFixture[str]
) -> None:
    """The trap of issue 9: ``cancel --all-matching --reason delivery_limit`` filtered
    nothing and would have cancelled every parked payment."""
    for args in (
        ("cancel", "--all-matching", "--reason", "delivery_limit", "--dry-run"),
        ("requeue", "--all-matching", "--reason", "delivery_limit", "--dry-run"),
        ("retry", "--all-matching", "--reason", "delivery_limit", "--dry-run"),
        ("list", "--reason", "delivery_limit"),
        ("list", "--reason"),
        ("audit", "--reason", "x"),
    ):
        with pytest.raises(SystemExit) as exited:
            parked.cli(*args)
        assert exited.value.code == exit_codes.USAGE, args
        err = capsys.readouterr().err
        assert "--reason is ambiguous" in err, args
        assert "--dead-letter-reason" in err and "--note" in err, args
    # what the operator meant: the two delivery_limit entries, one of them cancelled
    code = parked.cli(
        "cancel", "--all-matching", "--dead-letter-reason", "delivery_limit", "--note", "x",
        "--dry-run",
    )  # fmt: skip
    assert code == exit_codes.OK
    assert "would have cancelled 1, would skip 0" in capsys.readouterr().out


def test_cancel_requires_a_note(parked: Parked, capsys: pytest.CaptureFixture[str]) -> None:
    for note in ((), ("--note", "   ")):
        with pytest.raises(SystemExit) as exited:
            parked.cli("cancel", "--all-matching", *note, "--dry-run")
        assert exited.value.code == exit_codes.USAGE
        assert "--note" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("list", "--limit", "-5"), "must be 1 or more: '-5'"),
        (("list", "--limit", "0"), "must be 1 or more: '0'"),
        (("list", "--limit", "lots"), "not a whole number: 'lots'"),
        (("audit", "--limit", "-1"), "must be 1 or more: '-1'"),
        (("list", "--min-amount", "nan"), "not an amount: 'nan'"),
        (("list", "--max-amount", "inf"), "not an amount: 'inf'"),
        (("retry", "--all-matching", "--delay", "8d", "--dry-run"), "at most 7 days"),
        (("retry", "--all-matching", "--delay", "-5", "--dry-run"), "not a delay"),
    ],
)
def test_nonsense_numbers_are_refused_with_exit_2(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["dlq", *args])
    assert exited.value.code == exit_codes.USAGE
    assert message in capsys.readouterr().err


def test_contradicting_ranges_are_refused(
    parked: Parked, capsys: pytest.CaptureFixture[str]
) -> None:
    assert parked.cli("list", "--since", "1h", "--until", "2h") == exit_codes.USAGE
    assert "--since must be before --until" in capsys.readouterr().err
    code = parked.cli("requeue", "--all-matching", "--min-amount", "9", "--max-amount", "1")
    assert code == exit_codes.USAGE
    assert "--min-amount must not be more than --max-amount" in capsys.readouterr().err


def test_simulation_numbers_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (("--incident-after", "-5"), ("--rate", "inf"), ("--incident-after", "nan")):
        with pytest.raises(SystemExit) as exited:
            main(["simulate", *args])
        assert exited.value.code == exit_codes.USAGE, args
        capsys.readouterr()
