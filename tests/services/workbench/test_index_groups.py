"""Failure group stats over the index (vectorised) against the row-at-a-time tally."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from services.workbench.failure_groups import failure_group_stats as tally_stats
from services.workbench.index import EntryIndex
from services.workbench.index_groups import failure_group_stats
from services.workbench.model import EntryState
from services.workbench.query import Query
from tests.helpers.summaries import realistic_summaries


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
        )
        for s in stats
    ]


def test_the_index_gives_what_the_tally_gives_for_every_row_and_for_a_filter():
    rows = realistic_summaries(4000, seed=3)
    index = EntryIndex()
    index.add(rows)
    assert _comparable(failure_group_stats(index)) == _comparable(tally_stats(rows))

    query = Query(merchants=frozenset({rows[0].merchant}), states=frozenset({EntryState.PARKED}))
    matching = index.matching(query)
    assert 0 < len(matching) < len(rows)
    picked = [rows[i] for i in matching.tolist()]
    assert _comparable(failure_group_stats(index, matching)) == _comparable(tally_stats(picked))


def test_a_group_counts_its_open_amounts_per_currency_its_merchants_and_its_newest_cause():
    base = realistic_summaries(1, seed=5)[0]
    group = "acquirer timeout after # ms on acq-#"
    rows = [
        replace(
            base,
            entry_id=f"e{i}",
            merchant=merchant,
            amount_value=value,
            currency=currency,
            state=state,
            dead_lettered_at_ms=1_000 * (i + 1),
            cause=f"acquirer timeout after {3000 + i} ms on acq-{i}",
            cause_source="flow",
            failure_group=group,
        )
        for i, (merchant, value, currency, state) in enumerate(
            [
                ("acme", 10.0, "EUR", EntryState.PARKED),
                ("acme", 5.5, "EUR", EntryState.CLAIMED),
                ("globex", 7.25, "USD", EntryState.PARKED),
                ("initech", 100.0, "EUR", EntryState.REQUEUED),  # not at risk any more
                (None, float("nan"), None, EntryState.PARKED),
            ]
        )
    ]
    index = EntryIndex()
    index.add(rows)
    (stats,) = failure_group_stats(index)
    assert (stats.group, stats.count, stats.open, stats.merchants) == (group, 5, 4, 3)
    assert stats.amount_at_risk == {"EUR": 15.5, "USD": 7.25}
    assert stats.amount_text == "15.50 EUR, 7.25 USD"
    assert (stats.first_seen_ms, stats.last_seen_ms) == (1_000, 5_000)
    assert stats.example == "acquirer timeout after 3004 ms on acq-4"
    assert stats.sources == {"flow": 5}
    assert failure_group_stats(index, np.zeros(0, dtype=np.int64)) == []


def test_only_the_largest_groups_when_asked():
    index = EntryIndex()
    index.add(realistic_summaries(500, seed=9))
    every = failure_group_stats(index)
    assert len(every) > 3
    assert [s.group for s in failure_group_stats(index, groups=3)] == [s.group for s in every[:3]]
