"""What an action on parked entries is asked to do, and what it did: plain data.

- :class:`ActionPlan` describes an action before it runs (how many entries,
  where to, how many will be skipped); the confirmation dialog and the CLI's
  ``--dry-run`` both print :meth:`ActionPlan.describe`.
- :class:`ActionRequest` is what the operator confirmed (reason, delay,
  edited body).
- :class:`ActionOutcome` / :class:`ActionReport` say what happened to each
  entry, for the summary dialog, the CLI's output and its exit code.

Qt-free and I/O-free: the actions service, the CLI and the views share it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

from services.masking.json import mask_identifier, mask_sensitive_text
from services.time_range import format_local_time
from services.workbench.actions.names import Action
from services.workbench.model import EntryState, EntrySummary

OutcomeStatus = Literal["done", "skipped", "failed"]

DONE: Final = "done"
SKIPPED: Final = "skipped"
FAILED: Final = "failed"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 failed payment`` / ``1,234 failed payments``."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count:,} {word}"


def format_delay(seconds: int) -> str:
    """A delay for people: ``30 s``, ``1 min``, ``1 min 30 s``, ``1 h``, ``1 h 15 min``."""
    if seconds <= 0:
        return "no delay"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if hours:
        parts.append(f"{hours:,} h")
    if minutes:
        parts.append(f"{minutes} min")
    if secs:
        parts.append(f"{secs} s")
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """What the operator confirmed.

    ``reason`` is the operator's note for the audit trail (required for
    ``cancel``); ``delay_s`` the retry delay in seconds, 0 for none;
    ``edited_body`` the new body of a retried entry (the real, unmasked JSON),
    None when the body is sent unchanged.
    """

    action: Action
    reason: str = ""
    delay_s: int = 0
    edited_body: bytes | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", Action(self.action))


@dataclass(frozen=True, slots=True)
class ActionPlan:
    """An action before it runs: how many entries go where, and how many are skipped.

    ``targets`` pairs each target queue with how many entries go there (for
    requeue and retry: the queue each entry was dead-lettered from), largest
    first. ``skipped`` entries are not parked (already acted on, or being
    acted on) and will be left alone. ``payment_id`` names the payment when
    there is exactly one. ``cancel_event`` says where a cancel publishes its
    ``payment.cancelled`` event (``exchange 'payments' with routing key
    'payment.cancelled'``), None when no event is configured.
    """

    action: Action
    targets: tuple[tuple[str, int], ...]
    skipped: int = 0
    payment_id: str | None = None
    cancel_event: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", Action(self.action))

    @property
    def total(self) -> int:
        """How many entries the action will act on."""
        return sum(count for _, count in self.targets)

    @classmethod
    def from_summaries(
        cls,
        action: Action,
        summaries: Iterable[EntrySummary],
        *,
        cancel_event: str | None = None,
    ) -> ActionPlan:
        """The plan for these rows: parked ones grouped by origin queue, the rest skipped."""
        counts: Counter[str] = Counter()
        skipped = 0
        last: EntrySummary | None = None
        for summary in summaries:
            if summary.state is EntryState.PARKED:
                counts[summary.origin_queue] += 1
                last = summary
            else:
                skipped += 1
        targets = tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
        payment_id = last.payment_id if last is not None and sum(counts.values()) == 1 else None
        return cls(action, targets, skipped, payment_id, cancel_event)

    def describe(self, delay_s: int = 0, max_groups: int = 4) -> str:
        """One sentence saying exactly what will happen.

        ``Requeue 1,234 failed payments to payments.process``;
        ``Requeue 1,234 failed payments: 812 → payments.process, 422 →
        payments.settlement``; ``Retry payment pay_123 through payments.process
        after 5 min``; ``Cancel 3 failed payments``.

        Card data masked piece by piece: the payment id as an identifier (shown whole
        when it is a token), the queue names as free text.
        """
        total = self.total
        subject = (
            f"payment {mask_identifier(self.payment_id)}"
            if total == 1 and self.payment_id
            else plural(total, "failed payment")
        )
        verb = self.action.label
        if self.action is Action.CANCEL or not self.targets:
            return f"{verb} {subject}"
        retry = self.action is Action.RETRY
        preposition = "through" if retry else "to"
        when = f" after {format_delay(delay_s)}" if retry and delay_s > 0 else ""
        if len(self.targets) == 1:
            queue = mask_sensitive_text(self.targets[0][0]) or "(unknown queue)"
            return f"{verb} {subject} {preposition} {queue}{when}"
        shown = [
            f"{count:,} → {mask_sensitive_text(queue) or '(unknown queue)'}"
            for queue, count in self.targets
        ]
        if len(shown) > max_groups:
            rest = self.targets[max_groups - 1 :]
            shown = shown[: max_groups - 1]
            shown.append(
                f"{sum(c for _, c in rest):,} → {len(rest)} other queues",
            )
        return f"{verb} {subject}{when}: {', '.join(shown)}"

    def consequence(self) -> str:
        """What the action does to each entry, in a sentence."""
        if self.action is Action.REQUEUE:
            return (
                "Each message goes back unchanged to the queue it was dead-lettered from, "
                "and nowhere else."
            )
        if self.action is Action.RETRY:
            return (
                "Each message is sent again to the queue it was dead-lettered from, "
                "with its attempt counter raised."
            )
        event = (
            f"A payment.cancelled event is published to {self.cancel_event}."
            if self.cancel_event
            else "No cancel event is configured, so nothing is published."
        )
        return (
            "The payments are marked Cancelled and stay listed in the workbench (they can no"
            f" longer be requeued or retried). {event}"
        )

    def skipped_line(self) -> str:
        """``12 will be skipped because they are not parked`` ("" when none)."""
        if self.skipped <= 0:
            return ""
        verb = "it is" if self.skipped == 1 else "they are"
        return f"{self.skipped:,} will be skipped because {verb} not parked"


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What an action did to one entry.

    ``status`` is ``done``, ``skipped`` (already acted on, by whom in
    ``detail``) or ``failed`` (unroutable, nacked, ... in ``detail``; the entry
    stays parked). ``ok`` is True exactly when the status is ``done``.
    """

    entry_id: str
    payment_id: str | None
    ok: bool
    status: OutcomeStatus
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ActionReport:
    """What one action did, entry by entry.

    ``target`` names where it went (a queue, "origin queues", the cancel
    event's exchange). ``started_ms``/``finished_ms`` are epoch milliseconds.
    ``requested`` is how many entries were asked for (None: as many as there
    are outcomes); when the operator stopped the action, the ones not reached
    have no outcome and ``stopped`` is True. ``delay_s`` is a retry's wait in
    its delay queue (0: none).

    What happened, in words for the operator (the CLI and the summary dialog
    print these): :meth:`headline` counts the outcomes, :meth:`outcome_lines`
    says per outcome what happened (``1,200 requeued to payments.capture``,
    ``3 skipped: already requeued by alice``, ``2 failed: ...; they stay
    parked``) and :meth:`caption` sums up the entries not done.
    """

    action: Action
    target: str
    outcomes: tuple[ActionOutcome, ...]
    started_ms: int
    finished_ms: int
    requested: int | None = None
    stopped: bool = False
    delay_s: int = 0
    job_id: str = ""
    """The job the action ran as ("" for a dry run): ``payops dlq job ID``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", Action(self.action))

    def count(self, status: OutcomeStatus) -> int:
        """How many outcomes have this status."""
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def succeeded(self) -> int:
        return self.count("done")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def not_attempted(self) -> int:
        """Entries asked for that the action never reached (it was stopped)."""
        if self.requested is None:
            return 0
        return max(self.requested - len(self.outcomes), 0)

    @property
    def duration_s(self) -> float:
        return max(self.finished_ms - self.started_ms, 0) / 1000

    @property
    def problems(self) -> tuple[ActionOutcome, ...]:
        """The outcomes that did not succeed, failures first."""
        failed = [o for o in self.outcomes if o.status == "failed"]
        others = [o for o in self.outcomes if o.status not in ("done", "failed")]
        return (*failed, *others)

    def reasons(self, status: OutcomeStatus) -> list[tuple[str, int]]:
        """The distinct details of one status with their counts, most frequent first."""
        counts = Counter(o.detail or "no detail" for o in self.outcomes if o.status == status)
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))

    def headline(self) -> str:
        """``Requeue: 1,230 requeued, 2 skipped, 2 failed`` (what became of the payments
        afterwards, their outcomes, is the job's to say: "succeeded" is kept for that)."""
        parts = [f"{self.succeeded:,} {self.action.past}"]
        if self.skipped:
            parts.append(f"{self.skipped:,} skipped")
        if self.failed:
            parts.append(f"{self.failed:,} failed")
        if self.not_attempted:
            parts.append(f"{self.not_attempted:,} not attempted")
        return f"{self.action.label}: {', '.join(parts)}"

    # ------------------------------------------------------------------ words

    def done_line(self) -> str:
        """What the entries that went through did: ``1,200 requeued to payments.capture``,
        ``40 retried through payments.capture: in the 30 s delay queue until 14:05:31
        CET``, ``3 cancelled; payment.cancelled published to exchange 'payments' ...``."""
        done = self.succeeded
        if self.action is Action.REQUEUE:
            return f"{done:,} requeued to {self.target or 'their origin queues'}"
        if self.action is Action.RETRY:
            line = f"{done:,} retried through {self.target or 'their origin queues'}"
            if self.delay_s > 0 and done:
                due = format_local_time(self.finished_ms / 1000 + self.delay_s, date=False)
                line += f": in the {format_delay(self.delay_s)} delay queue until {due}"
            return line
        if not self.target or self.target.startswith("no cancel event"):
            return f"{done:,} cancelled (no cancel event is configured, none was published)"
        return f"{done:,} cancelled; payment.cancelled published to {self.target}"

    def outcome_lines(self) -> list[str]:
        """One line per kind of outcome, in words: what went through, then each reason
        entries were skipped (left as they are), failed, or were not attempted."""
        if not self.outcomes and not self.not_attempted:
            return [f"nothing to {self.action}: no entry matched"]
        lines = [self.done_line()] if self.succeeded else []
        for detail, count in self.reasons("skipped"):
            lines.append(f"{count:,} skipped: {detail}")
        for detail, count in self.reasons("failed"):
            lines.append(f"{count:,} failed: {detail}{_failed_fate(detail, count)}")
        if self.not_attempted:
            verb = "it stays" if self.not_attempted == 1 else "they stay"
            lines.append(
                f"{self.not_attempted:,} not attempted: the action was stopped; {verb} parked"
            )
        return lines

    def caption(self) -> str:
        """One sentence over the entries not done (or what was done when all went through):
        skipped entries are left as they are, failed ones stay parked."""
        problems = len(self.problems) + self.not_attempted
        if not problems:
            return self.done_line() + "."
        parts = []
        fates: Counter[str] = Counter()
        for detail, count in self.reasons("failed"):
            fates[(_failed_fate(detail, count) and "parked") or detail.split(" (")[0]] += count
        for fate, count in fates.items():
            if fate == "parked":
                parts.append(f"{count:,} failed and {'stays' if count == 1 else 'stay'} parked")
            elif fate.startswith("in doubt"):
                parts.append(f"{count:,} in doubt, claimed until resolved")
            elif fate.startswith("unsettled"):
                parts.append(f"{count:,} unsettled, claimed until `payops dlq recover`")
            else:
                parts.append(f"{count:,} failed: {fate}")
        if self.skipped:
            was = "it was" if self.skipped == 1 else "they were"
            parts.append(f"{self.skipped:,} skipped, left as {was}")
        if self.not_attempted:
            parts.append(f"{self.not_attempted:,} not attempted, still parked")
        return f"Not done ({problems:,}): {'; '.join(parts)}"


def _they(count: int) -> str:
    return "it" if count == 1 else "they"


def _failed_fate(detail: str, count: int) -> str:
    """Where failed entries are now: parked, except an entry in doubt (claimed) or none."""
    if detail.startswith(("in doubt", "no such entry", "unsettled")):
        return ""
    return f"; {_they(count)} {'stays' if count == 1 else 'stay'} parked"


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


# --------------------------------------------------------------------------- outcome texts


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


def in_doubt_text(detail: str, target: str) -> str:
    """A publish with no answer from the broker (``detail``): the message may be in ``target``."""
    return (
        f"in doubt: {detail}; the message may already be in {target}."
        " The entry stays claimed until resolved: see `payops dlq resolve --all-in-doubt"
        " --dry-run`, then `--republish` (or one entry: `payops dlq resolve ID ...`)"
    )


def where_text(summary: EntrySummary) -> str:
    """Where an entry's requeue or retry went: ``'queue'``, or the original exchange and
    routing key of a dead letter that names no queue."""
    origin = summary.origin
    if origin is None or origin.queue is not None:
        return f"'{summary.origin_queue}'"
    return origin.describe()


def failed_outcome(summary: EntrySummary, detail: str) -> ActionOutcome:
    return ActionOutcome(summary.entry_id, summary.payment_id, False, "failed", detail)


def skipped_outcome(summary: EntrySummary, detail: str) -> ActionOutcome:
    return ActionOutcome(summary.entry_id, summary.payment_id, False, "skipped", detail)


def done_outcome(summary: EntrySummary, detail: str) -> ActionOutcome:
    return ActionOutcome(summary.entry_id, summary.payment_id, True, "done", detail)
