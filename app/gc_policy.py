"""The console's garbage-collector policy: what start-up built is out of the collector's sight.

A full collection walks every tracked object; the console's start-up (Qt wrappers,
modules, the windows) leaves a few hundred thousand that live as long as the process.
Loading a million parked entries decodes a thousand summaries a step, enough
survivors to start a full collection every 25 or so steps: 24 passes of about 60 ms
of the GUI thread's CPU each during one load, freeing nothing, each landing inside
one GUI step (bench_table). Frozen, a full pass walks only what was made since.
"""

from __future__ import annotations

import gc


def freeze_start_up() -> None:
    """Collect once, then move every object alive now out of the collector's passes
    (``gc.freeze``): they are never collected, and no pass walks them again."""
    gc.collect()
    gc.freeze()


__all__ = ["freeze_start_up"]
