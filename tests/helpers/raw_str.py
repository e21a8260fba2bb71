"""A str that puts arbitrary bytes on the wire: how a test sends a header that is not UTF-8."""

from __future__ import annotations


class RawStr(str):
    """A str whose UTF-8 encoding is arbitrary bytes: lets pamqp put invalid UTF-8
    on the wire as a long string, which pamqp decodes to ``bytes``."""

    raw: bytes

    def __new__(cls, raw: bytes) -> RawStr:
        self = super().__new__(cls, "raw")
        self.raw = raw
        return self

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.raw
