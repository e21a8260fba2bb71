"""The benchmarks' figures in a JSON file as well as on the screen, to compare two commits.

Each benchmark calls :func:`record_figures` with its figures; they are written to the file named
by ``$PAYOPS_BENCH_JSON`` (``make bench`` sets it to ``bench-results/<time>-<commit>.json``;
unset, nothing is written). The file says which commit and machine the run was on::

    {"commit": "24dfad9", "dirty": false, "started": "2026-12-04T16:01:02Z",
     "machine": {"cpus": 2, "load_1m": 0.4, "python": "3.11.7"},
     "benchmarks": {"requeue": {"requeue_rate": 5210.0, "shovel_rate": 9874.1, "ratio": 0.53}}}
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

RESULTS_ENV = "PAYOPS_BENCH_JSON"
RESULTS_DIR = Path("bench-results")


def results_path() -> Path | None:
    """The file this run's figures go to, if any."""
    name = os.environ.get(RESULTS_ENV)
    return Path(name) if name else None


def new_results_file() -> Path:
    """A fresh file under ``bench-results/`` named by the time and the commit."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return RESULTS_DIR / f"{stamp}-{_commit()[0]}.json"


def record_figures(benchmark: str, figures: Mapping[str, float | int | str]) -> None:
    """Add ``benchmark``'s figures to the results file (read, merged, written whole)."""
    path = results_path()
    if path is None:
        return
    document = json.loads(path.read_text()) if path.exists() else _header()
    document["benchmarks"][benchmark] = dict(figures)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    temporary.replace(path)


def _header() -> dict[str, object]:
    commit, dirty = _commit()
    return {
        "commit": commit,
        "dirty": dirty,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "load_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
        },
        "benchmarks": {},
    }


def _commit() -> tuple[str, bool]:
    """The checkout's short commit and whether it has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return commit, bool(status.strip())
