"""What every reader of `mailbook import --from` shares: the Plan it maps its source into,
the checks of what it read (columns, paths, password hashes) and run(), which writes a
plan the way a CSV file goes."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import shlex
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from mailbook import Failure, connect
from mailbook.provisioning.bulk import COLUMNS
from mailbook.terminal import quoted


@dataclass
class Row:
    """One row of the import format, and where it came from in the source."""
    kind: str  # domain, mailbox, alias
    label: str  # what it counts as: domain, alias domain, relay domain, mailbox, alias destination, catch-all destination
    source: str  # e.g. "mailbox foo@example.com"
    values: dict[str, str | None] = field(default_factory=dict)
    cleartext: bool = False  # a password_hash the target refuses is the password itself (--cleartext-passwords)

    def key(self) -> tuple[str, ...]:
        if self.kind == "alias":
            return (self.kind, self.values["address"], self.values["destination"])
        return (self.kind, self.values["address"])


@dataclass
class Plan:
    tool: str
    version: str
    rows: list[Row] = field(default_factory=list)
    left: list[tuple[str, str]] = field(default_factory=list)  # (what, why and what to do)
    commands: list[str] = field(default_factory=list)  # to run on the mail host, in order
    skipped: list[str] = field(default_factory=list)  # already in mailbook (--skip-existing)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (source object, problem): nothing is written

    def add(self, kind: str, label: str, source: str, **values) -> Row:
        row = Row(kind, label, source, {k: (None if v is None else str(v)) for k, v in values.items()})
        self.rows.append(row)
        return row

    def leave(self, what: str, why: str) -> None:
        self.left.append((what, why))

    def refuse(self, source: str, problem: str) -> None:
        """A bad row, reported with the target's own problems: nothing is imported."""
        self.refused.append((source, problem))

    def command(self, *argv: str) -> None:
        """A command for the mail host, quoted for pasting into a shell."""
        self.commands.append(shlex.join(argv))

    def counts(self) -> list[tuple[str, int]]:
        c = Counter(r.label for r in self.rows)
        order = ["domain", "alias domain", "relay domain", "mailbox", "alias destination", "catch-all destination"]
        return [(label, c[label]) for label in order if c[label]] + \
               [(label, n) for label, n in sorted(c.items()) if label not in order]


def snapshot(source_dsn: str | None) -> psycopg.Connection:
    """A connection to the source inside one REPEATABLE READ READ ONLY transaction: every
    query sees the same moment, whatever changes meanwhile, and nothing can be written."""
    conn = connect(source_dsn, autocommit=False)
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    conn.execute("SELECT 1")  # opens the transaction: the snapshot is taken at its first query
    return conn


def missing_columns(conn: psycopg.Connection, wanted: dict[str, list[str]]) -> list[str]:
    """Which of wanted (table -> columns) the source's search path lacks, as table.column."""
    found = set(conn.execute(
        "SELECT c.relname || '.' || a.attname FROM pg_catalog.pg_attribute a"
        " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
        " WHERE pg_catalog.pg_table_is_visible(c.oid) AND a.attnum > 0 AND NOT a.attisdropped"
        " AND c.relname = ANY(%s)", (list(wanted),)).fetchall())
    found = {f for (f,) in found}
    return [f"{t}.{c}" for t, cols in wanted.items() for c in cols if f"{t}.{c}" not in found]


# -- paths -------------------------------------------------------------------------------

# A source path goes into mailbook's maildir (Postfix's and Dovecot's home, `maildirs purge`)
# and, for vmm, into the printed `chown` commands. Quoting makes a printed command safe, but
# the path also reaches whatever else an admin writes by hand around it (a find, an rsync,
# a Dovecot setting), so a source path must be plain: ASCII letters and digits, "/" and
# "._-" (domain names, vmm's numbered directories), "+" and "=" (local parts such as
# foo+bar, vmm's %= addresses) and "@" (maildirs named user@domain). Everything else a shell
# or a template language reads ($ ` \ " ' ; & | < > ( ) { } [ ] * ? ! # ~ % ^ , : and
# white space) and every non-ASCII character is refused; neither tool writes them itself.
UNSAFE_PATH = re.compile(r"[^A-Za-z0-9/._+@=-]")
SAFE_SET = "ASCII letters, digits and /._-+@="


def unsafe_path(what: str, path: str) -> str | None:
    """Why a source path is refused (naming it and its first character outside SAFE_SET),
    or None."""
    bad = UNSAFE_PATH.search(path)
    if bad is None:
        return None
    return (f"{what} {quoted(path)} has {quoted(bad.group())} (U+{ord(bad.group()):04X}); mailbook takes only"
            f" {SAFE_SET} in a path that reaches shell commands: rename it in the source tool (and on disk) first")


# -- passwords ---------------------------------------------------------------------------

