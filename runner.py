"""mailbook: the command line. Each command opens a connection, calls SQL, reports.

Errors that a user can cause (bad DSN, server down, a refused value, a failing
migration) are turned into one line on stderr and exit status 1, in _Group.invoke.
"""

from __future__ import annotations

import inspect
import io
import os
import re
import shlex
import shutil
import sys
import textwrap
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from rich import box
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from mailbook import Failure, __version__, authcache, connect, describe, dnsrecords
from mailbook import dkim as dkim_mod
from mailbook.database import migrations as mig
from mailbook.database import queries
from mailbook.database.connlines import Target, servers
from mailbook.database.hba import hba_lines, patroni_fragment
from mailbook.database.init import init_database
from mailbook.database.privileges import ROLES
from mailbook.database.privileges import markdown as privilege_markdown
from mailbook.database.privileges import matrix as privilege_matrix
from mailbook.demo import demo as demo_mod
from mailbook.doctor import (
    catalogue_checks,
    compiled_lag_checks,
    database_checks,
    expected_text,
    hba_checks,
    map_file_checks,
    migration_checks,
    stored_row_checks,
    usage_checks,
    verifier_checks,
)
from mailbook.dovecot import (
    LmtpSetup,
    SubmissionSetup,
    dovecot_files,
    dovecot_next_steps,
    installed_password,
    installed_version,
)
from mailbook.files import SNAKEOIL_CERT, SNAKEOIL_KEY, write_private
from mailbook.files import install as install_files
from mailbook.importers import postfixadmin, vmm
from mailbook.importers.plan import run as run_import
from mailbook.mailstack import live_checks
from mailbook.passwords import new_password, obtain_password, read_password_file, set_role_password
from mailbook.patroni import cluster_checks
from mailbook.pgbouncer import pgbouncer_files
from mailbook.postfix import compiled, follow, merge
from mailbook.postfix.maps import map_files
from mailbook.postfix.postconf import (
    check_maps,
    snippet_services,
    snippet_settings,
    submission_services,
    tls_files,
)
from mailbook.provisioning import bulk
from mailbook.provisioning.maildirs import purge as purge_maildirs
from mailbook.roundcube import roundcube_files
from mailbook.terminal import cell, json_text, printable


class _Group(typer.core.TyperGroup):
    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except (Failure, psycopg.Error) as exc:
            typer.echo(f"mailbook: {printable(describe(exc))}", err=True)  # a database message can quote a stored value
            raise typer.Exit(1) from None


app = typer.Typer(
    rich_markup_mode="markdown",  # paragraphs reflow to the terminal; indented lines stay as they are
    cls=_Group,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # a traceback must never print a password
    help="PostgreSQL bookkeeper for a Postfix + Dovecot virtual-mailbox server.",
    epilog="Try it on a private PostgreSQL, then on a real server; every command's --help shows an example.\n\n"
           "    mailbook demo\n"
           "    mailbook domain add example.com --dsn 'host=/var/run/postgresql dbname=mail'",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mailbook {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print mailbook's version and exit.")] = False):
    """PostgreSQL bookkeeper for a Postfix + Dovecot virtual-mailbox server."""


migrate_app = typer.Typer(no_args_is_help=True, help=(
    "Apply, roll back and list schema migrations.\n\n"
    "    mailbook migrate apply --dsn 'dbname=mail'"))
app.add_typer(migrate_app, name="migrate")

maps_app = typer.Typer(no_args_is_help=True, help=(
    "Install and check Postfix's pgsql: map files.\n\n"
    "    mailbook maps install --password-file /root/mailreader.pw"))
app.add_typer(maps_app, name="maps")
dovecot_app = typer.Typer(no_args_is_help=True, help=(
    "Install Dovecot's SQL authentication file.\n\n"
    "    mailbook dovecot install --password-file /root/mailauth.pw"))
app.add_typer(dovecot_app, name="dovecot")
roundcube_app = typer.Typer(no_args_is_help=True, help=(
    "Let Roundcube users change their own password through mailbook.\n\n"
    "    mailbook roundcube install --password-file /root/mailwebmail.pw"))
app.add_typer(roundcube_app, name="roundcube")
pgbouncer_app = typer.Typer(no_args_is_help=True, help=(
    "Install PgBouncer in front of PostgreSQL, so a restart or short outage is a wait, not a 451.\n\n"
    "    mailbook pgbouncer install"))
app.add_typer(pgbouncer_app, name="pgbouncer")
domain_app = typer.Typer(no_args_is_help=True, help=(
    "Hosted domains: add, list, remove, enable, disable, allow, deny, limits, networks, password-age.\n\n"
    "    mailbook domain add example.com"))
app.add_typer(domain_app, name="domain")
mailbox_app = typer.Typer(no_args_is_help=True, help=(
    "Mailboxes: add, list, passwd, quota, remove, enable, disable, allow, deny, app-password, networks,\n"
    "password-age, expiring.\n\n"
    "    mailbook mailbox add foo@example.com"))
app.add_typer(mailbox_app, name="mailbox")
app_password_app = typer.Typer(no_args_is_help=True, help=(
    "A mailbox's app passwords, each for chosen services: add (shown once), list, revoke.\n\n"
    "    mailbook mailbox app-password add foo@example.com phone --service imap --service submission"))
mailbox_app.add_typer(app_password_app, name="app-password")
mailbox_networks_app = typer.Typer(no_args_is_help=True, help=(
    "The networks a mailbox may log in from (replacing its domain's): set, show, clear.\n\n"
    "    mailbook mailbox networks set foo@example.com 192.0.2.0/24 2001:db8::/32"))
mailbox_app.add_typer(mailbox_networks_app, name="networks")
domain_networks_app = typer.Typer(no_args_is_help=True, help=(
    "The networks a domain's mailboxes may log in from (unless a mailbox has its own): set, show, clear.\n\n"
    "    mailbook domain networks set example.com 192.0.2.0/24"))
domain_app.add_typer(domain_networks_app, name="networks")
mailbox_age_app = typer.Typer(no_args_is_help=True, help=(
    "A mailbox's maximum password age in days (replacing its domain's; 0: never): set, show, clear.\n\n"
    "    mailbook mailbox password-age set foo@example.com 180"))
mailbox_app.add_typer(mailbox_age_app, name="password-age")
domain_age_app = typer.Typer(no_args_is_help=True, help=(
    "The maximum password age in days of a domain's mailboxes (unless a mailbox has its own): set, show, clear.\n\n"
    "    mailbook domain password-age set example.com 90"))
domain_app.add_typer(domain_age_app, name="password-age")
forward_app = typer.Typer(no_args_is_help=True, help=(
    "Forward an address's mail elsewhere, keeping a copy or not: set, show, clear.\n\n"
    "    mailbook forward set foo@example.com bar@elsewhere.example --keep-copy"))
app.add_typer(forward_app, name="forward")
alias_app = typer.Typer(no_args_is_help=True, help=(
    "Aliases and forwards: add, list, remove.\n\n"
    "    mailbook alias add postmaster@example.com foo@example.com"))
app.add_typer(alias_app, name="alias")
sendas_app = typer.Typer(no_args_is_help=True, help=(
    "Who may send as which address on submission: allow, list, who, disallow.\n\n"
    "    mailbook sendas allow foo@example.com info@example.com"))
app.add_typer(sendas_app, name="sendas")
vacation_app = typer.Typer(no_args_is_help=True, help=(
    "Out-of-office replies sent by Dovecot's Sieve: set, show, clear.\n\n"
    "    mailbook vacation set foo@example.com --subject Away --body-file away.txt"))
app.add_typer(vacation_app, name="vacation")
maildirs_app = typer.Typer(no_args_is_help=True, help=(
    "Maildirs of removed mailboxes: list, purge, forget.\n\n"
    "    mailbook maildirs purge --base /home/mail --dry-run"))
app.add_typer(maildirs_app, name="maildirs")
role_app = typer.Typer(no_args_is_help=True, help=(
    "The service roles' passwords (mailreader, mailauth, mailquota, mailwebmail, maildkim).\n\n"
    "    mailbook role password mailreader --generate /root/mailreader.pw"))
app.add_typer(role_app, name="role")
dkim_app = typer.Typer(no_args_is_help=True, help=(
    "DKIM keys per domain, and OpenDKIM signing with them: add, list, activate, retire, rotate, advance, install.\n\n"
    "    mailbook dkim add example.com"))
app.add_typer(dkim_app, name="dkim")
admin_app = typer.Typer(no_args_is_help=True, help=(
    "A customer's admins: logins that manage only their own domains (members of maildomainadmin).\n\n"
    "    mailbook admin add alice --domain example.com --password-file /root/alice.pw"))
app.add_typer(admin_app, name="admin")

out = Console()


def _no_password(ctx: typer.Context, param: typer.CallbackParam, value: str | None):
    """Refuse a DSN with a password typed on the command line (ps, shell history)."""
    if value and getattr(ctx.get_parameter_source(param.name), "name", "") == "COMMANDLINE":
        try:
            has_password = "password" in conninfo_to_dict(value)
        except psycopg.ProgrammingError:
            return value  # connect() reports the malformed string
        if has_password:
            raise Failure("--dsn contains a password; put it in ~/.pgpass (or PGPASSFILE), "
                          "not on the command line")
    return value


Dsn = Annotated[
    str | None,
    typer.Option(
        "--dsn",
        envvar="MAILBOOK_DSN",
        callback=_no_password,
        help="libpq connection string or URI of the mail database "
        "(default: $MAILBOOK_DSN, else libpq's PG* variables).",
    ),
]
AdminDsn = Annotated[
    str | None,
    typer.Option(
        "--dsn",
        envvar="MAILBOOK_ADMIN_DSN",
        callback=_no_password,
        help="superuser connection string (default: $MAILBOOK_ADMIN_DSN, else PG* variables).",
    ),
]


@app.command()
def init(
    dsn: AdminDsn = None,
    database: Annotated[str, typer.Option(help="Name of the mail database.")] = "mail",
):
    """Create the roles and the mail database owned by mailowner (as a superuser).

    Idempotent: what exists is left alone. Example:

        mailbook init --dsn 'host=/var/run/postgresql user=postgres'
    """
    for line in init_database(dsn, database):
        typer.echo(line)
    typer.echo(f"next: mailbook migrate apply --dsn {shlex.quote(make_conninfo(dsn or '', dbname=database))}")


@migrate_app.command("apply")
def migrate_apply(dsn: Dsn = None):
    """Apply pending migrations, then re-create the SQL API, in one transaction.

    Run as a superuser or a member of mailowner. Concurrent runs wait for each other.

        mailbook migrate apply --dsn 'dbname=mail'
    """
    with connect(dsn) as conn:
        applied = mig.apply(conn)
    for name in applied.old:
        typer.echo(f"applied {mig.PRE_1_0}/{name}")
    if applied.moved:
        typer.echo("moved onto the 1.0 baseline: the schema is unchanged")
    for name in applied:
        typer.echo(f"applied {name}")
    typer.echo("database is up to date; SQL API refreshed" if applied or applied.moved else
               "no pending migrations; SQL API refreshed")


@migrate_app.command("rollback")
def migrate_rollback(
    dsn: Dsn = None,
    count: Annotated[int, typer.Option(min=1, help="How many migrations to roll back.")] = 1,
):
    """Roll back the newest migrations (default one), removing the SQL API first.

    The API returns with the next `mailbook migrate apply` of the release you run.

        mailbook migrate rollback --count 1 --dsn 'dbname=mail'
    """
    with connect(dsn) as conn:
        rolled = mig.rollback(conn, count)
    for name in rolled:
        typer.echo(f"rolled back {name}")
    if not rolled:
        typer.echo("nothing to roll back")


@migrate_app.command("status")
def migrate_status(dsn: Dsn = None):
    """List every migration and whether it is applied. Read-only.

        mailbook migrate status --dsn 'dbname=mail'
    """
    with connect(dsn) as conn:
        states = mig.status(conn)
        v = mig.schema_version(conn)
    table = Table("migration", "status", "applied at")
    table.columns[0].no_wrap = True
    for s in states:
        table.add_row(cell(s.id), "applied" if s.applied else "pending", cell(s.applied_at or ""))
    out.print(table)
    pending = sum(not s.applied for s in states)
    typer.echo(f"{len(states) - pending} applied, {pending} pending")
    typer.echo(f"mailbook {__version__}, schema at {v.latest or 'nothing applied'}")
    if v.unknown:
        typer.echo(f"warning: the database has {len(v.unknown)} migration(s) this mailbook does not know"
                   f" ({printable(', '.join(v.unknown))}): it is newer; upgrade mailbook before `migrate apply`", err=True)


@app.command()
def doctor(
    dsn: Dsn = None,
    maps_dir: Annotated[Path | None, typer.Option(
        help="Also audit the map files installed here (mode, group, whether they answer).")] = None,
    config_dir: Annotated[Path | None, typer.Option(
        help="Postfix configuration directory (postmap -c, postconf -c).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    live: Annotated[bool, typer.Option("--live", help=(
        "Also prove the running Postfix and Dovecot from the outside, read-only: their effective"
        " configuration uses mailbook's maps, passdb/userdb and Sieve settings; a known address through"
        " Postfix's maps; LMTP and quota-status answer; the auth cache's followers; compiled maps' lag;"
        " submission with SASL and TLS; the DKIM signer as Postfix's milter (docs/operations.md,"
        " \"doctor --live\")."))] = False,
    dovecot_config: Annotated[Path | None, typer.Option(
        help="--live: Dovecot's main configuration file (doveconf -c, doveadm -c).")] = None,
    opendkim_config: Annotated[Path, typer.Option(
        help="--live, when a DKIM key is active: OpenDKIM's configuration (`dkim install --config`), whose"
             " Socket Postfix's milters must name.")] = Path("/etc/opendkim.conf"),
    canary: Annotated[str | None, typer.Option(
        help="--live: a mailbox to look up in Postfix and Dovecot (doveadm user); else the first active one.")] = None,
    canary_password_file: Annotated[Path | None, typer.Option(
        help="--live: a file whose first line is --canary's password: also `doveadm auth test` it."
             " Never on the command line.")] = None,
    owner_member: Annotated[list[str] | None, typer.Option(
        help="A role deliberately granted mailowner (e.g. a migration account); repeatable.")] = None,
    patroni: Annotated[list[str] | None, typer.Option(
        help="A Patroni node's REST API (http://HOST:8008); repeatable, the first that answers is asked: also"
             " check the cluster's members, leader, lag and synchronous standby, and that every node refuses an"
             " unsafe request without credentials.")] = None,
    patroni_user: Annotated[str, typer.Option(
        help="restapi.authentication's username, for --patroni-password-file.")] = "patroni",
    patroni_password_file: Annotated[Path | None, typer.Option(
        help="A file whose first line is restapi.authentication's password (else $MAILBOOK_PATRONI_PASSWORD):"
             " also check that each node accepts it. Never on the command line.")] = None,
    compiled_dir: Annotated[Path | None, typer.Option("--compiled", help=(
        "Also report how far the compiled tables in this directory (`maps compile`/`follow`) are behind."))] = None,
    max_lag: Annotated[float, typer.Option(min=0, help="--compiled fails when a change older than this many"
                                           " seconds is not in the tables yet.")] = 60.0,
):
    """Audit a live mail database: server version, password_encryption, pg_hba.conf, roles,
    the whole catalogue against a freshly migrated one (owners, privileges, memberships,
    role attributes, SECURITY DEFINER settings), how the service roles' passwords are
    stored, rows older than today's rules, pending migrations; with --maps-dir, the
    installed map files too; with --compiled, how far the compiled tables are behind; with
    --patroni, the Patroni cluster (members, leader, lag, a synchronous standby, a REST
    API that refuses unauthenticated unsafe requests); with --live, the running Postfix and
    Dovecot, each check with what to run when it fails. Exit 1 if any check fails
    (warnings do not).

        mailbook doctor --dsn 'dbname=mail' --maps-dir /etc/postfix/pgsql --compiled /etc/postfix/compiled
        mailbook doctor --dsn 'dbname=mail' --live --canary canary@example.com --canary-password-file canary.pw
        mailbook doctor --dsn 'host=pg1,pg2,pg3 dbname=mail target_session_attrs=read-write' \\
            --patroni http://pg1:8008 --patroni-password-file rest.pw
    """
    if not live and (dovecot_config or canary or canary_password_file):
        raise Failure("--dovecot-config, --canary and --canary-password-file go with --live")
    if canary_password_file is not None and canary is None:
        raise Failure("--canary-password-file is the password of --canary ADDRESS: give both")
    with connect(dsn) as conn:
        checks = [*database_checks(conn), *catalogue_checks(conn, tuple(owner_member or ())),
                  *verifier_checks(conn), *stored_row_checks(conn), *usage_checks(conn), *hba_checks(conn),
                  *migration_checks(conn)]
        if compiled_dir is not None:
            checks += compiled_lag_checks(conn, compiled_dir, max_lag)
        if live:
            password = read_password_file(canary_password_file) if canary_password_file is not None else None
            checks += live_checks(conn, config_dir, dovecot_config, canary, password, max_lag, opendkim_config)
    if maps_dir is not None:
        checks += map_file_checks(maps_dir, config_dir)
    if patroni:
        rest_password = (read_password_file(patroni_password_file) if patroni_password_file is not None
                         else os.environ.get("MAILBOOK_PATRONI_PASSWORD") or None)
        checks += cluster_checks(patroni, (patroni_user, rest_password) if rest_password else None)
    _show(["check", "status", "detail"], checks, as_json)
    failed = [name for name, status, _ in checks if status == "fail"]
    if failed:
        raise Failure(f"{len(failed)} check(s) failed: {', '.join(dict.fromkeys(failed))}")


@app.command()
def privileges(
    dsn: Dsn = None,
    as_facts: Annotated[bool, typer.Option("--facts", help=(
        "Print the catalogue as facts, each with the statement that restores it: on a freshly"
        " migrated database, what sql/catalogue.expected holds (header included)."))] = False,
):
    """Print what each role may do in the mail database (a Markdown table): the database,
    schema public, every table, view, sequence and function, as PostgreSQL answers.

        mailbook privileges --dsn 'dbname=mail'
    """
    with connect(dsn) as conn:
        if as_facts:
            typer.echo(expected_text(conn), nl=False)
        else:
            typer.echo(privilege_markdown(privilege_matrix(conn)), nl=False)


@app.command()
def hba(
    dbname: Annotated[str, typer.Option(help="The mail database.")] = "mail",
    network: Annotated[list[str] | None, typer.Option(
        help="A network of mail hosts elsewhere (CIDR), reached over TLS; repeatable.")] = None,
    patroni: Annotated[bool, typer.Option(
        "--patroni", help="Print the lines as items of Patroni's postgresql.pg_hba list (Patroni owns pg_hba.conf).")] = False,
):
    """Print the pg_hba.conf lines Postfix, Dovecot, a webmail and OpenDKIM need: mailreader (Postfix), mailauth
    and mailquota (Dovecot's logins, its usage writes), mailwebmail (a webmail's password form), maildkim
    (OpenDKIM's key lookups); the mail database
    only, SCRAM passwords, the local socket and loopback (v4 and v6).

        mailbook hba >> /etc/postgresql/*/main/pg_hba.conf   # then review the file's order
        mailbook hba --network 192.0.2.0/28                  # mail hosts elsewhere, TLS only
        mailbook hba --patroni --network 192.0.2.0/28        # for each node's patroni.yml
    """
    lines = hba_lines(dbname, networks=tuple(network or ()))
    for line in patroni_fragment(lines) if patroni else lines:
        typer.echo(line)


@app.command()
def demo(
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", help="Where the private cluster lives [default: ./.mailbook; as root, "
                           "/var/tmp/mailbook-demo if postgres cannot enter this directory].")] = None,
    stop: Annotated[bool, typer.Option("--stop", help="Stop the demo's PostgreSQL.")] = False,
    reset: Annotated[bool, typer.Option("--reset", help="Stop it and delete its directory.")] = False,
):
    """Run everything on a private, throwaway PostgreSQL, with an example.

    Starts the cluster, runs init and the migrations, adds an example domain, mailbox
    and alias through the SQL API, then shows how to connect and what Postfix would see.

    Running it again reuses the cluster. Example:

        mailbook demo && mailbook demo --stop
    """
    data_dir = data_dir or demo_mod.default_root()
    if reset:
        demo_mod.reset(data_dir)
        typer.echo(f"removed {data_dir}")
        return
    if stop:
        typer.echo("stopped" if demo_mod.stop(data_dir) else "not running")
        return
    r = demo_mod.run(data_dir)
    for line in r.done:
        typer.echo(f"  {line}")
    me = _invocation()
    env = f"PGPASSFILE={shlex.quote(str(r.pgpass))}"
    typer.echo(f"""
Connect:
  DBA (superuser, Unix socket):  psql "{r.admin_dsn}"
  Postfix's role (read-only):    {env} psql "{r.reader_dsn}"
  Dovecot's role (read-only):    {env} psql "{r.auth_dsn}"

Provision, in psql as the DBA:   SET ROLE mailadmin;
                                 SELECT * FROM add_mailbox('bar@example.com', 'a good password');
or with the command line:        {me} mailbox add bar@example.com --dsn "{r.admin_dsn}"
                                 {me} mailbox list --dsn "{r.admin_dsn}"
The example mailbox's password is in {r.mailbox_password_file}.

What Postfix's maps answer (postfix-maps/*.cf as mailreader runs them):""")
    _print_lookups([row for row in r.lookups if row[-1] != demo_mod.NOT_FOUND])
    unknown = sorted({key for *_, key, answer in r.lookups
                      if all(a == demo_mod.NOT_FOUND for *_, k, a in r.lookups if k == key)})
    for key in unknown:
        typer.echo(f"  {key}: in no map, so Postfix refuses it at RCPT (550 5.1.1 User unknown)")
    typer.echo(f"\nStop it with `{me} demo --stop`; wipe it with `{me} demo --reset`.")


