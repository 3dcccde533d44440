"""mailbook: the command line. Each command opens a connection, calls SQL, reports.

Errors that a user can cause (bad DSN, server down, a refused value, a failing
migration) are turned into one line on stderr and exit status 1, in _Group.invoke.
"""

from __future__ import annotations

from typing import Annotated, Optional

import click
import psycopg
import typer
from click.core import ParameterSource
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from rich.console import Console
from rich.table import Table

from mailbook import Failure, connect, data_dir, describe
from mailbook import migrations as mig


class _Group(typer.core.TyperGroup):
    def invoke(self, ctx: click.Context):
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


def _no_password(ctx: click.Context, param: click.Parameter, value: Optional[str]):
    """Refuse a DSN with a password typed on the command line (ps, shell history)."""
    if value and ctx.get_parameter_source(param.name) == ParameterSource.COMMANDLINE:
        try:
            has_password = "password" in conninfo_to_dict(value)
        except psycopg.ProgrammingError as exc:
            raise typer.BadParameter(f"not a valid connection string: {exc}") from None
        if has_password:
            raise typer.BadParameter(
                "contains a password; put it in ~/.pgpass (or PGPASSFILE), not on the command line"
            )
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


def _print_notices(conn: psycopg.Connection) -> None:
    conn.add_notice_handler(lambda d: typer.echo(d.message_primary))


@app.command()
def init(
    dsn: AdminDsn = None,
    database: Annotated[str, typer.Option(help="Name of the mail database.")] = "mail",
):
    """Create the roles and the mail database owned by mailowner (as a superuser).

    Idempotent: what exists is left alone. Example:

        mailbook init --dsn 'host=/var/run/postgresql user=postgres'
    """
    with connect(dsn) as conn:
        _print_notices(conn)
        if not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
            raise Failure("`mailbook init` creates roles and a database: connect as a superuser")
        conn.execute((data_dir("sql") / "roles.sql").read_text())
        row = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if row is None:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER mailowner").format(sql.Identifier(database)))
            typer.echo(f"created database {database} owned by mailowner")
        elif row[0] != "mailowner":
            raise Failure(
                f'database "{database}" exists and is owned by {row[0]}; '
                f"ALTER DATABASE {database} OWNER TO mailowner, or choose another --database"
            )
        else:
            typer.echo(f"database {database} already exists, owned by mailowner")
        old_server = conn.info.server_version < 150000
    if old_server:
        # before PostgreSQL 15, schema public belongs to the bootstrap superuser
        with connect(make_conninfo(dsn or "", dbname=database)) as conn:
            conn.execute("ALTER SCHEMA public OWNER TO mailowner")
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


if __name__ == "__main__":
    app()
