"""Which GUI step was the longest: each outermost Qt event timed with the GUI thread's own
CPU (``time.thread_time``) and wall time, named by its receiver and event type, and the
garbage collector's passes timed beside them (a pass inside an event is part of it)."""

from __future__ import annotations

import contextlib
import gc
import heapq
import itertools
import time
from dataclasses import dataclass
from typing import Any

KEPT = 8  # the longest events reported


@dataclass(order=True)
class TimedStep:
    """One outermost Qt event (or a gc pass): own CPU and wall seconds, and what it was."""

    cpu_s: float
    wall_s: float
    what: str = ""

    def render(self) -> str:
        return f"{self.cpu_s * 1000:6.1f} ms own CPU {self.wall_s * 1000:7.1f} ms wall  {self.what}"


def receiver_name(receiver: Any) -> str:
    """Class and objectName of ``receiver``; for a nameless child (a QTimer) the attribute
    of its parent that holds it, so ``QTimer FailedPaymentsView._refresh_timer``."""
    try:
        name = f"{type(receiver).__name__}"
        if receiver.objectName():
            return f"{name} {receiver.objectName()!r}"
        parent = receiver.parent()
        if parent is None:
            return name
        for attribute, value in vars(parent).items():
            if value is receiver:
                return f"{name} {type(parent).__name__}.{attribute}"
        return f"{name} (child of {type(parent).__name__})"
    except (RuntimeError, AttributeError, TypeError):  # deleted on the way
        return "?"


def event_type_name(event_type: Any) -> str:
    return str(getattr(event_type, "name", event_type))


class StepLog:
    """The longest steps seen since :meth:`reset`, and the collector's passes."""

    def __init__(self) -> None:
        self.events: list[TimedStep] = []  # a min-heap of the KEPT longest (by own CPU)
        self.gc_passes: list[TimedStep] = []
        self.gc_total_s = 0.0
        self._counter = itertools.count()
        self._gc_started = (0.0, 0.0)
        gc.callbacks.append(self._on_gc)

    def reset(self) -> None:
        self.events.clear()
        self.gc_passes.clear()
        self.gc_total_s = 0.0

    def add_event(self, cpu_s: float, wall_s: float, describe: Any) -> None:
        if len(self.events) < KEPT or cpu_s > self.events[0].cpu_s:
            step = TimedStep(cpu_s, wall_s, describe())
            if len(self.events) < KEPT:
                heapq.heappush(self.events, step)
            else:
                heapq.heapreplace(self.events, step)

    def longest(self) -> TimedStep:
        return max(self.events, default=TimedStep(0.0, 0.0, "none"))

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = (time.thread_time(), time.perf_counter())
            return
        cpu, wall = (
            time.thread_time() - self._gc_started[0],
            time.perf_counter() - self._gc_started[1],
        )
        self.gc_total_s += cpu
        if info["generation"] == 2 or cpu > 0.005:
            self.gc_passes.append(
                TimedStep(
                    cpu, wall, f"gc generation {info['generation']}, {info['collected']} freed"
                )
            )

    def report(self) -> list[str]:
        lines = ["  longest Qt events during the load (outermost, by own CPU):"]
        lines += ["    " + step.render() for step in sorted(self.events, reverse=True)]
        passes = sorted(self.gc_passes, reverse=True)[:4]
        lines.append(
            f"  gc during the load: {self.gc_total_s * 1000:.0f} ms of CPU in all;"
            f" {len(self.gc_passes)} long or full passes"
        )
        lines += ["    " + step.render() for step in passes]
        return lines

    def close(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)


class CallTimes:
    """The longest call (own CPU, wall) and the total own CPU of named methods, timed by
    wrapping them on their instances while :meth:`watch` is on (Python callers and Qt
    signals reach the wrapper; Qt's virtual calls, a paintEvent, do not)."""

    def __init__(self) -> None:
        self.longest: dict[str, TimedStep] = {}
        self.total_cpu_s: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._patched: list[tuple[Any, str]] = []

    def watch(self, owner: Any, method: str, label: str) -> None:
        original = getattr(owner, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                cpu_s, wall_s = time.thread_time() - cpu, time.perf_counter() - started
                self.total_cpu_s[label] = self.total_cpu_s.get(label, 0.0) + cpu_s
                self.calls[label] = self.calls.get(label, 0) + 1
                if cpu_s > self.longest.get(label, TimedStep(-1.0, 0.0)).cpu_s:
                    self.longest[label] = TimedStep(cpu_s, wall_s, label)

        setattr(owner, method, timed)
        self._patched.append((owner, method))

    def close(self) -> None:
        for owner, method in self._patched:
            with contextlib.suppress(AttributeError):
                delattr(owner, method)
        self._patched.clear()

    def report(self) -> list[str]:
        lines = ["  the longest call of each part during the load (own CPU):"]
        for label, step in sorted(self.longest.items(), key=lambda kv: -kv[1].cpu_s):
            calls = self.calls[label]
            mean_ms = self.total_cpu_s[label] / calls * 1000
            lines.append(f"    {step.render()}  ({calls:,} calls, {mean_ms:.1f} ms mean)")
        return lines
