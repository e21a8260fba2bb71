"""A console on the Failed payments page, driven as a person drives it: clicks where a
widget is drawn, a row of the table, the confirmation; and the opening the page's
controller tests share (a console on a profile, its parked entries listed, the store)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from app.console import ConsoleSession
from services.config import Profile
from services.workbench.store import ParkingStore
from tests.helpers.consoles import Consoles
from tests.helpers.waiting import eventually
from widgets.workbench.action_dialogs import ConfirmActionDialog
from widgets.workbench.browser import FailedPaymentsView


def click(widget: QWidget, pos: QPoint | None = None) -> None:
    """A left click on ``widget`` (at ``pos``; its middle when None), as a person clicks."""
    at = pos if pos is not None else widget.rect().center()
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)


def click_row(view: FailedPaymentsView, row: int) -> str:
    """Click a row of the table where it is drawn; returns its entry id."""
    rect = view.table.visualRect(view.model.index(row, 1))
    click(view.table.viewport(), rect.center())
    return view.model.entry_id_at(row)


async def confirm_dialog(timeout_s: float = 10, what: str = "dialog") -> ConfirmActionDialog:
    """The confirmation of an action, once it is the modal window (within ``timeout_s``;
    ``what``: how a timeout names it)."""
    await eventually(
        lambda: isinstance(QApplication.activeModalWidget(), ConfirmActionDialog), timeout_s, what
    )
    dialog = QApplication.activeModalWidget()
    assert isinstance(dialog, ConfirmActionDialog)
    return dialog


@dataclasses.dataclass(frozen=True)
class WorkbenchConsole:
    """A console on the Failed payments page, and the store its entries are parked in."""

    session: ConsoleSession
    store: ParkingStore


@contextlib.asynccontextmanager
async def workbench_console(
    consoles: Consoles, profile: Profile, redis_url: str, entries: int
) -> AsyncIterator[WorkbenchConsole]:
    """A console started on ``profile`` (1600 x 1000, the Failed payments page shown)
    once it lists ``entries`` parked entries; the store's connection closed after."""
    session = consoles.start(profile)
    redis = aioredis.Redis.from_url(redis_url)
    try:
        window = session.window
        window.resize(1600, 1000)
        window.tabs.setCurrentWidget(window.workbench)
        view = window.workbench.table_view
        await eventually(lambda: view.model.rowCount() == entries, 30, f"{entries} parked entries")
        yield WorkbenchConsole(session, ParkingStore(redis, profile.redis_prefix))
    finally:
        await redis.aclose()
