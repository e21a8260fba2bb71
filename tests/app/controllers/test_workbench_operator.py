"""The Failed payments page as an operator drives it, against the real broker and Redis.

Clicks on the real table row and buttons, keystrokes into the real fields
(QTest, as pytest-qt's qtbot does); what is checked is what the operator reads
(the page, the status bar, the dialogs) and what Redis keeps (the audit trail).
"""

from __future__ import annotations

import pytest
from PySide6.QtTest import QTest

from services.config import Profile
from tests.helpers.consoles import Consoles
from tests.helpers.redis_down import console_with_redis_down
from tests.helpers.waiting import eventually
from tests.helpers.workbench_console import click, click_row, confirm_dialog, workbench_console
from widgets.workbench.action_summary import ActionSummaryDialog

pytestmark = pytest.mark.integration

NOTE = "INC-7 replay after the fix 4111111111111111"
MASKED_NOTE = "INC-7 replay after the fix 411111******1111"


async def test_a_note_typed_in_the_dialogs_reaches_the_audit_and_the_detail_tab(
    redis_url: str,
    flow: dict[str, str],
    workbench_profile: Profile,
    consoles: Consoles,
) -> None:
    async with workbench_console(consoles, workbench_profile, redis_url, 3) as console:
        session, store = console.session, console.store
        workbench = session.workbench
        assert workbench is not None
        window = session.window
        view = window.workbench.table_view
        detail = window.workbench.detail

        for action, button, row in (("requeue", detail.requeue_button, 0), ("retry", None, 1)):
            entry_id = click_row(view, row)
            await eventually(
                lambda e=entry_id: detail.entry is not None and detail.entry.entry_id == e,
                10,
                "the detail pane to show the clicked entry",
            )
            # requeue from the detail pane's button, retry from the bar over the table
            click(button or view.action_buttons[action])
            dialog = await confirm_dialog()
            QTest.keyClicks(dialog.reason_edit, f"{NOTE} {action}")
            click(dialog.ok_button)
            await eventually(
                lambda: bool(window.findChildren(ActionSummaryDialog)), 30, "the summary"
            )
            (summary,) = window.findChildren(ActionSummaryDialog)
            assert summary.report.succeeded == 1
            # the summary says what the report says (its texts are the report's)
            assert summary.headline_label.text() == summary.report.headline()
            summary.grab().save(f"/tmp/summary_{action}.png")
            click(summary.close_button)
            summary.deleteLater()
            await eventually(lambda: not window.findChildren(ActionSummaryDialog), 10, "closed")

            records = await store.read_audit(flow["dlq"], 20, entry_id=entry_id)
            final = [r for r in records if r.action == action and r.result != "started"]
            assert len(final) == 1, records
            assert f"note: {MASKED_NOTE} {action}" in final[0].detail
            assert "4111111111111111" not in final[0].detail
            # the detail pane's audit tab shows it without another click
            await eventually(
                lambda f=final[0]: (
                    f.stream_id in {r.stream_id for r in detail.audit_model.records()}
                ),
                10,
                "the detail pane's audit tab to show the action",
            )
        bar = detail.tabs.tabBar()
        audit_tab = next(i for i in range(bar.count()) if bar.tabText(i).startswith("Audit"))
        click(bar, bar.tabRect(audit_tab).center())
        assert detail.tabs.currentIndex() == audit_tab
        window.grab().save("/tmp/workbench_after_actions.png")


async def test_redis_down_says_the_list_cannot_be_read_and_why_then_recovers(
    redis_url: str,
    flow: dict[str, str],
    workbench_profile: Profile,
    consoles: Consoles,
) -> None:
    # Redis behind a proxy not yet started: a Redis that does not answer (a closed port)
    async with console_with_redis_down(consoles, workbench_profile, redis_url) as down:
        session, proxy, where = down
        window = session.window
        window.tabs.setCurrentWidget(window.workbench)
        view = window.workbench.table_view
        problems = window.problems_view

        def problem_texts() -> list[str]:
            return [p.text for p in problems.active()]

        await eventually(view.unavailable_label.isVisible, 30, "the page to say so")
        note = view.unavailable_label.text()
        assert "cannot be read" in note and where in note and "refused" in note
        assert "No parked failed payments" not in view.table.empty_text
        assert "cannot be read" in view.count_label.text()
        await eventually(
            lambda: any(
                "Failed payments cannot be read" in t and where in t for t in problem_texts()
            ),
            10,
            "the status bar's problems to say so",
        )
        assert problems.text_label.full_text() != "No problems"
        window.grab().save("/tmp/workbench_redis_down.png")

        await proxy.start()  # Redis is back
        await eventually(lambda: view.model.rowCount() == 3, 40, "the list read again")
        await eventually(lambda: not view.unavailable_label.isVisible(), 10, "the note gone")
        assert not any("Failed payments cannot be read" in t for t in problem_texts())
        window.grab().save("/tmp/workbench_redis_back.png")

        await proxy.stop()  # and gone again while the list is shown
        await eventually(view.unavailable_label.isVisible, 30, "the page to say so")
        assert "last successful read" in view.unavailable_label.text()
        assert any("Failed payments cannot be read" in t for t in problem_texts())
