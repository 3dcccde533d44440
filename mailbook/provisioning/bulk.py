"""`mailbook import` and `mailbook export`: one CSV format for domains, mailboxes,
aliases, send-as grants and vacation replies. Import streams the whole file into import_staging (COPY, PostgreSQL parses it)
and lets import_batch() check every row and write all or nothing; nothing is done row by
row from here."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from typing import TextIO

import psycopg

from mailbook import Failure

COLUMNS = ["kind", "address", "destination", "password", "password_hash", "realname", "maildir",
           "quota_bytes", "transport", "gid", "active", "quota_messages", "services_off", "max_mailboxes",
           "max_aliases", "max_quota_bytes", "subject", "body", "starts", "ends", "days"]
REQUIRED = {"kind", "address"}


CHUNK = 1 << 20  # characters per write to COPY


def read_header(f: TextIO) -> list[str]:
    """The column names on the file's first line, checked."""
    first = f.readline().removeprefix("\ufeff")  # the byte-order mark spreadsheets write
    try:
        header = next(csv.reader([first], strict=True), [])
    except csv.Error as exc:
        raise Failure(f"line 1: {exc}") from None
    header = [c.strip() for c in header]
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise Failure(f"line 1: unknown column(s) {', '.join(unknown)}; the columns are {','.join(COLUMNS)}")
    missing = REQUIRED - set(header)
    if missing:
        raise Failure(f"line 1: the header must name the column(s) {', '.join(sorted(missing))}")
    if len(set(header)) != len(header):
        raise Failure("line 1: a column is named twice")
    return header


def end_of_data(chunk: str) -> str:
    """The last chunk without blank lines at its end, keeping the file's own line
    ending (COPY wants one style throughout: \\n, \\r\\n or \\r)."""
    body = chunk.rstrip("\r\n")
    trailer = chunk[len(body):]
    ending = next((e for e in ("\r\n", "\r", "\n") if trailer.startswith(e)), "")
    return body + ending if body else ""


def copy_error(exc: psycopg.Error) -> Failure:
    """COPY's own complaint about the file's structure, with the file's line number
    (COPY counts from the first line after the header)."""
    context = exc.diag.context or ""
    m = re.search(r"COPY import_staging, line (\d+)", context)
    where = f"line {int(m.group(1)) + 1}: " if m else ""
    return Failure(f"{where}{exc.diag.message_primary or exc}")


def import_csv(conn: psycopg.Connection, f: TextIO, dry_run: bool,
               progress: Callable[[int], None] | None = None) -> tuple[int, list[tuple[int, str]]]:
    """Stream f into import_staging as it is (PostgreSQL parses the CSV) and let
    import_batch() check and apply it, all in one transaction. Returns (rows read,
    problems by line). progress, if given, is told how many characters were sent."""
    try:
        header = read_header(f)
        with conn.transaction():
            cur = conn.cursor()
            try:
                with cur.copy(f"COPY import_staging ({', '.join(header)}) FROM STDIN WITH (FORMAT csv)") as copy:
                    chunk = f.read(CHUNK)
                    while chunk:
                        after = f.read(CHUNK)
                        if not after:  # blank lines at the end of a file are no rows
                            chunk = end_of_data(chunk)
                        copy.write(chunk)
                        if progress:
                            progress(len(chunk))
                        chunk = after
            except (psycopg.errors.DataError, psycopg.errors.BadCopyFileFormat) as exc:
                raise copy_error(exc) from None
            count = cur.rowcount
            problems = conn.execute("SELECT line, problem FROM import_batch(%s) ORDER BY 1, 2",
                                    (dry_run,)).fetchall()
    except UnicodeDecodeError as exc:
        raise Failure(f"the file is not UTF-8 text: byte 0x{exc.object[exc.start]:02x} cannot be decoded") from None
    return count, problems


# csv_cell_out() (0029): a value a spreadsheet would take for a formula gets one more
# leading apostrophe; import takes it off again. A vacation's times leave in UTC with
# their microseconds (trailing zeros dropped), so they come back exactly.
UTC_TIME = """rtrim(rtrim(to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '0'), '.') || 'Z'"""
EXPORT_QUERY = """
SELECT kind, public.csv_cell_out(address), public.csv_cell_out(destination), password, password_hash,
       public.csv_cell_out(realname), public.csv_cell_out(maildir), quota_bytes,
       transport, gid, active, quota_messages, services_off, max_mailboxes, max_aliases, max_quota_bytes,
       public.csv_cell_out(subject), public.csv_cell_out(body), starts, ends, days
  FROM (SELECT CASE WHEN alias_of IS NULL THEN 1 ELSE 2 END AS k, 'domain' AS kind, domain AS address,
               alias_of AS destination, NULL AS password,
               NULL AS password_hash, NULL AS realname, NULL AS maildir, NULL::bigint AS quota_bytes,
               transport, gid, active, NULL::bigint AS quota_messages,
               array_to_string(disabled_services, ' ') AS services_off,
               max_mailboxes, max_aliases, max_quota_bytes,
               NULL AS subject, NULL AS body, NULL AS starts, NULL AS ends, NULL::integer AS days
          FROM public.transports
        UNION ALL
        SELECT 3, 'mailbox', email, NULL, NULL, password, realname, maildir, quota_bytes, NULL, NULL, active,
               quota_messages, array_to_string(disabled_services, ' '), NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL
          FROM public.users
        UNION ALL
        SELECT 4, 'alias', alias, email, NULL, NULL, NULL, NULL, NULL, NULL, NULL, active,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
          FROM public.aliases
        UNION ALL
        SELECT 5, 'sendas', address, login, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
          FROM public.send_as
        UNION ALL
        SELECT 6, 'vacation', email, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, subject, body, """ + UTC_TIME.format("starts") + """,
               """ + UTC_TIME.format("ends") + """, days
          FROM public.vacations) rows
 ORDER BY k, rows.address, rows.destination
"""


def export_csv(conn: psycopg.Connection, out: TextIO, query: str | None = None) -> int:
    """Write every domain, mailbox (with its hash, never a plaintext), alias, send-as
    grant and vacation reply. Needs mailowner: only it may read every password hash.
    query=MY_EXPORT_QUERY: a customer's admin's domains, without hashes."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    n = 0
    for row in conn.execute(query or EXPORT_QUERY):
        writer.writerow(["" if v is None else ("true" if v is True else "false" if v is False else v) for v in row])
        n += 1
    return n
# a customer's admin (maildomainadmin) reads no table: sql/api/85_scoped_reads.sql
# follows EXPORT_QUERY for its domains, without hashes
MY_EXPORT_QUERY = "SELECT * FROM public.my_export()"
