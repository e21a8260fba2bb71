"""Did it work, seen from the console, against the real broker and Redis: parked entries
requeued with clicks on the real window; their payments' ``captured`` events published
with plain pika onto the flow's exchange (as the demo's workers do); the result dialog's
job counters and the table's Outcome column reach ``succeeded``."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import aio_pika
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from services.config import Profile, TapBinding
from services.outcomes.model import Outcome
from tests.helpers.consoles import Consoles
from tests.helpers.outcome_kit import publish_status
from tests.helpers.waiting import eventually
from tests.helpers.workbench_console import confirm_dialog
from widgets.workbench.action_summary import ActionSummaryDialog
from widgets.workbench.table_model import COLUMN_NAMES

pytestmark = pytest.mark.integration

PAYMENTS = ("pay_0", "pay_1", "pay_2")


def _outcome_cells(view) -> dict[str, str]:
    """Payment id (as the table shows it) -> the Outcome cell's text, for every row."""
    model = view.model
    payment, outcome = COLUMN_NAMES.index("payment_id"), COLUMN_NAMES.index("outcome")
    return {
        model.index(row, payment).data(): model.index(row, outcome).data()
        for row in range(model.rowCount())
    }


async def test_requeued_from_the_console_the_jobs_counters_and_the_outcome_column_reach_succeeded(
    amqp_url: str,
    unique_prefix: str,
    flow: dict[str, str],
    workbench_profile: Profile,
    consoles: Consoles,
) -> None:
    events = f"{unique_prefix}events"
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    await channel.declare_exchange(events, aio_pika.ExchangeType.TOPIC, auto_delete=True)
    # The console taps the flow's events exchange and records its payments' events.
    profile = dataclasses.replace(workbench_profile, tap_exchanges=(TapBinding(events),))
    try:
        session = consoles.start(profile)
        window = session.window
        window.resize(1600, 1000)
        page = window.workbench
        window.tabs.setCurrentWidget(page)
        view = page.table_view
        await eventually(lambda: view.model.rowCount() == 3, 30, "three parked entries")
        assert set(_outcome_cells(view).values()) == {"—"}  # never replayed

        # Select every row and requeue them from the bar over the table, with a note.
        QTest.mouseClick(
            view.table.viewport(),
            Qt.MouseButton.LeftButton,
            pos=view.table.visualRect(view.model.index(0, 1)).center(),
        )
        QTest.keyClick(view.table, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
        await eventually(lambda: len(view.selected_entry_ids()) == 3, 10, "three selected")
        QTest.mouseClick(view.action_buttons["requeue"], Qt.MouseButton.LeftButton)
        dialog = await confirm_dialog(20, "the confirmation")
        assert not dialog.held_back  # no payment of them was captured before the replay
        QTest.keyClicks(dialog.reason_edit, "acquirer back after INC-4411")
        QTest.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

        await eventually(lambda: bool(window.findChildren(ActionSummaryDialog)), 30, "summary")
        (summary,) = window.findChildren(ActionSummaryDialog)
        assert summary.report.succeeded == 3 and summary.report.job_id
        panel = summary.job_panel
        assert panel is not None
        await eventually(
            lambda: panel.status is not None and panel.status.count(Outcome.PENDING) == 3,
            20,
            "the job's three outcomes pending",
        )
        assert panel.outcome_label.text() == "3 pending"
        await eventually(
            lambda: set(_outcome_cells(view).values()) == {"pending"}, 20, "pending in the table"
        )

        # The flow's workers capture the payments. Published again until they count: the
        # console's tap may still be binding when the first ones go out (an outcome moves
        # only once, so a repeat changes nothing).
        deadline = time.monotonic() + 60
        while panel.outcome_label.text() != "3 succeeded":
            assert time.monotonic() < deadline, panel.outcome_label.text()
            for payment in PAYMENTS:
                await asyncio.to_thread(publish_status, amqp_url, events, payment, "captured")
            try:
                await eventually(lambda: panel.outcome_label.text() == "3 succeeded", 2)
            except AssertionError:
                continue
        assert panel.tiles[Outcome.SUCCEEDED].value_label.text() == "3"
        assert panel.tiles[Outcome.PENDING].value_label.text() == "0"
        assert "3 succeeded" in summary.summary_text()
        await eventually(
            lambda: set(_outcome_cells(view).values()) == {"succeeded"},
            20,
            "succeeded in the table's Outcome column",
        )
        # The detail pane of one says so too.
        QTest.mouseClick(
            view.table.viewport(),
            Qt.MouseButton.LeftButton,
            pos=view.table.visualRect(view.model.index(0, 1)).center(),
        )
        detail = page.detail
        await eventually(
            lambda: (
                detail.outcome_line.isVisible()
                and detail.outcome_line.plain_text().startswith("Outcome succeeded")
            ),
            15,
            "the detail pane's outcome",
        )
        QTest.mouseClick(summary.close_button, Qt.MouseButton.LeftButton)

        # The Audit page lists the job with its outcome summary (refreshed every 5 s).
        bar = window.tabs.tabBar()
        QTest.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(2).center())
        assert window.tabs.currentWidget() is window.audit_panel
        jobs = window.audit_panel.jobs_table.jobs_model
        outcomes = jobs.columns.index("outcomes")
        await eventually(
            lambda: jobs.rowCount() == 1 and jobs.index(0, outcomes).data() == "3 succeeded",
            15,
            "the job on the Audit page",
        )
        assert jobs.job(0).job_id == summary.report.job_id
    finally:
        await channel.close()
        await connection.close()
