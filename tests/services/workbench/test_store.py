"""ParkingStore against the real Redis: parking, reading, the compare-and-set state machine."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from services.config import FieldPaths
from services.workbench.cause import Cause, FlowFailure
from services.workbench.codec import MessageRecord
from services.workbench.load_pace import LoadPace
from services.workbench.model import AuditRecord, EntryState
from services.workbench.store import (
    ParkingStore,
    ParkItem,
    entry_id_time_ms,
    new_entry_id,
    new_entry_ids,
)
from tests.helpers.private_servers import PrivateRedis

FIELDS = FieldPaths()
DLQ = "payments.dlq"
DEATH_TIME = datetime.datetime(2024, 5, 17, 12, 0, tzinfo=datetime.UTC)


def dead_letter(n: int, body: bytes | None = None, **headers: Any) -> MessageRecord:
    return MessageRecord(
        body=body
        if body is not None
        else b'{"payment_id": "pay_%d", "merchant": "Acme", "amount": "%d.50", "currency": "EUR"}'
        % (n, n),
        properties={"content_type": "application/json", "message_id": f"m-{n}", "delivery_mode": 2},
        headers={
            "x-death": [
                {
                    "count": 1,
                    "reason": "rejected",
                    "queue": "payments.process",
                    "time": DEATH_TIME,
                    "exchange": "payments",
                    "routing-keys": ["payment.failed"],
                }
            ],
            **headers,
        },
        exchange="payments.dlx",
        routing_key="payment.failed",
    )


# --------------------------------------------------------------------------- ids and keys


def test_entry_ids_are_short_unique_and_time_sortable() -> None:
    ids = [new_entry_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 20 for i in ids)
    assert new_entry_id(1_000) < new_entry_id(2_000)
    assert entry_id_time_ms(new_entry_id(1_715_947_200_123)) == 1_715_947_200_123
    assert entry_id_time_ms("nope") is None


async def test_keys_share_one_hash_tag_per_dlq(
    store: ParkingStore, redis_client: aioredis.Redis
) -> None:
    result = await store.park(DLQ, dead_letter(1), FIELDS)
    await store.claim(DLQ, result.entry_id, "requeue", "a1", "alice")
    await store.append_audit(
        DLQ, AuditRecord(1, "alice", "h", "requeue", (result.entry_id,), "q", "ok")
    )
    keys = [k.decode() async for k in redis_client.scan_iter(match=f"{store.prefix}:*")]
    assert {k.rsplit(":", 1)[-1] for k in keys} >= {"idx", "fp", "inflight", "changes", "audit"}
    # one hash tag ("{payments.dlq}") in every key: one Redis Cluster slot per DLQ; beside
    # them only the profile's list of DLQs (one key, written apart from the scripts)
    assert store.dlqs_key in keys
    keys.remove(store.dlqs_key)
    assert all(k.startswith(f"{store.prefix}:{{{DLQ}}}:") for k in keys)


def test_store_refuses_bad_prefixes_and_decoding_clients(redis_url: str) -> None:
    with pytest.raises(ValueError):
        ParkingStore(aioredis.from_url(redis_url), "bad{prefix}")
    with pytest.raises(ValueError):
        ParkingStore(aioredis.from_url(redis_url, decode_responses=True), "p")


# --------------------------------------------------------------------------- parking


async def test_park_and_get_keep_the_message_whole(store: ParkingStore) -> None:
    record = dead_letter(7, odd=[b"\xff", 2**63 - 1, {"t": DEATH_TIME}])
    result = await store.park(DLQ, record, FIELDS)
    assert result.created
    entry = await store.get(DLQ, result.entry_id)
    assert entry is not None
    assert entry.record == record
    assert entry.state is EntryState.PARKED and entry.version == 1
    assert entry.deaths[0].queue == "payments.process" and entry.deaths[0].reason == "rejected"
    summary = entry.summary
    assert (summary.payment_id, summary.merchant, summary.amount, summary.currency) == (
        "pay_7",
        "Acme",
        "7.50",
        "EUR",
    )
    assert summary.origin_queue == "payments.process" and summary.routing_key == "payment.failed"
    assert summary.parked_at_ms == entry_id_time_ms(result.entry_id)
    assert len(entry.fingerprint) == 64
    assert await store.get(DLQ, "0" * 20) is None
    assert await store.count(DLQ) == 1


async def test_fresh_identical_deliveries_are_two_entries(store: ParkingStore) -> None:
    first = await store.park(DLQ, dead_letter(1), FIELDS)
    second = await store.park(DLQ, dead_letter(1), FIELDS)
    assert first.created and second.created and first.entry_id != second.entry_id
    assert await store.count(DLQ) == 2


async def test_a_redelivery_consumes_one_unconfirmed_mark_of_its_fingerprint(
    store: ParkingStore,
) -> None:
    parked = await store.park(DLQ, dead_letter(1), FIELDS, session="crashed")
    assert await store.pending_marks(DLQ) == 1
    # a quorum queue adds x-delivery-count on redelivery: still the same message
    quorum = await store.park(
        DLQ, dead_letter(1, **{"x-delivery-count": 1}), FIELDS, redelivered=True
    )
    assert quorum.entry_id == parked.entry_id and not quorum.created
    assert not quorum.by_earlier_attempt and not quorum.parked_by_this_item
    assert await store.pending_marks(DLQ) == 0
    # the mark is spent: a redelivered identical twin is a dead letter of its own
    twin = await store.park(DLQ, dead_letter(1), FIELDS, redelivered=True)
    assert twin.created and twin.entry_id != parked.entry_id
    # a redelivered message never seen before is parked
    unseen = await store.park(DLQ, dead_letter(2), FIELDS, redelivered=True)
    assert unseen.created
    assert await store.count(DLQ) == 3


async def test_confirmed_acks_clear_marks_and_a_session_never_takes_its_own(
    store: ParkingStore,
) -> None:
    first = await store.park(DLQ, dead_letter(1), FIELDS, session="s1")
    # the same session's redelivered twin cannot be the delivery it still holds
    own = await store.park(DLQ, dead_letter(1), FIELDS, redelivered=True, session="s1")
    assert own.created and first.created and await store.pending_marks(DLQ) == 2
    await store.clear_marks(DLQ, "s1", [0])
    assert await store.pending_marks(DLQ) == 0
    after = await store.park(DLQ, dead_letter(1), FIELDS, redelivered=True, session="s2")
    assert after.created  # acked and confirmed: a redelivery now is another message


async def test_retrying_a_batch_with_the_same_ids_parks_nothing_twice(store: ParkingStore) -> None:
    items = [ParkItem(dead_letter(n % 3), entry_id=new_entry_id()) for n in range(9)]
    first = await store.park_many(DLQ, items, FIELDS)
    assert [r.created for r in first] == [True] * 9
    assert not any(r.by_earlier_attempt for r in first)
    assert [r.entry_id for r in first] == [i.entry_id for i in items]
    second = await store.park_many(DLQ, items, FIELDS)
    assert [r.created for r in second] == [False] * 9  # nothing stored by this attempt
    # ... but every item was stored by an earlier attempt of itself: new to the caller
    assert [r.by_earlier_attempt for r in second] == [True] * 9
    assert all(r.parked_by_this_item for r in second)
    assert [r.entry_id for r in second] == [i.entry_id for i in items]
    assert await store.count(DLQ) == 9


async def test_an_id_collision_with_other_content_gets_a_fresh_id(store: ParkingStore) -> None:
    taken = new_entry_id()
    await store.park(DLQ, dead_letter(1), FIELDS, entry_id=taken)
    other = await store.park(DLQ, dead_letter(2), FIELDS, entry_id=taken)
    assert other.created and other.entry_id != taken
    entry = await store.get(DLQ, other.entry_id)
    assert entry is not None and entry.summary.payment_id == "pay_2"


async def test_park_many_splits_big_batches_but_keeps_order(store: ParkingStore) -> None:
    big = b"\x00" * (3 * 1024 * 1024)
    items = [ParkItem(dead_letter(n, body=big + bytes([n]))) for n in range(6)]  # > 8 MB chunks
    items += [ParkItem(dead_letter(100 + n)) for n in range(1200)]  # > 500 items per chunk
    results = await store.park_many(DLQ, items, FIELDS)
    assert len(results) == len(items) and all(r.created for r in results)
    entry = await store.get(DLQ, results[5].entry_id)
    assert entry is not None and entry.record.body == big + b"\x05"
    entry = await store.get(DLQ, results[-1].entry_id)
    assert entry is not None and entry.summary.payment_id == "pay_1299"


async def test_a_batch_partly_stored_before_is_new_to_the_caller_the_rest_created(
    store: ParkingStore,
) -> None:
    items = [ParkItem(dead_letter(n), entry_id=new_entry_id()) for n in range(6)]
    await store.park_many(DLQ, items[:4], FIELDS)  # the attempt that raised after storing 4
    retried = await store.park_many(DLQ, items, FIELDS)
    assert [(r.created, r.by_earlier_attempt) for r in retried] == [(False, True)] * 4 + [
        (True, False)
    ] * 2
    assert [r.entry_id for r in retried] == [i.entry_id for i in items]
    assert await store.count(DLQ) == 6


async def test_script_cache_flush_is_survived(private_redis: PrivateRedis) -> None:
    """On a private Redis: SCRIPT FLUSH is server-wide."""
    redis_client = aioredis.from_url(private_redis.url)
    store = ParkingStore(redis_client, "flush")
    await store.park(DLQ, dead_letter(1), FIELDS)
    await redis_client.script_flush()
    results = await store.park_many(DLQ, [ParkItem(dead_letter(2))], FIELDS)
    assert results[0].created
    await redis_client.script_flush()
    claim = await store.claim(DLQ, results[0].entry_id, "cancel", "a1", "bob")
    assert claim.ok
    await redis_client.aclose()


# --------------------------------------------------------------------------- reading


async def test_page_count_iterate_and_locate(store: ParkingStore) -> None:
    items = [ParkItem(dead_letter(n)) for n in range(12_345)]
    results = await store.park_many(DLQ, items, FIELDS)
    ids = [r.entry_id for r in results]
    assert await store.count(DLQ) == 12_345

    newest = await store.page(DLQ, 0, 50)
    assert [s.entry_id for s in newest] == sorted(ids, reverse=True)[:50]
    oldest = await store.page(DLQ, 10, 5, newest_first=False)
    assert [s.entry_id for s in oldest] == sorted(ids)[10:15]
    assert newest[0].state is EntryState.PARKED and newest[0].payment_id is not None

    seen: list[str] = []
    batches = 0
    async for batch in store.iter_summaries(DLQ, batch=1000):
        assert len(batch) <= 1000
        batches += 1
        seen.extend(s.entry_id for s in batch)
    assert batches == 13
    assert seen == sorted(ids)  # each exactly once, oldest first

    found = await store.locate(ids[77], ["other.dlq", DLQ])
    assert found is not None and found.dlq == DLQ and found.summary.payment_id == "pay_77"
    assert await store.locate("f" * 20, [DLQ, "other.dlq"]) is None


async def test_iteration_survives_many_entries_with_the_same_parking_time(
    store: ParkingStore,
) -> None:
    same_ms = 1_715_947_200_000
    items = [ParkItem(dead_letter(n), entry_id=new_entry_id(same_ms)) for n in range(2_500)]
    await store.park_many(DLQ, items, FIELDS)
    seen = [s.entry_id async for batch in store.iter_summaries(DLQ, batch=700) for s in batch]
    assert sorted(seen) == sorted(i.entry_id for i in items if i.entry_id)
    assert len(seen) == len(set(seen))


async def test_iteration_paced_takes_the_sizes_it_is_given_and_every_row_once(
    store: ParkingStore,
) -> None:
    same_ms = 1_715_947_200_000  # ties across the changing batch sizes too
    items = [
        ParkItem(dead_letter(n), entry_id=new_entry_id(same_ms + n // 400)) for n in range(2_000)
    ]
    await store.park_many(DLQ, items, FIELDS)
    pace = LoadPace(first=300)
    sizes: list[int] = []
    seen: list[str] = []
    async for batch in store.iter_summaries(DLQ, pace=pace):
        sizes.append(len(batch))
        seen.extend(s.entry_id for s in batch)
        pace.took("add", len(batch), len(batch) * 0.015 / (250 + 100 * len(sizes)))
    assert sorted(seen) == sorted(i.entry_id for i in items if i.entry_id)
    assert len(seen) == len(set(seen))
    assert sizes[0] == 300 and len(set(sizes)) > 3  # sized as the pace said each time


async def test_iteration_with_a_batch_or_pace_of_zero_still_reads_every_row(
    store: ParkingStore,
) -> None:
    items = [ParkItem(dead_letter(n)) for n in range(5)]
    await store.park_many(DLQ, items, FIELDS)
    by_batch = [s.entry_id async for batch in store.iter_summaries(DLQ, 0) for s in batch]
    paced = LoadPace(first=0)
    by_pace = [s.entry_id async for batch in store.iter_summaries(DLQ, pace=paced) for s in batch]
    assert len(by_batch) == len(set(by_batch)) == 5
    assert sorted(by_pace) == sorted(by_batch)


async def test_state_and_operator_show_in_rows(store: ParkingStore) -> None:
    result = await store.park(DLQ, dead_letter(1), FIELDS)
    await store.claim(DLQ, result.entry_id, "cancel", "act-1", "carol")
    (row,) = await store.page(DLQ)
    assert row.state is EntryState.CLAIMED and row.last_operator == "carol"


# --------------------------------------------------------------------------- state machine


async def test_concurrent_claims_one_wins_the_loser_learns_who(store: ParkingStore) -> None:
    entry_id = (await store.park(DLQ, dead_letter(1), FIELDS)).entry_id
    a, b = await asyncio.gather(
        store.claim(DLQ, entry_id, "requeue", "act-a", "alice"),
        store.claim(DLQ, entry_id, "cancel", "act-b", "bob"),
    )
    assert sorted([a.ok, b.ok]) == [False, True]
    winner, loser = (a, b) if a.ok else (b, a)
    assert loser.state is EntryState.CLAIMED
    assert (loser.operator, loser.action, loser.action_id) == (
        winner.operator,
        winner.action,
        winner.action_id,
    )


async def test_claims_from_separate_connections_one_wins(
    redis_client: aioredis.Redis, redis_url: str, prefix: str
) -> None:
    other = aioredis.from_url(redis_url)
    stores = [ParkingStore(redis_client, prefix), ParkingStore(other, prefix)]
    try:
        ids = [(await stores[0].park(DLQ, dead_letter(n), FIELDS)).entry_id for n in range(200)]
        for entry_id in ids:
            results = await asyncio.gather(
                stores[0].claim(DLQ, entry_id, "requeue", f"a-{entry_id}", "alice"),
                stores[1].claim(DLQ, entry_id, "retry", f"b-{entry_id}", "bob"),
            )
            assert sum(r.ok for r in results) == 1
            loser = next(r for r in results if not r.ok)
            winner = next(r for r in results if r.ok)
            assert loser.operator == winner.operator and loser.action_id == winner.action_id
    finally:
        await other.aclose()


async def test_complete_only_by_the_holder_and_repeatable(store: ParkingStore) -> None:
    entry_id = (await store.park(DLQ, dead_letter(1), FIELDS)).entry_id
    assert (await store.claim(DLQ, entry_id, "requeue", "act-1", "alice")).ok
    # a repeated claim by the same action is fine; a double click with a new action is not
    assert (await store.claim(DLQ, entry_id, "requeue", "act-1", "alice")).ok
    assert not (await store.claim(DLQ, entry_id, "requeue", "act-2", "alice")).ok

    intruder = await store.complete(DLQ, entry_id, "act-2", EntryState.REQUEUED, "sneaky")
    assert not intruder.ok and intruder.action_id == "act-1" and intruder.operator == "alice"

    done = await store.complete(DLQ, entry_id, "act-1", EntryState.REQUEUED, "to payments.process")
    assert done.ok and done.state is EntryState.REQUEUED
    again = await store.complete(DLQ, entry_id, "act-1", EntryState.REQUEUED, "to payments.process")
    assert again.ok  # a rerun after a crash between complete and its reply
    late = await store.claim(DLQ, entry_id, "cancel", "act-3", "bob")
    assert not late.ok and late.state is EntryState.REQUEUED and late.operator == "alice"

    entry = await store.get(DLQ, entry_id)
    assert entry is not None
    assert entry.state is EntryState.REQUEUED and entry.detail == "to payments.process"
    assert entry.action == "requeue" and entry.version == 3
    assert await store.in_flight(DLQ) == []
    with pytest.raises(ValueError):
        await store.complete(DLQ, entry_id, "act-1", EntryState.PARKED)


async def test_release_restores_parked_with_the_error(store: ParkingStore) -> None:
    entry_id = (await store.park(DLQ, dead_letter(1), FIELDS)).entry_id
    await store.claim(DLQ, entry_id, "requeue", "act-1", "alice")
    (stuck,) = await store.in_flight(DLQ)
    assert stuck.entry_id == entry_id and stuck.action_id == "act-1"

    assert not (await store.release(DLQ, entry_id, "act-x", "not mine")).ok
    released = await store.release(DLQ, entry_id, "act-1", "NO_ROUTE: payments.process")
    assert released.ok and released.state is EntryState.PARKED
    entry = await store.get(DLQ, entry_id)
    assert entry is not None and entry.state is EntryState.PARKED
    assert entry.last_error == "NO_ROUTE: payments.process"
    assert await store.in_flight(DLQ) == []
    # and it can be acted on again
    assert (await store.claim(DLQ, entry_id, "retry", "act-2", "bob")).ok
    assert (await store.complete(DLQ, entry_id, "act-2", EntryState.RETRIED)).ok
    entry = await store.get(DLQ, entry_id)
    assert entry is not None and entry.last_error is None and entry.operator == "bob"


async def test_missing_entries_are_reported(store: ParkingStore) -> None:
    result = await store.claim(DLQ, "0" * 20, "requeue", "a", "alice")
    assert not result.ok and result.missing
    assert (await store.complete(DLQ, "0" * 20, "a", EntryState.CANCELLED)).missing
    assert (await store.release(DLQ, "0" * 20, "a", "e")).missing


async def test_changes_stream_records_every_transition(store: ParkingStore) -> None:
    start = await store.last_change_id(DLQ)
    assert start == "0-0"
    entry_id = (await store.park(DLQ, dead_letter(1), FIELDS)).entry_id
    await store.claim(DLQ, entry_id, "requeue", "act-1", "alice")
    await store.release(DLQ, entry_id, "act-1", "boom")
    await store.claim(DLQ, entry_id, "cancel", "act-2", "bob")
    await store.complete(DLQ, entry_id, "act-2", EntryState.CANCELLED, "customer asked")
    await store.claim(DLQ, entry_id, "cancel", "act-3", "eve")  # refused: no change
    changes = await store.read_changes(DLQ, start)
    assert [(c.op, c.state) for c in changes] == [
        ("park", EntryState.PARKED),
        ("claim", EntryState.CLAIMED),
        ("release", EntryState.PARKED),
        ("claim", EntryState.CLAIMED),
        ("complete", EntryState.CANCELLED),
    ]
    assert {c.entry_id for c in changes} == {entry_id}
    assert [c.operator for c in changes[1:]] == ["alice", "alice", "bob", "bob"]
    assert all(c.ts > 1_600_000_000_000 for c in changes)
    assert await store.read_changes(DLQ, changes[-1].stream_id) == []


async def test_another_console_sees_changes_live(redis_url: str, store: ParkingStore) -> None:
    other_client = aioredis.from_url(redis_url)
    other = ParkingStore(other_client, store.prefix)
    try:
        cursor = await other.last_change_id(DLQ)
        reader = asyncio.create_task(other.read_changes(DLQ, cursor, block_ms=5000))
        await asyncio.sleep(0.1)
        parked = await store.park(DLQ, dead_letter(1), FIELDS)
        changes = await asyncio.wait_for(reader, 5)
        assert [(c.entry_id, c.op) for c in changes] == [(parked.entry_id, "park")]
    finally:
        await other_client.aclose()


# --------------------------------------------------------------------------- audit, durability


async def test_audit_append_and_read(store: ParkingStore) -> None:
    for n in range(30):
        await store.append_audit(
            DLQ,
            AuditRecord(
                ts=1_700_000_000_000 + n,
                operator="alice",
                host="ops-1",
                action="requeue",
                entry_ids=(f"e{n}", "shared"),
                target="payments.process",
                result="ok" if n % 2 else "error",
                detail=f"n={n}",
                action_id=f"act-{n}",
            ),
        )
    newest = await store.read_audit(DLQ, count=5)
    assert [r.detail for r in newest] == ["n=29", "n=28", "n=27", "n=26", "n=25"]
    assert newest[0].entry_ids == ("e29", "shared") and newest[0].stream_id
    assert (
        newest[0].operator == "alice"
        and newest[0].host == "ops-1"
        and newest[0].ts == 1_700_000_000_029
    )
    only = await store.read_audit(DLQ, count=10, entry_id="e3")
    assert [r.action_id for r in only] == ["act-3"]
    assert len(await store.read_audit(DLQ, count=100, entry_id="shared")) == 30


async def test_durability_reports_not_durable_on_the_test_redis(store: ParkingStore) -> None:
    durability = await store.durability()
    assert durability.durable is False
    assert "nothing on disk" in durability.detail or "snapshots" in durability.detail


async def test_durability_unknown_when_the_acl_refuses_config(
    redis_client: aioredis.Redis, redis_url: str, unique_prefix: str
) -> None:
    user = f"payops-test-{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    try:
        await redis_client.acl_setuser(
            user,
            enabled=True,
            passwords=[f"+{password}"],
            keys=["*"],
            commands=["+@all", "-config"],
        )
    except ResponseError as exc:  # pragma: no cover - a Redis without ACLs
        pytest.skip(f"cannot create an ACL user: {exc}")
    limited = aioredis.from_url(redis_url, username=user, password=password)
    try:
        durability = await ParkingStore(limited, unique_prefix.rstrip(".")).durability()
        assert durability.durable is None
        assert "refused" in durability.detail
    finally:
        await limited.aclose()
        await redis_client.acl_deluser(user)


async def test_delete_all_removes_every_key_of_one_dlq_only(
    store: ParkingStore, redis_client: aioredis.Redis
) -> None:
    await store.park_many(DLQ, [ParkItem(dead_letter(n)) for n in range(10)], FIELDS)
    await store.park("other*[dlq]?", dead_letter(1), FIELDS)
    deleted = await store.delete_all(DLQ)
    assert deleted >= 13  # 10 entries, idx, fp, changes
    assert await store.count(DLQ) == 0
    assert await store.count("other*[dlq]?") == 1
    remaining = [k async for k in redis_client.scan_iter(match=f"{store.prefix}:*")]
    remaining.remove(store.dlqs_key.encode())
    assert remaining and all(b"{other*[dlq]?}" in k for k in remaining)
    assert await store.known_dlqs() == ["other*[dlq]?"]
    assert await store.delete_all("other*[dlq]?") >= 4


# --------------------------------------------------------------------------- causes


async def test_entries_keep_their_cause_and_a_payment_finds_its_entries(
    store: ParkingStore,
) -> None:
    spring = dead_letter(1, **{"x-exception-message": "acquirer timeout after 3012 ms on acq-7"})
    first = await store.park(DLQ, spring, FIELDS)
    second = await store.park(DLQ, dead_letter(1), FIELDS)  # the same payment dead again
    other = await store.park("refunds.dlq", dead_letter(2), FIELDS)
    row = (await store.page(DLQ, count=10, newest_first=False))[0]
    assert (row.cause, row.cause_source, row.failure_group) == (
        "acquirer timeout after 3012 ms on acq-7",
        "message",
        "acquirer timeout after # ms on acq-#",
    )
    entry = await store.get(DLQ, second.entry_id)
    assert entry is not None
    assert (entry.summary.cause, entry.summary.cause_source) == ("rejected", "dead_letter")
    assert await store.entries_for_payment("pay_1") == [
        (DLQ, first.entry_id),
        (DLQ, second.entry_id),
    ]
    assert await store.entries_for_payment("pay_2") == [("refunds.dlq", other.entry_id)]
    assert await store.entries_for_payment("pay_2", [DLQ]) == []
    assert await store.entries_for_payment("pay_unknown") == []
    assert await store.delete_entries(DLQ, [first.entry_id]) == 1
    assert await store.entries_for_payment("pay_1") == [(DLQ, second.entry_id)]
    await store.delete_entries(DLQ, [second.entry_id])
    assert await store.entries_for_payment("pay_1") == []


async def test_entries_parked_before_causes_were_kept_read_with_their_dead_letter_reason(
    store: ParkingStore, redis_client: aioredis.Redis
) -> None:
    result = await store.park(DLQ, dead_letter(3, **{"x-exception-message": "boom 42"}), FIELDS)
    key = store.entry_key(DLQ, result.entry_id)
    await redis_client.hdel(key, "cause", "cause_src", "fgroup", "pid")  # as an older version
    entry = await store.get(DLQ, result.entry_id)
    row = (await store.page(DLQ))[0]
    for summary in (entry.summary if entry else None, row):
        assert summary is not None
        assert (summary.cause, summary.cause_source, summary.failure_group) == (
            "rejected",
            "dead_letter",
            "rejected",
        )


async def test_a_flow_cause_found_at_park_time_or_later_wins_and_is_never_replaced(
    store: ParkingStore,
) -> None:
    asked: list[list[str]] = []

    async def lookup(payment_ids: Sequence[str]) -> Mapping[str, FlowFailure]:
        asked.append(list(payment_ids))
        return {"pay_4": FlowFailure("risk engine unavailable (HTTP 503)", 1)}

    items = [ParkItem(dead_letter(4)), ParkItem(dead_letter(5)), ParkItem(dead_letter(4))]
    results = await store.park_many(DLQ, items, FIELDS, flow_failures=lookup)
    assert asked == [["pay_4", "pay_5"]]  # one lookup per batch
    assert [r.summary.cause_source if r.summary else None for r in results] == [
        "flow",
        "dead_letter",
        "flow",
    ]
    late = results[1].entry_id
    cause = Cause.of("acquirer timeout after 2999 ms on acq-2", "flow")
    last_change = await store.last_change_id(DLQ)
    assert await store.set_cause(DLQ, late, cause) == "rejected"  # the former group
    assert await store.set_cause(DLQ, late, Cause.of("other", "flow")) is None
    assert await store.set_cause(DLQ, results[0].entry_id, cause) is None
    assert await store.set_cause(DLQ, "nope", cause) is None
    entry = await store.get(DLQ, late)
    assert entry is not None and entry.summary.cause == cause.text
    assert entry.summary.failure_group == "acquirer timeout after # ms on acq-#"
    changes = await store.read_changes(DLQ, last_change)
    assert [(c.entry_id, c.op, c.state) for c in changes] == [(late, "cause", EntryState.PARKED)]


def test_entry_ids_made_together_are_unique_sorted_and_timed() -> None:
    before = new_entry_id()
    ids = new_entry_ids(500)
    assert len(set(ids)) == 500 and all(len(i) == 20 for i in ids)
    assert ids == sorted(ids) and before < ids[0]  # one clock read, counter in order
    assert entry_id_time_ms(ids[0]) == entry_id_time_ms(ids[-1]) is not None
