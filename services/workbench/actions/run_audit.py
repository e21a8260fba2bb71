"""The audit trail of one run of an action: its start, and one record per DLQ of what
it did (counts, the reasons of what was not done, the operator's note), masked."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Final

from redis.exceptions import RedisError

from services.masking.json import mask_sensitive_text
from services.workbench.actions.ledger import now_ms
from services.workbench.actions.report import ActionOutcome, ActionReport
from services.workbench.actions.windows import Tally
from services.workbench.model import AuditRecord
from services.workbench.query import ActionTarget

if TYPE_CHECKING:
    from services.workbench.actions.pipeline import ActionRun

log = logging.getLogger(__name__)

MAX_AUDIT_DETAIL: Final = 8000


async def audit_run(
    run: ActionRun, target: ActionTarget, report: ActionReport, tally: Tally
) -> None:
    """One audit record per DLQ of what the run did (``run_id`` when it ran at all)."""
    run_id = run.run_id if run.dlqs else ""
    by_dlq: dict[str, list[ActionOutcome]] = defaultdict(list)
    for outcome in report.outcomes:
        dlq = tally.dlq_of.get(outcome.entry_id)
        if dlq is not None:
            by_dlq[dlq].append(outcome)
    for dlq, items in by_dlq.items():
        counts = Counter(o.status for o in items)
        result = (
            f"{run.params.action.past} {counts['done']:,}, skipped {counts['skipped']:,},"
            f" failed {counts['failed']:,}"
        )
        if report.stopped:
            result += f", stopped by the operator ({report.not_attempted:,} not attempted)"
        reasons = Counter(
            f"{o.status}: {o.detail}" for o in items if o.status != "done" and o.detail
        )
        lines = [run.params.note] if run.params.note else []
        lines += [f"{count:,} × {text}" for text, count in reasons.most_common(20)]
        detail = mask_sensitive_text("\n".join(lines))[:MAX_AUDIT_DETAIL]
        try:
            record = audit_record(
                run,
                tuple(o.entry_id for o in items),
                f"{target.description} -> {report.target}",
                result,
                detail,
                action_id=run_id,
            )
            await run.store.append_audit(dlq, record)
        except RedisError as exc:
            log.error("cannot append the audit record of %s: %s", run.params.action, exc)


def audit_record(
    run: ActionRun,
    entry_ids: tuple[str, ...],
    target: str,
    result: str,
    detail: str,
    *,
    action_id: str | None = None,
) -> AuditRecord:
    """An audit record of this run (``target`` comes masked piece by piece: the
    target's description and the report's target; masking the joined text would
    mask an identifier in it as free text)."""
    return AuditRecord(
        ts=now_ms(),
        operator=run.operator,
        host=run.host,
        action=run.params.action,
        entry_ids=entry_ids,
        target=target,
        result=result,
        detail=detail,
        action_id=run.run_id if action_id is None else action_id,
    )
