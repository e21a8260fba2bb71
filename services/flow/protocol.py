"""The pipe between the live flow's child process and the GUI: small frozen dataclasses.

Child to parent (pickled over one duplex ``multiprocessing`` pipe):

- ``LinkChanged`` (the RabbitMQ link's ``LinkStatus``), ``ProblemFound`` and
  ``ProblemResolved`` (a tap or depth-poll problem, by its text);
- ``FlowUpdated`` at most 15 times a second (``child.UPDATE_HZ``), only when the
  aggregator's version changed, the second rolled over or the tap's state
  changed (idle, the child wakes once a second or at the next delivery). Its
  ``frame`` is ``aggregator.frame(n)`` for the few seconds since the last
  update (the previous partial second, now final, through the current partial
  one), so every finished second crosses the pipe about once and the parent
  keeps a full-depth mirror (``FlowMirror``) to build any window from;
- ``AlertsEvaluated`` at most once a second, when the child's ``FlowRecorder``
  evaluated a change: the active alerts changed (or their values), or rules
  fired or resolved;
- ``RecorderChanged`` when the recorder's role, lease holder, last written
  second or detail changed (about once a second while it writes).

Parent to child: ``ReleaseConsume`` opens the consume gate, ``StopChild`` stops it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from services.alerts.model import Alert, AlertEvent
from services.config import Profile
from services.flow.recorder import LEASE_TTL_S, RecorderState
from services.flow.types import FlowFrame
from services.links.backoff import DEFAULT_BACKOFF_S
from services.links.status import LinkStatus

HISTORY_CAPACITY_S: Final = 3600
"""How many seconds the child's aggregator and the parent's mirror hold."""


@dataclass(frozen=True)
class ChildConfig:
    """Everything the child needs; pickled once at spawn."""

    profile: Profile
    capacity_s: int = HISTORY_CAPACITY_S
    hold_consume: bool = False
    backoff: tuple[float, ...] = DEFAULT_BACKOFF_S
    log_level: int = logging.WARNING
    record: bool = True  # write the history and the alert log (when holding the lease)
    lease_ttl_s: float = LEASE_TTL_S


@dataclass(frozen=True)
class TapState:
    """What the parent knows of the child's tap (sent with every update)."""

    bound: bool = False
    ready: bool = False
    queue_name: str | None = None
    consumed: int = 0
    probes_sent: int = 0
    probes_received: int = 0


# -- child to parent -----------------------------------------------------------------


@dataclass(frozen=True)
class LinkChanged:
    """The RabbitMQ link's new status."""

    status: LinkStatus


@dataclass(frozen=True)
class ProblemFound:
    """A tap or depth-poll problem (a missing exchange or queue), as the operator reads it."""

    text: str


@dataclass(frozen=True)
class ProblemResolved:
    """The problem with this text cleared."""

    text: str


@dataclass(frozen=True)
class FlowUpdated:
    """The aggregator's seconds since the last update, its exact totals, and the tap's state."""

    frame: FlowFrame
    totals: dict[str, int]
    tap: TapState


@dataclass(frozen=True)
class AlertsEvaluated:
    """The active alerts and the transitions since the last report (oldest first)."""

    active: list[Alert]
    events: list[AlertEvent]


@dataclass(frozen=True)
class RecorderChanged:
    """The recorder's new state."""

    state: RecorderState


ChildMessage = (
    LinkChanged | ProblemFound | ProblemResolved | FlowUpdated | AlertsEvaluated | RecorderChanged
)


# -- parent to child -----------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseConsume:
    """Let the tap consume (the child was started with ``hold_consume``)."""


@dataclass(frozen=True)
class StopChild:
    """Finish: the recorder's last write, then close everything and exit."""


ParentCommand = ReleaseConsume | StopChild
