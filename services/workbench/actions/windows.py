"""The rows an action covers, in windows: what is acted on, and the outcome of every row
that is not (skipped: not parked; failed: no origin queue, a refusal, a delay check).

:func:`action_windows` is what :class:`~services.workbench.actions.service.ActionService`
hands to its run (through the replay gate and the job's pace); :func:`rows_in_states`
resolves the most common target, "everything parked", without an index.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from services.workbench.actions.names import Action
from services.workbench.actions.report import (
    ActionOutcome,
    failed_outcome,
    held_text,
    skipped_outcome,
)
from services.workbench.actions.sends import ActionParams
from services.workbench.death_history import Origin
from services.workbench.model import EntryState, EntrySummary


@dataclass(slots=True)
class Tally:
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


DelayProblem = Callable[[Origin, int], Awaitable[str | None]]
"""Why a delayed retry through an origin cannot be set up (None: it can)."""

NO_ORIGIN = (
    "no origin queue: the message carries no x-death header (nor"
    " x-original-exchange and x-original-routingKey)"
)
_ACTIONABLE = (EntryState.PARKED, EntryState.CLAIMED)


async def action_windows(
    params: ActionParams,
    batches: AsyncIterator[tuple[list[EntrySummary], list[str]]],
    tally: Tally,
    *,
    window: int,
    refusal: str,
    delay_problem: DelayProblem,
) -> AsyncIterator[list[EntrySummary]]:
    """Windows of at most ``window`` entries to act on; every other row gets its outcome
    here (skipped: not parked; failed: no origin queue, or what ``refusal`` /
    ``delay_problem`` says). Each origin is looked at once (rows share a few)."""
    pending: list[EntrySummary] = []
    origins: dict[tuple[str | None, str, str], Origin | None] = {}
    replay = params.action is not Action.CANCEL
    dlq_of, outcomes = tally.dlq_of, tally.outcomes
    async for rows, missing in batches:
        tally.requested += len(rows) + len(missing)
        outcomes.extend(
            ActionOutcome(entry_id, None, False, "failed", "no such entry") for entry_id in missing
        )
        for summary in rows:
            dlq_of[summary.entry_id] = summary.dlq
            problem = refusal
            # A claimed row goes on to the claim, whose reply names the holder's action
            # ("being requeued by bob"); the row itself does not carry it.
            if summary.state not in _ACTIONABLE:
                outcomes.append(
                    skipped_outcome(summary, held_text(summary.state, summary.last_operator))
                )
                continue
            if replay:
                where = (summary.origin_exchange, summary.routing_key, summary.origin_queue)
                if where in origins:
                    origin = origins[where]
                else:
                    origin = origins[where] = summary.origin
                    if origin is not None:
                        tally.queues.add(origin.name)
                if origin is None:
                    problem = NO_ORIGIN
                elif params.delay_s and not problem:
                    problem = await delay_problem(origin, params.delay_s) or ""
            if problem:
                outcomes.append(failed_outcome(summary, problem))
                continue
            pending.append(summary)
            if len(pending) >= window:
                tally.seen.extend(pending)
                yield pending
                pending = []
    tally.resolved = True
    if pending:
        tally.seen.extend(pending)
        yield pending


def rows_in_states(
    batches: Iterable[Sequence[EntrySummary]], states: frozenset[EntryState]
) -> list[EntrySummary]:
    """The rows in ``states`` (all when empty) in the order an :class:`EntryIndex` of
    ``batches`` answers a query on states alone: newest dead-lettered first, ties
    later row first (the index's stable ascending order, reversed)."""
    by_id: dict[str, EntrySummary] = {}
    for batch in batches:
        for summary in batch:
            by_id[summary.entry_id] = summary
    rows = [s for s in by_id.values() if not states or s.state in states]
    rows.sort(key=_dead_lettered_at)  # stable: ties keep their row order
    rows.reverse()
    return rows


def _dead_lettered_at(summary: EntrySummary) -> int:
    return summary.dead_lettered_at_ms
