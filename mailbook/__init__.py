"""mailbook's Python side: what the `mailbook` command (runner.py) builds on.

The logic lives in SQL (migrations/ and sql/); this package finds those files,
connects, applies them and turns database errors into one readable line.
"""

from __future__ import annotations

import os
import tomllib
from importlib import metadata
from pathlib import Path

import psycopg

_PACKAGE = Path(__file__).resolve().parent


def _version() -> str:
    """This mailbook's version: pyproject.toml's when running from a checkout (an editable
    install's metadata keeps the version it was installed with), else the installed
    distribution's."""
    pyproject = _PACKAGE.parent / "pyproject.toml"
    if pyproject.exists():
        return tomllib.loads(pyproject.read_text())["project"]["version"]
    try:
        return metadata.version("mailbook")
    except metadata.PackageNotFoundError:
        return "unknown"


__version__ = _version()


class Failure(Exception):
    """An expected failure: shown as one line on stderr, exit status 1."""


class ConnectionFailure(Failure):
    """The server could not be reached (down, restarting, wrong address): a daemon such as
    `maps follow` retries on it; a command reports it as one line."""


def data_dir(name: str) -> Path:
    """migrations/, sql/, postfix-maps/ or dovecot/: inside the installed package, or
    at the top of the checkout when running from source."""
    for base in (_PACKAGE, _PACKAGE.parent):
        if (base / name).is_dir():
            return base / name
    raise Failure(f"cannot find the {name}/ directory next to {_PACKAGE}")


def describe(exc: BaseException) -> str:
    """One line for an expected error, naming what went wrong and, if known, what to do."""
    if isinstance(exc, psycopg.Error):
        diag = exc.diag
        if not diag.message_primary and isinstance(exc, psycopg.OperationalError):
            return connection_failure(exc)  # libpq's text, sometimes over several lines
        line = f"{diag.message_primary} (SQLSTATE {exc.sqlstate})"
        if diag.message_hint:
            line += f"; hint: {diag.message_hint}"
        elif exc.sqlstate == "25006":  # read_only_sql_transaction
            line += "; hint: this server is a read-only standby: provision on the primary"
        return line
    cause = getattr(exc, "exc", None)
    if isinstance(cause, psycopg.Error):
        return f"{exc}: {describe(cause)}"
    return str(exc)


def connect(dsn: str | None, **kwargs) -> psycopg.Connection:
    """Connect with a libpq DSN; empty means libpq's PG* variables and defaults."""
    kwargs.setdefault("autocommit", True)
    kwargs.setdefault("connect_timeout", int(os.environ.get("PGCONNECT_TIMEOUT", "10")))
    try:
        return psycopg.connect(dsn or "", **kwargs)
    except psycopg.ProgrammingError as exc:
        raise Failure(f"invalid connection string: {str(exc).strip()}") from exc
    except psycopg.OperationalError as exc:
        raise ConnectionFailure(connection_failure(exc, given=bool(dsn))) from None


def connection_failure(exc: psycopg.OperationalError, given: bool = True) -> str:
    """Every failure to connect in one wording: what libpq said (it names the server),
    on one line, and when no connection string was given, where libpq looked and how
    to give one."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()).rstrip(".")
    text = text.removeprefix("connection is bad: ")  # psycopg's words before libpq's
    line = f"cannot connect to PostgreSQL: {text}"
    if not given:
        line += ("; no --dsn or $MAILBOOK_DSN was given, so libpq's defaults were used (the PG* "
                 "variables, else the local socket and your user name): give one with --dsn or $MAILBOOK_DSN")
    return line
