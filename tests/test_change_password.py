"""change_password() through a real `mailwebmail` login, as a webmail calls it: the policy,
the guessing bound (also under racing sessions), the audit, and what the role may not do.

pgTAP (tests/pgtap/13_webmail.sql) checks the grants under SET ROLE; a refused SET ROLE
and the role's own settings can only be seen from a session that logged in as it."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from conftest import table_checksums
from mta import mail_database

DB = "webmail_api"
WEBMAIL_PW = "webmail-pw-for-tests"
OLD = "an old passphrase"
NEW = "a brand new passphrase"


@pytest.fixture(scope="module")
def dsn(cluster):
    with mail_database(cluster, DB, mailwebmail=WEBMAIL_PW) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SET ROLE mailadmin")
            conn.execute("SELECT add_domain('example.com')")
        yield dsn


@pytest.fixture(scope="module")
def webmail_dsn(dsn, cluster):
    return f"host=127.0.0.1 port={cluster.port} dbname={DB} user=mailwebmail password={WEBMAIL_PW}"


@pytest.fixture
def owner(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
def mailbox(owner):
    """A fresh mailbox with password OLD; removed afterwards."""
    address = f"u{uuid.uuid4().hex[:8]}@example.com"
    owner.execute("SELECT add_mailbox(%s, %s)", (address, OLD))
    yield address
    owner.execute("SELECT remove_mailbox(%s)", (address,))


@pytest.fixture
def webmail(webmail_dsn):
    with psycopg.connect(webmail_dsn, autocommit=True) as conn:
        yield conn


def change(conn, email, current, new):
    return conn.execute("SELECT changed, code, message FROM public.change_password(%s, %s, %s)",
                        (email, current, new)).fetchone()


def verified(owner, email, password):
    return owner.execute("SELECT verify_password(%s, %s)", (email, password)).fetchone()[0]


def audit(owner, email):
    return owner.execute("SELECT login_role, acting_role, operation, changed, reason FROM audit_log"
                         " WHERE row_key = %s AND table_name = 'users' AND operation IN ('UPDATE', 'REFUSED')"
                         " ORDER BY id", (email,)).fetchall()


def test_change_password_stores_the_new_password_and_audits_the_update_as_mailwebmail(webmail, owner, mailbox):
    assert change(webmail, mailbox.upper(), OLD, NEW) == (True, "00000", "password changed")
    assert verified(owner, mailbox, NEW) and not verified(owner, mailbox, OLD)
    stored = owner.execute("SELECT password FROM users WHERE email = %s", (mailbox,)).fetchone()[0]
    assert stored.startswith("{BLF-CRYPT}$2a$10$")  # as set_password() stores it
    assert audit(owner, mailbox) == [("mailwebmail", "mailwebmail", "UPDATE", ["password"], None)]


def test_a_wrong_current_password_is_refused_with_28P01_changes_nothing_and_is_audited_without_a_secret(
        webmail, owner, mailbox):
    before = table_checksums(owner)
    assert change(webmail, mailbox, "not the password", NEW) == (False, "28P01", "the current password is wrong")
    assert verified(owner, mailbox, OLD)
    after = table_checksums(owner)
    assert {t for t in before if before[t] != after[t]} == {"audit_log", "password_failures"}
    [(login, acting, operation, changed, reason)] = audit(owner, mailbox)
    assert (login, operation, changed) == ("mailwebmail", "REFUSED", None)
    assert reason == "28P01: the current password is wrong (1 of 5 within 00:15:00)"
    everything = repr(owner.execute("SELECT * FROM audit_log").fetchall())
    assert "not the password" not in everything and NEW not in everything and OLD not in everything


@pytest.mark.parametrize("new, code, message", [
    ("short pw", "MB001", "the new password must have at least 12 characters"),
    (OLD, "MB002", "the new password must differ from the current one"),
    ("{local}-is-my-password", "MB003", 'the new password must not contain "{local}", the name in the address'),
    ("x" * 73, "22023", "password is longer than 72 bytes; bcrypt would ignore the rest"),
    ("$2y$10$" + "a" * 53, "22023",
     "the password looks like a password hash; to store an existing hash, use add_mailbox_hashed()"),
])
def test_a_new_password_against_the_policy_is_refused_with_its_own_sqlstate_and_changes_nothing(
        webmail, owner, mailbox, new, code, message):
    local = mailbox.split("@")[0]
    new, message = new.replace("{local}", local.upper()), message.replace("{local}", local)
    stored = owner.execute("SELECT password FROM users WHERE email = %s", (mailbox,)).fetchone()[0]
    assert change(webmail, mailbox, OLD, new) == (False, code, message)
    assert owner.execute("SELECT password FROM users WHERE email = %s", (mailbox,)).fetchone()[0] == stored
    assert audit(owner, mailbox)[-1][2:] == ("REFUSED", None, f"{code}: {message}")


def test_the_policy_is_settings_that_only_mailowner_changes(owner, webmail, mailbox):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with owner.transaction():
            owner.execute("SET LOCAL ROLE mailadmin")
            owner.execute("UPDATE settings SET password_min_length = 4")
    owner.execute("UPDATE settings SET password_min_length = 30")
    try:
        assert change(webmail, mailbox, OLD, NEW)[1:] == ("MB001", "the new password must have at least 30 characters")
    finally:
        owner.execute("UPDATE settings SET password_min_length = DEFAULT")
    assert owner.execute("SELECT changed FROM audit_log WHERE table_name = 'settings' ORDER BY id DESC LIMIT 1"
                         ).fetchone() == (["password_min_length"],)


def test_the_admin_paths_keep_their_own_rules_and_can_check_the_policy_first(owner):
    """The choice documented in migration 0050: add_mailbox/set_password/import do not apply
    the self-service policy; password_policy_error() lets a front-end hold them to it."""
    owner.execute("SET ROLE mailadmin")
    try:
        owner.execute("SELECT add_mailbox('short@example.com', 'short')")  # a temporary password
        assert owner.execute("SELECT password_policy_error('short@example.com', 'short')").fetchone() == (
            "the new password must have at least 12 characters",)
        assert owner.execute("SELECT password_policy_error('short@example.com', 'a long enough one')"
                             ).fetchone() == (None,)
    finally:
        owner.execute("SELECT remove_mailbox('short@example.com')")
        owner.execute("RESET ROLE")


def test_after_five_wrong_current_passwords_the_sixth_is_refused_unchecked_even_when_right(webmail, owner, mailbox):
    for n in range(5):
        assert change(webmail, mailbox, f"guess {n}", NEW)[1] == "28P01"
    changed, code, message = change(webmail, mailbox, OLD, NEW)
    assert (changed, code) == (False, "MB004")
    assert message in ("too many wrong current passwords: try again in 15 minute(s)",
                       "too many wrong current passwords: try again in 14 minute(s)")
    assert verified(owner, mailbox, OLD)
    rows = audit(owner, mailbox)
    assert [r[4].split(":")[0] for r in rows] == ["28P01"] * 5 + ["MB004"]
    assert rows[4][4].endswith("(5 of 5 within 00:15:00)") and rows[5][4].endswith("not checked")
    # the window passes (here: the failures are made older), and the right password works again
    owner.execute("UPDATE password_failures SET failed_at = ARRAY(SELECT t - interval '15 minutes'"
                  " FROM unnest(failed_at) t) WHERE email = %s", (mailbox,))
    assert change(webmail, mailbox, OLD, NEW)[0] is True
    assert owner.execute("SELECT count(*) FROM password_failures WHERE email = %s", (mailbox,)).fetchone() == (0,)


def test_set_password_by_the_help_desk_ends_a_lockout(webmail, owner, mailbox):
    for n in range(5):
        change(webmail, mailbox, f"guess {n}", NEW)
    assert change(webmail, mailbox, OLD, NEW)[1] == "MB004"
    owner.execute("SET ROLE mailadmin")
    owner.execute("SELECT set_password(%s, 'temporary pw')", (mailbox,))
    owner.execute("RESET ROLE")
    assert change(webmail, mailbox, "temporary pw", NEW)[0] is True


def test_racing_sessions_get_no_more_than_five_checks_between_them(webmail_dsn, owner, mailbox):
    """Eight sessions, each with two wrong guesses, start together: attempts on one mailbox
    take turns on its users row, so exactly five are checked and the rest refused unchecked."""
    barrier, codes, errors = threading.Barrier(8), [], []

    def attacker(i):
        try:
            with psycopg.connect(webmail_dsn, autocommit=True) as conn:
                barrier.wait()
                for j in range(2):
                    codes.append(change(conn, mailbox, f"guess {i}.{j}", NEW)[1])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=attacker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(codes) == ["28P01"] * 5 + ["MB004"] * 11
    assert [r[4].split(":")[0] for r in audit(owner, mailbox)].count("28P01") == 5


def test_an_unknown_mailbox_answers_like_a_wrong_password_and_is_audited(webmail, owner):
    assert change(webmail, "nobody@example.com", OLD, NEW) == (False, "28P01", "the current password is wrong")
    assert audit(owner, "nobody@example.com")[-1][4] == "28P01: no active mailbox of this address"


def test_a_hash_sql_cannot_check_is_refused_with_0A000_and_not_counted(webmail, owner):
    sha512 = "{SHA512-CRYPT}$6$rounds=5000$saltsalt$" + "a" * 86
    owner.execute("SET ROLE mailadmin")
    owner.execute("SELECT add_mailbox_hashed('sha@example.com', %s)", (sha512,))
    owner.execute("RESET ROLE")
    try:
        changed, code, message = change(webmail, "sha@example.com", "whatever it is", NEW)
        assert (changed, code) == (False, "0A000")
        assert message == ("this mailbox's password is stored as SHA512-CRYPT, which cannot be checked here:"
                           " ask your administrator to set a new one")
        assert owner.execute("SELECT count(*) FROM password_failures WHERE email = 'sha@example.com'"
                             ).fetchone() == (0,)
    finally:
        owner.execute("SELECT remove_mailbox('sha@example.com')")


@pytest.mark.parametrize("statement", [
    "SELECT email FROM public.users",
    "SELECT * FROM public.mailboxes",
    "SELECT * FROM public.audit_log",
    "SELECT * FROM public.settings",
    "SELECT * FROM public.password_failures",
    "SELECT public.verify_password('a@example.com', 'x')",
    "SELECT public.set_password('a@example.com', 'x')",
    "SELECT public.hash_password('x')",
    "SELECT public.password_matches('x', 'y')",
    "SELECT public.password_policy_error('a@example.com', 'x')",
    "SELECT public.add_domain('evil.example')",
    "SELECT crypto.crypt('x', 'y')",
    "SET ROLE mailadmin",
    "SET ROLE mailowner",
    "CREATE TEMP TABLE t (x int)",
    "CREATE TABLE public.t (x int)",
])
def test_a_mailwebmail_login_may_do_nothing_but_change_password(webmail, statement):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        webmail.execute(statement)


def test_a_mailwebmail_session_keeps_its_statements_out_of_the_log_and_pg_stat_activity(webmail):
    settings = dict(webmail.execute("SELECT name, setting FROM pg_settings WHERE name IN ('log_statement',"
                                    " 'log_min_duration_statement', 'log_min_error_statement', 'track_activities')"))
    assert settings == {"log_statement": "none", "log_min_duration_statement": "-1",
                        "log_min_error_statement": "panic", "track_activities": "off"}
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        webmail.execute("SET log_min_error_statement = error")


def test_passwords_never_reach_the_server_log_even_when_it_logs_every_statement(dsn, webmail_dsn, owner, cluster,
                                                                              mailbox):
    owner.execute(f'ALTER DATABASE "{DB}" SET log_statement = "all"')
    try:
        with psycopg.connect(webmail_dsn, autocommit=True) as conn:
            # Roundcube writes the passwords into the text, as literals, never as parameters
            conn.execute(f"SELECT 1 FROM public.change_password('{mailbox}', 'wrong-{mailbox}', 'new-{mailbox}')")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT public.hash_password('secret-in-an-error-{mailbox}')")
        with psycopg.connect(dsn, autocommit=True) as other:
            other.execute(f"SELECT 'logged-{mailbox}'")  # the control: this database logs statements
    finally:
        owner.execute(f'ALTER DATABASE "{DB}" RESET log_statement')
    log = cluster.log.read_text(errors="replace")
    assert f"logged-{mailbox}" in log
    assert f"wrong-{mailbox}" not in log and f"new-{mailbox}" not in log and f"secret-in-an-error-{mailbox}" not in log
    assert "permission denied for function hash_password" in log  # the error itself is logged, its statement not
