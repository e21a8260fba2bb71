"""Hand-built content headers: every AMQP field type, bytes that are not UTF-8, timestamps
no ``datetime`` holds; published as they are (pika with pre-encoded properties) and read
back as raw bytes (aiormq with :mod:`services.workbench.amqp_raw`)."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from services.workbench import amqp_raw
from services.workbench.wire import PROPERTY_FLAGS, decode_properties


def short(raw: bytes) -> bytes:
    return bytes((len(raw),)) + raw


def long_(tag: bytes, raw: bytes) -> bytes:
    return tag + struct.pack(">I", len(raw)) + raw


def entry(key: bytes, value: bytes) -> bytes:
    return short(key) + value


def table(*entries: bytes) -> bytes:
    inner = b"".join(entries)
    return struct.pack(">I", len(inner)) + inner


EVERY_TYPE: tuple[bytes, ...] = (
    entry(b"zeta-first", long_(b"S", "text ü".encode())),
    entry(b"bool", b"t\x01"),
    entry(b"int8", b"b" + struct.pack(">b", -3)),
    entry(b"uint8", b"B" + struct.pack(">B", 200)),
    entry(b"int16", b"s" + struct.pack(">h", 5)),
    entry(b"uint16", b"u" + struct.pack(">H", 7)),
    entry(b"int32-small", b"I" + struct.pack(">i", 1)),
    entry(b"uint32", b"i" + struct.pack(">I", 2)),
    entry(b"int64-small", b"l" + struct.pack(">q", 3)),
    entry(b"float32", b"f" + struct.pack(">f", 0.1)),
    entry(b"double", b"d" + struct.pack(">d", 0.1)),
    entry(b"decimal", b"D" + struct.pack(">BI", 2, 1250)),
    entry(b"bytes", long_(b"x", b"\x00\xff")),
    entry(b"not-utf8-string", long_(b"S", b"\xff\xfe")),
    entry(b"ts-ms", b"T" + struct.pack(">Q", 1_700_000_000_123)),
    entry(b"ts", b"T" + struct.pack(">Q", 1_700_000_000)),
    entry(b"void", b"V"),
    entry(b"array", long_(b"A", b"I" + struct.pack(">i", 1) + long_(b"S", b"a") + b"t\x00")),
    entry(b"table", long_(b"F", entry(b"k", b"I" + struct.pack(">i", 9)) + entry(b"n", b"V"))),
)
"""One header per AMQP field type (pamqp's and RabbitMQ's), each in a type no encoder
would pick for its value: small ints in 32/64 bits, a 32-bit float, a millisecond
timestamp."""


def properties(**props: bytes) -> bytes:
    """Flags and property list from already-encoded properties (AMQP names)."""
    flags = 0
    parts: list[bytes] = []
    for name, bit in PROPERTY_FLAGS:
        if name in props:
            flags |= bit
            parts.append(props[name])
    return struct.pack(">H", flags) + b"".join(parts)


def publish_raw(
    amqp_url: str, exchange: str, routing_key: str, messages: Sequence[tuple[bytes, bytes]]
) -> None:
    """Publish (body, raw properties) pairs exactly as given, with confirms."""
    import pika

    from services.workbench.actions.publisher import EncodedProperties

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for body, raw in messages:
            channel.basic_publish(exchange, routing_key, body, EncodedProperties(raw))
    finally:
        connection.close()


def comparable(raw: bytes, strip: tuple[str, ...] = ("x-", "payops-")) -> dict[str, object]:
    """The bytes of each property and of each header (by key) of raw properties, headers
    starting with ``strip`` left out: what must come back unchanged."""
    decoded = decode_properties(raw)
    assert decoded.error is None, decoded.error
    out: dict[str, object] = {k: v for k, v in decoded.property_bytes.items() if k != "headers"}
    out["headers"] = {
        f.key: f.raw
        for f in decoded.header_fields
        if f.key is not None and not f.key.startswith(strip)
    }
    return out


def install_raw() -> None:
    amqp_raw.install()
