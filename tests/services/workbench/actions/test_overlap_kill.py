"""``kill -9`` of a bulk requeue while its windows overlap (a window claimed, with its
intents, while earlier ones still publish and finish): at most ``window * depth`` entries
are left claimed, and after ``recover``, resolving what is in doubt and a rerun, every
payment is in the target queue exactly once (counted by payment id)."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from services.workbench.actions.publisher import ActionPublisher
from services.workbench.actions.service import ActionService
from services.workbench.model import EntryState
from services.workbench.query import ActionTarget
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import (
    Broker,
    entry_ids,
    make_profile,
    parked_payments,
    payment_of,
    state_counts,
)
from tests.helpers.paths import REPO_ROOT

pytestmark = pytest.mark.integration

N = 2000
WINDOW, DEPTH = 50, 4


@pytest.fixture
async def service(
    store: ParkingStore, broker: Broker, amqp_url: str, redis_url: str, prefix: str
) -> AsyncIterator[ActionService]:
    publisher = ActionPublisher(amqp_url)
    profile = make_profile(amqp_url, redis_url, prefix, [broker.name("dlq")])
    yield ActionService(store, publisher, profile, "carol", "test-host", window=250)
    await publisher.close()


@pytest.mark.parametrize("nth", [2, 15])
async def test_killed_while_windows_overlap_every_payment_once(
    broker: Broker,
    store: ParkingStore,
    service: ActionService,
    redis_url: str,
    prefix: str,
    nth: int,
) -> None:
    flow = await parked_payments(broker, store, N)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.helpers.action_proc", broker.amqp_url, redis_url, prefix,
        flow.dlq, "--window", str(WINDOW), "--depth", str(DEPTH),
        "--crash-when-overlapped", str(nth),
        cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    assert b"overlapped" in out  # killed right after a claim made while others were open

    await asyncio.sleep(0.2)
    delivered = await broker.drain(flow.work)
    assert max(Counter(payment_of(m) for m in delivered).values(), default=0) <= 1
    counts = await state_counts(store, flow.dlq)
    assert sum(counts.values()) == N
    assert 0 < counts[EntryState.CLAIMED] <= WINDOW * DEPTH  # what a crash leaves open

    report = await service.recover()
    assert len(report.released) + len(report.in_doubt) == counts[EntryState.CLAIMED]
    in_queue = {payment_of(m) for m in delivered}
    for found in report.in_doubt:
        entry = await store.get(flow.dlq, found.entry_id)
        assert entry is not None
        how = "delivered" if payment_of(entry.record) in in_queue else "republish"
        assert (await service.resolve(found.entry_id, how)).ok
    rerun = await service.requeue(ActionTarget.for_entries(await entry_ids(store, flow.dlq)))
    assert rerun.failed == 0
    await asyncio.sleep(0.2)
    delivered += await broker.drain(flow.work)
    payments = Counter(payment_of(m) for m in delivered)
    assert set(payments) == {f"pay_{i:05d}" for i in range(N)}, "a payment was lost"
    assert max(payments.values()) == 1, "a payment was duplicated in the target queue"
    assert await state_counts(store, flow.dlq) == Counter({EntryState.REQUEUED: N})
    assert await store.in_flight(flow.dlq) == []
