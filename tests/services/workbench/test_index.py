"""EntryIndex against a brute-force Python filter: exact rows, exact order, no Qt."""

from __future__ import annotations

import random
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from services.workbench.cause import Cause
from services.workbench.columns import SORT_KEYS, SortKey
from services.workbench.index import STATES, EntryIndex
from services.workbench.model import EntryState, EntrySummary
from services.workbench.query import GROUP_BYS, Query

T0 = 1_715_000_000_000
MERCHANTS = ["Acme Books", "Globex", "Initech", "Umbrella GmbH", "Café Müller", "zeta", "Zeta"]
REASONS = ["rejected", "expired", "maxlen", "delivery_limit", ""]
QUEUES = ["payments.process", "payments.capture", "refunds.process"]
ROUTING_KEYS = ["payment.failed", "payment.requested", "refund.created"]
DLQS = ["payments.dlq", "refunds.dlq"]
CAUSES = [
    ("acquirer timeout after 3012 ms on acq-7", "flow"),
    ("acquirer timeout after 2999 ms on acq-2", "flow"),
    ("schema validation failed: amount", "message"),
    ("Risk engine unavailable", "message"),
    ("rejected", "dead_letter"),
]


def summary(i: int, rng: random.Random | None = None, **changes: Any) -> EntrySummary:
    """A realistic row; ``rng`` varies every field, ``changes`` override."""
    rng = rng or random.Random(i)
    t = T0 + i * 1000 + rng.randint(-5000, 5000)  # not quite in id order
    amount_value = round(rng.uniform(0.5, 5000), 2) if rng.random() > 0.1 else None
    base = EntrySummary(
        entry_id=f"{t:012x}{i:08x}",
        dlq=rng.choice(DLQS),
        parked_at_ms=t + rng.randint(0, 900),
        dead_lettered_at_ms=t if rng.random() > 0.05 else T0 + 500_000,  # some ties
        payment_id=f"pay_{rng.getrandbits(48):012x}" if rng.random() > 0.05 else None,
        merchant=rng.choice(MERCHANTS) if rng.random() > 0.08 else None,
        amount=f"{amount_value:.2f}" if amount_value is not None else None,
        amount_value=amount_value,
        currency=rng.choice(["EUR", "USD", None]),
        reason=rng.choice(REASONS),
        origin_queue=rng.choice(QUEUES),
        routing_key=rng.choice(ROUTING_KEYS),
        attempts=rng.randint(0, 7),
        state=rng.choice(STATES),
        last_operator=rng.choice([None, "alice", "bob"]),
        body_kind=rng.choice(["json", "text", "binary", "empty"]),
        size=rng.randint(0, 4000),
        message_id=str(uuid.UUID(int=rng.getrandbits(128))) if rng.random() > 0.2 else None,
    )
    text, source = rng.choice(CAUSES)
    cause = Cause.of(text, source)  # type: ignore[arg-type]
    return replace(base.with_cause(cause), **changes)


def build(n: int, seed: int = 7, batch: int = 1000) -> tuple[EntryIndex, list[EntrySummary]]:
    rng = random.Random(seed)
    rows = [summary(i, rng) for i in range(n)]
    index = EntryIndex()
    for start in range(0, n, batch):
        index.add(rows[start : start + batch])
    return index, rows


# --------------------------------------------------------------------------- brute force


def _text_key(value: str | None) -> tuple[str, str] | None:
    """Case-insensitive; None and "" are "no value" (sorted last)."""
    return (value.lower(), value) if value else None


BRUTE_KEYS: dict[str, Callable[[EntrySummary], Any]] = {
    "dead_lettered_at": lambda s: s.dead_lettered_at_ms,
    "parked_at": lambda s: s.parked_at_ms,
    "payment_id": lambda s: None if s.payment_id is None else s.payment_id.encode(),
    "merchant": lambda s: _text_key(s.merchant),
    "amount": lambda s: s.amount_value,
    "currency": lambda s: _text_key(s.currency),
    "reason": lambda s: _text_key(s.reason),
    "origin_queue": lambda s: _text_key(s.origin_queue),
    "routing_key": lambda s: _text_key(s.routing_key),
    "origin_exchange": lambda s: _text_key(s.origin_exchange),
    "attempts": lambda s: s.attempts,
    "state": lambda s: STATES.index(s.state),
    "last_operator": lambda s: _text_key(s.last_operator),
    "dlq": lambda s: _text_key(s.dlq),
    "entry_id": lambda s: s.entry_id.encode(),
    "message_id": lambda s: None if s.message_id is None else s.message_id.encode(),
    "size": lambda s: s.size,
    "cause": lambda s: _text_key(s.cause),
    "cause_source": lambda s: _text_key(s.cause_source),
    "failure_group": lambda s: _text_key(s.failure_group),
    "outcome": lambda s: _text_key(s.outcome),
}


