"""What bench_snapshot measures in a phase's process: peak RSS growth per stage, the CPU of
the process and of every process it starts, and the longest step of its event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import itertools
import os
import resource
import threading
import time

from tests.benchmarks.server_cpu import process_cpu_s

SAMPLE_INTERVAL_S = 0.050


PAGE_SIZE = resource.getpagesize()


def rss_now() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE


def vm_hwm() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def reset_hwm() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


class RssSampler:
    """Peak RSS of the process while it runs, overall and per stage (sampled)."""

    def __init__(self, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.baseline = 0
        self.peak = 0
        self.stage = "start"
        self.stage_peaks: dict[str, int] = {}
        self.stage_started: dict[str, float] = {}
        self.hwm_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        rss = rss_now()
        self.peak = max(self.peak, rss)
        self.stage_peaks[self.stage] = max(self.stage_peaks.get(self.stage, 0), rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def enter(self, stage: str) -> None:
        if stage != self.stage:
            self.sample()  # the end of the stage before
            self.stage = stage
            self.stage_started.setdefault(stage, time.perf_counter())
        self.sample()

    def start(self) -> None:
        gc.collect()
        self.hwm_reset = reset_hwm()
        self.baseline = rss_now()
        self.peak = self.baseline
        self.stage_started[self.stage] = time.perf_counter()
        self._thread.start()

    def stop(self) -> None:
        self.sample()
        self._stop.set()
        self._thread.join()
        if self.hwm_reset:
            self.peak = max(self.peak, vm_hwm())

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def _descendants(pid: int) -> list[int]:
    """``pid``'s child processes, and theirs (Linux: /proc/<pid>/task/*/children)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
                children = [int(c) for c in f.read().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *_descendants(child)]
    return found


class ProcessCpu:
    """CPU seconds of this process and of every process it starts (sampled every 100 ms,
    the last sample of a process that ends counts: up to 100 ms of its CPU may be
    missed), keyed by pid in the order they were seen."""

    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.start_s: dict[int, float] = {}
        self.last_s: dict[int, float] = {}
        self.stage_marks: list[tuple[str, float, float]] = []  # stage, all CPU, this CPU
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        for pid in [os.getpid(), *_descendants(os.getpid())]:
            cpu = process_cpu_s(pid)
            if cpu is not None:
                self.start_s.setdefault(pid, cpu if pid == os.getpid() else 0.0)
                self.last_s[pid] = cpu

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def mark(self, stage: str) -> None:
        """A stage starts: the CPU so far, of all the processes and of this one."""
        self.sample()
        this = self.last_s[os.getpid()] - self.start_s[os.getpid()]
        every = sum(last - self.start_s[pid] for pid, last in self.last_s.items())
        self.stage_marks.append((stage, every, this))

    def per_stage(self) -> list[tuple[str, float, float]]:
        """(stage, CPU of all the processes, CPU of this one) per stage, in order."""
        marks = self.stage_marks
        return [
            (name, every_end - every, this_end - this)
            for (name, every, this), (_, every_end, this_end) in itertools.pairwise(marks)
        ]

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def stop(self) -> dict[str, float]:
        """CPU seconds per process: ``this`` and ``child 1``, ``child 2`` ... in start order."""
        self.sample()
        self._stop.set()
        self._thread.join()
        out = {}
        for i, (pid, last) in enumerate(self.last_s.items()):
            out["this" if pid == os.getpid() else f"child {i}"] = last - self.start_s[pid]
        return out


class LoopLag:
    """The longest the event loop was kept busy: how late a short sleep woke up, and in
    which stage (the console runs the writer on its GUI loop: this is how long the GUI
    could not answer)."""

    def __init__(self, sampler: RssSampler, interval_s: float = 0.005) -> None:
        self.sampler = sampler
        self.interval_s = interval_s
        self.longest_s = 0.0
        self.stage = ""
        self.per_stage: dict[str, float] = {}
        self.longest_cpu_s = 0.0  # the loop thread's CPU between two ticks: its own part

    async def watch(self) -> None:
        while True:
            started, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(self.interval_s)
            late = time.perf_counter() - started - self.interval_s
            self.longest_cpu_s = max(self.longest_cpu_s, time.thread_time() - cpu)
            stage = self.sampler.stage
            self.per_stage[stage] = max(self.per_stage.get(stage, 0.0), late)
            if late > self.longest_s:
                self.longest_s, self.stage = late, stage


@dataclasses.dataclass
class PhaseResult:
    wall_s: float
    rss_baseline: int
    rss_growth: int
    hwm_reset: bool
    out_bytes: int
    entries: int
    entry_bytes: int = 0  # every field of every entry hash (the reference reads them all)
    stages: list[tuple[str, float, int]] = dataclasses.field(default_factory=list)
    sha256: str = ""
    max_lag_s: float = 0.0
    lag_stage: str = ""
    lag_per_stage: dict[str, float] = dataclasses.field(default_factory=dict)
    max_step_cpu_s: float = 0.0
    cpu_s: dict[str, float] = dataclasses.field(default_factory=dict)
    cpu_stages: list[tuple[str, float, float]] = dataclasses.field(default_factory=list)
