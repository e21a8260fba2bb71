"""How many rows one step of the console's full load takes: sized by what the last
steps cost per row, so that each step - a batch's decode, then its add to the index -
takes about :data:`TARGET_STEP_S` on a slow or busy host as on a quiet one."""

from __future__ import annotations

import asyncio
from typing import Final, Literal

TARGET_STEP_S: Final = 0.015
"""What one step of the load should take (the GUI's longest step target is 100 ms)."""
FIRST_ROWS: Final = 1000
LEAST_ROWS: Final = 200
MOST_ROWS: Final = 4000
_WEIGHT: Final = 0.3  # of the latest step in the running cost per row

Part = Literal["decode", "add"]


class LoadPace:
    """The rows of the next batch (:attr:`rows`), from the running cost per row of each
    part of a step (:meth:`took`): the dearer part sets the size."""

    def __init__(self, target_s: float = TARGET_STEP_S, first: int = FIRST_ROWS) -> None:
        self.target_s = target_s
        self._per_row: dict[Part, float] = {}
        self._rows = first

    @property
    def rows(self) -> int:
        """How many rows the next batch should hold."""
        return self._rows

    def took(self, part: Part, rows: int, seconds: float) -> None:
        """``part`` of a step took ``seconds`` for ``rows`` rows."""
        if rows <= 0 or seconds <= 0:
            return
        cost = seconds / rows
        before = self._per_row.get(part)
        self._per_row[part] = cost if before is None else before + _WEIGHT * (cost - before)
        dearest = max(self._per_row.values())
        self._rows = max(LEAST_ROWS, min(MOST_ROWS, round(self.target_s / dearest)))


async def let_waiting_run() -> None:
    """Yield between two steps so that what waits on the loop runs first: a coroutine whose
    sleep ended during the step is woken by the timer's callback, which only schedules
    its task (one more hop), and a plain ``sleep(0)`` would run the next step before it
    (two steps as one for it: on asyncio's loop and on qasync's). Three hops: each costs
    a pass of the loop, nothing next to a step."""
    for _ in range(3):
        await asyncio.sleep(0)


__all__ = ["TARGET_STEP_S", "LoadPace", "let_waiting_run"]
