"""The ledger's window calls: a requeue's claims carry their intents, claims need the run's
lease, and a window of claims or finishes is one event of the changes stream."""

from __future__ import annotations

import pytest

from services.workbench.actions.ledger import ActionLedger, Finish, PendingSend, action_id_for
from services.workbench.actions.names import Action
from services.workbench.actions.recovery import recover
from services.workbench.model import EntryState
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import Broker, parked

pytestmark = pytest.mark.integration

RUN = "0123456789abcdef"


def intent(action_id: str, at: int) -> PendingSend:
    return PendingSend(
        action=Action.REQUEUE,
        action_id=action_id,
        exchange="",
        routing_key="payments.work",
        target="queue 'payments.work'",
        operator="erin",
        host="ops-pc",
        at_ms=at,
    )


async def claimed_by_window(
    store: ParkingStore, ledger: ActionLedger, dlq: str, ids: list[str]
) -> tuple[str, list[PendingSend]]:
    """The run's lease taken and ``ids`` claimed with their intents in one call."""
    token = ledger.lease_token(RUN, {"operator": "erin"})
    await ledger.acquire(RUN, [dlq], token)
    intents = [intent(action_id_for(RUN, i), 1_700_000_000_000) for i in ids]
    claims = [(i, p.action_id) for i, p in zip(ids, intents, strict=True)]
    replies = await ledger.claim_and_fetch(
        dlq, claims, "requeue", "erin", run_id=RUN, token=token, intents=intents
    )
    assert replies is not None and all(claim.ok for claim, _ in replies)
    return token, intents


async def test_a_requeue_claim_writes_its_intent_in_the_same_call(
    broker: Broker, store: ParkingStore
) -> None:
    flow, ids = await parked(broker, store, 3)
    ledger = ActionLedger(store)
    await claimed_by_window(store, ledger, flow.dlq, ids)

    pendings = await ledger.pending_of(flow.dlq, ids)
    assert [PendingSend.loads(p).action_id for p in pendings if p] == [
        action_id_for(RUN, i) for i in ids
    ]
    # a crash now: the messages may have been sent, so recovery reports them in doubt
    await store.redis.delete(ledger.lease_key(flow.dlq, RUN))
    report = await recover(ledger, [flow.dlq], operator="bob", host="ops-pc")
    assert sorted(e.entry_id for e in report.in_doubt) == ids and not report.released


async def test_claims_are_made_only_while_the_run_holds_its_lease(
    broker: Broker, store: ParkingStore
) -> None:
    flow, ids = await parked(broker, store, 2)
    ledger = ActionLedger(store)
    token = ledger.lease_token(RUN, {"operator": "erin"})
    await ledger.acquire(RUN, [flow.dlq], token)
    await store.redis.set(ledger.lease_key(flow.dlq, RUN), "fenced:bob")  # a recovery fenced it
    claims = [(i, action_id_for(RUN, i)) for i in ids]

    replies = await ledger.claim_and_fetch(
        flow.dlq, claims, "requeue", "erin", run_id=RUN, token=token
    )

    assert replies is None
    entries = [await store.get(flow.dlq, i) for i in ids]
    assert [e.state for e in entries if e is not None] == [EntryState.PARKED] * 2
    assert await store.in_flight(flow.dlq) == []


async def test_a_window_of_claims_or_finishes_is_one_change_read_as_one_per_entry(
    broker: Broker, store: ParkingStore
) -> None:
    flow, ids = await parked(broker, store, 4)
    ledger = ActionLedger(store)
    changes_key = store.keys(flow.dlq).changes
    cursor = await store.last_change_id(flow.dlq)
    before = await store.redis.xlen(changes_key)

    _, intents = await claimed_by_window(store, ledger, flow.dlq, ids)
    assert await store.redis.xlen(changes_key) == before + 1
    assert len(await store.in_flight(flow.dlq)) == 4
    finishes = [
        Finish(i, p.action_id, EntryState.REQUEUED, "requeued")
        for i, p in zip(ids[:3], intents[:3], strict=True)
    ]
    finishes.append(Finish(ids[3], intents[3].action_id, None, error="returned"))
    replies = await ledger.finish(flow.dlq, finishes)
    assert all(reply.ok for reply in replies)
    assert await store.redis.xlen(changes_key) == before + 3  # requeued, and released
    assert await store.in_flight(flow.dlq) == []

    changes = await store.read_changes(flow.dlq, cursor)
    assert [(c.entry_id, c.op, c.state) for c in changes] == [
        *((i, "claim", EntryState.CLAIMED) for i in ids),
        *((i, "complete", EntryState.REQUEUED) for i in ids[:3]),
        (ids[3], "release", EntryState.PARKED),
    ]
    assert {c.operator for c in changes} == {"erin"}
    assert len({c.stream_id for c in changes}) == 3
    assert await store.read_changes(flow.dlq, changes[-1].stream_id) == []
    assert await ledger.pending_of(flow.dlq, ids) == [None] * 4  # the intents are dropped
