"""PostgreSQL restarts and outages under SMTP load, with PgBouncer (`mailbook pgbouncer
install`) between the daemons and the server, as the README recommends; the restart also
without it ("direct"), as the baseline the README compares with.

A bounded loop of messages goes over loopback SMTP to a real Postfix while a real Dovecot
logs a user in again and again; PostgreSQL is restarted or stopped underneath. What is
asserted is what the README's "What we promise" table says; the figures it quotes are
printed here (pytest -s tests/test_outage.py shows them).

Needs root (Postfix does). PgBouncer and PostgreSQL run as the unprivileged postgres user.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import ExitStack

import psycopg
import pytest

from mailbook.postfix import compiled
from tests.harness.database import migrated_cluster
from tests.harness.dovecot import install_dovecot
from tests.harness.load import AUTH_PW, QUERY_WAIT, READER_PW, Load, assert_all_delivered, one_mailbox, outage_stack
from tests.harness.pgbouncer import PgBouncer
from tests.harness.postfix import Postfix
from tests.harness.process import cli, daemon_root, started

# Postfix 3.7's pgsql client skips a server for this long after one failed query
# (RETRY_CONN_INTV in dict_pgsql.c, compiled in)
POSTFIX_RETRY = 60
# After a long outage the first Postfix process to come back can be refused once more by
# PgBouncer (its role's pool still counts as failing) and skip it for another minute.
SMTP_BACK_WITHIN = 2 * POSTFIX_RETRY + 10
# Dovecot's SQL pool, with one server listed, reconnects at the latest 15 s after its
# last attempt (SQL_CONNECT_RESET_DELAY in lib-sql, compiled in)
LOGIN_BACK_WITHIN = 15 + 5


@pytest.fixture(scope="module")
def stack(request):
    """PostgreSQL, Postfix and Dovecot; with request.param "pgbouncer" the daemons reach
    PostgreSQL through PgBouncer, with "direct" they connect to it themselves."""
    with outage_stack("mailbook-outage-", pgbouncer=request.param == "pgbouncer") as s:
        yield s.pg, s.bouncer, s.postfix, s.dovecot


@pytest.mark.parametrize("stack", ["pgbouncer"], indirect=True)
def test_pooler_service_roles_only(stack):
    """Through the pooler only the service roles reach only the mail database."""
    pg, bouncer, postfix, dovecot = stack
    base = f"host=127.0.0.1 port={bouncer.port} connect_timeout=5"
    with psycopg.connect(f"{base} dbname=mail user=mailreader password={READER_PW}") as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == ("mailreader", "mail")
    for dsn, why in [(f"{base} dbname=mail user=postgres password=x", "superuser"),
                     (f"{base} dbname=mail user=mailadmin password=x", "admin role"),
                     (f"{base} dbname=mail user=mailauth password=wrong", "wrong password"),
                     (f"{base} dbname=postgres user=mailreader password={READER_PW}", "other database")]:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn).close()
            pytest.fail(f"{why} got in through PgBouncer")


def check(figures: dict, what: str, bouncer) -> None:
    """What holds for every fault, with or without PgBouncer: mail is deferred, never
    bounced; what was accepted is delivered (checked by the caller); both daemons come
    back by themselves, without a reload."""
    label = f"{what}, {'through PgBouncer' if bouncer else 'direct'}"
    print(f"\n{label}: {figures}")
    if os.environ.get("MAILBOOK_OUTAGE_LOG"):  # collecting figures over several runs
        with open(os.environ["MAILBOOK_OUTAGE_LOG"], "a") as f:
            f.write(json.dumps({"fault": label, **figures}) + "\n")
    assert figures["smtp_5xx"] == 0, "a 5xx during an outage would bounce mail"
    assert figures["smtp_other"] == [], figures  # only 250 or 451: no dropped sessions, no 421
    assert figures["smtp_back_after_s"] is not None and figures["smtp_back_after_s"] <= SMTP_BACK_WITHIN
    assert figures["login_back_after_s"] is not None and figures["login_back_after_s"] <= LOGIN_BACK_WITHIN


@pytest.mark.parametrize("stack", ["pgbouncer", "direct"], indirect=True)
def test_outage_restart(stack):
    """A restart under SMTP load bounces nothing and every accepted message arrives."""
    pg, bouncer, postfix, dovecot = stack
    with Load(postfix, dovecot, "restart") as load:
        fault = time.monotonic()
        pg.restart()
        back = time.monotonic()
        load.wait_until_back(back, SMTP_BACK_WITHIN)
    check(load.summary(fault, back), "restart", bouncer)
    assert len(load.accepted) >= 5
    assert_all_delivered(postfix, load)


@pytest.mark.parametrize("stack", ["pgbouncer"], indirect=True)
def test_outage_20_seconds(stack):
    """A 20-second outage under SMTP load bounces nothing and service returns alone."""
    pg, bouncer, postfix, dovecot = stack
    with Load(postfix, dovecot, "outage20") as load:
        fault = time.monotonic()
        pg.stop()
        time.sleep(20)
        pg.start()
        back = time.monotonic()
        load.wait_until_back(back, SMTP_BACK_WITHIN)
    check(load.summary(fault, back), "20 s outage", bouncer)
    assert_all_delivered(postfix, load)


@pytest.mark.parametrize("stack", ["pgbouncer"], indirect=True)
def test_outage_past_query_wait(stack):
    """An outage longer than query_wait_timeout gives 451 never 5xx and service returns alone."""
    pg, bouncer, postfix, dovecot = stack
    with Load(postfix, dovecot, "outage50") as load:
        fault = time.monotonic()
        pg.stop()
        time.sleep(QUERY_WAIT + 10)
        pg.start()
        back = time.monotonic()
        load.wait_until_back(back, SMTP_BACK_WITHIN)
    figures = load.summary(fault, back)
    check(figures, f"{QUERY_WAIT + 10} s outage", bouncer)
    assert figures["smtp_451"] > 0  # PgBouncer gave up after query_wait_timeout: try later
    assert_all_delivered(postfix, load)


# -- compiled maps: Postfix without PostgreSQL, Dovecot on its cache ----------------------

# How long PostgreSQL stays stopped under load with compiled maps. CI: 75 s, longer than
# anything the pgsql: maps survive; the README's 5-minute row is this test run by hand
# with MAILBOOK_OUTAGE_SECONDS=300.
OUTAGE_SECONDS = int(os.environ.get("MAILBOOK_OUTAGE_SECONDS", "75"))
LATE, LATE_PW = "late@example.com", "late outage secret"


@pytest.fixture(scope="module")
def compiled_stack():
    """PostgreSQL; a Postfix whose maps are only the lmdb: tables `mailbook maps compile`
    wrote (main.cf as `maps postconf --compiled --delivery virtual` prints it; delivery by
    virtual(8), which needs nothing but the maps); a Dovecot with the shipped auth cache
    (`mailbook dovecot install` defaults), reaching PostgreSQL through PgBouncer."""
    with ExitStack() as stop:
        root = stop.enter_context(daemon_root("mailbook-outage-compiled-", "the outage tests run Postfix and"))
        pg = stop.enter_context(migrated_cluster(root / "pg", mailreader=READER_PW, mailauth=AUTH_PW))
        reader_pw, auth_pw = one_mailbox(pg, root)
        bouncer = PgBouncer(root / "pgbouncer", pg)
        stop.callback(bouncer.stop)
        bouncer.install_and_start(reader_pw, auth_pw)
        dest = root / "compiled"
        compile_ = ["maps", "compile", "--dest", str(dest), "--dsn",
                    f"host=127.0.0.1 port={pg.port} dbname=mail user=mailreader"]
        postfix = Postfix(root / "postfix", root / "no-pgsql-maps")
        postfix.configure()  # its main.cf is postmap's too
        cli([*compile_, "--config-dir", str(postfix.config)], env={"PGPASSWORD": READER_PW}, check=True)
        postfix.overrides = {k: v for k, v in compiled.postconf_settings(dest, "virtual")
                             if k in {m.parameter for m in compiled.MAPS}}
        started(stop, postfix)
        dovecot = install_dovecot(root, postfix.mail, "--port", str(bouncer.port), "--password-file", str(auth_pw),
                                  "--auth-cache-ttl", "900")  # the shipped default, said explicitly
        started(stop, dovecot)
        recompile = lambda: cli([*compile_, "--config-dir", str(postfix.config)], env={"PGPASSWORD": READER_PW})
        yield pg, postfix, dovecot, dest, recompile


def test_outage_compiled_maps(compiled_stack):
    """With compiled maps PostgreSQL stopped under SMTP load gives no 4xx no 5xx and logins go
    on."""
    pg, postfix, dovecot, dest, recompile = compiled_stack
    admin = pg.dsn("mail")
    with Load(postfix, dovecot, "compiled") as load:
        fault = time.monotonic()
        pg.stop()
        time.sleep(1)
        refused = cli(["mailbox", "add", LATE, "--dsn", admin, "--password-stdin"], input=LATE_PW + "\n",
                      env={"PGCONNECT_TIMEOUT": "5"})
        time.sleep(max(0.0, fault + OUTAGE_SECONDS - time.monotonic()))
        pg.start()
        back = time.monotonic()
        # provisioning works again at once, nothing restarted; a compile takes the change
        added = cli(["mailbox", "add", LATE, "--dsn", admin, "--password-stdin"], input=LATE_PW + "\n")
        compiled_again = recompile()
        time.sleep(3)
    figures = load.summary(fault, back)
    figures["outage_s"] = round(back - fault)
    check(figures, f"{figures['outage_s']} s outage, compiled maps", "compiled maps, Dovecot through PgBouncer")
    assert figures["smtp_451"] == 0, figures  # Postfix never asked PostgreSQL
    assert figures["logins_failed"] == 0, figures  # Dovecot answered from its cache
    assert figures["smtp_attempts"] >= OUTAGE_SECONDS  # two senders, one message each every 0.2 s or so
    assert_all_delivered(postfix, load)
    assert "pgsql" not in postfix.log_text()

    assert refused.exit_code == 1, refused
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mailbook: cannot connect to PostgreSQL"), refused.stderr
    assert "Traceback" not in refused.stderr
    assert added.exit_code == 0, added
    assert compiled_again.exit_code == 0, compiled_again
    assert LATE in (dest / "mailboxes").read_text()
    # Postfix notices the replaced table by itself (a daemon restarts when its table
    # changed); no reload
    deadline = time.monotonic() + 30
    while postfix.rcpt(LATE)[0] != 250 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert postfix.rcpt(LATE)[0] == 250
    postfix.send(LATE, "after the outage")
    postfix.delivered("example.com/late/", "after the outage")
