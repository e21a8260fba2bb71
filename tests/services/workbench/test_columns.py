"""The one table of entry columns: what each view shows, in which order, under which name."""

from __future__ import annotations

from services.workbench.columns import (
    CLI_COLUMNS,
    COLUMN,
    COLUMNS,
    CSV_COLUMNS,
    SORT_KEYS,
    TABLE_COLUMNS,
    TABLE_HIDDEN,
)
from services.workbench.model import EntrySummary, ParkedEntry


def test_each_view_lists_the_columns_it_always_showed() -> None:
    assert [c.name for c in CSV_COLUMNS] == [
        "entry_id",
        "dlq",
        "dead_lettered_at",
        "parked_at",
        "payment_id",
        "merchant",
        "amount",
        "currency",
        "reason",
        "cause",
        "cause_source",
        "failure_group",
        "origin_queue",
        "routing_key",
        "attempts",
        "state",
        "last_operator",
        "last_error",
    ]
    assert [(c.cli_title, c.cli_width) for c in CLI_COLUMNS] == [
        ("ID", 20),
        ("DEAD-LETTERED", 24),  # "2026-12-03 14:05:31 CEST": the zone is shown
        ("PAYMENT", 18),
        ("MERCHANT", 16),
        ("AMOUNT", 14),
        ("REASON", 14),
        ("CAUSE", 32),
        ("QUEUE", 20),
        ("TRIES", 5),
        ("STATE", 9),
        ("BY", 10),
    ]
    assert [(c.name, c.title) for c in TABLE_COLUMNS] == [
        ("dead_lettered_at", "Dead-lettered at"),
        ("payment_id", "Payment id"),
        ("merchant", "Merchant"),
        ("amount", "Amount"),
        ("reason", "Reason"),
        ("cause", "Cause"),
        ("origin_queue", "Queue"),
        ("routing_key", "Routing key"),
        ("attempts", "Attempts"),
        ("state", "State"),
        ("outcome", "Outcome"),
        ("last_operator", "Last operator"),
    ]
    # the cause in place of the reason; these three are a click away in the column chooser
    assert {"reason", "routing_key", "attempts", "last_operator"} == TABLE_HIDDEN
    assert [c.name for c in TABLE_COLUMNS if c.numeric] == ["amount", "attempts"]
    assert [c.name for c in TABLE_COLUMNS if c.descending_first] == [
        "dead_lettered_at",
        "amount",
        "attempts",
    ]


def test_every_column_but_entry_details_sorts_and_names_a_field() -> None:
    assert set(SORT_KEYS) == {c.name for c in COLUMNS} - {"last_error"}
    assert all(COLUMN[name].sortable for name in SORT_KEYS)
    for column in COLUMNS:
        owner = ParkedEntry if column.kind == "detail" else EntrySummary
        assert column.field in owner.__dataclass_fields__, column
