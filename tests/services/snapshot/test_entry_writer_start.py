"""The export's worker processes start in a thread of their own (the first waits for the
fork server's imports), not on the event loop: until they are up the writer says to do
the work here; closed while they start, they are stopped once up."""

from __future__ import annotations

import asyncio
import os

from services.snapshot.entries import EntryWriter, StoredHash


async def test_work_goes_to_the_workers_once_they_are_up() -> None:
    writer = EntryWriter(0, 1, None, workers=2)
    try:
        await writer.started()
        pid = writer.elsewhere(os.getpid)
        assert pid is not None and await pid != os.getpid()
        no_hashes: list[StoredHash] = []
        # submit gives the lines of batches already finished (this one, if the worker
        # was quick), drain those still under way: one or the other has it
        (lines,) = [*await writer.submit("dlq", no_hashes), *await writer.drain()]
        assert lines.summaries == [] and lines.csv == b"" and lines.jsonl == b""
    finally:
        writer.close()
    assert writer.elsewhere(os.getpid) is None  # closed: nothing goes anywhere


async def test_closed_while_the_workers_start_they_are_stopped() -> None:
    writer = EntryWriter(0, 1, None, workers=2)
    writer.close()  # at once: the start thread is still starting them
    await asyncio.wait_for(writer.started(), 60)  # the thread ends, having stopped them
    assert writer.elsewhere(os.getpid) is None


async def test_without_workers_everything_is_done_here() -> None:
    writer = EntryWriter(0, 1, None, workers=0)
    await writer.started()
    assert writer.elsewhere(os.getpid) is None
    (lines,) = await writer.submit("dlq", [])
    assert lines.summaries == []
