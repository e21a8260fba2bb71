"""One run of an action: windows of entries claimed, announced, published and finished.

:class:`ActionRun` is what :class:`~services.workbench.actions.service.ActionService`
starts for each confirmed action. It follows the protocol of
:mod:`services.workbench.actions.ledger`: the run leases the DLQs it touches,
claims each window's entries with compare-and-set, builds their messages,
writes their intents just before publishing them (confirms,
``mandatory=True``), completes each entry as its confirm arrives (a batch per
Redis round trip, while the rest of the window is in flight), releases what
was refused and leaves in doubt what got no answer. A requeue (and a cancel that
publishes an event) claims a window with its intents in one call just before it
is published; a retry claims ahead and writes its intents before the publish.
Windows overlap as a pipeline: while one window is claimed (Redis), the windows
before it publish and await their confirms (RabbitMQ) and record them as they
arrive (Redis), and the next window is resolved (the replay gate, the job's pace).
A requeue's window is claimed in the task that then publishes it, so resolving the
next window never waits for a claim (unless a canary must be judged first).
A window is claimed as soon as the entries claimed and not yet finished leave room
for it (``window * depth``; see :attr:`ActionRun.capacity`) - not once a whole
window has ended - so the broker always has windows to confirm while the next is
claimed. Each window is settled (its leftovers finished in Redis, in its own task)
as soon as its publish ends and its outcomes are counted in order, so a job that
waits (paused, its canary, its pace) leaves nothing unrecorded. A stop, or a lost
lease, lets the windows already sent finish and releases a window claimed ahead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from asyncio import FIRST_COMPLETED
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

from redis.exceptions import RedisError

from services.stopping import stop_tasks
from services.workbench.actions.ledger import (
    LEASE_REFRESH_S,
    STORED_REQUEUE_KEY,
    ActionLedger,
    Finish,
    PendingSend,
    action_id_for,
    decode_entry_record,
    now_ms,
    publish_item,
    stored_requeue_item,
)
from services.workbench.actions.names import Action
from services.workbench.actions.pika_link import AmqpUnavailable
from services.workbench.actions.publisher import ActionPublisher, PublishItem, PublishOutcome
from services.workbench.actions.report import (
    ActionOutcome,
    ActionReport,
    done_outcome,
    failed_outcome,
    held_text,
    in_doubt_text,
    skipped_outcome,
)
from services.workbench.actions.run_audit import audit_record, audit_run
from services.workbench.actions.sends import (
    ActionParams,
    SameIntent,
    done_detail,
    intent_parts,
    pending_send,
)
from services.workbench.actions.windows import Tally
from services.workbench.codec import MessageRecord
from services.workbench.model import (
    AUDIT_STARTED,
    ClaimResult,
    EntryState,
    EntrySummary,
)
from services.workbench.query import ActionTarget
from services.workbench.store import ParkingStore

log = logging.getLogger(__name__)

CONFIRM_BATCH: Final = 200
"""At most this many confirms are recorded in the ledger by one script call."""


LOST_LEASE: Final = "not sent: the action lost its lease in Redis (a recovery took over)"


@dataclass(slots=True)
class _Claimed:
    summary: EntrySummary
    action_id: str
    record: MessageRecord | None
    """None when the entry gave its body and stored requeue properties instead."""
    stored: tuple[bytes, bytes] | None = None
    """(body, the requeue's stored encoded properties): see services.workbench.republish."""
    pending: PendingSend | None = None
    message: PublishItem | None = None
    done_detail: str | None = None


@dataclass(slots=True)
class _Prepared:
    """One window between its claim and its end."""

    unclaimed: list[EntrySummary] = field(default_factory=list)
    """The window, when it is claimed (with its intents) just before it is sent."""
    announced: bool = False
    """Claimed with its intents: ready to publish."""
    claimed: list[_Claimed] = field(default_factory=list)
    sends: dict[str, list[_Claimed]] = field(default_factory=lambda: defaultdict(list))
    to_publish: list[_Claimed] = field(default_factory=list)
    finishes: dict[str, list[Finish]] = field(default_factory=lambda: defaultdict(list))
    outcomes: list[ActionOutcome] = field(default_factory=list)
    recorded: dict[int, ClaimResult] = field(default_factory=dict)
    """Confirms already recorded in the ledger: index in ``to_publish`` -> the finish."""
    open: int = 0
    """How many of its entries are claimed and not yet finished (see ``ActionRun.capacity``)."""


class _Confirms:
    """The confirms of one window that arrived and are not recorded yet (indexes in
    ``to_publish``); the publisher calls :meth:`arrived` from its confirm callback."""

    __slots__ = ("indexes", "wakeup")

    def __init__(self) -> None:
        self.indexes: list[int] = []
        self.wakeup = asyncio.Event()

    def arrived(self, index: int, outcome: PublishOutcome) -> None:
        if outcome.ok:
            self.indexes.append(index)
            self.wakeup.set()


class ActionRun:
    """One run of an action (see the module docstring).

    ``run_id`` names it in Redis (its lease, its action ids) and in the audit
    trail; ``dlqs`` are the DLQs it holds leases on; ``halt`` says why it must
    not send another window ("" while it may: a lost lease, an unreachable
    broker stop it), the windows already sent still finish.
    """

    def __init__(
        self,
        store: ParkingStore,
        publisher: ActionPublisher,
        ledger: ActionLedger,
        params: ActionParams,
        *,
        operator: str,
        host: str,
        depth: int,
        window: int = 0,
        job_id: str = "",
        ask_ahead: bool = True,
    ) -> None:
        self.job_id = job_id
        self.store = store
        self.publisher = publisher
        self.ledger = ledger
        self.params = params
        self.operator = operator
        self.host = host
        self.depth = depth
        self.capacity = window * depth
        """At most this many entries are claimed and not finished at once (0: ``depth``
        windows): the next window is claimed as soon as it fits - while the oldest window
        still awaits its last confirms - so a crash leaves at most this many in doubt."""
        self._open = 0
        self._room = asyncio.Event()
        self._recording = asyncio.Lock()
        """One confirm batch recorded at a time: after a burst of confirms, the claim of
        the next window then reaches Redis after one finish, not behind every window's
        (14.4k against 13.7k msg/s, five alternating pairs of 100,000)."""
        self.ask_ahead = ask_ahead
        """Whether the next window is asked for (through the replay gate, the job's pace)
        while this one is claimed; not for a job with a canary, which judges the canary's
        outcomes when the window after it is asked for, so the canary must be sent first."""
        self.run_id = secrets.token_hex(8)
        owner: dict[str, Any] = {
            "operator": operator,
            "host": host,
            "action": params.action,
            "started": now_ms(),
        }
        self.token = ledger.lease_token(self.run_id, owner)
        self.dlqs: list[str] = []
        self.halt = ""
        self._requeued_to: dict[tuple[str | None, str, str], str] = {}
        """A requeue's done detail per origin (exchange, routing key, queue)."""

    @contextlib.asynccontextmanager
    async def _leased(self) -> AsyncIterator[None]:
        """Keep the run's lease fresh while it acts; drop it at the end."""
        keeper = asyncio.create_task(self._keep_lease())
        try:
            yield
        finally:
            try:  # stopped, not only cancelled: a cancel mid-command can be lost
                await stop_tasks([keeper], f"action run {self.run_id}'s lease keeper")
            finally:
                with contextlib.suppress(RedisError):
                    await self.ledger.drop(self.run_id, self.dlqs, self.token)

    async def _enter(self, target: ActionTarget, dlqs: set[str]) -> None:
        """Lease the DLQs a window touches (and audit the start there) before claiming."""
        new = sorted(dlqs - set(self.dlqs))
        if not new:
            return
        await self.ledger.acquire(self.run_id, new, self.token)
        self.dlqs.extend(new)
        for dlq in new:
            record = audit_record(self, (), target.description, AUDIT_STARTED, self.params.note)
            await self.store.append_audit(dlq, record)

    async def run(
        self,
        target: ActionTarget,
        windows: AsyncIterator[list[EntrySummary]],
        tally: Tally,
        *,
        cancel_event: asyncio.Event | None,
        report_progress: Callable[[], None],
        operator_stop: asyncio.Event | None = None,
    ) -> bool:
        """Act on ``windows`` under a lease; True when the operator stopped it.

        The windows overlap: up to ``depth`` windows await their confirms while the
        next is resolved, claimed and read (one whose claims write its intents is claimed
        just before it is sent, and before the next window is asked for). Each window's
        intents are written just before it is published, so a crash leaves at most the
        windows being published in doubt; a stop lets the windows already sent finish
        and releases a window claimed ahead. The rows not reached are still counted
        (``not attempted``)."""
        async with self._leased():
            outcomes = tally.outcomes
            stopped = False
            halt = ""

            async def next_window() -> _Prepared | None:
                window = await anext(windows, None)
                if window is None:
                    return None
                await self._enter(target, {s.dlq for s in window})
                return await self._prepare(window)

            prepare: asyncio.Task[_Prepared | None] | None = asyncio.create_task(next_window())
            sending: deque[tuple[_Prepared, asyncio.Task[list[ActionOutcome]]]] = deque()

            async def settle_oldest() -> None:
                _, send = sending.popleft()
                outcomes.extend(await send)
                report_progress()

            async def settle_done() -> None:
                while sending and sending[0][1].done():
                    await settle_oldest()

            async def room_for(size: int) -> None:
                """Wait until a window of ``size`` entries may be claimed (settling the
                windows whose publish ended meanwhile, in order)."""
                while sending:
                    if self.capacity:
                        if self._open + size <= self.capacity:
                            return
                    elif len(sending) < self.depth:
                        return
                    self._room.clear()
                    room = asyncio.ensure_future(self._room.wait())
                    try:
                        await asyncio.wait((sending[0][1], room), return_when=FIRST_COMPLETED)
                    finally:
                        room.cancel()
                    await settle_done()

            try:
                while prepare is not None:
                    while sending and not prepare.done():  # settle each as its publish ends:
                        # a job that waits (its pause, canary, pace) has them all recorded
                        oldest = sending[0][1]
                        await asyncio.wait((prepare, oldest), return_when=FIRST_COMPLETED)
                        await settle_done()
                    prepared = await prepare
                    prepare = None
                    if prepared is None:
                        break
                    await room_for(len(prepared.unclaimed) or len(prepared.claimed))
                    if (cancel_event is not None and cancel_event.is_set()) or (
                        operator_stop is not None and operator_stop.is_set()
                    ):  # the operator's own stop is seen at once, not a keeper's turn later
                        stopped = True
                    elif self.halt:
                        halt = self.halt
                    if stopped or halt:
                        await self._abandon(prepared, halt, outcomes)
                        break
                    if prepared.unclaimed and self.ask_ahead:
                        # Claimed in its own task while the next window is resolved (the
                        # replay gate, the job's pace) and the windows before it publish.
                        self._reserve(prepared, len(prepared.unclaimed))
                        claim_and_send = self._claim_send_and_settle(prepared)
                        prepare = asyncio.create_task(next_window())
                        sending.append((prepared, asyncio.create_task(claim_and_send)))
                        continue
                    if prepared.unclaimed:  # claimed before the next window is asked for
                        await self._claim_to_send(prepared)  # (a canary judges what it sent)
                    self._opened(prepared)
                    prepare = asyncio.create_task(next_window())
                    sending.append((prepared, asyncio.create_task(self._send_and_settle(prepared))))
                while sending:
                    await settle_oldest()
                # Rows never reached (a stop, a lost lease) are still resolved and counted.
                async for window in windows:
                    if halt:
                        outcomes.extend(failed_outcome(s, halt) for s in window)
            except RedisError as exc:
                while sending:  # windows already sent may still finish
                    _, send = sending.popleft()
                    with contextlib.suppress(Exception):
                        outcomes.extend(await send)
                detail = (
                    f"unsettled: Redis failed during the action ({exc}); they stay claimed"
                    " until `payops dlq recover` releases those never sent and lists those"
                    " in doubt"
                )
                reported = {o.entry_id for o in outcomes}
                outcomes.extend(
                    failed_outcome(s, detail) for s in tally.seen if s.entry_id not in reported
                )
            finally:
                for task in (prepare, *(send for _, send in sending)):
                    if task is None:
                        continue
                    if not task.done():
                        task.cancel()
                    elif not task.cancelled():
                        # Its failure (Redis or the broker gone) is already reported: read
                        # it, or asyncio prints "Task exception was never retrieved".
                        task.exception()
            return stopped

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(LEASE_REFRESH_S)
            if not self.dlqs:
                continue
            try:
                if not await self.ledger.refresh(self.run_id, self.dlqs, self.token):
                    log.warning("action run %s lost its lease; stopping", self.run_id)
                    self.halt = "not attempted: the action lost its lease in Redis"
                    return
            except RedisError as exc:
                log.warning("action run %s: cannot refresh its lease: %s", self.run_id, exc)

    async def _prepare(self, window: Sequence[EntrySummary]) -> _Prepared:
        """Claim a window and build its messages (no intent written yet); a window whose
        intents come with the claim is claimed in :meth:`_send` instead."""
        prepared = _Prepared()
        if self.params.intent_with_claim:
            prepared.unclaimed = list(window)
            return prepared
        claimed = await self._claim_window(window, prepared.outcomes, prepared.finishes)
        at = now_ms()
        for item in claimed:
            entry_id, dlq = item.summary.entry_id, item.summary.dlq
            if self.params.action is Action.CANCEL and self.params.cancel_exchange is None:
                detail = f"cancelled: {self.params.reason}; no cancel event configured"
                prepared.finishes[dlq].append(
                    Finish(entry_id, item.action_id, EntryState.CANCELLED, detail, job=self.job_id)
                )
                item.done_detail = detail
                prepared.claimed.append(item)
                continue
            if await self._build(item, prepared, at):
                prepared.sends[dlq].append(item)
        return prepared

    async def _build(self, item: _Claimed, prepared: _Prepared, at: int) -> bool:
        """Give a claimed entry its pending send (unless its claim wrote it) and message;
        False (released, reported failed) when it cannot be published."""
        try:
            if item.pending is None:
                item.pending = self._pending(item.summary, item.action_id, item.record, at)
            item.message = await self._message(item, item.pending)
        except ValueError as exc:
            error = f"cannot be published: {exc}"
            prepared.finishes[item.summary.dlq].append(
                Finish(item.summary.entry_id, item.action_id, None, error=error)
            )
            prepared.outcomes.append(failed_outcome(item.summary, error))
            return False
        prepared.claimed.append(item)
        return True

    def _pending(
        self, summary: EntrySummary, action_id: str, record: MessageRecord | None, at: int
    ) -> PendingSend:
        return pending_send(
            self.params, summary, action_id, record, operator=self.operator, host=self.host,
            at=at, quorum_wait_queue=self.publisher.quorum_wait_queues,
        )  # fmt: skip

    async def _claim_to_send(self, prepared: _Prepared) -> None:
        """Claim a window with its intents in one call (the "maybe sent" window opens)
        and build its messages."""
        claimed = await self._claim_window(
            prepared.unclaimed, prepared.outcomes, prepared.finishes, at=now_ms()
        )
        prepared.unclaimed = []
        prepared.announced = True
        for item in claimed:
            if await self._build(item, prepared, 0):
                prepared.to_publish.append(item)

    async def _message(self, item: _Claimed, pending: PendingSend) -> PublishItem:
        """The message of a claimed entry: a requeue's from its stored encoded properties
        when it has them, else from its decoded record."""
        if item.stored is not None:
            message = stored_requeue_item(*item.stored, pending)
            if message is not None:
                return message
            item.record = await self.ledger.fetch_record(item.summary.dlq, item.summary.entry_id)
            if item.record is None:
                raise ValueError("the stored message is damaged")
        return publish_item(cast(MessageRecord, item.record), pending)

    def _opened(self, prepared: _Prepared) -> None:
        """A window's claimed entries count against :attr:`capacity` until finished."""
        self._reserve(
            prepared, len(prepared.to_publish) if prepared.announced else len(prepared.claimed)
        )

    def _reserve(self, prepared: _Prepared, count: int) -> None:
        """``count`` more of a window's entries count against :attr:`capacity`."""
        prepared.open += count
        self._open += count

    def _closed(self, prepared: _Prepared, count: int) -> None:
        """``count`` of a window's entries are finished (or its publish is over)."""
        count = min(count, prepared.open)
        prepared.open -= count
        self._open -= count
        self._room.set()

    async def _claim_send_and_settle(self, prepared: _Prepared) -> list[ActionOutcome]:
        """Claim a window with its intents (its room reserved for all of it), then publish
        and settle it; the room of the entries not claimed is given back at once."""
        try:
            await self._claim_to_send(prepared)
        except BaseException:
            self._closed(prepared, prepared.open)
            raise
        self._closed(prepared, prepared.open - len(prepared.to_publish))
        return await self._send_and_settle(prepared)

    async def _send_and_settle(self, prepared: _Prepared) -> list[ActionOutcome]:
        """Publish a window and settle it: its outcomes (in doubt stays claimed)."""
        try:
            return await self._settle(prepared, await self._send(prepared))
        finally:
            self._closed(prepared, prepared.open)

    async def _send(self, prepared: _Prepared) -> list[PublishOutcome]:
        """Write the window's intents (the "maybe sent" window opens), then publish it."""
        if prepared.announced:  # claimed with its intents
            return await self._publish(prepared)
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
            self.run_id,
            self.token,
            {dlq: [cast(PendingSend, c.pending) for c in group] for dlq, group in sends.items()},
            {dlq: [c.summary.entry_id for c in group] for dlq, group in sends.items()},
        )
        for dlq, group in sends.items():
            for item, ok in zip(group, marked.get(dlq, [False] * len(group)), strict=True):
                if ok:
                    prepared.to_publish.append(item)
                    continue
                prepared.finishes[dlq].append(
                    Finish(item.summary.entry_id, item.action_id, None, error=LOST_LEASE)
                )
                prepared.outcomes.append(failed_outcome(item.summary, LOST_LEASE))
        return await self._publish(prepared)

    async def _publish(self, prepared: _Prepared) -> list[PublishOutcome]:
        """Publish what the window announced, recording the confirms as they arrive."""
        messages = [cast(PublishItem, c.message) for c in prepared.to_publish]
        confirms = _Confirms()
        publish = asyncio.ensure_future(
            self.publisher.publish_many(messages, on_settled=confirms.arrived)
        )
        try:
            await self._record_confirms(prepared, confirms, publish)
        except BaseException:
            publish.cancel()
            raise
        try:
            return await publish
        except AmqpUnavailable as exc:  # could not even connect: nothing of it was sent
            self.halt = f"not attempted: {exc}"
            return [PublishOutcome("not_sent", f"not published: {exc}") for _ in messages]

    async def _record_confirms(
        self, prepared: _Prepared, confirms: _Confirms, publish: asyncio.Future[Any]
    ) -> None:
        """Complete each entry in the ledger as its confirm arrives, while the rest of the
        window is still in flight: what one Redis round trip sees arrive goes in one
        script call (at most :data:`CONFIRM_BATCH`). A crash then leaves in doubt only
        what the broker had not confirmed yet (and the last batch on its way to Redis),
        not the whole window."""
        final_state = self.params.action.final_state
        publish.add_done_callback(lambda _: confirms.wakeup.set())
        while True:
            if not confirms.indexes:
                if publish.done():
                    return
                await confirms.wakeup.wait()
                confirms.wakeup.clear()
                continue
            batch = confirms.indexes[:CONFIRM_BATCH]
            del confirms.indexes[: len(batch)]
            by_dlq: dict[str, list[tuple[int, Finish]]] = defaultdict(list)
            for index in batch:
                item = prepared.to_publish[index]
                item.done_detail = self._done_detail(item)
                finish = self._done_finish(item, final_state)
                by_dlq[item.summary.dlq].append((index, finish))
            for dlq, pairs in by_dlq.items():
                async with self._recording:
                    replies = await self.ledger.finish(dlq, [f for _, f in pairs])
                for (index, _), reply in zip(pairs, replies, strict=True):
                    prepared.recorded[index] = reply
            self._closed(prepared, len(batch))

    async def _abandon(self, prepared: _Prepared, halt: str, outcomes: list[ActionOutcome]) -> None:
        """A window claimed ahead but not sent (the operator stopped): back to parked."""
        if halt:
            prepared.outcomes.extend(failed_outcome(s, halt) for s in prepared.unclaimed)
        for item in prepared.claimed:
            dlq = item.summary.dlq
            prepared.finishes[dlq].append(
                Finish(item.summary.entry_id, item.action_id, None, error=halt)
            )
            if halt:
                prepared.outcomes.append(failed_outcome(item.summary, halt))
        for dlq, items in prepared.finishes.items():
            await self.ledger.finish(dlq, items)
        outcomes.extend(prepared.outcomes)

    async def _settle(
        self, prepared: _Prepared, published: Sequence[PublishOutcome]
    ) -> list[ActionOutcome]:
        """Complete what was confirmed, release what was refused; in doubt stays claimed."""
        outcomes = prepared.outcomes
        finishes = prepared.finishes
        final_state = self.params.action.final_state
        for index, (item, sent) in enumerate(zip(prepared.to_publish, published, strict=True)):
            entry_id, dlq = item.summary.entry_id, item.summary.dlq
            recorded = prepared.recorded.get(index)
            if recorded is not None:
                outcomes.append(self._completed(item, recorded))
            elif sent.ok:
                item.done_detail = self._done_detail(item)
                finishes[dlq].append(self._done_finish(item, final_state))
            elif sent.maybe_delivered:
                target = cast(PendingSend, item.pending).target
                outcomes.append(failed_outcome(item.summary, in_doubt_text(sent.detail, target)))
            else:
                finishes[dlq].append(Finish(entry_id, item.action_id, None, error=sent.detail))
                outcomes.append(failed_outcome(item.summary, sent.detail))
        completed = {c.summary.entry_id: c for c in prepared.claimed if c.done_detail is not None}
        for dlq, items in finishes.items():
            replies = await self.ledger.finish(dlq, items)
            for finish, reply in zip(items, replies, strict=True):
                done = completed.get(finish.entry_id) if finish.state is not None else None
                if done is None:
                    continue  # a release: its outcome is already reported
                outcomes.append(self._completed(done, reply))
        return outcomes

    def _done_finish(self, item: _Claimed, final_state: EntryState) -> Finish:
        """The finish of a confirmed entry: its outcome is followed from the send on."""
        sent_at = item.pending.at_ms if item.pending is not None else 0
        return Finish(
            item.summary.entry_id, item.action_id, final_state, cast(str, item.done_detail), "",
            self.job_id, sent_at, self.params.delay_s,
        )  # fmt: skip

    @staticmethod
    def _completed(item: _Claimed, reply: ClaimResult) -> ActionOutcome:
        """The outcome of a confirmed entry, from the ledger's answer to its finish."""
        if reply.ok:
            return done_outcome(item.summary, cast(str, item.done_detail))
        return failed_outcome(
            item.summary,
            "sent, but the entry changed meanwhile"
            f" ({held_text(reply.state, reply.operator, reply.action)})",
        )

    async def _claim_window(
        self,
        window: Sequence[EntrySummary],
        outcomes: list[ActionOutcome],
        finishes: dict[str, list[Finish]],
        at: int | None = None,
    ) -> list[_Claimed]:
        """Claim the window's entries (one script call per DLQ) and read the winners'
        messages; with ``at`` the claims write the entries' intents (sent at ``at``)."""
        by_dlq: dict[str, list[EntrySummary]] = defaultdict(list)
        for summary in window:
            by_dlq[summary.dlq].append(summary)
        claimed: list[_Claimed] = []
        stored_requeue = self.params.action is Action.REQUEUE
        for dlq, in_dlq in by_dlq.items():
            rows = in_dlq
            pairs = [(s.entry_id, action_id_for(self.run_id, s.entry_id)) for s in rows]
            intents: list[PendingSend] | None = None
            if at is not None:
                intents, rows, pairs = self._intents(rows, pairs, at, outcomes)
            replies = await self.ledger.claim_and_fetch(
                dlq, pairs, self.params.action, self.operator, run_id=self.run_id,
                token=self.token, intents=intents, stored_requeue=stored_requeue,
            )  # fmt: skip
            if replies is None:
                outcomes.extend(failed_outcome(s, LOST_LEASE) for s in rows)
                continue
            for index, (summary, (entry_id, action_id), (claim, raw)) in enumerate(
                zip(rows, pairs, replies, strict=True)
            ):
                if not claim.ok:
                    outcomes.append(self._lost(summary, claim))
                    continue
                item = _Claimed(summary, action_id, None)
                item.pending = intents[index] if intents is not None else None
                template = raw.get(STORED_REQUEUE_KEY)
                if template is not None:
                    item.stored = (raw.get(b"body", b""), template)
                    claimed.append(item)
                    continue
                item.record = decode_entry_record(raw)
                if item.record is None:
                    error = "the stored message is damaged and cannot be published"
                    finishes[dlq].append(Finish(entry_id, action_id, None, error=error))
                    outcomes.append(failed_outcome(summary, error))
                    continue
                claimed.append(item)
        return claimed

    def _intents(
        self,
        rows: list[EntrySummary],
        pairs: list[tuple[str, str]],
        at: int,
        outcomes: list[ActionOutcome],
    ) -> tuple[list[PendingSend], list[EntrySummary], list[tuple[str, str]]]:
        """The intents of rows about to be claimed, and the rows and claims that have one
        (the others are reported failed, never claimed)."""
        intents: list[PendingSend] = []
        kept: list[EntrySummary] = []
        kept_pairs: list[tuple[str, str]] = []
        requeue = self.params.action is Action.REQUEUE
        # A requeue's intent differs from entry to entry in its action id and its origin
        # only: one intent per origin, then the entries' copies of it.
        by_origin: dict[tuple[str | None, str, str], tuple[PendingSend, tuple[bytes, bytes]]] = {}
        for summary, pair in zip(rows, pairs, strict=True):
            try:
                if requeue:
                    where = (summary.origin_exchange, summary.routing_key, summary.origin_queue)
                    known = by_origin.get(where)
                    if known is None:
                        first = self._pending(summary, pair[1], None, at)
                        by_origin[where] = known = (first, intent_parts(first))
                        intents.append(first)
                    else:
                        intents.append(SameIntent(known[0], pair[1], known[1]))
                else:
                    intents.append(self._pending(summary, pair[1], None, at))
            except ValueError as exc:
                outcomes.append(failed_outcome(summary, f"cannot be published: {exc}"))
                continue
            kept.append(summary)
            kept_pairs.append(pair)
        return intents, kept, kept_pairs

    def _lost(self, summary: EntrySummary, claim: ClaimResult) -> ActionOutcome:
        if claim.missing:
            return failed_outcome(summary, "no such entry (deleted meanwhile)")
        return skipped_outcome(summary, held_text(claim.state, claim.operator, claim.action))

    def _done_detail(self, item: _Claimed) -> str:
        summary = item.summary
        if self.params.action is not Action.REQUEUE:
            return done_detail(self.params, summary, cast(PendingSend, item.pending))
        # A requeue's detail depends on where the entry goes only: one text per origin.
        where = (summary.origin_exchange, summary.routing_key, summary.origin_queue)
        text = self._requeued_to.get(where)
        if text is None:
            text = done_detail(self.params, summary, cast(PendingSend, item.pending))
            self._requeued_to[where] = text
        return text

    # ------------------------------------------------------------------ audit

    async def audit(self, target: ActionTarget, report: ActionReport, tally: Tally) -> None:
        """One audit record per DLQ of what the run did (:func:`.run_audit.audit_run`)."""
        await audit_run(self, target, report, tally)
