"""The installed Qt binding keeps CPython's singletons alive (PySide6 6.12.0 did not)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from PySide6.QtCore import QObject, Signal

class Probe(QObject):
    fired = Signal()

probe = Probe()
before = sys.getrefcount(None), sys.getrefcount(True)
for _ in range(20000):
    probe.setObjectName("probe")
    probe.fired.emit()
after = sys.getrefcount(None), sys.getrefcount(True)
print(before, after)
# The bug loses one reference per call (20,000 here); allow for unrelated noise.
sys.exit(0 if after[0] > before[0] - 1000 and after[1] > before[1] - 1000 else 1)
"""


def test_void_calls_and_emits_do_not_leak_references_to_none_or_true() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, (
        "the Qt binding drops references to None/True (the interpreter would abort after "
        f"a while): {result.stdout} {result.stderr[-300:]}"
    )
