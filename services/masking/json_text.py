"""JSON text kept as written: numbers as the message wrote them, and the writers for them.

:func:`loads_exact` parses JSON keeping each non-integer number's text (a
:class:`JsonNumber`: ``42.50`` stays ``42.50``); :func:`dumps_pretty` (the editor's
indented text, the exact fallback of the snapshot's JSONL lines) and
:func:`dumps_compact` (what an edited body is saved as) write such values back.
:mod:`services.masking.json` masks them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

_encode_string: Callable[[str], str] = json.encoder.encode_basestring
"""A JSON string literal, non-ASCII kept (the C encoder when available)."""


class JsonNumber(str):
    """A JSON number kept as written (``42.50`` stays ``42.50``)."""

    __slots__ = ()


def loads_exact(text: str | bytes) -> Any:
    """Parse JSON keeping each non-integer number's text (as :class:`JsonNumber`)."""
    return json.loads(text, parse_float=JsonNumber, parse_constant=JsonNumber)


def dumps_pretty(value: Any, indent: int = 2) -> str:
    """JSON text of ``value``, indented; :class:`JsonNumber` and ``Decimal`` written as is."""
    parts: list[str] = []
    _write(value, parts, 0, " " * indent)
    return "".join(parts)


def _write(value: Any, out: list[str], depth: int, pad: str) -> None:
    if isinstance(value, str):
        if isinstance(value, JsonNumber):
            out.append(str.__str__(value))
        else:
            out.append(_encode_string(value))
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif value is None:
        out.append("null")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float | Decimal):
        out.append(_number_text(value))
    elif isinstance(value, Mapping):
        if not value:
            out.append("{}")
            return
        inner = "\n" + pad * (depth + 1)
        out.append("{")
        first = True
        for key, item in value.items():
            out.append(inner if first else "," + inner)
            first = False
            out.append(_encode_string(str(key)))
            out.append(": ")
            _write(item, out, depth + 1, pad)
        out.append("\n" + pad * depth + "}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")
            return
        inner = "\n" + pad * (depth + 1)
        out.append("[")
        first = True
        for item in value:
            out.append(inner if first else "," + inner)
            first = False
            _write(item, out, depth + 1, pad)
        out.append("\n" + pad * depth + "]")
    else:
        out.append(_encode_string(str(value)))


def _number_text(value: float | Decimal) -> str:
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else json.dumps(str(value))
    return repr(value) if math.isfinite(value) else "null"


def dumps_compact(value: Any) -> bytes:
    """Compact JSON bytes of a document from :func:`loads_exact`/:func:`unmask_edit`."""
    return _compact(value).encode("utf-8")


def _compact(value: Any) -> str:
    if isinstance(value, JsonNumber):
        return str.__str__(value)
    if isinstance(value, Mapping):
        return (
            "{"
            + ",".join(f"{_encode_string(str(k))}:{_compact(v)}" for k, v in value.items())
            + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(_compact(v) for v in value) + "]"
    if isinstance(value, float | Decimal):
        return _number_text(value)
    return json.dumps(value, ensure_ascii=False)
