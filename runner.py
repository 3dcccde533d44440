"""mailbook: the command line. Each command opens a connection, calls SQL, reports.

Errors that a user can cause (bad DSN, server down, a refused value, a failing
migration) are turned into one line on stderr and exit status 1, in _Group.invoke.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Optional

import psycopg
import typer
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from rich.console import Console
from rich.table import Table

from mailbook import Failure, connect, describe
from mailbook.daemons import check_maps, dovecot_files, snippet_settings
from mailbook.install import install as install_files
from mailbook.maps import map_files
from mailbook.secrets import obtain_password
from mailbook.setup import init_database
from mailbook import demo as demo_mod
from mailbook import migrations as mig


class _Group(typer.core.TyperGroup):
    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except (Failure, psycopg.Error) as exc:
            typer.echo(f"mailbook: {describe(exc)}", err=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # a traceback must never print a password
    help="PostgreSQL bookkeeper for a Postfix + Dovecot virtual-mailbox server.",
)
migrate_app = typer.Typer(no_args_is_help=True, help="Apply, roll back and list schema migrations.")
app.add_typer(migrate_app, name="migrate")

maps_app = typer.Typer(no_args_is_help=True, help="Install and check Postfix's pgsql: map files.")
app.add_typer(maps_app, name="maps")
dovecot_app = typer.Typer(no_args_is_help=True, help="Install Dovecot's SQL authentication file.")
app.add_typer(dovecot_app, name="dovecot")

out = Console()


def _no_password(ctx: typer.Context, param: typer.CallbackParam, value: Optional[str]):
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
    Optional[str],
    typer.Option(
        "--dsn",
        envvar="MAILBOOK_DSN",
        callback=_no_password,
        help="libpq connection string or URI of the mail database "
        "(default: $MAILBOOK_DSN, else libpq's PG* variables).",
    ),
]
AdminDsn = Annotated[
    Optional[str],
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
    typer.echo(f"next: mailbook migrate apply --dsn '{make_conninfo(dsn or '', dbname=database)}'")


@migrate_app.command("apply")
def migrate_apply(dsn: Dsn = None):
    """Apply pending migrations, then re-create the SQL API, in one transaction.

    Run as a superuser or a member of mailowner. Concurrent runs wait for each other.

        mailbook migrate apply --dsn 'dbname=mail'
    """
    with connect(dsn) as conn:
        applied = mig.apply(conn)
    for name in applied:
        typer.echo(f"applied {name}")
    typer.echo("database is up to date; SQL API refreshed" if applied else
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
    table = Table("migration", "status", "applied at")
    for s in states:
        table.add_row(s.id, "applied" if s.applied else "pending", s.applied_at or "")
    out.print(table)
    pending = sum(not s.applied for s in states)
    typer.echo(f"{len(states) - pending} applied, {pending} pending")


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Where the private cluster lives.")] = Path(".mailbook"),
    stop: Annotated[bool, typer.Option("--stop", help="Stop the demo's PostgreSQL.")] = False,
    reset: Annotated[bool, typer.Option("--reset", help="Stop it and delete its directory.")] = False,
):
    """Run everything on a private, throwaway PostgreSQL: init, migrations, an example
    domain, mailbox and alias; then show how to connect and what Postfix would see.

    Running it again reuses the cluster. Example:

        mailbook demo && mailbook demo --stop
    """
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
    env = f"PGPASSFILE={r.pgpass}"
    typer.echo(f"""
Connect:
  DBA (superuser, Unix socket):  psql "{r.admin_dsn}"
    then, as a provisioning admin:  SET ROLE mailadmin;
                                    SELECT * FROM add_mailbox('bar@example.com', 'a good password');
  Postfix's role (read-only):    {env} psql "{r.reader_dsn}"
  Dovecot's role (read-only):    {env} psql "{r.auth_dsn}"
  mailbook itself:               mailbook migrate status --dsn "{r.admin_dsn}"
  The example mailbox's password is in {r.mailbox_password_file}.