def _invocation() -> str:
    """mailbook as this process was started, for hints that work when pasted: `mailbook`
    if that is on PATH and is this one, else its path (.venv/bin/mailbook), else python
    and runner.py."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "mailbook":
        found = shutil.which("mailbook")
        if found and Path(found).resolve() == argv0.resolve():
            return "mailbook"
        relative = os.path.relpath(argv0.resolve())
        return shlex.quote(relative if not relative.startswith("..") else str(argv0.resolve()))
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(argv0.resolve()))}"


Host = Annotated[str, typer.Option(help="PostgreSQL host the daemon connects to.")]
Port = Annotated[int, typer.Option(help="PostgreSQL port.")]
Standby = Annotated[list[str] | None, typer.Option(
    help="Another server to read from when the first is down (a hot standby, or every other node of a"
         " Patroni cluster), as HOST:PORT; repeatable.")]
DbName = Annotated[str, typer.Option("--dbname", help="The mail database.")]
PasswordFile = Annotated[
    Path | None,
    typer.Option("--password-file", help="File whose first line is the role's password (- for stdin)."),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")]


def _print_lookups(rows: list[tuple[str, ...]]) -> None:
    """One line per lookup: map file, [parameter,] key -> answer. Never truncated."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)] if rows else []
    for row in rows:
        typer.echo(printable("  " + "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths)) + f"  -> {row[-1]}"))


def _report(changes, dry_run: bool) -> None:
    for change in changes:
        typer.echo(change.line(dry_run))


class ServiceRole(str, Enum):
    mailreader = "mailreader"
    mailauth = "mailauth"
    mailquota = "mailquota"
    mailwebmail = "mailwebmail"
    maildkim = "maildkim"


@role_app.command("password")
def role_password(
    role: Annotated[ServiceRole, typer.Argument(help="mailreader (Postfix), mailauth (Dovecot), mailquota (Dovecot's usage writes)"
                                                     ", mailwebmail (a webmail's password form)"
                                                     " or maildkim (OpenDKIM's key lookups).")],
    dsn: AdminDsn = None,
    password_file: PasswordFile = None,
    generate: Annotated[Path | None, typer.Option(
        help="Make a random password and write it to this file (mode 0600) first.")] = None,
):
    """Set a service role's password, sent as a SCRAM verifier (the plaintext never
    reaches the server or its log). Then re-install the files that carry it:

        mailbook role password mailreader --generate /root/mailreader.pw
        mailbook maps install --password-file /root/mailreader.pw && postfix reload
    """
    if generate is not None and password_file is not None:
        raise Failure("give --password-file or --generate, not both")
    if generate is not None:
        password = new_password()
    else:
        password = obtain_password(password_file, "MAILBOOK_ROLE_PASSWORD", f"PostgreSQL role {role.value}")
    with connect(dsn) as conn:
        with conn.transaction():
            set_role_password(conn, role.value, password)
            if generate is not None:  # only a password that is safely on disk is kept
                write_private(generate, password + "\n")
    typer.echo(f"password of {role.value} changed" + (f"; it is in {generate}" if generate else ""))


@maps_app.command("install")
def maps_install(
    dest: Annotated[Path, typer.Option(help="Directory for the map files.")] = Path("/etc/postfix/pgsql"),
    host: Host = "127.0.0.1",
    port: Port = 5432,
    dbname: DbName = "mail",
    user: Annotated[str, typer.Option(help="Role Postfix logs in as.")] = "mailreader",
    standby: Standby = None,
    password_file: PasswordFile = None,
    dry_run: DryRun = False,
):
    """Install postfix-maps/*.cf into DEST, filling in only the connection lines.

    The password comes from --password-file, $MAILBOOK_MAP_PASSWORD or a prompt. Files
    are written atomically, mode 0640, group postfix. Example:

        mailbook maps install --password-file /root/mailreader.pw
    """
    password = obtain_password(password_file, "MAILBOOK_MAP_PASSWORD", f"PostgreSQL role {user}")
    values = Target(servers(host, port, standby), dbname, user, password).postfix()
    files = {dest / m.name: m.with_connection(values) for m in map_files()}
    _report(install_files(files, group="postfix", dry_run=dry_run), dry_run)


class Delivery(str, Enum):
    lmtp = "lmtp"
    virtual = "virtual"


@maps_app.command("postconf")
def maps_postconf(
    dest: Annotated[Path, typer.Option(help="Where the map files are installed.")] = Path("/etc/postfix/pgsql"),
    delivery: Annotated[Delivery, typer.Option(
        help="lmtp: Dovecot's LMTP delivers (quota at RCPT, Sieve); virtual: Postfix's virtual(8).")] = "lmtp",
    compiled_maps: Annotated[bool, typer.Option("--compiled", help=(
        "Use the lmdb: tables that `maps compile` writes in DEST instead of the pgsql: maps."))] = False,
    config_dir: Annotated[Path | None, typer.Option(
        help="Postfix configuration directory whose main.cf is merged with (postconf -c); default /etc/postfix.")] = None,
    vmail_user: Annotated[str, typer.Option(help="The user mail is stored as (virtual_uid_maps), by name.")] = "vmail",
    vmail_group: Annotated[str, typer.Option(help="Its group (virtual_gid_maps), by name.")] = "vmail",
    submission: Annotated[bool, typer.Option(
        "--submission/--no-submission",
        help="The submission services (587 STARTTLS, 465 TLS) with SASL through Dovecot and sender checks;"
             " --no-submission for a receive-only MX.")] = True,
    tls_cert: Annotated[str | None, typer.Option(
        help="Certificate chain for smtpd_tls_cert_file (e.g. certbot's fullchain.pem); default: main.cf's,"
             f" else Debian's snakeoil {SNAKEOIL_CERT}.")] = None,
    tls_key: Annotated[str | None, typer.Option(
        help=f"Its private key (smtpd_tls_key_file); default: main.cf's, else {SNAKEOIL_KEY}.")] = None,
):
    """Print the `postconf -e` commands that wire the maps into main.cf (and the
    `postconf -P`/`postconf -M` ones for master.cf: the submission services on 587 and
    465 with their certificate), merged with what main.cf and master.cf say now:
    mydestination keeps the host's own names (mail to root), the admin's
    smtpd_recipient_restrictions stay and mailbook's join them, an existing submission
    service keeps its other options; `#` lines say what changes and why. Nothing is
    changed until the output is run.

        mailbook maps postconf | sh && postfix reload
        mailbook maps postconf --vmail-user vmail --vmail-group vmail --config-dir /etc/postfix
        mailbook maps postconf --tls-cert /etc/ssl/mail/fullchain.pem --tls-key /etc/ssl/mail/privkey.pem
        mailbook maps postconf --no-submission   # a receive-only MX
        mailbook maps postconf --delivery virtual   # keep Postfix's virtual(8)
        mailbook maps postconf --compiled --dest /etc/postfix/compiled | sh && postfix reload
    """
    tls = tls_files(tls_cert, tls_key)
    if tls and not submission:
        raise Failure("--tls-cert and --tls-key are for the submission services; leave them out with --no-submission")
    uid, gid = merge.vmail_ids(vmail_user, vmail_group)
    ids = {"virtual_uid_maps": f"static:{uid}", "virtual_gid_maps": f"static:{gid}"}
    settings = compiled.postconf_settings if compiled_maps else snippet_settings
    wanted = [(name, ids.get(name, value)) for name, value in settings(dest, Delivery(delivery).value)]
    main_cf = merge.MainCf(config_dir)
    header = (f"mailbook: the {'compiled tables' if compiled_maps else 'maps'} in {dest} wired into {main_cf.where}"
              f" (delivery {Delivery(delivery).value}, mail owned by {vmail_user}:{vmail_group} = {uid}:{gid}),"
              " merged with what it says now")
    changes, master = merge.merged_settings(wanted, main_cf), []
    if submission:
        changes += merge.tls_changes(tls, (SNAKEOIL_CERT, SNAKEOIL_KEY), main_cf)
        master = merge.merged_services(submission_services(dict(wanted)["smtpd_sender_login_maps"]), main_cf)
    for line in merge.script(changes, snippet_services(dest), config_dir, header, master):
        typer.echo(line)


@maps_app.command("check")
def maps_check(
    address: Annotated[str, typer.Argument(help="An address to look up, e.g. foo@example.com.")],
    dest: Annotated[Path, typer.Option(help="Where the map files are installed.")] = Path("/etc/postfix/pgsql"),
    config_dir: Annotated[Path | None, typer.Option(help="Postfix configuration directory (postmap -c).")] = None,
):
    """Ask each installed map, through Postfix's own `postmap -q`, what it answers for
    ADDRESS (its domain, for domains.cf and transport.cf). Exit 1 if a map fails.

        mailbook maps check foo@example.com
    """
    rows, failed = [], []
    for m, key, answer, ok in check_maps(address, dest, config_dir):
        rows.append((m.name, m.parameter, key, answer))
        if not ok:
            failed.append(f"{m.name}: {answer}")
    _print_lookups(rows)
    if failed:
        raise Failure(f"{len(failed)} map(s) failed; first: {failed[0]}")


MapsDest = Annotated[Path, typer.Option(help="Directory of the compiled lmdb: tables.")]
ConfigDir = Annotated[Path | None, typer.Option(help="Postfix configuration directory (postmap -c).")]


@maps_app.command("compile")
def maps_compile(
    dest: MapsDest = Path("/etc/postfix/compiled"),
    dsn: Dsn = None,
    config_dir: ConfigDir = None,
):
    """Write every map as a Postfix lmdb: table in DEST, from one consistent snapshot
    (Debian: postfix-lmdb). Each table is built in a private temporary directory and
    renamed into place, so Postfix never sees half of one; tables are 0640, group postfix.
    Run it as DEST's owner (a DEST another user owns is refused); connect as mailreader.
    Example:

        runuser -u mailbook-maps -- mailbook maps compile --dest /etc/postfix/compiled --dsn 'host=127.0.0.1 dbname=mail user=mailreader'
    """
    with connect(dsn) as conn:
        counts = compiled.compile_maps(conn, dest, config_dir)
    for name, n in counts.items():
        typer.echo(f"{dest / name}.lmdb: {n} key(s)")
    typer.echo(f"next: mailbook maps postconf --compiled --dest {dest} | sh && postfix reload")


@maps_app.command("follow")
def maps_follow(
    dest: MapsDest = Path("/etc/postfix/compiled"),
    dsn: Dsn = None,
    config_dir: ConfigDir = None,
    poll: Annotated[float, typer.Option(min=0.1, help="Seconds between checks when no notification comes.")] = 5.0,
    once: Annotated[bool, typer.Option("--once", help="Catch up once and exit.")] = False,
):
    """Keep the compiled tables in DEST current: apply every committed change (recorded
    by triggers, announced with NOTIFY mailbook_maps) key by key, in place, where Postfix
    sees it on its next lookup. Compiles in full first if DEST has no compiled.json.
    Connect as mailreader; it writes nothing to the database. While PostgreSQL is away
    it retries, and Postfix answers from the tables. Example (or the systemd unit
    postfix-maps/mailbook-maps-follow.service):

        mailbook maps follow --dest /etc/postfix/compiled --dsn 'host=127.0.0.1 dbname=mail user=mailreader'
    """
    follow.run(dsn, dest, config_dir, poll, once)


@maps_app.command("prune")
def maps_prune(
    older_than: Annotated[str, typer.Option(help="Keep the change records of this long (a PostgreSQL interval).")] = "7 days",
    dsn: Dsn = None,
):
    """Delete the change records `maps follow` reads that are older than --older-than. A
    follower stopped for longer compiles in full when it comes back. Run as a member of
    mailadmin, e.g. daily from cron:

        mailbook maps prune --older-than '7 days' --dsn 'dbname=mail'
    """
    with connect(dsn) as conn:
        deleted = conn.execute("SELECT public.prune_map_changes(%s::interval)", (older_than,)).fetchone()[0]
    typer.echo(f"{deleted} change record(s) older than {older_than} deleted")


@maps_app.command("verify")
def maps_verify(
    dest: MapsDest = Path("/etc/postfix/compiled"),
    maps_dir: Annotated[Path, typer.Option(help="Where the pgsql: map files are installed.")] = Path("/etc/postfix/pgsql"),
    config_dir: ConfigDir = None,
    sample: Annotated[int, typer.Option(min=0, help="Unknown local parts tried in each domain.")] = 3,
    dsn: Dsn = None,
):
    """Compare every key the database has now (compiled_map_rows(), read as mailreader)
    with the compiled tables in DEST, key for key; then what Postfix gets from those
    tables with the answers of the pgsql: maps in MAPS_DIR, both through `postmap -q -`,
    for every key plus unknown ones. Exit 1 and name each difference if any. Example:

        mailbook maps verify --dest /etc/postfix/compiled --maps-dir /etc/postfix/pgsql --dsn 'host=127.0.0.1 dbname=mail user=mailreader'
    """
    compiled.check_files(dest, maps_dir)
    with connect(dsn) as conn:
        db_rows, _ = compiled.snapshot(conn)
    checked, diffs = compiled.verify_keys(dest, maps_dir, config_dir, db_rows, sample)
    for d in diffs:
        typer.echo(str(d))
    if diffs:
        raise Failure(f"{len(diffs)} difference(s) between {dest} and the database or the pgsql: maps in {maps_dir}")
    typer.echo(f"{checked} key(s) compared: the compiled maps hold every key of the database and answer as the pgsql: maps do")


@dovecot_app.command("install")
def dovecot_install(
    dest: Annotated[Path, typer.Option(help="Path of the SQL file.")] = Path("/etc/dovecot/dovecot-sql.conf.ext"),
    conf_d: Annotated[Path, typer.Option(help="Where auth-mailbook.conf.ext goes.")] = Path("/etc/dovecot/conf.d"),
    host: Host = "127.0.0.1",
    port: Port = 5432,
    dbname: DbName = "mail",
    user: Annotated[str, typer.Option(help="Role Dovecot logs in as.")] = "mailauth",
    standby: Standby = None,
    mailbox_base: Annotated[str, typer.Option(help="Postfix's virtual_mailbox_base.")] = "/home/mail",
    password_file: PasswordFile = None,
    delivery: Annotated[Delivery, typer.Option(
        help="lmtp: also the LMTP include (quota-status, usage, vacation) and its dict files; virtual: auth only.")] = "lmtp",
    postfix_queue: Annotated[str, typer.Option(
        help="Postfix's queue_directory (the auth, LMTP and quota-status sockets go in private/).")] = "/var/spool/postfix",
    vmail_user: Annotated[str, typer.Option(help="The user mail is stored as (mail_uid): it may use the dict socket.")] = "vmail",
    vmail_group: Annotated[str, typer.Option(help="Its group (mail_gid).")] = "vmail",
    submission: Annotated[bool, typer.Option(
        "--submission/--no-submission",
        help="The auth listener Postfix's submission services log users in through (private/auth in"
             " --postfix-queue); --no-submission for a receive-only MX.")] = True,
    tls_cert: Annotated[str, typer.Option(
        help="Certificate chain Dovecot presents (ssl_cert, 2.4: ssl_server_cert_file): the one given to"
             " `maps postconf --tls-cert`.")] = SNAKEOIL_CERT,
    tls_key: Annotated[str, typer.Option(help="Its private key (ssl_key, 2.4: ssl_server_key_file).")] = SNAKEOIL_KEY,
    quota_user: Annotated[str, typer.Option(help="Role Dovecot writes usage as.")] = "mailquota",
    quota_password_file: Annotated[Path | None, typer.Option(
        help="File whose first line is the usage role's password (- for stdin); else $MAILBOOK_QUOTA_PASSWORD,"
             " else the one installed.")] = None,
    auth_cache_ttl: Annotated[int, typer.Option(
        min=0, help="Seconds a login's cached answer is used: the longest a disable or an old password keeps "
                    "working, and how far into an outage a login carries (0: no cache).")] = 900,
    dovecot_version: Annotated[str | None, typer.Option(
        help="2.3 or 2.4: the Dovecot to write for (default: the installed one, from dovecot --version).")] = None,
    last_login: Annotated[bool, typer.Option(
        "--last-login/--no-last-login",
        help="With LMTP delivery: record each mailbox's last IMAP and POP3 login (service, address) in"
             " last_logins, as the usage role, through the same dict (last-login-mailbook.conf.ext).")] = True,
    dry_run: DryRun = False,
):
    """Install, for the installed Dovecot (2.3 or 2.4), dovecot-sql.conf.ext (connection and
    mailbox base filled in), auth-mailbook.conf.ext and conf.d/99-mailbook.conf, which
    includes them after the distribution's conf.d files and sets the certificate and the
    auth listener for Postfix's submission (private/auth in Postfix's queue); with LMTP
    delivery (the default) also lmtp-mailbook.conf.ext (LMTP and quota-status sockets in
    Postfix's queue, quota, usage into SQL, vacation replies, users' Sieve scripts), its
    two dict files and last-login-mailbook.conf.ext (each mailbox's last IMAP/POP3 login
    into SQL; --no-last-login leaves it out). Mode 0640, group dovecot. A rerun keeps a password not given from the
    files installed, so one role's password changes alone; the first install needs both.

        mailbook dovecot install --password-file /root/mailauth.pw --quota-password-file /root/mailquota.pw
        mailbook dovecot install ... --tls-cert /etc/ssl/mail/fullchain.pem --tls-key /etc/ssl/mail/privkey.pem
    """
    if str(password_file) == "-" and str(quota_password_file) == "-":
        raise Failure("only one of the two passwords can come from stdin")
    password = _kept_or_given(password_file, "MAILBOOK_DOVECOT_PASSWORD", "--password-file", dest, user)
    where = servers(host, port, standby)  # libpq tries the hosts in order: the primary first
    connect = Target(where, dbname, user, password).libpq()
    lmtp = None
    if Delivery(delivery) is Delivery.lmtp:
        # usage is written: with other servers listed, libpq picks the one that takes writes
        # (a promoted standby, Patroni's leader after a failover); alone, the primary
        quota_password = _kept_or_given(quota_password_file, "MAILBOOK_QUOTA_PASSWORD", "--quota-password-file",
                                        dest.parent / "dovecot-dict-quota.conf.ext", quota_user)
        writable = {"target_session_attrs": "read-write"} if len(where) > 1 else {}
        lmtp = LmtpSetup(Target(where, dbname, quota_user, quota_password).libpq(**writable),
                         postfix_queue, vmail_user, vmail_group, last_login)
    version = dovecot_version or installed_version()
    files = dovecot_files(dest, conf_d, connect, mailbox_base, lmtp, auth_cache_ttl, version,
                          SubmissionSetup(postfix_queue, submission, tls_cert, tls_key))
    changes = install_files(files, group="dovecot", dry_run=dry_run)
    _report(changes, dry_run)
    if not dry_run:
        for line in dovecot_next_steps(version, conf_d, {c.path for c in changes if c.action != "unchanged"},
                                       vmail_user if lmtp else None):
            typer.echo(line)


def _kept_or_given(password_file: Path | None, envvar: str, option: str, installed: Path, user: str) -> str:
    """A role's password from option's file or $envvar; else the one installed already
    holds for that role (a rerun changes one password without the other); else asked for."""
    if password_file is None and not os.environ.get(envvar):
        kept = installed_password(installed, user)
        if kept is not None:
            typer.echo(f"keeping {user}'s password from {installed} (give {option} to change it)")
            return kept
    return obtain_password(password_file, envvar, f"PostgreSQL role {user}", option=option)


@dovecot_app.command("follow")
def dovecot_follow(
    dsn: Dsn = None,
    password_file: PasswordFile = None,
    doveadm: Annotated[str, typer.Option(
        help="The doveadm command to run (e.g. 'doveadm -c /etc/dovecot/dovecot.conf').")] = "doveadm",
    poll: Annotated[float, typer.Option(min=0.1, help="Seconds between checks when no notification comes.")] = 5.0,
    keep: Annotated[str, typer.Option(
        help="Prune change records older than this (a PostgreSQL interval, at least 1 hour) about hourly.")] = "1 day",
    once: Annotated[bool, typer.Option("--once", help="Flush every user once and exit.")] = False,
):
    """Make every change count in Dovecot at once, with its auth cache on: for each
    committed change of a mailbox's password, state, services, maildir or quota, or of a
    domain's state, services or gid (recorded by triggers, announced with NOTIFY
    mailbook_auth), run `doveadm auth cache flush USER...` for the users concerned,
    within about a second. Flushes every user at start. While PostgreSQL is away it
    flushes nothing (the cache is all Dovecot has then) and catches up when it is back.
    Connect as mailauth, to the server Dovecot reads; run on the Dovecot host as root
    (doveadm talks to Dovecot's auth socket). Example (or the systemd unit
    dovecot/mailbook-dovecot-follow.service):

        mailbook dovecot follow --dsn 'host=127.0.0.1 dbname=mail user=mailauth' --password-file /root/mailauth.pw
    """
    if password_file is not None:
        dsn = make_conninfo(dsn or "", password=obtain_password(password_file, None, "PostgreSQL role mailauth"))
    authcache.run(dsn, doveadm, poll, keep, once)


@roundcube_app.command("install")
def roundcube_install(
    dest: Annotated[Path, typer.Option(help="Directory of the password plugin's config.inc.php.")] = Path(
        "/etc/roundcube/plugins/password"),
    drivers: Annotated[Path, typer.Option(help="The password plugin's drivers directory (mailbook.php goes there).")] = Path(
        "/usr/share/roundcube/plugins/password/drivers"),
    host: Host = "127.0.0.1",
    port: Port = 5432,
    dbname: DbName = "mail",
    user: Annotated[str, typer.Option(help="Role Roundcube logs in as.")] = "mailwebmail",
    min_length: Annotated[int | None, typer.Option(
        min=1, max=72, help="The minimum length Roundcube's form shows and checks first "
                            "(default: settings.password_min_length, read through --dsn).")] = None,
    dsn: Dsn = None,
    password_file: PasswordFile = None,
    dry_run: DryRun = False,
):
    """Install Roundcube's password plugin configuration (Debian: roundcube-plugins):
    mailbook's driver (drivers/mailbook.php: check_current_password(), then
    change_password(), passwords bound, never in a statement's text) and its settings
    with mailwebmail's password; mode 0640, group www-data. Then add 'password' to
    $config['plugins'] in /etc/roundcube/config.inc.php.

        mailbook roundcube install --password-file /root/mailwebmail.pw
    """
    password = obtain_password(password_file, "MAILBOOK_WEBMAIL_PASSWORD", f"PostgreSQL role {user}")
    db_dsn = Target(servers(host, port), dbname, user).pdo()
    if min_length is None:
        with connect(dsn) as conn:  # a member of mailadmin may read settings
            min_length = conn.execute(queries.PASSWORD_MIN_LENGTH).fetchone()[0]
    files = roundcube_files(dest, drivers, db_dsn, user, password, min_length)
    _report(install_files(files, group="www-data", dry_run=dry_run), dry_run)
    if not dry_run:
        typer.echo("next: add 'password' to $config['plugins'] in /etc/roundcube/config.inc.php")


@pgbouncer_app.command("install")
def pgbouncer_install(
    dest: Annotated[Path, typer.Option(help="Directory for pgbouncer.ini and userlist.txt.")] = Path("/etc/pgbouncer"),
    server_host: Annotated[str, typer.Option(help="PostgreSQL host PgBouncer connects to.")] = "127.0.0.1",
    server_port: Annotated[int, typer.Option(help="PostgreSQL port.")] = 5432,
    dbname: DbName = "mail",
    listen_port: Annotated[int, typer.Option(help="Port PgBouncer listens on (loopback only).")] = 6432,
    reader_password_file: Annotated[Path | None, typer.Option(
        help="File holding mailreader's password (- for stdin); else $MAILBOOK_MAP_PASSWORD.")] = None,
    auth_password_file: Annotated[Path | None, typer.Option(
        help="File holding mailauth's password; else $MAILBOOK_DOVECOT_PASSWORD.")] = None,
    logfile: Annotated[str, typer.Option(help="PgBouncer's log file.")] = "/var/log/postgresql/pgbouncer.log",
    pidfile: Annotated[str, typer.Option(help="PgBouncer's pid file.")] = "/var/run/postgresql/pgbouncer.pid",
    dry_run: DryRun = False,
):
    """Install pgbouncer/pgbouncer.ini (transaction pooling, the mail database only) and a
    userlist.txt naming only mailreader and mailauth; mode 0640, group postgres (Debian's
    pgbouncer runs as postgres). Then point the maps and Dovecot at it:

        mailbook pgbouncer install --reader-password-file /root/mailreader.pw \\
            --auth-password-file /root/mailauth.pw && systemctl restart pgbouncer
        mailbook maps install --port 6432 --password-file /root/mailreader.pw
        mailbook dovecot install --port 6432 --password-file /root/mailauth.pw
    """
    if str(reader_password_file) == "-" and str(auth_password_file) == "-":
        raise Failure("only one of the two passwords can come from stdin")
    passwords = {
        "mailreader": obtain_password(reader_password_file, "MAILBOOK_MAP_PASSWORD", "PostgreSQL role mailreader"),
        "mailauth": obtain_password(auth_password_file, "MAILBOOK_DOVECOT_PASSWORD", "PostgreSQL role mailauth"),
    }
    files = pgbouncer_files(dest, server_host, server_port, dbname, listen_port, passwords, logfile, pidfile)
    _report(install_files(files, group="postgres", dry_run=dry_run), dry_run)


# -- a customer's admins (sql/api/35_scopes.sql) -------------------------------------------

Domains = Annotated[list[str] | None, typer.Option("--domain", help="A domain it manages (repeat for more).")]


@admin_app.command("add")
def admin_add(name: str, domain: Domains, dsn: AdminDsn = None, password_file: PasswordFile = None):
    """Let a login manage these domains (and their alias domains) and nothing else. A new
    login is created with a password (asked twice, or --password-file; - for stdin) and
    made a member of maildomainadmin; needs a superuser (or CREATEROLE) on the mail
    database. An existing login only gains the domains.

        mailbook admin add alice --domain example.com --domain example.net
    """
    with connect(dsn) as conn, conn.transaction():
        _customer_login(conn, name, password_file)
        for d in domain:
            new = conn.execute("SELECT grant_domain_admin(%s, %s)", (name, d)).fetchone()[0]
            typer.echo(f"{name} manages {d.lower()}{'' if new else ' (already)'}")


def _customer_login(conn: psycopg.Connection, name: str, password_file: Path | None) -> None:
    """Create the login (password asked twice, or from the file) if it does not exist, and
    make it a member of maildomainadmin if it is not (a reseller may call this for a
    login the DBA made: it grants no role then)."""
    role = pgsql.Identifier(name)
    if conn.execute("SELECT FROM pg_catalog.pg_roles WHERE rolname = %s", (name,)).fetchone() is None:
        password = obtain_password(password_file, "MAILBOOK_ADMIN_PASSWORD", f"admin {name}")
        conn.execute(pgsql.SQL("CREATE ROLE {} LOGIN").format(role))
        set_role_password(conn, name, password)
        typer.echo(f"created login {name}")
    if not conn.execute("SELECT pg_has_role(%s, 'maildomainadmin', 'MEMBER')", (name,)).fetchone()[0]:
        conn.execute(pgsql.SQL("GRANT maildomainadmin TO {}").format(role))


_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}


def _size(value: str | None, flag: str) -> int | None:
    """Bytes from "500000000", "500M", "10G" or "2T" (units of 1024, as Dovecot counts)."""
    if value is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)(?:i?b)?\s*", value.lower())
    if not m:
        raise Failure(f"{flag} takes a size such as 500000000, 500M or 10G, not {value!r}")
    return int(m[1]) * _SIZE_UNITS[m[2]]


