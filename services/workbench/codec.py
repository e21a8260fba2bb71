"""Faithful, safe serialisation of an AMQP message for the parking store.

A parked message must come back byte for byte: the body, every basic
property, and every header value with the Python type pamqp decoded it to,
so that a requeue republishes what arrived. Nothing here unpickles: values
are written as type-tagged JSON (orjson) and read back by a small decoder
that only knows the AMQP field types.

How pamqp (4.x) decodes field-table values, and therefore what a header can
hold (``pamqp.decode.TABLE_MAPPING``):

=========================  ====================================================
wire type                  Python value
=========================  ====================================================
``t``                      ``bool``
``b B s u I i l L``        ``int`` (8- to 64-bit, signed and unsigned)
``f d``                    ``float`` (32-bit floats widened to a double)
``D``                      ``decimal.Decimal`` (scale + 32-bit mantissa)
``S`` long string          ``str``, or ``bytes`` when it is not valid UTF-8
``x`` byte array           ``bytearray``
``T`` timestamp            ``datetime`` (aware, UTC)
``F`` table / ``A`` array  ``dict`` / ``list``, nested to any depth
``V`` (and ``\\x00``)       ``None``
=========================  ====================================================

The encoding: ``None``, ``bool``, ``str``, 64-bit ``int`` and finite
``float`` are plain JSON (orjson writes floats with the shortest text that
reads back to the same double, ``-0.0`` included). Everything else is a
two-element JSON array ``[tag, payload]``: ``["F", {...}]`` table,
``["A", [...]]`` array, ``["b", base64]`` bytes, ``["x", base64]`` bytearray,
``["D", "1.50"]`` Decimal (``str`` keeps the exponent), ``["T", iso]``
datetime (naive stays naive, aware keeps its UTC offset), ``["f", "nan"]``
non-finite float, ``["i", "123..."]`` int beyond 64 bits. Since every JSON
array is tagged, decoding is unambiguous.

The way back onto the wire is here too: :func:`encode_properties` and
:func:`encode_field_table` write the properties and headers of a content
header frame (AMQP 0-9-1, 4.2.6.1) so that every value keeps the wire type
pamqp read it as - a long string that was not UTF-8 stays a long string, a
byte array stays a byte array, a float stays a 64-bit double, a decimal keeps
its scale - which a requeue needs and no AMQP client's own encoder gives.

This module imports nothing from the AMQP client, so views may use its data
types; :func:`record_from_delivery` takes any object shaped like
``aiormq.abc.DeliveredMessage``.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime
import decimal
import hashlib
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson

from services.workbench import wire as _wire
from services.workbench.x_death import DeathRecord, first_death, parse_x_death

PROPERTY_NAMES: tuple[str, ...] = (
    "content_type",
    "content_encoding",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
    "cluster_id",
)
"""Basic properties other than headers, by their AMQP names (``type`` is
pamqp's ``message_type``; ``cluster_id`` is deprecated but kept when set)."""

_PAMQP_ATTRIBUTE = {"type": "message_type"}

REDELIVERY_HEADERS: frozenset[str] = frozenset({"x-delivery-count"})
"""Headers the broker adds or changes when it redelivers a message (quorum
queues count deliveries in ``x-delivery-count``): left out of the fingerprint
so a redelivery is recognised as the message already parked."""

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1

# Field names of a record in a Redis hash.
F_BODY = "body"
F_PROPS = "props"
F_HEADERS = "headers"
F_EXCHANGE = "exchange"
F_ROUTING_KEY = "rkey"
RECORD_FIELDS: tuple[str, ...] = (F_BODY, F_PROPS, F_HEADERS, F_EXCHANGE, F_ROUTING_KEY)

WIRE_KEY: Final = "~wire"
"""Where the ``props`` field keeps the raw property bytes (:attr:`MessageRecord.wire`):
a key no AMQP property has. Entries parked before it was kept have none."""


class CodecError(ValueError):
    """Stored data that is not a valid encoded record."""


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One AMQP message, whole: what a requeue needs to republish it unchanged.

    ``properties`` holds the basic properties that are set (AMQP names, see
    :data:`PROPERTY_NAMES`), ``headers`` the header table as pamqp decoded it,
    ``exchange``/``routing_key`` where the message was delivered from (for a
    dead letter: the dead-letter exchange and the key it was routed with).
    ``wire`` is the content header's property bytes as they arrived (flags
    first, see :mod:`services.workbench.wire`): a requeue writes them back
    with only the headers it changes re-encoded. None for messages parked by
    versions that did not keep them."""

    body: bytes
    properties: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)
    exchange: str = ""
    routing_key: str = ""
    wire: bytes | None = None
    decoded: _wire.WireProperties | None = field(default=None, compare=False, repr=False)
    """``wire`` as the parker decoded it (not stored): what encoding over it reuses."""


class _PropertiesLike(Protocol):
    headers: Any


class _HeaderLike(Protocol):
    @property
    def properties(self) -> Any: ...


class DeliveryLike(Protocol):
    """What :func:`record_from_delivery` reads (``aiormq.abc.DeliveredMessage``)."""

    @property
    def body(self) -> bytes: ...

    @property
    def header(self) -> Any: ...

    @property
    def exchange(self) -> str | None: ...

    @property
    def routing_key(self) -> str | None: ...


def record_from_delivery(message: DeliveryLike) -> MessageRecord:
    """The record of one delivered message (aiormq level, no aio-pika wrapper); never
    raises for odd properties.

    With :mod:`services.workbench.amqp_raw` installed the content header carries
    its raw property bytes: they are decoded here (tolerantly, with their wire
    types kept) and stored whole. Otherwise pamqp's decoded properties are read.
    """
    raw = getattr(message.header, "raw_properties", None)
    if isinstance(raw, bytes | bytearray):
        decoded = _wire.decode_properties(bytes(raw))
        return MessageRecord(
            body=bytes(message.body),
            properties=decoded.properties,
            headers=decoded.headers or {},
            exchange=message.exchange or "",
            routing_key=message.routing_key or "",
            wire=decoded.raw,
            decoded=decoded,
        )
    props = message.header.properties
    properties: dict[str, Any] = {}
    for name in PROPERTY_NAMES:
        value = getattr(props, _PAMQP_ATTRIBUTE.get(name, name), None)
        if value is not None and not (name == "cluster_id" and value == ""):
            properties[name] = value
    headers = props.headers
    return MessageRecord(
        body=bytes(message.body),
        properties=properties,
        headers=dict(headers) if isinstance(headers, dict) else {},
        exchange=message.exchange or "",
        routing_key=message.routing_key or "",
    )


# --------------------------------------------------------------------------- values


def encode_value(value: Any) -> Any:
    """One AMQP field value as JSON-ready, type-tagged data."""
    kind = type(value)
    if value is None or value is True or value is False or kind is str:
        return value
    if kind is dict:  # the common types first, without the isinstance ladder
        return ["F", {_key(k): encode_value(v) for k, v in value.items()}]
    if kind is list:
        return ["A", [encode_value(v) for v in value]]
    if kind is datetime.datetime:
        return ["T", value.isoformat()]
    if isinstance(value, int):
        if _INT_MIN <= value <= _INT_MAX:
            return int(value)
        return ["i", str(int(value))]
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        return ["f", repr(float(value))]
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return ["F", {_key(k): encode_value(v) for k, v in value.items()}]
    if isinstance(value, list | tuple):
        return ["A", [encode_value(v) for v in value]]
    if isinstance(value, bytearray):
        return ["x", base64.b64encode(value).decode("ascii")]
    if isinstance(value, bytes | memoryview):
        return ["b", base64.b64encode(value).decode("ascii")]
    if isinstance(value, decimal.Decimal):
        return ["D", str(value)]
    if isinstance(value, datetime.datetime):
        return ["T", value.isoformat()]
    raise TypeError(f"not an AMQP field value: {type(value).__name__}")


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bytes):
        return _wire.key_of(key)
    raise TypeError(f"field-table key must be a string, not {type(key).__name__}")


def decode_value(data: Any) -> Any:
    """The inverse of :func:`encode_value`."""
    if type(data) is str or type(data) is int:  # the common untagged values first
        return data
    if not isinstance(data, list):
        if data is None or isinstance(data, bool | int | float | str):
            return data
        raise CodecError(f"unexpected JSON value {type(data).__name__}")
    if len(data) != 2 or not isinstance(data[0], str):
        raise CodecError("tagged value must be [tag, payload]")
    tag, payload = data
    try:
        if tag == "F" and isinstance(payload, dict):
            return {str(k): decode_value(v) for k, v in payload.items()}
        if tag == "A" and isinstance(payload, list):
            return [decode_value(v) for v in payload]
        if tag == "b":
            return base64.b64decode(payload, validate=True)
        if tag == "x":
            return bytearray(base64.b64decode(payload, validate=True))
        if tag == "D":
            return decimal.Decimal(payload)
        if tag == "T":
            return datetime.datetime.fromisoformat(payload)
        if tag == "f":
            return float(payload)
        if tag == "i":
            return int(payload)
    except (AttributeError, TypeError, ValueError, binascii.Error, decimal.InvalidOperation) as exc:
        raise CodecError(f"bad payload for tag {tag!r}: {exc}") from None
    raise CodecError(f"unknown tag {tag!r} or payload of the wrong type")


def encode_table(table: Mapping[str, Any]) -> bytes:
    """A field table (headers, properties) as tagged JSON, keys sorted."""
    return orjson.dumps(
        {_key(k): encode_value(v) for k, v in table.items()}, option=orjson.OPT_SORT_KEYS
    )


def decode_table(data: bytes | str) -> dict[str, Any]:
    """The inverse of :func:`encode_table`."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CodecError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise CodecError("a table must be a JSON object")
    return {k: v if type(v) is str else decode_value(v) for k, v in raw.items()}