# schemes whose stored form is a crypt(3) string: an encoding suffix wraps that string
CRYPT_SCHEMES = {"BLF-CRYPT", "SHA512-CRYPT", "SHA256-CRYPT", "MD5-CRYPT", "CRYPT"}
# schemes Dovecot stores as raw bytes, base64 by default; CRAM-MD5 in hex
BINARY_SCHEMES = {"SSHA", "SSHA256", "SSHA512", "CRAM-MD5"}
ALIASES = {"MD5": "MD5-CRYPT", "HMAC-MD5": "CRAM-MD5", "BLF": "BLF-CRYPT"}
PLAINTEXT = {"PLAIN", "CLEAR", "CLEARTEXT"}


def unwrap_hash(stored: str) -> tuple[str | None, str | None]:
    """(hash, plaintext) for a stored password: a {SCHEME} form with Dovecot's encoding
    suffix (.B64, .BASE64, .HEX) rewritten into the scheme's plain form, Dovecot's
    alias names into the names mailbook checks, a {PLAIN} password as plaintext (mailbook
    hashes it with bcrypt). Anything else is returned as it is, for the target's own
    password_hash_error() to judge."""
    m = re.fullmatch(r"\{([A-Za-z0-9.-]+)\}(.*)", stored, re.S)
    if not m:
        return stored, None
    scheme, body = m.group(1).upper(), m.group(2)
    base, _, encoding = scheme.partition(".")
    base = ALIASES.get(base, base)
    if base in PLAINTEXT and not encoding:
        return None, body
    if encoding:
        try:
            raw = bytes.fromhex(body) if encoding == "HEX" else base64.b64decode(body, validate=True)
        except (ValueError, binascii.Error):
            return stored, None
        if base in CRYPT_SCHEMES:
            try:
                return f"{{{base}}}{raw.decode('ascii')}", None
            except UnicodeDecodeError:
                return stored, None
        if base == "CRAM-MD5":
            return "{CRAM-MD5}" + raw.hex(), None
        if base in BINARY_SCHEMES:
            return f"{{{base}}}{base64.b64encode(raw).decode()}", None
        return stored, None
    return f"{{{base}}}{body}", None


def check_hashes(target: psycopg.Connection, plan: Plan) -> None:
    """Ask the target which hashes it refuses (password_hash_error(), the rule its CHECK
    and Dovecot's schemes share). A mailbox whose hash it refuses moves with a random
    password nobody knows, so its mail still arrives, and is listed: it cannot log in
    until the admin sets a password. Never a hash that would fail later.

    A row marked cleartext (the source stores cleartext passwords, and the admin said so)
    whose value is no hash the target takes is that mailbox's password: it goes in as
    `password`, which import_batch() hashes with bcrypt, if password_error() accepts it;
    else it is listed like a refused hash. The value is never printed."""
    rows = [r for r in plan.rows if r.kind == "mailbox" and r.values.get("password_hash")]
    if not rows:
        return
    # normalised first, in a subquery the planner keeps (OFFSET 0): nested directly, both
    # SQL functions are inlined and the normalising CASE is repeated at every use of the
    # hash in password_hash_error(), 5 to 20 times the cost (100,000 hashes: 4.2 s)
    verdicts = target.execute(
        "SELECT public.password_hash_error(x.h) FROM (SELECT public.normalised_password_hash(h) AS h, n"
        " FROM unnest(%s::text[]) WITH ORDINALITY AS u(h, n) OFFSET 0) x ORDER BY x.n",
        ([r.values["password_hash"] for r in rows],)).fetchall()
    refused = [(row, problem) for row, (problem,) in zip(rows, verdicts) if problem is not None]
    cleartext = [row for row, _ in refused if row.cleartext]
    if cleartext:
        verdicts = target.execute(
            "SELECT public.password_error(p) FROM unnest(%s::text[]) WITH ORDINALITY AS u(p, n) ORDER BY n",
            ([r.values["password_hash"] for r in cleartext],)).fetchall()
        taken = set()
        for row, (problem,) in zip(cleartext, verdicts):
            if problem is None:
                row.values["password"], row.values["password_hash"] = row.values["password_hash"], None
                taken.add(id(row))
            else:
                plan.leave(f"password of {row.values['address']}",
                           f"its cleartext password is one mailbook refuses ({problem.split(';')[0]}); the mailbox"
                           " moves with a random password, so mail still arrives but it cannot log in until you run"
                           f" `{shlex.join(['mailbook', 'mailbox', 'passwd', row.values['address']])}`")
                row.values["password_hash"] = None
                row.values["password"] = secrets.token_urlsafe(24)
                taken.add(id(row))
        refused = [(row, problem) for row, problem in refused if id(row) not in taken]
    for row, problem in refused:
        address = row.values["address"]
        stored = row.values["password_hash"]
        scheme = re.match(r"\{([^}]*)\}", stored)
        problem = problem.split(": expected")[0]
        if not scheme and not stored.startswith("$"):
            problem += (" (32 hex digits are an unsalted MD5; anything else may be a cleartext password:"
                        " see --cleartext-passwords)")
        plan.leave(f"password of {address}",
                   f"its hash ({scheme.group(1) if scheme else 'no {SCHEME} prefix'}) is one mailbook refuses: "
                   f"{problem}; the mailbox moves with a random password, so mail still arrives but it cannot "
                   f"log in until you run `{shlex.join(['mailbook', 'mailbox', 'passwd', address])}`")
        row.values["password_hash"] = None
        row.values["password"] = secrets.token_urlsafe(24)


