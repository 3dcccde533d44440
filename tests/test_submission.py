"""Logging in to send and to read, through the real daemons: Postfix's submission
service as main.cf.snippet shows it (SASL through Dovecot's auth socket,
reject_sender_login_mismatch with sender-login.cf) and Dovecot's IMAP.

Send-as: a logged-in mailbox may send as its own address, the aliases that forward to
it, the same local part in an alias domain and the addresses granted with
allow_send_as(); any other sender is refused with 553, and a grant taken back stops
working at once.

Per-service access: a mailbox or a whole domain kept out of one service (smtp, imap,
pop3, sieve) cannot log in there and still can everywhere else; its mail still arrives."""

from __future__ import annotations

import imaplib
from contextlib import ExitStack

import pytest

from mailbook.files import write_private
from tests.harness.database import mail_database, sql
from tests.harness.dovecot import install_dovecot
from tests.harness.postfix import Postfix, install_postfix
from tests.harness.process import cli, daemon_root, require_root, started

DB = "sendas"
READER_PW = "reader-pw-send-as"
AUTH_PW = "auth-pw-send-as"
FOO_PW = "foo's submission pw"


@pytest.fixture(scope="module")
def admin_dsn(cluster):
    require_root()
    with mail_database(cluster, DB, mailreader=READER_PW, mailauth=AUTH_PW) as dsn:
        sql(dsn, "SELECT add_domain('example.com')")
        sql(dsn, "SELECT add_mailbox('foo@example.com', %s)", FOO_PW)
        sql(dsn, "SELECT add_mailbox('bar@example.com', 'bar pw bar')")
        sql(dsn, "SELECT add_mailbox('sleepy@example.com', 'sleepy pw')")
        sql(dsn, "SELECT add_alias('team@example.com', 'foo@example.com')")
        sql(dsn, "SELECT add_alias('team@example.com', 'bar@example.com')")
        sql(dsn, "SELECT add_alias('@example.com', 'foo@example.com')")  # a catch-all grants nothing
        sql(dsn, "SELECT add_alias_domain('example.net', 'example.com')")
        yield dsn


@pytest.fixture(scope="module")
def daemons(admin_dsn, cluster):
    with ExitStack() as stop:  # a Dovecot that fails to start leaves no Postfix behind
        root = stop.enter_context(daemon_root("mailbook-sendas-"))
        auth_pw = root / "auth.pw"
        write_private(auth_pw, AUTH_PW + "\n")
        pf = started(stop, install_postfix(root, cluster, DB, READER_PW, submission=True))
        dovecot = install_dovecot(root, pf.mail, "--port", str(cluster.port), "--dbname", DB,
                                  "--password-file", str(auth_pw), postfix=pf)
        yield pf, started(stop, dovecot)


@pytest.fixture(scope="module")
def postfix(daemons):
    return daemons[0]


@pytest.fixture(scope="module")
def dovecot(daemons):
    return daemons[1]


def submit(postfix: Postfix, sender: str, login: str | None = "foo@example.com", password: str = FOO_PW,
           subject: str | None = None) -> tuple[int, str]:
    return postfix.submit(login, password, sender, "bar@example.com", subject)


def test_a_logged_in_mailbox_sends_as_itself_and_the_message_is_delivered(postfix):
    code, msg = submit(postfix, "foo@example.com", subject="submitted by foo")
    assert code == 250, msg
    postfix.delivered("example.com/bar/", "submitted by foo")


def test_a_mailbox_sends_as_its_aliases_and_through_an_alias_domain(postfix):
    assert submit(postfix, "team@example.com")[0] == 250       # forwards to foo (and bar)
    assert submit(postfix, "foo@example.net")[0] == 250        # its own local part in the alias domain
    assert submit(postfix, "Team@Example.NET")[0] == 250


def test_nobody_sends_as_another_mailbox_a_catch_all_or_a_foreign_address(postfix):
    for sender in ("bar@example.com", "bar@example.net", "nobody@example.com", "someone@elsewhere.example"):
        code, msg = submit(postfix, sender)
        assert code == 553 and "not owned by user foo@example.com" in msg, (sender, code, msg)