def brute_filter(rows: list[EntrySummary], q: Query) -> list[int]:
    """Row positions passing ``q``, written from the docstring, independently of the index."""
    out = []
    terms = q.text.lower().split()
    for position, s in enumerate(rows):
        if q.states and s.state not in q.states:
            continue
        if q.reasons and s.reason not in q.reasons:
            continue
        if q.dlqs and s.dlq not in q.dlqs:
            continue
        if q.queues and s.origin_queue not in q.queues:
            continue
        if q.merchants and s.merchant not in q.merchants:
            continue
        if q.failure_groups and s.failure_group not in q.failure_groups:
            continue
        wanted = q.cause.strip().lower()
        if wanted and not (wanted in s.cause.lower() or wanted in s.failure_group.lower()):
            continue
        if q.dead_from_ms is not None and not s.dead_lettered_at_ms >= q.dead_from_ms:
            continue
        if q.dead_until_ms is not None and not s.dead_lettered_at_ms < q.dead_until_ms:
            continue
        if q.amount_min is not None and (s.amount_value is None or s.amount_value < q.amount_min):
            continue
        if q.amount_max is not None and (s.amount_value is None or s.amount_value > q.amount_max):
            continue
        texts = [
            (t or "").lower()
            for t in (
                s.payment_id,
                s.merchant,
                s.entry_id,
                s.message_id,
                s.amount,
                s.reason,
                s.cause,
                s.dlq,
                s.origin_queue,
                s.routing_key,
            )
        ]
        if not all(any(term in t for t in texts) for term in terms):
            continue
        out.append(position)
    return out


def brute_query(rows: list[EntrySummary], q: Query) -> list[int]:
    matching = brute_filter(rows, q)
    key = BRUTE_KEYS[q.sort_key]
    present = [p for p in matching if key(rows[p]) is not None]
    missing = [p for p in matching if key(rows[p]) is None]
    present.sort(key=lambda p: (key(rows[p]), p))
    if q.descending:
        present.reverse()
    return present + missing


def random_query(rng: random.Random, rows: list[EntrySummary]) -> Query:
    def some(values: list[Any]) -> frozenset[Any]:
        if rng.random() < 0.6:
            return frozenset()
        return frozenset(rng.sample(values, rng.randint(1, len(values))))

    text = ""
    if rng.random() < 0.5:
        sample = rows[rng.randrange(len(rows))]
        source = rng.choice(
            [
                sample.payment_id or "pay",
                sample.entry_id,
                sample.message_id or "-4",
                sample.merchant or "acme",
                sample.reason or "exp",
                sample.origin_queue,
                sample.routing_key,
                sample.amount or "5.",
                sample.cause,
            ]
        )
        start = rng.randrange(len(source))
        text = source[start : start + rng.randint(1, 8)]
        if rng.random() < 0.5:
            text = text.upper()
        if rng.random() < 0.2:
            text += " " + rng.choice(["pay", "EUR", "process", "a"])
    times = sorted(rng.sample(range(T0 - 10_000, T0 + len(rows) * 1000), 2))
    amounts = sorted([round(rng.uniform(0, 5000), 2), round(rng.uniform(0, 5000), 2)])
    return Query(
        text=text,
        states=some(list(STATES)),
        reasons=some(REASONS),
        dlqs=some(DLQS),
        queues=some(QUEUES),
        merchants=some([*MERCHANTS, None]),
        dead_from_ms=times[0] if rng.random() < 0.3 else None,
        dead_until_ms=times[1] if rng.random() < 0.3 else None,
        amount_min=amounts[0] if rng.random() < 0.25 else None,
        amount_max=amounts[1] if rng.random() < 0.25 else None,
        failure_groups=some(sorted({Cause.of(t, "flow").group for t, _ in CAUSES})),
        cause=rng.choice(["", "", "", "TIMEOUT", "# ms on", "schema", "nothing like it"]),
        sort_key=rng.choice(SORT_KEYS),
        descending=rng.random() < 0.5,
    )


# --------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def big() -> tuple[EntryIndex, list[EntrySummary]]:
    return build(20_000)


def test_rows_round_trip_exactly(big):
    index, rows = big
    assert len(index) == len(rows)
    for position in [0, 1, 999, 1000, 12_345, len(rows) - 1]:
        assert index.row(position) == rows[position]
    assert index.rows(range(50)) == rows[:50]
    assert index.entry_ids(np.arange(10)) == [s.entry_id for s in rows[:10]]
    with pytest.raises(IndexError):
        index.row(len(rows))


