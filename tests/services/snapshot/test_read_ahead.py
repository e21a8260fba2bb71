"""The snapshot's read-ahead, how its workers start and what they send back (no Redis, no Qt)."""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor

import pytest

from services.snapshot.entries import read_ahead, worker_context
from services.workbench.model import EntryState
from tests.helpers.summaries import realistic_summaries


async def numbers(count: int, fail_at: int | None = None) -> AsyncIterator[int]:
    for n in range(count):
        if n == fail_at:
            raise ConnectionError(f"lost at {n}")
        await asyncio.sleep(0)
        yield n


async def test_items_come_in_order_and_an_error_after_the_items_before_it() -> None:
    assert [n async for n in read_ahead(numbers(10), 3)] == list(range(10))
    seen: list[int] = []
    with pytest.raises(ConnectionError, match="lost at 4"):
        async for n in read_ahead(numbers(10, fail_at=4), 2):
            seen.append(n)
    assert seen == [0, 1, 2, 3]


async def test_leaving_early_stops_the_reading_task() -> None:
    read: list[int] = []

    async def counted() -> AsyncIterator[int]:
        async for n in numbers(1000):
            read.append(n)
            yield n

    async with contextlib.aclosing(read_ahead(counted(), 4)) as ahead:
        async for n in ahead:
            if n == 2:
                break
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(read) <= 2 + 4 + 2  # what was taken, the queue, one being put
    assert [t for t in asyncio.all_tasks() if "fill" in repr(t)] == []


def test_summaries_pickle_as_they_are() -> None:
    rows = realistic_summaries(50)
    assert pickle.loads(pickle.dumps(rows, 5)) == rows
    assert {type(r.state) for r in pickle.loads(pickle.dumps(rows))} == {EntryState}


def test_workers_start_with_the_entry_writer_imported() -> None:
    """A worker forks from a server that imported the writer once (Linux): it does not
    import it again, as a spawned interpreter would."""
    context = worker_context()
    if not sys.platform.startswith("linux"):
        assert context.get_start_method() == "spawn"
        return
    assert context.get_start_method() == "forkserver"
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        # eval: a builtin, so unpickling the call imports nothing of ours in the worker
        imported = pool.submit(eval, "'services.snapshot.entries' in __import__('sys').modules")
        assert imported.result(timeout=60) is True
