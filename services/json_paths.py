"""Dotted paths into parsed JSON (``"payment.amount"``, ``"items.0.sku"``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

JsonGetter = Callable[[Any], Any | None]


def compile_path(path: str) -> JsonGetter:
    """Compile ``path`` into a function that fetches it from a parsed JSON value.

    Segments are separated by dots. On a dict a segment is a key; on a list a
    segment of digits is an index. The getter returns None when a segment is
    absent or the value on the way has the wrong type; it never raises. An
    empty path returns the value itself.
    """
    segments = tuple(_segment(part) for part in path.split(".")) if path else ()
    if not segments:
        return _identity
    if len(segments) == 1:
        key, index = segments[0]
        return lambda value: _step(value, key, index)

    def get(value: Any) -> Any | None:
        for key, index in segments:
            value = _step(value, key, index)
            if value is None:
                return None
        return value

    return get


def _segment(part: str) -> tuple[str, int | None]:
    return part, int(part) if part.isascii() and part.isdigit() else None


def _identity(value: Any) -> Any | None:
    return value


def _step(value: Any, key: str, index: int | None) -> Any | None:
    if isinstance(value, dict):
        return value.get(key)
    if index is not None and isinstance(value, list) and index < len(value):
        return value[index]
    return None
