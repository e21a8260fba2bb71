"""Requeue, retry and cancel parked failed payments - exactly once, with an audit trail.

:class:`ActionService` is what the console's controllers and the CLI call.
An action applies to an :class:`~services.workbench.query.ActionTarget` (entry
ids, or everything a :class:`~services.workbench.query.Query` matches, resolved
against the store's rows with an :class:`~services.workbench.index.EntryIndex`)
and returns an :class:`~services.workbench.actions.report.ActionReport`: one outcome
per entry - done, skipped (someone else acted first, and who) or failed
(why; the entry stays parked).

- **Requeue** publishes the parked message unchanged - body, properties,
  every header but the broker's dead-letter headers - through the default
  exchange to the queue it was dead-lettered from (``x-death[0].queue``),
  and to no other queue, with ``payops-action-id`` and ``payops-action``
  headers added; one with no ``x-death`` (Spring AMQP) through its
  ``x-original-exchange`` and ``-routingKey`` (``death_history.origin_of``).
- **Retry** does the same with ``payops-attempt`` raised by one, optionally
  after a delay (a TTL wait queue that dead-letters into the target; no
  plugin) and optionally with an edited JSON body (one entry; validated;
  the edit, card data masked, goes into the audit trail).
- **Cancel** needs a reason; it publishes a ``payment.cancelled`` event (no
  card data) to the profile's cancel exchange when one is configured, and
  marks the entry cancelled.

Exactly once: every entry is claimed with compare-and-set, its publish is
announced in Redis before it is sent, it is published with confirms and
``mandatory=True``, and it is completed only after the confirm - see
:mod:`services.workbench.actions.ledger` for the protocol,
:mod:`services.workbench.actions.pipeline` for a run, and
:mod:`services.workbench.actions.recovery` for what
:meth:`ActionService.recover` does after a crash. Work goes in windows of
``window`` entries - one script call each to claim and read them, to write
their intents (a requeue's claims write them in the same call) and to finish
them, and one batch of publishes - as a pipeline: the next window is resolved
(replay gate, pace) while one is claimed - at full speed the gate checks up to
``depth`` windows ahead (:mod:`.gate`) - the windows before it publish and record
their confirms, and a window is claimed as soon as at most ``window * depth``
entries would be claimed and unfinished (:mod:`.pipeline`). The
progress callback hears after every window; a cancel request lets the windows
already sent finish and stops there, never half-way through one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import getpass
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import replace
from typing import Final

from redis.exceptions import RedisError

from services.collector import relaxed_collector
from services.config import Profile
from services.links.redis_client import through_failover
from services.masking.json import dumps_compact, loads_exact, mask_json, mask_sensitive_text
from services.outcomes.tracker import OutcomeTracker
from services.stopping import stop_tasks
from services.workbench.actions.gate import FinalLookup, ReplayGate
from services.workbench.actions.job_control import JobControl, attend
from services.workbench.actions.jobs import JobState, JobStore, LiveCounts, Pace, runner_token
from services.workbench.actions.ledger import ActionLedger, now_ms
from services.workbench.actions.names import Action
from services.workbench.actions.pika_link import PublisherError
from services.workbench.actions.pipeline import ActionRun
from services.workbench.actions.publisher import ActionPublisher
from services.workbench.actions.report import (
    ActionPlan,
    ActionReport,
    ActionRequest,
    format_delay,
    skipped_outcome,
    summary_line,
    where_text,
)
from services.workbench.actions.rows import rows_by_id
from services.workbench.actions.sends import ActionParams
from services.workbench.actions.service_recovery import (
    ActionRefused,
    ProgressCallback,
    RecoveryActions,
)
from services.workbench.actions.windows import Tally, action_windows, rows_in_states
from services.workbench.death_history import Origin
from services.workbench.index import EntryIndex
from services.workbench.model import EntryState, EntrySummary
from services.workbench.query import ActionTarget, Query
from services.workbench.store import ParkingStore

log = logging.getLogger(__name__)


def default_operator(profile: Profile | None = None) -> str:
    """The operator from the profile, else the OS user."""
    if profile is not None and profile.operator:
        return profile.operator
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return os.environ.get("USER") or "unknown"


async def _one_batch(
    rows: list[EntrySummary], missing: list[str]
) -> AsyncIterator[tuple[list[EntrySummary], list[str]]]:
    yield rows, missing


ACTION_WINDOW: Final = 200
"""Entries claimed, published and finished together (see :class:`ActionService`)."""
ACTION_DEPTH: Final = 10
"""Windows claimed and unfinished at once: 200 x 10 = 2,000 messages unconfirmed. A client
publishing over TCP waits longer for its confirms than RabbitMQ's shovel, which moves
messages inside the broker with 1,000 unacknowledged (its prefetch), so it needs more in
flight for the same rate (bench_requeue on one noisy machine: the requeue 0.72-0.91 of
the shovel at 200 x 10 in eight runs, 0.79 or more in seven, against 0.70 in one at 200 x 5;
the raw publisher with the requeue's headers 0.86-1.11 of it at 2,000 unconfirmed against
0.82 at 1,000; 200 x 15 measured 0.81, 100 x 20 worse than 200 x 10). It bounds what a
crash can leave in doubt (see :class:`ActionService`)."""


class ActionService(RecoveryActions):
    """Actions on parked entries (see the module docstring).

    ``operator`` and ``host`` go into the audit trail (defaults: the
    profile's operator or the OS user; the host name). ``read_only`` (or the
    profile's ``read_only``) refuses every action with :class:`ActionRefused`. Every
    action that runs is a job (:mod:`.jobs`); requeue and retry pass the replay gate
    (:mod:`.gate`, asking ``finals`` about the flow) unless forced.
    ``dlqs`` are the dead-letter queues entry ids are looked up in (default:
    the profile's). ``window`` entries are claimed, published and finished
    together, and at most ``window * depth`` entries are claimed and unfinished at once
    (give the publisher a ``window`` of at least that). ``window * depth`` bounds
    what a crash can leave in doubt; confirms are recorded as they arrive, so it is
    usually far less (:data:`ACTION_WINDOW`, :data:`ACTION_DEPTH`).
    """

    def __init__(
        self,
        store: ParkingStore,
        publisher: ActionPublisher,
        profile: Profile,
        operator: str | None = None,
        host: str | None = None,
        *,
        read_only: bool = False,
        window: int = ACTION_WINDOW,
        depth: int = ACTION_DEPTH,
        dlqs: Sequence[str] | None = None,
        finals: FinalLookup | None = None,
    ) -> None:
        if window < 1 or depth < 1:
            raise ValueError("window and depth must be at least 1")
        self.store = store
        self.publisher = publisher
        self.profile = profile
        self.operator = operator or default_operator(profile)
        self.host = host or socket.gethostname()
        self.read_only = read_only or profile.read_only
        self.window = window
        self.depth = depth
        self.dlqs: tuple[str, ...] = tuple(dlqs if dlqs is not None else profile.dead_letter_queues)
        self.ledger = ActionLedger(store, profile.outcome_timeout_s)
        self.jobs = JobStore(store.redis, store.prefix, profile.job_retention_s)
        self.on_job_created: Callable[[str], None] | None = None
        """Hears the id of each job this service starts, as soon as it exists (before its
        first window: the console follows a paced job's progress by it)."""
        self.tracker = OutcomeTracker.for_profile(store.redis, profile)
        self.finals = finals
        """The flow's final events of payments, for the replay gate (None: the gate asks
        only the workbench)."""

    # ------------------------------------------------------------------ targets

    def refuse_if_read_only(self, what: str) -> None:
        """Raise :class:`ActionRefused` when this service is read-only."""
        if self.read_only:
            source = (
                f"profile '{self.profile.name}' is read-only (read_only = true)"
                if self.profile.read_only
                else "the console runs read-only (--read-only)"
            )
            raise ActionRefused(f"{what} refused: {source}; actions are disabled")

    async def targets(self, target: ActionTarget) -> tuple[list[EntrySummary], list[str]]:
        """The rows an action target covers, and the entry ids that do not exist: as
        frozen (:meth:`freeze`), else as they are now."""
        if target.rows is not None:
            return list(target.rows), list(target.missing)
        if target.query is not None:
            return await self._query_rows(target.query), []
        return await self._id_rows(target.entry_ids or ())

    async def freeze(self, target: ActionTarget) -> ActionTarget:
        """``target`` resolved now, once: the confirmation (:meth:`plan`, a dry run) counts
        these rows and the action acts on exactly them (frozen as the job's selection), so
        what the operator confirmed is what is acted on and the query is not resolved a
        second time; an entry that changed state meanwhile is skipped by its claim."""
        if target.rows is not None:
            return target
        rows, missing = await self.targets(target)
        return target.frozen(rows, missing)

    async def _query_rows(self, query: Query) -> list[EntrySummary]:
        dlqs = sorted(query.dlqs) if query.dlqs else list(self.dlqs)
        if replace(query.filters, states=frozenset(), dlqs=frozenset()) == Query():
            return await self._rows_in_states(dlqs, query.states)
        index = EntryIndex()
        by_id: dict[str, EntrySummary] = {}
        for dlq in dlqs:
            async for batch in self.store.iter_summaries(dlq):
                index.add(batch)
                for summary in batch:
                    by_id[summary.entry_id] = summary
        rows = index.query(query)
        return [by_id[entry_id] for entry_id in index.entry_ids(rows) if entry_id in by_id]

    async def _rows_in_states(
        self, dlqs: Sequence[str], states: frozenset[EntryState]
    ) -> list[EntrySummary]:
        """The rows of a query that filters on states (and DLQs) only, in the order an
        :class:`EntryIndex` gives them (newest dead-lettered first, ties newest row
        first) without building one: most bulk actions are "everything parked"."""
        batches = [batch for dlq in dlqs async for batch in self.store.iter_summaries(dlq)]
        return rows_in_states(batches, states)

    async def _id_rows(self, entry_ids: Iterable[str]) -> tuple[list[EntrySummary], list[str]]:
        return await rows_by_id(self.store, self.profile.fields, self.dlqs, entry_ids)

    def cancel_event_description(self) -> str | None:
        """Where cancel publishes its event (None: no event configured)."""
        exchange = self.profile.cancel_exchange
        if exchange is None:
            return None
        return f"exchange '{exchange}' with routing key '{self.profile.cancel_routing_key}'"

    async def plan(self, action: Action, target: ActionTarget) -> ActionPlan:
        """What ``action`` on ``target`` would do now (the confirmation dialog's text)."""
        summaries, _ = await self.targets(target)
        return ActionPlan.from_summaries(
            action, summaries, cancel_event=self.cancel_event_description()
        )

    # ------------------------------------------------------------------ actions

    async def run(
        self,
        request: ActionRequest,
        target: ActionTarget,
        *,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
        cancel_event: asyncio.Event | None = None,
        pace: Pace | None = None,
        force: bool = False,
    ) -> ActionReport:
        """Run what the operator confirmed (an :class:`~.report.ActionRequest`)."""
        if request.action is Action.CANCEL:
            return await self.cancel(
                target,
                reason=request.reason,
                dry_run=dry_run,
                progress=progress,
                cancel_event=cancel_event,
            )
        return await self.replay(
            request.action,
            target,
            delay_s=request.delay_s or None,
            edited_body=request.edited_body,
            note=request.reason,
            dry_run=dry_run,
            progress=progress,
            cancel_event=cancel_event,
            pace=pace,
            force=force,
        )

    async def requeue(
        self,
        target: ActionTarget,
        *,
        note: str = "",
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
        cancel_event: asyncio.Event | None = None,
        pace: Pace | None = None,
        force: bool = False,
    ) -> ActionReport:
        """Send each entry's message back, unchanged, to the queue it died in; ``note``
        (the operator's, masked) goes into the audit trail."""
        return await self.replay(
            Action.REQUEUE,
            target,
            note=note,
            dry_run=dry_run,
            progress=progress,
            cancel_event=cancel_event,
            pace=pace,
            force=force,
        )

    async def retry(
        self,
        target: ActionTarget,
        *,
        delay_s: int | None = None,
        edited_body: bytes | None = None,
        note: str = "",
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
        cancel_event: asyncio.Event | None = None,
        pace: Pace | None = None,
        force: bool = False,
    ) -> ActionReport:
        """A new attempt through the origin queue (``payops-attempt`` + 1), optionally
        after ``delay_s`` seconds and with an edited JSON body (one entry only); ``note``
        (the operator's, masked) goes into the audit trail."""
        return await self.replay(
            Action.RETRY,
            target,
            delay_s=delay_s,
            edited_body=edited_body,
            note=note,
            dry_run=dry_run,
            progress=progress,
            cancel_event=cancel_event,
            pace=pace,
            force=force,
        )

    async def replay(
        self,
        action: Action,
        target: ActionTarget,
        *,
        delay_s: int | None = None,
        edited_body: bytes | None = None,
        note: str = "",
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
        cancel_event: asyncio.Event | None = None,
        pace: Pace | None = None,
        force: bool = False,
        resume: str = "",
    ) -> ActionReport:
        """Requeue or retry (see those): at ``pace`` (default full speed), through the
        replay gate unless ``force`` (which needs a ``note``); ``resume`` continues that
        job (its frozen selection) instead of starting one."""
        if force and not note.strip():
            raise ActionRefused("forcing past the replay gate needs a note (why)")
        delay = 0 if delay_s is None else delay_s
        if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
            raise ActionRefused(f"a retry delay is a whole number of seconds >= 0, not {delay_s!r}")
        parts = [_note(note)] if note.strip() else []
        if force:
            parts.append("forced past the replay gate")
        if delay:
            parts.append(f"delay {format_delay(delay)}")
        note = "; ".join(parts)
        if edited_body is not None:
            edited_body = bytes(edited_body)
            try:
                parsed = loads_exact(edited_body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise ActionRefused(f"the edited body is not valid JSON: {exc}") from None
            masked = dumps_compact(mask_json(parsed)).decode("utf-8", "replace")
            note = (note + "; " if note else "") + f"body edited to {masked}"
        params = ActionParams(
            action, delay_s=delay, edited_body=edited_body, note=note, force=force
        )
        return await self._run(
            params, target, dry_run, progress, cancel_event, pace=pace, resume=resume
        )

    async def cancel(
        self,
        target: ActionTarget,
        *,
        reason: str,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
        cancel_event: asyncio.Event | None = None,
    ) -> ActionReport:
        """Remove the payments from the workbench, publishing ``payment.cancelled``
        events when the profile names a cancel exchange. ``reason`` is required."""
        text = (reason or "").strip()
        if not text:
            raise ActionRefused("cancel needs a reason (it goes into the audit trail)")
        masked = mask_sensitive_text(text)
        params = ActionParams(
            Action.CANCEL,
            reason=masked,
            note=f"reason: {masked}",
            cancel_exchange=self.profile.cancel_exchange,
            cancel_routing_key=self.profile.cancel_routing_key,
        )
        return await self._run(params, target, dry_run, progress, cancel_event)

    # ------------------------------------------------------------------ the run

    async def _run(
        self,
        params: ActionParams,
        target: ActionTarget,
        dry_run: bool,
        progress: ProgressCallback | None,
        cancel_event: asyncio.Event | None,
        *,
        pace: Pace | None = None,
        resume: str = "",
    ) -> ActionReport:
        """Resolve the target (the job's selection, frozen: stored in Redis before the
        first window is sent, so another process can resume the job with nothing sent
        twice; a resumed job reads it back) and act on it window by window."""
        action = params.action
        if not dry_run:
            self.refuse_if_read_only(action.label)
        started = now_ms()
        tally = Tally(estimate=target.count)
        batches: AsyncIterator[tuple[list[EntrySummary], list[str]]]
        rows: list[EntrySummary] = []
        if resume:
            rows, missing = await self._id_rows(i for _, i in await self.jobs.selection(resume))
            parked = [r for r in rows if r.state is EntryState.PARKED]  # the rest: handled
            batches = _one_batch(parked, [])
        else:  # the selection is frozen first (and stored as the job's, below)
            rows, missing = await self.targets(target)
            if params.edited_body is not None and len(rows) + len(missing) != 1:
                raise ActionRefused(
                    "an edited body applies to exactly one entry;"
                    f" the target has {len(rows) + len(missing):,}"
                )
            batches = _one_batch(rows, missing)
        refusal = ""
        if not dry_run:
            await self.publisher.connect()  # unreachable: fail before touching anything
            refusal = await self._refusal(params)
        windows = action_windows(
            params,
            batches,
            tally,
            window=self.window,
            refusal=refusal,
            delay_problem=functools.partial(self._delay_problem, known={}),
        )
        stopped = False
        run: ActionRun | None = None
        job_id = ""
        if dry_run:
            if action is not Action.CANCEL and not params.force:
                gate = ReplayGate(
                    self.store, self.profile.success_statuses, self.finals, dry_run=True
                )
                windows = gate.filter(windows, tally)
            async for window in windows:
                tally.outcomes.extend(
                    skipped_outcome(s, f"dry run: would {self._would(params, s)}") for s in window
                )
        else:

            def report_progress() -> None:
                if progress is not None:
                    progress(len(tally.outcomes), tally.total, tally.failed)

            report_progress()
            job_id = resume or await self.jobs.create(
                action,
                operator=self.operator,
                host=self.host,
                note=params.note,
                target=target.description,
                pace=pace or Pace(),
                force=params.force,
            )
            if not resume:  # frozen: a job resumed elsewhere sends from this list
                await self.jobs.add_selection(job_id, [(r.dlq, r.entry_id) for r in rows])
                if self.on_job_created is not None:
                    self.on_job_created(job_id)
            run = ActionRun(
                self.store,
                self.publisher,
                self.ledger,
                params,
                operator=self.operator,
                host=self.host,
                depth=self.depth,
                window=self.window,
                job_id=job_id,
                ask_ahead=pace is None or not pace.canary,
            )
            stopped = await self._run_job(
                run,
                job_id=job_id,
                target=target,
                windows=windows,
                tally=tally,
                report_progress=report_progress,
                cancel_event=cancel_event,
                pace=pace,
                resume=resume,
            )
        report_target = self._report_target(params, tally.queues)
        if dry_run:
            report_target += " (dry run)"
        report = ActionReport(
            action,
            report_target,
            tuple(tally.outcomes),
            started,
            now_ms(),
            tally.requested,
            stopped,
            params.delay_s,
            job_id,
        )
        if run is not None:
            if progress is not None:
                progress(len(tally.outcomes), tally.requested, tally.failed)
            await run.audit(target, report, tally)
        return report

    async def _run_job(
        self,
        run: ActionRun,
        *,
        job_id: str,
        target: ActionTarget,
        windows: AsyncIterator[list[EntrySummary]],
        tally: Tally,
        report_progress: Callable[[], None],
        cancel_event: asyncio.Event | None,
        pace: Pace | None,
        resume: str,
    ) -> bool:
        """Run a job (its selection already stored): through the replay gate, at its
        pace; its state at the end (done, cancelled, stopped). True when stopped."""
        gate: ReplayGate | None = None
        if run.params.action is not Action.CANCEL and not run.params.force:
            # At full speed the gate checks as many windows ahead as may be in flight; a
            # paced job's windows wait for its pace, so each is checked when it is due.
            ahead = self.depth if pace is None or not pace.paced else 1
            gate = ReplayGate(self.store, self.profile.success_statuses, self.finals, ahead=ahead)
            windows = gate.filter(windows, tally)
        stop = asyncio.Event()  # the operator's stop (cancel_event) or the job's cancel
        token = runner_token()
        await self.jobs.refresh_runner(job_id, token)
        keeper = asyncio.create_task(attend(self.jobs, job_id, token, cancel_event, stop))
        control = JobControl(
            self.jobs, self.store, job_id, pace or Pace(), self.tracker, token=token, stop=stop
        )
        windows = control.steer(windows)
        counts = LiveCounts(self.jobs, job_id, tally.outcomes, token)

        def progress() -> None:
            report_progress()
            counts.tick()

        try:
            with relaxed_collector():
                stopped = await run.run(
                    target,
                    windows,
                    tally,
                    cancel_event=stop,
                    report_progress=progress,
                    operator_stop=cancel_event,
                )
        finally:
            # Not cancel() alone: one that lands mid-command can be lost (services.stopping).
            await stop_tasks([keeper], f"job {job_id}'s runner keeper")
            if gate is not None:  # no claim is taken once the run is over
                await gate.close()
            with contextlib.suppress(RedisError, OSError):
                await self.jobs.drop_runner(job_id, token)
        try:  # the job's books, each call safe to repeat: they ride through a failover
            await counts.flush()
            state, _ = await self.jobs.state(job_id)
            if state is not JobState.CANCELLED:
                await self.jobs.finish(job_id, JobState.STOPPED if stopped else JobState.DONE)
            if gate is not None:  # GET, then DEL of a claim still the entry's: repeatable
                unsent = functools.partial(gate.release_unsent, tally.outcomes)
                await through_failover(unsent, what="the gate's release", client=self.store.redis)
        except (RedisError, OSError) as exc:
            log.warning(
                "job %s: its record could not be closed (%s); it shows as running until"
                " its runner key expires, then `payops dlq job resume` takes it up",
                job_id,
                exc,
            )
        return stopped

    async def _refusal(self, params: ActionParams) -> str:
        """Why no entry can be acted on at all ("" when they can)."""
        if (
            params.action is Action.CANCEL
            and params.cancel_exchange is not None
            and not await self.publisher.exchange_exists(params.cancel_exchange)
        ):
            return (
                f"the cancel exchange '{params.cancel_exchange}' does not exist;"
                " no payment.cancelled event can be published"
            )
        return ""

    async def _delay_problem(
        self, origin: Origin, delay_s: int, *, known: dict[str, str | None]
    ) -> str | None:
        """A delayed retry needs its target queue to exist (the wait queue would drop the
        message otherwise) and its wait queue declared; checked once per queue."""
        queue = origin.queue
        if queue is None:
            return (
                "a delayed retry needs the queue the message died in; it names only its"
                f" original {origin.describe()}: retry it without a delay, or requeue it"
            )
        if queue not in known:
            try:
                if not await self.publisher.queue_exists(queue):
                    known[queue] = (
                        f"unroutable: no queue '{queue}' (checked before a delayed retry:"
                        " the wait queue would have nowhere to deliver it)"
                    )
                else:
                    await self.publisher.declare_delay_queue(queue, delay_s)
                    known[queue] = None
            except (PublisherError, ValueError) as exc:
                known[queue] = f"cannot set up the delay: {exc}"
        return known[queue]

    def _would(self, params: ActionParams, summary: EntrySummary) -> str:
        if params.action is Action.CANCEL:
            event = self.cancel_event_description()
            return "cancel" + (f" and publish payment.cancelled to {event}" if event else "")
        where = where_text(summary)
        if params.action is Action.REQUEUE:
            return f"requeue to {where}"
        delay = f" after {format_delay(params.delay_s)}" if params.delay_s else ""
        return f"retry through {where}{delay}"

    def _report_target(self, params: ActionParams, origin_queues: Iterable[str]) -> str:
        if params.action is Action.CANCEL:  # masked piece by piece: audit target
            return mask_sensitive_text(self.cancel_event_description() or "no cancel event")
        queues = sorted(mask_sensitive_text(queue) for queue in set(origin_queues))
        if not queues:
            return "origin queues"
        if len(queues) <= 3:
            return ", ".join(queues)
        return f"{', '.join(queues[:3])} and {len(queues) - 3} other queues"


def _note(text: str) -> str:
    """The operator's note as the audit trail keeps it: ``note: ...``, card data masked."""
    text = text.strip()
    return f"note: {mask_sensitive_text(text)}" if text else ""


__all__ = [
    "ActionRefused",
    "ActionService",
    "ProgressCallback",
    "default_operator",
    "summary_line",
]
