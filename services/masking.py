"""Card-number masking: PANs never leave the process unmasked.

A PAN is 13–19 digits (optionally grouped by single spaces or dashes) that
passes the Luhn check. It is shown as its first 6 and last 4 digits at most
(PCI DSS 3.4), the rest replaced by ``*``.
"""

from __future__ import annotations

import logging
import re

_PAN_CANDIDATE = re.compile(r"(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])")


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


def _mask_match(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = re.sub(r"[ -]", "", text)
    if not luhn_valid(digits):
        return text
    return mask_pan(digits)


def mask_text(text: str) -> str:
    """Mask every Luhn-valid card number in free text."""
    if len(text) < 13:
        return text
    return _PAN_CANDIDATE.sub(_mask_match, text)


class MaskingFilter(logging.Filter):
    """Masks card numbers in the formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
