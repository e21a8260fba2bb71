"""Progress on stderr: one line rewritten in place on a terminal."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from services.snapshot.model import SnapshotProgress


def overwrite_line(text: str, stream: TextIO | None = None) -> None:
    """Print ``text`` over the current line of ``stream`` (stderr), with no newline."""
    print("\r" + text, end="", file=stream or sys.stderr, flush=True)


class SnapshotProgressLine:
    """A snapshot's progress: one line rewritten in place on a terminal, else a line a stage."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.stage: str | None = None
        self._shown = 0
        self._last = 0.0

    def __call__(self, progress: SnapshotProgress) -> None:
        new_stage = progress.stage != self.stage
        self.stage = progress.stage
        if not self.tty:
            if new_stage:
                print(f"payops: snapshot: {progress.stage}", file=self.stream, flush=True)
            return
        now = time.monotonic()
        finished = progress.total is not None and progress.done >= progress.total
        if not (new_stage or finished or now - self._last >= 0.1):
            return
        self._last = now
        text = f"{progress.stage}: {_done(progress)}"
        overwrite_line(text.ljust(self._shown), self.stream)
        self._shown = len(text)

    def clear(self) -> None:
        if self.tty and self._shown:
            overwrite_line(" " * self._shown + "\r", self.stream)
            self._shown = 0


def _done(progress: SnapshotProgress) -> str:
    if progress.stage == "packing" and progress.total:
        return f"{progress.done / progress.total:4.0%} of {progress.total / 1e6:,.1f} MB"
    if progress.total:
        return f"{progress.done:,} of {progress.total:,} ({progress.done / progress.total:.0%})"
    return f"{progress.done:,}"
