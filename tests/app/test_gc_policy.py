"""The console's collector policy: start-up objects out of every later full pass."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from app.gc_policy import freeze_start_up


@pytest.fixture
def unfrozen_after() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test session as before


def test_objects_alive_at_start_up_are_frozen_and_later_ones_are_not(
    unfrozen_after: None,
) -> None:
    start_up = [[n] for n in range(1000)]  # tracked containers, alive through the freeze
    freeze_start_up()
    later = [[n] for n in range(10)]
    tracked = {id(o) for o in gc.get_objects()}  # frozen objects are left out
    assert gc.get_freeze_count() >= len(start_up)
    assert not any(id(o) in tracked for o in start_up)
    assert all(id(o) in tracked for o in later)
