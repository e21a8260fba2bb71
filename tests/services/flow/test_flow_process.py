"""The live flow's process: the parent's mirror, clean stops, and a child that never outlives us."""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import aio_pika
import numpy as np
import orjson
import pytest

from services.config import Profile, TapBinding
from services.flow import process as flow_process
from services.flow.aggregator import FlowAggregator
from services.flow.process import ChildConfig, FlowMirror, FlowProcess, child_main
from services.flow.types import FlowFrame
from services.links.status import LinkState, LinkStatus
from tests.helpers.paths import REPO_ROOT
from tests.helpers.waiting import eventually


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def assert_same_frame(a: FlowFrame, b: FlowFrame) -> None:
    np.testing.assert_array_equal(a.t, b.t)
    assert a.status_names == b.status_names
    np.testing.assert_array_equal(a.status_counts, b.status_counts)
    np.testing.assert_array_equal(a.dead_letters, b.dead_letters)
    np.testing.assert_array_equal(a.latency_ms, b.latency_ms)
    assert a.queue_names == b.queue_names
    np.testing.assert_array_equal(a.queue_depths, b.queue_depths)
    assert a.headline == b.headline


def test_the_mirror_fed_as_the_child_feeds_it_builds_the_aggregators_frames() -> None:
    clock = Clock(1_000_000.2)
    sent = int(clock())
    agg = FlowAggregator(capacity_s=120, dead_letter_queues=("dlq",), clock=clock)
    mirror = FlowMirror(capacity_s=120)

    def update() -> None:  # what FlowChild._queue_update sends
        nonlocal sent
        now = int(clock())
        frame = agg.frame(min(120, max(1, now - sent + 2)))
        mirror.apply(frame, agg.totals_by_status())
        sent = int(frame.t[-1])

    rng = np.random.default_rng(7)
    statuses = [f"s{i}" for i in range(5)]
    for step in range(400):
        for _ in range(int(rng.integers(0, 20))):
            agg.record_event(
                statuses[int(rng.integers(0, len(statuses)))], float(rng.random() * 50)
            )
        if step % 7 == 0:
            agg.record_dead_letter()
            agg.record_depth("dlq", step)
        if step % 11 == 0:
            agg.record_depth(f"q{step % 3}", step * 2)
        # Updates at ~15 Hz, with a stall of a few seconds now and then.
        clock.now += 5.0 if step % 97 == 0 else 1 / 15
        if step % 3:
            update()
    update()
    for window in (1, 2, 10, 60, 120, 500):
        assert_same_frame(mirror.frame(window), agg.frame(window))
    assert mirror.totals_by_status() == agg.totals_by_status()
    assert mirror.headline() == agg.headline()


def test_an_empty_mirror_gives_an_empty_frame() -> None:
    frame = FlowMirror(capacity_s=60).frame(30)
    assert frame.seconds == 30
    assert frame.status_names == () and frame.status_counts.shape == (0, 30)
    assert np.all(frame.dead_letters == 0) and np.all(np.isnan(frame.latency_ms))


def test_seeding_with_history_fills_only_the_seconds_the_child_has_not_reported() -> None:
    clock = Clock(2_000_000.5)
    history = FlowAggregator(capacity_s=120, clock=clock)
    for _ in range(60):  # a minute of history: 3 captured and 1 failed a second
        for status in ("captured", "captured", "captured", "failed"):
            history.record_event(status, 10.0)
        history.record_depth("dlq", 7)
        clock.now += 1
    stored = history.frame(61).finished()  # as read back from Redis

    mirror = FlowMirror(capacity_s=120)
    clock.now -= 10
    live = FlowAggregator(capacity_s=120, clock=clock)  # started 10 s ago
    for _ in range(10):
        live.record_event("captured", 5.0)
        clock.now += 1
    mirror.apply(live.frame(12), live.totals_by_status())
    latest = int(mirror.frame(1).t[-1])
    before = mirror.version

    filled = mirror.seed(stored)

    assert mirror.version > before
    frame = mirror.frame(61)
    assert int(frame.t[-1]) == latest  # the mirror still ends where the child is
    captured = frame.status_counts[frame.status_names.index("captured")]
    failed = frame.status_counts[frame.status_names.index("failed")]
    # Seconds the child reported keep the live counts; earlier ones come from history.
    assert np.all(captured[-11:-1] == 1) and np.all(failed[-12:] == 0)
    seeded = frame.t < latest - 11
    assert np.all(captured[seeded] == 3) and np.all(failed[seeded] == 1)
    assert filled == int(np.count_nonzero(stored.t < latest - 11))
    assert mirror.totals_by_status() == live.totals_by_status()
    assert mirror.seed(stored) == 0  # nothing left to fill


# -- the process, against the real broker ----------------------------------------------


