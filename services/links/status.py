"""Connection state of one backing service (RabbitMQ or Redis), as views show it."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field


class LinkState(enum.Enum):
    """Where a connection stands."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    FAILED = "failed"


@dataclass(frozen=True)
class LinkStatus:
    """One service's connection state, with the reason when it is not connected.

    ``retry_in_s`` is how long until the next attempt (None when connected).
    ``failover_to`` (``host:port``): the server it is connected to now is not the one it
    was connected to before: a Sentinel failover (empty: none seen).
    """

    service: str
    state: LinkState
    target: str = ""
    detail: str = ""
    retry_in_s: float | None = None
    since: float = field(default_factory=time.time)
    failover_to: str = ""
