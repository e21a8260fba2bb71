"""The window scripts run their compare-and-set inline (claim_many.lua, finish_many.lua,
the gate's replay claims): what each answers for winners, losers and missing entries, and
that each, run again after a lost reply, answers as before and writes nothing twice."""

from __future__ import annotations

import pytest

from services.workbench.actions.gate import CLAIM_TTL_MS, ReplayGate
from services.workbench.actions.ledger import (
    STORED_REQUEUE_KEY,
    ActionLedger,
    Finish,
    PendingSend,
    action_id_for,
    decode_entry_record,
)
from services.workbench.actions.names import Action
from services.workbench.model import EntryState
from services.workbench.store import ParkingStore
from tests.helpers.action_kit import Broker, parked

pytestmark = pytest.mark.integration

RUN = "00aa11bb22cc33dd"
OTHER = "99ff88ee77dd66cc"


def intent(action_id: str) -> PendingSend:
    return PendingSend(
        action=Action.REQUEUE,
        action_id=action_id,
        exchange="",
        routing_key="payments.work",
        target="queue 'payments.work'",
        operator="erin",
        host="ops-pc",
        at_ms=1_700_000_000_000,
    )


async def leased(ledger: ActionLedger, dlq: str, run_id: str) -> str:
    token = ledger.lease_token(run_id, {"operator": "erin"})
    await ledger.acquire(run_id, [dlq], token)
    return token


async def test_a_claim_window_answers_winners_with_their_message_and_losers_with_the_holder(
    broker: Broker, store: ParkingStore
) -> None:
    flow, ids = await parked(broker, store, 3)
    ledger = ActionLedger(store)
    other = await leased(ledger, flow.dlq, OTHER)
    taken = await ledger.claim_and_fetch(
        flow.dlq, [(ids[0], action_id_for(OTHER, ids[0]))], "retry", "bob",
        run_id=OTHER, token=other,
    )  # fmt: skip
    assert taken is not None and taken[0][0].ok
    token = await leased(ledger, flow.dlq, RUN)
    claims = [(i, action_id_for(RUN, i)) for i in [*ids, "no-such-entry"]]

    replies = await ledger.claim_and_fetch(
        flow.dlq, claims, "requeue", "erin", run_id=RUN, token=token, stored_requeue=True
    )

    assert replies is not None
    (lost, none), (won1, raw1), (won2, raw2), (missing, nothing) = replies
    assert not lost.ok and lost.state is EntryState.CLAIMED and none == {}
    assert (lost.operator, lost.action) == ("bob", "retry")
    assert lost.action_id == action_id_for(OTHER, ids[0])
    for (won, raw), (_, action_id) in zip([(won1, raw1), (won2, raw2)], claims[1:3], strict=True):
        assert won.ok and won.state is EntryState.CLAIMED
        assert (won.operator, won.action, won.action_id) == ("erin", "requeue", action_id)
        assert set(raw) == {b"body", STORED_REQUEUE_KEY} and raw[b"body"].startswith(b"{")
    assert missing.missing and not missing.ok and nothing == {}
    # without the stored properties asked for: the whole record, as decode_entry_record reads
    await store.redis.hset(store.entry_key(flow.dlq, ids[1]), "state", "parked")
    again = await ledger.claim_and_fetch(
        flow.dlq, [claims[1]], "requeue", "erin", run_id=RUN, token=token
    )
    assert again is not None and again[0][0].ok
    record = decode_entry_record(again[0][1])
    assert record is not None and record.body == raw1[b"body"]


async def test_a_claim_window_run_again_after_a_lost_reply_answers_as_before(
    broker: Broker, store: ParkingStore
) -> None:
    flow, ids = await parked(broker, store, 3)
    ledger = ActionLedger(store)
    token = await leased(ledger, flow.dlq, RUN)
    intents = [intent(action_id_for(RUN, i)) for i in ids]
    claims = [(i, p.action_id) for i, p in zip(ids, intents, strict=True)]
    changes = store.keys(flow.dlq).changes
    before = await store.redis.xlen(changes)

    async def claim() -> list[object]:
        replies = await ledger.claim_and_fetch(
            flow.dlq, claims, "requeue", "erin", run_id=RUN, token=token,
            intents=intents, stored_requeue=True,
        )  # fmt: skip
        assert replies is not None
        return list(replies)

    first = await claim()
    versions = [await store.redis.hget(store.entry_key(flow.dlq, i), "version") for i in ids]
    second = await claim()

    assert second == first
    assert await store.redis.xlen(changes) == before + 1  # one event for the window
    assert [await store.redis.hget(store.entry_key(flow.dlq, i), "version") for i in ids] == (
        versions
    )
    assert await ledger.pending_of(flow.dlq, ids) == [p.dumps() for p in intents]
    assert sorted(e.entry_id for e in await store.in_flight(flow.dlq)) == ids


