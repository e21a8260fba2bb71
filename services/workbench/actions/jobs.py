"""Jobs: every bulk action (requeue, retry, cancel) as a record in Redis that other
consoles and processes can read and steer.

Keys (``P`` is the profile's ``redis_prefix``; a job's keys are single-key commands
only, so they need no hash tag)::

    P:jobs              ZSET    job id -> created at (epoch ms): the list, newest last
    P:job:<id>          HASH    action, operator, host, note, target, created, state,
                                reason (why it paused or stopped), finished, rate,
                                canary, max_failed_pct, force, the action's counters
                                (done, skipped, held, failed), and ``run:<token>`` per
                                run: how far that run's counts were applied (JSON)
    P:job:<id>:sel      LIST    the frozen selection: ``<dlq> <entry id>``, in order
    P:job:<id>:dlqs     SET     the DLQs of its selection (where its outcome counters are)
    P:job:<id>:runner   STRING  the process running it (``SET PX``, refreshed while it
                                runs): a job whose runner is gone can be resumed
    P:{D}:jobc:<id>     HASH    outcome -> count, per DLQ (see ``outcomes.model``)

Expiry: a job that is over (``done``, ``cancelled``, ``stopped``) keeps its keys, its
selection and its outcome counters for the profile's ``job_retention_days``
(``JobStore.retention_s``), counted from the moment it ended; a ``running`` or ``paused``
job never expires (resuming a stopped job takes the expiry off again). The list drops
the ids of expired jobs as it meets them.

States: ``running`` -> ``paused`` (by an operator, the canary or the failure share) ->
``running`` ... -> ``done`` | ``cancelled``; ``stopped`` when the operator stopped the
process that ran it. A state change is a compare-and-set, so two consoles pressing
pause and resume at once leave one answer.

Failover: the runner's writes to its job are safe to repeat - a counter write carries the
run's totals so far (:meth:`JobStore.count_run`), the close names its own ``finished``
time (:meth:`JobStore.finish`) - so they, and the runner's reads, ride through a Redis
failover (:func:`~services.links.redis_client.through_failover`): a job hit by one still
ends ``done`` with counters that say what its run did, each entry counted once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.links.redis_client import through_failover
from services.outcomes.model import OUTCOME_ORDER, Outcome, dlq_base, job_counter_key
from services.workbench.actions.pace import Pace
from services.workbench.actions.report import ActionOutcome

log = logging.getLogger(__name__)

DEFAULT_RETENTION_S: Final = 30 * 24 * 3600
"""How long a job that is over is kept by default (``job_retention_days`` = 30)."""
PRUNE_BATCH: Final = 100
"""How many of the oldest ids in the list of jobs a new job looks at for expired ones."""
RUNNER_TTL_MS: Final = 15_000
"""A job's runner key lives this long unless refreshed (every few seconds while it runs)."""
SELECTION_CHUNK: Final = 1000
COUNTER_NAMES: Final = ("done", "skipped", "held", "failed")
"""What the action did to entries, as the job counts it."""


class JobState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"
    STOPPED = "stopped"

    @property
    def is_final(self) -> bool:
        return self in (JobState.DONE, JobState.CANCELLED)

    @property
    def expires(self) -> bool:
        """Whether a job in this state is over and expires after the retention."""
        return self not in (JobState.RUNNING, JobState.PAUSED)


_SET_STATE: Final = """
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return {0, false} end
local allowed = false
for i = 3, #ARGV do if ARGV[i] == cur then allowed = true end end
if not allowed then return {0, cur} end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'reason', ARGV[2])
return {1, cur}
"""


_FINISH: Final = """
local cur = redis.call('HMGET', KEYS[1], 'state', 'finished')
if not cur[1] then return 0 end
if cur[1] == ARGV[1] and cur[2] == ARGV[3] then return 1 end
local moved = 0
for i = 4, #ARGV do if ARGV[i] == cur[1] then moved = 1 end end
if moved == 1 then redis.call('HSET', KEYS[1], 'state', ARGV[1], 'reason', ARGV[2]) end
redis.call('HSET', KEYS[1], 'finished', ARGV[3])
return moved
"""
"""KEYS: job; ARGV: state, reason, finished (ms), the states it may end from. 1 when it
ended now - or ended before by this same call (same state and ``finished``: a repeat
after a lost reply) - else 0; ``finished`` is written either way."""

