"""The words of an action's report: what happened, per outcome (no broker needed)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest

from services.workbench.actions.report import ActionOutcome, ActionReport
from tests.helpers.zones import local_zone

T0 = int(datetime.datetime(2026, 12, 3, 13, 5, 1, tzinfo=datetime.UTC).timestamp() * 1000)


@pytest.fixture(autouse=True)
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with local_zone(monkeypatch, "Europe/Berlin"):
        yield


def _outcomes(status: str, count: int, detail: str) -> list[ActionOutcome]:
    return [
        ActionOutcome(f"{status}{i}", f"pay_{i}", status == "done", status, detail)  # type: ignore[arg-type]
        for i in range(count)
    ]


def _report(
    action: str, target: str, *groups: tuple[str, int, str], **extra: object
) -> ActionReport:
    outcomes = [o for status, count, detail in groups for o in _outcomes(status, count, detail)]
    return ActionReport(action, target, tuple(outcomes), T0 - 500, T0, **extra)  # type: ignore[arg-type]


def test_a_requeue_that_all_went_through_says_where() -> None:
    report = _report(
        "requeue", "payments.capture", ("done", 1200, "requeued to 'payments.capture'")
    )
    assert report.outcome_lines() == ["1,200 requeued to payments.capture"]
    assert report.caption() == "1,200 requeued to payments.capture."
    assert "went through" not in report.caption()


def test_a_delayed_retry_says_it_waits_in_the_delay_queue_until_when() -> None:
    report = _report(
        "retry", "payments.capture", ("done", 40, "retried through 'payments.capture'"), delay_s=30
    )
    assert report.outcome_lines() == [
        "40 retried through payments.capture: in the 30 s delay queue until 14:05:31 CET"
    ]
    assert report.caption().endswith("until 14:05:31 CET.")


def test_a_cancel_says_cancelled_and_where_the_event_went() -> None:
    report = _report("cancel", "exchange 'payments.events' with routing key 'payment.cancelled'",
                     ("done", 3, "cancelled: duplicate"))  # fmt: skip
    assert report.caption() == (
        "3 cancelled; payment.cancelled published to exchange 'payments.events'"
        " with routing key 'payment.cancelled'."
    )
    quiet = _report("cancel", "no cancel event", ("done", 1, "cancelled: x"))
    assert quiet.outcome_lines() == [
        "1 cancelled (no cancel event is configured, none was published)"
    ]


def test_skipped_entries_are_not_called_failed_or_parked() -> None:
    """Issue 9: "the failed ones stay parked" was said of entries skipped because they
    were already requeued."""
    report = _report(
        "requeue",
        "payments.capture",
        ("done", 1200, "requeued"),
        ("skipped", 3, "already requeued by alice"),
    )
    assert report.outcome_lines() == [
        "1,200 requeued to payments.capture",
        "3 skipped: already requeued by alice",
    ]
    assert report.caption() == "Not done (3): 3 skipped, left as they were"
    assert "parked" not in report.caption() and "failed" not in report.caption()


def test_failures_say_why_and_where_the_entries_are() -> None:
    report = _report(
        "requeue",
        "payments.capture",
        ("done", 5, "requeued"),
        ("skipped", 1, "already cancelled by bob"),
        ("failed", 2, "unroutable: no queue 'payments.capture'"),
        ("failed", 1, "in doubt: no confirm; the message may already be in payments.capture"),
        ("failed", 1, "no such entry (deleted meanwhile)"),
        requested=12,
    )
    assert report.outcome_lines() == [
        "5 requeued to payments.capture",
        "1 skipped: already cancelled by bob",
        "2 failed: unroutable: no queue 'payments.capture'; they stay parked",
        "1 failed: in doubt: no confirm; the message may already be in payments.capture",
        "1 failed: no such entry (deleted meanwhile)",
        "2 not attempted: the action was stopped; they stay parked",
    ]
    assert report.caption() == (
        "Not done (7): 2 failed and stay parked; 1 in doubt, claimed until resolved;"
        " 1 failed: no such entry; 1 skipped, left as it was; 2 not attempted, still parked"
    )
