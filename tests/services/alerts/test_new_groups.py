"""The ``new_failure_group`` alert needs a baseline: the groups of the ordinary traffic,
all seen within ``baseline_s`` of the first parking counted, are never "new"."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from services.alerts.log import AlertLog
from services.alerts.new_groups import NewFailureGroups
from services.alerts.rules import NewFailureGroupRule

pytestmark = pytest.mark.integration

T0 = 1_796_432_835.0


async def test_groups_of_the_ordinary_traffic_are_the_baseline_and_a_later_one_is_new(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    now = [T0]
    groups = NewFailureGroups(
        redis_client, prefix, NewFailureGroupRule(min_entries=5), 86400, clock=lambda: now[0]
    )
    # The demo's start: every group of its ordinary traffic reaches 5 within a minute.
    ordinary = ("rejected", "acquirer timeout after # ms on acq-#", "expired")
    for step in range(5):
        now[0] = T0 + 10 * step
        assert await groups.observe(dict.fromkeys(ordinary, 1), "payments.dlq") == []
    # Later: more of the same is not new; a group never seen before is.
    now[0] = T0 + 420
    assert await groups.observe({"rejected": 9}, "payments.dlq") == []
    events = await groups.observe({"acquirer outage: acq-# refused": 5}, "payments.dlq")
    assert [e.kind for e in events] == ["firing", "resolved"]
    assert "none in the last 7 min before" in events[0].message  # not "24 h": not seen so long
    recorded = await AlertLog(redis_client, prefix).read_range(newest_first=False)
    assert [e.kind for e in recorded] == ["firing", "resolved"]
    # A group that first reached the threshold during the baseline never alerts later.
    now[0] = T0 + 900
    assert await groups.observe({"expired": 50}, "payments.dlq") == []


async def test_with_no_baseline_the_first_group_is_new(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    rule = NewFailureGroupRule(min_entries=2, baseline_s=0)
    groups = NewFailureGroups(redis_client, prefix, rule, 3600, clock=lambda: T0)
    events = await groups.observe({"rare": 2})
    assert [e.kind for e in events] == ["firing", "resolved"]
