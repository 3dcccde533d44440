"""App passwords (issue 33, item 1) through a real Dovecot (2.3 here, 2.4 in the Debian 13
root): `mailbook mailbox app-password add` prints a password once; Dovecot's second
passdb (dovecot/dovecot-sql-app-passwords.conf.ext, installed by `mailbook dovecot
install`) logs it in to the services it lists and to nothing else, while the main
password still logs in as before; a revoked one, one of a disabled mailbox or service, and
a right token with a wrong secret are refused; with settings.app_password_services the
main password is refused for those services only. Only the password's 8-character token
reaches PostgreSQL, never its secret part.

Needs root (Dovecot's mail processes switch users).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import psycopg
import pytest

from mailbook.dovecot import app_password_query, dovecot_queries, expand_dovecot
from tests.harness.dovecot import dovecot_with_mailboxes, imap_login
from tests.harness.process import cli

TARGET, AUTH_PW = "app_passwords", "app-pw-auth-pw"
USER, MAIN = "foo@example.com", "main secret foo"
REFUSED = 77  # doveadm auth test: refused


@pytest.fixture(scope="module")
def setup(cluster):
    with dovecot_with_mailboxes(cluster, TARGET, AUTH_PW, {USER: MAIN}, "the app password tests") as both:
        yield both


def add(dsn: str, name: str, *services: str) -> str:
    """`mailbook mailbox app-password add`: the password it prints alone on stdout."""
    r = cli(["mailbox", "app-password", "add", USER, name, *(a for s in services for a in ("--service", s)),
             "--dsn", dsn], check=True)
    assert "shown once" in r.stderr, r
    [password] = r.stdout.split()
    return password


def code(dc, password: str, service: str | None) -> int:
    """doveadm auth test as service: 0 logged in, 77 refused. Refusals are checked this
    way, not by IMAP logins: Dovecot holds each failed login from one address longer
    (its auth penalty, a brute-force brake that doveadm's no-penalty turns off)."""
    return dc.auth_test(USER, password, service).returncode


def test_app_password_per_service(setup):
    """An app password for imap and submission logs in over IMAP and to submission, and is
    refused for smtp, pop3, sieve and doveadm, which it does not list."""
    dc, dsn = setup
    password = add(dsn, "phone", "imap", "submission")
    assert imap_login(dc, USER, password), dc.log_errors()
    assert code(dc, password, "submission") == 0, dc.log_errors()
    for service in ("smtp", "pop3", "sieve", "doveadm", None):
        assert code(dc, password, service) == REFUSED, service
    r = cli(["mailbox", "app-password", "list", USER, "--dsn", dsn], check=True)
    assert "phone" in r.stdout and "imap submission" in r.stdout and password not in r.stdout, r.stdout


def test_main_password_still_logs_in(setup):
    """The main password logs in as before, beside app passwords, and a wrong one is refused."""
    dc, dsn = setup
    add(dsn, "laptop", "imap")
    assert imap_login(dc, USER, MAIN), dc.log_errors()
    assert code(dc, MAIN, "doveadm") == 0 and code(dc, MAIN, "pop3") == 0
    assert code(dc, MAIN + "x", "imap") == REFUSED


def test_revoked_or_forged_refused(setup):
    """A revoked app password is refused at the next login; the right token with a wrong
    secret is refused too (Dovecot checks the whole password against the hash)."""
    dc, dsn = setup
    password = add(dsn, "tablet", "imap")
    assert imap_login(dc, USER, password)
    forged = password[:8] + ("a" if password[8] != "a" else "b") + password[9:]
    assert code(dc, forged, "imap") == REFUSED
    assert code(dc, password[:8], "imap") == REFUSED
    r = cli(["mailbox", "app-password", "revoke", USER, "tablet", "--dsn", dsn], check=True)
    assert "revoked app password tablet" in r.stdout
    assert code(dc, password, "imap") == REFUSED
    r = cli(["mailbox", "app-password", "revoke", USER, "tablet", "--dsn", dsn])
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "no app password named" in r.stderr, r


def test_mailbox_rules_hold_for_app_passwords(setup):
    """An app password logs in no further than the mailbox may: not to a service turned
    off for it, not while the mailbox is disabled."""
    dc, dsn = setup
    password = add(dsn, "reader", "imap", "pop3")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        conn.execute("SELECT set_mailbox_service(%s, 'pop3', false)", (USER,))
        try:
            assert code(dc, password, "pop3") == REFUSED and code(dc, password, "imap") == 0
        finally:
            conn.execute("SELECT set_mailbox_service(%s, 'pop3', true)", (USER,))
        conn.execute("SELECT set_mailbox_active(%s, false)", (USER,))
        try:
            assert code(dc, password, "imap") == REFUSED
        finally:
            conn.execute("SELECT set_mailbox_active(%s, true)", (USER,))
    assert code(dc, password, "pop3") == 0


def test_required_setting_refuses_main(setup):
    """With settings.app_password_services = {imap,pop3,smtp,submission}, the main password
    is refused over IMAP and for submission, an app password logs in, and the main
    password still works for the services not listed (sieve, doveadm)."""
    dc, dsn = setup
    password = add(dsn, "mail", "imap")
    with psycopg.connect(dsn, autocommit=True) as conn:  # the superuser: only mailowner may change settings
        conn.execute("UPDATE settings SET app_password_services = '{imap,pop3,smtp,submission}'")
        try:
            assert code(dc, MAIN, "imap") == REFUSED
            assert code(dc, MAIN, "submission") == REFUSED
            assert imap_login(dc, USER, password), dc.log_errors()
            assert code(dc, MAIN, "sieve") == 0 and code(dc, MAIN, "doveadm") == 0
            assert not imap_login(dc, USER, MAIN)  # and over real IMAP (once: the penalty)
        finally:
            conn.execute("UPDATE settings SET app_password_services = '{}'")
    assert imap_login(dc, USER, MAIN)


def test_secret_never_reaches_postgresql(setup, cluster):
    """With every statement of Dovecot's role logged, a login with an app password leaves
    its 8-character token in the server log and never the secret that follows."""
    dc, dsn = setup
    password = add(dsn, "logged", "imap")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"ALTER ROLE mailauth IN DATABASE {TARGET} SET log_statement = 'all'")
        try:
            dc.stop()  # Dovecot's open connections keep their settings: new ones take it
            dc.start()
            assert imap_login(dc, USER, password)
        finally:
            conn.execute(f"ALTER ROLE mailauth IN DATABASE {TARGET} RESET log_statement")
    log = Path(cluster.log).read_text(errors="replace")
    assert f"a.token = '{password[:8]}'" in log
    assert password[8:] not in log and password not in log


