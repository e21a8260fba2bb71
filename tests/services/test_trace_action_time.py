"""An operator action in a payment's timeline comes before the flow events it caused.

An action writes a ``started`` audit record before it claims anything and its record of
what it did when it is over; by then a fast consumer has often processed the replayed
message. The trace placed the action at its second record, after its own results
(``payops trace``: "captured (replayed)" above "requeue", and no "then captured").
"""

from __future__ import annotations

import orjson
import pytest
import redis.asyncio as aioredis

from services.config import FieldPaths
from services.flow.payment_events import PaymentEvent, PaymentEventStore
from services.trace import trace_payment
from services.workbench.codec import MessageRecord
from services.workbench.model import AUDIT_STARTED, AuditRecord
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import make_profile

pytestmark = pytest.mark.integration


async def test_an_action_is_placed_when_it_started_before_what_the_flow_did_next(
    amqp_url: str, redis_url: str, prefix: str, redis_client: aioredis.Redis
) -> None:
    dlq = f"{prefix}.dlq"
    profile = make_profile(amqp_url, redis_url, prefix, [dlq])
    store = ParkingStore(redis_client, prefix)
    body = orjson.dumps({"payment_id": "pay_31", "amount": "5.00", "currency": "EUR"})
    parked = await store.park(dlq, MessageRecord(body, {"message_id": "m-31"}), FieldPaths())
    entry = await store.get(dlq, parked.entry_id)
    assert entry is not None
    start = entry.summary.parked_at_ms + 60_000
    run = {"operator": "alice", "host": "ops-1", "action": "requeue", "target": "payments.work"}
    # another action's records in between: the started record is found by its action id
    await store.append_audit(
        dlq, AuditRecord(start, entry_ids=(), result=AUDIT_STARTED, action_id="run-1", **run)
    )
    await store.append_audit(
        dlq, AuditRecord(start + 5, entry_ids=(), result=AUDIT_STARTED, action_id="run-2", **run)
    )
    finished = "requeued 1, skipped 0, failed 0"
    await store.append_audit(
        dlq,
        AuditRecord(
            start + 800, entry_ids=(parked.entry_id,), result=finished, action_id="run-1", **run
        ),
    )
    events = PaymentEventStore.for_profile(redis_client, profile)
    await events.append(
        [
            PaymentEvent("pay_31", start + 300, "authorized", replayed=True, key="r1"),
            PaymentEvent("pay_31", start + 320, "captured", replayed=True, key="r2"),
        ]
    )

    trace = await trace_payment(redis_client, profile, "pay_31")

    kinds = [(s.kind, s.what) for s in trace.steps]
    assert kinds == [
        ("parked", "parked"),
        ("action", "requeue"),
        ("event", "authorized"),
        ("event", "captured"),
    ], kinds
    action = next(s for s in trace.steps if s.kind == "action")
    assert action.at_ms == start and finished in action.detail
    assert action.after == ("authorized", "captured")
