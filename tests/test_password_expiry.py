"""Password expiry (issue 33, item 3) through a real Dovecot (2.3 here, 2.4 in the Debian 13
root): past its maximum age (`mailbook domain|mailbox password-age set`) a password is
refused over IMAP with the reason in the NO response, after Dovecot checked it (a wrong
one is refused as any wrong password, telling nothing), and for Postfix's SASL (smtp);
a fresh one logs in; logins from the webmail's network (settings.
password_expiry_exempt_networks, here 127.0.0.2) still work, so the user reaches the
webmail's form, and change_password() (as the webmail calls it) makes the password
work everywhere again. App passwords do not expire with the main one. Clients come from
127.0.0.2 (the webmail) and 127.0.0.3 (anyone else); the whole of 127/8 is this host.

Needs root (Dovecot's mail processes switch users).
"""

from __future__ import annotations

import psycopg
import pytest

from tests.harness.dovecot import dovecot_with_mailboxes, imap_login, imap_login_answer
from tests.harness.process import cli

TARGET, AUTH_PW = "password_expiry", "expiry-auth-pw"
FOO, BAR = "foo@example.com", "bar@example.com"
PASSWORDS = {FOO: "main secret foo", BAR: "main secret bar"}
WEBMAIL, OTHER = "127.0.0.2", "127.0.0.3"
REASON = "Your password has expired: change it in webmail."
REFUSED = 77  # doveadm auth test: refused


@pytest.fixture(scope="module")
def setup(cluster):
    """example.com's two mailboxes behind a started Dovecot; the webmail's network exempt."""
    with dovecot_with_mailboxes(cluster, TARGET, AUTH_PW, PASSWORDS, "the password expiry tests") as (dc, dsn):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE settings SET password_expiry_exempt_networks = '{127.0.0.2/32}'")
        yield dc, dsn


@pytest.fixture
def expired(setup):
    """The Dovecot and DSN, with example.com's passwords expiring after 30 days and foo's
    set 31 days ago; afterwards no age, the passwords as they were, set now."""
    dc, dsn = setup
    cli(["domain", "password-age", "set", "example.com", "30", "--dsn", dsn], check=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE users SET password_changed = now() - interval '31 days' WHERE email = %s", (FOO,))
    yield dc, dsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE transports SET password_max_age = NULL")
        conn.execute("UPDATE users SET password_max_age = NULL")
        conn.execute("DELETE FROM app_passwords")
        conn.execute("SET ROLE mailadmin")
        for address, password in PASSWORDS.items():
            conn.execute("SELECT set_password(%s, %s)", (address, password))


def test_expired_refused_with_reason(expired):
    """An expired password is refused over IMAP with the reason in the NO response, and for
    Postfix's SASL (smtp, which ignores nologin: the row is left out); a fresh password of
    the same domain logs in; `mailbook mailbox expiring` names the expired one."""
    dc, dsn = expired
    answer = imap_login_answer(dc, FOO, PASSWORDS[FOO], OTHER)
    assert REASON in answer, (answer, dc.log_errors())
    assert imap_login(dc, BAR, PASSWORDS[BAR], source=OTHER), dc.log_errors()
    assert dc.auth_test(FOO, PASSWORDS[FOO], "smtp", rip=OTHER).returncode == REFUSED
    assert dc.auth_test(BAR, PASSWORDS[BAR], "smtp", rip=OTHER).returncode == 0
    r = cli(["mailbox", "expiring", "--days", "14", "--json", "--dsn", dsn], check=True)
    assert f'"email": "{FOO}"' in r.stdout and BAR not in r.stdout, r.stdout


def test_wrong_password_tells_nothing(expired):
    """A wrong password for an expired mailbox is refused as any wrong password: no reason,
    no nologin; Dovecot applies nologin only once the password matched."""
    dc, _ = expired
    answer = imap_login_answer(dc, FOO, "not the password", OTHER)
    assert answer != "OK" and "expired" not in answer.lower(), answer
    r = dc.auth_test(FOO, "not the password", "imap", rip=OTHER)
    assert r.returncode == REFUSED and "nologin" not in r.stdout + r.stderr and "expired" not in r.stdout, r
    r = dc.auth_test(FOO, PASSWORDS[FOO], "imap", rip=OTHER)  # doveadm shows what the login process gets
    assert "nologin" in r.stdout and REASON in r.stdout, r


def test_webmail_network_exempt(expired):
    """From the webmail's network (settings.password_expiry_exempt_networks) an expired
    password still logs in over IMAP, so its user reaches the password form; from
    elsewhere it is refused."""
    dc, _ = expired
    assert imap_login(dc, FOO, PASSWORDS[FOO], source=WEBMAIL), dc.log_errors()
    assert REASON in imap_login_answer(dc, FOO, PASSWORDS[FOO], OTHER)


def test_change_password_revives(expired):
    """change_password(), as the webmail calls it (two committed calls as mailwebmail),
    sets a new password and its date: it logs in from anywhere again, and the mailbox
    leaves `mailbook mailbox expiring`."""
    dc, dsn = expired
    new = "a brand new secret"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE mailwebmail")
        ticket, code, _ = conn.execute("SELECT * FROM check_current_password(%s, %s)", (FOO, PASSWORDS[FOO])).fetchone()
        assert code == "00000"
        changed = conn.execute("SELECT changed, code FROM change_password(%s, %s, %s)", (FOO, ticket, new)).fetchone()
        assert changed == (True, "00000")
    assert imap_login(dc, FOO, new, source=OTHER), dc.log_errors()
    assert dc.auth_test(FOO, new, "smtp", rip=OTHER).returncode == 0
    r = cli(["mailbox", "expiring", "--days", "14", "--dsn", dsn], check=True)
    assert r.stdout == "(none)\n", r.stdout


def test_mailbox_age_wins(expired):
    """A mailbox's own age replaces its domain's: 60 days lets foo in again, 0 never
    expires, and clearing it brings back the domain's 30."""
    dc, dsn = expired
    cli(["mailbox", "password-age", "set", FOO, "60", "--dsn", dsn], check=True)
    assert imap_login(dc, FOO, PASSWORDS[FOO], source=OTHER), dc.log_errors()
    cli(["mailbox", "password-age", "set", FOO, "0", "--dsn", dsn], check=True)
    assert imap_login(dc, FOO, PASSWORDS[FOO], source=OTHER), dc.log_errors()
    r = cli(["mailbox", "password-age", "clear", FOO, "--dsn", dsn], check=True)
    assert "cleared" in r.stdout
    assert REASON in imap_login_answer(dc, FOO, PASSWORDS[FOO], OTHER)


def test_app_password_not_expired(expired):
    """An app password logs in while the main password is expired: the second passdb does
    not look at the main password's age, and the first one's refusal adds nothing to it."""
    dc, dsn = expired
    r = cli(["mailbox", "app-password", "add", FOO, "phone", "--service", "imap", "--dsn", dsn], check=True)
    [app] = r.stdout.split()
    assert imap_login(dc, FOO, app, source=OTHER), dc.log_errors()
    r = dc.auth_test(FOO, app, "imap", rip=OTHER)
    assert r.returncode == 0 and "nologin" not in r.stdout, r
