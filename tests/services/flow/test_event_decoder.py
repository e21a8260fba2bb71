"""Status and latency from one tapped delivery; the decoder never raises."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import orjson
import pytest

from services.config import FieldPaths
from services.flow.decoder import EventDecoder
from services.flow.payment_events import MAX_PAYMENT_ID_LENGTH

NOW_MS = 1_700_000_000_000.0


@pytest.fixture
def decoder() -> EventDecoder:
    return EventDecoder(FieldPaths())


def decode(decoder: EventDecoder, body: bytes, key: str = "payment.created", **kw):  # type: ignore[no-untyped-def]
    status, latency, _reason, _pid = decoder.decode(
        body, key, kw.get("headers"), kw.get("timestamp"), kw.get("now", NOW_MS)
    )
    return status, latency


def test_status_from_json_body(decoder: EventDecoder) -> None:
    body = orjson.dumps({"status": "Captured", "created_at": NOW_MS - 250})
    assert decode(decoder, body) == ("captured", 250.0)


def test_status_from_nested_configured_path() -> None:
    decoder = EventDecoder(FieldPaths(status="payment.state", timestamp="meta.ts"))
    body = orjson.dumps({"payment": {"state": "FAILED"}, "meta": {"ts": NOW_MS - 10}})
    assert decode(decoder, body) == ("failed", 10.0)


def test_status_falls_back_to_routing_key(decoder: EventDecoder) -> None:
    assert decode(decoder, b"not json", "payments.eu.Refunded")[0] == "refunded"
    assert decode(decoder, orjson.dumps([1, 2]), "p.settled")[0] == "settled"
    assert decode(decoder, orjson.dumps({"other": 1}), "p.settled")[0] == "settled"
    assert decode(decoder, orjson.dumps({"status": None}), "p.settled")[0] == "settled"
    assert decode(decoder, orjson.dumps({"status": {"a": 1}}), "p.settled")[0] == "settled"
    assert decode(decoder, orjson.dumps({"status": ""}), "p.settled")[0] == "settled"
    assert decode(decoder, b"{}", "nodots")[0] == "nodots"


def test_empty_status_is_unknown(decoder: EventDecoder) -> None:
    assert decode(decoder, b"", "")[0] == "unknown"
    assert decode(decoder, b"", "payment.")[0] == "unknown"
    assert decode(decoder, orjson.dumps({"status": "   "}), "")[0] == "unknown"


def test_status_is_lower_case_and_truncated(decoder: EventDecoder) -> None:
    status, _ = decode(decoder, orjson.dumps({"status": "X" * 500}))
    assert status == "x" * 40
    status, _ = decode(decoder, b"", "a." + "Y" * 100)
    assert status == "y" * 40


def test_numeric_status_is_text(decoder: EventDecoder) -> None:
    assert decode(decoder, orjson.dumps({"status": 402}))[0] == "402"
    assert decode(decoder, orjson.dumps({"status": True}), "p.ok")[0] == "ok"


def test_leading_whitespace_json(decoder: EventDecoder) -> None:
    assert decode(decoder, b'  \n {"status": "ok"}')[0] == "ok"


def test_binary_and_invalid_utf8_bodies(decoder: EventDecoder) -> None:
    assert decode(decoder, os.urandom(4096), "p.x") == ("x", None)
    assert decode(decoder, b'{"status": "\xff\xfe"}', "p.y") == ("y", None)
    assert decode(decoder, b"{\x00\x01", "p.z") == ("z", None)


def test_huge_body(decoder: EventDecoder) -> None:
    padding = "a" * (5 * 1024 * 1024)
    body = orjson.dumps({"status": "captured", "created_at": NOW_MS - 5, "pad": padding})
    assert len(body) > 5_000_000
    assert decode(decoder, body) == ("captured", 5.0)
    assert decode(decoder, b"{" + b"x" * 5_000_000, "p.bad") == ("bad", None)


@pytest.mark.parametrize(
    ("created", "latency"),
    [
        (NOW_MS - 1500, 1500.0),  # epoch ms
        ((NOW_MS - 2000) / 1000, 2000.0),  # epoch s (float)
        (int(NOW_MS / 1000) - 3, 3000.0),  # epoch s (int)
        ("2023-11-14T22:13:17Z", 3000.0),  # ISO-8601, Z
        ("2023-11-14T23:13:17+01:00", 3000.0),  # ISO-8601 with offset
        ("2023-11-14T22:13:17.500", 2500.0),  # naive: UTC
        ("1699999997000", 3000.0),  # numeric string, ms
    ],
)
def test_body_timestamp_variants(decoder: EventDecoder, created: object, latency: float) -> None:
    body = orjson.dumps({"status": "ok", "created_at": created})
    assert decode(decoder, body)[1] == pytest.approx(latency)


def test_amqp_timestamp_property_when_body_has_none(decoder: EventDecoder) -> None:
    stamp = datetime.fromtimestamp(NOW_MS / 1000 - 4, tz=UTC)
    assert decode(decoder, b"opaque", timestamp=stamp)[1] == pytest.approx(4000.0)
    naive = stamp.replace(tzinfo=None)
    assert decode(decoder, b"opaque", timestamp=naive)[1] == pytest.approx(4000.0)
    other_zone = stamp.astimezone(timezone(timedelta(hours=5)))
    assert decode(decoder, b"opaque", timestamp=other_zone)[1] == pytest.approx(4000.0)


def test_body_timestamp_wins_over_property(decoder: EventDecoder) -> None:
    stamp = datetime.fromtimestamp(NOW_MS / 1000 - 60, tz=UTC)
    body = orjson.dumps({"created_at": NOW_MS - 7})
    assert decode(decoder, body, timestamp=stamp)[1] == 7.0


def test_timestamp_header_in_ms(decoder: EventDecoder) -> None:
    assert decode(decoder, b"x", headers={"timestamp_in_ms": int(NOW_MS) - 42})[1] == 42.0


def test_bad_timestamps_give_no_latency(decoder: EventDecoder) -> None:
    bad: list[object] = [
        "yesterday",
        "",
        None,
        True,
        [1],
        {"a": 1},
        -5,
        0,
        "9" * 100,
        "nan",
        "-inf",
    ]
    for created in bad:
        body = orjson.dumps({"status": "ok", "created_at": created})
        assert decode(decoder, body) == ("ok", None), created
    assert decode(decoder, orjson.dumps({"status": "ok", "created_at": 1e300})) == ("ok", None)


def test_future_timestamps(decoder: EventDecoder) -> None:
    # Small clock skew clamps to zero; beyond a second it is not believed.
    assert decode(decoder, orjson.dumps({"created_at": NOW_MS + 900}))[1] == 0.0
    assert decode(decoder, orjson.dumps({"created_at": NOW_MS + 5000}))[1] is None


def test_odd_header_types(decoder: EventDecoder) -> None:
    odd = [
        {"timestamp_in_ms": b"123"},
        {"timestamp_in_ms": "abc"},
        {"timestamp_in_ms": Decimal("1.5")},
        {"timestamp_in_ms": None},
        {"timestamp_in_ms": [1, 2]},
        {"timestamp_in_ms": {"nested": True}},
        {"timestamp_in_ms": True},
        {"x-death": [{"count": 1}]},
        {b"bytes-key": 1},
        {},
    ]
    for headers in odd:
        assert decode(decoder, b"x", "a.b", headers=headers) == ("b", None), headers


def test_odd_argument_types_never_raise(decoder: EventDecoder) -> None:
    weird: list[object] = [None, 1, "str", bytearray(b'{"status":"ok"}'), memoryview(b"{}")]
    for body in weird:
        status, latency, reason, payment_id = decoder.decode(
            body, None, object(), "not a datetime", NOW_MS
        )  # type: ignore[arg-type]
        assert isinstance(status, str)
        assert latency is None and reason is None and payment_id is None
        assert decoder.payment_id(body) is None  # type: ignore[arg-type]


def test_failure_reason_is_read_for_failure_statuses_only() -> None:
    decoder = EventDecoder(FieldPaths(reason="error.text"), failure_statuses=("failed", "Error"))
    failed = orjson.dumps({"status": "failed", "error": {"text": "  acquirer\n timeout "}})
    errored = orjson.dumps({"status": "error", "error": {"text": "risk engine down"}})
    declined = orjson.dumps({"status": "declined", "error": {"text": "insufficient funds"}})
    assert decoder.decode(failed, "k", None, None, NOW_MS)[2] == "acquirer timeout"
    assert decoder.decode(errored, "k", None, None, NOW_MS)[2] == "risk engine down"
    assert decoder.decode(declined, "k", None, None, NOW_MS)[2] is None


@pytest.mark.parametrize(
    "reason",
    [None, "", 42, {"text": "x"}, ["a"]],
)
def test_missing_or_odd_reasons_are_none(decoder: EventDecoder, reason: object) -> None:
    body = orjson.dumps({"status": "failed", "reason": reason})
    assert decoder.decode(body, "k", None, None, NOW_MS)[2] is None
    assert decoder.decode(b"\xff not json", "p.failed", None, None, NOW_MS)[2] is None


def test_reasons_are_masked_and_bounded(decoder: EventDecoder) -> None:
    body = orjson.dumps({"status": "failed", "reason": "declined card 4111111111111111 " * 9})
    reason = decoder.decode(body, "k", None, None, NOW_MS)[2]
    assert reason is not None and len(reason) <= 80
    assert "4111111111111111" not in reason and "411111******1111" in reason


def test_payment_id_comes_out_of_the_same_parse() -> None:
    decoder = EventDecoder(FieldPaths(payment_id="payment.id"))
    body = orjson.dumps({"payment": {"id": "pay_17d5570756950439"}, "status": "captured"})
    assert decoder.decode(body, "k", None, None, NOW_MS)[3] == "pay_17d5570756950439"
    assert decoder.payment_id(body) == "pay_17d5570756950439"
    assert decoder.payment_id(orjson.dumps({"payment": {"id": 4711}})) == "4711"


@pytest.mark.parametrize(
    "value", [None, "", True, 1.5, ["pay_1"], {"id": "pay_1"}, "p" * (MAX_PAYMENT_ID_LENGTH + 1)]
)
def test_missing_odd_or_oversized_payment_ids_are_none(
    decoder: EventDecoder, value: object
) -> None:
    body = orjson.dumps({"status": "captured", "payment_id": value})
    assert decoder.decode(body, "k", None, None, NOW_MS)[3] is None
    assert decoder.payment_id(body) is None
    assert decoder.payment_id(b"not json") is None
