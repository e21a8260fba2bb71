"""rows_in_states: a query on states alone resolved without an index, in the index's order."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.workbench.actions.service import rows_in_states
from services.workbench.index import EntryIndex
from services.workbench.model import EntryState
from services.workbench.query import Query
from tests.helpers.summaries import realistic_summaries


@pytest.mark.parametrize(
    "states",
    [
        frozenset({EntryState.PARKED}),
        frozenset(),
        frozenset({EntryState.PARKED, EntryState.CLAIMED}),
    ],
)
def test_the_order_and_rows_are_the_indexs(states: frozenset[EntryState]) -> None:
    rows = realistic_summaries(3000)
    # Ties on the sort key, across batches: they keep (reversed) row order as the index.
    rows = [replace(r, dead_lettered_at_ms=r.dead_lettered_at_ms // 600_000) for r in rows]
    batches = [rows[i : i + 700] for i in range(0, len(rows), 700)]
    index = EntryIndex()
    for batch in batches:
        index.add(batch)
    query = Query(states=states)
    expected = index.entry_ids(index.query(query))
    assert [r.entry_id for r in rows_in_states(batches, states)] == expected
    assert len(expected) > 100
