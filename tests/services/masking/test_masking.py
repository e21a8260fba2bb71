"""Card numbers are masked to first 6 / last 4 wherever they appear in text."""

from __future__ import annotations

import pytest

from services.masking.text import luhn_valid, mask_pan, mask_text


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("5555555555554444")
    assert not luhn_valid("4111111111111112")


def test_mask_pan_keeps_at_most_first_six_and_last_four() -> None:
    assert mask_pan("4111111111111111") == "411111******1111"
    assert mask_pan("378282246310005") == "378282*****0005"


def test_mask_text_finds_grouped_and_embedded_numbers() -> None:
    text = 'card {"number": "4111 1111 1111 1111"} and 5555-5555-5555-4444, ref 4111111111111112'
    masked = mask_text(text)
    assert "4111 1111 1111 1111" not in masked
    assert "411111******1111" in masked
    assert "555555******4444" in masked
    # Not Luhn-valid: an order reference, left alone.
    assert "4111111111111112" in masked


def test_short_and_long_digit_runs_are_left_alone() -> None:
    assert mask_text("amount 123456789012") == "amount 123456789012"
    twenty = "41111111111111111113"
    assert mask_text(twenty) == twenty


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("INC-9 4111111111111111", "INC-9 411111******1111"),
        ("ref 12 4111111111111111 x", "ref 12 411111******1111 x"),
        ("9 4111 1111 1111 1111", "9 411111******1111"),
        ("4111 1111 1111 1111 7", "411111******1111 7"),
        ("1234567890123", "1234567890123"),  # no card number in it
    ],
)
def test_a_card_number_beside_other_digits_is_still_masked(text: str, expected: str) -> None:
    # A number just before or after the card number, separated by one space or dash,
    # makes a longer candidate that fails Luhn as a whole: the card number inside it
    # must still be found.
    assert mask_text(text) == expected
