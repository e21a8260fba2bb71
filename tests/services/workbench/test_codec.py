"""The codec: every AMQP field type round-trips exactly through Redis, and is written back
onto the wire with the type it arrived with."""

from __future__ import annotations

import datetime
import math
import struct
from decimal import Decimal
from typing import Any

import aio_pika
import aiormq.abc
import orjson
import pamqp.encode
import pytest
import redis.asyncio as aioredis
from pamqp.commands import Basic

from services.workbench.codec import (
    CodecError,
    DeathRecord,
    MessageRecord,
    decode_record,
    decode_table,
    decode_value,
    encode_field_table,
    encode_properties,
    encode_record,
    encode_table,
    encode_value,
    first_death,
    parse_x_death,
    record_fingerprint,
    record_from_delivery,
)
from tests.helpers.raw_str import RawStr

UTC = datetime.UTC
AWARE = datetime.datetime(2024, 5, 17, 12, 30, 45, tzinfo=UTC)
NAIVE = datetime.datetime(2024, 5, 17, 12, 30, 45, 123456)
OFFSET = datetime.datetime(
    2024, 5, 17, 12, 30, 45, tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30))
)


def assert_same(a: Any, b: Any, path: str = "$") -> None:
    """Equal and of exactly the same type, all the way down (NaN equals NaN)."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert list(sorted(a)) == list(sorted(b)), path
        for key in a:
            assert_same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    elif isinstance(a, float):
        assert a == b and math.copysign(1, a) == math.copysign(1, b), path
    elif isinstance(a, Decimal):
        assert a.as_tuple() == b.as_tuple(), path
    elif isinstance(a, datetime.datetime):
        assert a == b and a.utcoffset() == b.utcoffset(), path
    else:
        assert a == b, path


EVERY_TYPE: dict[str, Any] = {
    "none": None,
    "true": True,
    "false": False,
    "zero": 0,
    "int8": -128,
    "int16": 32767,
    "uint32": 4294967295,
    "int64_max": 2**63 - 1,
    "int64_min": -(2**63),
    "uint64_max": 2**64 - 1,
    "beyond_64": 2**80 + 1,
    "float": 0.1,
    "float32": 3.140000104904175,
    "neg_zero": -0.0,
    "tiny": 5e-324,
    "nan": float("nan"),
    "inf": float("inf"),
    "ninf": float("-inf"),
    "decimal": Decimal("42.50"),
    "decimal_neg": Decimal("-0.001"),
    "decimal_exp": Decimal("1E+3"),
    "str": "päyment ✓",
    "empty_str": "",
    "looks_tagged": ["F", {}],
    "bytes_invalid_utf8": b"\xff\xfe\x00ok",
    "bytearray": bytearray(b"\x00\x01\x02\xff"),
    "dt_aware": AWARE,
    "dt_naive": NAIVE,
    "dt_offset": OFFSET,
    "table": {"a": 1, "nested": {"deeper": [1, "two", None, {"x": Decimal("0.5")}]}},
    "array": [1, 2**63 - 1, "s", b"\x80", bytearray(b"ba"), [AWARE, [None, []]], {}],
    "empty_table": {},
    "empty_array": [],
}


@pytest.mark.parametrize("name", sorted(EVERY_TYPE))
def test_every_field_type_round_trips_exactly(name: str) -> None:
    value = EVERY_TYPE[name]
    encoded = orjson.dumps(encode_value(value))
    assert_same(decode_value(orjson.loads(encoded)), value)


def test_whole_table_round_trips_and_is_plain_json() -> None:
    data = encode_table(EVERY_TYPE)
    assert isinstance(orjson.loads(data), dict)  # plain JSON, no pickle anywhere
    assert_same(decode_table(data), EVERY_TYPE)


def test_tuple_and_memoryview_encode_as_their_amqp_types() -> None:
    assert decode_value(encode_value((1, 2))) == [1, 2]
    assert_same(decode_value(encode_value(memoryview(b"ab"))), b"ab")


def test_not_an_amqp_value_is_refused() -> None:
    with pytest.raises(TypeError):
        encode_value(object())
    with pytest.raises(TypeError):
        encode_value({1: "non-string key"})


@pytest.mark.parametrize(
    "data",
    [
        ["?", 1],
        ["F"],
        ["F", [1]],
        ["A", "not a list"],
        ["b", "***"],
        ["D", "not a number"],
        ["T", "yesterday"],
        {"a": 1},
    ],
)
def test_malformed_stored_values_raise_codec_error(data: Any) -> None:
    with pytest.raises(CodecError):
        decode_value(data)


def test_decode_table_rejects_non_objects() -> None:
    with pytest.raises(CodecError):
        decode_table(b"[1, 2]")
    with pytest.raises(CodecError):
        decode_table(b"{not json")


def sample_record(**overrides: Any) -> MessageRecord:
    values: dict[str, Any] = {
        "body": b'{"payment_id": "pay_1", "amount": 42.50, "currency": "EUR"}',
        "properties": {
            "content_type": "application/json",
            "content_encoding": "utf-8",
            "delivery_mode": 2,
            "priority": 5,
            "correlation_id": "corr-1",
            "reply_to": "replies",
            "expiration": "60000",
            "message_id": "msg-1",
            "timestamp": AWARE,
            "type": "payment.failed",
            "user_id": "guest",
            "app_id": "payments",
        },
        "headers": dict(EVERY_TYPE),
        "exchange": "payments.dlx",
        "routing_key": "payment.failed",
    }
    values.update(overrides)
    return MessageRecord(**values)


def test_record_round_trips_through_hash_fields() -> None:
    record = sample_record()
    fields = encode_record(record)
    assert set(fields) == {"body", "props", "headers", "exchange", "rkey"}
    assert all(isinstance(v, bytes) for v in fields.values())
    back = decode_record({k.encode(): v for k, v in fields.items()})
    # (NaN headers defeat ==, so compare field by field, types included)
    assert back.body == record.body
    assert_same(back.properties, record.properties)
    assert_same(back.headers, record.headers)
    assert (back.exchange, back.routing_key) == (record.exchange, record.routing_key)


def test_decode_record_names_missing_fields() -> None:
    with pytest.raises(CodecError, match="headers"):
        decode_record({b"body": b"", b"props": b"{}", b"exchange": b"", b"rkey": b""})


def test_fingerprint_covers_content_but_not_the_redelivery_counter() -> None:
    record = sample_record(headers={"x-death": [{"queue": "q", "count": 1}]})
    same = sample_record(headers={"x-death": [{"queue": "q", "count": 1}]})
    redelivered = sample_record(
        headers={"x-death": [{"queue": "q", "count": 1}], "x-delivery-count": 3}
    )
    died_again = sample_record(headers={"x-death": [{"queue": "q", "count": 2}]})
    other_body = sample_record(body=b"other", headers={"x-death": [{"queue": "q", "count": 1}]})
    fp = record_fingerprint(record)
    assert len(fp) == 64
    assert record_fingerprint(same) == fp
    assert record_fingerprint(redelivered) == fp
    assert record_fingerprint(died_again) != fp
    assert record_fingerprint(other_body) != fp
    # the encoded record can be reused
    assert record_fingerprint(record, encode_record(record)) == fp


async def test_record_round_trips_through_a_real_redis_hash(
    redis_client: aioredis.Redis, unique_prefix: str
) -> None:
    key = f"{unique_prefix}record"
    record = sample_record()
    try:
        await redis_client.hset(key, mapping=encode_record(record))  # type: ignore[arg-type]
        back = decode_record(await redis_client.hgetall(key))
    finally:
        await redis_client.delete(key)
    assert back.body == record.body
    assert_same(back.properties, record.properties)
    assert_same(back.headers, record.headers)


# --------------------------------------------------------------------------- real AMQP round trip


class Double(float):
    """A float pamqp should put on the wire as a 64-bit double ('d'), as Java and
    .NET clients do (pamqp itself writes 32-bit 'f')."""


def _encode_with_doubles(original: Any) -> Any:
    def encode(value: Any) -> bytes:
        if isinstance(value, Double):
            return b"d" + struct.pack(">d", value)
        return bytes(original(value))

    return encode


PUBLISHED_HEADERS: dict[str, Any] = {
    "none": None,
    "bool": True,
    "small": -5,
    "int32": -(2**31),
    "uint32": 2**32 - 1,
    "int64": 2**63 - 1,
    "int64_neg": -(2**63),
    "float": 0.5,
    "double": Double(0.1),
    "decimal": Decimal("42.50"),
    "str": "päyment ✓",
    "bytearray": bytearray(b"\x00\xffbin"),
    "invalid_utf8": RawStr(b"\xc3\x28 not utf-8"),
    "timestamp": datetime.datetime(2024, 5, 17, 12, 30, 45, tzinfo=UTC),
    "table": {"a": {"b": [1, "two", None, {"c": Decimal("0.5")}]}, "t": True},
    "array": [1, "x", [2, [3]], bytearray(b"y"), datetime.datetime(2020, 1, 1, tzinfo=UTC)],
    "empty_table": {},
    "empty_array": [],
}


async def test_real_message_round_trip(
    amqp_url: str,
    redis_client: aioredis.Redis,
    unique_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        pamqp.encode, "encode_table_value", _encode_with_doubles(pamqp.encode.encode_table_value)
    )
    connection = await aio_pika.connect(amqp_url)
    queue_name = f"{unique_prefix}codec"
    key = f"{unique_prefix}record"
    try:
        channel = await connection.channel()
        await channel.declare_queue(queue_name, auto_delete=False)
        body = b"\x00\xffbinary body \xc3\x28"
        message = aio_pika.Message(
            body,
            headers=dict(PUBLISHED_HEADERS),
            content_type="application/octet-stream",
            content_encoding="identity",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            priority=3,
            correlation_id="corr",
            reply_to="reply.q",
            expiration=600,
            message_id="m-1",
            timestamp=datetime.datetime(2024, 5, 17, 12, 0, 0, tzinfo=UTC),
            type="payment.failed",
            user_id="guest",
            app_id="tests",
        )
        await channel.default_exchange.publish(message, routing_key=queue_name)

        amqp: aiormq.abc.AbstractChannel = await channel.get_underlay_channel()
        delivered = await amqp.basic_get(queue_name, no_ack=True)
        record = record_from_delivery(delivered)

        await redis_client.hset(key, mapping=encode_record(record))  # type: ignore[arg-type]
        back = decode_record(await redis_client.hgetall(key))
    finally:
        await redis_client.delete(key)
        cleanup = await connection.channel()
        await cleanup.queue_delete(queue_name)
        await connection.close()

    assert back.body == body
    assert_same(back.properties, record.properties)
    assert_same(back.headers, record.headers)
    assert back.exchange == "" and back.routing_key == queue_name
    # pamqp's own decoding is what we keep:
    headers = back.headers
    assert (
        headers["invalid_utf8"] == b"\xc3\x28 not utf-8" and type(headers["invalid_utf8"]) is bytes
    )
    assert type(headers["bytearray"]) is bytearray
    assert headers["int64"] == 2**63 - 1 and headers["int64_neg"] == -(2**63)
    assert headers["decimal"] == Decimal("42.50")
    assert headers["double"] == 0.1 and type(headers["double"]) is float  # 64-bit, exact
    assert headers["timestamp"] == PUBLISHED_HEADERS["timestamp"]
    assert headers["table"]["a"]["b"][3]["c"] == Decimal("0.5")
    props = back.properties
    assert props["message_id"] == "m-1" and props["type"] == "payment.failed"
    assert props["delivery_mode"] == 2 and props["priority"] == 3 and props["user_id"] == "guest"
    assert props["expiration"] == "600000" or props["expiration"] == "600"
    assert isinstance(props["timestamp"], datetime.datetime)


# --------------------------------------------------------------------------- the wire

PAMQP_TYPES: dict[str, Any] = {
    "s": "text",
    "b": -3,
    "short": 1000,
    "ushort": 65000,
    "int": -100_000,
    "uint": 3_000_000_000,
    "long": 2**62,
    "t": True,
    "d": Decimal("1.50"),
    "ts": datetime.datetime(2024, 1, 1, 12, 0, tzinfo=datetime.UTC),
    "table": {"a": [1, "x", None], "b": {}},
    "bytes": bytearray(b"\x00\xff"),
    "void": None,
}


def test_headers_are_written_byte_for_byte_as_aio_pika_writes_them() -> None:
    assert encode_field_table(PAMQP_TYPES) == pamqp.encode.field_table(PAMQP_TYPES)
    properties = Basic.Properties(
        content_type="application/json",
        delivery_mode=2,
        priority=4,
        message_id="m",
        timestamp=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
        message_type="t",
        app_id="a",
        headers=PAMQP_TYPES,
    )
    ours = encode_properties(
        {
            "content_type": "application/json",
            "delivery_mode": 2,
            "priority": 4,
            "message_id": "m",
            "timestamp": datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
            "type": "t",
            "app_id": "a",
        },
        PAMQP_TYPES,
    )
    assert ours == properties.marshal()


def test_values_pamqp_cannot_write_keep_their_type() -> None:
    # a 64-bit double, a long string that is not UTF-8, an unsigned decimal mantissa
    assert encode_field_table({"f": 0.1}) == b"\x00\x00\x00\x0b\x01fd" + struct.pack(">d", 0.1)
    assert encode_field_table({"r": b"\xff"}) == b"\x00\x00\x00\x08\x01rS\x00\x00\x00\x01\xff"
    with pytest.raises(ValueError, match="does not fit"):
        encode_field_table({"i": 2**64})
    with pytest.raises(ValueError, match="not an AMQP field value"):
        encode_field_table({"o": object()})


# --------------------------------------------------------------------------- x-death

DEATH_TIME = datetime.datetime(2024, 5, 17, 12, 0, tzinfo=UTC)


def test_parse_x_death_reads_the_broker_shape() -> None:
    headers = {
        "x-death": [
            {
                "count": 2,
                "reason": "expired",
                "queue": "payments.retry",
                "time": DEATH_TIME,
                "exchange": "",
                "routing-keys": ["payments.retry"],
            },
            {
                "count": 1,
                "reason": "rejected",
                "queue": "payments",
                "time": DEATH_TIME - datetime.timedelta(minutes=5),
                "exchange": "payments.topic",
                "routing-keys": ["payment.created", "cc"],
            },
        ],
        "x-first-death-queue": "payments",
        "x-first-death-reason": "rejected",
        "x-first-death-exchange": "payments.topic",
    }
    deaths = parse_x_death(headers)
    assert deaths[0] == DeathRecord(
        "payments.retry", "expired", 2, DEATH_TIME, "", ("payments.retry",)
    )
    assert deaths[1].routing_keys == ("payment.created", "cc")
    assert deaths[0].time_ms == int(DEATH_TIME.timestamp() * 1000)
    first = first_death(headers)
    assert first is not None and first.queue == "payments" and first.count == 1


@pytest.mark.parametrize(
    "headers",
    [
        None,
        "text",
        42,
        {},
        {"x-death": None},
        {"x-death": "garbage"},
        {"x-death": b"\xff"},
        {"x-death": 7},
        {"x-death": [1, "two", None, [], b"x"]},
        {
            "x-death": [
                {"queue": b"\xff\xfe", "count": "7", "time": 1700000000, "routing-keys": "rk"}
            ]
        },
        {
            "x-death": [
                {"queue": 1, "reason": None, "count": True, "time": "noon", "routing-keys": 5}
            ]
        },
        {"x-death": [{"count": Decimal("3"), "time": 1700000000000}]},
        {"x-death": [{"count": float("nan"), "time": 10**30}]},
        {"x-death": [{"count": -4, "time": -(10**30)}]},
        {"x-death": {"queue": "single table", "reason": "rejected"}},
        {"x-death": [{"routing-keys": [1, b"\xff", "ok", None]}]},
        {"x-first-death-queue": b"\xff", "x-first-death-reason": 5},
    ],
)
def test_parse_x_death_never_raises(headers: Any) -> None:
    deaths = parse_x_death(headers)
    assert isinstance(deaths, tuple)
    for death in deaths:
        assert isinstance(death.queue, str) and isinstance(death.count, int) and death.count >= 0
        _ = death.time_ms
    first_death(headers)


def test_odd_x_death_values_are_read_where_possible() -> None:
    deaths = parse_x_death(
        {"x-death": [{"queue": b"q", "count": "7", "time": 1700000000, "routing-keys": "rk"}]}
    )
    assert deaths == (
        DeathRecord("q", "", 7, datetime.datetime.fromtimestamp(1700000000, UTC), "", ("rk",)),
    )
    assert parse_x_death({"x-death": {"queue": "q", "reason": "rejected"}})[0].queue == "q"


def test_first_death_without_first_death_headers_uses_the_oldest_entry() -> None:
    headers = {
        "x-death": [{"queue": "new", "reason": "expired"}, {"queue": "old", "reason": "rejected"}]
    }
    first = first_death(headers)
    assert first is not None and first.queue == "old"
    assert first_death({}) is None
    lone = first_death({"x-first-death-queue": "q", "x-first-death-reason": "maxlen"})
    assert lone == DeathRecord("q", "maxlen")
