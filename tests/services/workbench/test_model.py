"""Summaries of parked messages: payment fields from the body, deaths from x-death; never fail."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from services.config import FieldPaths
from services.workbench.codec import MessageRecord
from services.workbench.model import EntryState, body_kind, summarize

UTC = datetime.UTC
DEATH_TIME = datetime.datetime(2024, 5, 17, 12, 0, tzinfo=UTC)

FIELDS = FieldPaths(payment_id="data.id", merchant="data.merchant.name", amount="data.amount")


def dead_letter(body: bytes, **headers: Any) -> MessageRecord:
    base: dict[str, Any] = {
        "x-death": [
            {
                "count": 2,
                "reason": "rejected",
                "queue": "payments.process",
                "time": DEATH_TIME,
                "exchange": "payments",
                "routing-keys": ["payment.failed"],
            },
            {"count": 1, "reason": "expired", "queue": "payments.retry", "time": DEATH_TIME},
        ]
    }
    base.update(headers)
    return MessageRecord(
        body=body,
        properties={"message_id": "m-9"},
        headers=base,
        exchange="dlx",
        routing_key="dlq-key",
    )


def test_summary_extracts_payment_fields_from_json() -> None:
    body = (
        b'{"data": {"id": "pay_4111111111111111", "merchant": {"name": "Acme"},'
        b' "amount": 42.50}, "currency": "EUR"}'
    )
    record = dead_letter(body, **{"payops-attempt": 3})
    summary = summarize("dlq", "e1", record, FIELDS, parked_at_ms=1000)
    assert summary.payment_id == "pay_4111111111111111"  # an id at the id path, not a card
    assert summary.merchant == "Acme"
    assert summary.amount == "42.50" and summary.amount_value == 42.5
    assert summary.currency == "EUR"
    assert summary.reason == "rejected" and summary.origin_queue == "payments.process"
    assert summary.routing_key == "payment.failed"
    assert summary.attempts == 2 + 1 + 3
    assert summary.dead_lettered_at_ms == int(DEATH_TIME.timestamp() * 1000)
    assert summary.state is EntryState.PARKED and summary.body_kind == "json"
    assert summary.size == len(body) and summary.message_id == "m-9"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"", "empty"),
        (b"plain text, not JSON {", "text"),
        (b'{"truncated": ', "text"),
        (b"\xff\xfe\x00\x01", "binary"),
        (b"valid utf-8 but \x00 control", "binary"),
        (b"  [1, 2, 3]", "json"),
        (b"42", "json"),
        (b"[" * 100_000, "text"),
        (b"{" + b'"k": 1, ' * 500_000 + b'"z": 2}', "json"),
        (bytes(range(256)) * 40_000, "binary"),
    ],
)
def test_summary_of_any_body_never_raises(body: bytes, kind: str) -> None:
    summary = summarize("dlq", "e1", dead_letter(body), FIELDS, parked_at_ms=5)
    assert summary.body_kind == kind
    assert summary.size == len(body)
    assert body_kind(body)[0] == kind


@pytest.mark.parametrize(
    ("payment_id", "shown"),
    [
        (b'"pay_17d5570756950439"', "pay_17d5570756950439"),  # 13 digits pass Luhn: an id
        (b'"4111111111111111"', "411111******1111"),  # nothing but a card number
        (b"4111111111111111", "411111******1111"),
        (b'"4111 1111 1111 1111"', "411111******1111"),
        (b"4111111111111112", "4111111111111112"),  # fails Luhn
    ],
)
def test_summary_masks_the_payment_id_as_an_identifier(payment_id: bytes, shown: str) -> None:
    body = b'{"data": {"id": ' + payment_id + b"}}"
    summary = summarize("dlq", "e1", MessageRecord(body=body), FIELDS, parked_at_ms=1)
    assert summary.payment_id == shown


def test_summary_tolerates_odd_field_values_and_no_deaths() -> None:
    body = (
        b'{"data": {"id": {"nested": 1}, "merchant": {"name": 7}, "amount": "n/a"},'
        b' "currency": null}'
    )
    record = MessageRecord(body=body, headers={"payops-attempt": "x"})
    summary = summarize("dlq", "e1", record, FIELDS, parked_at_ms=77)
    assert summary.payment_id is None and summary.merchant == "7"
    assert summary.amount == "n/a" and summary.amount_value is None
    assert summary.reason == "" and summary.origin_queue == ""
    assert summary.routing_key == "" and summary.attempts == 0
    assert summary.dead_lettered_at_ms == 77 and summary.message_id is None
    for amount, value in [(b"1e400", None), (b'"NaN"', None), (b"7", 7.0), (b"true", None)]:
        s = summarize(
            "d", "e", MessageRecord(body=b'{"data": {"amount": ' + amount + b"}}"), FIELDS, 1
        )
        assert s.amount_value == value
