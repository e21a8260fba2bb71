"""Writing an incident snapshot: :func:`write_snapshot` and the run behind it.

:func:`write_snapshot` reads the flow history, the alert log, the audit trail
and the parked failed payments of ``from_s <= t < to_s`` from Redis and writes
the bundle of :mod:`services.snapshot.bundle`, its rows and records masked
(:mod:`services.snapshot.documents`).

Bounded memory: entries and audit records are streamed in batches into
member files in a temporary directory next to the output, hashed while they
are written; only the per-second series of the range (needed for the charts)
and the report's tallies stay in memory. The zip is written to
``OUT.partial`` and renamed when complete; on an error or cancellation the
partial file and the temporary directory are removed. The writer yields to
the event loop between batches, so it can run on the GUI's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

import numpy as np
import orjson
import redis.asyncio as aioredis

from services.alerts.log import AlertLog
from services.alerts.model import AlertEvent
from services.flow.history import HistoryStore
from services.flow.types import FlowFrame
from services.links.endpoints import RedisSettings
from services.masking.json import id_tree, mask_optional_text
from services.snapshot.bundle import CsvMember, Member, bundle_files, pack
from services.snapshot.documents import (
    ENTRY_COLUMNS,
    alert_document,
    audit_document,
    dumps_line,
    job_document,
    throughput_csv,
    throughput_header,
    throughput_rows,
)
from services.snapshot.entries import EntryLines, EntrySource, EntryWriter, read_ahead
from services.snapshot.manifest import manifest_json, tool_version
from services.snapshot.model import (
    CHARTS,
    MAX_RANGE_S,
    STAGE_ALERTS,
    STAGE_AUDIT,
    STAGE_CHARTS,
    STAGE_ENTRIES,
    STAGE_HISTORY,
    STAGE_PACKING,
    STAGE_REPORT,
    ChartRenderer,
    FiringSpan,
    ProgressCallback,
    SnapshotCancelled,
    SnapshotCounts,
    SnapshotProgress,
    SnapshotRequest,
    SnapshotResult,
    firing_spans,
)
from services.snapshot.report import (
    MAX_TABLE_ROWS,
    ActionTally,
    BundleFile,
    ChartImage,
    FailedPaymentTally,
    ReportSummary,
    alert_event_row,
    alert_span_row,
    count_rows,
    failure_reason_rows,
    render_report,
)
from services.snapshot.series import (
    HistoryChunk,
    SeriesBuilder,
    history_chunks,
    iter_history_chunks,
)
from services.time_range import format_duration
from services.workbench.actions.jobs import JobStore
from services.workbench.store import ParkingStore, entry_id_time_ms

log = logging.getLogger(__name__)

HISTORY_CHUNK_S: Final = 300
"""Seconds of history added to the series per step (a short step of the GUI's loop)."""
HISTORY_READ_S: Final = 900
"""Seconds of history read (and its rows decoded) per round trip: a quarter of a bucket."""
HISTORY_READS_AHEAD: Final = 2
"""History reads under way at once (a round trip overlaps the decoding of the one before)."""
THROUGHPUT_STEP_S: Final = 600
"""Rows of throughput.csv written per step."""
ENTRY_READS_AHEAD: Final = 4
"""Batches of entry ids read from the index ahead of the workers (a round trip each)."""
AUDIT_SKEW_MS: Final = 5 * 60 * 1000
"""Audit records are looked up by their stream id (Redis's clock) this much beyond the
range, then kept by their own ``ts`` (the acting console's clock)."""
MAX_JOBS: Final = 1000
"""The newest jobs looked at for the range (older ones are left out of jobs.jsonl)."""
ALERT_LOOKBACK_S: Final = 7 * 86400
"""How far before the range the alert log is read to know what was firing at its start."""


async def write_snapshot(
    request: SnapshotRequest,
    redis: aioredis.Redis,
    *,
    render_charts: ChartRenderer | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    workers: int = 0,
    worker_redis: RedisSettings | None = None,
) -> SnapshotResult:
    """Write the bundle of ``request`` (see the module docstring).

    ``redis`` must be created with ``decode_responses=False``. ``render_charts``
    turns the range's series and alert spans into PNGs by chart name (see
    :data:`~services.snapshot.model.CHARTS`); without it the report says there
    are no charts. ``progress`` is called per batch; setting ``cancel`` (or
    cancelling the task) stops at the next batch with
    :class:`~services.snapshot.model.SnapshotCancelled` (or ``CancelledError``),
    leaving no file behind. ``workers`` > 0 reads, decodes and masks the failed payments
    in that many worker processes (:mod:`services.snapshot.entries`), 0 in this one; the
    workers connect to ``worker_redis`` (default: the profile's Redis, where ``redis``
    is connected).

    Raises ``ValueError`` for an empty range, ``FileExistsError`` when ``out``
    exists and ``overwrite`` is not set, Redis errors as they come.
    """
    if request.to_s <= request.from_s:
        raise ValueError(f"empty range: {request.from_s} is not before {request.to_s}")
    if request.to_s - request.from_s > MAX_RANGE_S:
        raise ValueError(
            f"a snapshot covers at most {format_duration(MAX_RANGE_S)},"
            f" not {format_duration(request.to_s - request.from_s)}"
        )
    if request.batch <= 0:
        raise ValueError(f"batch must be positive: {request.batch}")
    out = Path(request.out)
    if out.exists() and not request.overwrite:
        raise FileExistsError(f"{out} exists")
    if out.is_dir():
        raise IsADirectoryError(f"{out} is a directory")
    job = _SnapshotJob(
        request, redis, render_charts=render_charts, progress=progress, cancel=cancel
    )
    job.workers = max(0, workers)
    job.worker_redis = worker_redis
    partial = out.with_name(out.name + ".partial")
    job.workdir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        sha256, size = await job.run(partial)
        os.replace(partial, out)
    except BaseException:
        job.close_members()
        partial.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(job.workdir, ignore_errors=True)
    return SnapshotResult(out, job.counts(), sha256, size)


class _SnapshotJob:
    """One run of :func:`write_snapshot`."""

    def __init__(
        self,
        request: SnapshotRequest,
        redis: aioredis.Redis,
        *,
        render_charts: ChartRenderer | None,
        progress: ProgressCallback | None,
        cancel: threading.Event | None,
    ) -> None:
        self.request = request
        self.profile = request.profile
        self.from_s = int(request.from_s)
        self.to_s = int(request.to_s)
        self.from_ms = self.from_s * 1000
        self.to_ms = self.to_s * 1000
        self.workdir = Path()  # set by write_snapshot once the stores accepted the client
        self.render_charts = render_charts
        self._progress = progress
        self._cancel = cancel
        self.created_at = time.time()
        self.failure_statuses = frozenset(s.lower() for s in self.profile.failure_statuses)
        self.history = HistoryStore.for_profile(redis, self.profile)
        self.alert_log = AlertLog(redis, self.profile.redis_prefix)
        self.store = ParkingStore(redis, self.profile.redis_prefix)
        self.members: list[Member] = []
        self.frame: FlowFrame | None = None
        self.seconds_with_data = 0
        self.reasons: Counter[str] = Counter()
        self._history_blobs: dict[int, list[tuple[int, bytes]]] = {}  # read, not yet decoded
        self.alert_events: list[AlertEvent] = []
        self.spans: list[FiringSpan] = []
        self.actions = ActionTally()
        self.payments = FailedPaymentTally()
        self.named: dict[str, set[str]] = {}
        self.charts: dict[str, bytes] = {}
        self.charts_note = ""
        self._chart_task: asyncio.Future[Mapping[str, bytes]] | None = None
        self.workers = 0
        self.worker_redis: RedisSettings | None = None
        self.writer: EntryWriter | None = None
        self._throughput: tuple[CsvMember, asyncio.Future[bytes]] | None = None

    # -- plumbing -------------------------------------------------------------------------

    def _member(self, name: str) -> Member:
        member = Member(self.workdir, name)
        self.members.append(member)
        return member

    def close_members(self) -> None:
        for member in self.members:
            member.close()

    def _report(self, stage: str, done: int, total: int | None) -> None:
        if self._progress is not None:
            self._progress(SnapshotProgress(stage, done, total))

    async def _tick(self) -> None:
        """Between batches: stop when cancelled, and let the event loop run."""
        if self._cancel is not None and self._cancel.is_set():
            raise SnapshotCancelled("snapshot cancelled")
        await asyncio.sleep(0)
        if self._cancel is not None and self._cancel.is_set():
            raise SnapshotCancelled("snapshot cancelled")

    def counts(self) -> SnapshotCounts:
        frame = self.frame
        by_name = {m.name: m.rows for m in self.members}
        return SnapshotCounts(
            seconds=by_name.get("throughput.csv", 0),
            events=int(np.nansum(frame.status_counts)) if frame is not None else 0,
            dead_letters=int(np.nansum(frame.dead_letters)) if frame is not None else 0,
            failed_payments=by_name.get("failed_payments.csv", 0),
            audit_records=by_name.get("audit.jsonl", 0),
            alert_events=by_name.get("alerts.jsonl", 0),
        )

    # -- the run --------------------------------------------------------------------------

    async def run(self, partial: Path) -> tuple[str, int]:
        try:
            return await self._run(partial)
        finally:
            if self._chart_task is not None and not self._chart_task.done():
                self._chart_task.cancel()
            if self.writer is not None:
                self.writer.close()

    async def _run(self, partial: Path) -> tuple[str, int]:
        # The workers start now (in a thread), while the history is read.
        source = EntrySource(self.worker_redis or self.profile.redis_settings, self.store.prefix)
        self.writer = writer = EntryWriter(
            self.from_ms,
            self.to_ms,
            id_tree(self.profile.fields.id_paths),
            reader=self.store,
            source=source if self.workers else None,
            workers=self.workers,
        )
        await self._read_history()
        await self._write_throughput()
        await self._read_alerts()
        self._start_charts()
        await self._read_audit()
        await self._read_jobs()
        await self._read_entries()
        await self._finish_throughput()
        writer.close()  # the workers' part is done
        self.writer = None
        await self._render_charts()
        await self._write_report()
        self._write_manifest()
        self.close_members()
        members = self._ordered_members()
        members += [m for m in self.members if m not in members]  # the manifest, last
        return await pack(
            partial,
            members,
            self.created_at,
            progress=lambda done, total: self._report(STAGE_PACKING, done, total),
            tick=self._tick,
        )

    async def _read_history(self) -> None:
        total = self.to_s - self.from_s
        builder = SeriesBuilder(self.from_s, self.to_s)
        self._report(STAGE_HISTORY, 0, total)
        reads = [
            (start, min(start + HISTORY_READ_S, self.to_s))
            for start in range(self.from_s, self.to_s, HISTORY_READ_S)
        ]
        # Read ahead: a read's round trip overlaps the decoding of the one before. Each is
        # decoded into frames of HISTORY_CHUNK_S seconds by a worker process (the workers
        # are idle until the entries), or here one chunk a step of the loop without them.
        pending: deque[asyncio.Task[list[HistoryChunk]]] = deque()
        try:
            for index, (start, end) in enumerate(reads):
                for ahead in reads[index + len(pending) : index + HISTORY_READS_AHEAD]:
                    pending.append(asyncio.ensure_future(self._history_read(*ahead)))
                chunks = await pending.popleft()
                for chunk in chunks or self._history_here(start, end):
                    self.seconds_with_data += chunk.seconds_with_data
                    self.reasons.update(chunk.reasons)
                    builder.add(chunk.frame)
                    self._report(STAGE_HISTORY, chunk.end - self.from_s, total)
                    await self._tick()
        finally:
            for read in pending:
                read.cancel()
        self.frame = builder.frame(self.failure_statuses)

    async def _history_read(self, start: int, end: int) -> list[HistoryChunk]:
        """The history of ``start <= second < end`` read, and decoded by a worker (empty
        without workers: the rows are kept for :meth:`_history_here`)."""
        blobs = await self.history.read_blobs(start, end)
        assert self.writer is not None
        # Decoded by a worker once they are up (they start in a thread, the event loop
        # free meanwhile): decoding here while they start made the loop's steps longer.
        await self.writer.started()
        decoding = self.writer.elsewhere(history_chunks, blobs, start, end, HISTORY_CHUNK_S)
        if decoding is None:
            self._history_blobs[start] = blobs
            return []
        return await decoding

    def _history_here(self, start: int, end: int) -> Iterator[HistoryChunk]:
        """The chunks of a read decoded in this process, one at a time."""
        blobs = self._history_blobs.pop(start, [])
        return iter_history_chunks(blobs, start, end, HISTORY_CHUNK_S)

    async def _write_throughput(self) -> None:
        frame = self.frame
        assert frame is not None
        out = CsvMember(self._member("throughput.csv"), throughput_header(frame))
        assert self.writer is not None
        await self.writer.started()  # (up long before: the history took a while)
        rows = self.writer.elsewhere(throughput_csv, frame, 0, frame.seconds)
        if rows is not None:  # written by a worker while the entries are read
            self._throughput = (out, rows)
            return
        for start in range(0, frame.seconds, THROUGHPUT_STEP_S):
            stop = min(start + THROUGHPUT_STEP_S, frame.seconds)
            for row in throughput_rows(frame, start, stop):
                out.row(row)
            out.flush()
            await self._tick()
        out.member.close()

    async def _finish_throughput(self) -> None:
        """throughput.csv's rows, when a worker writes them."""
        if self._throughput is None:
            return
        out, rows = self._throughput
        self._throughput = None
        assert self.frame is not None
        out.write_rows(await rows, self.frame.seconds)
        out.member.close()

    async def _read_alerts(self) -> None:
        self._report(STAGE_ALERTS, 0, None)
        self.alert_events = await self.alert_log.read_range(
            self.from_ms, self.to_ms - 1, newest_first=False
        )
        lookback_ms = max(0, self.from_ms - ALERT_LOOKBACK_S * 1000)
        earlier = await self.alert_log.read_range(
            lookback_ms, self.from_ms - 1, newest_first=True, count=5000
        )
        self.spans = firing_spans(self.alert_events, self.from_s, self.to_s, earlier=earlier)
        member = self._member("alerts.jsonl")
        for start in range(0, len(self.alert_events), self.request.batch):
            batch = self.alert_events[start : start + self.request.batch]
            member.write(b"".join(orjson.dumps(alert_document(e)) + b"\n" for e in batch))
            member.rows += len(batch)
            self._report(STAGE_ALERTS, member.rows, len(self.alert_events))
            await self._tick()
        member.close()
        self._report(STAGE_ALERTS, len(self.alert_events), len(self.alert_events))

    async def _read_audit(self) -> None:
        member = self._member("audit.jsonl")
        self._report(STAGE_AUDIT, 0, None)
        for dlq in self.profile.dead_letter_queues:
            named = self.named.setdefault(dlq, set())
            async for batch in self.store.iter_audit(
                dlq,
                self.from_ms - AUDIT_SKEW_MS,
                self.to_ms + AUDIT_SKEW_MS,
                batch=self.request.batch,
            ):
                lines: list[bytes] = []
                for record in batch:
                    if not self.from_ms <= record.ts < self.to_ms:
                        continue
                    named.update(record.entry_ids)
                    self.actions.add(record, dlq)
                    lines.append(orjson.dumps(audit_document(record, dlq)) + b"\n")
                member.write(b"".join(lines))
                member.rows += len(lines)
                self._report(STAGE_AUDIT, member.rows, None)
                await self._tick()
        member.close()
        self._report(STAGE_AUDIT, member.rows, member.rows)

    async def _read_jobs(self) -> None:
        """The jobs started in the range, oldest first, with their outcome summary."""
        member = self._member("jobs.jsonl")
        jobs = JobStore(self.store.redis, self.store.prefix)
        for job in reversed(await jobs.recent(MAX_JOBS)):
            if self.from_ms <= job.created_ms < self.to_ms:
                member.write(dumps_line(job_document(job)))
                member.rows += 1
        member.close()

    async def _read_entries(self) -> None:
        csv_out = CsvMember(self._member("failed_payments.csv"), ENTRY_COLUMNS)
        jsonl = self._member("failed_payments.jsonl")
        dlqs = self.profile.dead_letter_queues
        total = 0
        for dlq in dlqs:
            total += await self.store.count_between(dlq, self.from_ms, self.to_ms)
            total += sum(1 for i in self.named.get(dlq, ()) if not self._id_in_range(i))
        done = 0
        self._report(STAGE_ENTRIES, 0, total)
        writer = self.writer
        assert writer is not None

        def write_files(batches: list[EntryLines]) -> None:
            for lines in batches:
                csv_out.write_rows(lines.csv, len(lines.summaries))
                jsonl.write(lines.jsonl)
                jsonl.rows += len(lines.summaries)

        async def write(batches: list[EntryLines]) -> None:
            nonlocal done, total
            if not batches:
                return
            # Hashing and writing (a busy disk can stall a write) off the event loop.
            writing = asyncio.ensure_future(asyncio.to_thread(write_files, batches))
            for lines in batches:
                for summary, in_range in zip(lines.summaries, lines.in_range, strict=True):
                    self.payments.add(summary, in_range=in_range)
                done += len(lines.summaries)
            await _settled(writing)
            if self._throughput is not None and self._throughput[1].done():
                await self._finish_throughput()  # its bytes need not wait in memory
            total = max(total, done)
            self._report(STAGE_ENTRIES, done, total)

        for dlq in dlqs:
            named = self.named.get(dlq, set())
            batches = self.store.iter_ids_between(
                dlq, self.from_ms, self.to_ms, batch=self.request.batch
            )
            async with contextlib.aclosing(read_ahead(batches, ENTRY_READS_AHEAD)) as ahead:
                async for entry_ids in ahead:
                    named.difference_update(entry_ids)
                    await write(await writer.submit(dlq, entry_ids))
                    await self._tick()
            # Entries parked before (or after) the range that an operator acted on in it.
            rest = sorted(named)
            named.clear()
            for start in range(0, len(rest), self.request.batch):
                await write(await writer.submit(dlq, rest[start : start + self.request.batch]))
                await self._tick()
        await write(await writer.drain())
        csv_out.member.close()
        jsonl.close()
        self._report(STAGE_ENTRIES, done, done)

    def _id_in_range(self, entry_id: str) -> bool:
        ms = entry_id_time_ms(entry_id)  # the parking time, for our ids
        return ms is not None and self.from_ms <= ms < self.to_ms

    def _start_charts(self) -> None:
        """An asynchronous renderer starts now, drawing while the entries are written."""
        render = self.render_charts
        if render is None or not _is_async(render):
            return
        assert self.frame is not None
        try:
            drawing = render(self.frame, [s.span for s in self.spans])
        except Exception:  # said at the charts stage, as the renderer's own errors are
            log.exception("starting the snapshot charts failed")
            return
        if inspect.isawaitable(drawing):
            self._chart_task = asyncio.ensure_future(drawing)

    async def _render_charts(self) -> None:
        if self.render_charts is None:
            self.charts_note = "Charts were not rendered (no chart renderer in this run)."
            return
        assert self.frame is not None
        self._report(STAGE_CHARTS, 0, len(CHARTS))
        await self._tick()
        try:
            if self._chart_task is not None:
                rendered = await self._chart_task
            else:
                drawing = self.render_charts(self.frame, [s.span for s in self.spans])
                rendered = await drawing if inspect.isawaitable(drawing) else drawing
        except Exception as exc:  # a chart must not cost the operator the whole snapshot
            log.exception("rendering the snapshot charts failed")
            self.charts_note = f"Charts could not be rendered: {mask_optional_text(str(exc))}."
            return
        for name in CHARTS:
            png = rendered.get(name)
            if png:
                self.charts[name] = bytes(png)
                member = self._member(f"charts/{name}.png")
                member.write(self.charts[name])
                member.close()
        self._report(STAGE_CHARTS, len(self.charts), len(CHARTS))
        await self._tick()

    def _summary(self) -> ReportSummary:
        frame = self.frame
        assert frame is not None
        counts = frame.status_counts
        per_status = {
            mask_optional_text(name): int(np.nansum(counts[i]))
            for i, name in enumerate(frame.status_names)
        }
        events = int(np.nansum(counts))
        failures = sum(
            int(np.nansum(counts[i]))
            for i, name in enumerate(frame.status_names)
            if name.lower() in self.failure_statuses
        )
        per_second = np.nansum(counts, axis=0) if counts.size else np.zeros(frame.seconds)
        peak = int(per_second.max()) if per_second.size else 0
        p99 = frame.latency_ms[-1]
        reasons = {mask_optional_text(k): v for k, v in self.reasons.items() if v}
        payments = self.payments
        by_name = {m.name: m for m in self.members}
        return ReportSummary(
            profile_name=self.profile.name,
            tool_version=tool_version(),
            created_at_s=self.created_at,
            from_s=self.from_s,
            to_s=self.to_s,
            seconds=frame.seconds,
            seconds_with_data=self.seconds_with_data,
            events=events,
            statuses=count_rows(per_status, flagged=self._failure_labels(frame)),
            failure_statuses=tuple(self.profile.failure_statuses),
            failures=failures,
            dead_letters=int(np.nansum(frame.dead_letters)),
            peak_events_per_s=peak,
            peak_at_s=int(frame.t[int(per_second.argmax())]) if peak else None,
            max_p99_ms=None if np.all(np.isnan(p99)) else float(np.nanmax(p99)),
            failure_reasons=failure_reason_rows(reasons),
            failure_reasons_total=sum(reasons.values()),
            failed_payments=payments.total,
            parked_in_range=payments.parked_in_range,
            acted_on_earlier=payments.total - payments.parked_in_range,
            dead_letter_queues_configured=tuple(self.profile.dead_letter_queues),
            entry_states=count_rows(dict(payments.states)),
            reason_queues=payments.reason_queue_rows(),
            failure_groups=payments.failure_group_rows(),
            failure_groups_total=len(payments.groups),
            reason_queues_total=len(payments.reason_queues),
            merchants=payments.merchant_rows(),
            merchants_total=len(payments.merchants),
            origin_queues=count_rows(dict(payments.origin_queues)),
            dead_letter_queues=count_rows(dict(payments.dlqs)),
            alert_spans=tuple(alert_span_row(s) for s in self.spans),
            alert_events=tuple(alert_event_row(e) for e in self.alert_events[:MAX_TABLE_ROWS]),
            alert_events_total=len(self.alert_events),
            alerts_fired=sum(1 for e in self.alert_events if e.kind == "firing"),
            actions=tuple(self.actions.rows),
            audit_records=self.actions.records,
            actions_total=self.actions.total,
            actions_by_kind=count_rows(dict(self.actions.kinds)),
            actions_unfinished=self.actions.unfinished,
            charts=tuple(
                ChartImage(name, CHARTS[name][0], self._caption(name), png)
                for name, png in self.charts.items()
            ),
            charts_note=self.charts_note,
            files=tuple(
                BundleFile(name, description, by_name[name].rows if rows else None)
                for name, description, rows in bundle_files(self.charts)
            ),
        )

    def _failure_labels(self, frame: FlowFrame) -> list[str]:
        return [
            mask_optional_text(n) for n in frame.status_names if n.lower() in self.failure_statuses
        ]

    def _caption(self, name: str) -> str:
        caption = CHARTS[name][1]
        if self.spans:
            caption += " Shaded: alerts firing (red critical, amber warning)."
        return caption

    async def _write_report(self) -> None:
        self._report(STAGE_REPORT, 0, 1)
        member = self._member("report.html")
        summary = self._summary()
        await self._tick()
        # Rendered in a thread: the event loop keeps its turns while it runs.
        html = await asyncio.to_thread(render_report, summary)
        member.write(html.encode("utf-8"))
        member.close()
        self._report(STAGE_REPORT, 1, 1)

    def _write_manifest(self) -> None:
        manifest = manifest_json(
            self.profile,
            created_at=self.created_at,
            from_s=self.from_s,
            to_s=self.to_s,
            counts=self.counts(),
            charts=self.charts,
            charts_note=self.charts_note,
            files=self._ordered_members(),
        )
        member = self._member("manifest.json")
        member.write(manifest)
        member.close()

    def _ordered_members(self) -> list[Member]:
        order = [name for name, _, _ in bundle_files(self.charts)]
        by_name = {m.name: m for m in self.members}
        return [by_name[name] for name in order if name in by_name]


async def _settled(future: asyncio.Future[None]) -> None:
    """Await ``future``; cancelled meanwhile, still wait for it to end (a thread cannot be
    stopped: the files it writes must not be closed under it) before passing that on."""
    try:
        await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait({future})
        raise


def _is_async(render: ChartRenderer) -> bool:
    """Whether ``render`` is a coroutine function (or an object whose call is one)."""
    call = getattr(render, "__call__", None)  # noqa: B004 - the bound call of an object
    return inspect.iscoroutinefunction(render) or inspect.iscoroutinefunction(call)
