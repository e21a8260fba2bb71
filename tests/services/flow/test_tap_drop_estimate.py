"""The estimate of messages the broker dropped from a full tap queue."""

from __future__ import annotations

import asyncio
from typing import Any

import pika
import pika.spec
import pytest

from services.config import Profile, TapBinding
from services.flow.aggregator import FlowAggregator
from services.flow.decoder import EventDecoder
from services.flow.tap import (
    PROBE_HEADER,
    PROBE_MAX_GAP,
    PROBE_SEQ_MODULUS,
    PROBE_SOURCE_HEADER,
    AgeDropEstimator,
    FlowTap,
    ProbeDropEstimator,
    estimate_drops_per_s,
    is_full,
    probe_gap,
)
from services.links.pika_frames import Delivery

# -- probe gaps --------------------------------------------------------------------


def test_probe_gap_counts_the_numbers_skipped() -> None:
    assert probe_gap(-1, 0) == 0  # the first probe of a source
    assert probe_gap(-1, 3) == 3  # probes 0, 1 and 2 were dropped
    assert probe_gap(7, 8) == 0
    assert probe_gap(7, 20) == 12


def test_probe_gap_across_the_wrap() -> None:
    top = PROBE_SEQ_MODULUS - 1
    assert probe_gap(top, 0) == 0
    assert probe_gap(top - 1, 2) == 3  # top, 0 and 1 were dropped
    assert probe_gap(5, 2, modulus=8) == 4  # 6, 7, 0, 1


def test_probe_gap_refuses_what_cannot_follow() -> None:
    assert probe_gap(41, 41) is None  # a duplicate
    assert probe_gap(41, 40) is None  # backwards: a restart
    assert probe_gap(41, 0) is None
    assert probe_gap(0, PROBE_MAX_GAP + 2) is None  # implausibly far ahead
    assert probe_gap(0, PROBE_MAX_GAP) == PROBE_MAX_GAP - 1


# -- the probe estimator ---------------------------------------------------------------


def feed(est: ProbeDropEstimator, probes: list[tuple[int, int]], source: str = "a/1") -> None:
    """Feed (sequence number, messages consumed so far) pairs."""
    for seq, consumed in probes:
        est.probe_received(source, seq, consumed)


def test_nothing_lost_estimates_nothing() -> None:
    est = ProbeDropEstimator()
    feed(est, [(seq, seq * 1000) for seq in range(23)])
    assert est.take() == 0
    assert est.take() == 0
    assert est.missing_total == 0
    assert est.received_total == 23


def test_a_group_estimates_consumed_times_missing_per_received() -> None:
    est = ProbeDropEstimator(group_size=5)
    # Five received probes (0, 2, 3, 7, 8): 1 + 3 = 4 missing, 800 messages consumed.
    feed(est, [(0, 100), (2, 300), (3, 400), (7, 700), (8, 800)])
    assert est.take() == 800 * 4 // 5
    assert est.take() == 0


def test_messages_after_the_last_probe_wait_for_the_next_one() -> None:
    """In-flight probes at a poll: neither missing nor received until a later one arrives."""
    est = ProbeDropEstimator(group_size=2)
    feed(est, [(0, 0), (1, 100)])
    # 900 more consumed, probes 2..4 published but not received yet: not counted.
    assert est.take() == 0
    assert est.group_consumed == 0
    # Probe 5 arrives: 2, 3 and 4 were dropped among the 900 since probe 1.
    feed(est, [(5, 1000), (6, 1100)])
    assert est.take() == (900 + 100) * 3 // 2


def test_a_quiet_open_group_is_discarded_at_a_poll() -> None:
    """What was consumed in a group that lost nothing does not multiply later losses."""
    est = ProbeDropEstimator(group_size=5)
    feed(est, [(0, 0), (1, 5000), (2, 10_000)])
    assert est.take() == 0
    feed(est, [(9, 10_100), (10, 10_200), (11, 10_300), (12, 10_400), (13, 10_500)])
    assert est.take() == 500 * 6 // 5