def test_a_grant_works_at_once_and_stops_working_when_taken_back(postfix, admin_dsn):
    assert submit(postfix, "info@example.com")[0] == 553
    assert submit(postfix, "foo@elsewhere.example")[0] == 553
    cli(["sendas", "allow", "foo@example.com", "info@example.com", "Foo@Elsewhere.example", "--dsn", admin_dsn],
        check=True)
    code, msg = submit(postfix, "info@example.com", subject="foo as info")
    assert code == 250, msg
    postfix.delivered("example.com/bar/", "foo as info")
    assert submit(postfix, "foo@elsewhere.example")[0] == 250   # an address hosted elsewhere
    assert submit(postfix, "info@example.net")[0] == 250        # the grant, through the alias domain
    # bar was not granted info@: still refused
    assert submit(postfix, "info@example.com", login="bar@example.com", password="bar pw bar")[0] == 553
    cli(["sendas", "disallow", "foo@example.com", "info@example.com", "--dsn", admin_dsn], check=True)
    assert submit(postfix, "info@example.com")[0] == 553
    assert submit(postfix, "foo@elsewhere.example")[0] == 250
    cli(["sendas", "disallow", "foo@example.com", "--dsn", admin_dsn], check=True)
    assert submit(postfix, "foo@elsewhere.example")[0] == 553


def test_a_disabled_mailbox_can_neither_log_in_nor_lend_its_grants(postfix, admin_dsn):
    sql(admin_dsn, "SELECT allow_send_as('sleepy@example.com', 'shared@example.com')")
    assert submit(postfix, "shared@example.com", login="sleepy@example.com", password="sleepy pw")[0] == 250
    sql(admin_dsn, "SELECT set_mailbox_active('sleepy@example.com', false)")
    code, msg = submit(postfix, "shared@example.com", login="sleepy@example.com", password="sleepy pw")
    assert code == 535, (code, msg)                             # Dovecot refuses the login
    assert lookup_logins(admin_dsn, "shared@example.com") == []  # and the map names nobody
    sql(admin_dsn, "SELECT remove_mailbox('sleepy@example.com')")
    assert sql(admin_dsn, "SELECT count(*) FROM send_as WHERE login = 'sleepy@example.com'") == [(0,)]


def lookup_logins(dsn: str, address: str) -> list[str]:
    local, _, domain = address.partition("@")
    return [r[0] for r in sql(dsn, "SELECT postfix_sender_logins(%s, %s)", local, domain)]


def test_without_logging_in_nobody_sends_as_a_hosted_address(postfix):
    code, msg = submit(postfix, "foo@example.com", login=None)
    assert code == 553, (code, msg)


def test_a_wrong_password_is_refused_by_dovecot(postfix):
    code, _ = submit(postfix, "foo@example.com", password="not foo's password")
    assert code == 535


# -- per-service access -----------------------------------------------------------------

def imap_login(dovecot, user: str, password: str) -> bool:
    with imaplib.IMAP4("127.0.0.1", dovecot.port) as imap:
        try:
            imap.login(user, password)
        except imaplib.IMAP4.error:
            return False
        imap.logout()
        return True


def auth(dovecot, user: str, password: str, service: str) -> bool:
    """Dovecot's own passdb decision for a service (doveadm auth test -x service=...)."""
    return dovecot.auth_test(user, password, service).returncode == 0


def test_a_mailbox_kept_out_of_one_service_still_logs_in_to_the_others(postfix, dovecot, admin_dsn):
    sql(admin_dsn, "SELECT add_mailbox('svc@example.com', 'svc pw svc')")
    assert submit(postfix, "svc@example.com", login="svc@example.com", password="svc pw svc")[0] == 250
    assert imap_login(dovecot, "svc@example.com", "svc pw svc")
    cli(["mailbox", "deny", "svc@example.com", "smtp", "pop3", "--dsn", admin_dsn], check=True)
    code, msg = submit(postfix, "svc@example.com", login="svc@example.com", password="svc pw svc")
    assert code == 535, (code, msg)                                     # no submission
    assert not auth(dovecot, "svc@example.com", "svc pw svc", "pop3")
    assert imap_login(dovecot, "svc@example.com", "svc pw svc")         # IMAP still
    assert auth(dovecot, "svc@example.com", "svc pw svc", "sieve")
    postfix.send("svc@example.com", "inbound for svc")                 # and its mail arrives
    postfix.delivered("example.com/svc/", "inbound for svc")
    cli(["mailbox", "deny", "svc@example.com", "imap", "--dsn", admin_dsn], check=True)
    assert not imap_login(dovecot, "svc@example.com", "svc pw svc")
    cli(["mailbox", "allow", "svc@example.com", "smtp", "imap", "--dsn", admin_dsn], check=True)
    assert submit(postfix, "svc@example.com", login="svc@example.com", password="svc pw svc")[0] == 250
    assert imap_login(dovecot, "svc@example.com", "svc pw svc")
    assert not auth(dovecot, "svc@example.com", "svc pw svc", "pop3")