async def test_a_finish_window_run_again_after_a_lost_reply_starts_each_outcome_once(
    broker: Broker, store: ParkingStore
) -> None:
    flow, ids = await parked(broker, store, 3)
    ledger = ActionLedger(store)
    token = await leased(ledger, flow.dlq, RUN)
    intents = [intent(action_id_for(RUN, i)) for i in ids]
    claimed = await ledger.claim_and_fetch(
        flow.dlq, [(i, p.action_id) for i, p in zip(ids, intents, strict=True)], "requeue",
        "erin", run_id=RUN, token=token, intents=intents,
    )  # fmt: skip
    assert claimed is not None
    where = store.keys(flow.dlq)
    earlier = {"out_at": "5", "out_detail": "failed again", "out_link": "01a2"}
    await store.redis.hset(store.entry_key(flow.dlq, ids[0]), mapping=earlier)
    before = await store.redis.xlen(where.changes)
    finishes = [
        Finish(i, p.action_id, EntryState.REQUEUED, "requeued", job="job1", sent_at_ms=1000)
        for i, p in zip(ids[:2], intents[:2], strict=True)
    ]
    finishes.append(Finish(ids[2], intents[2].action_id, None, error="returned", job="job1"))

    first = await ledger.finish(flow.dlq, finishes)
    second = await ledger.finish(flow.dlq, finishes)

    assert [r.ok for r in first] == [True] * 3 and second == first
    assert [r.state for r in first] == [EntryState.REQUEUED] * 2 + [EntryState.PARKED]
    assert await store.redis.xlen(where.changes) == before + 2  # requeued, and released
    assert await store.redis.hgetall(f"{where.base}:jobc:job1") == {b"pending": b"2"}
    due = await store.redis.zrange(where.outcomes_due, 0, -1)
    assert sorted(due) == sorted(i.encode() for i in ids[:2])
    waiting = " ".join(
        v.decode() for v in (await store.redis.hgetall(where.outcomes_pending)).values()
    )
    assert sorted(waiting.split()) == sorted(ids[:2])
    for entry_id in ids[:2]:
        fields = await store.redis.hmget(
            store.entry_key(flow.dlq, entry_id), "outcome", "out_since", "job", "sending"
        )
        assert fields == [b"pending", b"1000", b"job1", None]
        # a pending outcome keeps nothing of an earlier one (absent reads as empty)
        ended = await store.redis.hmget(
            store.entry_key(flow.dlq, entry_id), "out_at", "out_detail", "out_link"
        )
        assert ended == [None, None, None]
    assert await ledger.pending_of(flow.dlq, ids) == [None] * 3
    assert await store.in_flight(flow.dlq) == []


async def test_a_finish_by_another_action_changes_nothing_and_names_the_holder(
    broker: Broker, store: ParkingStore
) -> None:
    flow, ids = await parked(broker, store, 1)
    ledger = ActionLedger(store)
    token = await leased(ledger, flow.dlq, RUN)
    pending = intent(action_id_for(RUN, ids[0]))
    claimed = await ledger.claim_and_fetch(
        flow.dlq, [(ids[0], pending.action_id)], "requeue", "erin", run_id=RUN, token=token,
        intents=[pending],
    )  # fmt: skip
    assert claimed is not None

    replies = await ledger.finish(
        flow.dlq,
        [
            Finish(ids[0], action_id_for(OTHER, ids[0]), EntryState.REQUEUED, "x", job="j"),
            Finish("no-such-entry", "x.no-such-entry", EntryState.REQUEUED, "x", job="j"),
        ],
    )

    (theirs, missing) = replies
    assert not theirs.ok and theirs.state is EntryState.CLAIMED
    assert (theirs.operator, theirs.action_id) == ("erin", pending.action_id)
    assert missing.missing and not missing.ok
    assert await ledger.pending_of(flow.dlq, ids) == [pending.dumps()]  # still its intent
    assert await store.redis.exists(f"{store.keys(flow.dlq).base}:jobc:j") == 0


