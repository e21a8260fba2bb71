"""Requeue, retry and cancel parked failed payments - exactly once, with an audit trail.

:class:`ActionService` is what the console's controllers and the CLI call.
An action applies to an :class:`~services.workbench.index.ActionTarget` (entry
ids, or everything a :class:`~services.workbench.index.Query` matches, resolved
against the store's rows with an :class:`~services.workbench.index.EntryIndex`)
and returns an :class:`~services.workbench.actions.report.ActionReport`: one outcome
per entry - done, skipped (someone else acted first, and who) or failed
(why; the entry stays parked).

- **Requeue** publishes the parked message unchanged - body, properties,
  every header but the broker's dead-letter headers - through the default
  exchange to the queue it was dead-lettered from (``x-death[0].queue``),
  and to no other queue, with ``payops-action-id`` and ``payops-action``
  headers added.
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
:mod:`services.workbench.actions.recovery` for the protocol and for what
:meth:`ActionService.recover` does after a crash. Work goes in windows of
``window`` entries - one script call each to claim and read them, to write
their intents and to finish them, and one batch of publishes - overlapped so
that ``depth`` windows await their confirms while the next is claimed. The
progress callback hears after every window; a cancel request lets the windows
already sent finish and stops there, never half-way through one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import getpass
import logging
import os
import secrets
import socket
from collections import Counter, defaultdict, deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, cast

import orjson
from redis.exceptions import RedisError

from services.config import Profile
from services.masking.json import dumps_compact, loads_exact, mask_json, mask_sensitive_text
from services.workbench.actions.ledger import (
    LEASE_REFRESH_S,
    ActionLedger,
    Finish,
    PendingSend,
    action_id_for,
    decode_entry_record,
    now_ms,
    owner_is_dead,
    publish_item,
    run_of,
)
from services.workbench.actions.names import Action
from services.workbench.actions.publisher import (
    ActionPublisher,
    AmqpUnavailable,
    PublisherError,
    PublishItem,
    PublishOutcome,
)
from services.workbench.actions.recovery import (
    RESOLVE_HOWS,
    RecoveredEntry,
    RecoveryReport,
    ResolveHow,
    recover,
    resolve,
)
from services.workbench.actions.report import (
    ActionOutcome,
    ActionPlan,
    ActionReport,
    ActionRequest,
    format_delay,
)
from services.workbench.codec import CodecError, MessageRecord, decode_record
from services.workbench.index import ActionTarget, EntryIndex, Query
from services.workbench.model import (
    AuditRecord,
    ClaimResult,
    EntryState,
    EntrySummary,
    attempt_header,
    summarize,
)
from services.workbench.store import ParkingStore, entry_id_time_ms

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, int], None]
"""``progress(done, total, failed)``: entries settled so far (any outcome), how many
the action covers, and how many of the settled ones failed."""

CANCEL_EVENT_TYPE: Final = "payment.cancelled"
MAX_AUDIT_DETAIL: Final = 8000


class ActionRefused(ValueError):
    """The action was refused before it touched anything (read-only, bad input)."""


def default_operator(profile: Profile | None = None) -> str:
    """The operator from the profile, else the OS user."""
    if profile is not None and profile.operator:
        return profile.operator
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return os.environ.get("USER") or "unknown"


def held_text(state: EntryState | None, operator: str | None, action: str | None = None) -> str:
    """Why an entry is skipped: ``already requeued by alice`` / ``being retried by bob``."""
    who = f" by {operator}" if operator else ""
    if state is None:
        return "no such entry"
    if state is EntryState.CLAIMED:
        known = Action.named(action)
        return f"being {known.past if known else 'acted on'}{who}"
    if state is EntryState.PARKED:
        return "changed meanwhile"
    return f"already {state}{who}"


@dataclass(frozen=True, slots=True)
class _Params:
    action: Action
    delay_s: int = 0
    edited_body: bytes | None = None
    reason: str = ""
    note: str = ""
    cancel_exchange: str | None = None
    cancel_routing_key: str = ""


@dataclass(slots=True)
class _Claimed:
    summary: EntrySummary
    action_id: str
    record: MessageRecord
    pending: PendingSend | None = None
    message: PublishItem | None = None
    done_detail: str | None = None


@dataclass(slots=True)
class _Tally:
    """What a run has seen so far: rows stream in while it acts."""

    estimate: int = 0
    requested: int = 0
    resolved: bool = False
    outcomes: list[ActionOutcome] = field(default_factory=list)
    dlq_of: dict[str, str] = field(default_factory=dict)
    queues: set[str] = field(default_factory=set)
    seen: list[EntrySummary] = field(default_factory=list)

    @property
    def total(self) -> int:
        """How many entries the action covers (an estimate until resolved)."""
        return self.requested if self.resolved else max(self.requested, self.estimate)

    counted: int = 0
    failures: int = 0

    @property
    def failed(self) -> int:
        """How many outcomes so far are failures (counted incrementally)."""
        outcomes = self.outcomes
        self.failures += sum(1 for o in outcomes[self.counted :] if o.status == "failed")
        self.counted = len(outcomes)
        return self.failures


@dataclass(slots=True)
class _Run:
    """One run of an action: its id, lease token and the DLQs it holds leases on."""

    run_id: str
    owner: dict[str, Any]
    token: str = ""
    dlqs: list[str] = field(default_factory=list)
    halt: str = ""
    """Why the run must not send another window ("" while it may): a lost lease, an
    unreachable broker. The windows already sent still finish."""


async def _one_batch(
    rows: list[EntrySummary], missing: list[str]
) -> AsyncIterator[tuple[list[EntrySummary], list[str]]]:
    yield rows, missing


@dataclass(slots=True)
class _Prepared:
    """One window between its claim and its end."""

    claimed: list[_Claimed] = field(default_factory=list)
    sends: dict[str, list[_Claimed]] = field(default_factory=lambda: defaultdict(list))
    to_publish: list[_Claimed] = field(default_factory=list)
    finishes: dict[str, list[Finish]] = field(default_factory=lambda: defaultdict(list))
    outcomes: list[ActionOutcome] = field(default_factory=list)


class ActionService:
    """Actions on parked entries (see the module docstring).

    ``operator`` and ``host`` go into the audit trail (defaults: the
    profile's operator or the OS user; the host name). ``read_only`` (or the
    profile's ``read_only``) refuses every action with :class:`ActionRefused`.
    ``dlqs`` are the dead-letter queues entry ids are looked up in (default:
    the profile's). ``window`` entries are claimed, published and finished
    together, ``depth`` windows at a time await their confirms (give the
    publisher a ``window`` of at least ``window * depth``).
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
        window: int = 500,
        depth: int = 3,
        dlqs: Sequence[str] | None = None,
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
        self.ledger = ActionLedger(store)

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
        """The rows an action target covers now, and the entry ids that do not exist."""
        if target.query is not None:
            return await self._query_rows(target.query), []
        return await self._id_rows(target.entry_ids or ())

    async def _query_rows(self, query: Query) -> list[EntrySummary]:
        dlqs = sorted(query.dlqs) if query.dlqs else list(self.dlqs)
        index = EntryIndex()
        by_id: dict[str, EntrySummary] = {}
        for dlq in dlqs:
            async for batch in self.store.iter_summaries(dlq):
                index.add(batch)
                for summary in batch:
                    by_id[summary.entry_id] = summary
        rows = index.query(query)
        return [by_id[entry_id] for entry_id in index.entry_ids(rows) if entry_id in by_id]

    async def _id_rows(self, entry_ids: Iterable[str]) -> tuple[list[EntrySummary], list[str]]:
        ids = list(dict.fromkeys(entry_ids))
        if not ids:
            return [], []
        dlqs = list(self.dlqs)
        found: dict[str, EntrySummary] = {}
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            pipe = self.store.redis.pipeline(transaction=False)
            for entry_id in chunk:
                for dlq in dlqs:
                    pipe.exists(self.store.entry_key(dlq, entry_id))
            exists = await pipe.execute()
            located: list[tuple[str, str]] = []
            for i, entry_id in enumerate(chunk):
                for j, dlq in enumerate(dlqs):
                    if exists[i * len(dlqs) + j]:
                        located.append((dlq, entry_id))
                        break
            pipe = self.store.redis.pipeline(transaction=False)
            for dlq, entry_id in located:
                pipe.hgetall(self.store.entry_key(dlq, entry_id))
            raws = await pipe.execute()
            for (dlq, entry_id), raw in zip(located, raws, strict=True):
                summary = self._summary(dlq, entry_id, cast(dict[bytes, bytes], raw))
                if summary is not None:
                    found[entry_id] = summary
        return [found[i] for i in ids if i in found], [i for i in ids if i not in found]

    def _summary(self, dlq: str, entry_id: str, raw: dict[bytes, bytes]) -> EntrySummary | None:
        if not raw:
            return None
        try:
            record = decode_record(raw)
        except CodecError:
            record = MessageRecord(body=raw.get(b"body", b""))
        try:
            state = EntryState((raw.get(b"state") or b"parked").decode())
        except ValueError:
            state = EntryState.PARKED
        operator = (raw.get(b"operator") or b"").decode("utf-8", "replace") or None
        try:
            parked_at = int(raw.get(b"parked_at") or 0)
        except ValueError:
            parked_at = 0
        return summarize(
            dlq,
            entry_id,
            record,
            self.profile.fields,
            parked_at or entry_id_time_ms(entry_id) or 0,
            state=state,
            last_operator=operator,
        )

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
    ) -> ActionReport:
        """Run what the operator confirmed (an :class:`~.report.ActionRequest`)."""
        if request.action is Action.REQUEUE:
            return await self.requeue(
                target, dry_run=dry_run, progress=progress, cancel_event=cancel_event
            )
        if request.action is Action.RETRY:
            return await self.retry(
                target,
                delay_s=request.delay_s or None,
                edited_body=request.edited_body,
                dry_run=dry_run,
                progress=progress,
                cancel_event=cancel_event,
            )
        return await self.cancel(
            target,
            reason=request.reason,
            dry_run=dry_run,
            progress=progress,
            cancel_event=cancel_event,
        )

    async def requeue(
        self,
        target: ActionTarget,
        *,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
        cancel_event: asyncio.Event | None = None,
    ) -> ActionReport:
        """Send each entry's message back, unchanged, to the queue it died in."""
        return await self._run(_Params(Action.REQUEUE), target, dry_run, progress, cancel_event)

    async def retry(
        self,
        target: ActionTarget,
        *,
        delay_s: int | None = None,
        edited_body: bytes | None = None,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
        cancel_event: asyncio.Event | None = None,
    ) -> ActionReport:
        """A new attempt through the origin queue (``payops-attempt`` + 1), optionally
        after ``delay_s`` seconds and with an edited JSON body (one entry only)."""
        delay = 0 if delay_s is None else delay_s
        if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
            raise ActionRefused(f"a retry delay is a whole number of seconds >= 0, not {delay_s!r}")
        note = f"delay {format_delay(delay)}" if delay else ""
        if edited_body is not None:
            edited_body = bytes(edited_body)
            try:
                parsed = loads_exact(edited_body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise ActionRefused(f"the edited body is not valid JSON: {exc}") from None
            masked = dumps_compact(mask_json(parsed)).decode("utf-8", "replace")
            note = (note + "; " if note else "") + f"body edited to {masked}"
        params = _Params(Action.RETRY, delay_s=delay, edited_body=edited_body, note=note)
        return await self._run(params, target, dry_run, progress, cancel_event)

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
        params = _Params(
            Action.CANCEL,
            reason=masked,
            note=f"reason: {masked}",
            cancel_exchange=self.profile.cancel_exchange,
            cancel_routing_key=self.profile.cancel_routing_key,
        )
        return await self._run(params, target, dry_run, progress, cancel_event)

    # ------------------------------------------------------------------ recovery

    async def recover(self, dlqs: Iterable[str] | None = None) -> RecoveryReport:
        """Find actions interrupted by a crash (see :mod:`services.workbench.actions.recovery`).

        Read-only consoles only report what they find.
        """
        names = list(dlqs) if dlqs is not None else list(self.dlqs)
        if self.read_only:
            return await self._inspect(names)
        return await recover(self.ledger, names, operator=self.operator, host=self.host)

    async def _inspect(self, dlqs: Sequence[str]) -> RecoveryReport:
        """What recovery would find, touching nothing (read-only)."""
        in_doubt: list[RecoveredEntry] = []
        in_progress: list[RecoveredEntry] = []
        released: list[RecoveredEntry] = []
        for dlq in dlqs:
            entries = await self.store.in_flight(dlq)
            pendings = await self.ledger.pending_of(dlq, [e.entry_id for e in entries])
            for entry, raw in zip(entries, pendings, strict=True):
                action_id = entry.action_id or ""
                lease = await self.store.redis.get(self.ledger.lease_key(dlq, run_of(action_id)))
                found = RecoveredEntry(
                    entry.entry_id,
                    dlq,
                    entry.summary.payment_id,
                    entry.action or "",
                    action_id,
                    entry.operator or "",
                    "",
                    entry.updated_at_ms or 0,
                    "",
                )
                live = isinstance(lease, bytes) and lease.startswith(b"live:")
                if live and not owner_is_dead(cast(bytes, lease).decode("utf-8", "replace")):
                    in_progress.append(replace(found, note="still running"))
                elif raw and raw.startswith(action_id.encode() + b"|"):
                    in_doubt.append(replace(found, note="in doubt (read-only: not resolved)"))
                else:
                    released.append(replace(found, note="would be released (read-only)"))
        return RecoveryReport(tuple(released), tuple(in_doubt), tuple(in_progress))

    async def resolve(self, entry_id: str, how: ResolveHow) -> ActionOutcome:
        """Settle one in-doubt entry: ``delivered``, ``republish`` (same action id) or
        ``release`` (see :func:`services.workbench.actions.recovery.resolve`)."""
        self.refuse_if_read_only("resolve")
        if how not in RESOLVE_HOWS:
            raise ActionRefused(f"resolve how must be one of {', '.join(RESOLVE_HOWS)}")
        return await resolve(
            self.ledger,
            self.publisher,
            self.dlqs,
            entry_id,
            how,
            operator=self.operator,
            host=self.host,
        )

    # ------------------------------------------------------------------ the run

    async def _run(
        self,
        params: _Params,
        target: ActionTarget,
        dry_run: bool,
        progress: ProgressCallback | None,
        cancel_event: asyncio.Event | None,
    ) -> ActionReport:
        """Resolve the target batch by batch and act on each window as it comes: the
        store is read while the first windows are already being published."""
        action = params.action
        if not dry_run:
            self.refuse_if_read_only(action.label)
        started = now_ms()
        tally = _Tally(estimate=target.count)
        batches: AsyncIterator[tuple[list[EntrySummary], list[str]]]
        if params.edited_body is not None:
            rows, missing = await self.targets(target)
            if len(rows) + len(missing) != 1:
                raise ActionRefused(
                    "an edited body applies to exactly one entry;"
                    f" the target has {len(rows) + len(missing):,}"
                )
            batches = _one_batch(rows, missing)
        else:
            batches = self._row_batches(target)
        refusal = ""
        if not dry_run:
            await self.publisher.connect()  # unreachable: fail before touching anything
            refusal = await self._refusal(params)
        windows = self._windows(params, batches, tally, refusal=refusal)
        stopped, run_id = False, ""
        if dry_run:
            async for window in windows:
                tally.outcomes.extend(
                    self._skipped(s, f"dry run: would {self._would(params, s)}") for s in window
                )
        else:

            def report_progress() -> None:
                if progress is not None:
                    progress(len(tally.outcomes), tally.total, tally.failed)

            report_progress()
            stopped, run_id = await self._run_windows(
                params,
                target=target,
                windows=windows,
                tally=tally,
                cancel_event=cancel_event,
                report_progress=report_progress,
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
        )
        if not dry_run:
            if progress is not None:
                progress(len(tally.outcomes), tally.requested, tally.failed)
            await self._audit_final(params, target, report, tally.dlq_of, run_id)
        return report

    async def _row_batches(
        self, target: ActionTarget
    ) -> AsyncIterator[tuple[list[EntrySummary], list[str]]]:
        """The target's rows, a store batch at a time (a query is matched with an
        :class:`EntryIndex` of each batch), and the entry ids that do not exist."""
        if target.query is None:
            rows, missing = await self._id_rows(target.entry_ids or ())
            yield rows, missing
            return
        query = target.query
        for dlq in sorted(query.dlqs) if query.dlqs else list(self.dlqs):
            async for batch in self.store.iter_summaries(dlq):
                index = EntryIndex()
                index.add(batch)
                by_id = {summary.entry_id: summary for summary in batch}
                rows = [by_id[i] for i in index.entry_ids(index.query(query)) if i in by_id]
                if rows:
                    yield rows, []

    async def _windows(
        self,
        params: _Params,
        batches: AsyncIterator[tuple[list[EntrySummary], list[str]]],
        tally: _Tally,
        *,
        refusal: str,
    ) -> AsyncIterator[list[EntrySummary]]:
        """Windows of entries to act on; every other row gets its outcome here (skipped:
        not parked; failed: no origin queue, or what ``refusal`` / a delay check says)."""
        pending: list[EntrySummary] = []
        delay_problems: dict[str, str | None] = {}
        async for rows, missing in batches:
            tally.requested += len(rows) + len(missing)
            tally.outcomes.extend(
                ActionOutcome(entry_id, None, False, "failed", "no such entry")
                for entry_id in missing
            )
            for summary in rows:
                tally.dlq_of[summary.entry_id] = summary.dlq
                problem = refusal
                if summary.state is not EntryState.PARKED:
                    tally.outcomes.append(
                        self._skipped(summary, held_text(summary.state, summary.last_operator))
                    )
                    continue
                if params.action is not Action.CANCEL:
                    if not summary.origin_queue:
                        problem = (
                            "no origin queue: the message carries no x-death header, so there"
                            " is no queue to send it back to"
                        )
                    else:
                        tally.queues.add(summary.origin_queue)
                        if params.delay_s and not problem:
                            problem = (
                                await self._delay_problem(
                                    summary.origin_queue, params.delay_s, delay_problems
                                )
                                or ""
                            )
                if problem:
                    tally.outcomes.append(_failed(summary, problem))
                    continue
                pending.append(summary)
                if len(pending) >= self.window:
                    tally.seen.extend(pending)
                    yield pending
                    pending = []
        tally.resolved = True
        if pending:
            tally.seen.extend(pending)
            yield pending

    async def _refusal(self, params: _Params) -> str:
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
        self, queue: str, delay_s: int, known: dict[str, str | None]
    ) -> str | None:
        """A delayed retry needs its target to exist (the wait queue would drop the
        message otherwise) and its wait queue declared; checked once per queue."""
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

    def _would(self, params: _Params, summary: EntrySummary) -> str:
        if params.action is Action.CANCEL:
            event = self.cancel_event_description()
            return "cancel" + (f" and publish payment.cancelled to {event}" if event else "")
        where = f"'{summary.origin_queue}'"
        if params.action is Action.REQUEUE:
            return f"requeue to {where}"
        delay = f" after {format_delay(params.delay_s)}" if params.delay_s else ""
        return f"retry through {where}{delay}"

    def _report_target(self, params: _Params, origin_queues: Iterable[str]) -> str:
        if params.action is Action.CANCEL:
            return self.cancel_event_description() or "no cancel event"
        queues = sorted(set(origin_queues))
        if not queues:
            return "origin queues"
        if len(queues) <= 3:
            return ", ".join(queues)
        return f"{', '.join(queues[:3])} and {len(queues) - 3} other queues"

    def _skipped(self, summary: EntrySummary, detail: str) -> ActionOutcome:
        return ActionOutcome(summary.entry_id, summary.payment_id, False, "skipped", detail)

    async def _run_windows(
        self,
        params: _Params,
        *,
        target: ActionTarget,
        windows: AsyncIterator[list[EntrySummary]],
        tally: _Tally,
        cancel_event: asyncio.Event | None,
        report_progress: Callable[[], None],
    ) -> tuple[bool, str]:
        run = _Run(
            run_id=secrets.token_hex(8),
            owner={
                "operator": self.operator,
                "host": self.host,
                "action": params.action,
                "started": now_ms(),
            },
        )
        run.token = self.ledger.lease_token(run.run_id, run.owner)
        keeper = asyncio.create_task(self._keep_lease(run))
        stopped = False
        try:
            stopped = await self._pipeline(
                params,
                run=run,
                target=target,
                windows=windows,
                tally=tally,
                cancel_event=cancel_event,
                report_progress=report_progress,
            )
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            with contextlib.suppress(RedisError):
                await self.ledger.drop(run.run_id, run.dlqs, run.token)
        return stopped, run.run_id if run.dlqs else ""

    async def _enter(
        self, params: _Params, run: _Run, target: ActionTarget, dlqs: set[str]
    ) -> None:
        """Lease the DLQs a window touches (and audit the start there) before claiming."""
        new = sorted(dlqs - set(run.dlqs))
        if not new:
            return
        await self.ledger.acquire(run.run_id, new, run.token)
        run.dlqs.extend(new)
        for dlq in new:
            await self.store.append_audit(
                dlq,
                AuditRecord(
                    ts=now_ms(),
                    operator=self.operator,
                    host=self.host,
                    action=params.action,
                    entry_ids=(),
                    target=mask_sensitive_text(target.description),
                    result="started",
                    detail=params.note,
                    action_id=run.run_id,
                ),
            )

    async def _pipeline(
        self,
        params: _Params,
        *,
        run: _Run,
        target: ActionTarget,
        windows: AsyncIterator[list[EntrySummary]],
        tally: _Tally,
        cancel_event: asyncio.Event | None,
        report_progress: Callable[[], None],
    ) -> bool:
        """The windows, overlapped: up to ``depth`` windows await their confirms while the
        next is resolved, claimed and read. Each window's intents are written just
        before it is published, so a crash leaves at most the windows being published in
        doubt; a stop lets the windows already sent finish and releases the one claimed
        ahead. The rows not reached are still counted (``not attempted``)."""
        outcomes = tally.outcomes
        stopped = False
        halt = ""

        async def next_window() -> _Prepared | None:
            window = await anext(windows, None)
            if window is None:
                return None
            await self._enter(params, run, target, {s.dlq for s in window})
            return await self._prepare(params, run.run_id, window)

        prepare: asyncio.Task[_Prepared | None] | None = asyncio.create_task(next_window())
        sending: deque[tuple[_Prepared, asyncio.Task[list[PublishOutcome]]]] = deque()

        async def settle_oldest() -> None:
            prepared, send = sending.popleft()
            published = await send
            outcomes.extend(await self._settle(params, prepared, published))
            report_progress()

        try:
            while prepare is not None:
                prepared = await prepare
                prepare = None
                if prepared is None:
                    break
                prepare = asyncio.create_task(next_window())
                if cancel_event is not None and cancel_event.is_set():
                    stopped = True
                elif run.halt:
                    halt = run.halt
                if stopped or halt:
                    await self._abandon(prepared, halt, outcomes)
                    ahead = await prepare
                    prepare = None
                    if ahead is not None:
                        await self._abandon(ahead, halt, outcomes)
                    break
                send = asyncio.create_task(self._send(prepared, run))
                sending.append((prepared, send))
                while len(sending) >= self.depth:
                    await settle_oldest()
            while sending:
                await settle_oldest()
            # Rows never reached (a stop, a lost lease) are still resolved and counted.
            async for window in windows:
                if halt:
                    outcomes.extend(_failed(s, halt) for s in window)
        except RedisError as exc:
            while sending:  # windows already sent may still finish
                prepared, send = sending.popleft()
                with contextlib.suppress(Exception):
                    outcomes.extend(await self._settle(params, prepared, await send))
            detail = (
                f"Redis failed during the action ({exc}); run `payops dlq recover`"
                " to settle entries this left claimed"
            )
            reported = {o.entry_id for o in outcomes}
            outcomes.extend(_failed(s, detail) for s in tally.seen if s.entry_id not in reported)
        finally:
            if prepare is not None and not prepare.done():
                prepare.cancel()
            for _, send in sending:
                send.cancel()
        return stopped

    async def _keep_lease(self, run: _Run) -> None:
        while True:
            await asyncio.sleep(LEASE_REFRESH_S)
            if not run.dlqs:
                continue
            try:
                if not await self.ledger.refresh(run.run_id, run.dlqs, run.token):
                    log.warning("action run %s lost its lease; stopping", run.run_id)
                    run.halt = "not attempted: the action lost its lease in Redis"
                    return
            except RedisError as exc:
                log.warning("action run %s: cannot refresh its lease: %s", run.run_id, exc)

    async def _prepare(
        self, params: _Params, run_id: str, window: Sequence[EntrySummary]
    ) -> _Prepared:
        """Claim a window and build its messages (no intent written yet)."""
        prepared = _Prepared()
        claimed = await self._claim_window(
            params, run_id, window, prepared.outcomes, prepared.finishes
        )
        at = now_ms()
        for item in claimed:
            entry_id, dlq = item.summary.entry_id, item.summary.dlq
            if params.action is Action.CANCEL and params.cancel_exchange is None:
                detail = f"cancelled: {params.reason}; no cancel event configured"
                prepared.finishes[dlq].append(
                    Finish(entry_id, item.action_id, EntryState.CANCELLED, detail)
                )
                item.done_detail = detail
                prepared.claimed.append(item)
                continue
            try:
                item.pending = self._pending(params, item, at)
                item.message = publish_item(item.record, item.pending)
            except ValueError as exc:
                error = f"cannot be published: {exc}"
                prepared.finishes[dlq].append(Finish(entry_id, item.action_id, None, error=error))
                prepared.outcomes.append(_failed(item.summary, error))
                continue
            prepared.claimed.append(item)
            prepared.sends[dlq].append(item)
        return prepared

    async def _send(self, prepared: _Prepared, run: _Run) -> list[PublishOutcome]:
        """Write the window's intents (the "maybe sent" window opens), then publish it."""
        sends = prepared.sends
        waits = {
            (c.summary.origin_queue, c.pending.delay_s)
            for group in sends.values()
            for c in group
            if c.pending is not None and c.pending.delay_s
        }
        for queue, delay_s in sorted(waits):
            # Declaring again restarts the wait queue's x-expires clock (cached for a
            # minute): a long action never publishes into a queue about to expire.
            await self.publisher.declare_delay_queue(queue, delay_s)
        marked = await self.ledger.mark_sending(
            run.run_id,
            run.token,
            {dlq: [cast(PendingSend, c.pending) for c in group] for dlq, group in sends.items()},
            {dlq: [c.summary.entry_id for c in group] for dlq, group in sends.items()},
        )
        for dlq, group in sends.items():
            for item, ok in zip(group, marked.get(dlq, [False] * len(group)), strict=True):
                if ok:
                    prepared.to_publish.append(item)
                    continue
                error = "not sent: the action lost its lease in Redis (a recovery took over)"
                prepared.finishes[dlq].append(
                    Finish(item.summary.entry_id, item.action_id, None, error=error)
                )
                prepared.outcomes.append(_failed(item.summary, error))
        messages = [cast(PublishItem, c.message) for c in prepared.to_publish]
        try:
            return await self.publisher.publish_many(messages)
        except AmqpUnavailable as exc:  # could not even connect: nothing of it was sent
            run.halt = f"not attempted: {exc}"
            return [PublishOutcome("not_sent", f"not published: {exc}") for _ in messages]

    async def _abandon(self, prepared: _Prepared, halt: str, outcomes: list[ActionOutcome]) -> None:
        """A window claimed ahead but not sent (the operator stopped): back to parked."""
        for item in prepared.claimed:
            dlq = item.summary.dlq
            prepared.finishes[dlq].append(
                Finish(item.summary.entry_id, item.action_id, None, error=halt)
            )
            if halt:
                prepared.outcomes.append(_failed(item.summary, halt))
        for dlq, items in prepared.finishes.items():
            await self.ledger.finish(dlq, items)
        outcomes.extend(prepared.outcomes)

    async def _settle(
        self, params: _Params, prepared: _Prepared, published: Sequence[PublishOutcome]
    ) -> list[ActionOutcome]:
        """Complete what was confirmed, release what was refused; in doubt stays claimed."""
        outcomes = prepared.outcomes
        finishes = prepared.finishes
        final_state = params.action.final_state
        for item, sent in zip(prepared.to_publish, published, strict=True):
            entry_id, dlq = item.summary.entry_id, item.summary.dlq
            if sent.ok:
                item.done_detail = self._done_detail(params, item)
                finishes[dlq].append(
                    Finish(entry_id, item.action_id, final_state, item.done_detail)
                )
            elif sent.maybe_delivered:
                outcomes.append(_failed(item.summary, self._in_doubt_text(item, sent)))
            else:
                finishes[dlq].append(Finish(entry_id, item.action_id, None, error=sent.detail))
                outcomes.append(_failed(item.summary, sent.detail))
        completed = {c.summary.entry_id: c for c in prepared.claimed if c.done_detail is not None}
        for dlq, items in finishes.items():
            replies = await self.ledger.finish(dlq, items)
            for finish, reply in zip(items, replies, strict=True):
                done = completed.get(finish.entry_id) if finish.state is not None else None
                if done is None:
                    continue  # a release: its outcome is already reported
                if reply.ok:
                    outcomes.append(_done(done.summary, cast(str, done.done_detail)))
                else:
                    outcomes.append(
                        _failed(
                            done.summary,
                            "sent, but the entry changed meanwhile"
                            f" ({held_text(reply.state, reply.operator, reply.action)})",
                        )
                    )
        return outcomes

    async def _claim_window(
        self,
        params: _Params,
        run_id: str,
        window: Sequence[EntrySummary],
        outcomes: list[ActionOutcome],
        finishes: dict[str, list[Finish]],
    ) -> list[_Claimed]:
        """Claim the window's entries (one pipeline per DLQ) and read the winners' messages."""
        by_dlq: dict[str, list[EntrySummary]] = defaultdict(list)
        for summary in window:
            by_dlq[summary.dlq].append(summary)
        claimed: list[_Claimed] = []
        for dlq, rows in by_dlq.items():
            pairs = [(s.entry_id, action_id_for(run_id, s.entry_id)) for s in rows]
            replies = await self.ledger.claim_and_fetch(dlq, pairs, params.action, self.operator)
            for summary, (entry_id, action_id), (claim, raw) in zip(
                rows, pairs, replies, strict=True
            ):
                if not claim.ok:
                    outcomes.append(self._lost(summary, claim))
                    continue
                record = decode_entry_record(raw)
                if record is None:
                    error = "the stored message is damaged and cannot be published"
                    finishes[dlq].append(Finish(entry_id, action_id, None, error=error))
                    outcomes.append(_failed(summary, error))
                    continue
                claimed.append(_Claimed(summary, action_id, record))
        return claimed

    def _lost(self, summary: EntrySummary, claim: ClaimResult) -> ActionOutcome:
        if claim.missing:
            return _failed(summary, "no such entry (deleted meanwhile)")
        return self._skipped(summary, held_text(claim.state, claim.operator, claim.action))

    def _pending(self, params: _Params, item: _Claimed, at: int) -> PendingSend:
        summary = item.summary
        action_id = item.action_id
        if params.action is Action.CANCEL:
            exchange = cast(str, params.cancel_exchange)
            event = {
                "payment_id": summary.payment_id,
                "merchant": summary.merchant,
                "amount": summary.amount,
                "currency": summary.currency,
                "reason": params.reason,
                "operator": self.operator,
                "entry_id": summary.entry_id,
                "cancelled_at": datetime.datetime.fromtimestamp(at / 1000, datetime.UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
            }
            return PendingSend(
                action=Action.CANCEL,
                action_id=action_id,
                exchange=exchange,
                routing_key=params.cancel_routing_key,
                target=f"exchange '{exchange}' (routing key '{params.cancel_routing_key}')",
                operator=self.operator,
                host=self.host,
                at_ms=at,
                body=orjson.dumps(event),
                properties={
                    "content_type": "application/json",
                    "delivery_mode": 2,
                    "message_id": action_id,
                    "type": CANCEL_EVENT_TYPE,
                    "timestamp": at // 1000,
                    "app_id": "payops-console",
                },
            )
        origin = summary.origin_queue
        routing_key = origin
        target = f"queue '{origin}'"
        attempt = None
        if params.action is Action.RETRY:
            attempt = attempt_header(item.record.headers) + 1
            if params.delay_s:
                from services.workbench.actions.publisher import delay_queue_name

                routing_key = delay_queue_name(origin, params.delay_s)
                target = (
                    f"queue '{origin}' after {format_delay(params.delay_s)} (via '{routing_key}')"
                )
        return PendingSend(
            action=params.action,
            action_id=action_id,
            exchange="",
            routing_key=routing_key,
            target=target,
            operator=self.operator,
            host=self.host,
            at_ms=at,
            attempt=attempt,
            delay_s=params.delay_s,
            body=params.edited_body,
        )

    def _done_detail(self, params: _Params, item: _Claimed) -> str:
        pending = cast(PendingSend, item.pending)
        if params.action is Action.REQUEUE:
            return f"requeued to '{item.summary.origin_queue}'"
        if params.action is Action.RETRY:
            text = f"retried through '{item.summary.origin_queue}' (attempt {pending.attempt})"
            if params.delay_s:
                text += f" after {format_delay(params.delay_s)}"
            if params.edited_body is not None:
                text += ", body edited"
            return text
        return f"cancelled: {params.reason}; payment.cancelled published to {pending.target}"

    @staticmethod
    def _in_doubt_text(item: _Claimed, result: PublishOutcome) -> str:
        pending = cast(PendingSend, item.pending)
        return (
            f"in doubt: {result.detail}; the message may already be in {pending.target}."
            " The entry stays claimed: run `payops dlq recover`, then"
            f" `payops dlq resolve {item.summary.entry_id} --delivered|--republish`"
        )

    # ------------------------------------------------------------------ audit

    async def _audit_final(
        self,
        params: _Params,
        target: ActionTarget,
        report: ActionReport,
        dlq_of: dict[str, str],
        run_id: str,
    ) -> None:
        by_dlq: dict[str, list[ActionOutcome]] = defaultdict(list)
        for outcome in report.outcomes:
            dlq = dlq_of.get(outcome.entry_id)
            if dlq is not None:
                by_dlq[dlq].append(outcome)
        for dlq, items in by_dlq.items():
            counts = Counter(o.status for o in items)
            result = (
                f"{params.action.past} {counts['done']:,}, skipped {counts['skipped']:,},"
                f" failed {counts['failed']:,}"
            )
            if report.stopped:
                result += f", stopped by the operator ({report.not_attempted:,} not attempted)"
            reasons = Counter(
                f"{o.status}: {o.detail}" for o in items if o.status != "done" and o.detail
            )
            lines = [params.note] if params.note else []
            lines += [f"{count:,} × {text}" for text, count in reasons.most_common(20)]
            detail = mask_sensitive_text("\n".join(lines))[:MAX_AUDIT_DETAIL]
            try:
                await self.store.append_audit(
                    dlq,
                    AuditRecord(
                        ts=now_ms(),
                        operator=self.operator,
                        host=self.host,
                        action=params.action,
                        entry_ids=tuple(o.entry_id for o in items),
                        target=mask_sensitive_text(f"{target.description} -> {report.target}"),
                        result=result,
                        detail=detail,
                        action_id=run_id,
                    ),
                )
            except RedisError as exc:
                log.error("cannot append the audit record of %s: %s", params.action, exc)


def _failed(summary: EntrySummary, detail: str) -> ActionOutcome:
    return ActionOutcome(summary.entry_id, summary.payment_id, False, "failed", detail)


def _done(summary: EntrySummary, detail: str) -> ActionOutcome:
    return ActionOutcome(summary.entry_id, summary.payment_id, True, "done", detail)


def summary_line(report: ActionReport) -> str:
    """``requeued 98, skipped 2 (already requeued by alice), failed 0`` - for the CLI."""
    verb = report.action.past

    def reasons(status: str, limit: int = 3) -> str:
        found = report.reasons(cast(Any, status))
        if not found:
            return ""
        shown = [text if count == 1 else f"{count:,} {text}" for text, count in found[:limit]]
        if len(shown) == 1 and len(found) == 1:
            shown = [found[0][0]]
        more = f"; +{len(found) - limit} more" if len(found) > limit else ""
        return f" ({'; '.join(shown)}{more})"

    line = (
        f"{verb} {report.succeeded:,}, skipped {report.skipped:,}{reasons('skipped')},"
        f" failed {report.failed:,}{reasons('failed')}"
    )
    if report.stopped:
        line += f", stopped ({report.not_attempted:,} not attempted)"
    return line


__all__ = [
    "ActionRefused",
    "ActionService",
    "ProgressCallback",
    "default_operator",
    "held_text",
    "summary_line",
]
