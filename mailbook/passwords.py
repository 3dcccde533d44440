"""Passwords: read without echo or from a file/stdin, new random ones, and role passwords
sent as SCRAM verifiers so the plaintext never reaches the server (nor its log)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import sys
import unicodedata
from pathlib import Path

import psycopg
import typer
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
    b64 = lambda b: base64.b64encode(b).decode()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def set_role_password(conn: psycopg.Connection, role: str, password: str) -> None:
    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
        sql.Identifier(role), sql.Literal(scram_sha256_verifier(password))))


def new_password() -> str:
    return secrets.token_urlsafe(18)


def read_password_file(path: Path) -> str:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise Failure(f"cannot read password file {path}: {exc.strerror}") from None
    password = text.splitlines()[0] if text else ""
    if not password:
        raise Failure(f"password file {path} is empty")
    return password


def obtain_password(password_file: Path | None, envvar: str | None, what: str,
                    option: str = "--password-file") -> str:
    """A password from the file option (- for stdin), else $envvar (if the command has
    one), else a hidden prompt (asked twice) on a terminal. Never from the command line.
    option is the command's name for the file option, for the message when none is given."""
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
        raise Failure(f"no password for {what}: give {option} FILE (or - for stdin), "
                      f"or set {envvar}")
    return typer.prompt(f"Password for {what}", hide_input=True, confirmation_prompt=True)
