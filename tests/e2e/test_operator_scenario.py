"""An on-call operator's incident, end to end: the real console on the demo flow, driven
through the GUI as a person drives it, checked in the GUI, in Redis and on the broker.

The demo flow runs under the test's own prefix on the shared RabbitMQ and Redis; an
incident dead-letters payments and the console parks them. Then, with clicks on the real
tabs, menus, rows and buttons and keystrokes into the real fields: filter the failed
payments, requeue one, retry a group with a delay and a note, cancel one (its note is
required), and read the table, the detail pane's audit tab and the Audit trail page. The
broker must show what the operator was told: the requeued message in its origin queue
exactly once with its body unchanged, the retried ones in their delay queue, the cancelled
one published nowhere. A screenshot of each step goes to ``$PAYOPS_E2E_SHOTS`` (or the
test's tmp_path).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aio_pika
import pytest
import redis.asyncio as aioredis
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMenu, QTabWidget, QWidget

from app.controllers.workbench import WorkbenchController
from services.config import Profile
from services.demo.topology import DemoTopology
from services.workbench.actions.names import Action
from services.workbench.actions.pika_link import delay_queue_name
from services.workbench.model import EntryState, ParkedEntry
from services.workbench.store import ParkingStore
from tests.e2e.conftest import RETRY_DELAY_S, run_incident
from tests.helpers.action_kit import Broker
from tests.helpers.consoles import Consoles
from tests.helpers.waiting import eventually
from tests.helpers.workbench_console import click, click_row, confirm_dialog
from widgets.main_window import MainWindow
from widgets.workbench.action_summary import ActionSummaryDialog
from widgets.workbench.browser import FailedPaymentsView

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(180),
    pytest.mark.qt_log_ignore(
        "This plugin does not support raise", "This plugin does not support grabbing"
    ),  # the offscreen platform on showing a popup menu: not ours
]

REQUEUE_NOTE = "INC-42 acquirer back"
RETRY_NOTE = "INC-42 risk engine back, card 4111111111111111"
CANCEL_NOTE = "INC-42 customer paid twice"


# -- what a person does ---------------------------------------------------------------


def click_tab(tabs: QTabWidget, page: QWidget) -> None:
    bar = tabs.tabBar()
    click(bar, bar.tabRect(tabs.indexOf(page)).center())
    assert tabs.currentWidget() is page


def click_menu_entry(button: QWidget, label: str) -> None:
    """Click ``button`` (its menu pops up in its own event loop) and click ``label`` in it.

    The menu is closed whatever happens, so a failure cannot leave the test in its loop.
    """
    seen: list[str] = []
    tries = [0]

    def act() -> None:
        menu = button.findChild(QMenu)
        if menu is None or not menu.isVisible():
            tries[0] += 1
            if tries[0] < 100:  # not drawn yet on a busy machine: look again shortly
                QTimer.singleShot(50, act)
            return
        try:
            action = next((a for a in menu.actions() if a.text().split("\t")[0] == label), None)
            if isinstance(action, QAction):
                seen.append(action.text())
                click(menu, menu.actionGeometry(action).center())
        finally:
            menu.close()

    QTimer.singleShot(50, act)
    click(button)  # returns when the menu closes
    assert seen, f"no {label!r} in the menu of {button.text()!r} (or it never opened)"


def row_of(view: FailedPaymentsView, entry_id: str) -> int:
    for row in range(view.model.rowCount()):
        if view.model.entry_id_at(row) == entry_id:
            return row
    raise AssertionError(f"{entry_id} is not shown")


def click_group(view: FailedPaymentsView, value: str) -> None:
    tree = view.group_panel.list
    for i in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(i)
        if item.data(0, Qt.ItemDataRole.UserRole) == value:
            click(tree.viewport(), tree.visualItemRect(item).center())
            return
    raise AssertionError(f"no group {value!r}")


async def close_summary(window: MainWindow, controller: WorkbenchController) -> ActionSummaryDialog:
    await eventually(lambda: bool(window.findChildren(ActionSummaryDialog)), 30, "the summary")
    (summary,) = window.findChildren(ActionSummaryDialog)
    await eventually(lambda: summary.report is not None, 30, "the action to finish")
    click(summary.close_button)
    summary.deleteLater()
    await eventually(lambda: not window.findChildren(ActionSummaryDialog), 10, "it closed")
    # The console refreshes the audit and the detail pane after the summary opens, and
    # until then ignores another action's click without a word: wait for it.
    await eventually(lambda: not controller._busy, 20, "the console to take actions again")
    return summary


class Steps:
    """Numbered screenshots of the window (and of dialogs), one per step."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.number = 0

    def save(self, widget: QWidget, name: str) -> Path:
        self.number += 1
        path = self.folder / f"{self.number:02d}-{name}.png"
        assert widget.grab().save(str(path)), path
        return path