def test_main_login_query_cost(setup):
    """The main passdb's query with main_password_allowed() costs about what it cost
    before (a login with the main password runs that one query, as before; bcrypt's
    ~60 ms dominates either way). Prints the figure."""
    _, dsn = setup
    new = expand_dovecot(dovecot_queries()["password_query"], USER)
    old = new.replace(" AND main_password_allowed('imap')", "")
    assert old != new
    app = expand_dovecot(app_password_query(), USER, "imap", "abcdefgh")
    runs: dict[str, list[float]] = {"old": [], "new": [], "app": []}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE mailauth")
        for _ in range(400):  # interleaved, so a busy moment of the machine hits all three
            for name, query in (("old", old), ("new", new), ("app", app)):
                t = time.perf_counter()
                conn.execute(query).fetchall()
                runs[name].append(time.perf_counter() - t)
    best = {name: min(r) * 1e6 for name, r in runs.items()}
    median = {name: statistics.median(r) * 1e6 for name, r in runs.items()}
    print(f"\nmain password_query: before {best['old']:.0f} us best / {median['old']:.0f} us median,"
          f" with main_password_allowed() {best['new']:.0f} / {median['new']:.0f} us;"
          f" app password query {best['app']:.0f} / {median['app']:.0f} us")
    assert best["new"] - best["old"] < 500, best  # well under 1 % of a ~60 ms bcrypt login


def test_scoped_admin_own_domains_only(setup, cluster):
    """A customer's admin of example.com adds, lists and revokes app passwords of its
    mailboxes, and is refused (one line, 42501's message) for another customer's; its
    list shows its own domains only."""
    _, dsn = setup
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT add_domain('example.org')")
        conn.execute("SELECT add_mailbox('boss@example.org', 'boss pw boss pw')")
        conn.execute("SELECT add_app_password('boss@example.org', 'desk', ARRAY['imap'])")
        conn.execute("CREATE ROLE t_app_alice LOGIN PASSWORD 'alice-app-pw-for-tests'")
        conn.execute("GRANT maildomainadmin TO t_app_alice")
        conn.execute("SELECT grant_domain_admin('t_app_alice', 'example.com')")
    env = {"MAILBOOK_DSN": f"host=127.0.0.1 port={cluster.port} dbname={TARGET} user=t_app_alice"
                           " password=alice-app-pw-for-tests"}
    try:
        r = cli(["mailbox", "app-password", "add", USER, "alice-made", "--service", "pop3"], env=env, check=True)
        assert len(r.stdout.strip()) == 32
        listed = cli(["mailbox", "app-password", "list", "--json"], env=env, check=True).stdout
        assert "alice-made" in listed and "boss@example.org" not in listed, listed
        for args in (["add", "boss@example.org", "x", "--service", "imap"], ["revoke", "boss@example.org", "desk"],
                     ["list", "boss@example.org"]):
            r = cli(["mailbox", "app-password", *args], env=env)
            assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "may not manage domain" in r.stderr, (args, r)
        cli(["mailbox", "app-password", "revoke", USER, "alice-made"], env=env, check=True)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT revoke_domain_admin('t_app_alice', 'example.com')")
            conn.execute("DROP ROLE t_app_alice")
