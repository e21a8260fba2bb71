"""The pika link's names for the retry's wait queues (no broker needed)."""

from __future__ import annotations

import pytest

from services.workbench.actions.pika_link import delay_queue_name


def test_delay_queue_names() -> None:
    assert delay_queue_name("payments.process", 30) == "payops.delay.payments.process.30s"
    with pytest.raises(ValueError):
        delay_queue_name("q", 0)
    with pytest.raises(ValueError):
        delay_queue_name("q" * 250, 5)


def test_quorum_wait_queue_names_end_in_quorum() -> None:
    name = delay_queue_name("payments.process", 30, quorum=True)
    assert name == "payops.delay.payments.process.30s.quorum"
