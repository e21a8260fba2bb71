"""``payops dlq ...`` against the real RabbitMQ and Redis, through ``app.cli.main.main``."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from app.cli import exit_codes
from services.workbench.codec import F_HEADERS, decode_table, encode_table
from services.workbench.death_history import DEATHS_HEADER, HISTORY_HEADER
from services.workbench.model import EntryState
from services.workbench.redis_layout import summary_blob, summary_from_blob
from services.workbench.store import ParkingStore
from tests.app.cli.dlq_kit import Setup
from tests.helpers.action_kit import (
    PAN,
    Broker,
    DeadLetterFlow,
    payment,
)
from tests.helpers.private_servers import PrivateRedis, servers_available

pytestmark = pytest.mark.integration

CVV = "987"
MASKED_PAN = "411111******1111"


@pytest.fixture
def setup(amqp_url: str, redis_url: str, unique_prefix: str, tmp_path: Path) -> Iterator[Setup]:
    state = Setup(amqp_url, redis_url, unique_prefix, tmp_path)
    yield state
    state.cleanup()


@pytest.fixture
def parked(setup: Setup, capsys: pytest.CaptureFixture[str]) -> Setup:
    setup.dead_letter(
        [
            payment(1, card_number=PAN, cvv=CVV),
            payment(2, merchant="Other Shop"),
            orjson.dumps({"payment_id": PAN, "amount": 5, "currency": "USD"}),
        ]
    )
    assert setup.cli("park", "--once") == exit_codes.OK
    out = capsys.readouterr().out
    assert f"{setup.prefix}dlq: parked 3, already parked 0" in out
    return setup


def test_list_shows_rows_masked_and_filters(
    parked: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    assert parked.cli("list") == exit_codes.OK
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("ID") and len(lines) == 4
    assert "pay_1" in out and "Acme Books" in out and "rejected" in out
    assert PAN not in out and "411111******1111" in out

    assert parked.cli("list", "--merchant", "Other Shop") == exit_codes.OK
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert parked.cli("list", "--search", "pay_1", "--since", "1h", "--min-amount", "10") == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert parked.cli("list", "--limit", "1") == exit_codes.OK
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2 and "showing 1 of 3" in captured.err

    assert parked.cli("list", "--json", "--state", "parked") == exit_codes.OK
    out = capsys.readouterr().out
    rows = json.loads(out)
    assert len(rows) == 3 and PAN not in out
    assert {row["state"] for row in rows} == {"parked"}
    assert {row["payment_id"] for row in rows} == {"pay_1", "pay_2", "411111******1111"}


def test_show_pretty_prints_the_body_masked_with_headers_x_death_and_audit(
    parked: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = parked.ids()
    assert parked.cli("show", ids[0]) == exit_codes.OK
    out = capsys.readouterr().out
    assert parked.flow is not None
    assert "x-death (most recent first)" in out and f"rejected in {parked.flow.work}" in out
    assert '"payment_id": "pay_1"' in out
    assert PAN not in out and f'"{CVV}"' not in out and "•••" in out
    assert "audit trail" in out and "(none)" in out

    assert parked.cli("show", ids[0], "--json") == exit_codes.OK
    out = capsys.readouterr().out
    data = json.loads(out)
    assert data["body"]["kind"] == "json" and data["body"]["content"]["cvv"] == "•••"
    assert data["x_death"][0]["reason"] == "rejected"
    assert PAN not in out and f'"{CVV}"' not in out

    assert parked.cli("show", "0" * 20) == exit_codes.FAILED
    assert "no entry" in capsys.readouterr().err


def test_requeue_dry_run_changes_nothing(parked: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    assert parked.cli("requeue", "--all-matching", "--dry-run") == exit_codes.OK
    out = capsys.readouterr().out
    assert parked.flow is not None
    assert f"Requeue 3 failed payments to {parked.flow.work}" in out
    assert "dry run: would have requeued 3, would skip 0" in out
    assert all(parked.state(i) is EntryState.PARKED for i in parked.ids())
    assert parked.drain(parked.flow.work) == []


def test_requeue_without_yes_and_without_a_terminal_is_refused(
    parked: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    assert parked.cli("requeue", *parked.ids()) == exit_codes.USAGE
    err = capsys.readouterr().err
    assert "refusing without --yes" in err and "Requeue 3 failed payments" in err
    assert all(parked.state(i) is EntryState.PARKED for i in parked.ids())


def test_requeue_asks_on_a_terminal(
    parked: Setup, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    answers = iter(["n", "y"])
    monkeypatch.setattr("builtins.input", lambda *a: next(answers))
    ids = parked.ids()
    assert parked.cli("requeue", ids[0]) == exit_codes.FAILED
    err = capsys.readouterr().err
    assert parked.flow is not None
    assert f"Requeue payment pay_1 to {parked.flow.work}?" in err and "nothing done" in err
    assert parked.cli("requeue", ids[0]) == exit_codes.OK
    assert capsys.readouterr().out.strip() == f"1 requeued to {parked.flow.work}"
    assert len(parked.drain(parked.flow.work)) == 1


def test_requeue_all_matching_then_again_exit_codes_and_summary(
    parked: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    assert parked.flow is not None
    code = parked.cli("requeue", "--all-matching", "--merchant", "Acme Books", "--yes")
    assert code == exit_codes.OK
    assert capsys.readouterr().out.strip() == f"1 requeued to {parked.flow.work}"
    arrived = parked.drain(parked.flow.work)
    assert [orjson.loads(m.body)["payment_id"] for m in arrived] == ["pay_1"]

    assert parked.cli("requeue", *parked.ids(), "--yes") == exit_codes.OK
    out = capsys.readouterr().out.strip()
    assert out.splitlines() == [
        f"2 requeued to {parked.flow.work}",
        "1 skipped: already requeued by cli-tester",
    ]
    assert len(parked.drain(parked.flow.work)) == 2
    assert parked.cli("requeue", "--all-matching", "--yes") == exit_codes.OK
    assert capsys.readouterr().out.strip() == "nothing to requeue: no entry matched"

    assert parked.cli("audit") == exit_codes.OK
    out = capsys.readouterr().out
    assert "cli-tester@" in out and "requeued 2, skipped 1, failed 0" in out
    assert (
        parked.cli("audit", "--json", "--operator", "cli-tester", "--entry", parked.ids()[0]) == 0
    )
    records = json.loads(capsys.readouterr().out)
    assert records and all(r["operator"] == "cli-tester" for r in records)
    assert parked.cli("audit", "--operator", "nobody") == exit_codes.OK
    assert capsys.readouterr().out == ""


def test_unroutable_requeue_exits_1_and_says_why(
    parked: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    assert parked.flow is not None
    work = parked.flow.work

    async def delete(broker: Broker, store: ParkingStore) -> None:
        await broker.delete_queue(work)

    parked.call(delete)
    ids = parked.ids()
    assert parked.cli("requeue", ids[0], "--yes") == exit_codes.FAILED
    captured = capsys.readouterr()
    assert captured.out.startswith(f"1 failed: unroutable: no queue '{work}'")
    assert captured.out.rstrip().endswith("; it stays parked")
    assert "Not done (1): 1 failed and stays parked" in captured.err
    assert (
        f"failed {ids[0]}" in captured.err and "mandatory publish returned NO_ROUTE" in captured.err
    )
    assert parked.state(ids[0]) is EntryState.PARKED


def test_read_only_refuses_with_exit_2(parked: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    ids = parked.ids()
    assert parked.cli("requeue", ids[0], "--yes", "--read-only") == exit_codes.USAGE
    assert "read-only" in capsys.readouterr().err
    config = parked.write_config(read_only=True)
    assert parked.cli("cancel", ids[0], "--note", "x", "--yes", config=config) == 2
    assert "profile 't' is read-only" in capsys.readouterr().err
    assert parked.cli("resolve", ids[0], "--delivered", config=config) == exit_codes.USAGE
    assert parked.state(ids[0]) is EntryState.PARKED


def test_cancel_needs_a_note_and_retry_takes_a_delay_and_an_edited_body(
    parked: Setup, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert parked.flow is not None
    ids = parked.ids()
    with pytest.raises(SystemExit) as info:
        parked.cli("cancel", ids[0], "--yes")
    assert info.value.code == exit_codes.USAGE
    capsys.readouterr()
    assert parked.cli("cancel", ids[0], "--note", f"card {PAN} stolen", "--yes") == 0
    out = capsys.readouterr().out
    assert out.strip() == "1 cancelled (no cancel event is configured, none was published)"
    assert parked.state(ids[0]) is EntryState.CANCELLED
    assert parked.cli("show", ids[0]) == exit_codes.OK
    out = capsys.readouterr().out
    assert "card 411111******1111 stolen" in out and PAN not in out

    edited = tmp_path / "body.json"
    edited.write_text('{"payment_id": "pay_2", "amount": "1.00"}')
    assert parked.cli("retry", ids[1], "--edit-body", str(edited), "--yes") == exit_codes.OK
    (message,) = parked.drain(parked.flow.work)
    assert message.body == edited.read_bytes() and message.headers["payops-attempt"] == 1
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert parked.cli("retry", ids[2], "--edit-body", str(bad), "--yes") == exit_codes.USAGE
    assert "not valid JSON" in capsys.readouterr().err
    assert parked.cli("retry", ids[2], "--delay", "1", "--yes") == exit_codes.OK
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"1 retried through {parked.flow.work}: in the 1 s delay queue until ")
    parked.flow.broker.queues.append(f"payops.delay.{parked.flow.work}.1s")

    async def cleanup_delay(broker: Broker, store: ParkingStore) -> None:
        await broker.delete_queue(f"payops.delay.{parked.prefix}work.1s")

    parked.call(cleanup_delay)


def test_unreachable_services_exit_3(parked: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    no_redis = parked.write_config(redis_url="redis://127.0.0.1:1/15")
    assert parked.cli("list", config=no_redis) == exit_codes.UNAVAILABLE
    assert "cannot reach Redis" in capsys.readouterr().err
    no_amqp = parked.write_config(amqp_url="amqp://guest:guest@127.0.0.1:1/")
    assert parked.cli("requeue", parked.ids()[0], "--yes", config=no_amqp) == 3
    assert "cannot connect to RabbitMQ" in capsys.readouterr().err
    assert parked.cli("park", "--once", config=no_amqp) == exit_codes.UNAVAILABLE


def test_recover_and_resolve(parked: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    assert parked.cli("recover") == exit_codes.OK
    assert capsys.readouterr().out.strip() == "no interrupted actions"
    assert parked.cli("recover", "--json") == exit_codes.OK
    assert json.loads(capsys.readouterr().out) == {
        "released": [],
        "in_doubt": [],
        "in_progress": [],
    }
    assert parked.cli("resolve", parked.ids()[0], "--republish") == exit_codes.FAILED
    assert "not in doubt" in capsys.readouterr().err
    assert parked.cli("resolve", "--all-in-doubt", "--check") == exit_codes.OK  # changes nothing
    assert "no entries in doubt" in capsys.readouterr().out
    assert parked.cli("resolve", parked.ids()[0], "--check") == exit_codes.USAGE
    assert "--check apply with --all-in-doubt only" in capsys.readouterr().err


def test_usage_errors(parked: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    assert parked.cli("requeue", "--yes") == exit_codes.USAGE
    assert "give entry IDs, or --all-matching" in capsys.readouterr().err
    ids = parked.ids()
    assert parked.cli("requeue", ids[0], "--dead-letter-reason", "rejected", "--yes") == 2
    assert "filters apply with --all-matching only" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parked.cli("list", "--since", "yesterday-ish")
    assert "not a time" in capsys.readouterr().err


def test_json_output_keeps_timestamps_and_ids_that_look_like_card_numbers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from app.cli.dlq_output import print_json, summary_json
    from services.masking.text import luhn_valid
    from services.workbench.model import EntrySummary

    ts = 1715947200004
    assert luhn_valid(str(ts))  # masking it wholesale would print '171594***0004'
    summary = EntrySummary(
        entry_id="18f8a3c2e00000004111",
        dlq="dlq",
        parked_at_ms=ts,
        dead_lettered_at_ms=ts,
        payment_id="pay_1",
        merchant="Acme",
        amount="1.00",
        amount_value=1.0,
        currency="EUR",
        reason="rejected",
        origin_queue="work",
        routing_key=f"card.{PAN}",
        attempts=1,
        state=EntryState.PARKED,
        last_operator=None,
        body_kind="json",
        size=10,
        message_id=None,
    )
    print_json([summary_json(summary)])
    (row,) = json.loads(capsys.readouterr().out)
    assert row["parked_at_ms"] == ts and row["dead_lettered_at_ms"] == ts
    assert row["entry_id"] == "18f8a3c2e00000004111"
    assert PAN not in row["routing_key"] and row["routing_key"].startswith("card.411111")


LUHN_ID = "pay_17d5570756950439"  # its last 13 digits pass the Luhn check (issue 9)
MASKED = "411111******1111"


@pytest.fixture
def with_ids(setup: Setup, capsys: pytest.CaptureFixture[str]) -> Setup:
    body = {"payment_id": LUHN_ID, "amount": 5, "note": PAN, "memo": "cvv 918, CVC: 1234"}
    setup.dead_letter(
        [orjson.dumps(body)],
        message_id=f"msg-{PAN}",
        correlation_id=f"corr_{PAN}",
        headers={
            "cvv": "918",
            "CVC": "1234",
            "cvv2": 737,
            "security_code": bytearray(b"555"),
            "remark": f"customer read CVC: 1234 off {PAN}",
        },
    )
    assert setup.cli("park", "--once") == exit_codes.OK
    capsys.readouterr()
    return setup


def test_list_shows_ids_that_pass_luhn_whole(
    with_ids: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    assert with_ids.cli("list") == exit_codes.OK
    assert LUHN_ID in capsys.readouterr().out
    assert with_ids.cli("list", "--json") == exit_codes.OK
    [row] = json.loads(capsys.readouterr().out)
    assert row["payment_id"] == LUHN_ID and row["message_id"] == f"msg-{PAN}"


def test_show_json_shows_ids_whole_cards_masked_and_nothing_cvv_like(
    with_ids: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    [entry_id] = with_ids.ids()
    assert with_ids.cli("show", entry_id, "--json") == exit_codes.OK
    data = json.loads(capsys.readouterr().out)
    assert data["entry"]["payment_id"] == LUHN_ID
    content = data["body"]["content"]
    assert content["payment_id"] == LUHN_ID
    assert content["note"] == MASKED  # a card number standing alone under another key
    assert content["memo"] == "cvv •••, CVC: •••"
    properties = data["properties"]
    assert properties["message_id"] == f"msg-{PAN}"
    assert properties["correlation_id"] == f"corr_{PAN}"
    headers = data["headers"]
    for name in ("cvv", "CVC", "cvv2", "security_code"):
        assert headers[name] == "•••", name
    assert headers["remark"] == f"customer read CVC: ••• off {MASKED}"


def test_show_text_shows_ids_whole_cards_masked_and_nothing_cvv_like(
    with_ids: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    [entry_id] = with_ids.ids()
    assert with_ids.cli("show", entry_id) == exit_codes.OK
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert f"payment      {LUHN_ID}" in lines
    assert f"  message_id: msg-{PAN}" in lines and f"  correlation_id: corr_{PAN}" in lines
    for name in ("cvv", "CVC", "cvv2", "security_code"):
        assert f'  {name}: "•••"' in lines, name
    assert f'  remark: "customer read CVC: ••• off {MASKED}"' in lines
    assert f'  "payment_id": "{LUHN_ID}",' in lines
    assert f'  "note": "{MASKED}",' in lines
    assert '  "memo": "cvv •••, CVC: •••"' in lines
    for code in ("918", "1234", "737", "555"):
        assert f": {code}" not in out and f'"{code}"' not in out and f" {code}," not in out


def test_a_missing_id_is_named_and_writes_no_audit_record(
    parked: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = "18f8a3c2e00000009999"
    assert parked.cli("requeue", missing, "--yes") == exit_codes.FAILED
    captured = capsys.readouterr()
    assert f"no such entry: {missing} (looked in {parked.prefix}dlq)" in captured.err
    assert "nothing done" in captured.err
    assert parked.cli("audit") == exit_codes.OK
    assert capsys.readouterr().out == ""

    ids = parked.ids()
    assert parked.cli("requeue", ids[0], missing, "--note", "replay after fix", "--yes") == 1
    captured = capsys.readouterr()
    assert f"no such entry: {missing}" in captured.err
    assert parked.flow is not None
    assert captured.out.strip() == f"1 requeued to {parked.flow.work}"
    assert parked.cli("audit", "--json") == exit_codes.OK
    records = json.loads(capsys.readouterr().out)
    (record,) = [r for r in records if r["result"] != "started"]
    assert record["entry_ids"] == [ids[0]] and record["result"].startswith("requeued 1,")
    assert missing not in json.dumps(records)


def test_notes_reach_the_audit_trail(parked: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    ids = parked.ids()
    assert parked.cli("requeue", ids[0], "--note", f"acquirer back, card {PAN}", "--yes") == 0
    assert parked.cli("retry", ids[1], "--note", "second try", "--delay", "1", "--yes") == 0
    assert parked.cli("cancel", ids[2], "--note", "customer asked", "--yes") == 0
    capsys.readouterr()
    assert parked.cli("audit", "--json") == exit_codes.OK
    records = json.loads(capsys.readouterr().out)
    details = {r["action"]: r["detail"] for r in records if r["result"] != "started"}
    assert details["requeue"] == "note: acquirer back, card 411111******1111"
    assert details["retry"] == "note: second try; delay 1 s"
    assert "customer asked" in details["cancel"]
    assert parked.flow is not None

    async def cleanup_delay(broker: Broker, store: ParkingStore) -> None:
        await broker.delete_queue(f"payops.delay.{parked.prefix}work.1s")

    parked.call(cleanup_delay)


def test_times_are_local_with_the_zone_named(
    parked: Setup, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:

    from tests.helpers.zones import local_zone

    with local_zone(monkeypatch, "America/New_York"):
        assert parked.cli("list") == exit_codes.OK
        rows = capsys.readouterr().out.splitlines()[1:]
        assert rows and all(re.search(r" \d\d:\d\d:\d\d E[SD]T ", row) for row in rows), rows
        ids = parked.ids()
        assert parked.cli("requeue", ids[0], "--yes") == exit_codes.OK
        capsys.readouterr()
        assert parked.cli("audit") == exit_codes.OK
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d E[SD]T ", capsys.readouterr().out)
        assert parked.cli("show", ids[1]) == exit_codes.OK
        out = capsys.readouterr().out
        assert re.search(r"dead-letter  \S+ \S+ E[SD]T, parked \S+ \S+ E[SD]T", out), out
        assert re.search(r"x1 at \S+ \S+ E[SD]T ", out), out
        assert parked.cli("list", "--json") == exit_codes.OK
        row = json.loads(capsys.readouterr().out)[0]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-0[45]:00", row["parked_at"])


def test_show_counts_deaths_across_requeues(
    parked: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    before = parked.ids()
    assert parked.cli("requeue", before[0], "--yes") == exit_codes.OK

    async def fail_again(broker: Broker, store: ParkingStore) -> None:
        flow = DeadLetterFlow(broker, "rejected")
        await broker.wait_depth(flow.work, 1)
        await flow.kill(1)

    parked.call(fail_again)
    assert parked.cli("park", "--once") == exit_codes.OK
    capsys.readouterr()
    (again,) = set(parked.ids()) - set(before)  # the same payment, parked a second time
    assert parked.cli("show", again) == exit_codes.OK
    out = capsys.readouterr().out
    assert "earlier cycles: 1 deaths before earlier requeues (payops-deaths), 2 in all" in out
    assert parked.cli("show", again, "--json") == exit_codes.OK
    data = json.loads(capsys.readouterr().out)
    assert (data["earlier_deaths"], data["total_deaths"]) == (1, 2)
    assert data["entry"]["attempts"] == 2


# --------------------------------------------------------------------------- park: durability


@pytest.mark.skipif(not servers_available(), reason="redis-server is not installed")
def test_park_refuses_an_evicting_redis_unless_allowed_and_says_why(
    setup: Setup,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    setup.dead_letter([payment(i) for i in range(3)])
    server = PrivateRedis(
        tmp_path / "redis", "--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"
    )
    server.start()
    try:
        refused = setup.write_config(redis_url=server.url, allow_volatile_store=False)
        capsys.readouterr()
        assert setup.cli("park", "--once", config=refused) == exit_codes.USAGE
        err = capsys.readouterr().err
        assert "parking refused" in err and "maxmemory-policy allkeys-lru" in err
        assert "allow_volatile_store = true" in err
        assert "app.cli.dlq_park: parking refused" in err  # the log line, besides the message

        allowed = setup.write_config(redis_url=server.url, allow_volatile_store=True)
        assert setup.cli("park", "--once", config=allowed) == exit_codes.OK
        out, err = capsys.readouterr()
        assert f"{setup.prefix}dlq: parked 3, already parked 0" in out  # nothing taken before
        assert "warning: Redis evicts keys" in err
    finally:
        server.kill()


def test_the_confirmation_question_shows_ids_whole_and_card_numbers_masked(
    with_ids: Setup, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda *a: "n")
    [entry] = with_ids.ids()
    assert with_ids.cli("retry", entry) == exit_codes.FAILED  # answered no
    err = capsys.readouterr().err
    assert with_ids.flow is not None
    assert f"Retry payment {LUHN_ID} through {with_ids.flow.work}?" in err
    assert "nothing done" in err
    assert with_ids.cli("retry", entry, "--dry-run") == exit_codes.OK
    assert f"Retry payment {LUHN_ID} through {with_ids.flow.work}" in capsys.readouterr().out
    # without a terminal the refusal repeats the question, the id whole
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert with_ids.cli("requeue", entry) == exit_codes.USAGE
    assert f"Requeue payment {LUHN_ID} to" in capsys.readouterr().err


def test_the_confirmation_question_masks_a_payment_id_that_is_a_card_number(
    parked: Setup, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda *a: "n")
    for entry in parked.ids():  # the one whose payment id is a bare card number
        assert parked.cli("requeue", entry) == exit_codes.FAILED
        err = capsys.readouterr().err
        assert PAN not in err
        if MASKED in err:
            assert f"Requeue payment {MASKED} to" in err
            break
    else:
        pytest.fail("no entry with the card-number payment id was asked about")


def test_damaged_entries_are_listed_and_shown_marked_and_masked(
    parked: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    """A summary with numbers where text belongs (a card number among them) and an exchange
    and routing key that are not UTF-8: shown marked (``<number ...>``, ``\\xNN``), masked."""
    ids = parked.ids()
    numbers = [1, 1_715_947_200_000, int(PAN), int(PAN), 12.5, "12.5", ["EUR"], {"code": 7}]
    numbers += [7, True, 1, ["json"], 10, int(PAN)]

    async def damage(broker: Broker, store: ParkingStore) -> None:
        key = store.entry_key(f"{parked.prefix}dlq", ids[0])
        raw = f"ex\xff{PAN}".encode("latin-1")
        await store.redis.hset(
            key, mapping={"summary": orjson.dumps(numbers), "exchange": raw, "rkey": b"rk\xfe"}
        )

    parked.call(damage)
    for args in (("list",), ("list", "--json"), ("show", ids[0]), ("show", ids[0], "--json")):
        assert parked.cli(*args) == exit_codes.OK, args
        out = capsys.readouterr().out
        assert PAN not in out, args
        assert "<number 411111******1111>" in out, args
    assert parked.cli("show", ids[0], "--json") == exit_codes.OK
    data = json.loads(capsys.readouterr().out)
    assert data["exchange"] == "ex\\xff411111******1111"
    assert data["routing_key"] == "rk\\xfe"
    assert data["entry"]["reason"] == '<object {"code":7}>'


def test_x_death_texts_are_shown_masked_with_bytes_that_are_not_utf8_escaped(
    parked: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    """An x-death record whose exchange is not UTF-8 and holds a card number, a queue, a
    reason and a routing key holding one (the entry's reason and queue too): ``list`` and
    ``show`` (text and --json) mask them all and write the bytes as ``\\xNN``."""
    ids = parked.ids()
    dlq = f"{parked.prefix}dlq"

    async def damage(broker: Broker, store: ParkingStore) -> None:
        key = store.entry_key(dlq, ids[0])
        headers = decode_table(await store.redis.hget(key, F_HEADERS))
        headers["x-death"][0].update(
            exchange=f"ex\xff{PAN}".encode("latin-1"),
            queue=f"q-{PAN}",
            reason=f"why-{PAN}",
            **{"routing-keys": [f"rk-{PAN}"]},
        )
        headers[DEATHS_HEADER] = 1
        headers[HISTORY_HEADER] = [{"queue": f"old-{PAN}", "reason": "r", "count": 1}]
        await store.redis.hset(key, F_HEADERS, encode_table(headers))
        # the entry's reason and queue, which parking takes from the x-death record
        blob = await store.redis.hget(key, "summary")
        stored = summary_from_blob(dlq, ids[0], 0, blob, state=EntryState.PARKED, operator=None)
        summary = dataclasses.replace(stored, reason=f"why-{PAN}", origin_queue=f"q-{PAN}")
        await store.redis.hset(key, "summary", summary_blob(summary))

    parked.call(damage)
    assert parked.cli("list") == exit_codes.OK
    out = capsys.readouterr().out
    assert PAN not in out and f"why-{MASKED_PAN}" in out
    assert parked.cli("show", ids[0]) == exit_codes.OK
    out = capsys.readouterr().out
    assert PAN not in out
    assert f"why-{MASKED_PAN} in q-{MASKED_PAN} x1" in out
    assert f"(exchange ex\\xff{MASKED_PAN}, routing keys rk-{MASKED_PAN})" in out
    assert f"r in old-{MASKED_PAN} x1" in out
    assert f"reason       why-{MASKED_PAN} in queue q-{MASKED_PAN}" in out

    assert parked.cli("show", ids[0], "--json") == exit_codes.OK
    out = capsys.readouterr().out
    death = json.loads(out)["x_death"][0]
    assert PAN not in out
    assert death["exchange"] == f"ex\\xff{MASKED_PAN}"
    assert (death["queue"], death["reason"]) == (f"q-{MASKED_PAN}", f"why-{MASKED_PAN}")
    assert death["routing_keys"] == [f"rk-{MASKED_PAN}"]


def test_control_characters_from_a_message_reach_the_terminal_as_escapes(
    parked: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    """An x-death routing key and reason holding NUL, ESC (an ANSI colour sequence) and a
    newline, and the entry's own routing key an ESC: ``show`` and ``list`` write them as
    ``\\xNN``, so the message cannot drive the operator's
    terminal or cut a line."""
    ids = parked.ids()
    dlq = f"{parked.prefix}dlq"

    async def damage(broker: Broker, store: ParkingStore) -> None:
        key = store.entry_key(dlq, ids[0])
        headers = decode_table(await store.redis.hget(key, F_HEADERS))
        headers["x-death"][0].update(reason="why\nnot", **{"routing-keys": ["rk\x00\x1b[31mred"]})
        await store.redis.hset(key, F_HEADERS, encode_table(headers))
        blob = await store.redis.hget(key, "summary")
        stored = summary_from_blob(dlq, ids[0], 0, blob, state=EntryState.PARKED, operator=None)
        summary = dataclasses.replace(stored, routing_key="own\x1b[2Jkey")
        await store.redis.hset(key, "summary", summary_blob(summary))

    parked.call(damage)
    assert parked.cli("show", ids[0]) == exit_codes.OK
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x00" not in out
    assert "routing keys rk\\x00\\x1b[31mred)" in out
    assert "why\\x0anot in " in out
    assert "(routing key own\\x1b[2Jkey)" in out
    assert parked.cli("list") == exit_codes.OK
    assert "\x1b" not in capsys.readouterr().out
