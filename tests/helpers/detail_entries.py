"""Parked entries for the detail pane's tests: a card payment with its x-death, its
audit trail (plain data, no broker)."""

from __future__ import annotations

import datetime
import json
import time

from services.config import FieldPaths
from services.trace_model import PaymentTrace, TracedEntry, TraceStep
from services.workbench.codec import MessageRecord, parse_x_death
from services.workbench.model import AuditRecord, EntryState, ParkedEntry, summarize

PAN = "4111111111111111"
MASKED_PAN = "411111******1111"
CVV = "918"
NOW_MS = int(time.time() * 1000)
ENTRY_ID = "01900a1b2c3d00000001"


def utc_minutes_ago(minutes: float) -> datetime.datetime:
    moment = datetime.datetime.fromtimestamp(NOW_MS / 1000 - minutes * 60, tz=datetime.UTC)
    return moment.replace(microsecond=0)


def payment_body(**extra) -> bytes:
    body = {
        "payment_id": "pay_8f2c1a77",
        "merchant": "ACME Books Ltd",
        "amount": 0,
        "currency": "EUR",
        "status": "authorized",
        "card": {"number": PAN, "cvv": CVV, "expiry": "12/29", "holder": "J. Doe"},
        "customer": {"email": "j.doe@example.com", "country": "DE"},
        "items": [{"sku": "BK-001", "qty": 2, "price": 21.25}],
        "created_at": "2024-05-03T14:01:12Z",
        **extra,
    }
    return json.dumps(body).replace('"amount": 0', '"amount": 42.50').encode()


def death_headers() -> dict:
    return {
        "x-death": [
            {
                "count": 2,
                "reason": "rejected",
                "queue": "payments.process",
                "time": utc_minutes_ago(3),
                "exchange": "payments",
                "routing-keys": ["payment.authorized"],
            },
            {
                "count": 1,
                "reason": "expired",
                "queue": "payments.wait",
                "time": utc_minutes_ago(10),
                "exchange": "",
                "routing-keys": ["payments.wait"],
            },
        ],
        "x-first-death-queue": "payments.wait",
        "x-first-death-reason": "expired",
        "x-first-death-exchange": "",
        "payops-attempt": 1,
        "x-card-cvv": CVV,
        "note": "card 4111 1111 1111 1111 declined",
    }


def make_entry(
    body: bytes | None = None,
    *,
    headers: dict | None = None,
    state: EntryState = EntryState.PARKED,
    operator: str | None = None,
    action: str | None = None,
    last_error: str | None = None,
    entry_id: str = ENTRY_ID,
    updated_at_ms: int | None = None,
    fingerprint: str = "ab" * 32,
) -> ParkedEntry:
    headers = death_headers() if headers is None else headers
    record = MessageRecord(
        body=payment_body() if body is None else body,
        properties={
            "content_type": "application/json",
            "delivery_mode": 2,
            "message_id": "msg-7731",
            "timestamp": utc_minutes_ago(15),
            "app_id": "checkout",
        },
        headers=headers,
        exchange="payments.dlx",
        routing_key="payment.authorized",
    )
    summary = summarize(
        "payments.dlq",
        entry_id,
        record,
        FieldPaths(),
        NOW_MS - 120_000,
        state=state,
        last_operator=operator,
    )
    return ParkedEntry(
        summary=summary,
        record=record,
        deaths=parse_x_death(headers),
        fingerprint=fingerprint,
        version=3,
        last_error=last_error,
        action=action,
        operator=operator,
        updated_at_ms=updated_at_ms if updated_at_ms is not None else NOW_MS - 60_000,
    )


def audit_records(entry_id: str = ENTRY_ID) -> list[AuditRecord]:
    return [
        AuditRecord(
            ts=NOW_MS - 600_000,
            operator="alice",
            host="ops-1",
            action="retry",
            entry_ids=(entry_id,),
            target="payments.process",
            result="failed",
            detail="unroutable: NO_ROUTE",
            stream_id=f"{NOW_MS - 600_000}-0",
        ),
        AuditRecord(
            ts=NOW_MS - 300_000,
            operator="bob",
            host="ops-2",
            action="cancel",
            entry_ids=(entry_id, "01900a1b2c3d00000002"),
            target="payments.events",
            result="ok",
            detail=f"customer asked, card {PAN} cvv={CVV}",
            stream_id=f"{NOW_MS - 300_000}-0",
        ),
        AuditRecord(
            ts=NOW_MS - 100_000,
            operator="carol",
            host="ops-3",
            action="requeue",
            entry_ids=("01900a1b2c3d00000009",),
            target="payments.process",
            result="ok",
            stream_id=f"{NOW_MS - 100_000}-0",
        ),
    ]


def timeline_trace(
    payment_id: str = "pay_17d5570756950439", *, parked: bool = True
) -> PaymentTrace:
    """A payment that failed on the flow, was dead-lettered, parked, requeued by alice and
    captured (``parked``); else only its flow events and the dead-lettering."""
    t = NOW_MS - 60_000
    steps = [
        TraceStep(t, "event", "requested"),
        TraceStep(t + 900, "event", "failed", "acquirer timeout after 3012 ms on acq-7"),
        TraceStep(
            t + 1000, "dead_letter", "dead-lettered", "rejected in payments.process", exact=False
        ),
    ]
    entries: tuple[TracedEntry, ...] = ()
    if parked:
        steps += [
            TraceStep(t + 1200, "parked", "parked", "in payments.dlq as entry e1"),
            TraceStep(
                t + 30_000,
                "action",
                "requeue",
                "acquirer back; requeued 1",
                operator="alice",
                after=("captured",),
            ),
            TraceStep(t + 31_000, "event", "captured", replayed=True),
        ]
        entries = (TracedEntry("payments.dlq", "e1", EntryState.REQUEUED, t + 1200),)
    return PaymentTrace(payment_id, tuple(steps), entries, events_recorded=True)
