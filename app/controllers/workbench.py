"""Drives the failed-payments workbench: loading, live changes, detail, parking, actions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

import numpy as np
import redis.asyncio as aioredis
from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtWidgets import QMessageBox
from qasync import asyncSlot
from redis.exceptions import RedisError

from app.controllers.job_watch import JobWatch, job_status
from app.controllers.payment_timeline import PaymentTimelines
from app.flow_causes import flow_failure_lookup
from services.config import Profile
from services.flow.payment_events import PaymentEventStore
from services.links.redis import describe_redis_error
from services.links.redis_client import make_redis_client
from services.links.urls import url_password
from services.outcomes.model import Outcome
from services.stopping import bounded, stop_tasks
from services.workbench.actions.jobs import HELD_PREFIX
from services.workbench.actions.names import Action
from services.workbench.actions.pace import Pace
from services.workbench.actions.publisher import ActionPublisher
from services.workbench.actions.report import ActionReport, ActionRequest
from services.workbench.actions.service import ActionRefused, ActionService
from services.workbench.durability import VolatileStore, parking_refusal
from services.workbench.index import STATES, EntryIndex
from services.workbench.load_pace import LoadPace, let_waiting_run
from services.workbench.model import Change, Durability, EntryState, ParkedEntry
from services.workbench.park_runner import ParkingRunner
from services.workbench.query import ActionTarget
from services.workbench.store import ParkingStore
from widgets.common.notice import show_notice
from widgets.main_window import MainWindow
from widgets.workbench.action_dialogs import ConfirmActionDialog
from widgets.workbench.action_progress import ActionProgressDialog
from widgets.workbench.action_summary import ActionSummaryDialog

log = logging.getLogger(__name__)

FIRST_PAGE = 300
CHANGES_BLOCK_MS = 1000
AUDIT_COUNT = 500
AUDIT_REFRESH_MS = 5000
AUDIT_JOBS = 20
RETRY_S = 3.0
PARK_STOP_GRACE_S = 3.0
"""On stop, how long the parkers get to park and ack what they were delivered before
they are cancelled (cancelled, their unacked deliveries go back to the queue)."""


class WorkbenchController(QObject):
    """Owns the entry index and the parking store of one profile, and wires the workbench page.

    Starts when ``start`` is called: loads the newest rows first, then the rest
    in batches, follows each dead-letter queue's changes stream (so what other
    consoles do shows up live), parks dead letters while the console is open,
    finishes or reports actions a crash interrupted, and turns the page's
    action intents into confirmed, audited actions.
    """

    def __init__(self, window: MainWindow, profile: Profile, *, read_only: bool = False) -> None:
        super().__init__(window)
        self.window = window
        self.page = window.workbench
        self.profile = profile
        self.read_only = read_only or profile.read_only
        self.index = EntryIndex()
        self.page.table_view.set_index(self.index)
        self.page.set_read_only(self.read_only)
        self.page.detail.set_id_paths(profile.fields.id_paths)
        self.redis: aioredis.Redis | None = None
        self.store: ParkingStore | None = None
        self.actions: ActionService | None = None
        self.publisher: ActionPublisher | None = None
        self._tasks: dict[str, asyncio.Future[None]] = {}
        self._runner: ParkingRunner | None = None
        self._stopping = False
        self._dialog: ConfirmActionDialog | None = None
        self._action_stop: asyncio.Event | None = None
        self._shown: ParkedEntry | None = None
        self._pinned: str | None = None  # opened from elsewhere, not in the table: kept shown
        self._busy = False
        self._list_problem: str | None = None
        self._loaded = False
        self._job_watches: set[JobWatch] = set()
        self._audit_timer = QTimer(self)
        self._audit_timer.setInterval(AUDIT_REFRESH_MS)
        self.timelines = PaymentTimelines(self.page, profile, lambda: self.redis, self)
        self._connect_signals()

    def _connect_signals(self) -> None:
        view = self.page.table_view
        view.selection_changed.connect(self.on_selection_changed)
        view.entry_activated.connect(self.on_entry_activated)
        view.action_requested.connect(self.on_action_requested)
        self.page.detail.action_requested.connect(self.on_detail_action_requested)
        self.window.audit_panel.entry_activated.connect(self.on_entry_opened)
        self.page.detail.outcome_line.entry_link_activated.connect(self.on_entry_opened)
        view.payment_entered.connect(self.timelines.on_payment_entered)
        self._audit_timer.timeout.connect(self.on_audit_timer)

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to Redis (and the broker for parking and actions) in the background."""
        self._stopping = False
        self.redis = make_redis_client(self.profile.redis_settings, socket_timeout=10)
        self.store = ParkingStore(
            self.redis, self.profile.redis_prefix, min_replicas=self.profile.redis_min_replicas
        )
        self.publisher = ActionPublisher(self.profile.amqp_endpoint)
        self.actions = ActionService(
            self.store,
            self.publisher,
            self.profile,
            read_only=self.read_only,
            finals=PaymentEventStore.for_profile(self.redis, self.profile).latest_with,
        )
        self._spawn(self._load_and_follow, "workbench", on_error=self._list_unreadable)
        self._spawn(self._park_dead_letters, "parking")
        self._audit_timer.start()

    async def stop(self) -> None:
        """Stop loading, following and parking; close the connections. Bounded in time.

        The loops are told to stop (they end at their next turn even if a cancel is
        lost, see :mod:`services.stopping`); the parkers first park and ack
        what they hold, then whatever still runs is cancelled. A task that does not
        finish is logged and left: the connections are closed anyway, and a parker's
        unacked deliveries go back to the queue when its connection closes.
        """
        self._stopping = True
        self._audit_timer.stop()
        self._abandon_action()
        watches, self._job_watches = list(self._job_watches), set()
        for watch in watches:
            watch.stop()
        await asyncio.gather(*(w.task for w in watches), return_exceptions=True)
        if self._runner is not None:
            self._runner.request_stop()
        tasks, self._tasks = self._tasks, {}
        parking = [task for name, task in tasks.items() if name == "parking"]
        others = [task for name, task in tasks.items() if name != "parking"]
        await asyncio.gather(
            stop_tasks(others, "workbench"),
            stop_tasks(parking, "workbench parking", grace_s=PARK_STOP_GRACE_S),
        )
        if self.publisher is not None:
            with contextlib.suppress(Exception):
                await bounded(self.publisher.close(), "closing the action publisher")
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await bounded(self.redis.aclose(), "closing the workbench's Redis client")

    def _abandon_action(self) -> None:
        """The console closes: an open confirmation is declined, a running action stops
        after the message in hand (the rest stay parked, as after its Stop button)."""
        if self._dialog is not None:
            self._dialog.reject()
        if self._action_stop is not None:
            self._action_stop.set()

    def _spawn(
        self,
        start: Callable[[], Coroutine[Any, Any, None]],
        name: str,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        task = _retrying(start, name, on_error, stopping=lambda: self._stopping)
        self._tasks[name] = asyncio.ensure_future(task)

    def _list_unreadable(self, exc: Exception) -> None:
        """Say on the page and in the status bar's problems that the list cannot be read."""
        settings = self.profile.redis_settings
        where = settings.target
        why = describe_redis_error(
            exc, f"Redis at {where}", url_password(settings.url), settings.tls
        )
        if where not in why:  # "authentication failed": say which Redis
            why = f"Redis at {where}: {why}"
        problem = f"Failed payments cannot be read: {why}"
        if problem != self._list_problem:
            if self._list_problem is not None:
                self.window.resolve_problem(self._list_problem)
            self._list_problem = problem
            self.window.show_problem(problem)
        self.page.table_view.set_unavailable(why)
        self.window.audit_panel.set_unavailable(why)  # not "No actions recorded yet"

    def _list_readable(self) -> None:
        """The list is read again: the problem is resolved, the page says nothing more."""
        if self._list_problem is not None:
            self.window.resolve_problem(self._list_problem)
            self._list_problem = None
        self.page.table_view.set_unavailable(None)
        self.window.audit_panel.set_unavailable(None)

    def parked_count(self) -> int | None:
        """Entries waiting for an operator (state parked); None while the list is not read."""
        if not self._loaded:
            return None
        states = self.index.states(np.arange(len(self.index)))
        return int(np.count_nonzero(states == STATES.index(EntryState.PARKED)))

    # -- loading and following ------------------------------------------------------------

    async def _load_and_follow(self) -> None:
        self._loaded = False
        try:
            await self._load_and_follow_once()
        finally:
            self._loaded = False

    async def _load_and_follow_once(self) -> None:
        store = self.store
        assert store is not None
        self.page.show_durability(self._durability_banner(await store.durability()))
        await self._recover()
        dlqs = self.profile.dead_letter_queues
        cursors = {dlq: await store.last_change_id(dlq) for dlq in dlqs}
        totals = {dlq: await store.count(dlq) for dlq in dlqs}
        total = sum(totals.values())
        self.index = EntryIndex()  # a fresh start after a reconnect
        self.page.table_view.set_index(self.index)
        self.index.reserve(total)
        for dlq in dlqs:  # the newest rows first, fast
            self.index.add(await store.page(dlq, 0, FIRST_PAGE))
        self._list_readable()
        self.page.table_view.refresh()
        self.page.table_view.set_loading(len(self.index), total)
        pace = LoadPace()  # rows a batch: each step about 15 ms, on a slow host too
        for dlq in dlqs:
            async for batch in store.iter_summaries(dlq, pace=pace):
                # Three GUI steps, not one: the batch read and decoded (above), its rows
                # added (here, after a yield to the loop), and the view's refresh and repaint
                # (Qt's own events, when due).
                await let_waiting_run()
                adding = time.perf_counter()
                self.index.add(batch)
                pace.took("add", len(batch), time.perf_counter() - adding)
                self.page.table_view.set_loading(len(self.index), max(total, len(self.index)))
                self.page.table_view.request_refresh()
                await let_waiting_run()
        self.page.table_view.refresh()  # still loading: the groups follow in a step of their own
        self.page.table_view.set_loading(len(self.index), len(self.index))
        await self._refresh_audit()
        self._loaded = True
        await asyncio.gather(*(self._follow(dlq, cursors[dlq]) for dlq in dlqs))

    async def _follow(self, dlq: str, cursor: str) -> None:
        """Apply another console's (or our own) changes as they happen."""
        store = self.store
        assert store is not None
        while not self._stopping:  # not only a cancel: one can be lost (see stop)
            changes = await store.read_changes(dlq, cursor, block_ms=CHANGES_BLOCK_MS)
            if not changes:
                continue
            cursor = changes[-1].stream_id
            await self._apply(dlq, changes)

    async def _apply(self, dlq: str, changes: list[Change]) -> None:
        store = self.store
        assert store is not None
        new_ids = []  # rows to read: new entries, and a cause the flow told after parking
        outcome_ids = []  # rows whose outcome moved: a finished replay (pending), or settled
        for change in changes:
            new = change.op == "park" and self.index.find(change.entry_id) is None
            if new or change.op == "cause":
                new_ids.append(change.entry_id)
            else:
                self.index.update_state(change.entry_id, change.state, change.operator)
                if change.op in ("outcome", "complete"):
                    outcome_ids.append(change.entry_id)
        for entry_id in new_ids:
            entry = await store.get(dlq, entry_id)
            if entry is not None:
                self.index.add([entry.summary])
        await self._read_outcomes(dlq, outcome_ids)
        self.page.table_view.request_refresh()
        shown = self._shown
        if shown is not None and any(c.entry_id == shown.entry_id for c in changes):
            await self._show(shown.dlq, shown.entry_id)

    async def _read_outcomes(self, dlq: str, entry_ids: list[str]) -> None:
        """Put the entries' outcomes, as stored now, into their rows (one round trip)."""
        store = self.store
        known = [(i, p) for i in dict.fromkeys(entry_ids) if (p := self.index.find(i)) is not None]
        if store is None or not known:
            return
        pipe = store.redis.pipeline(transaction=False)
        for entry_id, _ in known:
            pipe.hget(store.entry_key(dlq, entry_id), "outcome")
        values = await pipe.execute()
        rows = []
        for (_, position), value in zip(known, values, strict=True):
            outcome = Outcome.named(value)
            row = self.index.row(position)
            if (outcome.value if outcome else None) != row.outcome:
                rows.append(replace(row, outcome=outcome.value if outcome else None))
        self.index.add(rows)

    async def _recover(self) -> None:
        """Finish what a crash interrupted, and say what could not be finished."""
        assert self.actions is not None
        if self.read_only:
            return
        report = await self.actions.recover()
        for entry in report.in_doubt:
            self.window.show_problem(
                f"interrupted action on entry {entry.entry_id} is in doubt: the message may"
                " already be in its target queue; resolve it with"
                f" `payops dlq resolve {entry.entry_id} --delivered|--republish`"
            )

    async def _park_dead_letters(self) -> None:
        """Park the profile's dead-letter queues while the console is open (reconnecting
        on its own), unless the store could lose what is parked."""
        if self.read_only or not self.profile.dead_letter_queues:
            return
        store = self.store
        assert store is not None
        runner = ParkingRunner(
            self.profile,
            store,
            self.profile.dead_letter_queues,
            on_problem=self._parking_problem,
            flow_failures=flow_failure_lookup(store.redis, self.profile),
        )
        try:
            await runner.check_store()
        except VolatileStore as exc:
            log.error("%s", exc)
            self.window.show_problem(str(exc))
            return
        self._runner = runner
        try:
            if not self._stopping:
                await runner.run()
        finally:
            runner.request_stop()
            self._runner = None

    def _parking_problem(self, text: str, active: bool) -> None:
        if self._stopping:
            return  # closing: the parkers' last words go to the log only
        if active:
            self.window.show_problem(text)
        else:
            self.window.resolve_problem(text)

    def _durability_banner(self, durability: Durability) -> Durability:
        """The store's durability as the banner says it: with what parking does about it."""
        if self.read_only or not self.profile.dead_letter_queues:
            return durability
        refusal = parking_refusal(durability, self.profile.allow_volatile_store)
        if refusal is not None:
            detail = f"{durability.detail}. Parking is off (allow_volatile_store is not set)."
        elif durability.volatile or durability.durable is None:
            detail = f"{durability.detail}. Parking anyway: the profile sets allow_volatile_store."
        else:
            return durability
        return replace(durability, detail=detail)

    # -- detail and audit -----------------------------------------------------------------

    @Slot(object)
    def on_selection_changed(self, entry_ids: list[str]) -> None:
        if entry_ids:
            self._pinned = None
        if len(entry_ids) == 1:
            self.on_entry_activated(entry_ids[0])
        elif not entry_ids and self._pinned is None:
            self._shown = None
            self.page.detail.show_entry(None)

    @asyncSlot(str)
    async def on_entry_opened(self, entry_id: str) -> None:
        """An entry opened from outside the table (a double click on the Audit page, an
        outcome's *Open new entry*): shown in the open detail pane and selected in the
        table, so the bar over the table and its shortcuts act on the entry the pane shows.
        When the table does not list it (filtered out), nothing is left selected."""
        if self.index.find(entry_id) is None:
            return
        self.window.tabs.setCurrentWidget(self.page)
        view = self.page.table_view
        if view.select_entry(entry_id):
            self._pinned = None
        else:
            self._pinned = entry_id
            view.table.clearSelection()
        self.page.set_detail_open(True)
        await self._open(entry_id)

    @asyncSlot(str)
    async def on_entry_activated(self, entry_id: str) -> None:
        await self._open(entry_id)

    async def _open(self, entry_id: str) -> None:
        position = self.index.find(entry_id)
        if position is None:
            return
        self.window.tabs.setCurrentWidget(self.page)
        await self._show(self.index.row(position).dlq, entry_id)

    async def _show(self, dlq: str, entry_id: str) -> None:
        if self.store is None:
            return
        entry = await self.store.get(dlq, entry_id)
        self._shown = entry
        self.page.detail.show_entry(entry)
        if entry is not None:
            self.page.detail.show_audit(await self.store.read_audit(dlq, 50, entry_id=entry_id))
            await self.timelines.show_for(entry)

    @asyncSlot()
    async def on_audit_timer(self) -> None:
        with contextlib.suppress(Exception):
            await self._refresh_audit()

    async def _refresh_audit(self) -> None:
        if self.store is None:
            return
        records = []
        for dlq in self.profile.dead_letter_queues:
            records += await self.store.read_audit(dlq, AUDIT_COUNT)
        records.sort(key=lambda r: r.ts, reverse=True)
        self.window.audit_panel.show_records(records[:AUDIT_COUNT])
        if self.actions is not None:
            jobs = await self.actions.jobs.recent(AUDIT_JOBS)
            self.window.audit_panel.jobs_table.show_jobs([job_status(j) for j in jobs])

    # -- actions --------------------------------------------------------------------------

    @asyncSlot(str)
    async def on_detail_action_requested(self, action: str) -> None:
        shown = self._shown
        if shown is not None:
            await self.act(action, ActionTarget.for_entries([shown.entry_id]))

    @asyncSlot(str, object)
    async def on_action_requested(self, action: str, target: ActionTarget) -> None:
        await self.act(action, target)

    async def act(self, action: str, target: ActionTarget) -> ActionReport | None:
        """Confirm, run with progress, and summarise one action."""
        if self.actions is None or self._busy:
            return None
        self._busy = True
        try:
            report = await self._act(Action(action), target)
        except ActionRefused as exc:
            show_notice(self.window, QMessageBox.Icon.Warning, "Action refused", str(exc))
            return None
        except (OSError, ConnectionError) as exc:
            show_notice(
                self.window,
                QMessageBox.Icon.Critical,
                "Action failed",
                f"{type(exc).__name__}: {exc}",
            )
            return None
        finally:
            # Free before the refresh below: a click on the next action while it reads
            # Redis was dropped without a word.
            self._busy = False
        if report is not None and not self._stopping:
            await self._after_action()
        return report

    async def _after_action(self) -> None:
        """The Audit page and the shown entry (its state, its audit tab) as they are now."""
        # Best effort: the action is done and said; the console may be closing meanwhile.
        with contextlib.suppress(RedisError, OSError):
            await self._refresh_audit()
        shown = self._shown
        if shown is not None:
            await self._show(shown.dlq, shown.entry_id)

    def _watch(self, dialog: ActionSummaryDialog | ActionProgressDialog, job_id: str) -> None:
        """Keep ``dialog`` live for its job (polled from Redis) until it closes."""
        actions = self.actions
        if actions is None:
            return
        if isinstance(dialog, ActionProgressDialog):
            dialog.attach_job(job_id)
        watch = JobWatch(actions, dialog, job_id)
        self._job_watches.add(watch)
        dialog.finished.connect(lambda _=0, w=watch: self._job_watches.discard(w))

    async def _held_back(self, action: Action, target: ActionTarget) -> tuple[str, ...]:
        """Why each entry the replay gate would hold back is held (a dry run: nothing is
        sent, no claim taken); none for a cancel."""
        actions = self.actions
        if action is Action.CANCEL or actions is None:
            return ()
        preview = await actions.run(ActionRequest(action), target, dry_run=True)
        return tuple(
            o.detail.removeprefix(HELD_PREFIX)
            for o in preview.outcomes
            if o.detail.startswith(HELD_PREFIX)
        )

    async def _act(self, action: Action, target: ActionTarget) -> ActionReport | None:
        actions = self.actions
        assert actions is not None
        actions.refuse_if_read_only(action)
        target = await actions.freeze(target)  # resolved once: confirmed is what is acted on
        plan = await actions.plan(action, target)
        raw_body = None
        shown = self._shown
        if action is Action.RETRY and shown is not None and target.entry_ids == (shown.entry_id,):
            raw_body = shown.record.body
        held_back = await self._held_back(action, target) if plan.total else ()
        dialog = ConfirmActionDialog(
            plan, raw_body=raw_body, held_back=held_back, parent=self.window
        )
        self._dialog = dialog
        try:
            request, forced, pace = await _answer(dialog)
        finally:
            self._dialog = None
        if request is None or self._stopping:
            return None
        progress = ActionProgressDialog(  # counts the whole target, as the run reports it
            action, max(plan.total + plan.skipped, 1), parent=self.window, skipped=plan.skipped
        )
        stop = self._action_stop = asyncio.Event()
        progress.cancel_requested.connect(stop.set)
        if pace is not None:  # followed live as it runs
            actions.on_job_created = lambda job_id: self._watch(progress, job_id)
        progress.show()
        try:
            report = await actions.run(
                request,
                target,
                progress=progress.show_progress,
                cancel_event=stop,
                force=forced,
                pace=pace,
            )
        finally:
            actions.on_job_created = None
            self._action_stop = None
            progress.finish()
        if self._stopping:
            return report
        summary = ActionSummaryDialog(report, parent=self.window)
        if report.job_id:  # its outcome counters move live until it is closed
            self._watch(summary, report.job_id)
        summary.open()
        return report


async def _answer(
    dialog: ConfirmActionDialog,
) -> tuple[ActionRequest | None, bool, Pace | None]:
    """Open the confirmation dialog (not a nested event loop) and await its answer: the
    request (None unless confirmed), whether it sends past the replay gate, and its pace
    (None: full speed)."""
    done: asyncio.Future[tuple[ActionRequest | None, bool, Pace | None]] = (
        asyncio.get_running_loop().create_future()
    )

    def finished() -> None:  # accepted or not; request() is None unless accepted
        if not done.done():
            done.set_result((dialog.request(), dialog.forced, dialog.pace()))

    dialog.finished.connect(finished)
    dialog.open()
    try:
        return await done
    finally:
        dialog.deleteLater()


async def _retrying(
    start: Callable[[], Coroutine[Any, Any, None]],
    name: str,
    on_error: Callable[[Exception], None] | None = None,
    *,
    stopping: Callable[[], bool] = lambda: False,
) -> None:
    """Run ``start()`` until it returns; after a failure (Redis or the broker away), again,
    unless ``stopping()``.

    ``on_error`` is told each failure (to say what cannot be shown, and why).
    """
    while not stopping():
        try:
            await start()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if stopping():
                return
            log.warning("%s: %s; retrying in %.0f s", name, exc or type(exc).__name__, RETRY_S)
            if on_error is not None:
                on_error(exc)
            await asyncio.sleep(RETRY_S)