def test_random_queries_match_brute_force_exactly(big):
    index, rows = big
    rng = random.Random(2024)
    nonempty = 0
    for _ in range(150):
        q = random_query(rng, rows)
        expected = brute_query(rows, q)
        got = index.query(q).tolist()
        assert got == expected, q
        assert index.count(q) == len(expected)
        assert all(q.matches(rows[p]) for p in got[:200])
        nonempty += bool(expected)
    assert nonempty > 50  # the random queries are not all empty


@pytest.mark.parametrize("key", SORT_KEYS)
@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
def test_every_sort_key_matches_brute_force(big, key: SortKey, descending: bool):
    index, rows = big
    q = Query(sort_key=key, descending=descending)
    assert index.query(q).tolist() == brute_query(rows, q)


def test_text_search_is_case_insensitive_over_every_text_field():
    def plain(i: int, **changes: Any) -> EntrySummary:
        fixed = {
            "payment_id": f"pay_{i}",
            "merchant": "Initech",
            "message_id": None,
            "amount": "1.00",
            "reason": "rejected",
            "dlq": "payments.dlq",
            "origin_queue": "payments.process",
            "routing_key": "payment.failed",
        }
        return summary(i, **{**fixed, **changes})

    rows = [
        plain(0, payment_id="PAY_AbC123", merchant="Acme Books", message_id="MSG-Zulu"),
        plain(1, payment_id="pay_zzz", merchant="Globex", reason="expired"),
        plain(2, routing_key="Payment.Refund.Created", origin_queue="refunds.process"),
        plain(3, merchant="Café Müller", amount="1234.50", amount_value=1234.5),
        plain(4, dlq="special.DLQ"),
    ]
    index = EntryIndex()
    index.add(rows)

    def ids(text: str) -> set[int]:
        return set(index.query(Query(text=text)).tolist())

    assert ids("abc1") == {0}
    assert ids("pay_ABC") == {0}
    assert ids("acme") == {0}
    assert ids("msg-zulu") == {0}
    assert ids("EXPIRED") == {1}
    assert ids("refund.created") == {2}
    assert ids("REFUNDS.PROC") == {2}
    assert ids("MÜLLER") == {3}
    assert ids("1234.5") == {3}
    assert ids("special.dlq") == {4}
    assert ids(rows[2].entry_id.upper()) == {2}
    assert ids(rows[2].entry_id[5:15]) == {2}
    assert ids("acme pay_abc") == {0}  # every word must match
    assert ids("acme globex") == set()
    assert ids("no such thing") == set()
    assert ids("   ") == set(range(5))
    # a match may not run across two fields or two rows
    assert ids("abc123acme") == set()
    assert ids(rows[0].entry_id + rows[1].entry_id[:2]) == set()


def test_time_and_amount_ranges_have_documented_bounds():
    rows = [
        summary(i, dead_lettered_at_ms=T0 + i * 10, amount_value=float(i), amount=str(i))
        for i in range(10)
    ]
    rows.append(summary(10, amount_value=None, amount=None, dead_lettered_at_ms=T0 + 100))
    index = EntryIndex()
    index.add(rows)

    def got(**kw: Any) -> list[int]:
        return sorted(index.query(Query(**kw)).tolist())

    assert got(dead_from_ms=T0 + 30, dead_until_ms=T0 + 60) == [3, 4, 5]  # [from, until)
    assert got(dead_from_ms=T0 + 90) == [9, 10]
    assert got(dead_until_ms=T0 + 1) == [0]
    assert got(amount_min=2, amount_max=4) == [2, 3, 4]  # inclusive
    assert got(amount_min=8.5) == [9]  # no amount: outside every amount range
    assert got(amount_max=-1) == []
    assert 10 in got()


def test_live_state_updates_show_in_queries_and_groups():
    index, rows = build(3000, seed=3)
    target = next(s for s in rows if s.state is EntryState.PARKED)
    parked = Query(states=frozenset({EntryState.PARKED}))
    before = index.count(parked)
    version = index.version
    assert index.update_state(target.entry_id, EntryState.REQUEUED, "carol")
    assert index.version > version
    row = index.row(index.find(target.entry_id) or 0)
    assert (row.state, row.last_operator) == (EntryState.REQUEUED, "carol")
    assert index.count(parked) == before - 1
    assert dict(index.group_counts("state"))[EntryState.REQUEUED] == (
        sum(s.state is EntryState.REQUEUED for s in rows) + 1
    )
    assert index.update_state("nope", EntryState.CANCELLED, "x") is False
    assert index.update_state(target.entry_id, EntryState.PARKED, None)
    assert index.row(index.find(target.entry_id) or 0).last_operator is None


