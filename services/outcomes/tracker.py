"""Settle replayed entries' outcomes in Redis, exactly once: :class:`OutcomeTracker`.

Whoever sees what became of a payment settles it: the flow recorder holding the
history lease (a console or ``payops collect``) with the flow's events, the
parker with a new dead letter of the same payment (``failed_again``, linked to
the new entry), and anyone calling :meth:`OutcomeTracker.sweep` with the
entries whose ``outcome_timeout_s`` passed (``no_outcome``). Each settlement is
one script call per DLQ (``resolve.lua``) that moves a ``pending`` outcome only,
so two consoles seeing the same event settle it once and the job counters move
once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final, Protocol, cast

import orjson
import redis.asyncio as aioredis

from services.links.redis_client import execute_scripts
from services.masking.json import mask_identifier
from services.outcomes.model import (
    CANCELLED_STATUS,
    Outcome,
    dlq_base,
    dlqs_key,
    due_key,
    pending_key,
)
from services.time_range import format_duration, format_local_time


class Profile(Protocol):
    """What the tracker reads of a ``services.config.Profile`` (not imported: the profile
    knows the alert rules, a layer above)."""

    @property
    def redis_prefix(self) -> str: ...
    @property
    def dead_letter_queues(self) -> tuple[str, ...]: ...
    @property
    def success_statuses(self) -> tuple[str, ...]: ...
    @property
    def declined_statuses(self) -> tuple[str, ...]: ...
    @property
    def failure_statuses(self) -> tuple[str, ...]: ...
    @property
    def outcome_timeout_s(self) -> float: ...


log = logging.getLogger(__name__)

CHANGES_MAXLEN: Final = 100_000
SWEEP_BATCH: Final = 500
"""At most this many timed-out entries are settled per DLQ and sweep."""


class Sighting(Protocol):
    """What the tracker needs of a flow event (``flow.payment_events.PaymentEvent`` is one)."""

    @property
    def payment_id(self) -> str: ...
    @property
    def at_ms(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def reason(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class OutcomeRules:
    """Which event statuses settle an outcome how, and how long one may take."""

    success_statuses: tuple[str, ...] = ("captured",)
    declined_statuses: tuple[str, ...] = ("declined",)
    failure_statuses: tuple[str, ...] = ("failed",)
    timeout_s: float = 600.0

    @classmethod
    def of(cls, profile: Profile) -> OutcomeRules:
        """The profile's ``success_statuses``, ``declined_statuses``, ``failure_statuses``
        and ``outcome_timeout_s``."""
        return cls(
            profile.success_statuses,
            profile.declined_statuses,
            profile.failure_statuses,
            profile.outcome_timeout_s,
        )

    def outcome_of(self, status: str) -> Outcome | None:
        """The outcome an event with ``status`` settles (None: not a final event)."""
        if status in self.success_statuses:
            return Outcome.SUCCEEDED
        if status in self.declined_statuses:
            return Outcome.DECLINED
        if status in self.failure_statuses:
            return Outcome.FAILED_AGAIN
        if status == CANCELLED_STATUS:
            return Outcome.CANCELLED
        return None


def sighting_detail(status: str, at_ms: int, reason: str | None) -> str:
    """``captured at 14:05:31 CEST by the flow`` (``failed at …: acquirer timeout``)."""
    text = f"{status} at {format_local_time(at_ms / 1000, date=False)} by the flow"
    return f"{text}: {reason}" if reason else text


@cache
def _script() -> str:
    return resources.files(__package__).joinpath("resolve.lua").read_text(encoding="utf-8")


class OutcomeTracker:
    """Settles outcomes (see the module docstring). ``dlqs``: the DLQs whose entries it
    follows, besides every DLQ something was parked from."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        rules: OutcomeRules,
        dlqs: Sequence[str] = (),
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.rules = rules
        self.dlqs = tuple(dlqs)
        self._resolve = client.register_script(_script())

    @classmethod
    def for_profile(cls, client: aioredis.Redis, profile: Profile) -> OutcomeTracker:
        return cls(
            client, profile.redis_prefix, OutcomeRules.of(profile), profile.dead_letter_queues
        )

    async def _all_dlqs(self) -> list[str]:
        members = cast(set[bytes], await self.client.smembers(dlqs_key(self.prefix)))
        known = {m.decode("utf-8", "replace") for m in members}
        return sorted(known | set(self.dlqs))

    async def observe(self, events: Iterable[Sighting]) -> list[tuple[str, Outcome]]:
        """Settle the pending entries of the payments these events finish; what it settled.

        ``events`` are read only when some entry waits for its outcome (most seconds
        none does, and the flow's events need not even be looked at)."""
        waiting = await self._waiting_dlqs()
        if not waiting:
            return []
        outcome_of = self.rules.outcome_of
        items: list[list[Any]] = [
            [
                mask_identifier(event.payment_id),
                outcome.value,
                str(event.at_ms),
                sighting_detail(event.status, event.at_ms, event.reason),
                "",
                "",
            ]
            for event in events
            if event.payment_id and (outcome := outcome_of(event.status)) is not None
        ]
        if not items:
            return []
        return await self._settle({dlq: items for dlq in waiting})

    async def _waiting_dlqs(self) -> list[str]:
        """The DLQs with entries waiting for their outcome (most seconds: none, and the
        flow's events need not be sent anywhere)."""
        dlqs = await self._all_dlqs()
        pipe = self.client.pipeline(transaction=False)
        for dlq in dlqs:
            pipe.exists(pending_key(dlq_base(self.prefix, dlq)))
        return [dlq for dlq, found in zip(dlqs, await pipe.execute(), strict=True) if found]

    async def dead_lettered(
        self, new_entries: Iterable[tuple[str, str, int]], entries_of: EntriesOfPayments
    ) -> list[tuple[str, Outcome]]:
        """New dead letters ``(payment id, new entry id, parked at ms)``: the payment's
        earlier replayed entries failed again, linked to the new entry. ``entries_of`` is
        the store's ``entries_for_payments``."""
        news = [(mask_identifier(p), e, at) for p, e, at in new_entries if p]
        if not news:
            return []
        known = await entries_of([p for p, _, _ in news])
        by_dlq: dict[str, list[list[Any]]] = {}
        for payment_id, entry_id, at_ms in news:
            for dlq, earlier in known.get(payment_id, ()):
                if earlier < entry_id:
                    detail = f"dead-lettered again at {format_local_time(at_ms / 1000, date=False)}"
                    item = [payment_id, Outcome.FAILED_AGAIN.value, str(at_ms), detail]
                    by_dlq.setdefault(dlq, []).append([*item, entry_id, earlier])
        return await self._settle(by_dlq) if by_dlq else []

    async def sweep(self, now_ms: int) -> list[tuple[str, Outcome]]:
        """Settle as ``no_outcome`` the pending entries whose time ran out."""
        wait = format_duration(self.rules.timeout_s)
        by_dlq: dict[str, list[list[Any]]] = {}
        for dlq in await self._all_dlqs():
            due = cast(
                list[bytes],
                await self.client.zrangebyscore(
                    due_key(dlq_base(self.prefix, dlq)), 0, now_ms, start=0, num=SWEEP_BATCH
                ),
            )
            if due:
                detail = f"no final event within {wait} of the send"
                by_dlq[dlq] = [
                    ["", Outcome.NO_OUTCOME.value, str(now_ms), detail, "", d.decode()] for d in due
                ]
        return await self._settle(by_dlq) if by_dlq else []

    async def _settle(self, by_dlq: dict[str, list[list[Any]]]) -> list[tuple[str, Outcome]]:

        async def resolve(pipe: Any) -> None:
            for dlq, items in by_dlq.items():
                base = dlq_base(self.prefix, dlq)
                await self._resolve(
                    keys=[pending_key(base), due_key(base), f"{base}:changes"],
                    args=[base, CHANGES_MAXLEN, orjson.dumps(items)],
                    client=pipe,
                )

        replies = await execute_scripts(self.client, resolve, [self._resolve])
        settled: list[tuple[str, Outcome]] = []
        for reply in replies:
            flat = [v.decode() if isinstance(v, bytes) else str(v) for v in reply]
            settled += [(flat[i], Outcome(flat[i + 1])) for i in range(0, len(flat) - 1, 2)]
        if settled:
            log.info(
                "outcomes: %d entr%s settled", len(settled), "y" if len(settled) == 1 else "ies"
            )
        return settled


class EntriesOfPayments(Protocol):
    """``store.entries_for_payments``: payments' entries as ``(dlq, entry id)``."""

    async def __call__(self, payment_ids: Iterable[str]) -> dict[str, list[tuple[str, str]]]: ...