_COUNT_RUN: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local field = 'run:' .. ARGV[1]
local seq = tonumber(ARGV[2])
local applied = {}
local raw = redis.call('HGET', KEYS[1], field)
if raw then
  local last = cjson.decode(raw)
  if tonumber(last.seq) >= seq then return 0 end
  applied = last.counts
end
local now = {}
for i = 3, #ARGV, 2 do
  local count = tonumber(ARGV[i + 1])
  now[ARGV[i]] = count
  local delta = count - (tonumber(applied[ARGV[i]]) or 0)
  if delta ~= 0 then redis.call('HINCRBY', KEYS[1], ARGV[i], delta) end
end
for name, count in pairs(applied) do
  if now[name] == nil and tonumber(count) ~= 0 then
    redis.call('HINCRBY', KEYS[1], name, -tonumber(count))
  end
end
redis.call('HSET', KEYS[1], field, cjson.encode({seq = seq, counts = now}))
return 1
"""
"""KEYS: job; ARGV: run token, seq (outcomes counted so far), then name, total pairs: the
run's totals. Applied only when ``seq`` is newer than the run's last applied one, moving
the job's counters by the difference: the same call twice, an older one after a newer, or
one after a lost one give the counters of the newest applied. 1 when applied."""


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored (see the module docstring)."""

    job_id: str
    action: str
    operator: str
    host: str
    note: str
    target: str
    created_ms: int
    state: JobState
    reason: str = ""
    finished_ms: int | None = None
    pace: Pace = field(default_factory=Pace)
    force: bool = False
    total: int = 0
    counts: Mapping[str, int] = field(default_factory=dict)
    """done, skipped, held, failed: what the action did."""
    outcomes: Mapping[str, int] = field(default_factory=dict)
    """outcome value -> how many of its entries have it."""
    runner_alive: bool = False

    def outcome_line(self) -> str:
        """``180 succeeded, 12 failed again, 8 pending``."""
        parts = [
            f"{self.outcomes[o.value]:,} {o.label}"
            for o in OUTCOME_ORDER
            if self.outcomes.get(o.value)
        ]
        return ", ".join(parts) or "no outcomes yet"

    def as_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "action": self.action,
            "operator": self.operator,
            "host": self.host,
            "note": self.note,
            "target": self.target,
            "created_ms": self.created_ms,
            "state": self.state.value,
            "reason": self.reason or None,
            "finished_ms": self.finished_ms,
            "rate_per_s": self.pace.rate or None,
            "canary": self.pace.canary or None,
            "max_failed_pct": self.pace.max_failed_pct,
            "force": self.force,
            "selected": self.total,
            "counts": dict(self.counts),
            "outcomes": {o.value: self.outcomes.get(o.value, 0) for o in OUTCOME_ORDER},
            "runner_alive": self.runner_alive,
        }