def test_adding_known_entries_replaces_their_rows():
    _, rows = build(2000, seed=5)
    first_page = list(reversed(rows[-200:]))  # what store.page() gives first
    fresh = EntryIndex()
    assert fresh.add(first_page) == 200
    for start in range(0, len(rows), 700):  # then the full load, overlapping it
        fresh.add(rows[start : start + 700])
    assert len(fresh) == len(rows)
    assert sorted(fresh.entry_ids(np.arange(len(fresh)))) == sorted(s.entry_id for s in rows)
    changed = replace(rows[10], state=EntryState.CANCELLED, merchant="New Merchant Ltd")
    fresh.update(changed)
    assert len(fresh) == len(rows)
    assert fresh.row(fresh.find(changed.entry_id) or 0) == changed
    assert fresh.query(Query(text="new merchant")).size == 1
    # repeats within one batch: one row, the last one wins
    dup = EntryIndex()
    assert dup.add([summary(1, merchant="A"), summary(2), summary(1, merchant="B")]) == 2
    assert dup.row(dup.find(summary(1).entry_id) or 0).merchant == "B"
    assert dup.add([summary(2, merchant="C"), summary(2, merchant="D")]) == 0
    assert dup.row(1).merchant == "D"


def test_payment_id_change_moves_its_search_text():
    index = EntryIndex()
    index.add([summary(0, payment_id="pay_old"), summary(1, payment_id="pay_other")])
    index.update(summary(0, payment_id="pay_new"))
    assert index.query(Query(text="pay_old")).tolist() == []
    assert index.query(Query(text="pay_new")).tolist() == [0]
    assert sorted(index.query(Query(text="pay_")).tolist()) == [0, 1]


def test_id_lookup_survives_rebuilds_and_odd_ids():
    index = EntryIndex()
    rng = random.Random(11)
    rows = [summary(i, rng) for i in range(80_000)]
    rng.shuffle(rows)
    for start in range(0, len(rows), 5000):
        index.add(rows[start : start + 5000])
    odd = [
        summary(1, entry_id="x" * 300, payment_id="p" * 200),  # over-long: kept whole
        summary(2, entry_id="ünïcødé-id"),
        summary(3, entry_id="short"),
        summary(4, entry_id="nul\x00inside"),
    ]
    index.add(odd)
    for position in [0, 1, 4999, 5000, 40_000, 79_999]:
        assert index.find(rows[position].entry_id) == position
    base = len(rows)
    assert [index.find(s.entry_id) for s in odd] == [base, base + 1, base + 2, base + 3]
    assert index.row(base) == odd[0]
    assert index.entry_ids(np.array([base + 3, base, 7])) == [
        odd[3].entry_id,
        odd[0].entry_id,
        rows[7].entry_id,
    ]
    assert index.entry_ids(np.array([base + 1, 7])) == [odd[1].entry_id, rows[7].entry_id]
    assert index.entry_ids(np.zeros(0, dtype=np.int64)) == []
    assert index.find("x" * 299) is None
    assert index.find("missing") is None
    wanted = [rows[5].entry_id, "missing", odd[2].entry_id]
    assert index.positions(wanted).tolist() == [5, base + 2]
    assert index.add([odd[0]]) == 0


def test_group_counts_are_exact_and_ordered(big):
    index, rows = big
    subset = index.query(Query(reasons=frozenset({"rejected", "expired"})))
    for by in GROUP_BYS:
        attr = "state" if by == "state" else by
        for positions in (None, subset):
            chosen = rows if positions is None else [rows[p] for p in positions.tolist()]
            expected = Counter(getattr(s, attr) for s in chosen)
            got = index.group_counts(by, positions)
            assert dict(got) == dict(expected)
            counts = [c for _, c in got]
            assert counts == sorted(counts, reverse=True)
    assert [v for v, _ in index.group_counts("state")] != []
    assert set(index.values("reason")) == set(REASONS)
    with pytest.raises(ValueError, match="cannot group"):
        index.group_counts("amount")  # type: ignore[arg-type]


def test_query_results_are_cached_until_the_index_changes(big):
    index, _ = big
    q = Query(text="pay", sort_key="amount")
    first = index.query(q)
    assert index.query(q) is first
    assert not first.flags.writeable
    other = EntryIndex()
    other.add([summary(0)])
    before = other.query(Query())
    other.add([summary(1)])
    assert other.query(Query()).size == before.size + 1