async def test_a_finish_window_of_several_holders_and_kinds_names_each_entrys_own(
    broker: Broker, store: ParkingStore
) -> None:
    """finish_many.lua answers 1 for an entry finished as asked whose holder is that of the
    ok reply before it: each result is still the entry's own (state, holder, action id),
    whatever the mix of holders, kinds of finish and failures in the window."""
    flow, ids = await parked(broker, store, 6)
    ledger = ActionLedger(store)
    token = await leased(ledger, flow.dlq, RUN)
    other = await leased(ledger, flow.dlq, OTHER)
    mine, theirs = [*ids[0:2], ids[4]], [*ids[2:4], ids[5]]
    for run, tok, who, what, batch in (
        (RUN, token, "erin", "requeue", mine),
        (OTHER, other, "bob", "retry", theirs),
    ):
        claims = [(i, action_id_for(run, i)) for i in batch]
        replies = await ledger.claim_and_fetch(flow.dlq, claims, what, who, run_id=run, token=tok)
        assert replies is not None and all(c.ok for c, _ in replies)
    aid = {i: action_id_for(RUN if i in mine else OTHER, i) for i in ids}
    finishes = [
        Finish(ids[0], aid[ids[0]], EntryState.REQUEUED, "to a", job="j1", sent_at_ms=1000),
        Finish(ids[1], aid[ids[1]], EntryState.REQUEUED, "to b", job="j1", sent_at_ms=1000),
        Finish(ids[2], aid[ids[2]], EntryState.RETRIED, "to a", job="j2", sent_at_ms=2000),
        Finish(ids[3], aid[ids[3]], None, error="returned"),
        Finish(ids[4], action_id_for(OTHER, ids[4]), EntryState.REQUEUED, "x"),  # not its holder
        Finish(ids[5], aid[ids[5]], EntryState.RETRIED, "to a", job="j2", sent_at_ms=2000),
        Finish("no-such-entry", "x.no-such-entry", EntryState.REQUEUED, "x"),
    ]

    first = await ledger.finish(flow.dlq, finishes)
    second = await ledger.finish(flow.dlq, finishes)  # a repeat: the same answers

    assert second == first
    expected = [
        (True, EntryState.REQUEUED, "erin", "requeue", aid[ids[0]]),
        (True, EntryState.REQUEUED, "erin", "requeue", aid[ids[1]]),
        (True, EntryState.RETRIED, "bob", "retry", aid[ids[2]]),
        (True, EntryState.PARKED, "bob", "retry", aid[ids[3]]),
        (False, EntryState.CLAIMED, "erin", "requeue", aid[ids[4]]),
        (True, EntryState.RETRIED, "bob", "retry", aid[ids[5]]),
        (False, None, None, None, None),
    ]
    assert [tuple(r) for r in first] == expected
    states = [await store.redis.hget(store.entry_key(flow.dlq, i), "state") for i in ids]
    assert states == [b"requeued", b"requeued", b"retried", b"parked", b"claimed", b"retried"]
    details = [await store.redis.hget(store.entry_key(flow.dlq, i), "detail") for i in ids[:3]]
    assert details == [b"to a", b"to b", b"to a"]
    counters = await store.redis.hgetall(f"{store.keys(flow.dlq).base}:jobc:j2")
    assert counters == {b"pending": b"2"}
    since = [await store.redis.hget(store.entry_key(flow.dlq, i), "out_since") for i in ids]
    assert since == [b"1000", b"1000", b"2000", None, None, b"2000"]


async def test_the_gates_replay_claim_is_taken_when_free_or_this_entrys_and_names_a_holder(
    store: ParkingStore,
) -> None:
    gate = ReplayGate(store, ("captured",), None)
    free, ours, theirs = (gate.claim_key(p) for p in ("pay_free", "pay_ours", "pay_theirs"))
    await store.redis.set(ours, "e-ours", px=1000)
    await store.redis.set(theirs, "e-other", px=CLAIM_TTL_MS)

    replies = await gate._claim_many(
        keys=[free, ours, theirs], args=[CLAIM_TTL_MS, "e-free", "e-ours", "e-theirs"]
    )

    assert replies == [None, None, b"e-other"]
    assert await store.redis.get(free) == b"e-free"
    assert await store.redis.get(ours) == b"e-ours"
    assert await store.redis.pttl(ours) > 1000  # taken again: its time to live renewed
    assert await store.redis.get(theirs) == b"e-other"