def encode_props(properties: Mapping[str, Any], wire: bytes | None) -> bytes:
    """The ``props`` field: the properties, and the raw property bytes under
    :data:`WIRE_KEY` when they are kept."""
    if wire is None:
        return encode_table(properties)
    return encode_table({**properties, WIRE_KEY: bytes(wire)})


def decode_props(data: bytes | str) -> tuple[dict[str, Any], bytes | None]:
    """The inverse of :func:`encode_props`: (properties, raw property bytes or None)."""
    properties = decode_table(data)
    wire = properties.pop(WIRE_KEY, None)
    if wire is not None and not isinstance(wire, bytes):
        raise CodecError(f"{WIRE_KEY} must be bytes")
    return properties, wire


# --------------------------------------------------------------------------- records


def encode_record(record: MessageRecord) -> dict[str, bytes]:
    """The record as Redis hash fields (:data:`RECORD_FIELDS`)."""
    return {
        F_BODY: record.body,
        F_PROPS: encode_props(record.properties, record.wire),
        F_HEADERS: encode_table(record.headers),
        F_EXCHANGE: record.exchange.encode("utf-8", "surrogateescape"),
        F_ROUTING_KEY: record.routing_key.encode("utf-8", "surrogateescape"),
    }


def decode_record(fields: Mapping[bytes, bytes] | Mapping[str, bytes]) -> MessageRecord:
    """A record from Redis hash fields (``HGETALL``; other fields are ignored).

    Raises :class:`CodecError` when a field is missing or malformed.
    """
    get = fields.get
    body, props, headers = get(b"body"), get(b"props"), get(b"headers")  # type: ignore[call-overload]
    exchange, routing_key = get(b"exchange"), get(b"rkey")  # type: ignore[call-overload]
    if (
        body is not None
        and props is not None
        and headers is not None
        and exchange is not None
        and routing_key is not None
    ):  # the hash as HGETALL gives it: its fields looked up, not every name decoded
        properties, wire = decode_props(props)
        return MessageRecord(
            body=bytes(body),
            properties=properties,
            headers=decode_table(headers),
            exchange=bytes(exchange).decode("utf-8", "surrogateescape"),
            routing_key=bytes(routing_key).decode("utf-8", "surrogateescape"),
            wire=wire,
        )
    values: dict[str, bytes] = {}
    for key, value in fields.items():
        name = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
        values[name] = value
    missing = [name for name in RECORD_FIELDS if name not in values]
    if missing:
        raise CodecError(f"record fields missing: {', '.join(missing)}")
    properties, wire = decode_props(values[F_PROPS])
    return MessageRecord(
        body=bytes(values[F_BODY]),
        properties=properties,
        headers=decode_table(values[F_HEADERS]),
        exchange=bytes(values[F_EXCHANGE]).decode("utf-8", "surrogateescape"),
        routing_key=bytes(values[F_ROUTING_KEY]).decode("utf-8", "surrogateescape"),
        wire=wire,
    )


