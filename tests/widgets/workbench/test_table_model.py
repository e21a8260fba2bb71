"""FailedPaymentsModel: lazy cells, headers, masking, sorting through the index."""

from __future__ import annotations

import datetime
from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor

from services.config import FieldPaths
from services.masking.text import luhn_valid
from services.workbench.codec import MessageRecord
from services.workbench.index import EntryIndex
from services.workbench.model import EntryState, EntrySummary, summarize
from services.workbench.query import Query
from tests.helpers.summaries import realistic_summaries
from tests.helpers.zones import local_zone
from widgets.common import colors
from widgets.workbench.table_model import (
    COLUMN_NAMES,
    COLUMNS,
    ENTRY_ID_ROLE,
    NO_VALUE,
    STATE_ROLE,
    FailedPaymentsModel,
    format_amount,
    format_time,
)

DISPLAY = Qt.ItemDataRole.DisplayRole
TOOLTIP = Qt.ItemDataRole.ToolTipRole
T = int(datetime.datetime(2024, 5, 17, 14, 3, 7, 250000).timestamp() * 1000)


def one(**changes) -> EntrySummary:
    base = EntrySummary(
        entry_id="018f87a1b2c3000000aa",
        dlq="payments.dlq",
        parked_at_ms=T + 400,
        dead_lettered_at_ms=T,
        payment_id="pay_123",
        merchant="Acme Books",
        amount="1234.50",
        amount_value=1234.5,
        currency="EUR",
        reason="rejected",
        origin_queue="payments.capture",
        routing_key="payment.capture",
        attempts=3,
        state=EntryState.PARKED,
        last_operator=None,
        body_kind="json",
        size=321,
        message_id="m-1",
    )
    return replace(base, **changes)


def cell(model: FailedPaymentsModel, row: int, name: str, role: int = DISPLAY):
    return model.data(model.index(row, COLUMN_NAMES.index(name)), role)


@pytest.fixture
def model() -> FailedPaymentsModel:
    index = EntryIndex()
    index.add(realistic_summaries(3000, seed=4))
    return FailedPaymentsModel(index)


def test_model_passes_qt_model_tester(qtmodeltester, model):
    qtmodeltester.check(model, force_py=True)


def test_the_outcome_column_says_what_became_of_a_replayed_payment():
    index = EntryIndex()
    rows = realistic_summaries(3, seed=2)
    index.add(
        [
            replace(rows[0], outcome="failed_again"),
            replace(rows[1], outcome="succeeded"),
            replace(rows[2], outcome=None),
        ]
    )
    model = FailedPaymentsModel(index)
    by_id = {model.entry_id_at(row): row for row in range(model.rowCount())}
    assert cell(model, by_id[rows[0].entry_id], "outcome") == "failed again"
    assert cell(model, by_id[rows[1].entry_id], "outcome") == "succeeded"
    assert cell(model, by_id[rows[2].entry_id], "outcome") == "—"
    red = cell(model, by_id[rows[0].entry_id], "outcome", Qt.ItemDataRole.ForegroundRole)
    assert red.name() == colors.RED.lower()


