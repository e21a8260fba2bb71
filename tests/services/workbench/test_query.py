"""Query and ActionTarget: plain data, no index."""

from __future__ import annotations

import pytest

from services.workbench.model import EntryState
from services.workbench.query import ActionTarget, Query


def test_query_helpers_and_groups():
    q = Query(text="acme", reasons={"rejected"})  # type: ignore[arg-type]
    assert isinstance(q.reasons, frozenset)
    assert q.with_group("reason", ["expired"]).reasons == {"expired"}
    assert q.with_group("merchant", [None]).merchants == {None}
    assert q.with_group("state", ["parked"]).states == {EntryState.PARKED}
    assert q.without_group("reason").reasons == frozenset()
    assert q.sorted_by("amount", False).filters == q.filters
    assert Query().is_filtered is False
    assert Query(sort_key="amount").is_filtered is False
    assert q.is_filtered
    assert "acme" in q.describe() and "rejected" in q.describe()
    assert Query().describe() == "no filter"
    with pytest.raises(ValueError, match="sort key"):
        Query(sort_key="bogus")  # type: ignore[arg-type]
    hash(q)


def test_action_target_names_ids_or_a_query():
    ids = ActionTarget.for_entries(["a", "b"])
    assert (ids.count, ids.is_query, ids.description) == (2, False, "2 selected entries")
    one = ActionTarget.for_entries(["a"])
    assert one.description == "entry a"
    q = Query(reasons=frozenset({"expired"}), sort_key="amount")
    matching = ActionTarget.for_query(q, 1234)
    assert matching.is_query and matching.query == q.filters and matching.count == 1234
    assert "1,234" in matching.description and "expired" in matching.description
    with pytest.raises(ValueError):
        ActionTarget(None, None, 0, "")
    with pytest.raises(ValueError):
        ActionTarget(("a",), q, 1, "")
    with pytest.raises(ValueError):
        ActionTarget(("a",), None, 2, "")


def test_a_time_range_is_described_in_local_time_with_the_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import datetime

    from tests.helpers.zones import local_zone

    start = datetime.datetime(2026, 12, 3, 13, 5, tzinfo=datetime.UTC).timestamp()
    with local_zone(monkeypatch, "Europe/Berlin"):
        text = Query(dead_from_ms=int(start * 1000)).describe()
    assert "2026-12-03 14:05 CET" in text
