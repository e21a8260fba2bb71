"""TLS for RabbitMQ and Redis: the files a profile names, the context, and clear failures.

:class:`TlsFiles` is what one service (``amqps://`` or ``rediss://``) uses: a CA
file to trust, a client certificate and key for mutual TLS, and whether the
server's name is checked (on unless the profile turns it off). Each file keeps
the profile key it came from (``tls_ca`` or ``redis_tls_ca``), so a failure
says which setting to fix: :func:`describe_tls_error` turns the ``ssl`` errors
found in an exception's chain into one line such as ``Redis TLS: the server's
certificate is not signed by tls_ca=/etc/payops/ca.pem (certificate verify
failed: self-signed certificate in certificate chain)``.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass
from typing import Any, Final

# OpenSSL's X509_V_ERR_* codes (x509_vfy.h) that mean "not signed by a CA we trust".
_UNTRUSTED_CODES: Final = frozenset({2, 18, 19, 20, 21, 27})
_EXPIRED: Final = 10
_NOT_YET_VALID: Final = 9
_HOSTNAME_MISMATCH: Final = 62
_IP_MISMATCH: Final = 64
_SSL_REASON: Final = re.compile(r"\[(?:SSL|X509): ([A-Z0-9_]+)\]")


@dataclass(frozen=True)
class TlsSetting:
    """One file setting: the path and the profile key that gave it (``redis_tls_ca``)."""

    key: str
    path: str

    def __str__(self) -> str:
        return f"{self.key}={self.path}"


@dataclass(frozen=True)
class TlsFiles:
    """The TLS settings of one service's connections."""

    ca: TlsSetting | None = None
    cert: TlsSetting | None = None
    key: TlsSetting | None = None
    check_hostname: bool = True

    def ssl_context(self) -> ssl.SSLContext:
        """A client context: trust ``ca`` (else the system's CAs), present ``cert``/``key``.

        Raises :class:`ssl.SSLError` or :class:`OSError` when a file cannot be used
        (:func:`describe_tls_error` says which and why).
        """
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=self.ca.path if self.ca else None
        )
        context.check_hostname = self.check_hostname
        if self.cert is not None:
            context.load_cert_chain(self.cert.path, self.key.path if self.key else None)
        return context

    def redis_options(self) -> dict[str, Any]:
        """The keyword arguments of redis-py's SSL connections for these settings."""
        return {
            "ssl_ca_certs": self.ca.path if self.ca else None,
            "ssl_certfile": self.cert.path if self.cert else None,
            "ssl_keyfile": self.key.path if self.key else None,
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": self.check_hostname,
        }

    @property
    def trusted(self) -> str:
        """How to name the CA in a message: ``tls_ca=/path`` or the system's CAs."""
        return str(self.ca) if self.ca else "the system's CAs (no tls_ca set)"

    @property
    def client_cert(self) -> str:
        """How to name the client certificate in a message."""
        return str(self.cert) if self.cert else "none (no tls_cert set)"


def find_ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The first :class:`ssl.SSLError` in ``exc``, its causes and contexts (and groups)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)
    return None


