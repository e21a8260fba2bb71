"""Rows only added (a load in batches): the result merged in order, the rows from a
start filtered alone, and the group counts and failure group stats kept from the
added rows only - each the same as a full recompute."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from services.workbench import group_tally
from services.workbench.columns import TABLE_COLUMNS
from services.workbench.group_tally import GroupTally
from services.workbench.index import EntryIndex
from services.workbench.index_groups import failure_group_stats
from services.workbench.model import EntryState, EntrySummary
from services.workbench.query import GROUP_BYS, Query
from services.workbench.result_merge import SortedResult
from tests.helpers.summaries import realistic_summaries

FILTERS = (
    Query(),
    Query(states=frozenset({EntryState.PARKED})),
    Query(text="acme"),
    Query(text="pay_3 e"),  # two words, one of them a single byte
    Query(cause="timeout"),
    Query(amount_min=20.0, reasons=frozenset({"rejected", "expired"})),
)


def shuffled_rows(n: int, seed: int) -> list[EntrySummary]:
    rows = realistic_summaries(n, seed=seed)
    random.Random(seed).shuffle(rows)
    return rows


def batches(rows: list[EntrySummary], seed: int) -> list[list[EntrySummary]]:
    """``rows`` in batches of 1 to 600 rows."""
    rng, out, at = random.Random(seed), [], 0
    while at < len(rows):
        size = rng.randint(1, 600)
        out.append(rows[at : at + size])
        at += size
    return out


@pytest.mark.parametrize("descending", [False, True])
def test_a_result_merged_batch_by_batch_is_the_query_run_again(descending):
    rows = shuffled_rows(5000, seed=7)
    queries = [Query(sort_key=c.name, descending=descending) for c in TABLE_COLUMNS]
    queries += [replace(f, sort_key="amount", descending=descending) for f in FILTERS[1:]]
    for query in queries:
        index = EntryIndex()
        index.add(rows[:50])
        result = SortedResult.of(index, query, index.query(query))
        for batch in batches(rows[50:], seed=3):
            index.add(batch)
            before = len(result.rows)
            grown = result.extended(index)
            assert grown is not None
            result, added = grown
            expected = index.query(query)
            assert added == len(result.rows) - before
            assert np.array_equal(result.rows, expected), (query.sort_key, query.text)


def test_a_change_to_rows_already_there_makes_the_merge_run_the_query_again():
    rows = shuffled_rows(400, seed=2)
    index = EntryIndex()
    index.add(rows[:300])
    query = Query(sort_key="state")
    result = SortedResult.of(index, query, index.query(query))
    index.update_state(rows[0].entry_id, EntryState.CANCELLED, "alice")
    assert result.extended(index) is None
    result = SortedResult.of(index, query, index.query(query))
    index.add([replace(rows[1], merchant="Another Shop")])
    assert result.extended(index) is None


def test_a_row_read_again_as_it_is_changes_nothing_and_a_changed_one_does():
    rows = shuffled_rows(400, seed=4)
    index = EntryIndex()
    index.add(rows[-200:])  # the first page: the newest rows
    version = index.version
    index.add(rows[:200])
    index.add(rows[-200:])  # the load reaches them: read again, the same
    assert index.appended_since(version, 200)
    index.add([replace(rows[-1], state=EntryState.REQUEUED)])
    assert not index.appended_since(version, 200)
    assert index.row(index.find(rows[-1].entry_id)).state is EntryState.REQUEUED


@pytest.mark.parametrize("filters", FILTERS, ids=lambda q: q.describe() or "all")
def test_the_rows_from_a_start_are_the_matching_ones_from_it(filters):
    rows = shuffled_rows(3000, seed=5)
    index = EntryIndex()
    index.add(rows[:1000])
    # rows already there whose searched text changes get new text segments later on
    index.add([replace(r, merchant="Acme Late", payment_id=None) for r in rows[:40]])
    index.add(rows[1000:])
    every = index.matching(filters)
    for start in (0, 1, 999, 1000, 1700, 2999, 3000):
        assert np.array_equal(index.matching_from(filters, start), every[every >= start])


def _comparable(stats):
    return [
        (
            s.group,
            s.count,
            s.open,
            {k: pytest.approx(v) for k, v in s.amount_at_risk.items()},
            s.merchants,
            s.first_seen_ms,
            s.last_seen_ms,
            s.sources,
            s.example,
        )
        for s in stats
    ]


@pytest.mark.parametrize("table_max", [group_tally.TABLE_MAX, 2_000])
@pytest.mark.parametrize("filters", FILTERS, ids=lambda q: q.describe() or "all")
def test_the_tally_after_a_load_in_many_batches_is_a_full_recompute(
    filters, table_max, monkeypatch
):
    """Also with the (group, merchant) pairs past a small table: kept in a set instead."""
    monkeypatch.setattr(group_tally, "TABLE_MAX", table_max)
    rows = shuffled_rows(6000, seed=9)
    rows = [replace(r, merchant=f"Shop {i % 700}") if i % 3 == 0 else r for i, r in enumerate(rows)]
    for by in GROUP_BYS:
        index, tally = EntryIndex(), GroupTally()
        for batch in batches(rows, seed=11):
            index.add(batch)
            looked_at = tally.update(index, by, filters)
            assert looked_at == len(batch)  # only the added rows
        matching = index.matching(filters)
        assert tally.pairs() == index.group_counts(by, matching), by
        if by == "failure_group":
            full = failure_group_stats(index, matching)
            assert _comparable(tally.failure_group_stats()) == _comparable(full)
            assert _comparable(tally.failure_group_stats(3)) == _comparable(full[:3])


def test_the_tally_counts_again_when_rows_change_or_the_filters_do():
    rows = shuffled_rows(2000, seed=13)
    index, tally = EntryIndex(), GroupTally()
    index.add(rows[:1500])
    tally.update(index, "failure_group", Query())
    index.update_state(rows[0].entry_id, EntryState.CANCELLED, "bob")
    index.add(rows[1500:])
    assert tally.update(index, "failure_group", Query()) == len(rows)  # all of them again
    assert _comparable(tally.failure_group_stats()) == _comparable(failure_group_stats(index))
    parked = Query(states=frozenset({EntryState.PARKED}))
    assert tally.update(index, "failure_group", parked) == len(rows)
    assert tally.pairs() == index.group_counts("failure_group", index.matching(parked))
    assert tally.update(index, "merchant", parked) == len(rows)
    assert tally.failure_group_stats() == []
