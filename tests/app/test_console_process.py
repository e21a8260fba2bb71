"""The console as an operator starts it: a process that Ctrl+C closes the orderly way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_ctrl_c_closes_the_console_and_leaves_no_process_behind(
    tmp_path: Path, amqp_url: str, redis_url: str
) -> None:
    config = tmp_path / "payops.toml"
    config.write_text(
        f'[profiles.t]\namqp_url = "{amqp_url}"\nredis_url = "{redis_url}"\n'
        'tap_exchanges = ["amq.topic"]\nredis_prefix = "payops-test-sigint"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PAYOPS_STATE_DIR": str(tmp_path)}
    console = subprocess.Popen(
        [sys.executable, "-m", "app", "console", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert console.stdout is not None
        deadline = time.monotonic() + 60
        for line in console.stdout:  # wait until the tap consumes: the console is up
            if "consuming amq.topic" in line or time.monotonic() > deadline:
                break
        console.send_signal(signal.SIGINT)
        assert console.wait(timeout=30) == 0
        # multiprocessing's resource tracker leaves a moment after its parent.
        leftovers = "?"
        for _ in range(50):
            leftovers = subprocess.run(
                ["pgrep", "-a", "-g", str(console.pid)], capture_output=True, text=True, check=False
            ).stdout.strip()
            if not leftovers:
                break
            time.sleep(0.1)
        assert leftovers == "", f"a child process outlived the console: {leftovers}"
        assert (tmp_path / "console.ini").is_file(), "the layout was saved on the way out"
    finally:
        if console.poll() is None:
            os.killpg(console.pid, signal.SIGKILL)
            console.wait()