def gone(pid: int) -> bool:
    """Whether ``pid`` has ended (gone, or a zombie its new parent has yet to reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def profile_for(amqp_url: str, redis_url: str, exchange: str) -> Profile:
    return Profile(
        name="t", amqp_url=amqp_url, redis_url=redis_url, tap_exchanges=(TapBinding(exchange),)
    )


@pytest.mark.integration
async def test_the_child_exits_when_the_parents_end_of_the_pipe_closes(
    amqp_url: str, redis_url: str, unique_prefix: str
) -> None:
    ctx = multiprocessing.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=True)
    config = ChildConfig(profile_for(amqp_url, redis_url, f"{unique_prefix}x"), capacity_s=60)
    child = ctx.Process(target=child_main, args=(child_conn, config), daemon=True)
    child.start()
    child_conn.close()
    try:
        # It runs and reports (a status, then updates) ...
        assert await asyncio.to_thread(parent_conn.poll, 20)
        assert child.is_alive()
        # ... until the parent's end closes, as when the parent dies.
        parent_conn.close()
        await asyncio.to_thread(child.join, 10)
        assert child.exitcode == 0
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        child.close()


@pytest.mark.integration
async def test_the_child_exits_when_its_parent_is_killed(
    amqp_url: str, redis_url: str, unique_prefix: str
) -> None:
    exchange = f"{unique_prefix}orphan"
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from services.config import Profile, TapBinding
        from services.flow.process import ChildConfig, FlowProcess

        async def main():
            profile = Profile(name="t", amqp_url={amqp_url!r}, redis_url={redis_url!r},
                              tap_exchanges=(TapBinding({exchange!r}),))
            flow = FlowProcess(ChildConfig(profile, capacity_s=60), lambda status: None)
            flow.start()
            while not flow.tap.bound.is_set():
                await asyncio.sleep(0.02)
            print(flow.process.pid, flow.tap.queue_name, flush=True)
            await asyncio.sleep(3600)

        asyncio.run(main())
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    try:
        assert parent.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(parent.stdout.readline), 30)
        pid_text, tap_queue = line.split()
        pid = int(pid_text)
        assert not gone(pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        await eventually(lambda: gone(pid), 15)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    # Its tap queue went with its connection.
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        with pytest.raises(Exception, match="NOT_FOUND"):
            await channel.declare_queue(tap_queue, passive=True)
    finally:
        await connection.close()


@pytest.mark.integration
async def test_stop_leaves_no_child_and_a_crashed_child_is_restarted(
    amqp_url: str, redis_url: str, unique_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flow_process, "RESTART_DELAY_S", 0.2)
    exchange_name = f"{unique_prefix}crash"
    conn = await aio_pika.connect(amqp_url)
    channel = await conn.channel()
    exchange = await channel.declare_exchange(
        exchange_name, aio_pika.ExchangeType.TOPIC, auto_delete=True
    )
    statuses: list[LinkStatus] = []
    flow = FlowProcess(
        ChildConfig(profile_for(amqp_url, redis_url, exchange_name), hold_consume=True),
        statuses.append,
    )
    try:
        flow.start()
        await eventually(flow.tap.bound.is_set)
        assert not flow.tap.ready.is_set()  # held back until released
        for _ in range(20):
            await exchange.publish(
                aio_pika.Message(orjson.dumps({"status": "captured"})), routing_key="p"
            )
        await asyncio.sleep(0.3)
        assert flow.mirror.totals_by_status() == {}
        flow.release_consume()
        await eventually(lambda: flow.mirror.totals_by_status() == {"captured": 20})

        first = flow.process
        assert first is not None and first.pid is not None
        first_pid = first.pid
        os.kill(first_pid, signal.SIGKILL)
        await eventually(lambda: any("ended unexpectedly" in s.detail for s in statuses), 10)
        await eventually(lambda: flow.process is not None and flow.tap.ready.is_set())
        second = flow.process
        assert second is not None and second.pid != first_pid
        await eventually(lambda: gone(first_pid), 10)
    finally:
        await flow.stop()
        await flow.stop()
        await channel.close()
        await conn.close()
    assert flow.process is None
    assert multiprocessing.active_children() == []
    assert any(s.state is LinkState.FAILED for s in statuses)


@pytest.mark.integration
async def test_the_child_outlasts_a_sigterm_and_the_parent_stops_it_the_orderly_way(
    amqp_url: str, redis_url: str, unique_prefix: str
) -> None:
    # A service manager signals the whole group; the child leaves the stopping
    # to its parent, so its recorder can write its last seconds and let go of
    # the history lease.
    profile = profile_for(amqp_url, redis_url, f"{unique_prefix}term")
    states = []
    flow = FlowProcess(
        ChildConfig(dataclasses.replace(profile, redis_prefix=unique_prefix.rstrip("."))),
        lambda status: None,
        on_recorder=states.append,
    )
    try:
        flow.start()
        await eventually(
            lambda: (
                flow.tap.bound.is_set()
                and flow.recorder is not None
                and flow.recorder.role == "writer"
            ),
            30,
        )
        child = flow.process
        assert child is not None and child.pid is not None
        os.kill(child.pid, signal.SIGTERM)
        await asyncio.sleep(0.5)
        assert child.is_alive()
    finally:
        await flow.stop()
    # Its last words: the recorder wrote, then released the lease.
    assert states[-1].role == "standby"
    assert states[-1].detail == "stopped, lease released"
