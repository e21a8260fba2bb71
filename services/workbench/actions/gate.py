"""The replay gate: hold back a requeue or retry that could charge a payment twice.

Before an entry is sent back, :class:`ReplayGate` asks:

- has a final event (one of ``success_statuses``, or ``cancelled``) of its payment been
  seen on the flow since it was dead-lettered? (``captured at 14:05:31 CEST by the flow``)
- is another entry of the same payment being acted on, or already replayed with its
  outcome pending or settled other than ``failed again``? (``entry 01a2… for this
  payment was requeued by alice at 14:03:10 CEST, outcome pending``)
- is another entry of the same payment earlier in this very action?

and, for what passes, takes the payment's replay claim ``P:replay:<payment id>``
(``SET NX``, the entry id, ``CLAIM_TTL_MS``), so two operators replaying two entries of
one payment at the same moment send one: the loser is held back naming the winner.
An entry held back is reported skipped with ``held back: <why>``. ``force`` (with a
note, audited) skips the gate; a dry run asks every question but takes no claim.

A bulk action at full speed has the gate check up to ``ahead`` windows before the run
asks for them, while it waits for the broker's confirms: after a burst of confirms the
run then claims and sends its next windows without waiting three round trips for each.
A window that waited longer than :data:`RECHECK_AFTER_S` (a paused job) is checked
again before it is handed on: its claims would otherwise have expired.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, cast

import redis.asyncio as aioredis
from redis.crc import key_slot

from services.links.redis_client import execute_scripts, through_failover
from services.masking.json import mask_identifier
from services.outcomes.model import CANCELLED_STATUS, Outcome
from services.stopping import stop_tasks
from services.time_range import format_local_time
from services.workbench import redis_layout as layout
from services.workbench.actions.jobs import HELD_PREFIX
from services.workbench.actions.names import Action
from services.workbench.actions.report import ActionOutcome, skipped_outcome
from services.workbench.actions.windows import Tally
from services.workbench.model import EntryState, EntrySummary
from services.workbench.store import ParkingStore

FinalLookup = Callable[[list[str], tuple[str, ...]], Awaitable[dict[str, tuple[str, int]]]]
"""``lookup(payment ids, statuses)`` -> payment id -> (status, at ms) of its latest event
with one of ``statuses`` (the flow's payment record: ``PaymentEventStore.latest_with``)."""

CLAIM_TTL_MS: Final = 120_000
"""How long a payment's replay claim holds: past the action's send, the entry's pending
outcome (read from the store) holds the payment."""

_CLAIM: Final = """
local cur = redis.call('GET', KEYS[1])
if not cur or cur == ARGV[1] or cur == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return false
end
return cur
"""

_CLAIM_MANY: Final = """
local out = {}
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[i + 1], 'NX', 'PX', ARGV[1]) then
    out[i] = false
  else
    local cur = redis.call('GET', KEYS[i])
    if not cur or cur == ARGV[i + 1] then
      redis.call('SET', KEYS[i], ARGV[i + 1], 'PX', ARGV[1])
      out[i] = false
    else
      out[i] = cur
    end
  end
end
return out
"""
"""Take the replay claims of several payments (KEYS, all in one hash slot); ARGV: the
time to live, then each payment's entry id. Each reply: false when taken, else the
entry holding it. A free claim (the common case) costs one ``SET NX``; one already held
is read, and taken again (its time to live renewed) when it is this entry's."""

CLAIMS_PER_CALL: Final = 500

RECHECK_AFTER_S: Final = CLAIM_TTL_MS / 1000 / 2
"""A window checked ahead that waited this long is checked again before it is handed on
(its claims taken again, or held back by what changed meanwhile)."""


def _when(ms: int) -> str:
    return format_local_time(ms / 1000, date=False)


class ReplayGate:
    """Holds back entries whose payment is finished or already being replayed."""

    def __init__(
        self,
        store: ParkingStore,
        success_statuses: Sequence[str],
        finals: FinalLookup | None,
        *,
        dry_run: bool = False,
        ahead: int = 1,
    ) -> None:
        self.store = store
        self.redis: aioredis.Redis = store.redis
        self.final_statuses = (*success_statuses, CANCELLED_STATUS)
        self.finals = finals
        self.dry_run = dry_run
        self._claim = self.redis.register_script(_CLAIM)
        self._claim_many = self.redis.register_script(_CLAIM_MANY)
        self._dlqs: list[str] | None = None
        self._seen: dict[str, str] = {}
        """payment -> the entry of it this action sends."""
        self.ahead = max(1, ahead)
        """Windows checked before they are asked for (1: each when it is asked for)."""
        self._pump: asyncio.Task[None] | None = None
        self._closing = False

    def claim_key(self, payment: str) -> str:
        return f"{self.store.prefix}:replay:{payment}"

    async def filter(
        self, windows: AsyncIterator[list[EntrySummary]], tally: Tally
    ) -> AsyncIterator[list[EntrySummary]]:
        """The windows without the entries held back (reported into ``tally``), up to
        :attr:`ahead` of them checked before they are asked for."""
        if self.ahead <= 1:
            async for window in windows:
                passed = await self._checked(window, tally)
                if passed:
                    yield passed
            return
        ready: asyncio.Queue[tuple[float, list[EntrySummary]] | BaseException | None] = (
            asyncio.Queue(self.ahead)
        )
        self._pump = asyncio.create_task(self._check_ahead(windows, tally, ready))
        try:
            while (item := await ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                checked_at, passed = item
                if time.monotonic() - checked_at > RECHECK_AFTER_S:
                    passed = await self._checked(passed, tally)
                if passed:
                    yield passed
        finally:
            await self.close()

    async def _check_ahead(
        self,
        windows: AsyncIterator[list[EntrySummary]],
        tally: Tally,
        ready: asyncio.Queue[tuple[float, list[EntrySummary]] | BaseException | None],
    ) -> None:
        """Check ``windows`` into ``ready`` (at most :attr:`ahead` waiting); then None, or
        the error that stopped it."""
        end: BaseException | None = None
        try:
            async for window in windows:
                if self._closing:
                    return
                passed = await self._checked(window, tally)
                if passed:
                    await ready.put((time.monotonic(), passed))
        except Exception as exc:  # handed to the reader, raised there
            end = exc
        await ready.put(end)

    async def close(self) -> None:
        """Stop checking ahead (the action ended or stopped): no claim is taken after."""
        self._closing = True
        pump, self._pump = self._pump, None
        if pump is not None:  # stopped, not only cancelled: a cancel mid-command can be lost
            await stop_tasks([pump], "the replay gate's checks ahead")

    async def _checked(self, window: Sequence[EntrySummary], tally: Tally) -> list[EntrySummary]:
        # Reads and repeatable claims (taken again when already this entry's), with the
        # outcomes reported at the end: safe to run again after a failover.
        return await through_failover(
            functools.partial(self.check, window, tally),
            what="the action's replay check",
            client=self.redis,
        )

    async def check(self, window: Sequence[EntrySummary], tally: Tally) -> list[EntrySummary]:
        """What of ``window`` may be sent; the others get a ``held back`` outcome."""
        # Each payment id masked once per window (the index's key, the claim's key, the
        # action's own bookkeeping all use it as shown).
        shown = {p: mask_identifier(p) for s in window if (p := s.payment_id)}
        finals = (
            await self.finals(sorted(shown), self.final_statuses)
            if self.finals is not None and shown
            else {}
        )
        others = await self._others(window, shown)
        held: dict[str, str] = {}
        claiming: list[EntrySummary] = []
        for summary in window:
            why = self._why(summary, shown, finals, others)
            if why:
                held[summary.entry_id] = why
            elif summary.payment_id:
                self._seen[shown[summary.payment_id]] = summary.entry_id
                claiming.append(summary)
        if claiming and not self.dry_run:
            holders = await self._take_claims(claiming, shown)
            for summary, holder in zip(claiming, holders, strict=True):
                if not holder:
                    continue
                why = await self._contested(
                    summary, layout.text(holder) or "?", others.get(summary.entry_id, [])
                )
                if why:
                    held[summary.entry_id] = why
                    self._seen.pop(shown[cast(str, summary.payment_id)], None)
        passed: list[EntrySummary] = []
        for summary in window:
            why = held.get(summary.entry_id, "")
            if why:
                tally.outcomes.append(skipped_outcome(summary, HELD_PREFIX + why))
            else:
                passed.append(summary)
        return passed

    async def _take_claims(
        self, claiming: Sequence[EntrySummary], shown: Mapping[str, str]
    ) -> list[Any]:
        """Take the payments' replay claims: one script call per window (per hash slot
        and at most :data:`CLAIMS_PER_CALL` on a cluster), pipelined. The holders, in
        order (None where taken). ``shown``: each payment id as shown."""
        prefix = f"{self.store.prefix}:replay:"
        keys = [prefix + shown[cast(str, s.payment_id)] for s in claiming]
        groups: dict[int, list[int]] = {}
        if not isinstance(self.redis, aioredis.RedisCluster):
            groups[0] = list(range(len(keys)))
        else:
            for index, key in enumerate(keys):
                groups.setdefault(key_slot(key.encode()), []).append(index)
        calls = [
            indexes[i : i + CLAIMS_PER_CALL]
            for indexes in groups.values()
            for i in range(0, len(indexes), CLAIMS_PER_CALL)
        ]

        async def build(pipe: Any) -> None:
            for call in calls:
                await self._claim_many(
                    keys=[keys[i] for i in call],
                    args=[CLAIM_TTL_MS, *(claiming[i].entry_id for i in call)],
                    client=pipe,
                )

        replies = await execute_scripts(self.redis, build, [self._claim_many])
        holders: list[Any] = [None] * len(claiming)
        for call, reply in zip(calls, replies, strict=True):
            for index, holder in zip(call, reply, strict=True):
                holders[index] = holder
        return holders

    def _why(
        self,
        summary: EntrySummary,
        shown: Mapping[str, str],
        finals: dict[str, tuple[str, int]],
        others: dict[str, list[dict[str, Any]]],
    ) -> str:
        if not summary.payment_id:
            return ""
        final = finals.get(summary.payment_id)
        if final is not None and final[1] >= summary.dead_lettered_at_ms:
            return f"{final[0]} at {_when(final[1])} by the flow"
        earlier = self._seen.get(shown[summary.payment_id])
        if earlier is not None and earlier != summary.entry_id:
            return f"entry {earlier} of this payment is sent by this same action"
        for other in others.get(summary.entry_id, ()):
            text = _holding(other)
            if text:
                return text
        return ""

    async def _others(
        self, window: Sequence[EntrySummary], shown: Mapping[str, str]
    ) -> dict[str, list[dict[str, Any]]]:
        """Each entry's other entries of the same payment: their state, operator, action,
        outcome and when they changed (one pipeline). ``shown``: each payment id as shown."""
        if not shown:
            return {}
        if self._dlqs is None:  # once per action: a DLQ appearing meanwhile holds none
            self._dlqs = await self.store.known_dlqs()
        asked = list(dict.fromkeys(shown.values()))
        known = await self.store.entries_for_shown_payments(asked, self._dlqs)
        wanted: list[tuple[str, str, str]] = []
        for summary in window:
            payment = summary.payment_id
            pairs = known.get(shown[payment]) if payment else None
            if not pairs:
                continue
            for dlq, entry_id in pairs:
                if entry_id != summary.entry_id:
                    wanted.append((summary.entry_id, dlq, entry_id))
        if not wanted:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for _, dlq, entry_id in wanted:
            pipe.hmget(
                self.store.entry_key(dlq, entry_id),
                "state",
                "operator",
                "action",
                "outcome",
                "updated_at",
            )
        found: dict[str, list[dict[str, Any]]] = {}
        for (of, _, entry_id), reply in zip(wanted, await pipe.execute(), strict=True):
            state, operator, action, outcome, updated = reply
            found.setdefault(of, []).append(
                {
                    "entry_id": entry_id,
                    "state": layout.state_of(state),
                    "operator": layout.text(operator) or "",
                    "action": layout.text(action) or "",
                    "outcome": Outcome.named(outcome),
                    "updated": layout.integer(updated),
                }
            )
        return found

    async def _contested(
        self, summary: EntrySummary, other: str, others: list[dict[str, Any]]
    ) -> str:
        """Another entry holds the payment's replay claim: why this one is held back (""
        when that entry failed again - its replay is over - and the claim is taken over)."""
        known = next((o for o in others if o["entry_id"] == other), None)
        # Failed again is final. (Back to parked is not: it may be about to be claimed by
        # the action holding its claim; a send that failed gives its claim up at the end
        # of its action.)
        if known is not None and known["outcome"] is Outcome.FAILED_AGAIN:
            key = self.claim_key(mask_identifier(cast(str, summary.payment_id)))
            if not await self._claim(keys=[key], args=[summary.entry_id, CLAIM_TTL_MS, other]):
                return ""
        return f"entry {other} of this payment is being replayed by another action right now"

    async def release_unsent(self, outcomes: Sequence[ActionOutcome]) -> None:
        """Give up the claims of the entries that passed but were not sent after all
        (failed, or never reached: checked ahead of a stop, or while a stopped run counted
        the rest): each claim the entry still held when read is dropped, one GET and one
        DEL pipeline per :data:`CLAIMS_PER_CALL` payments (a stopped bulk action may have
        checked tens of thousands)."""
        await self.close()
        if self.dry_run:
            return
        sent = {o.entry_id for o in outcomes if o.status == "done"}
        unsent = [(p, e) for p, e in self._seen.items() if e not in sent]
        for at in range(0, len(unsent), CLAIMS_PER_CALL):
            chunk = unsent[at : at + CLAIMS_PER_CALL]
            keys = [self.claim_key(payment) for payment, _ in chunk]
            reads = self.redis.pipeline(transaction=False)
            for key in keys:
                reads.get(key)
            holders = cast(list[bytes | None], await reads.execute())
            ours = [
                key
                for key, (_, entry_id), holder in zip(keys, chunk, holders, strict=True)
                if holder is not None and holder.decode() == entry_id
            ]
            if ours:
                drops = self.redis.pipeline(transaction=False)
                for key in ours:
                    drops.delete(key)
                await drops.execute()


def _holding(other: dict[str, Any]) -> str:
    """Why another entry of the payment holds it back ("" when it does not)."""
    state: EntryState | None = other["state"]
    who = f" by {other['operator']}" if other["operator"] else ""
    when = f" at {_when(other['updated'])}" if other["updated"] else ""
    if state is EntryState.CLAIMED:
        known = Action.named(other["action"])
        doing = known.past if known else "acted on"
        return f"entry {other['entry_id']} of this payment is being {doing}{who}"
    if state not in (EntryState.REQUEUED, EntryState.RETRIED):
        return ""
    outcome: Outcome | None = other["outcome"]
    if outcome is Outcome.FAILED_AGAIN:
        return ""
    said = outcome.label if outcome is not None else "unknown"
    return f"entry {other['entry_id']} of this payment was {state.value}{who}{when}, outcome {said}"
