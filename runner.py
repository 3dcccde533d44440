"""mailbook: the command line. Each command opens a connection, calls SQL, reports.

Errors that a user can cause (bad DSN, server down, a refused value, a failing
migration) are turned into one line on stderr and exit status 1, in _Group.invoke.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import psycopg
import typer
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from rich.console import Console
from rich.table import Table

from mailbook import Failure, connect, describe
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
    table = Table("map file", "key", "what Postfix gets", title="What Postfix would see (each postfix-maps/*.cf query, as mailreader)")
    for name, key, answer in r.lookups:
        table.add_row(name, key, answer)
    out.print(table)
    typer.echo("\nStop it with `mailbook demo --stop`; wipe it with `mailbook demo --reset`.")


if __name__ == "__main__":
    app()
