"""CPU the servers spend on a benchmark's step: RabbitMQ's (a local ``beam.smp``, read from
/proc) and Redis's (``INFO cpu``), so a benchmark can say what each message costs the
whole machine, not only its own process."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (None: gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pid() -> int | None:
    """The pid of a RabbitMQ node running on this machine (None: none found here)."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"beam.smp") and b"rabbit" in argv:
            return int(name)
    return None


async def redis_cpu_s(redis: Any) -> float:
    """User + system CPU seconds the Redis server has used so far."""
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@dataclass(slots=True)
class ServerCpu:
    """CPU seconds of the broker (None: not on this machine) and of Redis (None: not
    asked) between :meth:`start` and :meth:`stop`."""

    broker_s: float | None = None
    redis_s: float | None = None
    _pid: int | None = None
    _broker0: float | None = None
    _redis0: float | None = None

    async def start(self, redis: Any = None) -> ServerCpu:
        self._pid = broker_pid()
        self._broker0 = process_cpu_s(self._pid) if self._pid is not None else None
        self._redis0 = await redis_cpu_s(redis) if redis is not None else None
        return self

    async def stop(self, redis: Any = None) -> ServerCpu:
        if self._pid is not None and self._broker0 is not None:
            now = process_cpu_s(self._pid)
            self.broker_s = now - self._broker0 if now is not None else None
        if redis is not None and self._redis0 is not None:
            self.redis_s = await redis_cpu_s(redis) - self._redis0
        return self


def per_message_us(seconds: float | None, n: int) -> float | None:
    """CPU µs per message (None stays None)."""
    return None if seconds is None else seconds * 1e6 / n


def shown_us(value: float | None) -> str:
    """``93 µs`` (``n/a`` when not measured)."""
    return "n/a" if value is None else f"{value:.0f} µs"