def test_a_lossy_open_group_waits_a_few_polls_then_closes() -> None:
    est = ProbeDropEstimator(group_size=5, max_hold=2)
    feed(est, [(0, 0), (4, 200)])  # 3 missing, 2 received, 200 consumed
    assert est.take() == 0  # held
    assert est.take() == 0  # held
    assert est.take() == 300  # closed as it is: 200 * 3 / 2
    assert est.take() == 0


def test_fractions_carry_over() -> None:
    est = ProbeDropEstimator(group_size=2)
    total = 0
    for group in range(3):
        # Each group: 1 missing in 2 received, 1 consumed -> 0.5 each.
        feed(est, [(group * 3 + 1, group), (group * 3 + 2, group + 1)])
        total += est.take()
    assert total == 1  # 1.5 so far
    assert est.carry == pytest.approx(0.5)


def test_the_ratio_is_capped() -> None:
    est = ProbeDropEstimator(group_size=1, max_ratio=10.0)
    feed(est, [(0, 0), (1000, 7)])
    assert est.take() == 70


def test_a_new_source_numbers_from_zero() -> None:
    est = ProbeDropEstimator(group_size=1)
    feed(est, [(0, 0), (1, 10), (2, 20)], source="a/1")
    # The probe channel was reopened: its probes start again at 0; 0 and 1 were dropped.
    est.probe_received("a/2", 2, 30)
    assert est.missing_total == 2
    assert est.take() == 10 * 2


def test_a_restart_of_the_same_source_loses_nothing() -> None:
    est = ProbeDropEstimator(group_size=1)
    feed(est, [(0, 0), (1, 10), (2, 20), (0, 30), (1, 40)])
    assert est.missing_total == 0
    assert est.received_total == 5
    assert est.take() == 0


def test_the_sequence_wraps() -> None:
    est = ProbeDropEstimator(group_size=3, modulus=8)
    feed(est, [(5, 0), (6, 100), (7, 200), (0, 300), (2, 400), (3, 500)])
    # The first probe of the source was 5: 0..4 count as dropped then (in the first group).
    assert est.missing_total == 5 + 1
    assert est.take() == 200 * 5 // 3 + 300 * 1 // 3


def test_a_duplicate_is_harmless() -> None:
    est = ProbeDropEstimator(group_size=2)
    feed(est, [(0, 0), (1, 100), (1, 150), (2, 200), (2, 200), (4, 300)])
    assert est.received_total == 4
    assert est.missing_total == 1
    # Groups (0, 1): nothing lost; (2, 4): 1 missing in 2 received, 200 consumed.
    assert est.take() == 100


# -- recognising probes in the hot path ---------------------------------------------------


def delivery(headers: dict[str, Any] | None, body: bytes = b'{"status": "captured"}') -> Delivery:
    """What the frame reader hands the tap for one delivery (properties as pika sends them)."""
    return Delivery(
        1,
        False,
        exchange="x",
        routing_key="payment.captured",
        raw_properties=b"".join(pika.BasicProperties(headers=headers).encode()),
        body=body,
    )


async def test_probes_are_neither_events_nor_dead_letters() -> None:
    prof = Profile(
        name="t", amqp_url="amqp://x", redis_url="redis://x", tap_exchanges=(TapBinding("x"),)
    )
    agg = FlowAggregator()
    tap = FlowTap(prof, agg, EventDecoder(prof.fields))
    own = tap._probe_prefix + "1"
    tap._on_delivery(delivery(None))
    tap._on_delivery(delivery({"app": "x"}))
    tap._on_delivery(delivery({"x-death": [], "x-first-death-queue": "q"}))
    tap._on_delivery(delivery({PROBE_HEADER: 0, PROBE_SOURCE_HEADER: own}, b""))
    tap._on_delivery(delivery({PROBE_HEADER: 3, PROBE_SOURCE_HEADER: own}, b""))
    # Another console's probe, or a mangled one: ignored, and not counted either.
    tap._on_delivery(delivery({PROBE_HEADER: 9, PROBE_SOURCE_HEADER: "other/1"}, b""))
    tap._on_delivery(delivery({PROBE_HEADER: "x", PROBE_SOURCE_HEADER: own}, b""))
    await asyncio.sleep(0)
    assert tap.consumed == 3
    assert agg.totals_by_status() == {"captured": 2}
    assert agg.frame(5).dead_letters.sum() == 1
    assert tap.probes_received == 2
    assert tap._probes.missing_total == 2


