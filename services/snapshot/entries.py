"""The failed payments' lines of a snapshot, in this process or in worker processes.

Decoding a parked entry and masking it into its CSV row and JSONL record is
what a snapshot spends most of its time on (about 70 % of it, profiled with
py-spy on 100,000 entries: decoding the stored record 13 %, masking the body,
properties and headers 25 %, the CSV row 8 %, times 6 %). The row and the
record are built together (the texts they share masked once). :class:`EntryWriter`
does it for a batch of entry ids either here or, given ``workers``, in that many
worker processes, several batches in flight and their lines taken in the order
they were read. A worker reads its batch's stored hashes from Redis itself
(:func:`read_lines`, one client per worker): the event loop here only walks the
index and writes files, so the console's GUI stays free, the work runs on the other
cores, and nothing of the entries crosses a pipe but their lines. (Read here and
sent to the workers, the hashes cost this process their parsing and pickling, the
workers the unpickling, and Redis the packing script: 2.0 s of Redis's CPU for
100,000 entries, against 1.3 s for the flat script a worker calls, measured.)
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import struct
import sys
import threading
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.context import BaseContext
from typing import Any, Final, TypeVar, cast

from services.links.endpoints import RedisSettings
from services.links.redis_client import make_redis_client
from services.masking.json import IdTree
from services.snapshot.documents import dumps_line, entry_row_and_document
from services.workbench.model import EntrySummary, ParkedEntry
from services.workbench.store_reading import StoreReader, entry_from_hash, unreadable_entry

MAX_WORKERS = 4
T = TypeVar("T")


def default_workers() -> int:
    """Worker processes for an export: two per core, at most :data:`MAX_WORKERS`.

    Two per core, not one: on a machine shared with other work a process gets its share of
    the cores, and the masking is most of the export (measured on a 2-core machine at load
    average 10: the failed-payments stage of 100,000 entries took 86 s with 2 workers, 60 s
    with 4); on an idle machine the extra ones cost a little memory.
    """
    return max(1, min(MAX_WORKERS, 2 * (os.cpu_count() or 1)))


StoredHash = tuple[str, dict[bytes, bytes]]
"""An entry id and its stored hash (``StoreReader.get_many_hashes``)."""

WORKER_SOCKET_TIMEOUT_S: Final = 30.0
"""How long a worker waits for Redis's reply to one batch's read before the export fails."""


@dataclass(frozen=True, slots=True)
class EntrySource:
    """Where the workers read the entries: the Redis of the export and its key prefix."""

    redis: RedisSettings
    prefix: str


@dataclass(frozen=True, slots=True)
class EntryLines:
    """A batch of entries as the bundle writes them, and what the report counts."""

    csv: bytes  # the CSV rows, CRLF-terminated, no header
    jsonl: bytes
    summaries: list[EntrySummary]
    in_range: list[bool]


def entry_lines(
    entries: Sequence[ParkedEntry], from_ms: int, to_ms: int, ids: IdTree | None
) -> EntryLines:
    """The CSV rows and JSONL records of ``entries``, masked (``ids``: where the
    profile's bodies hold identifiers)."""
    text = io.StringIO()
    rows = csv.writer(text, lineterminator="\r\n")
    lines: list[bytes] = []
    summaries: list[EntrySummary] = []
    in_range: list[bool] = []
    for entry in entries:
        inside = from_ms <= entry.summary.parked_at_ms < to_ms
        row, document = entry_row_and_document(entry, in_range=inside, ids=ids)
        rows.writerow(row)
        lines.append(dumps_line(document))
        summaries.append(entry.summary)
        in_range.append(inside)
    return EntryLines(text.getvalue().encode("utf-8"), b"".join(lines), summaries, in_range)


def hash_lines(
    dlq: str, hashes: Sequence[StoredHash], from_ms: int, to_ms: int, ids: IdTree | None
) -> EntryLines:
    """:func:`entry_lines` of stored hashes (decoded first). A hash that cannot be decoded
    is written as far as it can be read, with a note saying why (:func:`unreadable_entry`):
    one entry never stops the export."""
    entries = []
    for entry_id, raw in hashes:
        try:
            entries.append(entry_from_hash(dlq, entry_id, raw))
        except (ValueError, struct.error, RecursionError) as exc:  # CodecError is a ValueError
            entries.append(unreadable_entry(dlq, entry_id, raw, str(exc) or type(exc).__name__))
    return entry_lines(entries, from_ms, to_ms, ids)


def found_hashes(entry_ids: Sequence[str], found: Sequence[dict[bytes, bytes]]) -> list[StoredHash]:
    """The (id, hash) pairs of the entries that exist (an entry deleted since the index was
    read has an empty hash)."""
    return [(entry_id, raw) for entry_id, raw in zip(entry_ids, found, strict=True) if raw]


_worker_readers: dict[EntrySource, tuple[asyncio.AbstractEventLoop, StoreReader]] = {}
"""A worker process's Redis reader and the event loop it runs on (one per source)."""


def read_lines(
    source: EntrySource,
    dlq: str,
    entry_ids: Sequence[str],
    *,
    from_ms: int,
    to_ms: int,
    ids: IdTree | None,
) -> EntryLines:
    """:func:`hash_lines` of the entries ``entry_ids`` read from ``source``: what a worker
    does with a batch (a Redis error is raised to the export, which fails with it)."""
    if source not in _worker_readers:
        client = make_redis_client(source.redis, socket_timeout=WORKER_SOCKET_TIMEOUT_S)
        _worker_readers[source] = (asyncio.new_event_loop(), StoreReader(client, source.prefix))
    loop, reader = _worker_readers[source]
    found = loop.run_until_complete(reader.get_many_hashes(dlq, entry_ids))
    return hash_lines(dlq, found_hashes(entry_ids, found), from_ms, to_ms, ids)


def worker_context() -> BaseContext:
    """How the workers start: forked from a fork server on Linux, else spawned.

    A spawned worker starts a fresh interpreter and imports the main module and this one
    (0.3-0.4 s of CPU each, measured: 1.5 s of the 4 workers' CPU in a 100,000-entry
    export). The fork server is a small process started (spawned) once per process that
    imports them once; each worker is a fork of it, with them imported already. Never a
    fork of the console itself: it runs Qt and threads. Linux only: on macOS a fork of a
    process that loaded the system's frameworks (Qt's, imported with the main module) is
    not safe.
    """
    if sys.platform.startswith("linux") and "forkserver" in get_all_start_methods():
        context = get_context("forkserver")
        context.set_forkserver_preload(["__main__", __name__])
        return context
    return get_context("spawn")


WORKER_NICENESS: Final = 10
"""How much lower a worker's CPU priority is than the exporting process's (``nice``)."""


def _lower_priority() -> None:
    """A worker's start: give way to everything else on the machine.

    The workers are background work that takes every core it is given, and the console
    exports on its GUI loop: at the same priority, four workers, Redis and the chart
    child on two cores kept the loop waiting for a core for up to 103 ms in a step of
    16 ms of its own CPU (bench_snapshot). Niced, they still use every idle cycle.
    """
    with contextlib.suppress(OSError, AttributeError):  # no os.nice: Windows
        os.nice(WORKER_NICENESS)


def _ready() -> None:
    """A worker's first job: nothing (this module's imports are done on the way)."""


class EntryWriter:
    """Turns batches of entry ids into :class:`EntryLines`, in order.

    ``submit`` a batch, then take the lines of the batches that are done with
    ``ready`` (all of them with ``drain``). With ``workers`` > 0 the workers read the
    entries from ``source`` and at most ``2 * workers`` batches are in flight
    (``submit`` waits for the oldest beyond that); without, each batch is read with
    ``reader`` and done on ``submit``.
    """

    def __init__(
        self,
        from_ms: int,
        to_ms: int,
        ids: IdTree | None,
        *,
        reader: StoreReader,
        source: EntrySource | None = None,
        workers: int = 0,
    ) -> None:
        if workers > 0 and source is None:
            raise ValueError("worker processes need the Redis to read the entries from")
        self.from_ms = from_ms
        self.to_ms = to_ms
        self.ids = ids
        self._reader = reader
        self._source = source
        self._pool = (
            ProcessPoolExecutor(workers, mp_context=worker_context(), initializer=_lower_priority)
            if workers > 0
            else None
        )
        self._limit = 2 * workers
        self._pending: deque[Future[EntryLines] | EntryLines] = deque()
        self._started: Future[None] = Future()
        self._closing = threading.Lock()
        self._closed = False
        if self._pool is None:
            self._started.set_result(None)
        else:  # see _start
            threading.Thread(
                target=self._start, args=(self._pool, workers), name="snapshot-start", daemon=True
            ).start()

    def _start(self, pool: ProcessPoolExecutor, workers: int) -> None:
        """Start every worker (a pool starts one per job submitted while none is idle), in
        a thread of its own: the first one waits for the fork server to import the code
        (half a second), which the event loop does not - it reads the history meanwhile
        (:meth:`elsewhere` says None until they are up, :meth:`started` waits for them)."""
        try:
            for _ in range(workers):
                pool.submit(_ready)
        except BaseException as exc:  # said to whoever waits for them
            self._started.set_exception(exc)
        else:
            self._started.set_result(None)
        with self._closing:
            if self._closed:  # closed while they started: stopped here
                pool.shutdown(wait=False, cancel_futures=True)

    async def started(self) -> None:
        """Wait until the workers are up (at once without workers)."""
        await asyncio.shield(asyncio.wrap_future(self._started))

    async def submit(self, dlq: str, entry_ids: Sequence[str]) -> list[EntryLines]:
        """Start on a batch of entries (those deleted meanwhile are left out); the lines of
        the batches finished meanwhile, in order."""
        pool = self._pool
        if pool is None:
            found = await self._reader.get_many_hashes(dlq, entry_ids)
            hashes = found_hashes(entry_ids, found)
            self._pending.append(hash_lines(dlq, hashes, self.from_ms, self.to_ms, self.ids))
        else:
            assert self._source is not None  # __init__ checks it
            await self.started()
            batch = list(entry_ids)
            self._pending.append(
                pool.submit(
                    read_lines,
                    self._source,
                    dlq,
                    batch,
                    from_ms=self.from_ms,
                    to_ms=self.to_ms,
                    ids=self.ids,
                )
            )
        done = []
        while len(self._pending) > self._limit:
            done.append(await self._take())
        return done + self.ready()

    def elsewhere(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T] | None:
        """``fn(*args)`` in a worker process (None without workers, or while they start:
        the caller does it)."""
        if self._pool is None or not self._started.done():
            return None
        return asyncio.wrap_future(self._pool.submit(fn, *args))

    def ready(self) -> list[EntryLines]:
        """The lines of the oldest batches that are finished, in order."""
        done = []
        while self._pending:
            head = self._pending[0]
            if isinstance(head, Future):
                if not head.done():
                    break
                done.append(head.result())
            else:
                done.append(head)
            self._pending.popleft()
        return done

    async def drain(self) -> list[EntryLines]:
        """The lines of every batch still under way, in order."""
        done = []
        while self._pending:
            done.append(await self._take())
        return done

    async def _take(self) -> EntryLines:
        head = self._pending.popleft()
        if isinstance(head, Future):
            return await asyncio.wrap_future(head)
        return head

    def close(self) -> None:
        """Stop the workers (what is under way is dropped)."""
        with self._closing:
            self._closed = True
            if self._pool is not None and self._started.done():
                self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None  # (still starting: _start stops them once they are up)


async def read_ahead(source: AsyncIterator[T], ahead: int) -> AsyncGenerator[T, None]:
    """``source``'s items, read up to ``ahead`` items ahead by a task of their own (its
    round trips overlap what the caller does with each); its error is raised in order.
    Close it (``contextlib.aclosing``) when leaving early: that stops the task."""
    queue: asyncio.Queue[tuple[T | None, BaseException | None, bool]] = asyncio.Queue(ahead)

    async def fill() -> None:
        try:
            async for item in source:
                await queue.put((item, None, False))
        except Exception as exc:  # raised to the reader, after the items before it
            await queue.put((None, exc, True))
        else:
            await queue.put((None, None, True))

    filling = asyncio.ensure_future(fill())
    try:
        while True:
            item, error, end = await queue.get()
            if error is not None:
                raise error
            if end:
                return
            yield cast(T, item)
    finally:
        filling.cancel()