@admin_app.command("reseller")
def admin_reseller(name: str, dsn: AdminDsn = None, password_file: PasswordFile = None,
                   max_domains: Annotated[int | None, typer.Option(help="At most this many domains.")] = None,
                   max_mailboxes: Annotated[int | None, typer.Option(
                       help="At most this many mailboxes across its domains.")] = None,
                   max_quota: Annotated[str | None, typer.Option(
                       metavar="SIZE", help="Its mailboxes' quotas add up to at most this (e.g. 500G); each then needs one.")] = None):
    """Make a login a reseller: a customer's admin that may also create domains, within
    limits (a limit left out: no cap), manage them and give them sub-admins. A new login
    is created as `admin add` does (password asked twice, or --password-file). Run it
    again to change the limits (all of them: one left out is lifted).

        mailbook admin reseller bob --max-domains 10 --max-mailboxes 500 --max-quota 1T
    """
    quota = _size(max_quota, "--max-quota")
    with connect(dsn) as conn, conn.transaction():
        conn.add_notice_handler(lambda d: typer.echo(printable(d.message_primary)))
        _customer_login(conn, name, password_file)
        conn.execute("SELECT make_reseller(%s, %s, %s, %s)", (name, max_domains, max_mailboxes, quota))
    limits = [f"{what} {'no cap' if v is None else v}"
              for what, v in (("domains", max_domains), ("mailboxes", max_mailboxes), ("quota bytes", quota))]
    typer.echo(f"{name} is a reseller: {', '.join(limits)}")


