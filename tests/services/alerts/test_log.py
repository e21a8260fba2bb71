"""The alert log in Redis: a stream of firing and resolved events."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from services.alerts.log import AlertLog
from services.alerts.model import AlertEvent

T0 = 1_700_000_000


def event(ts_s: float, rule: str, kind: str, value: float | None = 1.5) -> AlertEvent:
    return AlertEvent(ts_s, rule, kind, value, f"{rule} {kind}", "critical")  # type: ignore[arg-type]


@pytest.mark.integration
async def test_alert_log_round_trip(log: AlertLog, redis_client: aioredis.Redis) -> None:
    events = [
        event(T0 + 0.125, "failure_rate", "firing", 12.4),
        event(T0 + 60, "flow_stopped", "firing", None),
        AlertEvent(T0 + 90, "failure_rate", "resolved", 1.0, "resolved: ok", "warning"),
    ]
    ids = await log.extend(events)
    assert ids[0].startswith(f"{round((T0 + 0.125) * 1000)}-")  # stream ids carry event time
    assert log.key == f"{log.prefix}:alerts"
    assert await redis_client.xlen(log.key) == 3
    assert await log.read_range(newest_first=False) == events
    assert await log.read_range() == events[::-1]


@pytest.mark.integration
async def test_alert_log_range_queries(log: AlertLog) -> None:
    events = [event(T0 + i, f"r{i % 3}", "firing" if i % 2 else "resolved") for i in range(2500)]
    await log.extend(events)
    ms = T0 * 1000

    newest = await log.read_range(ms + 100_000, ms + 1_600_000)
    assert [e.ts for e in newest] == [T0 + i for i in range(1600, 99, -1)]  # inclusive, paged
    oldest = await log.read_range(ms + 100_000, ms + 1_600_000, newest_first=False)
    assert oldest == newest[::-1]
    assert [e.ts for e in await log.read_range(ms, None, count=3)] == [
        T0 + 2499,
        T0 + 2498,
        T0 + 2497,
    ]
    assert [e.ts for e in await log.read_range(None, ms + 1000, newest_first=False)] == [T0, T0 + 1]
    assert await log.read_range(ms - 10_000, ms - 1) == []


@pytest.mark.integration
async def test_alert_log_takes_a_late_event_and_decoding_clients(
    redis_url: str, unique_prefix: str
) -> None:
    client = aioredis.from_url(redis_url, decode_responses=True)
    log = AlertLog(client, unique_prefix.rstrip("."))
    try:
        await log.append(event(T0 + 10, "a", "firing"))
        late_id = await log.append(event(T0 + 5, "b", "firing"))  # older than the stream's top
        assert int(late_id.split("-")[0]) > (T0 + 10) * 1000
        (read,) = await log.read_range(None, None, count=1)
        assert read == event(T0 + 5, "b", "firing")  # its own time kept in the record
    finally:
        await client.delete(log.key)
        await client.aclose()
