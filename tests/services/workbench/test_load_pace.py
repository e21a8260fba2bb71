"""The full load's batch sizes follow what a step costs per row."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from services.workbench.load_pace import LEAST_ROWS, MOST_ROWS, LoadPace, let_waiting_run


def test_the_dearer_part_sizes_the_batches_to_the_target() -> None:
    pace = LoadPace(target_s=0.015, first=1000)
    assert pace.rows == 1000
    pace.took("decode", 1000, 0.010)  # 10 µs a row
    pace.took("add", 1000, 0.005)
    assert pace.rows == 1500
    pace.took("add", 1000, 0.030)  # a slow host, or a busy one: the add dearer now
    assert pace.rows < 1500
    for _ in range(20):
        pace.took("add", 1000, 0.030)
    assert 490 <= pace.rows <= 510  # 15 ms at 30 µs a row


def test_one_slow_step_moves_the_size_part_of_the_way_and_bounds_hold() -> None:
    pace = LoadPace(target_s=0.015)
    pace.took("decode", 1000, 0.010)
    pace.took("decode", 1000, 0.100)  # one step held up (a collection, a busy core)
    assert 400 < pace.rows < 1500
    pace.took("decode", 1000, 10.0)
    assert pace.rows == LEAST_ROWS
    fast = LoadPace()
    fast.took("decode", 1000, 0.0001)
    assert fast.rows == MOST_ROWS
    fast.took("add", 0, 0.0)  # nothing to learn from
    assert fast.rows == MOST_ROWS


async def _two_steps(yield_between: Callable[[], Awaitable[None]]) -> list[str]:
    """Step A runs past a waiter's sleep; which runs first after the yield: B or the waiter."""
    order: list[str] = []

    async def waiter() -> None:
        await asyncio.sleep(0.001)
        order.append("waiter")

    waiting = asyncio.ensure_future(waiter())
    await asyncio.sleep(0)  # the waiter's timer is set
    due = time.monotonic() + 0.005
    while time.monotonic() < due:  # step A: a long step (the waiter's timer falls due)
        pass
    order.append("A")
    await yield_between()
    order.append("B")
    await waiting
    return order


async def test_what_waits_on_a_timer_runs_between_two_load_steps() -> None:
    assert await _two_steps(let_waiting_run) == ["A", "waiter", "B"]
    assert await _two_steps(lambda: asyncio.sleep(0)) == ["A", "B", "waiter"]  # why
