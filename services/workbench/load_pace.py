"""How many rows one step of the console's full load takes: sized by what the last
steps cost per row, so that each step - a batch's decode, then its add to the index -
takes about :data:`TARGET_STEP_S` on a slow or busy host as on a quiet one."""

from __future__ import annotations

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


__all__ = ["TARGET_STEP_S", "LoadPace"]
