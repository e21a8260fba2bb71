"""What the ``payops dlq`` commands share: the store, the action service, the queues."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

from app.cli.runner import profile_from, redis_client, run_command
from services.config import ConfigError, Profile
from services.flow.payment_events import PaymentEventStore
from services.workbench.actions.publisher import ActionPublisher
from services.workbench.actions.service import ActionService, default_operator
from services.workbench.index import EntryIndex
from services.workbench.store import ParkingStore


@contextlib.asynccontextmanager
async def parking_store(profile: Profile) -> AsyncIterator[ParkingStore]:
    async with redis_client(profile) as client:
        yield ParkingStore(client, profile.redis_prefix, min_replicas=profile.redis_min_replicas)


@contextlib.asynccontextmanager
async def action_service(profile: Profile, read_only: bool) -> AsyncIterator[ActionService]:
    """An ActionService on a reachable Redis, its publisher closed afterwards."""
    publisher = ActionPublisher(profile.amqp_endpoint)
    try:
        async with parking_store(profile) as store:
            finals = PaymentEventStore.for_profile(store.redis, profile).latest_with
            service = ActionService(
                store,
                publisher,
                profile,
                default_operator(profile),
                read_only=read_only,
                finals=finals,
            )
            yield service
    finally:
        await publisher.close()


def run_dlq(args: argparse.Namespace, body: Callable[[Profile], Coroutine[Any, Any, int]]) -> int:
    profile = profile_from(args)
    return run_command(profile, body(profile))


def dead_letter_queues(profile: Profile) -> list[str]:
    if not profile.dead_letter_queues:
        raise ConfigError(
            f"profile '{profile.name}' ({profile.source}) names no dead_letter_queues"
        )
    return list(profile.dead_letter_queues)


async def load_index(store: ParkingStore, dlqs: Sequence[str]) -> EntryIndex:
    index = EntryIndex()
    for dlq in dlqs:
        async for batch in store.iter_summaries(dlq):
            index.add(batch)
    return index