@admin_app.command("list")
def admin_list(dsn: Dsn = None, as_json: Json = False):
    """Who manages which domain (a scoped admin sees its own, a reseller its sub-admins
    too), then the resellers with their limits and what they use.   mailbook admin list --json"""
    scopes = _call(dsn, "SELECT admin, domain, granted FROM domain_admins()")
    resellers = _call(dsn, "SELECT admin, max_domains, domains, max_mailboxes, mailboxes, max_quota_bytes,"
                           " quota_bytes::bigint AS quota_bytes FROM resellers()")
    if as_json:
        typer.echo(json_text({"scopes": [dict(zip(scopes[0], r)) for r in scopes[1]],
                              "resellers": [dict(zip(resellers[0], r)) for r in resellers[1]]}))
        return
    _show(*scopes, False)
    if resellers[1]:
        typer.echo("resellers:")
        _show(*resellers, False)


@admin_app.command("remove")
def admin_remove(name: str, dsn: Dsn = None, domain: Annotated[list[str] | None, typer.Option(
                     "--domain", help="Only this domain (repeat for more); default: every one.")] = None):
    """Take domains (default: all) from a scoped admin; without --domain a reseller also
    stops being one. The login itself stays (DROP ROLE is the DBA's).

        mailbook admin remove alice --domain example.net
    """
    if domain:  # one statement: a domain it does not manage refuses the whole call
        _, [(removed,)] = _call(dsn, "SELECT sum(revoke_domain_admin(%s, d))::int FROM unnest(%s::text[]) AS d",
                                (name, domain))
        typer.echo(f"{name} manages {removed} domain(s) fewer")
        return
    with connect(dsn) as conn, conn.transaction():
        reseller = conn.execute("SELECT count(*) FROM resellers() WHERE admin = %s", (name,)).fetchone()[0] > 0
        if reseller:
            conn.execute("SELECT unmake_reseller(%s)", (name,))
        held = conn.execute("SELECT count(*) FROM domain_admins() WHERE admin = %s", (name,)).fetchone()[0]
        removed = conn.execute("SELECT revoke_domain_admin(%s)", (name,)).fetchone()[0] if held or not reseller else 0
    typer.echo(f"{name} manages {removed} domain(s) fewer{' and is no reseller' if reseller else ''}")


@app.command("whoami")
def whoami(dsn: Dsn = None, as_json: Json = False):
    """Say what the connecting login may do here: superuser, global admin, reseller (with
    its limits and usage), domain admin (with its domains), a service role, or nothing.

        MAILBOOK_DSN='dbname=mail user=bob' mailbook whoami
    """
    with connect(dsn) as conn:
        try:
            cur = conn.execute("SELECT * FROM whoami()")
            me = dict(zip([c.name for c in cur.description], cur.fetchone()))
        except psycopg.errors.InsufficientPrivilege:  # not an admin of any kind: whoami() is not its to call
            conn.rollback()
            login, services = conn.execute(
                "SELECT session_user, string_agg(r, ', ' ORDER BY r) FROM unnest(%s::text[]) r"
                " WHERE pg_has_role(session_user, r, 'MEMBER')",
                ([r for r in ROLES if r not in ("mailowner", "mailadmin", "maildomainadmin", "public")],)).fetchone()
            me = {"login": login, "kind": "service role" if services else "nothing",
                  "may": f"what {services} is for, no administration" if services else "nothing here",
                  "domains": []}
    if as_json:
        typer.echo(json_text(me))
        return
    lines = [f"{me['login']}: {me['kind']}; may {me['may']}"]
    if me.get("domains"):
        lines.append(f"domains: {' '.join(me['domains'])}")
    if me["kind"] == "reseller":
        def used(what, cap, n):
            return f"{what} {n} of {'no cap' if cap is None else cap}"
        lines.append("; ".join([used("domains", me["max_domains"], me["used_domains"]),
                                used("mailboxes", me["max_mailboxes"], me["used_mailboxes"]),
                                used("quota bytes", me["max_quota_bytes"], me["used_quota_bytes"])]))
    typer.echo("\n".join(printable(line) for line in lines))


class KeyKind(str, Enum):
    rsa = "rsa"
    ed25519 = "ed25519"


@dkim_app.command("add")
def dkim_add(domain: str, dsn: Dsn = None,
             algorithm: Annotated[KeyKind, typer.Option(
                 help="rsa (2048 bits, read by every receiver) or ed25519 (RFC 8463; stored and publishable,"
                      " not activated yet: Debian's OpenDKIM signs one algorithm for all keys).")] = KeyKind.rsa,
             selector: Annotated[str | None, typer.Option(
                 help="The selector (one DNS label); default mbYYYYMM, mbYYYYMMe for ed25519.")] = None):
    """Make a DKIM key pair for a hosted domain and store it, pending: publish its DNS
    record, then `dkim activate`. The private key goes from openssl into the database
    through pipes and COPY only: never a command line, a file or the server log.

        mailbook dkim add example.com --algorithm ed25519
    """
    with connect(dsn) as conn:
        chosen, public = dkim_mod.add_key(conn, domain, algorithm.value, selector)
    k = "ed25519" if algorithm == KeyKind.ed25519 else "rsa"
    typer.echo(f"added pending DKIM key {chosen} for {domain.lower()}; publish, then `mailbook dkim activate`:")
    typer.echo(dkim_mod.txt_line(domain, chosen, k, public))


