"""The ``new_failure_group`` alert: a failure group never seen in the retention window
reaches ``min_entries`` parked entries. Recorded once, however many parkers run.

Key layout (``P`` is the profile's ``redis_prefix``, ``G`` a digest of the group)::

    P:fgroup:G   HASH   count (entries seen), first (epoch ms), alerted (epoch ms, once)

Every parker adds the groups of what it parked (``HINCRBY``) and refreshes the
key's expiry to the retention window, so a group is "new" again only after
nobody saw it for that long. The parker whose addition brought the count to
``min_entries`` or beyond sets ``alerted`` with ``HSETNX``: exactly one caller
gets 1 (Redis runs commands one at a time), and only that one writes the alert
log, a firing and its resolution at the same moment (an event, not a state: no
recorder keeps it open). Every command touches one key.

"New" needs a baseline: ``P:fgroup:since`` (epoch ms) is when counting began (kept as
long as the groups are). A group that reaches ``min_entries`` within the rule's
``baseline_s`` of it - on a fresh store, or the demo's start, every group of the
ordinary traffic - is marked ``alerted`` without an alert: it is what the flow's failures
look like, not a new one. The message says how long groups were seen before when that is
shorter than the retention window.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Final

import redis.asyncio as aioredis

from services.alerts.log import AlertLog
from services.alerts.model import AlertEvent
from services.alerts.rules import NewFailureGroupRule
from services.time_range import format_duration

DIGEST_CHARS: Final = 12


def group_digest(group: str) -> str:
    """A short stable digest of a failure group (its key and rule name suffix)."""
    return hashlib.sha1(group.encode("utf-8", "surrogatepass")).hexdigest()[:DIGEST_CHARS]


class NewFailureGroups:
    """Counts parked entries per failure group and records ``new_failure_group`` once."""

    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str,
        rule: NewFailureGroupRule,
        retention_s: int,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.rule = rule
        self.retention_s = max(1, int(retention_s))
        self.log = AlertLog(redis, prefix)
        self._clock = clock

    def key(self, group: str) -> str:
        return f"{self.prefix}:fgroup:{group_digest(group)}"

    async def observe(self, added: Mapping[str, int], where: str = "") -> list[AlertEvent]:
        """Count ``added`` entries per group (parked from ``where``, a DLQ); the alert
        events this call recorded (at most one firing and resolution per new group)."""
        groups = [(g, n) for g, n in added.items() if g and n > 0]
        if not groups:
            return []
        now_ms = round(self._clock() * 1000)
        since_key = f"{self.prefix}:fgroup:since"
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(since_key, now_ms, nx=True, ex=self.retention_s)
        pipe.get(since_key)
        pipe.expire(since_key, self.retention_s)
        since_reply = (await pipe.execute())[1]
        since_ms = int(since_reply) if since_reply is not None else now_ms
        baseline = now_ms - since_ms < self.rule.baseline_s * 1000
        pipe = self.redis.pipeline(transaction=False)
        for group, count in groups:
            key = self.key(group)
            pipe.hincrby(key, "count", count)
            pipe.hsetnx(key, "first", now_ms)
            pipe.expire(key, self.retention_s)
        replies = await pipe.execute()
        reached = [
            (group, int(replies[3 * i]))
            for i, (group, _) in enumerate(groups)
            if int(replies[3 * i]) >= self.rule.min_entries
        ]
        if not reached:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for group, _ in reached:
            pipe.hsetnx(self.key(group), "alerted", now_ms)
        won = await pipe.execute()
        events: list[AlertEvent] = []
        for (group, total), first in zip(reached, won, strict=True):
            if not int(first) or baseline:
                continue  # alerted before, or part of the baseline (marked: never alerted)
            seen_s = (now_ms - since_ms) / 1000
            events.extend(self._events(group, total, where, now_ms / 1000, seen_s))
        for event in events:
            await self.log.append(event)
        return events

    def _events(
        self, group: str, total: int, where: str, ts: float, seen_s: float
    ) -> list[AlertEvent]:
        rule = self.rule
        name = f"{rule.name}:{group_digest(group)}"
        kept = self.retention_s
        span = f"{kept / 3600:g} h" if seen_s >= kept else format_duration(seen_s)
        place = f" in {where}" if where else ""
        message = (
            f"new failure group “{group}”: {total} entries{place}"
            f" (threshold {rule.min_entries}, none in the last"
            f" {span} before)"
        )
        return [
            AlertEvent(ts, name, "firing", float(total), message, rule.severity),
            AlertEvent(ts, name, "resolved", float(total), f"recorded: {message}", rule.severity),
        ]