# -- the fallback: message ages --------------------------------------------------------------


def test_is_full_allows_one_percent_slack() -> None:
    assert is_full(50_000, 50_000)
    assert is_full(49_500, 50_000)
    assert not is_full(49_499, 50_000)
    assert is_full(9, 10)
    assert not is_full(8, 10)


def test_not_full_means_no_drops() -> None:
    rate = estimate_drops_per_s(
        depth=100, max_length=50_000, median_age_s=0.01, consume_rate=0.0, fallback_inflow=1e6
    )
    assert rate == 0.0


def test_inflow_from_median_age() -> None:
    # A full queue of 10k where messages are 0.5 s old when consumed: inflow 20k/s.
    rate = estimate_drops_per_s(
        depth=10_000, max_length=10_000, median_age_s=0.5, consume_rate=15_000, fallback_inflow=None
    )
    assert rate == pytest.approx(5_000)


def test_consumer_keeping_up_drops_nothing() -> None:
    rate = estimate_drops_per_s(
        depth=10_000, max_length=10_000, median_age_s=0.5, consume_rate=25_000, fallback_inflow=None
    )
    assert rate == 0.0


def test_fallback_inflow_without_timestamps() -> None:
    kwargs = {"depth": 1000, "max_length": 1000, "median_age_s": None, "consume_rate": 300.0}
    assert estimate_drops_per_s(**kwargs, fallback_inflow=1000.0) == pytest.approx(700)
    assert estimate_drops_per_s(**kwargs, fallback_inflow=None) == 0.0
    zero_age = {**kwargs, "median_age_s": 0.0}
    assert estimate_drops_per_s(**zero_age, fallback_inflow=800.0) == pytest.approx(500)


def test_age_estimator_accumulates_whole_messages() -> None:
    est = AgeDropEstimator(max_length=1000)
    assert est.update(0.0, 1000, 0, 1.0) == 0  # first poll: a baseline only
    # Full, age 1 s -> inflow 1000/s; consumed 400 in the second -> ~600 dropped.
    assert est.update(1.0, 1000, 400, 1.0) == 600
    # Half a second at 0.5 dropped/s twice -> one whole message, carried over.
    est2 = AgeDropEstimator(max_length=10)
    est2.update(0.0, 10, 0, None)
    est2.inflow_not_full = 1.5
    assert est2.update(0.5, 10, 0, 20.0) == 0  # inflow 0.5/s, 0.25 carried
    assert est2.update(1.5, 10, 0, 20.0) == 0  # 0.75
    assert est2.update(2.5, 10, 0, 20.0) == 1  # 1.25 -> 1


def test_age_estimator_learns_inflow_while_not_full() -> None:
    est = AgeDropEstimator(max_length=1000)
    est.update(0.0, 0, 0, None)
    # Not full: consumed 300 and the queue grew by 500 in one second -> inflow 800/s.
    assert est.update(1.0, 500, 300, None) == 0
    assert est.inflow_not_full == pytest.approx(800)
    # Full and no ages: the remembered inflow stands in; consumed 200/s -> 600 dropped.
    assert est.update(2.0, 1000, 500, None) == 600


def test_age_estimator_ignores_clock_going_back() -> None:
    est = AgeDropEstimator(max_length=10)
    est.update(5.0, 10, 0, 1.0)
    assert est.update(4.0, 10, 0, 1.0) == 0
