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


@pytest.mark.parametrize(
    ("exchange", "routing_key", "body"),
    [
        ("", "payments.capture", b'{"payment_id": "p-1"}'),
        ("payments", "capture.eu", b""),
        ("", "big", bytes(range(256)) * 700),  # split over several body frames
        ("ex\u00e9", "k\u00e9y", b"x" * 4088),  # exactly one full body frame
    ],
)
def test_publish_encoded_writes_the_frames_pika_writes(
    exchange: str, routing_key: str, body: bytes
) -> None:
    """The publisher's own basic.publish frames are byte for byte pika's."""
    import math

    import pika.frame
    import pika.spec

    from services.workbench.actions.pika_link import _CoalescingConnection

    properties = pika.spec.BasicProperties(
        content_type="application/json",
        delivery_mode=2,
        headers={"payops-action-id": "r1.e1", "n": 7},
        message_id="m-1",
    )
    encoded = b"".join(properties.encode())
    connection = object.__new__(_CoalescingConnection)
    connection._publish_heads = {}
    connection._body_max_length = 4088
    connection.bytes_sent = connection.frames_sent = 0
    connection._coalesced = []
    connection.publish_encoded(3, exchange, routing_key, encoded, body)
    connection.publish_encoded(3, exchange, routing_key, encoded, body)  # head cached
    publish = pika.spec.Basic.Publish(exchange=exchange, routing_key=routing_key, mandatory=True)
    expected = [
        pika.frame.Method(3, publish).marshal(),
        pika.frame.Header(3, len(body), properties).marshal(),
    ]
    for chunk in range(math.ceil(len(body) / 4088)):
        expected.append(pika.frame.Body(3, body[chunk * 4088 : (chunk + 1) * 4088]).marshal())
    assert connection._coalesced == expected * 2
    assert connection.frames_sent == 2 * len(expected)
    assert connection.bytes_sent == 2 * sum(len(f) for f in expected)