def record_fingerprint(record: MessageRecord, encoded: Mapping[str, bytes] | None = None) -> str:
    """SHA-256 (hex) of the encoded body, properties and headers (``x-death`` included).

    Headers the broker changes on redelivery (:data:`REDELIVERY_HEADERS`) are
    left out, and so are the raw property bytes (:attr:`MessageRecord.wire`, which
    hold them too), so a message redelivered after a crash has the fingerprint it
    had when it was parked. Pass ``encoded`` (from :func:`encode_record`) to
    reuse work already done.
    """
    encoded = encoded if encoded is not None else encode_record(record)
    headers = encoded[F_HEADERS]
    if REDELIVERY_HEADERS.intersection(record.headers):
        headers = encode_table(
            {k: v for k, v in record.headers.items() if k not in REDELIVERY_HEADERS}
        )
    props = encoded[F_PROPS] if record.wire is None else encode_table(record.properties)
    digest = hashlib.sha256()
    for part in (encoded[F_BODY], props, headers):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


# --------------------------------------------------------------------------- the wire

_FLAGS: Final = _wire.PROPERTY_FLAGS
_OCTETS: Final = frozenset({"delivery_mode", "priority"})

_S_INT8 = struct.Struct(">cb")
_S_INT16 = struct.Struct(">ch")
_S_UINT16 = struct.Struct(">cH")
_S_INT32 = struct.Struct(">ci")
_S_UINT32 = struct.Struct(">cI")
_S_INT64 = struct.Struct(">cq")
_S_UINT64 = struct.Struct(">cQ")
_S_DOUBLE = struct.Struct(">cd")
_S_LEN = struct.Struct(">I")
_S_TYPED_LEN = struct.Struct(">cI")


