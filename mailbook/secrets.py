"""Passwords: read without echo or from a file/stdin, and role passwords sent as SCRAM
verifiers so the plaintext never reaches the server (nor its log)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
import unicodedata
from pathlib import Path

import psycopg
from psycopg import sql

from mailbook import Failure


def scram_sha256_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores (RFC 5802/7677), computed here."""
    normalised = unicodedata.normalize("NFKC", password).encode()  # SASLprep, near enough
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", normalised, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def set_role_password(conn: psycopg.Connection, role: str, password: str) -> None:
    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
        sql.Identifier(role), sql.Literal(scram_sha256_verifier(password))))


def new_password() -> str:
    return secrets.token_urlsafe(18)


def write_atomically(path: Path, text: str, mode: int = 0o600, gid: int | None = None,
                     uid: int | None = None) -> None:
    """Replace path with text, never readable more widely than mode on the way. The
    temporary file beside it is created exclusively under an unpredictable name
    (mkstemp: O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600), so a file or a symlink someone
    planted there is never opened, let alone written through; its owner, group and mode
    are set on the descriptor before the first byte (a group it already has, e.g. from a
    setgid directory, is left as it is: only root or a member may chown to it); then
    fsync, rename over path (which replaces a symlink at path itself rather than
    following it), and fsync the directory, so the new file survives a crash."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            st = os.fstat(f.fileno())  # (mkstemp made it ours: euid, egid or the directory's group)
            if (uid is not None and uid != st.st_uid) or (gid is not None and gid != st.st_gid):
                os.fchown(f.fileno(), -1 if uid is None else uid, -1 if gid is None else gid)
            os.fchmod(f.fileno(), mode)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (0600), atomically."""
    write_atomically(path, text, 0o600)


def read_password_file(path: Path) -> str:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise Failure(f"cannot read password file {path}: {exc.strerror}") from None
    password = text.splitlines()[0] if text else ""
    if not password:
        raise Failure(f"password file {path} is empty")
    return password


def obtain_password(password_file: Path | None, envvar: str | None, what: str) -> str:
    """A password from --password-file (- for stdin), else $envvar (if the command has
    one), else a hidden prompt (asked twice) on a terminal. Never from the command line."""
    import sys

    import typer

    if password_file is not None:
        if str(password_file) == "-":
            password = sys.stdin.readline().rstrip("\n")
            if not password:
                raise Failure("no password on standard input")
            return password
        return read_password_file(password_file)
    if envvar and os.environ.get(envvar):
        return os.environ[envvar]
    if not sys.stdin.isatty():
        if envvar is None:
            raise Failure(f"no password for {what} and no terminal to ask on: "
                          "give --password-stdin or --password-file FILE")
        raise Failure(f"no password for {what}: give --password-file FILE (or - for stdin), "
                      f"or set {envvar}")
    return typer.prompt(f"Password for {what}", hide_input=True, confirmation_prompt=True)