@dkim_app.command("list")
def dkim_list(dsn: Dsn = None, domain: DomainFilter = None, as_json: Json = False,
              public: Annotated[bool, typer.Option("--public-key", help="Show the p= values too.")] = False):
    """Each domain's DKIM keys: selector, algorithm, state, dates (retire_after: when a
    retiring key retires); never a private key.

        mailbook dkim list --domain example.com
    """
    columns = ("domain, selector, algorithm, state, created, activated, retired, retire_after"
               + (", public_key" if public or as_json else ""))
    _show(*_call(dsn, f"SELECT {columns} FROM dkim_keys_list(%s)", (domain,)), as_json)


@dkim_app.command("activate")
def dkim_activate(domain: str, selector: str, dsn: Dsn = None):
    """Sign with this key from now on; the domain's active key retires at the same moment.
    Publish its DNS record first (`dkim list --public-key`).

        mailbook dkim activate example.com mb202612
    """
    _call(dsn, "SELECT activate_dkim_key(%s, %s)", (domain, selector))
    typer.echo(f"DKIM key {selector} of {domain.lower()} is active")


@dkim_app.command("retire")
def dkim_retire(domain: str, selector: str, dsn: Dsn = None):
    """Stop signing with this key (a pending one never starts); its row stays for the
    DNS record, which may stay published until old mail has been read.

        mailbook dkim retire example.com mb202512
    """
    _call(dsn, "SELECT retire_dkim_key(%s, %s)", (domain, selector))
    typer.echo(f"DKIM key {selector} of {domain.lower()} is retired")


@dkim_app.command("rotate")
def dkim_rotate(domain: str, dsn: Dsn = None,
                selector: Annotated[str | None, typer.Option(
                    help="The next key's selector (one DNS label); default mbYYYYMM, else mbYYYYMMDD.")] = None):
    """Start a rotation: add the domain's next RSA key, pending, and print its DNS record.
    Publish it; `dkim advance` (from cron) then activates the key once DNS answers with
    it, and retires the current key after a delay. A domain without a key gets its first.

        mailbook dkim rotate example.com
    """
    with connect(dsn) as conn:
        chosen, public = dkim_mod.add_key(conn, domain, "rsa", selector, rotate=True)
    typer.echo(f"next DKIM key {chosen} of {domain.lower()} is pending; publish this record,"
               " then `mailbook dkim advance` activates it once DNS answers with it:")
    typer.echo(dkim_mod.txt_line(domain, chosen, "rsa", public))


@dkim_app.command("advance")
def dkim_advance(
    domain: Annotated[str | None, typer.Argument(help="Only this domain (default: every domain).")] = None,
    dsn: Dsn = None,
    retire_after: Annotated[int | None, typer.Option(
        help="Days the old key's record stays published after the switch (default 7: mail in a"
             " receiver's queue up to Postfix's 5 days, then re-verified, still verifies).", min=0)] = None,
    resolver: Annotated[str | None, typer.Option(
        help="Ask the DNS server at IP[:PORT] (default: the system resolver).")] = None,
):
    """Move rotations on, for cron: each pending next key (`dkim rotate`) whose TXT record
    DNS answers with its p= value becomes active, the old key retiring; retiring keys
    whose delay is over are retired (their records may go). One line per domain that
    changed or waits; nothing when there is nothing to do. Exit 0, also while a record is
    not published yet; 1 when a published record differs from the key, DNS does not
    answer, or the database fails.

        17 * * * * mailbook dkim advance --dsn 'dbname=mail'
    """
    res = dnsrecords.resolver(resolver)
    delay = "" if retire_after is None else ", %s * interval '1 day'"
    bad = 0
    with connect(dsn) as conn:
        rotations = conn.execute("SELECT domain, selector, name FROM dkim_rotations(%s)", (domain,)).fetchall()
        for d, selector, name in rotations:
            try:
                texts = dnsrecords.txt_texts(name, res)
            except Failure as exc:
                typer.echo(f"{d}: next key {selector} pending: {exc}")
                bad += 1
                continue
            params = (d, selector, texts) + (() if retire_after is None else (retire_after,))
            outcome, previous, until = conn.execute(
                f"SELECT outcome, previous, retire_after FROM advance_dkim_key(%s, %s, %s{delay})", params).fetchone()
            if outcome == "activated":
                typer.echo(f"{d}: {selector} is active (DNS answers with its key)" + (
                    f"; {previous} signs no more, its record stays published until {until:%Y-%m-%d %H:%M %Z}"
                    if previous else ""))
            elif outcome == "missing":
                typer.echo(f"{d}: next key {selector} pending: no TXT record at {name} yet (mailbook dns {d} prints it)")
            else:
                typer.echo(f"{d}: next key {selector} pending: the TXT record at {name} holds another key"
                           f" (found: {printable('; '.join(texts))[:120]})")
                bad += 1
        for d, selector in conn.execute("SELECT domain, selector FROM retire_dkim_keys_due(%s)", (domain,)).fetchall():
            typer.echo(f"{d}: {selector} is retired; its TXT record {selector}._domainkey.{d}. may be removed")
    if bad:
        raise Failure(f"{bad} rotation(s) need attention")


@dkim_app.command("install")
def dkim_install(
    config: Annotated[Path, typer.Option(help="OpenDKIM's configuration file (it reads one file only).")]
        = Path("/etc/opendkim.conf"),
    host: Host = "127.0.0.1",
    port: Port = 5432,
    dbname: DbName = "mail",
    user: Annotated[str, typer.Option(help="Role OpenDKIM logs in as.")] = "maildkim",
    socket: Annotated[str, typer.Option(help="Where OpenDKIM listens (its Socket setting).")] = dkim_mod.DEFAULT_SOCKET,
    config_dir: Annotated[Path | None, typer.Option(
        help="Postfix configuration directory whose main.cf is merged with (postconf -c); default /etc/postfix.")] = None,
    password_file: PasswordFile = None,
    dry_run: DryRun = False,
):
    """Write OpenDKIM's configuration (mode 0640, group opendkim, with maildkim's password)
    so it signs with the keys in the mail database, then print the `postconf -e` lines
    that make Postfix pass mail through it (smtpd_milters for SMTP and submission,
    non_smtpd_milters for mail sent on the server itself), merged with main.cf's milters.
    Needs Debian's opendkim and libopendbx1-pgsql.

        mailbook dkim install --password-file /root/maildkim.pw
        systemctl restart opendkim; mailbook dkim install ... | grep ^postconf | sh && postfix reload
    """
    password = obtain_password(password_file, "MAILBOOK_DKIM_PASSWORD", f"PostgreSQL role {user}")
    text = dkim_mod.opendkim_conf(host, port, dbname, user, password, socket)
    milter = dkim_mod.milter_address(socket)
    _report(install_files({config: text}, group="opendkim", dry_run=dry_run), dry_run)
    main_cf = merge.MainCf(config_dir)
    names = ["smtpd_milters", "non_smtpd_milters"]
    current = main_cf.explicit(names)
    changes = []
    for name in names:
        words = [w for w in current.get(name, "").replace(",", " ").split() if w]
        if milter in words:
            changes.append(merge.Change(name, None, [f"has {milter} already"]))
        else:
            changes.append(merge.Change(name, ", ".join([*words, milter]), [f"was {current[name]}"] if words else []))
    changes.append(merge.Change("milter_default_action", "accept",
                                ["accept: while OpenDKIM is down mail leaves unsigned rather than waiting"]))
    for line in merge.script(changes, [], config_dir, f"mailbook: OpenDKIM ({milter}) as a milter in {main_cf.where}"):
        typer.echo(line)


class DmarcPolicy(str, Enum):
    none = "none"
    quarantine = "quarantine"
    reject = "reject"


class StsMode(str, Enum):
    testing = "testing"
    enforce = "enforce"


@app.command()
def dns(
    domain: str,
    dsn: Dsn = None,
    mx: Annotated[list[str] | None, typer.Option(
        "--mx", help="A host that receives the domain's mail (MX, in order of preference); repeat for a backup.")] = None,
    client_host: Annotated[str | None, typer.Option(
        "--host", help="The host mail clients use for IMAP and submission (default: the first --mx).")] = None,
    ipv4: Annotated[list[str] | None, typer.Option(
        "--ipv4", help="An outbound IPv4 address or network for SPF besides the MX hosts; repeatable.")] = None,
    ipv6: Annotated[list[str] | None, typer.Option(
        "--ipv6", help="An outbound IPv6 address or network for SPF; repeatable.")] = None,
    rua: Annotated[str | None, typer.Option(
        help="Where DMARC and TLS-RPT reports go (default: postmaster@DOMAIN).")] = None,
    dmarc_policy: Annotated[DmarcPolicy, typer.Option(
        help="DMARC p=: none (reports only: the start) until the reports show every sender aligned.")]
        = DmarcPolicy.none,
    mta_sts_mode: Annotated[StsMode, typer.Option(
        help="MTA-STS mode: testing (reports only: the start), enforce once TLS-RPT is clean.")] = StsMode.testing,
    mta_sts_policy: Annotated[bool, typer.Option(
        "--mta-sts-policy", help="Print the MTA-STS policy file (.well-known/mta-sts.txt) instead.")] = False,
    check: Annotated[bool, typer.Option(
        "--check", help="Resolve each record and say present, missing or different; exit 1 unless all are present.")]
        = False,
    resolver: Annotated[str | None, typer.Option(
        help="With --check: ask the DNS server at IP[:PORT] (default: the system resolver).")] = None,
    autoconfig: Annotated[Path | None, typer.Option(
        help="Write mail/config-v1.1.xml (Thunderbird) and autodiscover/autodiscover.xml (Outlook) below DIR.",
        metavar="DIR")] = None,
):
    """Print the DNS records a hosted domain needs, in zone-file syntax: MX, SPF, DKIM (its
    pending and active keys), DMARC, MTA-STS, TLS-RPT and the mail clients' SRV and CNAME
    records. MX hosts, outbound addresses and the report address come from the options (the
    database holds the DKIM keys only); give the same options with --check.

        mailbook dns example.com --mx mail.example.net --ipv4 192.0.2.25
        mailbook dns example.com --mx mail.example.net --ipv4 192.0.2.25 --check
    """
    _, rows = _call(dsn, "SELECT name, state, txt FROM dkim_dns_records(%s)", (domain,))
    recs = dnsrecords.records(domain, rows, mx or [], ipv4 or [], ipv6 or [], rua, client_host,
                              dmarc_policy.value, mta_sts_mode.value)
    hosts = [dnsrecords.host(h, "--mx") for h in mx or []]  # records() refused none or a bad one
    client = dnsrecords.host(client_host, "--host") if client_host else hosts[0]
    if mta_sts_policy:
        typer.echo(dnsrecords.mta_sts_policy(hosts, mta_sts_mode.value), nl=False)
        return
    if autoconfig is not None:
        for path in dnsrecords.write_autoconfig(autoconfig, domain.lower().rstrip("."), client):
            typer.echo(f"wrote {path}")
        return
    if not check:
        typer.echo(dnsrecords.zone_text(recs), nl=False)
        return
    res = dnsrecords.resolver(resolver)
    bad = 0
    for rec in recs:
        state, found = dnsrecords.check(rec, res)
        bad += state != "present"
        typer.echo(f"{state:9} {rec.type:5} {rec.name}")
        if state != "present":
            typer.echo(f"    wanted: {rec.rdata_text()}")
        for value in found:
            typer.echo(f"    found:  {printable(value)}")
    if bad:
        raise Failure(f"{bad} of {len(recs)} record(s) missing or different")
    typer.echo(f"all {len(recs)} records present")


# -- provisioning: each command calls one SQL function ------------------------------------

def _call(dsn: str | None, query: str, params: tuple | dict = ()) -> tuple[list[str], list[tuple]]:
    """Run one statement as the connecting role (a mailadmin member); NOTICEs are echoed."""
    with connect(dsn) as conn:
        conn.add_notice_handler(lambda d: typer.echo(printable(d.message_primary)))
        cur = conn.execute(query, params)
        names = [c.name for c in cur.description] if cur.description else []
        return names, cur.fetchall() if cur.description else []


def _show(names: list[str], rows: list[tuple], as_json: bool, empty: str = "(none)") -> None:
    if as_json:
        typer.echo(json_text([dict(zip(names, r)) for r in rows]))
        return
    if not rows:
        typer.echo(empty)
        return
    # on a terminal a boxed table that folds long values; in a pipe plain aligned columns,
    # one row per line, for grep and awk. Never an elided address.
    tty = sys.stdout.isatty()
    table = Table(*names, box=box.HEAVY_HEAD if tty else None, pad_edge=tty)
    for column in table.columns:
        column.overflow, column.no_wrap = "fold", not tty
    for r in rows:
        table.add_row(*(cell(_cell(v)) for v in r))  # literal text: "[/]" in a realname is no markup
    (out if tty else Console(width=100_000)).print(table)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):  # a text[] such as services_off: a list in --json, words here
        return " ".join(map(str, value))
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _new_password(password_stdin: bool, password_file: Path | None, what: str) -> str:
    if password_stdin:
        password_file = Path("-")
    return obtain_password(password_file, None, what)


Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
DomainFilter = Annotated[str | None, typer.Option("--domain", help="Only this domain.")]
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")]
NewPasswordFile = Annotated[Path | None, typer.Option("--password-file", help="Read the password from a file.")]