def _short_string(value: str | bytes, what: str) -> bytes:
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")
    if len(raw) > 255:
        raise ValueError(f"{what} is longer than 255 bytes, the most a short string holds")
    return bytes((len(raw),)) + raw


def _integer(value: int) -> bytes:
    # The smallest signed type, as pamqp (aio-pika) writes it; the parked record
    # keeps the value, not the wire type.
    if -128 <= value <= 127:
        return _S_INT8.pack(b"b", value)
    if -32768 <= value <= 32767:
        return _S_INT16.pack(b"s", value)
    if 0 <= value <= 65535:
        return _S_UINT16.pack(b"u", value)
    if -(2**31) <= value < 2**31:
        return _S_INT32.pack(b"I", value)
    if 0 <= value < 2**32:
        return _S_UINT32.pack(b"i", value)
    if -(2**63) <= value < 2**63:
        return _S_INT64.pack(b"l", value)
    if 0 <= value < 2**64:
        return _S_UINT64.pack(b"L", value)
    raise ValueError(f"integer {value} does not fit an AMQP field (64 bits)")


def _decimal(value: decimal.Decimal) -> bytes:
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):
        raise ValueError(f"{value} cannot be written as an AMQP decimal")
    if exponent > 0:
        scale, mantissa = 0, int(value)
    else:
        scale, mantissa = -exponent, int(value.scaleb(-exponent))
    if scale > 255:
        raise ValueError(f"decimal {value} has more than 255 decimal places")
    if -(2**31) <= mantissa < 2**31:
        return b"D" + struct.pack(">Bi", scale, mantissa)
    if 0 <= mantissa < 2**32:  # pamqp reads the mantissa unsigned: write back what came in
        return b"D" + struct.pack(">BI", scale, mantissa)
    raise ValueError(f"decimal {value} does not fit an AMQP decimal (32-bit mantissa)")


def _seconds(value: datetime.datetime) -> int:
    if value.tzinfo is None:
        return calendar.timegm(value.timetuple())
    return calendar.timegm(value.utctimetuple())


def _str(value: str) -> bytes:
    raw = value.encode("utf-8", "surrogateescape")
    return _S_TYPED_LEN.pack(b"S", len(raw)) + raw


def _value(value: Any) -> bytes:
    kind = type(value)
    if kind is str:
        return _str(value)
    if kind is int:
        return _integer(value)
    if value is None:
        return b"V"
    if kind is bool:
        return b"t\x01" if value else b"t\x00"
    if kind is float:
        return _S_DOUBLE.pack(b"d", value)
    if kind is dict:
        return b"F" + _table(value)
    if kind is list:
        inner = b"".join([_value(v) for v in value])
        return _S_TYPED_LEN.pack(b"A", len(inner)) + inner
    if kind is datetime.datetime:
        return _S_UINT64.pack(b"T", _seconds(value))
    return _other_value(value)


