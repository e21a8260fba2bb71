"""The recovery side of :class:`~services.workbench.actions.service.ActionService`: find
actions interrupted by a crash, and settle the entries they left in doubt (see
:mod:`services.workbench.actions.recovery`). A mixin, so the service stays one object."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import cast

from services.config import Profile
from services.masking.json import mask_sensitive_text
from services.workbench.actions.jobs import JobState, JobStore, Pace, runner_token
from services.workbench.actions.ledger import ActionLedger, owner_is_dead, run_of
from services.workbench.actions.names import Action
from services.workbench.actions.publisher import ActionPublisher
from services.workbench.actions.recovery import (
    RESOLVE_HOWS,
    RecoveredEntry,
    RecoveryReport,
    ResolveHow,
    pending_target,
    recover,
    resolve,
    resolve_many,
)
from services.workbench.actions.report import ActionOutcome, ActionReport
from services.workbench.actions.sends import ActionParams
from services.workbench.model import EntryState, EntrySummary
from services.workbench.query import ActionTarget, Query
from services.workbench.store import ParkingStore

ProgressCallback = Callable[[int, int, int], None]
"""``progress(done, total, failed)``: entries settled so far (any outcome), how many
the action covers, and how many of the settled ones failed."""


class ActionRefused(ValueError):
    """The action was refused before it touched anything (read-only, bad input)."""


class RecoveryActions:
    """Recover and resolve (the service's attributes it needs are declared here)."""

    store: ParkingStore
    publisher: ActionPublisher
    ledger: ActionLedger
    operator: str
    host: str
    read_only: bool
    dlqs: tuple[str, ...]

    jobs: JobStore
    profile: Profile

    def refuse_if_read_only(self, what: str) -> None:
        raise NotImplementedError

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
        raise NotImplementedError

    async def _query_rows(self, query: Query) -> list[EntrySummary]:
        raise NotImplementedError

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
                    pending_target(raw, action_id),
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

    async def in_doubt(
        self, query: Query | None = None, *, inspect_only: bool = False
    ) -> tuple[RecoveryReport, list[RecoveredEntry]]:
        """Recovery's report (``inspect_only``: touching nothing, as read-only) and its
        in-doubt entries that ``query`` matches (its dlqs, filters; state ignored)."""
        dlqs = sorted(query.dlqs) if query is not None and query.dlqs else list(self.dlqs)
        if inspect_only or self.read_only:
            report = await self._inspect(dlqs)
        else:
            report = await recover(self.ledger, dlqs, operator=self.operator, host=self.host)
        found = list(report.in_doubt)
        if query is not None and found:
            claimed = replace(query, states=frozenset({EntryState.CLAIMED}))
            matching = {s.entry_id for s in await self._query_rows(claimed)}
            found = [f for f in found if f.entry_id in matching]
        return report, found

    async def resolve_many(
        self, found: Sequence[RecoveredEntry], how: ResolveHow
    ) -> list[ActionOutcome]:
        """Settle in-doubt entries (from :meth:`in_doubt`) in bulk, all the same way."""
        self.refuse_if_read_only("resolve")
        if how not in RESOLVE_HOWS:
            raise ActionRefused(f"resolve how must be one of {', '.join(RESOLVE_HOWS)}")
        return await resolve_many(
            self.ledger, self.publisher, found, how, operator=self.operator, host=self.host
        )

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

    async def resume_job(
        self,
        job_id: str,
        *,
        progress: ProgressCallback | None = None,
        cancel_event: asyncio.Event | None = None,
        note: str | None = None,
    ) -> ActionReport | None:
        """Resume a paused job; when its runner is gone (the process died), run the rest
        of its frozen selection here - after :meth:`recover`, so nothing is sent twice.
        None when its runner is alive and takes it from here.

        Who resumed it and why (``note``, masked) become the job's reason ("resumed by
        alice: issuer back"), and a run here carries them in its audit records too."""
        job = await self.jobs.get(job_id)
        if job is None:
            raise ActionRefused(f"no job {job_id}")
        if job.state.is_final:
            raise ActionRefused(f"job {job_id} is {job.state}: nothing to resume")
        self.refuse_if_read_only("resume")
        resumed = "resumed by " + self.operator
        if note and note.strip():
            resumed += ": " + mask_sensitive_text(" ".join(note.split()))
        reason = resumed
        await self.jobs.set_state(job_id, JobState.RUNNING, reason, only_from=(JobState.PAUSED,))
        token = runner_token()
        if not await self.jobs.claim_runner(job_id, token):
            return None  # its runner is alive and goes on
        await self.jobs.drop_runner(job_id, token)  # the run below takes it with its own
        await self.jobs.set_state(job_id, JobState.RUNNING, reason, only_from=(JobState.STOPPED,))
        await self.recover()
        action = Action(job.action)
        run_note = f"{job.note} ({resumed})" if job.note else resumed
        params = ActionParams(action, note=run_note, force=job.force)
        if action is Action.CANCEL:
            params = replace(
                params,
                reason=job.note.removeprefix("reason: "),
                cancel_exchange=self.profile.cancel_exchange,
                cancel_routing_key=self.profile.cancel_routing_key,
            )
        ids = [entry_id for _, entry_id in await self.jobs.selection(job_id)]
        target = ActionTarget.for_entries(ids, job.target)
        pace = job.pace if job.pace.paced else None
        return await self._run(
            params, target, False, progress, cancel_event, pace=pace, resume=job_id
        )
