"""What the failed-payments table shows of its columns, for the page tests."""

from __future__ import annotations

from services.workbench.columns import TABLE_HIDDEN
from widgets.workbench.entries_table import (
    FOLDS_FOR_ROOM,
    GIVES_WAY_READABLE,
    EntriesTable,
)
from widgets.workbench.table_model import COLUMN_NAMES

IMPORTANT = [n for n in COLUMN_NAMES if n not in TABLE_HIDDEN]
"""The columns shown by default, in their order."""


def assert_columns_fit(table: EntriesTable) -> None:
    """Every default column on screen or hidden for room (the outcome before the queue),
    the cause readable, no horizontal scroll bar."""
    shown, folded = table.shown_columns(), table.folded_columns()
    assert sorted(shown + folded, key=COLUMN_NAMES.index) == IMPORTANT, (shown, folded)
    assert folded == list(FOLDS_FOR_ROOM[: len(folded)]), folded
    cause = table.columnWidth(COLUMN_NAMES.index("cause"))
    assert cause >= GIVES_WAY_READABLE, (cause, folded)
    assert not table.horizontalScrollBar().isVisible()