def describe_tls_error(
    exc: BaseException,
    service: str,
    tls: TlsFiles | None,
    target: str,
    *,
    connecting: bool = False,
) -> str | None:
    """One line saying which certificate failed and why, or None when ``exc`` is no TLS
    failure. ``service`` is ``"Redis"`` or ``"RabbitMQ"``; ``target`` is ``host:port``.

    With ``connecting`` (``exc`` ended a connection attempt), a TLS connection the server
    closed before it answered is taken for a refused client certificate: with TLS 1.3 the
    server checks it after the client's handshake is done, and its alert may be lost.
    """
    error = find_ssl_error(exc)
    reason = error.reason if error is not None else _reason_in_text(exc)
    files = tls or TlsFiles()
    prefix = f"{service} TLS ({target})"
    if error is None and reason is None:
        if tls is not None and isinstance(exc, OSError) and exc.filename:
            return describe_tls_setup_error(exc, service, tls, target)
        if tls is None or not connecting or not _closed_by_peer(exc):
            return None
        if files.cert is None:
            return (
                f"{prefix}: the server closed the connection during the TLS handshake; it"
                " probably requires a client certificate and refused ours (none: set tls_cert"
                " and tls_key)"
            )
        return (
            f"{prefix}: the server closed the connection during the TLS handshake; it"
            f" probably refused our client certificate {files.cert} (is it signed by a CA"
            " the server trusts?)"
        )
    if isinstance(error, ssl.SSLCertVerificationError):
        code = error.verify_code
        why = f"certificate verify failed: {error.verify_message}"
        if code in _UNTRUSTED_CODES:
            return f"{prefix}: the server's certificate is not signed by {files.trusted} ({why})"
        if code in (_HOSTNAME_MISMATCH, _IP_MISMATCH):
            return (
                f"{prefix}: the server's certificate does not name the host it was reached at"
                f" ({why}); connect by a name the certificate holds"
            )
        if code == _EXPIRED:
            return f"{prefix}: the server's certificate has expired ({why})"
        if code == _NOT_YET_VALID:
            return f"{prefix}: the server's certificate is not valid yet ({why})"
        return f"{prefix}: the server's certificate was refused ({why})"
    reason = (reason or "").upper()
    if "KEY_VALUES_MISMATCH" in reason:
        return (
            f"{prefix}: the client key {files.key or '(in tls_cert)'} does not match {files.cert}"
        )
    if reason.startswith("PEM_") or "NO_START_LINE" in reason or "X509_LIB" in reason:
        return f"{prefix}: cannot read a certificate or key ({files.cert}, {files.key}): {reason}"
    if "CERTIFICATE_REQUIRED" in reason or "HANDSHAKE_FAILURE" in reason:
        return (
            f"{prefix}: the server requires a client certificate and refused ours"
            f" ({files.client_cert}): {reason.lower()}"
        )
    if "UNKNOWN_CA" in reason or "BAD_CERTIFICATE" in reason or "CERTIFICATE_UNKNOWN" in reason:
        return (
            f"{prefix}: the server refused our client certificate {files.client_cert}"
            f" (not signed by a CA it trusts: {reason.lower()})"
        )
    if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER_FAILURE" in reason:
        return f"{prefix}: the server does not speak TLS on that port ({reason.lower()})"
    return f"{prefix}: {error or reason.lower()}"


def _closed_by_peer(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the other end closed or reset the connection."""
    current: BaseException | None = exc
    for _ in range(10):  # a bounded walk: chains can loop
        if current is None:
            return False
        if isinstance(current, ConnectionResetError | BrokenPipeError | ssl.SSLEOFError):
            return True
        if isinstance(current, asyncio.IncompleteReadError):
            return True
        text = str(current)
        if "ConnectionResetError" in text or "Connection reset" in text or "EOF" in text:
            return True
        current = current.__cause__ or current.__context__
    return False


def _reason_in_text(exc: BaseException) -> str | None:
    """OpenSSL's reason (``TLSV1_ALERT_UNKNOWN_CA``) written into an error's text: pika
    reports a TLS alert as a lost stream whose message quotes the ``SSLError``."""
    current: BaseException | None = exc
    for _ in range(10):  # a bounded walk: chains can loop
        if current is None:
            return None
        found = _SSL_REASON.search(str(current))
        if found:
            return found.group(1)
        current = current.__cause__ or current.__context__
    return None


def describe_tls_setup_error(exc: OSError, service: str, tls: TlsFiles, target: str) -> str:
    """Why the TLS files for ``target`` could not be loaded (missing file, unreadable key)."""
    if isinstance(exc, ssl.SSLError):
        return describe_tls_error(exc, service, tls, target) or str(exc)
    name = str(exc.filename or "a TLS file")
    for setting in (tls.ca, tls.cert, tls.key):
        if setting is not None and setting.path == name:
            name = str(setting)
    return f"{service} TLS ({target}): cannot read {name}: {exc.strerror or exc}"
