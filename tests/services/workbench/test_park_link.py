"""The parker's link cuts deliveries off the byte stream itself: whatever the socket reads
are cut into (a frame split anywhere, many frames in one read), every delivery comes out
whole, in order, with its raw property bytes; other frames still go to pika."""

from __future__ import annotations

import random

import pika
import pika.frame
import pika.spec
import pytest

from services.links.pika_frames import Delivery, DeliveryAssembler
from services.workbench.park_link import _ParkingConnection

CHANNEL = 1


def deliver(
    tag: int, body: bytes, properties: pika.BasicProperties, frame_max: int, channel: int = CHANNEL
) -> bytes:
    method = pika.spec.Basic.Deliver(
        consumer_tag="ctag",
        delivery_tag=tag,
        redelivered=tag % 2 == 0,
        exchange="payments.dlx",
        routing_key=f"payment.{tag}",
    )
    frames = [
        pika.frame.Method(channel, method).marshal(),
        pika.frame.Header(channel, len(body), properties).marshal(),
    ]
    frames += [
        pika.frame.Body(channel, body[at : at + frame_max]).marshal()
        for at in range(0, len(body), frame_max)
    ]
    return b"".join(frames)


def connection_reading(got: list[Delivery], passed: list[pika.frame.Frame]) -> _ParkingConnection:
    """A connection without a socket: only its frame reading is exercised."""
    connection = object.__new__(_ParkingConnection)
    connection._frame_buffer = b""
    connection.bytes_received = 0
    connection.frames_received = 0
    connection.assemblers = {CHANNEL: DeliveryAssembler(got.append)}
    connection._process_frame = passed.append  # type: ignore[method-assign]
    return connection


@pytest.mark.parametrize("seed", range(5))
def test_deliveries_come_out_whole_however_the_stream_is_cut(seed: int) -> None:
    rng = random.Random(seed)
    messages = []
    for tag in range(1, 41):
        size = rng.choice([0, 1, 90, 5000, 70_000])
        properties = pika.BasicProperties(
            content_type="application/json",
            message_id=f"m-{tag}",
            headers={"x-death": [{"count": tag, "queue": "payments"}], "k": "v"},
        )
        messages.append((tag, rng.randbytes(size), properties))
    stream = b"".join(deliver(tag, body, props, 4096) for tag, body, props in messages)
    heartbeat = pika.frame.Heartbeat().marshal()
    stream += heartbeat

    got: list[Delivery] = []
    passed: list[pika.frame.Frame] = []
    connection = connection_reading(got, passed)
    at = 0
    while at < len(stream):
        step = rng.choice([1, 7, 100, 4096, 65_536])
        connection._on_data_available(stream[at : at + step])
        at += step

    assert [(d.delivery_tag, d.body) for d in got] == [(t, b) for t, b, _ in messages]
    for delivery, (tag, _, properties) in zip(got, messages, strict=True):
        assert delivery.raw_properties == b"".join(properties.encode())
        assert delivery.redelivered is (tag % 2 == 0)
        assert (delivery.exchange, delivery.routing_key) == ("payments.dlx", f"payment.{tag}")
    assert [type(f) for f in passed] == [pika.frame.Heartbeat]  # not ours: pika's
    assert connection.bytes_received == len(stream) and connection._frame_buffer == b""


def test_frames_of_other_channels_and_methods_go_to_pika() -> None:
    got: list[Delivery] = []
    passed: list[pika.frame.Frame] = []
    connection = connection_reading(got, passed)
    qos_ok = pika.frame.Method(CHANNEL, pika.spec.Basic.QosOk()).marshal()
    other = deliver(7, b"x", pika.BasicProperties(), 4096, channel=2)  # no assembler there
    connection._on_data_available(qos_ok + other)
    assert got == []
    assert [type(f).__name__ for f in passed] == ["Method", "Method", "Header", "Body"]
    assert isinstance(passed[0], pika.frame.Method)
    assert isinstance(passed[0].method, pika.spec.Basic.QosOk)
