"""The flow's failure events as the parker's cause source: the one place that hands the
workbench (which may not import the flow, a sibling layer) the per-payment record.

``ParkingRunner(..., flow_failures=flow_failure_lookup(store.redis, profile))``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis.asyncio as aioredis

from services.config import Profile
from services.flow.payment_events import PaymentEventStore
from services.workbench.cause import FailureLookup, FlowFailure


def flow_failure_lookup(
    redis: aioredis.Redis, profile: Profile, *, keep: bool = True
) -> FailureLookup | None:
    """A :data:`~services.workbench.cause.FailureLookup` on the profile's payment events
    (None when the profile records none: ``payment_events = false``): for each payment,
    its latest event whose status is one of ``failure_statuses``, when it has a reason
    (:meth:`PaymentEventStore.last_failures`, one round trip a batch). With ``keep`` the
    payments asked about (the parker asks about what it parks) are kept for the
    retention window (:meth:`PaymentEventStore.keep`), so a dead-lettered payment's
    timeline outlives the recent window."""
    if not profile.payment_events:
        return None
    store = PaymentEventStore.for_profile(redis, profile)
    statuses = tuple(profile.failure_statuses)

    async def lookup(payment_ids: Sequence[str]) -> Mapping[str, FlowFailure]:
        found = await store.last_failures(payment_ids, statuses)
        if keep:
            await store.keep(payment_ids)
        return {
            payment_id: FlowFailure(event.reason, event.at_ms)
            for payment_id, event in found.items()
            if event.reason
        }

    return lookup