def test_reserve_makes_room_up_front():
    index = EntryIndex()
    index.reserve(50_000)
    dead = index._dead
    rows = [summary(i) for i in range(3000)]
    index.add(rows)
    assert index._dead is dead  # the columns were not copied to grow
    assert index.rows(range(3000)) == rows


def test_memory_for_a_million_rows_extrapolates_under_budget():
    n = 200_000
    rng = random.Random(1)
    template = [summary(i, rng) for i in range(2000)]
    index = EntryIndex()
    for start in range(0, n, 5000):
        # fresh ids, realistic (repeating) everything else
        index.add(
            [
                replace(template[(start + k) % 2000], entry_id=f"{T0 + start + k:012x}{k:08x}")
                for k in range(5000)
            ]
        )
    assert len(index) == n
    per_row = index.nbytes / n
    projected = per_row * 1_000_000
    # The columns at capacity (doubling: up to 2x the rows) and the dicts; the whole
    # process must stay under 1 GiB at 1M rows, so the index gets well under half of it.
    assert projected < 512 * 2**20, f"{per_row:.0f} B/row -> {projected / 2**20:.0f} MiB"
    assert per_row > 100  # the accounting counts the columns at all
    assert sys.getsizeof(index) < 1000  # no per-row Python objects hang off the index


def test_cached_orders_follow_new_rows_and_changes(monkeypatch):
    """Large results come from per-key orders kept between queries: they must stay
    exact as rows arrive (new merchants, longer ids), change state, or are replaced."""
    import services.workbench.index as module

    monkeypatch.setattr(module, "_CACHED_ORDERS", 100)  # keep every key's order
    rng = random.Random(99)
    rows = [summary(i, rng) for i in range(6000)]
    index = EntryIndex()
    sorted_alone: list[int] = []
    order_of = index._order_of
    monkeypatch.setattr(
        index, "_order_of", lambda r, k, t: (sorted_alone.append(len(r)), order_of(r, k, t))[1]
    )
    index.add(rows[:3000])
    queries = [Query(sort_key=key, descending=d) for key in SORT_KEYS for d in (False, True)]
    queries.append(Query(states=frozenset(STATES[:3]), sort_key="merchant"))

    def check() -> None:
        shown = rows[: len(index)]
        for q in queries:
            assert index.query(q).tolist() == brute_query(shown, q), q

    check()
    more = [
        replace(s, merchant=f"New Merchant {i % 7}", payment_id=f"pay_{'9' * 40}{i}")
        for i, s in enumerate(rows[3000:4500])
    ]
    rows[3000:4500] = more
    index.add(more)
    sorted_alone.clear()
    check()
    assert 1500 in sorted_alone  # the new rows were sorted alone and merged in
    index.add(rows[4500:])
    sorted_alone.clear()
    check()
    assert sorted_alone.count(1500) >= 10  # keys whose ranks did not move: merged
    for position in (5, 3100, 5999):
        index.update_state(rows[position].entry_id, EntryState.CANCELLED, "zoe")
        rows[position] = replace(rows[position], state=EntryState.CANCELLED, last_operator="zoe")
    check()
    rows[42] = replace(rows[42], dead_lettered_at_ms=0, amount_value=None, amount=None)
    index.update(rows[42])
    check()


def test_very_common_search_terms_mark_the_blob(big, monkeypatch):
    import services.workbench.index_storage as module

    index, rows = big
    monkeypatch.setattr(module, "_MANY_POSITIONS", 100)
    for text in ("a", "pay_", "0", "-4", "e5", rows[7].entry_id[:9]):
        q = Query(text=text, sort_key="amount")
        assert index.query(q).tolist() == brute_query(rows, q), text


def test_id_lookup_across_runs_folded_before_and_after_the_ids_grew_longer():
    index = EntryIndex()
    short = [summary(i, entry_id=f"s{i:07d}") for i in range(40_000)]  # 8 bytes
    longer = [summary(i, entry_id=f"s{i:07d}-{i:012d}") for i in range(40_000)]  # 21 bytes
    for batch in (short, longer):
        for start in range(0, len(batch), 1000):
            index.add(batch[start : start + 1000])
    assert index.find("s0000007") == 7
    assert index.find("s0000007-000000000007") == 40_007  # its first 8 bytes are another id
    assert index.find("s0039999-000000039999") == 79_999
    assert index.find("s0000007-000000000008") is None
    assert index.positions(["s0000001", "nope", "s0000002-000000000002"]).tolist() == [1, 40_002]
    assert index.add([replace(short[3], attempts=99)]) == 0  # found: its row is replaced
    assert index.row(3).attempts == 99
