"""The properties of a content header frame, read and written back byte for byte.

A requeue promises the message back as it was dead-lettered, down to the AMQP
wire type of every header value: a Java or .NET consumer that reads an
``int`` header must not get a ``short``, a 32-bit float must stay 32 bits, a
timestamp written in milliseconds must stay that number, header keys keep
their order. No client library's encoder can promise that from decoded
values, so the parker keeps the raw property bytes of each delivery (the
flags and property list of the content header frame, AMQP 0-9-1 4.2.6.1) and
a requeue writes them back: :func:`encode_over` reuses the bytes of every
property and header that is unchanged and encodes only what the action
changed (the broker's dead-letter headers dropped, ``payops-*`` added).

:func:`decode_properties` (:mod:`services.links.amqp_wire`, shared with the
tap) reads those bytes itself, never raising, so one odd message is parked
like any other instead of closing the connection (see
:mod:`services.workbench.amqp_raw`, which hands these bytes over).

Decoded values have the Python types :mod:`services.workbench.codec`
describes (pamqp's), except that a timestamp beyond ``datetime``'s range
stays the integer that was sent. This module imports no AMQP client.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from services.links.amqp_wire import (
    PROPERTY_FLAGS,
    WireError,
    WireField,
    WireProperties,
    decode_properties,
    key_of,
    text_of,
)

__all__ = [
    "PROPERTY_FLAGS",
    "WireError",
    "WireField",
    "WireProperties",
    "decode_properties",
    "encode_over",
    "key_of",
    "text_of",
]

_U32 = struct.Struct(">I")

# --------------------------------------------------------------------------- writing back


def _same(old: Any, new: Any) -> bool:
    """Equal value and equal Python type, nested tables compared key by key."""
    from services.workbench.codec import encode_value  # codec imports this module

    try:
        return orjson.dumps(encode_value(old), option=orjson.OPT_SORT_KEYS) == orjson.dumps(
            encode_value(new), option=orjson.OPT_SORT_KEYS
        )
    except (TypeError, orjson.JSONEncodeError):
        return False


def _unchanged(old: Any, new: Any) -> bool:
    """:func:`_same`, without encoding anything when ``new`` is the very value decoded."""
    return new is old or _same(old, new)


def _short_string_key(key: str) -> bytes:
    raw = key.encode("utf-8", "surrogateescape")
    if len(raw) > 255:
        raise ValueError(f"header key {key[:40]!r}... is longer than 255 bytes")
    return bytes((len(raw),)) + raw


def encode_over(
    original: bytes,
    properties: Mapping[str, Any],
    headers: Mapping[str, Any] | None,
    encode_property: Callable[[str, Any], bytes],
    encode_value: Callable[[Any, str], bytes],
    *,
    decoded: WireProperties | None = None,
) -> bytes:
    """Properties to publish, written over the ``original`` raw properties (``decoded``:
    them decoded already, by :func:`decode_properties`).

    Each property and header whose value is unchanged keeps its original
    bytes (wire type, key order); headers no longer in ``headers`` are
    dropped; changed and new ones are encoded by ``encode_property(name,
    value)`` / ``encode_value(value, where)`` (:mod:`services.workbench.codec`),
    new headers after the kept ones in the order given. The undecodable rest
    of a header table, if any, is kept as it came.
    """
    if decoded is not None and (decoded.raw is original or decoded.raw == original):
        before = decoded
    else:
        before = decode_properties(original)
    flags = 0
    parts: list[bytes] = []
    for name, bit in PROPERTY_FLAGS:
        if name == "headers":
            if headers is None:
                continue
            flags |= bit
            parts.append(_table_over(before.header_fields, headers, encode_value))
            continue
        value = properties.get(name)
        if value is None:
            continue
        flags |= bit
        kept = before.property_bytes.get(name)
        if kept is not None and _unchanged(before.properties.get(name), value):
            parts.append(kept)
        else:
            parts.append(encode_property(name, value))
    return struct.pack(">H", flags) + b"".join(parts)


def _table_over(
    fields: tuple[WireField, ...],
    headers: Mapping[str, Any],
    encode_value: Callable[[Any, str], bytes],
) -> bytes:
    parts: list[bytes] = []
    seen: set[str] = set()
    for item in fields:
        if item.key is None:
            parts.append(item.raw)
            continue
        if item.key not in headers or item.key in seen:
            continue
        seen.add(item.key)
        value = headers[item.key]
        if _unchanged(item.value, value):
            parts.append(item.raw)
        else:  # the key's own bytes (they may not be UTF-8), a new value
            raw_key = item.raw[: 1 + item.raw[0]]
            parts.append(raw_key + encode_value(value, f"headers.{item.key}"))
    for name, value in headers.items():
        if name not in seen:
            parts.append(_short_string_key(name) + encode_value(value, f"headers.{name}"))
    inner = b"".join(parts)
    return _U32.pack(len(inner)) + inner