@domain_app.command("add")
def domain_add(domain: str, dsn: Dsn = None,
               transport: Annotated[str, typer.Option(help="Postfix transport.")] = "virtual:",
               gid: Annotated[int | None, typer.Option(help="Group id for this domain's mail.")] = None,
               alias_of: Annotated[str | None, typer.Option(
                   help="Make DOMAIN an alias domain: x@DOMAIN reaches x@ALIAS_OF.")] = None,
               dkim: Annotated[bool, typer.Option(
                   "--dkim", help="Also make its first DKIM key (pending, as `dkim rotate` does) and print"
                                  " its record; either both are added or neither.")] = False):
    """Host a domain, or add an alias domain of a hosted one.

        mailbook domain add example.com --dkim
        mailbook domain add example.net --alias-of example.com
    """
    if alias_of is not None and (transport != "virtual:" or gid is not None):
        raise Failure("an alias domain takes no --transport or --gid: its mail goes to the target's mailboxes")
    with connect(dsn) as conn, conn.transaction():  # with --dkim: the domain and its key, or nothing
        conn.add_notice_handler(lambda d: typer.echo(printable(d.message_primary)))
        if alias_of is not None:
            name, target = conn.execute("SELECT domain, alias_of FROM add_alias_domain(%s, %s)",
                                        (domain, alias_of)).fetchone()
            added = f"added alias domain {name}: x@{name} reaches x@{target}"
        else:
            name, kind, group = conn.execute("SELECT domain, transport, gid FROM add_domain(%s, %s, %s)",
                                             (domain, transport, gid)).fetchone()
            added = f"added domain {name} (transport {kind}{f', gid {group}' if group is not None else ''})"
        if dkim:
            selector, public = dkim_mod.add_key(conn, name, "rsa", rotate=True)
    typer.echo(added)
    if dkim:
        typer.echo(f"its DKIM key {selector} is pending; publish this record, then `mailbook dkim advance`"
                   " activates it once DNS answers with it:")
        typer.echo(dkim_mod.txt_line(name, selector, "rsa", public))


@domain_app.command("list")
def domain_list(dsn: Dsn = None, as_json: Json = False):
    """List hosted domains with their mailbox and alias counts (a customer's admin: its own).

        mailbook domain list --json
    """
    _, [(reads_all,)] = _call(dsn, "SELECT has_table_privilege('public.transports', 'SELECT')")
    _show(*_call(dsn, queries.DOMAINS if reads_all else queries.MY_DOMAINS), as_json)


@domain_app.command("remove")
def domain_remove(domain: str, dsn: Dsn = None,
                  cascade: Annotated[bool, typer.Option(help="Also remove its mailboxes and aliases.")] = False):
    """Stop hosting a domain (refused while it has mailboxes, unless --cascade).

        mailbook domain remove example.com --cascade
    """
    try:
        _call(dsn, "SELECT remove_domain(%s, %s)", (domain, cascade))
    except psycopg.errors.ForeignKeyViolation as exc:  # its hint names the SQL argument; here it is an option
        raise Failure(f"{exc.diag.message_primary} (SQLSTATE {exc.sqlstate}); hint: remove them first, or run"
                      f" `mailbook domain remove {shlex.quote(domain.lower())} --cascade`") from None
    typer.echo(f"removed {domain.lower()}")


@domain_app.command("enable")
def domain_enable(domain: str, dsn: Dsn = None):
    """Let a domain's addresses receive mail and log in again.   mailbook domain enable example.com"""
    _, [(name,)] = _call(dsn, "SELECT domain FROM set_domain_active(%s, true)", (domain,))
    typer.echo(f"enabled domain {name}")


@domain_app.command("disable")
def domain_disable(domain: str, dsn: Dsn = None):
    """Refuse mail and logins for every address of a domain.   mailbook domain disable example.com"""
    _, [(name,)] = _call(dsn, "SELECT domain FROM set_domain_active(%s, false)", (domain,))
    typer.echo(f"disabled domain {name}: its mail is refused and its users cannot log in")


@mailbox_app.command("add")
def mailbox_add(email: str, dsn: Dsn = None,
                name: Annotated[str | None, typer.Option("--name", help="Real name.")] = None,
                maildir: Annotated[str | None, typer.Option(help="Relative maildir (default domain/local/).")] = None,
                quota: Annotated[int | None, typer.Option(help="Quota in bytes.")] = None,
                hashed: Annotated[bool, typer.Option("--hashed", help="The password given is a hash from another server.")] = False,
                password_stdin: PasswordStdin = False, password_file: NewPasswordFile = None):
    """Add a mailbox; the password is asked twice (or --password-stdin / --password-file).

        mailbook mailbox add foo@example.com --name 'Foo Lastname'
    """
    # the arguments are checked (new_mailbox: address, maildir, domain, duplicates) before
    # anyone is asked for a password
    _call(dsn, "SELECT FROM new_mailbox(%s, %s, %s, %s)", (email, name, maildir, quota))
    secret = _new_password(password_stdin, password_file, f"{email}{' (hash)' if hashed else ''}")
    function = "add_mailbox_hashed" if hashed else "add_mailbox"
    _, [(address, directory, limit)] = _call(dsn, f"SELECT email, maildir, quota_bytes FROM {function}(%s, %s, %s, %s, %s)",
                                             (email, secret, name, maildir, quota))
    typer.echo(f"added {address} (maildir {directory}{f', quota {limit} bytes' if limit else ''})")


@mailbox_app.command("list")
def mailbox_list(dsn: Dsn = None, domain: DomainFilter = None, as_json: Json = False):
    """List mailboxes (never their hashes); a customer's admin sees its domains' only.

        mailbook mailbox list --domain example.com
    """
    _, [(reads_all,)] = _call(dsn, "SELECT has_table_privilege('public.mailboxes', 'SELECT')")
    _show(*_call(dsn, queries.MAILBOXES if reads_all else queries.MY_MAILBOXES, (domain, domain)), as_json)


@mailbox_app.command("stale")
def mailbox_stale(days: Annotated[int, typer.Option(help="Without a login for at least this many days.")] = 180,
                  dsn: Dsn = None, domain: DomainFilter = None, as_json: Json = False):
    """List mailboxes nobody has logged in to (IMAP, POP3, ManageSieve: Dovecot's last_login
    records) for --days days, or ever since recording began, those never first; a customer's
    admin sees its domains' only.

        mailbook mailbox stale --days 180 --domain example.com
    """
    _show(*_call(dsn, queries.STALE, (days, domain, domain)), as_json)


@mailbox_app.command("passwd")
def mailbox_passwd(email: str, dsn: Dsn = None, password_stdin: PasswordStdin = False,
                   password_file: NewPasswordFile = None):
    """Set a new password (asked twice, or --password-stdin).   mailbook mailbox passwd foo@example.com"""
    _call(dsn, "SELECT FROM existing_mailbox(%s)", (email,))  # before asking for a password
    secret = _new_password(password_stdin, password_file, email)
    _call(dsn, "SELECT set_password(%s, %s)", (email, secret))
    typer.echo(f"password changed for {email.lower()}")


@mailbox_app.command("remove")
def mailbox_remove(email: str, dsn: Dsn = None,
                   keep_days: Annotated[int, typer.Option(
                       "--keep-days", min=0, max=3650,
                       help="Keep it restorable this many days (mail to it is refused meanwhile); 0: gone at once.")] = 0):
    """Remove a mailbox (its maildir on disk stays, queued for `maildirs purge`), at once
    or restorable for --keep-days days: its address and maildir are not reused meanwhile.

        mailbook mailbox remove foo@example.com --keep-days 30
    """
    _call(dsn, "SELECT remove_mailbox(%s, %s)", (email, keep_days))
    typer.echo(f"removed {email.lower()}" + (f" (mailbook mailbox restore {email.lower()} brings it back)" if keep_days else ""))


@mailbox_app.command("restore")
def mailbox_restore(email: str, dsn: Dsn = None):
    """Bring back a mailbox removed with --keep-days, within its window: password, name,
    quota, services, aliases to it, send-as grants, vacation, app passwords.

        mailbook mailbox restore foo@example.com
    """
    _, [(address, directory)] = _call(dsn, "SELECT email, maildir FROM restore_mailbox(%s)", (email,))
    typer.echo(f"restored {address} (maildir {directory})")


@mailbox_app.command("rename")
def mailbox_rename(old: str, new: str, dsn: Dsn = None,
                   keep_alias: Annotated[bool, typer.Option(
                       "--keep-alias", help="Keep the old address as an alias of the new one (it still receives).")] = False):
    """Give a mailbox a new address, keeping everything: mail and maildir, password, app
    passwords, aliases to it, forwards, send-as grants, vacation, quota and usage, services.
    Mail already queued for the old address is still delivered for 5 days.

        mailbook mailbox rename foo@example.com fred@example.org --keep-alias
    """
    _, [(address, directory)] = _call(dsn, "SELECT email, maildir FROM rename_mailbox(%s, %s, %s)",
                                      (old, new, keep_alias))
    typer.echo(printable(f"renamed {old.lower()} to {address} (maildir {directory}, kept)"
                         + (f"; {old.lower()} is an alias of it" if keep_alias else "")))


@mailbox_app.command("removed")
def mailbox_removed(dsn: Dsn = None, domain: DomainFilter = None, as_json: Json = False):
    """List mailboxes removed with --keep-days, soonest to end first; restorable false once
    the window has ended (the next `maildirs purge` queues the maildir).

        mailbook mailbox removed --domain example.com
    """
    _show(*_call(dsn, queries.REMOVED, (domain, domain)), as_json)


@mailbox_app.command("enable")
def mailbox_enable(email: str, dsn: Dsn = None):
    """Let a mailbox receive mail and log in again.   mailbook mailbox enable foo@example.com"""
    _, [(address,)] = _call(dsn, "SELECT email FROM set_mailbox_active(%s, true)", (email,))
    typer.echo(f"enabled {address}")


@mailbox_app.command("disable")
def mailbox_disable(email: str, dsn: Dsn = None):
    """Refuse mail (550 at RCPT) and logins for a mailbox.   mailbook mailbox disable foo@example.com"""
    _, [(address,)] = _call(dsn, "SELECT email FROM set_mailbox_active(%s, false)", (email,))
    typer.echo(f"disabled {address}: its mail is refused and it cannot log in")


Services = Annotated[list[str], typer.Argument(
    help="imap, pop3, smtp (Postfix submission), submission (Dovecot's), sieve.", metavar="SERVICES...")]


def _set_services(dsn: str | None, function: str, name: str, services: list[str], allowed: bool) -> None:
    # the names are checked by the SQL function: an unknown one is one line, SQLSTATE 22023
    with connect(dsn) as conn, conn.transaction():  # all services or none
        for s in services:
            row = conn.execute(f"SELECT disabled_services FROM {function}(%s, %s, %s)", (name, s, allowed)).fetchone()
    typer.echo(f"{name.lower()}: turned off: {', '.join(row[0]) or 'nothing'}")


@mailbox_app.command("deny")
def mailbox_deny(email: str, services: Services, dsn: Dsn = None):
    """Keep a mailbox out of login services; its mail still arrives.   mailbook mailbox deny foo@example.com pop3 imap"""
    _set_services(dsn, "set_mailbox_service", email, services, False)


@mailbox_app.command("allow")
def mailbox_allow(email: str, services: Services, dsn: Dsn = None):
    """Let a mailbox log in to services again.   mailbook mailbox allow foo@example.com pop3"""
    _set_services(dsn, "set_mailbox_service", email, services, True)


@domain_app.command("deny")
def domain_deny(domain: str, services: Services, dsn: Dsn = None):
    """Keep every mailbox of a domain out of login services.   mailbook domain deny example.com pop3"""
    _set_services(dsn, "set_domain_service", domain, services, False)


@domain_app.command("allow")
def domain_allow(domain: str, services: Services, dsn: Dsn = None):
    """Turn login services on again for a domain.   mailbook domain allow example.com pop3"""
    _set_services(dsn, "set_domain_service", domain, services, True)


def _limit(value: str | None, flag: str) -> tuple[bool, int | None]:
    """(keep the stored limit?, the new one): not given keeps it, "none" removes it."""
    if value is None:
        return True, None
    if value.strip().lower() == "none":
        return False, None
    try:
        return False, int(value)
    except ValueError:
        raise Failure(f"{flag} takes a number or none, not {value!r}") from None


def _quota_line(email: str, quota_bytes: int | None, quota_messages: int | None) -> str:
    size = f"{quota_bytes} bytes" if quota_bytes is not None else "no byte limit"
    count = f"{quota_messages} messages" if quota_messages is not None else "no message limit"
    return f"{email} quota now: {size}, {count}"


@mailbox_app.command("quota")
def mailbox_quota(email: str, dsn: Dsn = None,
                  bytes_: Annotated[str | None, typer.Option(
                      "--bytes", metavar="N|none", help="Byte limit; none removes it; left out: kept as it is.")] = None,
                  messages: Annotated[str | None, typer.Option(
                      metavar="N|none", help="Message limit; none removes it; left out: kept as it is.")] = None,
                  lift: Annotated[bool, typer.Option("--lift", help="Remove both limits.")] = False,
                  as_json: Json = False):
    """Show a mailbox's quota and usage (as Dovecot last wrote it), or change a limit,
    handed to Dovecot as quota_rule: the next message is checked against it. Only the
    limit given changes; the other stays. Prints the limits as they are now.

        mailbook mailbox quota foo@example.com
        mailbook mailbox quota foo@example.com --bytes 2000000000
        mailbook mailbox quota foo@example.com --messages 100000     # the byte limit stays
        mailbook mailbox quota foo@example.com --messages none       # no message limit
    """
    if bytes_ is None and messages is None and not lift:
        _show(*_call(dsn, queries.QUOTA, (email,)), as_json)  # my_mailbox(): P0002 for no such mailbox
        return
    if lift and (bytes_ is not None or messages is not None):
        raise Failure("give --lift or limits, not both")
    keep_bytes, new_bytes = (False, None) if lift else _limit(bytes_, "--bytes")
    keep_messages, new_messages = (False, None) if lift else _limit(messages, "--messages")
    names, rows = _call(dsn, queries.SET_QUOTA, {"email": email, "keep_bytes": keep_bytes, "bytes": new_bytes,
                                                 "keep_messages": keep_messages, "messages": new_messages})
    if as_json:
        _show(names, rows, as_json)
        return
    row = dict(zip(names, rows[0]))
    typer.echo(_quota_line(row["email"], row["quota_bytes"], row["quota_messages"]))


