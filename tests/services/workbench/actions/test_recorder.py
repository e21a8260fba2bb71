"""ConfirmRecorder records the confirms of several windows in one script call (a group
commit), on the real ledger: what windows hand in while a call is under way goes in the
next call together; a failed call raises to its own window and loses no one else's."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from services.workbench.actions.ledger import ActionLedger, Finish, action_id_for
from services.workbench.actions.recorder import ConfirmRecorder
from services.workbench.model import ClaimResult, EntryState
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import Broker, parked

pytestmark = pytest.mark.integration

RUN = "00aa11bb22cc33dd"


class HeldLedger:
    """The real ledger's finish, counted; the first call waits for ``go`` (and raises
    instead with ``fail_first``)."""

    def __init__(self, ledger: ActionLedger, fail_first: bool = False) -> None:
        self.ledger = ledger
        self.calls: list[list[str]] = []
        self.go = asyncio.Event()
        self.started = asyncio.Event()
        self.fail_first = fail_first

    async def finish(self, dlq: str, finishes: Sequence[Finish]) -> list[ClaimResult]:
        self.calls.append([f.entry_id for f in finishes])
        if len(self.calls) == 1:
            self.started.set()
            await self.go.wait()
            if self.fail_first:
                raise RedisConnectionError("Redis went away")
        return await self.ledger.finish(dlq, finishes)


async def claimed_windows(
    broker: Broker, store: ParkingStore, windows: int, size: int
) -> tuple[str, list[list[tuple[int, str, Finish]]]]:
    """``windows`` windows of ``size`` parked entries, claimed by RUN: each window's
    finishes as a window hands them in (index, DLQ, finish)."""
    flow, ids = await parked(broker, store, windows * size)
    ledger = ActionLedger(store)
    token = ledger.lease_token(RUN, {"operator": "erin"})
    await ledger.acquire(RUN, [flow.dlq], token)
    claims = [(i, action_id_for(RUN, i)) for i in ids]
    replies = await ledger.claim_and_fetch(
        flow.dlq, claims, "requeue", "erin", run_id=RUN, token=token
    )
    assert replies is not None and all(result.ok for result, _ in replies)
    handed = [
        [
            (k, flow.dlq, Finish(entry_id, action_id, EntryState.REQUEUED, "requeued"))
            for k, (entry_id, action_id) in enumerate(claims[w * size : (w + 1) * size])
        ]
        for w in range(windows)
    ]
    return flow.dlq, handed


async def states(store: ParkingStore, dlq: str, ids: list[str]) -> list[str]:
    return [
        (await store.redis.hget(store.entry_key(dlq, i), "state") or b"").decode() for i in ids
    ]


async def test_windows_handing_in_during_a_call_are_recorded_together_in_the_next(
    broker: Broker, store: ParkingStore
) -> None:
    dlq, (first, second, third) = await claimed_windows(broker, store, 3, 4)
    held = HeldLedger(ActionLedger(store))
    told: dict[str, list[tuple[int, ClaimResult]]] = {}
    recorder: ConfirmRecorder[str] = ConfirmRecorder(
        held.finish, lambda owner, done: told.setdefault(owner, []).extend(done)
    )

    a = asyncio.create_task(recorder.record("a", first))
    await held.started.wait()  # a's call is under way
    b = asyncio.create_task(recorder.record("b", second))
    c = asyncio.create_task(recorder.record("c", third))
    await asyncio.sleep(0.05)
    assert not b.done() and not c.done()  # each waits until its confirms are recorded
    held.go.set()
    await asyncio.gather(a, b, c)

    ids = [[f.entry_id for _, _, f in window] for window in (first, second, third)]
    assert held.calls == [ids[0], ids[1] + ids[2]]  # two calls for three windows
    for owner, window in zip("abc", (first, second, third), strict=True):
        assert [index for index, _ in told[owner]] == [index for index, _, _ in window]
        assert all(result.ok and result.state is EntryState.REQUEUED for _, result in told[owner])
    assert await states(store, dlq, ids[0] + ids[1] + ids[2]) == ["requeued"] * 12


async def test_a_failed_call_raises_to_its_window_and_the_others_are_still_recorded(
    broker: Broker, store: ParkingStore
) -> None:
    dlq, (first, second) = await claimed_windows(broker, store, 2, 3)
    held = HeldLedger(ActionLedger(store), fail_first=True)
    told: dict[str, list[tuple[int, ClaimResult]]] = {}
    recorder: ConfirmRecorder[str] = ConfirmRecorder(
        held.finish, lambda owner, done: told.setdefault(owner, []).extend(done)
    )

    a = asyncio.create_task(recorder.record("a", first))
    await held.started.wait()
    b = asyncio.create_task(recorder.record("b", second))
    await asyncio.sleep(0.01)
    held.go.set()

    with pytest.raises(RedisConnectionError):
        await a
    await b
    assert "a" not in told and [index for index, _ in told["b"]] == [0, 1, 2]
    first_ids = [f.entry_id for _, _, f in first]
    second_ids = [f.entry_id for _, _, f in second]
    # a's entries stay claimed (its window's settle finishes them); b's are recorded
    assert await states(store, dlq, first_ids) == ["claimed"] * 3
    assert await states(store, dlq, second_ids) == ["requeued"] * 3
