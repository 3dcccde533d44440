"""`mailbook import` and `mailbook export`: one CSV format for domains, mailboxes and
aliases. Import COPYs the whole file into import_staging and lets import_batch() check
every row and write all or nothing; nothing is done row by row from here."""

from __future__ import annotations

import csv
import io
import sys
import uuid
from pathlib import Path
from typing import Callable, TextIO

import psycopg

from mailbook import Failure

COLUMNS = ["kind", "address", "destination", "password", "password_hash", "realname", "maildir",
           "quota_bytes", "transport", "gid", "active"]
REQUIRED = {"kind", "address"}


def read_rows(f: TextIO):
    """(line number, row dict) for each CSV record; the header names the columns."""
    reader = csv.DictReader(f, strict=True)
    header = reader.fieldnames or []
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise Failure(f"line 1: unknown column(s) {', '.join(unknown)}; the columns are {','.join(COLUMNS)}")
    missing = REQUIRED - set(header)
    if missing:
        raise Failure(f"line 1: the header must name the column(s) {', '.join(sorted(missing))}")
    try:
        for row in reader:
            if None in row:
                raise Failure(f"line {reader.line_num}: more fields than the header has columns")
            yield reader.line_num, row
    except csv.Error as exc:
        raise Failure(f"line {reader.line_num}: {exc}") from None


def import_csv(conn: psycopg.Connection, f: TextIO, dry_run: bool,
               progress: Callable[[int], None] | None = None) -> tuple[int, list[tuple[int, str]]]:
    """Load f and apply it in one transaction. Returns (rows read, problems by line)."""
    batch = uuid.uuid4()
    count = 0
    with conn.transaction():
        with conn.cursor().copy(f"COPY import_staging (batch, line, {', '.join(COLUMNS)}) FROM STDIN") as copy:
            for line, row in read_rows(f):
                copy.write_row((batch, line, *[row.get(c) for c in COLUMNS]))
                count += 1
                if progress and count % 500 == 0:
                    progress(500)
        problems = conn.execute("SELECT line, problem FROM import_batch(%s, %s) ORDER BY 1, 2",
                                (batch, dry_run)).fetchall()
    return count, problems


EXPORT_QUERY = """
SELECT kind, address, destination, password, password_hash, realname, maildir, quota_bytes,
       transport, gid, active
  FROM (SELECT 1 AS k, 'domain' AS kind, domain AS address, NULL AS destination, NULL AS password,
               NULL AS password_hash, NULL AS realname, NULL AS maildir, NULL::bigint AS quota_bytes,
               transport, gid, active
          FROM public.transports
        UNION ALL
        SELECT 2, 'mailbox', email, NULL, NULL, password, realname, maildir, quota_bytes, NULL, NULL, active
          FROM public.users
        UNION ALL
        SELECT 3, 'alias', alias, email, NULL, NULL, NULL, NULL, NULL, NULL, NULL, active
          FROM public.aliases) rows
 ORDER BY k, address, destination
"""


def export_csv(conn: psycopg.Connection, out: TextIO) -> int:
    """Write every domain, mailbox (with its hash, never a plaintext) and alias. Needs
    mailowner: only it may read every password hash."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    n = 0
    for row in conn.execute(EXPORT_QUERY):
        writer.writerow(["" if v is None else ("true" if v is True else "false" if v is False else v) for v in row])
        n += 1
    return n
