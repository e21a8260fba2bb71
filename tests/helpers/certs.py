"""Certificates made by a test with ``openssl``: a CA, a server and a client certificate.

:func:`make_certificates` writes a CA, a server certificate for ``localhost`` and
``127.0.0.1`` and a client certificate, both signed by that CA, plus a second,
unrelated CA with its own client certificate (the certificates a server must
refuse, or a client must not trust).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

_DAYS = "30"


@dataclass(frozen=True)
class Certificates:
    """The PEM files of one test's certificate authority (and a stranger one)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    other_client_cert: Path
    other_client_key: Path


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", _DAYS,
        "-subj", f"/CN=PayOps test {name}", "-keyout", key, "-out", cert,
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def _make_signed(
    directory: Path, name: str, ca: tuple[Path, Path], usage: str, san: str | None = None
) -> tuple[Path, Path]:
    cert, key, request = (directory / f"{name}{ext}" for ext in (".pem", ".key", ".csr"))
    extensions = directory / f"{name}.ext"
    lines = ["basicConstraints=CA:FALSE", f"extendedKeyUsage={usage}"]
    if san:
        lines.append(f"subjectAltName={san}")
    extensions.write_text("\n".join(lines) + "\n")
    _openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
        "-keyout", key, "-out", request,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", request, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
        "-days", _DAYS, "-extfile", extensions, "-out", cert,
    )  # fmt: skip
    key.chmod(0o644)  # the servers run as this user and read it
    return cert, key


def make_certificates(directory: Path) -> Certificates:
    """Write a test CA with a server and a client certificate (and a stranger CA) under
    ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _make_ca(directory, "ca")
    other_ca = _make_ca(directory, "other-ca")
    server = _make_signed(directory, "server", ca, "serverAuth", "DNS:localhost,IP:127.0.0.1")
    client = _make_signed(directory, "client", ca, "clientAuth")
    other_client = _make_signed(directory, "other-client", other_ca, "clientAuth")
    return Certificates(
        ca=ca[0],
        server_cert=server[0],
        server_key=server[1],
        client_cert=client[0],
        client_key=client[1],
        other_ca=other_ca[0],
        other_client_cert=other_client[0],
        other_client_key=other_client[1],
    )
