"""wire: content-header properties read tolerantly and written back byte for byte."""

from __future__ import annotations

import datetime
import struct

import pamqp.frame
import pytest
from pamqp import commands, exceptions

from services.workbench import amqp_raw
from services.workbench.codec import (
    MessageRecord,
    decode_record,
    encode_message_properties,
    encode_record,
    record_fingerprint,
)
from services.workbench.wire import decode_properties
from tests.helpers.wire_kit import EVERY_TYPE, entry, long_, properties, short, table


def every_type_properties() -> bytes:
    return properties(
        content_type=short(b"application/json"),
        headers=table(*EVERY_TYPE),
        delivery_mode=b"\x02",
        message_id=short(b"m-1"),
        timestamp=struct.pack(">Q", 1_700_000_000_456),
    )


def test_every_field_type_is_read_with_its_value() -> None:
    decoded = decode_properties(every_type_properties())
    assert decoded.error is None
    headers = decoded.headers
    assert headers is not None
    assert next(iter(headers)) == "zeta-first"  # the order they came in
    assert headers["int32-small"] == 1 and headers["uint8"] == 200 and headers["int8"] == -3
    assert headers["float32"] == struct.unpack(">f", struct.pack(">f", 0.1))[0]
    assert headers["ts-ms"] == 1_700_000_000_123  # milliseconds stay the number sent
    assert headers["ts"] == datetime.datetime.fromtimestamp(1_700_000_000, datetime.UTC)
    assert headers["not-utf8-string"] == b"\xff\xfe"
    assert headers["bytes"] == bytearray(b"\x00\xff")
    assert headers["table"] == {"k": 9, "n": None} and headers["array"] == [1, "a", False]
    assert decoded.properties["timestamp"] == 1_700_000_000_456
    assert "cluster_id" not in decoded.properties


def test_unchanged_properties_are_written_back_byte_for_byte() -> None:
    raw = every_type_properties()
    record = MessageRecord(b"{}", wire=raw, **_decoded(raw))
    again = decode_record(encode_record(record))  # through the store's encoding
    assert again.wire == raw
    assert encode_message_properties(again.properties, again.headers, again.wire) == raw


def test_only_what_changed_is_encoded_again_new_headers_last() -> None:
    raw = every_type_properties()
    parts = _decoded(raw)
    headers = {k: v for k, v in parts["headers"].items() if k != "bool"}
    headers["int8"] = 100
    headers["payops-action"] = "requeue"
    out = decode_properties(encode_message_properties(parts["properties"], headers, raw))
    fields = {f.key: f.raw for f in out.header_fields}
    before = {f.key: f.raw for f in decode_properties(raw).header_fields}
    assert "bool" not in fields
    assert fields["int8"] == entry(b"int8", b"b" + struct.pack(">b", 100))
    assert [f.key for f in out.header_fields][-1] == "payops-action"
    for key in ("int32-small", "float32", "ts-ms", "decimal", "table", "array"):
        assert fields[key] == before[key], key


def test_a_key_that_is_not_utf8_keeps_its_bytes() -> None:
    raw = properties(headers=table(entry(b"k\xff", long_(b"S", b"v")), entry(b"n", b"I\0\0\0\1")))
    decoded = decode_properties(raw)
    assert decoded.headers == {"k\\xff": "v", "n": 1}
    changed = {"k\\xff": "w", "n": 1}
    out = encode_message_properties({}, changed, raw)
    assert entry(b"k\xff", long_(b"S", b"w")) in out


@pytest.mark.parametrize(
    "raw",
    [
        properties(headers=table(entry(b"ok", b"t\x01"), entry(b"q", b"Q1234"))),
        properties(headers=table(entry(b"ok", b"t\x01")))[:-1],
        properties(message_id=short(b"m"))[:-1],
        b"\x00",
    ],
    ids=["unknown-type", "truncated-table", "truncated-property", "no-flags"],
)
def test_broken_properties_are_read_as_far_as_they_go_and_kept(raw: bytes) -> None:
    decoded = decode_properties(raw)
    assert decoded.error is not None and decoded.raw == raw
    record = MessageRecord(b"x", properties=decoded.properties, headers=decoded.headers or {})
    record_fingerprint(record)  # storable


def test_unknown_type_rest_of_the_table_is_written_back_whole() -> None:
    raw = properties(headers=table(entry(b"ok", b"t\x01"), entry(b"q", b"Q1234")))
    decoded = decode_properties(raw)
    assert decoded.headers == {"ok": True}
    assert encode_message_properties({}, {"ok": True}, raw) == raw


def _decoded(raw: bytes) -> dict[str, dict[str, object]]:
    decoded = decode_properties(raw)
    return {"properties": decoded.properties, "headers": decoded.headers or {}}


def _header_frame(props: bytes) -> bytes:
    payload = struct.pack(">HHQ", 60, 0, 5) + props
    return struct.pack(">BHI", 2, 1, len(payload)) + payload + b"\xce"


@pytest.mark.parametrize(
    "props",
    [
        properties(headers=table(entry(b"k\xff", b"t\x01"))),
        properties(message_id=short(b"id-\xff")),
        properties(timestamp=struct.pack(">Q", 253_402_300_800_000_000)),
    ],
    ids=["key-not-utf8", "message-id-not-utf8", "after-year-9999"],
)
def test_pamqp_fails_on_these_headers_and_the_installed_decoder_does_not(
    props: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = _header_frame(props)
    monkeypatch.setattr(pamqp.frame, "_unmarshal_header_frame", amqp_raw.PAMQP_UNMARSHAL_HEADER)
    with pytest.raises(exceptions.UnmarshalingException):
        pamqp.frame.unmarshal(frame)  # what closed the parker's connection
    amqp_raw.install()
    assert amqp_raw.installed()
    consumed, channel, header = pamqp.frame.unmarshal(frame)
    assert (consumed, channel) == (len(frame), 1)
    assert isinstance(header, amqp_raw.RawContentHeader)
    assert header.body_size == 5 and header.undecodable
    assert header.raw_properties == props
    assert isinstance(header.properties, commands.Basic.Properties)
