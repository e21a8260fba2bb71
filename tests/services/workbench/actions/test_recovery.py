"""Recovery of interrupted actions: leases, in-doubt entries and how they are resolved."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import pytest

from services.workbench.actions.ledger import ActionLedger, action_id_for, owner_is_dead
from services.workbench.actions.publisher import (
    ACTION_ID_HEADER,
    ActionPublisher,
    PublishItem,
    PublishOutcome,
)
from services.workbench.actions.service import ActionService
from services.workbench.model import EntryState
from services.workbench.query import ActionTarget
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import (
    Broker,
    entry_ids,
    make_profile,
    parked,
    parked_payments,
)
from tests.helpers.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


@pytest.fixture
async def publisher(amqp_url: str) -> AsyncIterator[ActionPublisher]:
    publisher = ActionPublisher(amqp_url)
    yield publisher
    await publisher.close()


@pytest.fixture
def service(
    store: ParkingStore,
    publisher: ActionPublisher,
    broker: Broker,
    amqp_url: str,
    redis_url: str,
    prefix: str,
) -> ActionService:
    profile = make_profile(amqp_url, redis_url, prefix, [broker.name("dlq")])
    return ActionService(store, publisher, profile, "dave", "ops-pc", window=5)


async def test_a_live_run_is_left_alone_and_a_dead_one_is_released(
    broker: Broker, store: ParkingStore, service: ActionService
) -> None:
    flow, ids = await parked(broker, store, 3)
    ledger = ActionLedger(store)
    token = (
        "live:"
        + orjson.dumps(
            {"run": "r1", "operator": "erin", "host": "far-pc", "machine": "far-away", "pid": 4242}
        ).decode()
    )
    await ledger.acquire("r1", [flow.dlq], token)
    claims = [(i, action_id_for("r1", i)) for i in ids[:2]]
    results = await ledger.claim_and_fetch(
        flow.dlq, claims, "requeue", "erin", run_id="r1", token=token
    )
    assert results is not None and all(claim.ok for claim, _ in results)
    assert not owner_is_dead(token)  # another machine: only its lease's expiry tells

    report = await service.recover()
    assert len(report.in_progress) == 2 and not report.released and not report.in_doubt
    assert "erin on far-pc (pid 4242)" in report.in_progress[0].note
    entry = await store.get(flow.dlq, ids[0])
    assert entry is not None and entry.state is EntryState.CLAIMED

    await store.redis.delete(ledger.lease_key(flow.dlq, "r1"))  # the lease expired
    report = await service.recover()
    assert sorted(e.entry_id for e in report.released) == ids[:2]
    assert "interrupted before the message was sent" in report.released[0].note
    entry = await store.get(flow.dlq, ids[0])
    assert entry is not None and entry.state is EntryState.PARKED
    assert entry.last_error is not None and "released by recovery" in entry.last_error
    assert (await service.recover()).clean
    # the run is fenced: were it only stalled, it could not announce a publish any more
    assert not await ledger.refresh("r1", [flow.dlq], token)
    audit = await store.read_audit(flow.dlq, count=1)
    assert audit[0].action == "recover" and audit[0].result == "released 2, in doubt 0"


async def test_a_fence_repeated_after_its_reply_was_lost_answers_the_same(
    store: ParkingStore,
) -> None:
    """What lets recovery repeat a fence through a failover: run twice (the first reply
    lost), it answers "fenced" both times - with no lease left, and with the lease of a
    process of this machine that is gone (taken over) - and a live run stays unfenced."""
    ledger = ActionLedger(store)
    gone = orjson.dumps({"operator": "recover", "host": "pc", "pid": 1, "at": 1}).decode()
    dead = ledger.lease_token("r-dead", {"operator": "erin", "pid": 2**22 + 1})
    assert owner_is_dead(dead)
    await ledger.acquire("r-dead", ["dlq"], dead)
    alive = ledger.lease_token("r-live", {"operator": "erin", "machine": "far-away"})
    await ledger.acquire("r-live", ["dlq"], alive)
    for run_id in ("r-none", "r-dead"):
        first = await ledger.fence("dlq", run_id, gone)
        again = await ledger.fence("dlq", run_id, gone)
        assert first[0] and again[0], run_id
        assert await store.redis.get(ledger.lease_key("dlq", run_id)) == f"fenced:{gone}".encode()
    for _ in range(2):
        assert await ledger.fence("dlq", "r-live", gone) == (False, alive)


async def test_in_doubt_entries_are_reported_then_resolved_three_ways(
    broker: Broker, store: ParkingStore, service: ActionService, publisher: ActionPublisher
) -> None:
    flow, ids = await parked(broker, store, 4)
    original = publisher.publish_many

    async def confirms_lost(items: Sequence[PublishItem], **_: Any) -> list[PublishOutcome]:
        await original(items)  # really sent, but as if the connection dropped before the acks
        return [PublishOutcome("unknown", "the connection to RabbitMQ was lost") for _ in items]

    publisher.publish_many = confirms_lost  # type: ignore[method-assign]
    report = await service.requeue(ActionTarget.for_entries(ids[:3]))
    publisher.publish_many = original  # type: ignore[method-assign]

    assert report.failed == 3
    assert all(o.detail.startswith("in doubt: the connection") for o in report.outcomes)
    assert "payops dlq resolve" in report.outcomes[0].detail
    sent = await broker.drain(flow.work)
    assert len(sent) == 3
    action_ids = {orjson.loads(m.body)["payment_id"]: m.headers[ACTION_ID_HEADER] for m in sent}

    recovery = await service.recover()
    assert sorted(e.entry_id for e in recovery.in_doubt) == ids[:3]
    assert not recovery.released and not recovery.in_progress
    assert "may already be there" in recovery.in_doubt[0].note
    assert flow.work in recovery.in_doubt[0].target

    delivered = await service.resolve(ids[0], "delivered")
    assert delivered.ok and "delivered" in delivered.detail
    republished = await service.resolve(ids[1], "republish")
    assert republished.ok and "same action id" in republished.detail
    released = await service.resolve(ids[2], "release")
    assert released.ok
    not_in_doubt = await service.resolve(ids[3], "delivered")
    assert not_in_doubt.status == "skipped" and "not in doubt" in not_in_doubt.detail

    (again,) = await broker.drain(flow.work)
    entry = await store.get(flow.dlq, ids[1])
    assert entry is not None and entry.state is EntryState.REQUEUED
    assert again.headers[ACTION_ID_HEADER] == entry.action_id
    assert again.headers[ACTION_ID_HEADER] in action_ids.values()
    states = [(await store.get(flow.dlq, i)).state for i in ids]  # type: ignore[union-attr]
    assert states == [
        EntryState.REQUEUED,
        EntryState.REQUEUED,
        EntryState.PARKED,
        EntryState.PARKED,
    ]
    assert (await service.recover()).clean
    audit = await store.read_audit(flow.dlq, entry_id=ids[1], count=10)
    assert any(a.action == "resolve" and a.result == "republish: done" for a in audit)


async def test_a_run_that_lost_its_lease_sends_nothing_more(
    broker: Broker, store: ParkingStore, service: ActionService
) -> None:
    flow, ids = await parked(broker, store, 15)
    service.depth = 1  # one window at a time: the fence falls between two windows
    original = service.ledger.claim_and_fetch  # a requeue's claims write its intents
    calls = 0

    async def fenced_after_first(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:  # a recovery elsewhere decided this run was dead
            run_id = kwargs["run_id"]
            await store.redis.set(service.ledger.lease_key(flow.dlq, run_id), "fenced:other")
        return await original(*args, **kwargs)

    service.ledger.claim_and_fetch = fenced_after_first  # type: ignore[method-assign]
    report = await service.requeue(ActionTarget.for_entries(ids))

    assert report.succeeded == 5 and report.failed == 10
    assert {o.detail for o in report.outcomes if not o.ok} == {
        "not sent: the action lost its lease in Redis (a recovery took over)"
    }
    assert await broker.depth(flow.work) == 5
    assert await store.in_flight(flow.dlq) == []


async def test_the_broker_lost_mid_action_leaves_nothing_lost_or_duplicated(
    broker: Broker, store: ParkingStore, amqp_url: str, redis_url: str, prefix: str
) -> None:
    flow, ids = await parked(broker, store, 300)
    proxy = TcpProxy(5672)
    await proxy.start()
    publisher = ActionPublisher(f"amqp://guest:guest@127.0.0.1:{proxy.port}/")
    profile = make_profile(amqp_url, redis_url, prefix, [flow.dlq])
    service = ActionService(store, publisher, profile, "dave", "ops-pc", window=20)
    original = publisher.publish_many
    calls = 0

    async def cut_after_two(items: Sequence[PublishItem], **kwargs: Any) -> list[PublishOutcome]:
        nonlocal calls
        calls += 1
        if calls == 3:
            await proxy.stop()  # the broker goes away under the third window
        return await original(items, **kwargs)

    publisher.publish_many = cut_after_two  # type: ignore[method-assign]
    try:
        report = await service.requeue(ActionTarget.for_entries(ids))
    finally:
        await publisher.close()
        await proxy.stop()

    assert report.failed > 0  # the windows in flight are in doubt, the rest not attempted
    assert report.succeeded + report.failed == 300
    details = {o.detail.split(":")[0] for o in report.outcomes if not o.ok}
    assert details <= {"in doubt", "not published", "not attempted"}, details
    delivered = await broker.drain(flow.work)
    assert len(delivered) == len({m.headers[ACTION_ID_HEADER] for m in delivered})
    states = [(await store.get(flow.dlq, i)).state for i in ids]  # type: ignore[union-attr]
    requeued = states.count(EntryState.REQUEUED)
    assert requeued == report.succeeded
    assert requeued <= len(delivered) <= requeued + states.count(EntryState.CLAIMED)

    good = ActionService(store, ActionPublisher(amqp_url), profile, "dave", "ops-pc")
    recovery = await good.recover()
    assert len(recovery.in_doubt) == states.count(EntryState.CLAIMED)
    sent = {m.headers[ACTION_ID_HEADER] for m in delivered}
    for found in recovery.in_doubt:
        how = "delivered" if found.action_id in sent else "republish"
        assert (await good.resolve(found.entry_id, how)).ok
    rerun = await good.requeue(ActionTarget.for_entries(ids))
    await good.publisher.close()
    assert rerun.failed == 0
    delivered += await broker.drain(flow.work)
    payments = [orjson.loads(m.body)["payment_id"] for m in delivered]
    assert sorted(payments) == sorted(f"pay_{i}" for i in range(300))


async def test_each_confirm_is_recorded_as_it_arrives_not_once_per_window(
    broker: Broker, store: ParkingStore, publisher: ActionPublisher, service: ActionService
) -> None:
    """While a window is still being published (here: held open after its confirms came
    in, as if its last confirm were slow or the actor were about to be killed), every
    message the broker confirmed is already complete in the ledger - nothing it
    confirmed is left in doubt."""
    flow = await parked_payments(broker, store, 400)
    ids = await entry_ids(store, flow.dlq)
    service.window = 400
    original = publisher.publish_many
    held_open: list[Counter[EntryState]] = []

    async def slow_to_return(items: Sequence[PublishItem], **kwargs: Any) -> list[PublishOutcome]:
        outcomes = await original(items, **kwargs)
        assert all(o.ok for o in outcomes)
        deadline = time.monotonic() + 30
        while True:  # the window is still open: its confirms must be recorded meanwhile
            states = Counter(e.state for e in await store.get_many(flow.dlq, ids) if e)
            if states[EntryState.REQUEUED] == len(items) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        held_open.append(states)
        return outcomes

    publisher.publish_many = slow_to_return  # type: ignore[method-assign]
    report = await service.requeue(ActionTarget.for_entries(ids))
    assert report.succeeded == 400
    assert held_open == [Counter({EntryState.REQUEUED: 400})]
    assert await store.in_flight(flow.dlq) == []
