"""How a body is shown, Qt-free: masking that keeps offsets, cuts, hex dumps, the CLI's view."""

from __future__ import annotations

from services.workbench.body_format import (
    PREVIEW_BYTES,
    body_content,
    format_body,
    hex_dump,
    hex_line,
    mask_card_bytes,
)

PAN = "4111111111111111"


def test_a_card_number_at_the_cut_is_not_shown_in_part():
    body = b"x" * (PREVIEW_BYTES - 8) + PAN.encode() + b"y" * (2 * 1024 * 1024)
    formatted = format_body(body)
    assert "41111111" not in formatted.text
    assert formatted.text.endswith("x")


def test_hex_masking_keeps_offsets():
    data = b"ab 4111 1111 1111 1111 cd"
    masked = mask_card_bytes(data)
    assert len(masked) == len(data)
    assert masked == b"ab 4111 11** **** 1111 cd"
    assert hex_line(masked, 0).startswith("00000000  61 62 20 34")


def test_hex_dump_framed_for_the_pane_and_plain_for_the_command_line():
    data = b'{"id": 1}\x00\xff' + bytes(range(0x41, 0x51))
    assert hex_dump(data).split("\n") == [
        '00000000  7b 22 69 64 22 3a 20 31  7d 00 ff 41 42 43 44 45  |{"id": 1}..ABCDE|',
        "00000010  46 47 48 49 4a 4b 4c 4d  4e 4f 50                 |FGHIJKLMNOP     |",
    ]
    assert hex_dump(data, framed=False).split("\n") == [
        '00000000  7b 22 69 64 22 3a 20 31 7d 00 ff 41 42 43 44 45  {"id": 1}..ABCDE',
        "00000010  46 47 48 49 4a 4b 4c 4d 4e 4f 50                 FGHIJKLMNOP",
    ]


def test_command_line_body_content():
    assert body_content(b"") == ("empty", "")
    kind, value = body_content(f'{{"pan": "{PAN}", "amount": 1.10}}'.encode())
    assert kind == "json" and value["pan"] == "411111******1111" and str(value["amount"]) == "1.10"
    assert body_content(f"card {PAN}".encode()) == ("text", "card 411111******1111")
    kind, dump = body_content(b"\x00" + PAN.encode() + b"\x00" + b"z" * 4999, hex_limit=32)
    lines = dump.split("\n")
    assert kind == "binary" and PAN not in dump and "411111" in dump
    assert lines[0].startswith("00000000  00 34 31 31 31 31 31 2a")
    assert lines[-1] == "... 4,985 more bytes" and len(lines) == 3
