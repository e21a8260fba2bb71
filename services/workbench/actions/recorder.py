"""Recording the confirms of every window in flight together: :class:`ConfirmRecorder`.

RabbitMQ confirms persistent messages once it has written them to disk, so confirms come
in bursts: after a sync, every window in flight may be confirmed within a millisecond. A
window's room opens only once its confirms are recorded (finished in the ledger), so
recording them one window at a time - a script call each, one after another - left the
broker waiting while the run recorded and claimed its way back up (traced with 200 x 10:
after a burst of 1,800 confirms, ten finishes of 4-17 ms each before the last room
opened). The recorder is a group commit: one script call per DLQ is under way at a time,
and what the windows hand in meanwhile goes in the next call, all windows' together.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from services.workbench.actions.ledger import Finish
from services.workbench.model import ClaimResult

RECORD_BATCH: Final = 1000
"""At most this many finishes go in one script call (a script holds Redis meanwhile:
about 5 ms for 1,000)."""

OwnerT = TypeVar("OwnerT")

Finishing = Callable[[str, Sequence[Finish]], Awaitable[list[ClaimResult]]]
"""``ActionLedger.finish``: a DLQ's finishes in one script call, their results in order."""


@dataclass(slots=True, eq=False)
class _Handed(Generic[OwnerT]):
    owner: OwnerT
    finishes: list[tuple[int, str, Finish]]
    """(the owner's index of the entry, its DLQ, its finish)."""
    taken: bool = False


class ConfirmRecorder(Generic[OwnerT]):
    """Finishes handed in by several owners (windows), recorded together.

    :meth:`record` returns once the owner's finishes were recorded, by its own call or by
    the call of another owner that took them along; ``recorded(owner, [(index, result)])``
    is told of each part as it is recorded. When a call fails, its error is raised to the
    owner whose call it was; the others' finishes stay unrecorded (the window's settle
    finishes them, or meets the same error).
    """

    def __init__(
        self,
        finish: Finishing,
        recorded: Callable[[OwnerT, list[tuple[int, ClaimResult]]], None],
        batch: int = RECORD_BATCH,
    ) -> None:
        self._finish = finish
        self._recorded = recorded
        self._batch = batch
        self._waiting: list[_Handed[OwnerT]] = []
        self._lock = asyncio.Lock()

    async def record(self, owner: OwnerT, finishes: list[tuple[int, str, Finish]]) -> None:
        """Record ``finishes`` (index, DLQ, finish) of ``owner``, with whatever else waits."""
        if not finishes:
            return
        handed = _Handed(owner, finishes)
        self._waiting.append(handed)
        async with self._lock:
            if handed.taken:  # recorded by a call before (or lost with its error)
                return
            taken, self._waiting = self._waiting, []
            for each in taken:
                each.taken = True
            await self._record(taken)

    async def _record(self, taken: list[_Handed[OwnerT]]) -> None:
        by_dlq: dict[str, list[tuple[_Handed[OwnerT], int, Finish]]] = defaultdict(list)
        for handed in taken:
            for index, dlq, finish in handed.finishes:
                by_dlq[dlq].append((handed, index, finish))
        for dlq, items in by_dlq.items():
            for start in range(0, len(items), self._batch):
                chunk = items[start : start + self._batch]
                replies = await self._finish(dlq, [finish for _, _, finish in chunk])
                parts: dict[int, tuple[OwnerT, list[tuple[int, ClaimResult]]]] = {}
                for (handed, index, _), reply in zip(chunk, replies, strict=True):
                    part = parts.get(id(handed))
                    if part is None:
                        part = parts[id(handed)] = (handed.owner, [])
                    part[1].append((index, reply))
                for owner, done in parts.values():
                    self._recorded(owner, done)
