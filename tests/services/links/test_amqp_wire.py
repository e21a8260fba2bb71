"""The tap's lean read of raw properties (``read_basic``): what pika decodes, and what
pika cannot (a key or message id that is not UTF-8, a timestamp past year 9999, a
truncated table) read as far as it goes, never raising."""

from __future__ import annotations

import struct

import pika
import pika.spec
import pytest

from services.links.amqp_wire import read_basic
from tests.helpers import wire_kit


def encoded(properties: pika.BasicProperties) -> bytes:
    """Raw property bytes as pika sends them (flags first)."""
    return b"".join(properties.encode())


@pytest.mark.parametrize(
    "properties",
    [
        pika.BasicProperties(),
        pika.BasicProperties(content_type="application/json", timestamp=1_700_000_000),
        pika.BasicProperties(
            content_type="application/json",
            content_encoding="utf-8",
            headers={"x-death": [{"count": 1, "queue": "q"}], "n": 5, "s": "ü"},
            delivery_mode=2,
            priority=3,
            correlation_id="c",
            reply_to="r",
            expiration="1000",
            message_id="m-1",
            timestamp=1_700_000_001,
            type="t",
            user_id="guest",
            app_id="a",
        ),
        pika.BasicProperties(headers={}, message_id="ü" * 100, priority=0),
    ],
)
def test_reads_what_pika_decodes(properties: pika.BasicProperties) -> None:
    headers, message_id, timestamp = read_basic(encoded(properties))
    assert headers == properties.headers
    assert message_id == properties.message_id
    assert timestamp == properties.timestamp


def test_reads_what_pika_cannot() -> None:
    raw = wire_kit.properties(
        headers=wire_kit.table(
            wire_kit.entry(b"\xffkey", wire_kit.long_(b"S", b"\xfe")),
            wire_kit.entry(b"far", b"T" + struct.pack(">Q", 300_000_000_000)),
            wire_kit.entry(b"unknown", b"Z\x00"),
        ),
        message_id=wire_kit.short(b"\xff\xfe"),
        timestamp=struct.pack(">Q", 300_000_000_000),
    )
    with pytest.raises(ValueError, match="out of range"):
        pika.spec.BasicProperties().decode(raw)  # what closed the tap's connection before
    headers, message_id, timestamp = read_basic(raw)
    assert headers == {"\\xffkey": b"\xfe", "far": 300_000_000_000}
    assert message_id == b"\xff\xfe"
    assert timestamp == 300_000_000_000


@pytest.mark.parametrize("cut", [0, 1, 2, 3, 7, 20, -9, -1])
def test_truncated_properties_never_raise(cut: int) -> None:
    raw = encoded(pika.BasicProperties(headers={"k": "v"}, message_id="m", timestamp=1))
    headers, message_id, timestamp = read_basic(raw[:cut])
    assert timestamp is None
    assert headers in (None, {}, {"k": "v"})
    assert message_id in (None, "m")
