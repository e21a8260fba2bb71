"""Alert rules: their checks, the defaults and their profile tables."""

from __future__ import annotations

import dataclasses

import pytest

from services.alerts.rules import (
    RULE_KINDS,
    DeadLetterRateRule,
    FailureRateRule,
    FlowStoppedRule,
    LatencyRule,
    QueueDepthRule,
    default_rules,
    rule_from_table,
)
from services.flow.alert_engine import AlertEngine

QUEUE = "payments.process"


def test_rules_check_their_values() -> None:
    with pytest.raises(ValueError):
        QueueDepthRule(QUEUE)  # neither a max nor growth
    with pytest.raises(ValueError):
        QueueDepthRule(QUEUE, growing_for_s=90)  # not whole steps
    with pytest.raises(ValueError):
        FailureRateRule(threshold_pct=150)
    with pytest.raises(ValueError):
        LatencyRule(severity="fatal")  # type: ignore[arg-type]
    assert QueueDepthRule(QUEUE, growing_for_s=90, step_s=30).needs_s == 120


def test_default_rules() -> None:
    rules = default_rules(
        ("failed", "declined"), ("payments.dlq",), (QUEUE, "payments.dlq", "refunds")
    )
    by_name = {rule.name: rule for rule in rules}
    assert set(by_name) == {
        "failure_rate",
        "dead_letter_rate",
        "latency_p99",
        "flow_stopped",
        "queue_depth:payments.dlq",
        f"queue_depth:{QUEUE}",
        "queue_depth:refunds",
    }
    assert by_name["failure_rate"] == FailureRateRule(
        threshold_pct=5.0, window_s=60, min_events=20, failure_statuses=("failed", "declined")
    )
    assert by_name["dead_letter_rate"] == DeadLetterRateRule(per_minute=100)
    assert by_name["latency_p99"] == LatencyRule(p99_ms=2000, window_s=60)
    assert by_name["flow_stopped"] == FlowStoppedRule(silent_s=30)
    assert by_name["queue_depth:payments.dlq"] == QueueDepthRule(
        "payments.dlq", max_depth=1_000, growing_for_s=300
    )
    assert by_name[f"queue_depth:{QUEUE}"] == QueueDepthRule(
        QUEUE, max_depth=10_000, growing_for_s=300
    )
    assert all(rule.resolve_after_s == 30 for rule in rules)
    AlertEngine(rules)  # names are unique


def test_rules_map_one_to_one_onto_profile_tables() -> None:
    for rule in default_rules(("failed",), ("dlq",), ("work",)):
        kind = next(k for k, cls in RULE_KINDS.items() if isinstance(rule, cls))
        table = dataclasses.asdict(rule)
        table["failure_statuses"] = list(table.get("failure_statuses", ()))
        if not isinstance(rule, FailureRateRule):
            del table["failure_statuses"]
        assert rule_from_table(kind, table) == rule
    assert rule_from_table("queue_depth", {"queue": "q", "max_depth": 5}) == QueueDepthRule(
        "q", max_depth=5
    )
    with pytest.raises(ValueError, match="unknown keys"):
        rule_from_table("latency", {"p99": 5})
    with pytest.raises(ValueError, match="unknown alert rule kind"):
        rule_from_table("cpu", {})
    with pytest.raises(ValueError, match="queue_depth"):
        rule_from_table("queue_depth", {"max_depth": 5})
