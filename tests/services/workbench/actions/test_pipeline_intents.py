"""A requeue's intents made per origin, then copied per entry: the very bytes each entry's
own :class:`PendingSend` writes (no broker, no Redis)."""

from __future__ import annotations

import dataclasses

import pytest

from services.workbench.actions.ledger import PendingSend
from services.workbench.actions.names import Action
from services.workbench.actions.sends import SameIntent, intent_parts


@pytest.mark.parametrize(
    ("routing_key", "action_id"),
    [
        ("payments.capture", "0123abcd0123abcd.01a243bbd9681e50c890"),
        ('odd "queue" \u00e9\\', "run.entry\u00e9\"'"),
        ("q", "r.e-with-a-long-tail" * 20),
    ],
)
def test_a_copied_intent_writes_the_bytes_of_its_own(routing_key: str, action_id: str) -> None:
    first = PendingSend(
        Action.REQUEUE, "run.first", "", routing_key, f"queue '{routing_key}'", "alice",
        "host", 1_733_360_000_000,
    )  # fmt: skip
    copy = SameIntent(first, action_id, intent_parts(first))
    own = dataclasses.replace(first, action_id=action_id)
    assert copy.dumps() == own.dumps()
    assert PendingSend.loads(copy.dumps()) == own
    assert (copy.action_id, copy.at_ms, copy.target, copy.final_state) == (
        action_id, own.at_ms, own.target, own.final_state,
    )  # fmt: skip