""")
    typer.echo("What Postfix would see (each postfix-maps/*.cf query, run as mailreader):")
    _print_lookups(r.lookups)
    typer.echo("\nStop it with `mailbook demo --stop`; wipe it with `mailbook demo --reset`.")


Host = Annotated[str, typer.Option(help="PostgreSQL host the daemon connects to.")]
Port = Annotated[int, typer.Option(help="PostgreSQL port.")]
DbName = Annotated[str, typer.Option("--dbname", help="The mail database.")]
PasswordFile = Annotated[
    Optional[Path],
    typer.Option("--password-file", help="File whose first line is the role's password (- for stdin)."),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")]


def _print_lookups(rows: list[tuple[str, ...]]) -> None:
    """One line per lookup: map file, [parameter,] key -> answer. Never truncated."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)] if rows else []
    for row in rows:
        typer.echo("  " + "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths)) + f"  -> {row[-1]}")


def _report(changes, dry_run: bool) -> None:
    for change in changes:
        typer.echo(change.line(dry_run))


@maps_app.command("install")
def maps_install(
    dest: Annotated[Path, typer.Option(help="Directory for the map files.")] = Path("/etc/postfix/pgsql"),
    host: Host = "127.0.0.1",
    port: Port = 5432,
    dbname: DbName = "mail",
    user: Annotated[str, typer.Option(help="Role Postfix logs in as.")] = "mailreader",
    password_file: PasswordFile = None,
    dry_run: DryRun = False,
):
    """Install postfix-maps/*.cf into DEST, filling in only the connection lines.

    The password comes from --password-file, $MAILBOOK_MAP_PASSWORD or a prompt. Files
    are written atomically, mode 0640, group postfix. Example:

        mailbook maps install --password-file /root/mailreader.pw
    """
    password = obtain_password(password_file, "MAILBOOK_MAP_PASSWORD", f"PostgreSQL role {user}")
    values = {"hosts": f"{host}:{port}", "user": user, "password": password, "dbname": dbname}
    files = {dest / m.name: m.with_connection(values) for m in map_files()}
    _report(install_files(files, group="postfix", dry_run=dry_run), dry_run)


@maps_app.command("postconf")
def maps_postconf(
    dest: Annotated[Path, typer.Option(help="Where the map files are installed.")] = Path("/etc/postfix/pgsql"),
):
    """Print the `postconf -e` commands that wire the maps into main.cf.

        mailbook maps postconf | sh && postfix reload
    """
    for name, value in snippet_settings(dest):
        typer.echo(f"postconf -e {shlex.quote(f'{name} = {value}')}")


@maps_app.command("check")
def maps_check(
    address: Annotated[str, typer.Argument(help="An address to look up, e.g. foo@example.com.")],
    dest: Annotated[Path, typer.Option(help="Where the map files are installed.")] = Path("/etc/postfix/pgsql"),
    config_dir: Annotated[Optional[Path], typer.Option(help="Postfix configuration directory (postmap -c).")] = None,
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


@dovecot_app.command("install")
def dovecot_install(
    dest: Annotated[Path, typer.Option(help="Path of the SQL file.")] = Path("/etc/dovecot/dovecot-sql.conf.ext"),
    conf_d: Annotated[Path, typer.Option(help="Where auth-mailbook.conf.ext goes.")] = Path("/etc/dovecot/conf.d"),
    host: Host = "127.0.0.1",
    port: Port = 5432,
    dbname: DbName = "mail",
    user: Annotated[str, typer.Option(help="Role Dovecot logs in as.")] = "mailauth",
    mailbox_base: Annotated[str, typer.Option(help="Postfix's virtual_mailbox_base.")] = "/home/mail",
    password_file: PasswordFile = None,
    dry_run: DryRun = False,
):
    """Install dovecot/dovecot-sql.conf.ext (connect line and mailbox base filled in) and
    auth-mailbook.conf.ext; mode 0640, group dovecot. Then include it from 10-auth.conf.

        mailbook dovecot install --password-file /root/mailauth.pw
    """
    password = obtain_password(password_file, "MAILBOOK_DOVECOT_PASSWORD", f"PostgreSQL role {user}")
    connect = make_conninfo(host=host, port=port, dbname=dbname, user=user, password=password)
    files = dovecot_files(dest, conf_d, connect, mailbox_base)
    _report(install_files(files, group="dovecot", dry_run=dry_run), dry_run)
    if not dry_run:
        typer.echo(f"next: in conf.d/10-auth.conf, `!include {files and conf_d / 'auth-mailbook.conf.ext'}`"
                   " (instead of auth-system.conf.ext) and auth_username_format = %Lu")


if __name__ == "__main__":
    app()