def test_headers_name_every_column():
    model = FailedPaymentsModel()
    titles = [model.headerData(i, Qt.Orientation.Horizontal) for i in range(model.columnCount())]
    assert titles[0].startswith("Dead-lettered (")  # the zone: see the test below
    assert titles[1:] == [
        "Payment id",
        "Merchant",
        "Amount",
        "Reason",
        "Cause",
        "Queue",
        "Routing key",
        "Attempts",
        "State",
        "Outcome",
        "Last operator",
    ]
    amount = COLUMN_NAMES.index("amount")
    right = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    assert (
        model.headerData(amount, Qt.Orientation.Horizontal, Qt.ItemDataRole.TextAlignmentRole)
        == right
    )
    assert model.headerData(0, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
    assert (
        model.headerData(0, Qt.Orientation.Horizontal, Qt.ItemDataRole.InitialSortOrderRole)
        == Qt.SortOrder.DescendingOrder
    )
    assert model.headerData(0, Qt.Orientation.Vertical) is None
    assert model.rowCount() == 0


def test_cells_show_each_field():
    index = EntryIndex()
    index.add(
        [
            one(),
            one(
                entry_id="b" * 20,
                payment_id=None,
                merchant=None,
                amount=None,
                amount_value=None,
                currency=None,
                reason="",
                state=EntryState.REQUEUED,
                last_operator="alice",
            ),
        ]
    )
    model = FailedPaymentsModel(
        index,
    )
    model.set_result(np.array([0, 1]))
    assert cell(model, 0, "dead_lettered_at") == format_time(T)
    assert cell(model, 0, "payment_id") == "pay_123"
    assert cell(model, 0, "merchant") == "Acme Books"
    assert cell(model, 0, "amount") == "1,234.50 EUR"
    assert cell(model, 0, "reason") == "rejected"
    assert cell(model, 0, "origin_queue") == "payments.capture"
    assert cell(model, 0, "routing_key") == "payment.capture"
    assert cell(model, 0, "attempts") == "3"
    assert cell(model, 0, "state") == "Parked"
    assert cell(model, 0, "last_operator") == NO_VALUE
    assert cell(model, 1, "payment_id") == NO_VALUE
    assert cell(model, 1, "amount") == NO_VALUE
    assert cell(model, 1, "reason") == NO_VALUE
    assert cell(model, 1, "state") == "Requeued"
    assert cell(model, 1, "last_operator") == "alice"
    assert cell(model, 0, "state", STATE_ROLE) == EntryState.PARKED
    assert cell(model, 1, "merchant", ENTRY_ID_ROLE) == "b" * 20
    colour = cell(model, 0, "state", Qt.ItemDataRole.ForegroundRole)
    assert (
        isinstance(colour, QColor)
        and colour.name() == QColor(colors.STATE_COLORS[EntryState.PARKED]).name()
    )
    # acted-on rows are dimmed, missing values fainter still
    assert cell(model, 1, "merchant", Qt.ItemDataRole.ForegroundRole) is not None
    assert cell(model, 0, "merchant", Qt.ItemDataRole.ForegroundRole) is None
    tip = cell(model, 0, "dead_lettered_at", Qt.ItemDataRole.ToolTipRole)
    assert "2024-05-17 14:03:07.250" in tip and one().entry_id in tip
    assert cell(model, 0, "amount", Qt.ItemDataRole.TextAlignmentRole) == int(
        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
    )
    assert model.data(QModelIndex()) is None


def test_formatters():
    assert format_amount("1234567.5", "USD") == "1,234,567.5 USD"
    assert format_amount("-12", None) == "-12"
    assert format_amount("12,50", "EUR") == "12,50 EUR"  # not a plain number: as written
    assert format_amount(None, "EUR") == f"{NO_VALUE} EUR"
    this_year = int(datetime.datetime(datetime.date.today().year, 3, 4, 5, 6, 7).timestamp() * 1000)
    assert format_time(this_year) == "Mar  4 05:06:07"
    assert format_time(T) == "2024-05-17 14:03"
    assert format_time(T, full=True).startswith("2024-05-17 14:03:07.250 ")


def test_card_numbers_are_never_shown_raw():
    pan = "4111111111111111"
    index = EntryIndex()
    index.add([one(payment_id=pan, merchant=f"shop {pan}", routing_key=f"card.{pan}")])
    model = FailedPaymentsModel(index)
    for name in ("payment_id", "merchant", "routing_key"):
        for role in (DISPLAY, Qt.ItemDataRole.ToolTipRole):
            text = cell(model, 0, name, role)
            assert pan not in text and "411111******1111" in text


def test_data_builds_only_the_rows_asked_for(monkeypatch):
    index = EntryIndex()
    index.add(realistic_summaries(50_000, seed=9))
    model = FailedPaymentsModel(index)
    built: list[int] = []
    original = index.row

    def counting(position: int) -> EntrySummary:
        built.append(position)
        return original(position)

    monkeypatch.setattr(index, "row", counting)
    for row in range(30):
        for column in range(len(COLUMNS)):
            for role in (DISPLAY, Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.ToolTipRole):
                model.data(model.index(row, column), role)
    assert model.rowCount() == 50_000
    assert len(built) == 30  # one summary per visible row, cached across columns and roles


def test_sort_goes_through_the_index(model, monkeypatch):
    index = model.entry_index
    calls: list[Query] = []
    original = index.query

    def spying(query: Query):
        calls.append(query)
        return original(query)

    monkeypatch.setattr(index, "query", spying)
    amount = COLUMN_NAMES.index("amount")
    with_signals = []
    model.result_about_to_change.connect(lambda: with_signals.append("about"))
    model.result_changed.connect(with_signals.append)
    model.sort(amount, Qt.SortOrder.AscendingOrder)
    assert calls[-1].sort_key == "amount" and not calls[-1].descending
    assert with_signals == ["about", model.rowCount()]
    values = [model.summary_at(r).amount_value for r in range(model.rowCount())]
    present = [v for v in values if v is not None]
    assert present == sorted(present)
    assert all(v is None for v in values[len(present) :])  # no amount: last
    model.sort(amount, Qt.SortOrder.AscendingOrder)  # same order: nothing to do
    assert len(calls) == 1
    model.sort(COLUMN_NAMES.index("merchant"), Qt.SortOrder.DescendingOrder)
    assert (model.query.sort_key, model.query.descending) == ("merchant", True)
    assert model.result.tolist() == original(model.query).tolist()


def test_result_lookups(model):
    model.set_query(Query(reasons=frozenset({"expired"})))
    rows = model.result
    assert model.rowCount() == len(rows) > 0
    assert model.entry_id_at(0) == model.entry_index.row(int(rows[0])).entry_id
    assert model.entry_ids_at([0, 1]) == model.entry_index.entry_ids(rows[:2])
    assert [s.reason for s in model.summaries_at(range(5))] == ["expired"] * 5
    assert model.table_rows(rows[[3, 1]]).tolist() == [1, 3]
    assert model.column_of("amount") == COLUMN_NAMES.index("amount")
    model.set_result([2, 0])
    assert model.rowCount() == 2 and model.index_row(0) == 2


def test_state_changes_show_without_requery(model):
    summary = model.summary_at(0)
    model.entry_index.update_state(summary.entry_id, EntryState.CANCELLED, "bob")
    assert cell(model, 0, "state") == "Cancelled"  # the cache follows the index version
    assert cell(model, 0, "last_operator") == "bob"


def test_payment_and_message_ids_that_pass_luhn_are_shown_in_full():
    # Issue 9: the 13 digits at the end of pay_17d5570756950439 pass the Luhn check.
    payment_id, message_id = "pay_17d5570756950439", "msg-4111111111111111"
    assert luhn_valid("5570756950439") and luhn_valid("4111111111111111")
    record = MessageRecord(
        body=b'{"payment_id": "pay_17d5570756950439", "merchant": "shop 4111111111111111"}',
        properties={"message_id": message_id},
    )
    index = EntryIndex()
    index.add([summarize("payments.dlq", "e1", record, FieldPaths(), T)])
    model = FailedPaymentsModel(index)
    assert cell(model, 0, "payment_id") == payment_id
    tooltip = cell(model, 0, "payment_id", Qt.ItemDataRole.ToolTipRole)
    assert f"{payment_id}\nMessage id {message_id}\n" in tooltip
    assert cell(model, 0, "merchant") == "shop 411111******1111"  # free text: still a card


def test_the_time_column_names_its_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cells are narrow: the header names the zone once; the cell's tooltip in full."""
    with local_zone(monkeypatch, "Europe/Berlin"):
        summer = int(datetime.datetime(2024, 5, 17, 14, 3, 7, 250000).timestamp() * 1000)
        winter = int(datetime.datetime(2024, 1, 17, 14, 3, 7, 250000).timestamp() * 1000)
        index = EntryIndex()
        index.add([one(dead_lettered_at_ms=summer, parked_at_ms=winter)])
        model = FailedPaymentsModel(index)
        model.set_result(np.array([0]))
        column = COLUMN_NAMES.index("dead_lettered_at")
        header = model.headerData(column, Qt.Orientation.Horizontal)
        header_tip = model.headerData(column, Qt.Orientation.Horizontal, TOOLTIP)
        cell_tip = cell(model, 0, "dead_lettered_at", TOOLTIP)
    assert header in ("Dead-lettered (CET)", "Dead-lettered (CEST)")  # now's zone
    assert header_tip.endswith("in local time" + header.removeprefix("Dead-lettered"))
    assert "Dead-lettered 2024-05-17 14:03:07.250 CEST" in cell_tip
    assert "Parked 2024-01-17 14:03:07.250 CET" in cell_tip