def _other_value(value: Any) -> bytes:
    if isinstance(value, bool):
        return b"t\x01" if value else b"t\x00"
    if isinstance(value, str):
        return _str(str(value))
    if isinstance(value, int):
        return _integer(int(value))
    if isinstance(value, float):
        return _S_DOUBLE.pack(b"d", float(value))
    if isinstance(value, bytes):  # a long string that was not UTF-8
        return _S_TYPED_LEN.pack(b"S", len(value)) + value
    if isinstance(value, bytearray | memoryview):
        raw = bytes(value)
        return _S_TYPED_LEN.pack(b"x", len(raw)) + raw
    if isinstance(value, decimal.Decimal):
        return _decimal(value)
    if isinstance(value, datetime.datetime):
        return _S_UINT64.pack(b"T", _seconds(value))
    if isinstance(value, Mapping):
        return b"F" + _table(value)
    if isinstance(value, list | tuple):
        inner = b"".join([_value(v) for v in value])
        return _S_TYPED_LEN.pack(b"A", len(inner)) + inner
    raise ValueError(f"a {type(value).__name__} is not an AMQP field value")


def _table(table: Mapping[str, Any]) -> bytes:
    parts: list[bytes] = []
    for key, value in sorted(table.items(), key=_first):
        name = key if isinstance(key, str) else str(key)
        parts.append(_short_string(name, f"key {name!r}"))
        try:
            parts.append(_value(value))
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    inner = b"".join(parts)
    return _S_LEN.pack(len(inner)) + inner


def _first(item: tuple[Any, Any]) -> str:
    return str(item[0])


def encode_field_value(value: Any, where: str = "header") -> bytes:
    """One field-table value, typed as pamqp decoded it (see the module docstring)."""
    try:
        return _value(value)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def encode_field_table(table: Mapping[str, Any], where: str = "headers") -> bytes:
    """A field table (length-prefixed), keys sorted as pamqp (aio-pika) writes them.

    The parking store keeps tables with sorted keys, so sorting loses nothing
    and gives the very bytes an aio-pika publisher sent. Raises ``ValueError``
    naming the field (``headers.a.b: ...``) that cannot be written.
    """
    try:
        return _table(table)
    except ValueError as exc:
        raise ValueError(f"{where}.{exc}") from None


def encode_properties(properties: Mapping[str, Any], headers: Mapping[str, Any] | None) -> bytes:
    """The property flags and list of a content header frame (AMQP 0-9-1, 4.2.6.1).

    Raises ``ValueError`` naming the property or header that cannot be written.
    """
    flags = 0
    parts: list[bytes] = []
    for name, bit in _FLAGS:
        if name == "headers":
            if headers is None:
                continue
            flags |= bit
            parts.append(encode_field_table(headers))
            continue
        value = properties.get(name)
        if value is None or (name == "cluster_id" and value == ""):
            continue  # pamqp reads a missing cluster_id as "": records parked so say ""
        flags |= bit
        if name in _OCTETS:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
                raise ValueError(f"property {name} must be an octet, not {value!r}")
            parts.append(bytes((value,)))
        elif name == "timestamp":
            if isinstance(value, datetime.datetime):
                seconds = _seconds(value)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                seconds = int(value)
            else:
                raise ValueError(f"property timestamp must be a time, not {value!r}")
            parts.append(struct.pack(">Q", seconds))
        elif isinstance(value, str | bytes):
            parts.append(_short_string(value, f"property {name}"))
        else:
            raise ValueError(f"property {name} must be a string, not {type(value).__name__}")
    return struct.pack(">H", flags) + b"".join(parts)


def _one_property(name: str, value: Any) -> bytes:
    return encode_properties({name: value}, None)[2:]


def encode_message_properties(
    properties: Mapping[str, Any],
    headers: Mapping[str, Any] | None,
    wire: bytes | None,
    decoded: _wire.WireProperties | None = None,
) -> bytes:
    """The properties to publish: over the raw bytes the message arrived with when
    they are kept (every unchanged property and header byte for byte, see
    :func:`services.workbench.wire.encode_over`; ``decoded``: those bytes decoded
    already), else :func:`encode_properties`."""
    if wire is None:
        return encode_properties(properties, headers)
    return _wire.encode_over(
        wire, properties, headers, _one_property, encode_field_value, decoded=decoded
    )


__all__ = [
    "PROPERTY_NAMES",
    "RECORD_FIELDS",
    "REDELIVERY_HEADERS",
    "WIRE_KEY",
    "CodecError",
    "DeathRecord",
    "DeliveryLike",
    "MessageRecord",
    "decode_props",
    "decode_record",
    "decode_table",
    "decode_value",
    "encode_field_table",
    "encode_field_value",
    "encode_message_properties",
    "encode_properties",
    "encode_props",
    "encode_record",
    "encode_table",
    "encode_value",
    "first_death",
    "parse_x_death",
    "record_fingerprint",
    "record_from_delivery",
]
