"""The collector's pace while bulk work runs: relaxed, counted, restored."""

from __future__ import annotations

import contextlib
import gc

from services.collector import BULK_GC_THRESHOLD, RelaxedWhileBusy, relaxed_collector


def test_the_collector_is_relaxed_while_jobs_run_and_restored_after_the_last() -> None:
    before = gc.get_threshold()
    with relaxed_collector():
        assert gc.get_threshold()[0] == max(BULK_GC_THRESHOLD, before[0])
        with relaxed_collector():  # a second job at once
            assert gc.get_threshold()[0] == max(BULK_GC_THRESHOLD, before[0])
        assert gc.get_threshold()[0] == max(BULK_GC_THRESHOLD, before[0])
    assert gc.get_threshold() == before
    with contextlib.suppress(RuntimeError), relaxed_collector():
        raise RuntimeError("a job that fails")
    assert gc.get_threshold() == before


def test_relaxed_while_busy_holds_it_once_and_lets_it_go_when_idle() -> None:
    before = gc.get_threshold()
    relaxed = max(BULK_GC_THRESHOLD, before[0])
    first, second = RelaxedWhileBusy(), RelaxedWhileBusy()
    first.busy(True)
    first.busy(True)  # said twice, held once
    second.busy(True)
    assert gc.get_threshold()[0] == relaxed
    first.busy(False)
    assert gc.get_threshold()[0] == relaxed  # the second parker still has a backlog
    second.busy(False)
    second.busy(False)
    assert gc.get_threshold() == before
