"""``payops dlq resolve --all-in-doubt --check``: the one sound proof of delivery of an
in-doubt entry is its message coming back (dead-lettered again, parked under the same
``payops-action-id``); a message still queued or consumed is *unknown*, never "not sent"."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import pytest

from app.cli.dlq_resolve import print_evidence
from services.workbench.actions.publisher import (
    ACTION_ID_HEADER,
    ActionPublisher,
    PublishItem,
    PublishOutcome,
)
from services.workbench.actions.recovery import delivery_evidence
from services.workbench.actions.service import ActionService
from services.workbench.query import ActionTarget
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import Broker, make_profile, park_all, parked

pytestmark = pytest.mark.integration


@pytest.fixture
async def service(
    store: ParkingStore, broker: Broker, amqp_url: str, redis_url: str, prefix: str
) -> AsyncIterator[ActionService]:
    publisher = ActionPublisher(amqp_url)
    profile = make_profile(amqp_url, redis_url, prefix, [broker.name("dlq")])
    yield ActionService(store, publisher, profile, "dave", "ops-pc")
    await publisher.close()


async def test_only_an_entry_whose_message_came_back_is_proven_delivered(
    broker: Broker,
    store: ParkingStore,
    service: ActionService,
    capsys: pytest.CaptureFixture[str],
) -> None:
    flow, ids = await parked(broker, store, 3)
    original = service.publisher.publish_many

    async def confirms_lost(items: Sequence[PublishItem], **_: Any) -> list[PublishOutcome]:
        await original(items)  # really sent, but as if the connection dropped before the acks
        return [PublishOutcome("unknown", "the connection to RabbitMQ was lost") for _ in items]

    service.publisher.publish_many = confirms_lost  # type: ignore[method-assign]
    report = await service.requeue(ActionTarget.for_entries(ids))
    service.publisher.publish_many = original  # type: ignore[method-assign]
    assert report.failed == 3

    # pay_0 fails again (dead-lettered, parked anew); pay_1 is consumed; pay_2 waits.
    assert broker.channel is not None
    work = await broker.channel.get_queue(flow.work)
    came_back = consumed = ""
    for _ in range(2):
        message = await work.get(no_ack=False, timeout=5)
        payment = orjson.loads(message.body)["payment_id"]
        if payment == "pay_0":
            came_back = str(message.headers[ACTION_ID_HEADER])
            await message.reject(requeue=False)
        else:
            consumed = payment
            await message.ack()
    assert came_back and consumed
    await broker.wait_depth(flow.dlq, 1)
    assert await park_all(broker.connection, store, flow.dlq) == 1

    recovery = await service.recover()
    assert len(recovery.in_doubt) == 3
    proofs = await delivery_evidence(store, recovery.in_doubt, service.dlqs)
    [(doubted, proof)] = proofs.items()
    entry = await store.get(flow.dlq, doubted)
    assert entry is not None and entry.action_id == came_back
    assert proof.entry_id not in ids and proof.dlq == flow.dlq

    print_evidence(recovery.in_doubt, proofs)
    out = capsys.readouterr().out
    assert f"  delivered: {doubted} (pay_0): came back as {proof.entry_id} in {flow.dlq}" in out
    assert out.count("  unknown: ") == 2
    assert "Evidence: 1 of 3 proven delivered" in out
    assert "2 unknown: each may still wait in its queue, have been consumed" in out