@vacation_app.command("set")
def vacation_set(email: str, dsn: Dsn = None,
                 subject: Annotated[str, typer.Option(help="The reply's subject (one line).")] = ...,
                 body_file: Annotated[Path, typer.Option(help="File holding the reply's text (- for stdin).")] = ...,
                 starts: Annotated[datetime | None, typer.Option(help="From when (default now).")] = None,
                 ends: Annotated[datetime | None, typer.Option(help="Until when (default: until cleared).")] = None,
                 days: Annotated[int | None, typer.Option(help="At most one reply per sender in this many days (default 7).")] = None):
    """Set a mailbox's out-of-office reply, sent by Dovecot's Sieve while it is due, once
    per sender per --days, never to lists, bulk or automatic mail.

        mailbook vacation set foo@example.com --subject 'Away until Monday' --body-file away.txt --ends 2026-12-01
    """
    body = _read_text(body_file)
    _show(*_call(dsn, "SELECT email, subject, starts, ends, days FROM set_vacation(%s, %s, %s, %s, %s, %s)",
                 (email, subject, body, starts, ends, days)), False)


def _read_text(path: Path) -> str:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Failure(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if "\0" in text:
        raise Failure(f"{path} holds a NUL character; a reply is text")
    return text


@vacation_app.command("show")
def vacation_show(email: Annotated[str | None, typer.Argument(help="Only this mailbox.")] = None,
                  dsn: Dsn = None, as_json: Json = False):
    """List the vacation replies (due now or not), or one mailbox's with its text.   mailbook vacation show foo@example.com"""
    _, [(reads_all,)] = _call(dsn, "SELECT has_table_privilege('public.vacations', 'SELECT')")
    if email is None:
        _show(*_call(dsn, queries.VACATIONS if reads_all else queries.MY_VACATIONS), as_json)
        return
    if not reads_all:  # a customer's admin: another customer's mailbox is refused, not "no reply"
        _call(dsn, "SELECT FROM existing_mailbox(%s)", (email,))
    names, rows = _call(dsn, queries.VACATION if reads_all else queries.MY_VACATION, (email,))
    _show(names, rows, as_json, empty=f"no vacation reply for {email.lower()}")


@vacation_app.command("clear")
def vacation_clear(email: str, dsn: Dsn = None):
    """Stop a mailbox's vacation reply (from the next message on).   mailbook vacation clear foo@example.com"""
    _, rows = _call(dsn, "SELECT clear_vacation(%s)", (email,))
    typer.echo(f"cleared the vacation reply of {email.lower()}" if rows[0][0] else f"{email.lower()} had no vacation reply")


@domain_app.command("limits")
def domain_limits(domain: str, dsn: Dsn = None,
                  mailboxes: Annotated[int | None, typer.Option(help="At most this many mailboxes.")] = None,
                  aliases: Annotated[int | None, typer.Option(help="At most this many aliases.")] = None,
                  quota_bytes: Annotated[int | None, typer.Option(help="Mailbox quotas add up to at most this.")] = None,
                  mailbox_quota_bytes: Annotated[int | None, typer.Option(
                      help="No mailbox may have a larger quota (nor none).")] = None):
    """Cap a domain (a cap left out is lifted).   mailbook domain limits example.com --mailboxes 50 --quota-bytes 100000000000"""
    with connect(dsn) as conn, conn.transaction():
        conn.execute("SELECT set_domain_limits(%s, %s, %s, %s)", (domain, mailboxes, aliases, quota_bytes))
        cur = conn.execute("SELECT domain, max_mailboxes, max_aliases, max_quota_bytes, max_mailbox_quota_bytes"
                           " FROM set_mailbox_quota_cap(%s, %s)", (domain, mailbox_quota_bytes))
        names, rows = [c.name for c in cur.description], cur.fetchall()
    _show(names, rows, False)


@app_password_app.command("add")
def app_password_add(email: str, name: Annotated[str, typer.Argument(help="What it is for: a device or program.")],
                     service: Annotated[list[str], typer.Option(
                         "--service", help="imap, pop3, smtp (Postfix submission), submission (Dovecot's), sieve;"
                                           " repeat for more.")],
                     dsn: Dsn = None):
    """Make a new app password for a mailbox, valid for the given services only, and print
    it (alone on stdout) this once: it is generated in the database and only its hash is
    kept. Give it to the device; revoke it when the device is gone.

        mailbook mailbox app-password add foo@example.com phone --service imap --service submission
    """
    _, [(password,)] = _call(dsn, "SELECT add_app_password(%s, %s, %s)", (email, name, service))
    typer.echo(f"app password {printable(name)} for {printable(email.lower())}"
               f" ({printable(', '.join(sorted({s.lower() for s in service})))}); shown once:", err=True)
    typer.echo(password)


@app_password_app.command("list")
def app_password_list(email: Annotated[str | None, typer.Argument(help="Only this mailbox.")] = None,
                      dsn: Dsn = None, as_json: Json = False):
    """List app passwords: mailbox, name, services, dates; never a password or hash.   mailbook mailbox app-password list foo@example.com"""
    _show(*_call(dsn, "SELECT email, name, services, created, last_used FROM app_passwords_list(%s)", (email,)),
          as_json)


@app_password_app.command("revoke")
def app_password_revoke(email: str, name: str, dsn: Dsn = None):
    """Revoke an app password: the next login with it is refused.   mailbook mailbox app-password revoke foo@example.com phone"""
    _call(dsn, "SELECT revoke_app_password(%s, %s)", (email, name))
    typer.echo(f"revoked app password {printable(name)} of {printable(email.lower())}")


Networks = Annotated[list[str], typer.Argument(
    help="Networks in CIDR notation (192.0.2.0/24, 2001:db8::/32); an address alone is itself.",
    metavar="NETWORKS...")]


def _networks_set(dsn: str | None, name: str, networks: list[str]) -> None:
    _, [(stored,)] = _call(dsn, "SELECT set_login_networks(%s, %s)::text[]", (name, networks))
    typer.echo(f"{printable(name.lower())} may log in from {', '.join(stored)} only")


def _networks_clear(dsn: str | None, name: str, then: str) -> None:
    _, [(had,)] = _call(dsn, "SELECT clear_login_networks(%s)", (name,))
    typer.echo(f"{printable(name.lower())}: " + (f"cleared; {then}" if had else "had no networks"))


def _networks_show(dsn: str | None, name: str, as_json: bool, columns: str) -> None:
    _show(*_call(dsn, f"SELECT {columns} FROM login_networks(%s)", (name,)), as_json)


@mailbox_networks_app.command("set")
def mailbox_networks_set(email: str, networks: Networks, dsn: Dsn = None):
    """Let a mailbox log in (IMAP, POP3, SMTP, Sieve, webmail) only from these networks,
    instead of its domain's; the list replaces the one it had. Webmail logs in from the
    webmail host: list it too.

        mailbook mailbox networks set foo@example.com 192.0.2.0/24 2001:db8::/32
    """
    _networks_set(dsn, email, networks)


@mailbox_networks_app.command("clear")
def mailbox_networks_clear(email: str, dsn: Dsn = None):
    """Let a mailbox log in from its domain's networks again (anywhere if it has none).   mailbook mailbox networks clear foo@example.com"""
    _networks_clear(dsn, email, "its domain's networks apply, if any")


@mailbox_networks_app.command("show")
def mailbox_networks_show(email: str, dsn: Dsn = None, as_json: Json = False):
    """Show its networks, its domain's, and those Dovecot enforces (empty: anywhere).   mailbook mailbox networks show foo@example.com"""
    _networks_show(dsn, email, as_json, "name AS mailbox, networks, domain_networks, effective")


@domain_networks_app.command("set")
def domain_networks_set(domain: str, networks: Networks, dsn: Dsn = None):
    """Let a domain's mailboxes log in only from these networks (a mailbox's own list wins);
    the list replaces the one it had.   mailbook domain networks set example.com 192.0.2.0/24"""
    _networks_set(dsn, domain, networks)


@domain_networks_app.command("clear")
def domain_networks_clear(domain: str, dsn: Dsn = None):
    """Let a domain's mailboxes log in from anywhere again (but those with their own list).   mailbook domain networks clear example.com"""
    _networks_clear(dsn, domain, "its mailboxes log in from anywhere, but those with networks of their own")


@domain_networks_app.command("show")
def domain_networks_show(domain: str, dsn: Dsn = None, as_json: Json = False):
    """Show the networks a domain's mailboxes may log in from (empty: anywhere).   mailbook domain networks show example.com"""
    _networks_show(dsn, domain, as_json, "name AS domain, networks")


Days = Annotated[int, typer.Argument(help="Days from the last password change; a mailbox's 0: never.", metavar="DAYS")]


def _age_set(dsn: str | None, name: str, days: int) -> None:
    _call(dsn, "SELECT set_password_max_age(%s, %s)", (name, days))
    typer.echo(f"{printable(name.lower())}: " + ("passwords never expire" if days == 0
                                                 else f"passwords expire {days} days after they were set"))


def _age_clear(dsn: str | None, name: str, then: str) -> None:
    _, [(had,)] = _call(dsn, "SELECT clear_password_max_age(%s)", (name,))
    typer.echo(f"{printable(name.lower())}: " + (f"cleared; {then}" if had else "had no maximum age"))


@mailbox_age_app.command("set")
def mailbox_age_set(email: str, days: Days, dsn: Dsn = None):
    """Refuse a mailbox's password (IMAP, POP3, SMTP, Sieve; settings.password_expiry_services)
    DAYS days after it was set, instead of its domain's age; 0: never. Webmail (its
    networks, settings.password_expiry_exempt_networks) still logs in, to change it.

        mailbook mailbox password-age set foo@example.com 180
    """
    _age_set(dsn, email, days)


@mailbox_age_app.command("clear")
def mailbox_age_clear(email: str, dsn: Dsn = None):
    """Let a mailbox's password expire with its domain's age again (never if none).

        mailbook mailbox password-age clear foo@example.com
    """
    _age_clear(dsn, email, "its domain's maximum age applies, if any")


@mailbox_age_app.command("show")
def mailbox_age_show(email: str, dsn: Dsn = None, as_json: Json = False):
    """Show its age, its domain's, the one enforced, and when its password expires (empty: never).

        mailbook mailbox password-age show foo@example.com
    """
    _show(*_call(dsn, "SELECT name AS mailbox, days, domain_days, effective, password_changed, expires"
                      " FROM password_max_age(%s)", (email,)), as_json)


@domain_age_app.command("set")
def domain_age_set(domain: str, days: Annotated[int, typer.Argument(help="Days from the last password change.")],
                   dsn: Dsn = None):
    """Refuse a domain's passwords DAYS days after they were set (a mailbox's own age wins).

        mailbook domain password-age set example.com 90
    """
    _age_set(dsn, domain, days)


@domain_age_app.command("clear")
def domain_age_clear(domain: str, dsn: Dsn = None):
    """Let a domain's passwords never expire again (but those of mailboxes with an age of their own).

        mailbook domain password-age clear example.com
    """
    _age_clear(dsn, domain, "its passwords never expire, but those of mailboxes with an age of their own")


@domain_age_app.command("show")
def domain_age_show(domain: str, dsn: Dsn = None, as_json: Json = False):
    """Show a domain's maximum password age (empty: never).   mailbook domain password-age show example.com"""
    _show(*_call(dsn, "SELECT name AS domain, days FROM password_max_age(%s)", (domain,)), as_json)


@mailbox_app.command("expiring")
def mailbox_expiring(days: Annotated[int, typer.Option("--days", help="Expiring within this many days.")] = 14,
                     dsn: Dsn = None, as_json: Json = False):
    """List the mailboxes whose password has expired or expires within --days days, soonest
    first (a customer's admin: its domains' only).   mailbook mailbox expiring --days 14"""
    _show(*_call(dsn, "SELECT email, password_changed, max_age, expires, expired FROM passwords_expiring(%s)", (days,)),
          as_json)


@forward_app.command("set")
def forward_set(email: str, destination: str, dsn: Dsn = None,
                keep_copy: Annotated[bool, typer.Option(
                    "--keep-copy", help="Deliver to the mailbox too (an alias to itself plus the destination).")] = False):
    """Forward an address's mail to destination, replacing its earlier destinations; with
    --keep-copy the mailbox keeps a copy. The same alias rows `alias list` shows.

        mailbook forward set foo@example.com bar@elsewhere.example --keep-copy
    """
    _call(dsn, "SELECT * FROM set_forward(%s, %s, %s)", (email, destination, keep_copy))
    typer.echo(f"{printable(email.lower())} -> {printable(destination.lower())}"
               + (" (a copy stays in the mailbox)" if keep_copy else ""))


@forward_app.command("show")
def forward_show(email: str, dsn: Dsn = None, as_json: Json = False):
    """Where an address's mail goes, and whether the mailbox keeps a copy.   mailbook forward show foo@example.com"""
    _show(*_call(dsn, "SELECT * FROM forward_of(%s)", (email,)), as_json,
          empty=f"{printable(email.lower())} is not forwarded")


@forward_app.command("clear")
def forward_clear(email: str, dsn: Dsn = None):
    """Stop forwarding: mail to the mailbox is delivered to it alone again.   mailbook forward clear foo@example.com"""
    _call(dsn, "SELECT clear_forward(%s)", (email,))
    typer.echo(f"{printable(email.lower())} is not forwarded any more")


@alias_app.command("add")
def alias_add(alias: str, destinations: Annotated[list[str], typer.Argument(help="One or more destinations.")],
              dsn: Dsn = None):
    """Forward an alias to one or more destinations. "@example.com" is the domain's
    catch-all: mail for local parts that are neither a mailbox nor an alias.

        mailbook alias add postmaster@example.com foo@example.com bar@example.org
        mailbook alias add @example.com foo@example.com
    """
    with connect(dsn) as conn, conn.transaction():  # all destinations or none
        for d in destinations:
            conn.execute("SELECT add_alias(%s, %s)", (alias, d))
    typer.echo(f"{alias.lower()} -> {', '.join(d.lower() for d in destinations)}")


@alias_app.command("list")
def alias_list(dsn: Dsn = None, domain: DomainFilter = None, as_json: Json = False):
    """List aliases, one row per destination (a customer's admin: its domains' only).   mailbook alias list --domain example.com"""
    _, [(reads_all,)] = _call(dsn, "SELECT has_table_privilege('public.aliases', 'SELECT')")
    _show(*_call(dsn, queries.ALIASES if reads_all else queries.MY_ALIASES, (domain, domain)), as_json)


@alias_app.command("remove")
def alias_remove(alias: str, destination: Annotated[str | None, typer.Argument(help="Only this destination.")] = None,
                 dsn: Dsn = None):
    """Remove an alias, or one of its destinations.   mailbook alias remove team@example.com"""
    _, rows = _call(dsn, "SELECT remove_alias(%s, %s)", (alias, destination))
    typer.echo(f"removed {rows[0][0]} row(s) of {alias.lower()}")


@sendas_app.command("allow")
def sendas_allow(login: str, addresses: Annotated[list[str], typer.Argument(help="One or more addresses.")],
                 dsn: Dsn = None):
    """Let a mailbox also send as other addresses (its own and its aliases' need no grant).

        mailbook sendas allow foo@example.com info@example.com sales@example.com
    """
    with connect(dsn) as conn, conn.transaction():  # all grants or none
        for a in addresses:
            conn.execute("SELECT allow_send_as(%s, %s)", (login, a))
    typer.echo(f"{login.lower()} may send as {', '.join(a.lower() for a in addresses)}")


@sendas_app.command("list")
def sendas_list(dsn: Dsn = None, login: Annotated[str | None, typer.Option(help="Only this mailbox's grants.")] = None,
                as_json: Json = False):
    """List the explicit send-as grants.   mailbook sendas list --login foo@example.com"""
    _, [(reads_all,)] = _call(dsn, "SELECT has_table_privilege('public.send_as', 'SELECT')")
    _show(*_call(dsn, queries.SEND_AS if reads_all else queries.MY_SEND_AS, (login, login)), as_json)


@sendas_app.command("who")
def sendas_who(address: str, dsn: Dsn = None):
    """The logins Postfix lets send as an address: what sender-login.cf answers.

        mailbook sendas who info@example.com
    """
    address = address.lower()
    _, rows = _call(dsn, queries.SENDERS, (address,))
    typer.echo(printable("\n".join(r[0] for r in rows), keep_newlines=True) or f"nobody may send as {address}")


@sendas_app.command("disallow")
def sendas_disallow(login: str, address: Annotated[str | None, typer.Argument(help="Only this address.")] = None,
                    dsn: Dsn = None):
    """Take back a send-as grant, or all of a mailbox's.   mailbook sendas disallow foo@example.com info@example.com"""
    _, rows = _call(dsn, "SELECT disallow_send_as(%s, %s)", (login, address))
    typer.echo(f"removed {rows[0][0]} send-as grant(s) of {login.lower()}")


@maildirs_app.command("list")
def maildirs_list(dsn: Dsn = None, as_json: Json = False):
    """Maildirs queued for purging since their mailbox was removed.   mailbook maildirs list"""
    _show(*_call(dsn, "SELECT maildir, email AS removed_mailbox, queued, in_use FROM queued_maildirs()"), as_json)


@maildirs_app.command("purge")
def maildirs_purge(
    base: Annotated[Path, typer.Option(help="virtual_mailbox_base: every maildir is relative to it.")],
    dsn: Dsn = None,
    uid: Annotated[int | None, typer.Option(help="The vmail uid the directories must belong to (default: the base's owner).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be removed; change nothing.")] = False,
):
    """Queue the maildirs of mailboxes whose --keep-days window has ended, then delete
    queued maildirs that lie inside --base, belong to the vmail uid and no
    mailbox uses; never through a symlink, never with a live maildir at, above or below
    it (in the database or on disk). Run as root on the mail host. Exit 1 if a
    directory was kept for a reason that needs a look (a symlink, another owner, a
    live maildir inside it or around it).

        mailbook maildirs purge --base /home/mail --dry-run
    """
    with connect(dsn) as conn:
        # mailboxes removed with --keep-days whose window has ended: their maildirs join the queue
        query = queries.EXPIRING if dry_run else queries.EXPIRE
        for email, maildir in conn.execute(query).fetchall():
            typer.echo(printable(f"{'would queue' if dry_run else 'queued'} {maildir} ({email}): its grace period ended"))
        outcomes = purge_maildirs(conn, base, uid, dry_run)
    for o in outcomes:
        typer.echo(printable(f"{o.action} {o.maildir} ({o.email})" + (f": {o.reason}" if o.reason else "")))
    if not outcomes:
        typer.echo("nothing queued")
    refused = [o for o in outcomes if o.refused]
    if refused:
        raise Failure(f"{len(refused)} maildir(s) kept; see above")


@maildirs_app.command("forget")
def maildirs_forget(maildir: str, dsn: Dsn = None):
    """Drop a path from the queue without deleting it (to keep or archive it).   mailbook maildirs forget example.com/foo/"""
    _call(dsn, "SELECT forget_maildir(%s)", (maildir,))
    typer.echo(f"forgot {maildir}")


class AuditedTable(str, Enum):
    transports = "transports"
    users = "users"
    aliases = "aliases"
    send_as = "send_as"
    settings = "settings"
    vacations = "vacations"
    admin_scopes = "admin_scopes"


@app.command("log")
def log(
    dsn: Dsn = None,
    limit: Annotated[int, typer.Option(min=1, help="Show the newest N changes.")] = 50,
    table: Annotated[AuditedTable | None, typer.Option(help="Only changes to this table.")] = None,
    key: Annotated[str | None, typer.Option(help="Only rows whose key contains this, e.g. an address.")] = None,
    since: Annotated[str | None, typer.Option(
        help="Only changes after this time (2026-11-25 10:00) or this long ago (2 hours).")] = None,
    as_json: Json = False,
):
    """The audit log: who changed which domain, mailbox, alias or setting, and when (the
    columns that changed, never their values), oldest first; refused password changes
    from a webmail as REFUSED, with the reason. A customer's admin sees its domains'
    changes only (and its own scope's), never the settings.

        mailbook log --key foo@example.com --since '7 days'
    """
    _, [(reads_all,)] = _call(dsn, "SELECT has_table_privilege('public.audit_log', 'SELECT')")
    _show(*_call(dsn, *queries.audit_log(table.value if table else None, key, since, limit, scoped=not reads_all)),
          as_json, empty="(no changes)")


class Source(str, Enum):
    postfixadmin = "postfixadmin"
    vmm = "vmm"


@app.command("import", short_help="Add domains, mailboxes and aliases from CSV, PostfixAdmin or vmm: all rows or none.")
def import_(
    file: Annotated[Path | None, typer.Argument(help="CSV file with a header (- for stdin).")] = None,
    dsn: Dsn = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row; write nothing.")] = False,
    source: Annotated[Source | None, typer.Option("--from", help="Move in from this tool's database instead of a file.")] = None,
    source_dsn: Annotated[str | None, typer.Option("--source-dsn", callback=_no_password,
                                                      help="libpq connection string of the tool's database (read only).")] = None,
    skip_existing: Annotated[bool, typer.Option("--skip-existing", help="With --from: leave out rows mailbook already holds.")] = False,
    cleartext: Annotated[bool, typer.Option("--cleartext-passwords", help="With --from postfixadmin: its passwords are"
                                            " cleartext ($CONF['encrypt'] = 'cleartext'); hash them.")] = False,
    vmail_owner: Annotated[str, typer.Option(help="With --from vmm: the owner the printed chown commands give the mail.")] = "vmail:vmail",
):
    """Add domains, mailboxes, aliases and send-as grants from a CSV file: every row is checked first,
    every bad row reported with its line number, then all are written or none. With --from, read
    PostfixAdmin 3.3's or vmm 0.7's database instead (in one read-only snapshot), list what cannot
    be carried over as it was, and import the rest the same way.

    Columns: kind,address,destination,password,password_hash,realname,maildir,
    quota_bytes,transport,gid,active (only kind and address are required). Example:

        mailbook import users.csv --dry-run && mailbook import users.csv

        mailbook import --from postfixadmin --source-dsn 'dbname=postfixadmin' --dry-run
    """
    if source is not None:
        if file is not None:
            raise Failure("give a FILE or --from, not both")
        _import_from(source, source_dsn, dsn, dry_run, skip_existing, cleartext, vmail_owner)
        return
    if file is None:
        raise Failure("give a CSV FILE (- for stdin), or --from postfixadmin|vmm --source-dsn DSN")
    source_file = sys.stdin if str(file) == "-" else _open_csv(file)
    with connect(dsn) as conn:
        if sys.stdout.isatty() and source_file is not sys.stdin:
            with Progress(transient=True) as bar:  # counts characters sent, against the file's size
                task = bar.add_task("loading", total=max(file.stat().st_size, 1))
                count, problems = bulk.import_csv(conn, source_file, dry_run, lambda n: bar.advance(task, n))
        else:
            count, problems = bulk.import_csv(conn, source_file, dry_run)
    for line, problem in problems:
        typer.echo(f"{file}:{line}: {printable(problem)}", err=True)
    if problems:
        raise Failure(f"{_bad_rows(problems)} in {file}; nothing was imported")
    typer.echo(f"{count} row(s) checked, no problems" if dry_run else f"imported {count} row(s) from {file}")


def _bad_rows(problems: list[tuple[int, str]]) -> str:
    rows = len({line for line, _ in problems})
    said = f"{rows} bad row{'s' if rows != 1 else ''}"
    return said if rows == len(problems) else f"{said} ({len(problems)} problems)"


def _import_from(source: Source, source_dsn: str | None, dsn: str | None, dry_run: bool,
                 skip_existing: bool, cleartext: bool, vmail_owner: str) -> None:
    """`import --from`: the reader maps the source; run_import() writes it as a file would go."""
    if source is Source.postfixadmin:
        reader = lambda conn: postfixadmin.read(conn, cleartext=cleartext)
    else:
        reader = lambda conn: vmm.read(conn, vmail_owner=vmail_owner)
    plan, problems = run_import(reader, source_dsn, dsn, dry_run, skip_existing)
    # every line below carries the source's own text (names, addresses, destinations): never raw
    say = lambda line, err=False: typer.echo(printable(line), err=err)
    say(f"{plan.tool} {plan.version}, read in one snapshot: "
        + (", ".join(f"{n} {label}(s)" for label, n in plan.counts()) or "nothing to move"))
    if plan.skipped:
        say(f"already in mailbook, left out ({len(plan.skipped)}): " + "; ".join(plan.skipped))
    if plan.left:
        say(f"not carried over as it was ({len(plan.left)}):")
        for what, why in plan.left:
            say(f"  {what}: {why}")
    for where, problem in problems:
        say(f"{plan.tool} {where}: {problem}", err=True)
    if problems:
        raise Failure(f"{_bad_rows(problems)} in {plan.tool}'s data; nothing was imported")
    if plan.commands:  # each built with shlex.join/quote from paths the reader checked (unsafe_path)
        say("then, on the mail host:" if not dry_run else "after the import, on the mail host:")
        for command in plan.commands:
            say(f"  {command}")
    say(f"{len(plan.rows)} row(s) checked, no problems; nothing written (dry run)" if dry_run
        else f"imported {len(plan.rows)} row(s) from {plan.tool}")


def _open_csv(path: Path):
    try:
        return open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise Failure(f"cannot read {path}: {exc.strerror}") from None


@app.command(short_help="Write everything as CSV for `mailbook import` (hashes, never plaintext).")
def export(
    file: Annotated[Path, typer.Argument(help="Where to write the CSV (- for stdout).")] = Path("-"),
    dsn: Dsn = None,
):
    """Write every domain, mailbox and alias as CSV, in the format `mailbook import` reads.
    Mailboxes carry their password hashes (never a plaintext), so this needs a superuser
    or a member of mailowner, and the file is written mode 0600. A customer's admin
    exports its own domains, without hashes. Example:

        mailbook export backup.csv
    """
    with connect(dsn) as conn:
        [(scoped,)] = conn.execute("SELECT coalesce(pg_has_role(to_regrole('maildomainadmin'), 'MEMBER'), false)"
                                   " AND NOT pg_has_role('mailadmin', 'MEMBER')").fetchall()
        query = bulk.MY_EXPORT_QUERY if scoped else bulk.EXPORT_QUERY
        if not scoped:
            conn.execute("SET ROLE mailowner")
        if str(file) == "-":
            n = bulk.export_csv(conn, sys.stdout, query)
        else:
            buffer = io.StringIO()
            n = bulk.export_csv(conn, buffer, query)
            write_private(file, buffer.getvalue())
    typer.echo(f"exported {n} row(s){'' if str(file) == '-' else f' to {file}'}"
               + (" of your domains, without password hashes" if scoped else ""), err=str(file) == "-")


def _fenced_examples(doc: str) -> str:
    """doc with each example block (commands to copy) fenced: a paragraph indented
    relative to the prose, or one whose every line is a `mailbook` command. The second
    case is for Python 3.13, which strips a docstring's common indentation when it
    compiles it: a docstring whose lines after the first are all examples arrives with
    them unindented there, indented on 3.11 (inspect.cleandoc gives both the same)."""
    def example(paragraph: str) -> bool:
        lines = paragraph.splitlines()
        return all(line.startswith("    ") for line in lines) or all(line.startswith("mailbook ") for line in lines)
    return "\n\n".join(f"```\n{textwrap.dedent(p)}\n```" if example(p) else p
                       for p in inspect.cleandoc(doc).split("\n\n"))


def _keep_examples_whole(typer_app: typer.Typer) -> None:
    """Help texts reflow to the terminal (markdown mode), but example blocks must stay
    line by line: each becomes a fenced block, which Typer keeps even when it follows the
    first paragraph (an indented block there loses its indentation and is joined into
    one line)."""
    for info in typer_app.registered_commands:
        info.callback.__doc__ = _fenced_examples(info.callback.__doc__ or "")
    if isinstance(typer_app.info.epilog, str):
        typer_app.info.epilog = _fenced_examples(typer_app.info.epilog)
    for group in typer_app.registered_groups:
        if isinstance(group.typer_instance.info.help, str):
            group.typer_instance.info.help = _fenced_examples(group.typer_instance.info.help)
        _keep_examples_whole(group.typer_instance)


_keep_examples_whole(app)


if __name__ == "__main__":
    app()
