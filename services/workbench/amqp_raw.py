"""Content headers for aiormq readers: raw property bytes kept, and nothing undecodable fatal.

The parker no longer goes through pamqp: its pika link keeps the raw bytes
itself (:mod:`services.workbench.park_link`). This module serves whatever
else reads dead letters with aio-pika/aiormq and needs their raw bytes (the
tests' drains of requeued messages).

Why: pamqp (4.x, under aiormq and aio-pika) decodes a content header's
properties strictly. A header key or a short string property (``message_id``,
``app_id``...) that is not UTF-8 raises ``UnicodeDecodeError`` in
``pamqp.decode.short_str`` / ``field_table``; a timestamp past year 9999
(a millisecond value beyond ``datetime``'s range, even after pamqp's own
``/ 1000`` guess) raises in ``datetime.fromtimestamp``; an unknown field type
raises ``ValueError``. ``pamqp.frame.unmarshal`` turns each into an
``UnmarshalingException`` and aiormq closes the whole connection on it: every
channel and consumer of that connection stops, and since the broker delivers
the same message first on every reconnect, nothing behind it is ever parked.

What: :func:`install` replaces ``pamqp.frame._unmarshal_header_frame`` - the
one function every content header of the process goes through - with
:func:`unmarshal_header_frame`, which

- keeps the raw property bytes (flags and property list, as they came) on
  the header as ``raw_properties``, so the parker can store them and a
  requeue can write them back byte for byte
  (:func:`services.workbench.codec.record_from_delivery`,
  :mod:`services.workbench.wire`);
- decodes the properties with pamqp only when ``properties`` is first read,
  and when pamqp cannot decode them gives empty properties and the reason in
  ``undecodable`` instead of raising: the body frames that follow are read as
  usual, the parker decodes ``raw_properties`` itself (tolerantly, and only
  once) and parks the message like any other. A frame too short to hold a
  content header at all still raises, as before.

Other consumers of the process (aio-pika's ``IncomingMessage``) see pamqp's
properties as before; for an undecodable header they see empty properties
rather than a closed connection. :func:`install` is idempotent.
"""

from __future__ import annotations

import struct
from typing import Final

import pamqp.frame
from pamqp import commands, exceptions, header

PAMQP_UNMARSHAL_HEADER: Final = pamqp.frame._unmarshal_header_frame
"""pamqp's own function, as it was when this module was imported (for tests)."""

_HEADER_PREFIX: Final = struct.Struct(">HHQ")
"""class id, weight, body size: what precedes the property flags."""


class RawContentHeader(header.ContentHeader):
    """A content header that keeps its property bytes and decodes them with pamqp only
    when someone reads ``properties`` (the parker reads ``raw_properties`` instead, so
    each of its deliveries is decoded once, by :mod:`services.workbench.wire`)."""

    raw_properties: bytes = b""
    _decoded: commands.Basic.Properties | None = None
    _undecodable: str | None = None

    @property
    def properties(self) -> commands.Basic.Properties:
        if self._decoded is None:
            self._decoded = self._decode()
        return self._decoded

    @properties.setter
    def properties(self, value: commands.Basic.Properties) -> None:
        self._decoded = value

    @property
    def undecodable(self) -> str | None:
        """Why pamqp could not decode the properties (None when it could)."""
        _ = self.properties
        return self._undecodable

    def _decode(self) -> commands.Basic.Properties:
        decoded = commands.Basic.Properties()
        try:
            offset, flags = header.ContentHeader._get_flags(self.raw_properties)
            decoded.unmarshal(flags, self.raw_properties[offset:])
        except (struct.error, ValueError, OverflowError, OSError) as error:
            self._undecodable = f"{type(error).__name__}: {error}"
            return commands.Basic.Properties()
        return decoded


def unmarshal_header_frame(frame_data: bytes) -> header.ContentHeader:
    """``pamqp.frame._unmarshal_header_frame``, keeping the raw property bytes and
    decoding them lazily, never failing on them."""
    if len(frame_data) < _HEADER_PREFIX.size:
        raise exceptions.UnmarshalingException("ContentHeader", "frame too short")
    class_id, weight, body_size = _HEADER_PREFIX.unpack_from(frame_data)
    content_header = RawContentHeader(weight=weight, body_size=body_size)
    content_header.class_id = class_id
    content_header.raw_properties = bytes(frame_data[_HEADER_PREFIX.size :])
    content_header._decoded = None  # decoded when first read
    return content_header


def install() -> None:
    """Route every content header of this process through :func:`unmarshal_header_frame`."""
    pamqp.frame._unmarshal_header_frame = unmarshal_header_frame


def installed() -> bool:
    """True when :func:`install` has run."""
    return pamqp.frame._unmarshal_header_frame is unmarshal_header_frame
