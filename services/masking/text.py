"""Card-number masking: PANs never leave the process unmasked.

A PAN is 13–19 digits (optionally grouped by single spaces or dashes) that
passes the Luhn check. It is shown as its first 6 and last 4 digits at most
(PCI DSS 3.4), the rest replaced by ``*``.
"""

from __future__ import annotations

import logging
import re

_PAN_CANDIDATE = re.compile(r"(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])")
MIN_PAN_DIGITS = 13
"""The fewest digits a card number has."""
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_THIRTEEN_DIGITS = b"0" * MIN_PAN_DIGITS


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn check."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def mask_pan(digits: str) -> str:
    """Mask one PAN (digits only): first 6 and last 4 kept."""
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


_SEPARATOR = re.compile(r"([ -])")


def _mask_match(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = text.replace(" ", "").replace("-", "")  # the separators the pattern allows
    if luhn_valid(digits):
        return mask_pan(digits)
    return _mask_inner_pan(text)


def _mask_inner_pan(text: str) -> str:
    """A candidate that fails Luhn as a whole may hold a card number between its
    separators ("INC-9 4111 1111 1111 1111": the "9 " is not part of it): mask the
    longest run of whole digit groups that is one."""
    parts = _SEPARATOR.split(text)  # digit groups at even positions, separators between
    groups = parts[0::2]
    best: tuple[int, int] | None = None
    for start in range(len(groups)):
        count = 0
        for end in range(start, len(groups)):
            count += len(groups[end])
            if count > 19:
                break
            if count >= MIN_PAN_DIGITS and (start, end) != (0, len(groups) - 1):
                width = end - start
                if (best is None or width > best[1] - best[0]) and luhn_valid(
                    "".join(groups[start : end + 1])
                ):
                    best = (start, end)
    if best is None:
        return text
    start, end = best
    head = "".join(parts[: 2 * start])
    tail = "".join(parts[2 * end + 1 :])
    return head + mask_pan("".join(groups[start : end + 1])) + tail


def mask_text(text: str) -> str:
    """Mask every Luhn-valid card number in free text."""
    if len(text) < MIN_PAN_DIGITS:
        return text
    if type(text) is str and text.isascii() and not _may_hold_pan(text):
        return text  # the substitution would find nothing and return text itself
    return _PAN_CANDIDATE.sub(_mask_match, text)


def _may_hold_pan(ascii_text: str) -> bool:
    """False when an ASCII text cannot hold a ``_PAN_CANDIDATE`` (two C passes, no regex).

    A candidate is 13+ digits with at most one space or dash between two of them: with every
    space and dash dropped, 13 digits in a row. In ASCII text ``\\d`` is 0-9 only.
    """
    digits_as_zeros = ascii_text.encode("ascii").translate(_DIGITS_TO_ZERO, b" -")
    return _THIRTEEN_DIGITS in digits_as_zeros


class MaskingFilter(logging.Filter):
    """Masks card numbers in the formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
