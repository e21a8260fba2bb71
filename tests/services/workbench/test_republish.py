"""republish: a requeue's encoded properties stored at park time give the very bytes the
encoder gives, with only the action id spliced in."""

from __future__ import annotations

import struct

import pytest

from services.links.headers import ACTION_ID_HEADER
from services.workbench.actions.ledger import PendingSend, publish_item, stored_requeue_item
from services.workbench.actions.names import Action
from services.workbench.codec import MessageRecord, encode_message_properties
from services.workbench.death_history import republish_properties
from services.workbench.republish import requeue_headers, requeue_properties, requeue_template
from services.workbench.wire import decode_properties
from tests.helpers.wire_kit import EVERY_TYPE, entry, long_, properties, short, table

X_DEATH = entry(
    b"x-death",
    long_(
        b"A",
        long_(
            b"F",
            entry(b"count", b"l" + struct.pack(">q", 2))
            + entry(b"queue", long_(b"S", b"payments.work"))
            + entry(b"reason", long_(b"S", b"rejected"))
            + entry(b"original-expiration", long_(b"S", b"600000")),
        ),
    ),
)
EARLIER_ACTION = (
    entry(b"payops-action", long_(b"S", b"requeue")),
    entry(b"payops-action-id", long_(b"S", b"0123456789abcdef.older-entry-id")),
)


def record_of(raw: bytes | None, headers: dict[str, object] | None = None) -> MessageRecord:
    if raw is None:  # parked by a version that kept no raw bytes
        return MessageRecord(b"{}", {"content_type": "application/json"}, headers or {})
    decoded = decode_properties(raw)  # as the parker has them: the template reuses them
    headers = decoded.headers or {}
    return MessageRecord(b"{}", decoded.properties, headers, wire=raw, decoded=decoded)


def encoded_as_before(record: MessageRecord, action_id: str) -> bytes:
    """What the publisher encodes for a requeue of ``record`` (the path without a
    template)."""
    headers = requeue_headers(record, "requeue")
    headers[ACTION_ID_HEADER] = action_id
    return encode_message_properties(republish_properties(record), headers, record.wire)


X_DEATH_TIMED = entry(
    b"x-death",
    long_(
        b"A",
        long_(
            b"F",
            entry(b"count", b"l" + struct.pack(">q", 1))
            + entry(b"exchange", long_(b"S", b""))
            + entry(b"queue", long_(b"S", b"payments.work"))
            + entry(b"reason", long_(b"S", b"expired"))
            + entry(b"routing-keys", long_(b"A", long_(b"S", b"payments.work")))
            + entry(b"time", b"T" + struct.pack(">Q", 1_780_000_000)),
        )
        + long_(
            b"F",
            entry(b"count", b"l" + struct.pack(">q", 300)) + entry(b"queue", long_(b"S", b"q2")),
        ),
    ),
)
EARLIER_HISTORY = (
    entry(b"payops-deaths", b"I" + struct.pack(">i", 3)),
    entry(
        b"payops-death-history",
        long_(
            b"A", long_(b"F", entry(b"queue", long_(b"S", b"older")) + entry(b"count", b"b\x03"))
        ),
    ),
)

CASES = {
    "x-death with times and routing keys, an earlier history carried": properties(
        content_type=short(b"application/json"),
        headers=table(EARLIER_HISTORY[0], X_DEATH_TIMED, EARLIER_HISTORY[1]),
        delivery_mode=b"\x02",
    ),
    "every type, x-death": properties(
        content_type=short(b"application/json"),
        content_encoding=short(b"utf-8"),
        headers=table(*EVERY_TYPE, X_DEATH),
        delivery_mode=b"\x02",
        message_id=short(b"m-1"),
    ),
    "requeued before (its action headers in place)": properties(
        headers=table(EARLIER_ACTION[0], X_DEATH, EARLIER_ACTION[1], *EVERY_TYPE[:3]),
        delivery_mode=b"\x02",
    ),
    "no headers at all": properties(content_type=short(b"text/plain"), delivery_mode=b"\x01"),
}


@pytest.mark.parametrize("raw", list(CASES.values()), ids=list(CASES))
@pytest.mark.parametrize("run_id", ["fedcba9876543210", "short", "a-much-longer-run-id-than-16"])
def test_the_template_gives_the_encoders_bytes(raw: bytes, run_id: str) -> None:
    record = record_of(raw)
    template = requeue_template(record, "01HXYZ-entry")
    assert template is not None
    action_id = f"{run_id}.01HXYZ-entry"
    assert requeue_properties(template, action_id) == encoded_as_before(record, action_id)


def test_a_record_without_raw_bytes_gets_a_template_too() -> None:
    record = record_of(None, {"b": 1, "a": "x", "x-death": [{"queue": "q", "count": 1}]})
    template = requeue_template(record, "e1")
    assert template is not None
    assert requeue_properties(template, "r.e1") == encoded_as_before(record, "r.e1")


def test_a_user_id_is_left_to_the_publishers_check() -> None:
    raw = properties(headers=table(*EVERY_TYPE[:2]), user_id=short(b"someone-else"))
    assert requeue_template(record_of(raw), "e1") is None


def test_a_damaged_template_is_not_used() -> None:
    assert requeue_properties(b"", "r.e1") is None
    assert requeue_properties(b"\x02" + b"\x00" * 12, "r.e1") is None
    assert requeue_properties(b"\x01" + struct.pack(">II", 0, 99), "r.e1") is None


def test_the_stored_message_is_the_one_publish_item_builds() -> None:
    raw = CASES["every type, x-death"]
    record = record_of(raw)
    template = requeue_template(record, "e1")
    assert template is not None
    pending = PendingSend(Action.REQUEUE, "0123456789abcdef.e1", "", "payments.work", "", "", "", 0)
    stored = stored_requeue_item(record.body, template, pending)
    built = publish_item(record, pending)
    assert stored is not None and stored.encoded is not None
    headers = {**built.headers, ACTION_ID_HEADER: pending.action_id}
    assert stored.encoded == encode_message_properties(built.properties, headers, built.wire)
    assert (stored.exchange, stored.routing_key, stored.body) == ("", "payments.work", b"{}")
    retry = PendingSend(Action.RETRY, "0123456789abcdef.e1", "", "payments.work", "", "", "", 0)
    assert stored_requeue_item(record.body, template, retry) is None  # retry: from the record
