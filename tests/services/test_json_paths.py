"""Dotted paths into parsed JSON."""

from __future__ import annotations

from services.json_paths import compile_path

DOC = {
    "status": "captured",
    "payment": {"amount": {"value": 1250, "currency": "EUR"}, "tags": ["a", "b"]},
    "items": [{"sku": "x1"}, {"sku": "x2"}],
    "0": "zero-key",
    "none": None,
}


def test_top_level_and_nested_keys() -> None:
    assert compile_path("status")(DOC) == "captured"
    assert compile_path("payment.amount.value")(DOC) == 1250
    assert compile_path("payment.amount")(DOC) == {"value": 1250, "currency": "EUR"}


def test_list_indices() -> None:
    assert compile_path("items.1.sku")(DOC) == "x2"
    assert compile_path("payment.tags.0")(DOC) == "a"
    assert compile_path("items.2.sku")(DOC) is None
    assert compile_path("items.-1.sku")(DOC) is None


def test_digit_segment_is_a_key_on_a_dict() -> None:
    assert compile_path("0")(DOC) == "zero-key"


def test_absent_or_wrong_type_gives_none() -> None:
    assert compile_path("missing")(DOC) is None
    assert compile_path("status.deeper")(DOC) is None
    assert compile_path("items.sku")(DOC) is None
    assert compile_path("none.x")(DOC) is None
    assert compile_path("a.b")(None) is None
    assert compile_path("a")("just a string") is None
    assert compile_path("0")([1, 2]) == 1
    assert compile_path("a")([{"a": 1}]) is None


def test_empty_path_is_the_value() -> None:
    assert compile_path("")(DOC) is DOC


def test_never_raises_on_odd_inputs() -> None:
    getter = compile_path("a.0.b")
    for value in (1, 1.5, b"bytes", object(), {"a": "str"}, {"a": [None]}, {"a": [[1]]}):
        assert getter(value) is None
