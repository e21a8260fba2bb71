"""The live flow's process: clean stops, restarts, and a child that never outlives us."""

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
import orjson
import pytest

from services.config import Profile, TapBinding
from services.flow import process as flow_process
from services.flow.child import child_main
from services.flow.process import FlowProcess
from services.flow.protocol import ChildConfig
from services.links.status import LinkState, LinkStatus
from tests.helpers.paths import REPO_ROOT
from tests.helpers.waiting import eventually


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
        from services.flow.process import FlowProcess
        from services.flow.protocol import ChildConfig

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