def test_domain_switch_covers_all(postfix, dovecot, admin_dsn):
    """The domain switch covers every mailbox and active still overrides all."""
    cli(["domain", "deny", "example.com", "imap", "--dsn", admin_dsn], check=True)
    try:
        assert not imap_login(dovecot, "foo@example.com", FOO_PW)
        assert submit(postfix, "foo@example.com")[0] == 250             # the other services stay
        # a mailbox cannot opt back in past its domain
        sql(admin_dsn, "SELECT set_mailbox_service('foo@example.com', 'imap', true)")
        assert not imap_login(dovecot, "foo@example.com", FOO_PW)
    finally:
        cli(["domain", "allow", "example.com", "imap", "--dsn", admin_dsn], check=True)
    assert imap_login(dovecot, "foo@example.com", FOO_PW)
    sql(admin_dsn, "SELECT set_domain_active('example.com', false)")
    try:
        assert not imap_login(dovecot, "foo@example.com", FOO_PW)
        assert submit(postfix, "foo@example.com")[0] == 535
    finally:
        sql(admin_dsn, "SELECT set_domain_active('example.com', true)")


# -- quotas and per-domain caps ---------------------------------------------------------

def test_dovecot_enforces_the_quota_the_userdb_hands_over(dovecot, admin_dsn):
    sql(admin_dsn, "SELECT add_mailbox('quota@example.com', 'quota pw quota')")
    cli(["mailbox", "quota", "quota@example.com", "--bytes", "2000", "--messages", "2", "--dsn", admin_dsn], check=True)
    r = dovecot.doveadm("user", "quota@example.com")
    assert r.returncode == 0 and all(f in r.stdout for f in dovecot.quota_fields(2000, 2)), r.stdout + r.stderr
    r = dovecot.doveadm("quota", "get", "-u", "quota@example.com")
    assert r.returncode == 0, r.stderr
    message_limit = [line.split()[-2] for line in r.stdout.splitlines() if " MESSAGE " in line]
    assert message_limit == ["2"], r.stdout
    # an IMAP APPEND past the byte limit is refused by Dovecot's quota plugin
    with imaplib.IMAP4("127.0.0.1", dovecot.port) as imap:
        imap.login("quota@example.com", "quota pw quota")
        assert imap.append("INBOX", None, None, b"Subject: small\r\n\r\nfits\r\n")[0] == "OK"
        status, detail = imap.append("INBOX", None, None, b"Subject: big\r\n\r\n" + b"x" * 4000 + b"\r\n")
        assert status == "NO" and b"OVERQUOTA" in detail[0], (status, detail)
        imap.logout()


def test_a_domain_cap_refuses_the_next_mailbox_and_alias_in_one_line(admin_dsn):
    cli(["domain", "add", "capped.example", "--dsn", admin_dsn], check=True)
    cli(["domain", "limits", "capped.example", "--mailboxes", "1", "--aliases", "1", "--dsn", admin_dsn], check=True)
    sql(admin_dsn, "SELECT add_mailbox('one@capped.example', 'pw one one')")
    r = cli(["mailbox", "add", "two@capped.example", "--password-stdin", "--dsn", admin_dsn], input="pw two two\n")
    assert r.exit_code == 1 and 'domain "capped.example" allows at most 1 mailbox(es)' in r.stderr, r
    assert len(r.stderr.splitlines()) == 1
    cli(["alias", "add", "a@capped.example", "one@capped.example", "--dsn", admin_dsn], check=True)
    r = cli(["alias", "add", "b@capped.example", "one@capped.example", "--dsn", admin_dsn])
    assert r.exit_code == 1 and "at most 1 alias(es)" in r.stderr, r
