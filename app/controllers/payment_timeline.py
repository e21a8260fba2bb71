"""The workbench's payment timelines: the detail pane's Timeline tab, and a payment id
typed into the search box opening that payment's story.

The story comes from Redis through :func:`services.trace.trace_payment` (flow events,
dead-letterings, parking, operator actions); the pane gets it as plain data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis.asyncio as aioredis
from PySide6.QtCore import QObject
from qasync import asyncSlot

from services.config import Profile
from services.trace import PaymentTrace, trace_payment
from services.workbench.model import EntryState, ParkedEntry
from widgets.workbench.page import WorkbenchPage

log = logging.getLogger(__name__)


class PaymentTimelines(QObject):
    """Fills the Timeline tab of the entry shown, and opens a payment's timeline from the
    search box (``payment_entered``): its entry selected when it is parked here, else
    its story on the flow alone.

    ``client`` gives the workbench's Redis client (None before the workbench starts).
    """

    def __init__(
        self,
        page: WorkbenchPage,
        profile: Profile,
        client: Callable[[], aioredis.Redis | None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.page = page
        self.profile = profile
        self._client = client

    async def trace(self, payment_id: str) -> PaymentTrace | None:
        """``payment_id``'s story; None when Redis cannot be read now (logged)."""
        client = self._client()
        if client is None or not payment_id:
            return None
        try:
            return await trace_payment(client, self.profile, payment_id)
        except Exception as exc:  # Redis away: the tab says nothing more; the list says why
            log.warning("the timeline of payment %s: %s", payment_id, exc or type(exc).__name__)
            return None

    async def show_for(self, entry: ParkedEntry) -> None:
        """The Timeline tab of ``entry`` (the entry shown in the detail pane)."""
        trace = await self.trace(entry.summary.payment_id or "")
        shown = self.page.detail.entry
        if shown is not None and shown.entry_id == entry.entry_id:  # still the one shown
            self.page.detail.show_timeline(trace)

    @asyncSlot(str)
    async def on_payment_entered(self, text: str) -> None:
        """A word entered in the search box: when it is a known payment id, its timeline."""
        trace = await self.trace(text.strip())
        if trace is None or not trace.found:
            return
        view = self.page.table_view
        ordered = sorted(  # the parked one first, then the newest
            trace.entries, key=lambda e: (e.state is not EntryState.PARKED, -e.parked_at_ms)
        )
        if any(view.select_entry(entry.entry_id) for entry in ordered):
            self.page.detail.show_timeline(trace)  # the selection shows the entry, then this
        else:
            self.page.detail.show_payment(trace)
        self.page.detail.show_timeline_tab()
        self.page.set_detail_open(True)
