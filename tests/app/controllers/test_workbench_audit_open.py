"""An entry opened from the Audit page: the Failed payments page shows it and acts on it.

A double click on an audit record opened its entry in the detail pane (or not at all,
the pane being folded) while the table kept another row selected, so the bar over the
table and its shortcuts (Ctrl+R, Delete) acted on a payment other than the one shown.
Driven with clicks and keys on the real window, against the real broker and Redis.
"""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QWidget

from services.config import Profile
from tests.helpers.consoles import Consoles
from tests.helpers.waiting import eventually
from tests.helpers.workbench_console import click, click_row, confirm_dialog, workbench_console
from widgets.workbench.action_summary import ActionSummaryDialog
from widgets.workbench.audit_panel import AuditPanel
from widgets.workbench.browser import FailedPaymentsView

pytestmark = pytest.mark.integration


def double_click_record(panel: AuditPanel, entry_id: str) -> None:
    """Double-click the finished audit record naming ``entry_id`` where it is drawn."""
    for row in range(panel.proxy.rowCount()):
        record = panel.shown_records()[row]
        if record.entry_ids == (entry_id,) and record.result != "started":
            rect = panel.table.visualRect(panel.proxy.index(row, 0))
            click(panel.table.viewport(), rect.center())  # a double click starts with a press
            QTest.mouseDClick(
                panel.table.viewport(),
                Qt.MouseButton.LeftButton,
                Qt.KeyboardModifier.NoModifier,
                rect.center(),
            )
            return
    raise AssertionError(f"no audit record of {entry_id}")


async def requeue_from_the_pane(window: QWidget, detail: object) -> None:
    click(detail.requeue_button)  # type: ignore[attr-defined]
    dialog = await confirm_dialog()
    click(dialog.ok_button)
    await eventually(lambda: bool(window.findChildren(ActionSummaryDialog)), 30, "the summary")
    (summary,) = window.findChildren(ActionSummaryDialog)
    click(summary.close_button)
    summary.deleteLater()
    await eventually(lambda: not window.findChildren(ActionSummaryDialog), 10, "closed")


async def test_an_audit_record_double_clicked_selects_and_shows_its_entry(
    redis_url: str,
    flow: dict[str, str],
    workbench_profile: Profile,
    consoles: Consoles,
) -> None:
    async with workbench_console(consoles, workbench_profile, redis_url, 3) as console:
        window = console.session.window
        window.show()
        page = window.workbench
        view, detail = page.table_view, page.detail

        acted = click_row(view, 0)
        page.set_detail_open(True)
        await eventually(
            lambda: detail.entry is not None and detail.entry.entry_id == acted, 10, "shown"
        )
        await requeue_from_the_pane(window, detail)
        await eventually(
            lambda: any(r.result != "started" for r in window.audit_panel.shown_records()),
            20,
            "the Audit page to list the requeue",
        )
        assert await console.store.read_audit(flow["dlq"], 5, entry_id=acted)

        # another entry selected, the pane folded, then the Audit page
        other = click_row(view, _other_row(view, acted))
        await eventually(
            lambda: detail.entry is not None and detail.entry.entry_id == other, 10, "other shown"
        )
        page.detail_action.trigger()  # View › Show details, unticked
        await eventually(lambda: not page.detail_open, 10, "the pane folded")
        window.tabs.setCurrentWidget(window.audit_panel)
        await eventually(window.audit_panel.table.isVisible, 10, "the Audit page shown")
        await asyncio.sleep(0.2)  # laid out, so a row is where the double click lands

        double_click_record(window.audit_panel, acted)

        await eventually(lambda: window.tabs.currentWidget() is page, 10, "the page")
        await eventually(
            lambda: detail.entry is not None and detail.entry.entry_id == acted,
            10,
            "the pane to show the audited entry",
        )
        assert page.detail_open, "the pane stays folded: the operator sees nothing"
        await eventually(
            lambda: view.selected_entry_ids() == [acted],
            10,
            "the table to select the entry the pane shows (the bar acts on the selection)",
        )
        await eventually(
            lambda: detail.entry is not None and detail.entry.entry_id == acted,
            10,
            "the pane to keep showing it",
        )


def _other_row(view: FailedPaymentsView, entry_id: str) -> int:
    return next(r for r in range(view.model.rowCount()) if view.model.entry_id_at(r) != entry_id)