# -- the scenario ------------------------------------------------------------------------


async def test_an_operator_handles_an_incident_through_the_console(
    amqp_url: str,
    redis_url: str,
    topology: DemoTopology,
    demo_profile: Profile,
    consoles: Consoles,
    shots: Path,
) -> None:
    steps = Steps(shots)
    dlq = topology.dead_letter_queue
    redis = aioredis.Redis.from_url(redis_url)
    store = ParkingStore(redis, demo_profile.redis_prefix)
    connection = await aio_pika.connect(amqp_url)
    broker = Broker(connection, topology.prefix, amqp_url)
    try:
        session = consoles.start(demo_profile)
        window = session.window
        controller = session.workbench
        assert controller is not None
        window.resize(1600, 1000)
        window.show()
        stats = await asyncio.wait_for(run_incident(amqp_url, topology), 60)
        assert stats.dead_lettered > 2 and stats.expired > 1, stats
        parked = stats.dead_lettered_total
        await eventually(
            lambda: len(window.workbench.table_view.model.entry_index) == parked,
            40,
            f"the console to park all {parked} dead letters",
        )
        steps.save(window, "live-flow-after-the-incident")

        # 1. The Failed payments page, by its tab.
        view = window.workbench.table_view
        detail = window.workbench.detail
        click_tab(window.tabs, window.workbench)
        steps.save(window, "failed-payments")

        # 2. Filter: Reason -> rejected, clicked in the filter's menu.
        reason = view.filter_bar.buttons["reason"]
        click_menu_entry(reason, "rejected")
        rejected = stats.dead_lettered
        await eventually(lambda: view.model.rowCount() == rejected, 10, "only rejected rows")
        assert reason.text() == "Reason: rejected"
        assert {view.model.summary_at(r).reason for r in range(rejected)} == {"rejected"}
        steps.save(window, "filtered-rejected")

        # 3. Requeue one: click its row, Requeue, confirm with a click.
        requeued_id = click_row(view, 0)
        await eventually(
            lambda: detail.entry is not None and detail.entry.entry_id == requeued_id,
            10,
            "the detail pane to show the clicked row",
        )
        before = await store.get(dlq, requeued_id)
        assert isinstance(before, ParkedEntry)
        origin = before.summary.origin_queue
        assert origin == topology.process_queue
        assert await broker.depth(origin) == 0  # the simulator is done: nothing consumes it
        click(view.action_buttons[Action.REQUEUE])
        dialog = await confirm_dialog()
        QTest.keyClicks(dialog.reason_edit, REQUEUE_NOTE)
        steps.save(dialog, "requeue-dialog")
        click(dialog.ok_button)
        summary = await close_summary(window, controller)
        assert summary.report is not None and summary.report.succeeded == 1
        await eventually(
            lambda: view.model.summary_at(row_of(view, requeued_id)).state is EntryState.REQUEUED,
            10,
            "the row to say requeued",
        )
        steps.save(window, "requeued-one")

        # 4. Retry a group (the expired ones) in 1 min, with a note: grouped by reason
        # (the panel groups by cause at first), chosen with the keyboard.
        choice = view.group_panel.choice
        assert choice.currentText() == "Cause"
        choice.setFocus()
        QTest.keyClicks(choice, "Reason")
        assert view.group_panel.by == "reason"
        click_group(view, "expired")
        expired = stats.expired
        await eventually(lambda: view.model.rowCount() == expired, 10, "only expired rows")
        select_all = view.group_panel.select_all_button
        assert select_all.text() == f"Select all {expired:,} in group"
        click(select_all)
        assert len(view.table.selectionModel().selectedRows()) == expired
        retried_ids = {view.model.entry_id_at(r) for r in range(expired)}
        click(view.action_buttons[Action.RETRY])
        dialog = await confirm_dialog()
        click(dialog.reason_edit)
        QTest.keyClicks(dialog.reason_edit, RETRY_NOTE)
        QTest.keyClicks(dialog.delay_combo, "1 min")  # typing picks the entry, as in any combo
        assert dialog.delay_s() == RETRY_DELAY_S
        steps.save(dialog, "retry-dialog")
        click(dialog.ok_button)
        summary = await close_summary(window, controller)
        assert summary.report is not None and summary.report.succeeded == expired
        await eventually(
            lambda: (
                {view.model.summary_at(r).state for r in range(expired)} == {EntryState.RETRIED}
            ),
            10,
            "the group's rows to say retried",
        )
        steps.save(window, "retried-group")

        # 5. Cancel one of the rejected ones: the note is required.
        click_group(view, "rejected")
        await eventually(lambda: view.model.rowCount() == rejected, 10, "the rejected rows")
        row = next(
            r for r in range(rejected) if view.model.summary_at(r).state is EntryState.PARKED
        )
        cancelled_id = click_row(view, row)
        cancelled_entry = await store.get(dlq, cancelled_id)
        assert isinstance(cancelled_entry, ParkedEntry)
        click(view.action_buttons[Action.CANCEL])
        dialog = await confirm_dialog()
        assert dialog.ok_button.text() == "Cancel 1 payment"
        assert not dialog.ok_button.isEnabled()  # no note yet: it says why
        assert "reason" in dialog.problem_label.text().lower()
        QTest.keyClicks(dialog.reason_edit, CANCEL_NOTE)
        assert dialog.ok_button.isEnabled()
        steps.save(dialog, "cancel-dialog")
        click(dialog.ok_button)
        summary = await close_summary(window, controller)
        assert summary.report is not None and summary.report.succeeded == 1

        # 6. The table, the detail pane's audit tab, the Audit trail page.
        await eventually(
            lambda: view.model.summary_at(row_of(view, cancelled_id)).state is EntryState.CANCELLED,
            10,
            "the row to say cancelled",
        )
        states = {
            view.model.summary_at(r).entry_id: view.model.summary_at(r).state
            for r in range(view.model.rowCount())
        }
        assert states[requeued_id] is EntryState.REQUEUED
        assert states[cancelled_id] is EntryState.CANCELLED
        assert sum(s is EntryState.PARKED for s in states.values()) == rejected - 2
        click_row(view, row_of(view, cancelled_id))
        if not window.workbench.detail_open:  # folded: "Show details" at the bottom
            click(window.workbench.detail_button)
        assert window.workbench.detail_open and detail.isVisible()
        await eventually(
            lambda: any(
                r.action == "cancel" and CANCEL_NOTE in r.detail
                for r in detail.audit_model.records()
            ),
            10,
            "the detail pane's audit tab to show the cancel and its note",
        )
        tab_bar = detail.tabs.tabBar()
        audit_tab = next(
            i for i in range(tab_bar.count()) if tab_bar.tabText(i).startswith("Audit")
        )
        click(tab_bar, tab_bar.tabRect(audit_tab).center())
        assert detail.tabs.currentIndex() == audit_tab
        steps.save(window, "cancelled-one-audit-tab")

        click_tab(window.tabs, window.audit_panel)

        def audit_actions() -> dict[str, list[str]]:
            seen: dict[str, list[str]] = {}
            for record in window.audit_panel.model.records():
                if record.result != "started":
                    seen.setdefault(record.action, []).append(record.detail)
            return seen

        await eventually(
            lambda: {"requeue", "retry", "cancel"} <= set(audit_actions()),
            15,
            "the Audit trail page to list the three actions",
        )
        details = audit_actions()
        assert any(REQUEUE_NOTE in d for d in details["requeue"])
        assert any(CANCEL_NOTE in d for d in details["cancel"])
        assert any("INC-42 risk engine back" in d for d in details["retry"])
        assert not any("4111111111111111" in d for ds in details.values() for d in ds)
        steps.save(window, "audit-trail")

        # 7. The broker: what was done, exactly.
        arrived = await broker.drain(origin)
        assert [m.body for m in arrived] == [before.record.body]  # once, body unchanged
        delay_queue = delay_queue_name(topology.fraudcheck_queue, RETRY_DELAY_S)
        assert await broker.depth(delay_queue) == len(retried_ids)
        assert cancelled_entry.record.body not in [m.body for m in arrived]
        for queue in (topology.settlement_queue, topology.fraudcheck_queue):
            assert await broker.depth(queue) == 0  # nothing else was published
    finally:
        await connection.close()
        await redis.aclose()
