"""The replay gate against the real RabbitMQ and Redis: a payment the flow captured after
its dead letter is held back and nothing reaches its queue; a payment whose other entry
was replayed is held back naming it; two operators replaying two entries of one payment
at once send one; --force with a note sends it anyway, audited; a stopped action frees
the payments it checked ahead and did not send; a window checked ahead that waited is
checked again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast

import aio_pika
import pytest

from services.config import TapBinding
from services.flow.payment_events import PaymentEventStore
from services.masking.json import mask_identifier
from services.workbench.actions import gate as gate_module
from services.workbench.actions.gate import ReplayGate
from services.workbench.actions.publisher import ActionPublisher
from services.workbench.actions.service import ActionRefused, ActionService
from services.workbench.actions.windows import Tally
from services.workbench.model import EntrySummary
from services.workbench.query import ActionTarget
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import Broker, ServiceFor, entry_ids, make_profile, park_all
from tests.helpers.outcome_kit import (
    parked_with_payments,
    payment_of,
    publish_status,
    recording_flow,
    until,
)

pytestmark = pytest.mark.integration


async def test_a_payment_captured_after_its_dead_letter_is_held_back_and_not_sent(
    broker: Broker,
    store: ParkingStore,
    publisher: ActionPublisher,
    amqp_url: str,
    redis_url: str,
    prefix: str,
) -> None:
    flow = await parked_with_payments(broker, store, ["pay_done", "pay_open"])
    events = await broker.exchange("events", aio_pika.ExchangeType.TOPIC)
    profile = make_profile(
        amqp_url,
        redis_url,
        prefix,
        [flow.dlq],
        tap_exchanges=(TapBinding(events.name),),
        alert_rules=(),
    )
    record = PaymentEventStore.for_profile(store.redis, profile)
    async with recording_flow(profile):
        publish_status(amqp_url, events.name, "pay_done", "captured")  # plain pika

        async def recorded() -> bool:
            return bool(await record.events("pay_done"))

        await until(recorded, 8, "the captured event recorded")
    ids = await entry_ids(store, flow.dlq)
    service = ActionService(
        store, publisher, profile, "alice", "test-host", finals=record.latest_with
    )
    dry = await service.requeue(ActionTarget.for_entries(ids), dry_run=True)
    assert [o.detail.startswith("held back: captured at ") for o in dry.outcomes] == [True, False]
    report = await service.requeue(ActionTarget.for_entries(ids))
    held = [o for o in report.outcomes if o.status == "skipped"]
    assert len(held) == 1 and held[0].payment_id == "pay_done"
    assert held[0].detail.endswith("by the flow")
    assert report.succeeded == 1
    assert [payment_of(m) for m in await broker.drain(flow.work)] == ["pay_open"]
    job = await service.jobs.get(report.job_id)
    assert job is not None and job.counts["held"] == 1 and job.counts["done"] == 1


async def test_an_entry_whose_payment_was_replayed_is_held_back_unless_forced(
    broker: Broker,
    store: ParkingStore,
    publisher: ActionPublisher,
    amqp_url: str,
    redis_url: str,
    prefix: str,
) -> None:
    flow = await parked_with_payments(broker, store, ["pay_twice", "pay_twice"])
    first, second = await entry_ids(store, flow.dlq)
    profile = make_profile(amqp_url, redis_url, prefix, [flow.dlq])
    alice = ActionService(store, publisher, profile, "alice", "test-host")
    bob = ActionService(store, publisher, profile, "bob", "test-host")
    assert (await alice.requeue(ActionTarget.for_entries([first]))).succeeded == 1
    report = await bob.retry(ActionTarget.for_entries([second]))
    assert report.succeeded == 0
    detail = report.outcomes[0].detail
    assert detail.startswith(f"held back: entry {first} of this payment was requeued by alice")
    assert detail.endswith("outcome pending")
    with pytest.raises(ActionRefused, match="needs a note"):
        await bob.retry(ActionTarget.for_entries([second]), force=True)
    forced = await bob.retry(
        ActionTarget.for_entries([second]), force=True, note="acquirer confirmed no charge"
    )
    assert forced.succeeded == 1
    assert len(await broker.drain(flow.work)) == 2
    audit = await store.read_audit(flow.dlq, count=10, entry_id=second)
    assert any("forced past the replay gate" in record.detail for record in audit)


async def test_two_operators_replaying_two_entries_of_one_payment_at_once_send_one(
    broker: Broker,
    store: ParkingStore,
    publisher: ActionPublisher,
    amqp_url: str,
    redis_url: str,
    prefix: str,
) -> None:
    flow = await parked_with_payments(broker, store, ["pay_race", "pay_race", "pay_other"])
    first, second, other = await entry_ids(store, flow.dlq)
    profile = make_profile(amqp_url, redis_url, prefix, [flow.dlq])
    alice = ActionService(store, publisher, profile, "alice", "host-a")
    bob = ActionService(store, publisher, profile, "bob", "host-b")
    reports = await asyncio.gather(
        alice.requeue(ActionTarget.for_entries([first, other])),
        bob.requeue(ActionTarget.for_entries([second])),
    )
    sent = sorted(payment_of(m) for m in await broker.drain(flow.work))
    assert sent == ["pay_other", "pay_race"]
    race = [o for r in reports for o in r.outcomes if o.payment_id == "pay_race"]
    assert sorted(o.status for o in race) == ["done", "skipped"]
    assert next(o for o in race if o.status == "skipped").detail.startswith("held back: entry ")


async def test_two_entries_of_one_payment_in_one_action_send_the_first(
    broker: Broker,
    store: ParkingStore,
    service_for: ServiceFor,
) -> None:
    flow = await parked_with_payments(broker, store, ["pay_dup", "pay_dup"])
    first, second = await entry_ids(store, flow.dlq)
    service = service_for(flow.dlq)
    report = await service.requeue(ActionTarget.for_entries([first, second]))
    assert report.succeeded == 1
    skipped = next(o for o in report.outcomes if o.status == "skipped")
    assert skipped.entry_id == second
    assert len(await broker.drain(flow.work)) == 1


async def test_the_new_entry_of_a_payment_that_failed_again_may_be_replayed_at_once(
    broker: Broker,
    store: ParkingStore,
    service_for: ServiceFor,
) -> None:
    flow = await parked_with_payments(broker, store, ["pay_again"])
    (first,) = await entry_ids(store, flow.dlq)
    service = service_for(flow.dlq)
    assert (await service.requeue(ActionTarget.for_entries([first]))).succeeded == 1
    assert broker.channel is not None
    work = await broker.channel.get_queue(flow.work)
    message = await work.get(no_ack=False, timeout=5)
    await message.reject(requeue=False)  # the downstream fails it again
    await broker.wait_depth(flow.dlq, 1)
    assert await park_all(broker.connection, store, flow.dlq) == 1
    (second,) = [i for i in await entry_ids(store, flow.dlq) if i != first]
    report = await service.requeue(ActionTarget.for_entries([second]))
    assert report.succeeded == 1, report.outcomes
    assert [payment_of(m) for m in await broker.drain(flow.work)] == ["pay_again"]


async def test_a_stopped_action_leaves_the_payments_it_did_not_send_free_at_once(
    broker: Broker,
    store: ParkingStore,
    publisher: ActionPublisher,
    amqp_url: str,
    redis_url: str,
    prefix: str,
) -> None:
    payments = [f"pay_{i:02d}" for i in range(12)]
    flow = await parked_with_payments(broker, store, [p for p in payments for _ in (1, 2)])
    ids = await entry_ids(store, flow.dlq)  # oldest first: each payment's two in a row
    firsts, seconds = ids[0::2], ids[1::2]
    profile = make_profile(amqp_url, redis_url, prefix, [flow.dlq])
    # Windows of two, two in flight: the gate checks two windows ahead of the run.
    alice = ActionService(store, publisher, profile, "alice", "host-a", window=2, depth=2)
    stop = asyncio.Event()

    def progress(done: int, _total: int, _failed: int) -> None:
        if done >= 2:
            stop.set()

    report = await alice.requeue(
        ActionTarget.for_entries(firsts), progress=progress, cancel_event=stop
    )
    assert report.stopped and 2 <= report.succeeded < len(firsts)
    sent = {o.payment_id for o in report.outcomes if o.status == "done"}
    # The payments alice checked but never sent hold no replay claim of hers: bob's
    # requeue of their other entries goes out now, not in two minutes.
    bob = ActionService(store, publisher, profile, "bob", "host-b")
    rest = [s for s, p in zip(seconds, payments, strict=True) if p not in sent]
    again = await bob.requeue(ActionTarget.for_entries(rest))
    assert again.succeeded == len(rest), [o.detail for o in again.outcomes if not o.ok]
    arrived = sorted(payment_of(m) for m in await broker.drain(flow.work))
    assert arrived == payments


async def test_a_window_checked_ahead_that_waited_is_checked_again_before_it_is_handed_on(
    broker: Broker,
    store: ParkingStore,
    service_for: ServiceFor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flow = await parked_with_payments(broker, store, ["pay_a", "pay_b", "pay_c"])
    rows, _ = await service_for(flow.dlq).targets(
        ActionTarget.for_entries(await entry_ids(store, flow.dlq))
    )
    gate = ReplayGate(store, ("captured",), None, ahead=3)
    keys = [gate.claim_key(mask_identifier(cast(str, row.payment_id))) for row in rows]
    tally = Tally()

    async def windows() -> AsyncIterator[list[EntrySummary]]:
        for row in rows:
            yield [row]

    monkeypatch.setattr(gate_module, "RECHECK_AFTER_S", 0.0)  # as after a long pause
    checked = gate.filter(windows(), tally)
    first = await anext(checked)

    async def all_claimed() -> bool:
        return all(await asyncio.gather(*(store.redis.exists(k) for k in keys)))

    await until(all_claimed, 5, "the windows checked ahead")
    # The last payment's claim ran out meanwhile and another action holds it now.
    await store.redis.set(keys[2], "another-entry", px=gate_module.CLAIM_TTL_MS)
    rest = [window async for window in checked]
    assert [row.payment_id for window in (first, *rest) for row in window] == ["pay_a", "pay_b"]
    (held,) = tally.outcomes
    assert held.payment_id == "pay_c" and held.detail == (
        "held back: entry another-entry of this payment is being replayed by another action"
        " right now"
    )
    assert await store.redis.get(keys[2]) == b"another-entry"