# -- writing -----------------------------------------------------------------------------

def existing(target: psycopg.Connection, plan: Plan) -> set[tuple[str, ...]]:
    """The keys of plan rows that mailbook already holds."""
    def of(kind: str) -> list[str]:
        return [r.values["address"] for r in plan.rows if r.kind == kind]
    found: set[tuple[str, ...]] = set()
    found |= {("domain", d) for (d,) in target.execute(
        "SELECT domain FROM public.transports WHERE domain = ANY(%s)", (of("domain"),))}
    found |= {("mailbox", e) for (e,) in target.execute(
        "SELECT email FROM public.users WHERE email = ANY(%s)", (of("mailbox"),))}
    aliases = [r for r in plan.rows if r.kind == "alias"]
    found |= {("alias", a, d) for a, d in target.execute(
        "SELECT a.alias, a.email FROM public.aliases a"
        " JOIN unnest(%s::text[], %s::text[]) AS x(alias, email) ON x.alias = a.alias AND x.email = a.email",
        ([r.values["address"] for r in aliases], [r.values["destination"] for r in aliases]))}
    return found


FORMULA = re.compile(r"'*[=+@\t\r-]")


def cell(value: str | None) -> str | None:
    """What import_rows' csv_cell_in() reads back as value (0029): one more leading
    apostrophe for a value that starts like a spreadsheet formula (a catch-all's "@")."""
    if value and value[0] in "'=+@\t\r-" and FORMULA.match(value):
        return "'" + value
    return value


def lines(rows: list[Row]) -> list[int]:
    """The line import_lines gives each staged row: 1 + the rows before, each counting 1
    plus the line breaks in its values."""
    out, line = [], 1
    for r in rows:
        line += 1 + sum(v.count("\n") for v in r.values.values() if v)
        out.append(line)
    return out


TEXT_COLUMNS = {"address", "destination", "realname", "maildir"}


def write(target: psycopg.Connection, plan: Plan, dry_run: bool, skip_existing: bool) -> list[tuple[str, str]]:
    """Stage the plan's rows and let import_batch() check and write them, all or nothing.
    Returns import_batch()'s problems as (source object, problem); when there are any,
    nothing was written. Refuses (Failure) when mailbook already holds some of the rows,
    naming them, unless skip_existing: then those rows are left out and listed."""
    there = existing(target, plan)
    if plan.refused:  # the reader refused rows: check the rest too, so every bad row is listed, and write nothing
        dry_run = True
    if there and not skip_existing and not plan.refused:
        order = {"domain": 0, "mailbox": 1, "alias": 2}  # domains first: the likeliest mistake is the same source twice
        names = [" ".join(k[:2]) + (f" -> {k[2]}" if len(k) > 2 else "") for k in sorted(there, key=lambda k: (order[k[0]], k))]
        shown = "; ".join(names[:10]) + (f"; and {len(names) - 10} more" if len(names) > 10 else "")
        raise Failure(f"{len(names)} row(s) of {plan.tool} are already in mailbook ({shown}); nothing was imported."
                      " Run again with --skip-existing to add only the rest")
    if there:
        plan.skipped = sorted(r.source for r in plan.rows if r.key() in there)
        plan.rows = [r for r in plan.rows if r.key() not in there]
    columns = [c for c in COLUMNS if any(c in r.values for r in plan.rows) or c in ("kind", "address")]
    with target.transaction():
        cur = target.cursor()
        with cur.copy(f"COPY import_staging ({', '.join(columns)}) FROM STDIN") as copy:
            for r in plan.rows:
                values = dict(r.values, kind=r.kind)
                copy.write_row([cell(values.get(c)) if c in TEXT_COLUMNS else values.get(c) for c in columns])
        problems = target.execute("SELECT line, problem FROM public.import_batch(%s) ORDER BY 1, 2",
                                  (dry_run,)).fetchall()
        if problems:  # nothing was written; roll back the staged rows' transaction too
            by_line = dict(zip(lines(plan.rows), plan.rows))
            return plan.refused + [(by_line[line].source if line in by_line else f"row {line}", problem)
                                   for line, problem in problems]
    return plan.refused


def run(reader: Callable[[psycopg.Connection], Plan], source_dsn: str | None, target_dsn: str | None,
        dry_run: bool, skip_existing: bool) -> tuple[Plan, list[tuple[str, str]]]:
    """Read the source in one snapshot, map it, and write it into mailbook."""
    with snapshot(source_dsn) as source:
        plan = reader(source)
        source.rollback()  # read only: nothing to keep
    with connect(target_dsn) as target:
        check_hashes(target, plan)
        problems = write(target, plan, dry_run, skip_existing)
    return plan, problems
