"""``payops dlq resolve --all-in-doubt --check``: the evidence there is for each in-doubt
entry, before the operator chooses how to settle it.

What is sound (see :func:`services.workbench.actions.recovery.delivery_evidence`): the
ledger records every confirm as it arrives, so every in-doubt entry is *unconfirmed*;
and an entry whose message came back - a later dead letter parked under the same
``payops-action-id`` - was delivered. Nothing else can be known without taking messages
off the target queue, so every other entry is reported *unknown*, never "not delivered".
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from app.cli.dlq_output import masked
from services.time_range import format_local_time
from services.workbench.actions.recovery import CameBack, RecoveredEntry, delivery_evidence
from services.workbench.actions.service import ActionService


async def check_in_doubt(service: ActionService, found: Sequence[RecoveredEntry]) -> None:
    """Print (stdout) what is known of each in-doubt entry of ``found``."""
    proofs = await delivery_evidence(service.store, found, service.dlqs)
    print_evidence(found, proofs)


def print_evidence(found: Sequence[RecoveredEntry], proofs: dict[str, CameBack]) -> None:
    if not found:
        return
    for entry in found:
        proof = proofs.get(entry.entry_id)
        payment = f" ({masked(entry.payment_id)})" if entry.payment_id else ""
        if proof is None:
            print(
                f"  unknown: {entry.entry_id}{payment}: confirm not recorded; no later dead"
                " letter carries its action id"
            )
        else:
            when = format_local_time(proof.dead_at_ms / 1000) if proof.dead_at_ms else "?"
            print(
                f"  delivered: {entry.entry_id}{payment}: came back as {proof.entry_id}"
                f" in {proof.dlq}, dead-lettered again at {when}"
            )
    known = sum(1 for e in found if e.entry_id in proofs)
    print(
        f"Evidence: {known:,} of {len(found):,} proven delivered (a later dead letter carries"
        " their payops-action-id: they were in the queue and failed again): settle each with"
        " `payops dlq resolve ID --delivered`."
    )
    if known < len(found):
        print(
            f"{len(found) - known:,} unknown: each may still wait in its queue, have been"
            " consumed, or never have arrived - RabbitMQ cannot show a queued message"
            " without taking it off the queue. --republish (same payops-action-id) stays the"
            " safe choice for them."
        )
    sys.stdout.flush()


__all__ = ["check_in_doubt", "print_evidence"]
