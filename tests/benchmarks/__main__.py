"""Run the benchmarks: ``python -m tests.benchmarks [NAME [ARGS...]]``.

NAME is one of ingest, park, requeue, table, snapshot, console_cpu; without it every benchmark runs,
each in its own process, with its defaults. ARGS go to the benchmark
(``--help`` lists them). The figures also go to a JSON file,
``$PAYOPS_BENCH_JSON`` or ``bench-results/<time>-<commit>.json`` (see
:mod:`tests.benchmarks.results`).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import subprocess
import sys

from tests.benchmarks.results import RESULTS_ENV, new_results_file, results_path

BENCHMARKS = {
    "ingest": "tests.benchmarks.bench_ingest",
    "park": "tests.benchmarks.bench_park",
    "requeue": "tests.benchmarks.bench_requeue",
    "table": "tests.benchmarks.bench_table",
    "snapshot": "tests.benchmarks.bench_snapshot",
    "console_cpu": "tests.benchmarks.bench_console_cpu",
}


def run_one(name: str, argv: list[str]) -> None:
    """Run one benchmark in this process."""
    entry = importlib.import_module(BENCHMARKS[name]).main
    if inspect.iscoroutinefunction(entry):
        asyncio.run(entry(argv))
    else:
        entry(argv)


def main() -> int:
    args = sys.argv[1:]
    if results_path() is None:  # the figures go to a file too; the children write to it
        os.environ[RESULTS_ENV] = str(new_results_file())
    if args and args[0] in BENCHMARKS:
        run_one(args[0], args[1:])
        print(f"figures written to {results_path()}")
        return 0
    if args and args[0] not in ("all",):
        known = ", ".join(BENCHMARKS)
        print(f"unknown benchmark {args[0]!r}; choose from {known}", file=sys.stderr)
        return 2
    failed = []
    for name in BENCHMARKS:
        print(f"\n=== bench_{name} ===", flush=True)
        result = subprocess.run([sys.executable, "-m", "tests.benchmarks", name], check=False)
        if result.returncode != 0:
            failed.append(name)
    print(f"\nfigures written to {results_path()}")
    if failed:
        print(f"benchmarks that failed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
