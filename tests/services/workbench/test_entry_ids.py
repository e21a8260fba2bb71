"""EntryIds: a selection's entry ids, looked up in the index when read."""

from __future__ import annotations

import numpy as np
import pytest

from services.workbench.entry_ids import CHUNK, EntryIds
from services.workbench.index import EntryIndex
from services.workbench.model import EntryState, EntrySummary


def _row(i: int) -> EntrySummary:
    return EntrySummary(
        entry_id=f"{1_700_000_000_000 + i:012x}{i:08x}",
        dlq="payments.dlq",
        parked_at_ms=1_700_000_000_000 + i,
        dead_lettered_at_ms=1_700_000_000_000 + i,
        payment_id=f"pay_{i}",
        merchant="Acme",
        amount="1.00",
        amount_value=1.0,
        currency="EUR",
        reason="rejected",
        origin_queue="payments.capture",
        routing_key="payment.capture",
        attempts=1,
        state=EntryState.PARKED,
        last_operator=None,
        body_kind="json",
        size=10,
        message_id=None,
    )


def test_reads_like_the_list_of_ids_it_stands_for() -> None:
    index = EntryIndex()
    rows = [_row(i) for i in range(CHUNK + 7)]
    index.add(rows)
    chosen = np.array([5, 2, *range(10, CHUNK + 7)], dtype=np.int64)
    ids = EntryIds(index, chosen)
    expected = [rows[int(i)].entry_id for i in chosen]
    assert len(ids) == len(expected)
    assert ids[0] == expected[0] and ids[-1] == expected[-1] and ids[1] == expected[1]
    assert ids[2:5] == expected[2:5]
    assert list(ids) == expected  # iterated a chunk at a time
    assert ids == expected and ids != expected[:-1] and ids == EntryIds(index, chosen.copy())
    assert EntryIds(index, np.zeros(0, dtype=np.int64)) == []
    with pytest.raises(IndexError):
        ids[len(expected)]
    assert repr(ids).startswith(f"EntryIds({len(expected):,}: ")
