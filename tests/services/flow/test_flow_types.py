"""FlowFrame helpers."""

from __future__ import annotations

import numpy as np

from services.flow.types import FlowFrame, Headline


def frame(n: int) -> FlowFrame:
    return FlowFrame(
        t=np.arange(n, dtype=np.float64),
        status_names=("captured",),
        status_counts=np.arange(n, dtype=np.float64)[None, :],
        dead_letters=np.ones(n),
        latency_ms=np.full((3, n), 5.0),
        queue_names=("q",),
        queue_depths=np.zeros((1, n)),
        headline=Headline(1.0, None, None, None, 0, n),
    )


def test_finished_drops_the_still_filling_second_from_every_series() -> None:
    done = frame(5).finished()
    assert done.seconds == 4
    assert done.t.tolist() == [0, 1, 2, 3]
    assert done.status_counts.shape == (1, 4)
    assert done.dead_letters.shape == (4,)
    assert done.latency_ms.shape == (3, 4)
    assert done.queue_depths.shape == (1, 4)
    assert done.headline == frame(5).headline


def test_finished_keeps_a_single_second() -> None:
    assert frame(1).finished().seconds == 1
