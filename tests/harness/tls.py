"""A test certificate, made with openssl in the daemons' own directory: what Postfix's
submission services and Dovecot present in the tests (`maps postconf --tls-cert/--tls-key`,
`dovecot install --tls-cert/--tls-key`), so no test relies on Debian's ssl-cert package."""

from __future__ import annotations

import ssl
from pathlib import Path

from .process import require_program, run

NAME = "mx.mailbook.test"


def certificate(directory: Path, name: str = NAME) -> tuple[Path, Path]:
    """A self-signed certificate for name and 127.0.0.1 (two days, P-256) and its key
    (0600), in directory: (cert.pem, key.pem). Made once; reused if there."""
    cert, key = directory / "tls-cert.pem", directory / "tls-key.pem"
    if not cert.exists():
        r = run([require_program("/usr/bin/openssl"), "req", "-x509", "-newkey", "ec",
                 "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", f"/CN={name}",
                 "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)])
        assert r.returncode == 0, r.stderr
    return cert, key


def client_context(cert: Path) -> ssl.SSLContext:
    """A client's TLS context that trusts only cert and checks the name (127.0.0.1)."""
    return ssl.create_default_context(cafile=str(cert))