def new_job_id() -> str:
    """12 hex digits of the time in ms and 6 random: sortable by time, unique."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(3)}"


def runner_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def runner_is_dead(token: str) -> bool:
    """Whether a runner token names a process on this machine that no longer exists."""
    host, _, rest = token.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", "replace") if value else ""


def _number(value: bytes | None) -> float:
    try:
        return float(_text(value) or 0)
    except ValueError:
        return 0.0


class JobStore:
    """Jobs in Redis (see the module docstring)."""

    def __init__(
        self, redis: aioredis.Redis, prefix: str, retention_s: int = DEFAULT_RETENTION_S
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.retention_s = retention_s
        """How long a job that is over is kept (seconds)."""
        self._set_state = redis.register_script(_SET_STATE)
        self._finish = redis.register_script(_FINISH)
        self._count_run = redis.register_script(_COUNT_RUN)

    def key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    @property
    def index_key(self) -> str:
        return f"{self.prefix}:jobs"

    async def create(
        self,
        action: str,
        *,
        operator: str,
        host: str,
        note: str,
        target: str,
        pace: Pace,
        force: bool = False,
    ) -> str:
        """A new running job; its id."""
        job_id = new_job_id()
        now = int(time.time() * 1000)
        # Not a transaction: the job and the list of jobs are in two hash slots on a
        # Redis Cluster. The job is written first, so a listed job always has its record.
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(
            self.key(job_id),
            mapping={
                "action": action,
                "operator": operator,
                "host": host,
                "note": note,
                "target": target,
                "created": now,
                "state": JobState.RUNNING.value,
                "reason": "",
                "rate": pace.rate,
                "canary": pace.canary,
                "max_failed_pct": pace.max_failed_pct,
                "force": int(force),
            },
        )
        pipe.zadd(self.index_key, {job_id: now})
        await pipe.execute()
        await self.prune()
        return job_id

    async def prune(self, count: int = PRUNE_BATCH) -> int:
        """Drop from the list of jobs the oldest ids whose job expired; how many."""
        oldest = cast(
            list[tuple[bytes, float]],
            await self.redis.zrange(self.index_key, 0, count - 1, withscores=True),
        )
        cutoff = (time.time() - self.retention_s) * 1000
        old = [job_id for job_id, created in oldest if created <= cutoff]
        if not old:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for job_id in old:
            pipe.exists(self.key(job_id.decode()))
        alive = await pipe.execute()
        gone = [job_id for job_id, there in zip(old, alive, strict=True) if not there]
        if gone:
            await self.redis.zrem(self.index_key, *gone)
        return len(gone)

    async def _keep(self, job_id: str, state: JobState) -> None:
        """Expire the keys of a job that is over after the retention; keep a live one's."""
        key = self.key(job_id)
        dlqs = cast(set[bytes], await self.redis.smembers(f"{key}:dlqs"))
        keys = [key, f"{key}:sel", f"{key}:dlqs"] + [
            job_counter_key(dlq_base(self.prefix, dlq.decode()), job_id) for dlq in sorted(dlqs)
        ]
        pipe = self.redis.pipeline(transaction=False)
        for name in keys:
            if state.expires:
                pipe.expire(name, max(1, self.retention_s))
            else:
                pipe.persist(name)
        await pipe.execute()

    async def add_selection(self, job_id: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Append ``(dlq, entry id)`` pairs to the job's frozen selection."""
        if not pairs:
            return
        pipe = self.redis.pipeline(transaction=False)
        key = self.key(job_id)
        for start in range(0, len(pairs), SELECTION_CHUNK):
            chunk = pairs[start : start + SELECTION_CHUNK]
            pipe.rpush(f"{key}:sel", *(f"{dlq} {entry_id}" for dlq, entry_id in chunk))
        pipe.sadd(f"{key}:dlqs", *{dlq for dlq, _ in pairs})
        await pipe.execute()

    async def selection(self, job_id: str) -> list[tuple[str, str]]:
        """The job's frozen selection, in order."""
        raw = cast(list[bytes], await self.redis.lrange(f"{self.key(job_id)}:sel", 0, -1))
        pairs = []
        for item in raw:
            dlq, _, entry_id = item.decode("utf-8", "replace").rpartition(" ")
            pairs.append((dlq, entry_id))
        return pairs

    async def count_run(self, job_id: str, run: str, totals: Mapping[str, int], seq: int) -> bool:
        """Record what run ``run`` of the job did so far: ``totals`` (done, skipped, held,
        failed) after ``seq`` outcomes. The job's counters move by the difference from the
        run's last applied totals, and only when ``seq`` is newer (:data:`_COUNT_RUN`):
        safe to repeat and to arrive out of order. True when applied."""
        args: list[str | int] = [run, seq]
        for name, count in sorted(totals.items()):
            args += [name, count]
        return bool(int(cast(int, await self._count_run(keys=[self.key(job_id)], args=args))))

    async def set_state(
        self, job_id: str, state: JobState, reason: str = "", *, only_from: Iterable[JobState]
    ) -> tuple[bool, JobState | None]:
        """Compare-and-set the job's state (from one of ``only_from``): whether it moved,
        and the state it was in (None: no such job)."""
        reply = await self._set_state(
            keys=[self.key(job_id)], args=[state.value, reason, *(s.value for s in only_from)]
        )
        before = _text(reply[1]) if reply[1] else ""
        moved = bool(int(reply[0]))
        if moved:
            await self._keep(job_id, state)
        return moved, JobState(before) if before else None

    async def finish(self, job_id: str, state: JobState, reason: str = "") -> None:
        """The run ended: ``done`` / ``cancelled`` / ``stopped`` from running or paused
        (:meth:`end`, now). Rides through a failover: the call is safe to repeat."""
        finished_ms = int(time.time() * 1000)
        await through_failover(
            lambda: self.end(job_id, state, reason, finished_ms),
            what=f"the close of job {job_id}",
            client=self.redis,
        )

    async def end(self, job_id: str, state: JobState, reason: str, finished_ms: int) -> bool:
        """Move the job from running or paused to ``state`` and write ``finished_ms`` (that
        either way): True when it moved - or had moved by this same call, the same state
        and ``finished_ms`` (:data:`_FINISH`), so a repeat after a lost reply answers as
        the first call did. A job that moved is kept or expires as its state says."""
        args = [state.value, reason, finished_ms, JobState.RUNNING.value, JobState.PAUSED.value]
        moved = bool(int(cast(int, await self._finish(keys=[self.key(job_id)], args=args))))
        if moved:
            await self._keep(job_id, state)
        return moved

    async def state(self, job_id: str) -> tuple[JobState | None, str]:
        """The job's state and why (None: no such job); rides through a failover."""
        raw = await through_failover(
            lambda: self.redis.hmget(self.key(job_id), "state", "reason"),
            what=f"the state of job {job_id}",
            client=self.redis,
        )
        state, reason = cast(list[bytes | None], raw)
        return (JobState(_text(state)) if state else None), _text(reason)

    # ------------------------------------------------------------------ runner

    async def claim_runner(self, job_id: str, token: str) -> bool:
        """Become the job's runner when none is alive (a runner on this machine whose
        process is gone counts as dead at once); True when taken."""
        key = f"{self.key(job_id)}:runner"
        if await self.redis.set(key, token, px=RUNNER_TTL_MS, nx=True):
            return True
        current = cast(bytes | None, await self.redis.get(key))
        if current is None or not runner_is_dead(current.decode("utf-8", "replace")):
            return False
        taken = await self.redis.eval(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then"
            " redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0",
            1,
            key,
            current,
            token,
            RUNNER_TTL_MS,
        )
        return bool(int(cast(int, taken)))

    async def refresh_runner(self, job_id: str, token: str) -> bool:
        key = f"{self.key(job_id)}:runner"
        current = cast(bytes | None, await self.redis.get(key))
        if current is not None and current.decode() != token:
            return False
        await self.redis.set(key, token, px=RUNNER_TTL_MS)
        return True

    async def drop_runner(self, job_id: str, token: str) -> None:
        key = f"{self.key(job_id)}:runner"
        current = cast(bytes | None, await self.redis.get(key))
        if current is not None and current.decode() == token:
            await self.redis.delete(key)

    # ------------------------------------------------------------------ reading

    async def outcome_counts(self, job_id: str) -> dict[str, int]:
        """Outcome -> how many of the job's entries have it (summed over its DLQs)."""
        dlqs = cast(set[bytes], await self.redis.smembers(f"{self.key(job_id)}:dlqs"))
        if not dlqs:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for dlq in sorted(dlqs):
            pipe.hgetall(job_counter_key(dlq_base(self.prefix, dlq.decode()), job_id))
        totals: Counter[str] = Counter()
        for raw in await pipe.execute():
            for name, value in cast(dict[bytes, bytes], raw).items():
                totals[_text(name)] += int(_number(value))
        return {name: count for name, count in totals.items() if count > 0}

    async def get(self, job_id: str) -> Job | None:
        key = self.key(job_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(key)
        pipe.llen(f"{key}:sel")
        pipe.exists(f"{key}:runner")
        raw, total, alive = await pipe.execute()
        raw = cast(dict[bytes, bytes], raw)
        if not raw:
            return None
        state = _text(raw.get(b"state")) or JobState.RUNNING.value
        counts = {name: int(_number(raw.get(name.encode()))) for name in COUNTER_NAMES}
        finished = int(_number(raw.get(b"finished"))) or None
        return Job(
            job_id=job_id,
            action=_text(raw.get(b"action")),
            operator=_text(raw.get(b"operator")),
            host=_text(raw.get(b"host")),
            note=_text(raw.get(b"note")),
            target=_text(raw.get(b"target")),
            created_ms=int(_number(raw.get(b"created"))),
            state=JobState(state) if state in JobState._value2member_map_ else JobState.STOPPED,
            reason=_text(raw.get(b"reason")),
            finished_ms=finished,
            pace=Pace(
                _number(raw.get(b"rate")),
                int(_number(raw.get(b"canary"))),
                _number(raw.get(b"max_failed_pct")) or Pace().max_failed_pct,
            ),
            force=bool(int(_number(raw.get(b"force")))),
            total=int(total),
            counts=counts,
            outcomes=await self.outcome_counts(job_id),
            runner_alive=bool(alive),
        )

    async def recent(self, limit: int = 20) -> list[Job]:
        """The newest jobs, newest first (the ids of expired ones are dropped)."""
        ids = cast(list[bytes], await self.redis.zrevrange(self.index_key, 0, limit - 1))
        jobs = [await self.get(job_id.decode()) for job_id in ids]
        gone = [job_id for job_id, job in zip(ids, jobs, strict=True) if job is None]
        if gone:
            await self.redis.zrem(self.index_key, *gone)
        return [job for job in jobs if job is not None]


def counter_of(outcome: ActionOutcome) -> str:
    """The job counter an outcome counts in (done, skipped, held, failed)."""
    if outcome.status == "skipped" and outcome.detail.startswith(HELD_PREFIX):
        return "held"
    return outcome.status


class LiveCounts:
    """Counts a run's results into its job as they come (``tick`` after every window,
    ``flush`` at the end), so other consoles see its counters move. Every write carries
    the run's totals so far (:meth:`JobStore.count_run`, ``run`` names the run): a tick
    that fails (a failover) is made good by the next write, and ``flush`` rides through
    a failover until the job holds the run's final totals."""

    def __init__(
        self, jobs: JobStore, job_id: str, outcomes: list[ActionOutcome], run: str
    ) -> None:
        self.jobs = jobs
        self.job_id = job_id
        self.outcomes = outcomes
        self.run = run
        self.counted = 0
        self.totals: Counter[str] = Counter()
        self._writes: list[asyncio.Future[None]] = []

    def _count_new(self) -> bool:
        new = self.outcomes[self.counted :]
        self.counted = len(self.outcomes)
        self.totals.update(counter_of(o) for o in new)
        return bool(new)

    def tick(self) -> None:
        if self._count_new():
            write = self.jobs.count_run(self.job_id, self.run, dict(self.totals), self.counted)
            self._writes.append(asyncio.ensure_future(_quietly(write)))

    async def flush(self) -> None:
        """The run's final totals into its job (through a failover)."""
        self._count_new()
        writes, self._writes = self._writes, []
        await asyncio.gather(*writes)
        totals, seq = dict(self.totals), self.counted
        await through_failover(
            lambda: self.jobs.count_run(self.job_id, self.run, totals, seq),
            what=f"the counters of job {self.job_id}",
            client=self.jobs.redis,
        )


async def _quietly(write: Awaitable[bool]) -> None:
    """A tick's write: one that fails is made good by the next (see :class:`LiveCounts`)."""
    try:
        await write
    except (RedisError, OSError) as exc:
        log.debug("a job's counters were not written (the next write has them): %s", exc)


HELD_PREFIX: Final = "held back: "
"""How a skipped outcome held back by the replay gate starts (counted as ``held``)."""

__all__ = [
    "DEFAULT_RETENTION_S",
    "HELD_PREFIX",
    "Job",
    "JobState",
    "JobStore",
    "LiveCounts",
    "Outcome",
    "Pace",
    "new_job_id",
    "runner_token",
]
