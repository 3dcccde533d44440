"""Login networks (issue 33, item 4) through a real Dovecot (2.3 here, 2.4 in the Debian 13
root): `mailbook mailbox|domain networks set` restricts where a mailbox may log in from,
and Dovecot's allow_nets, returned by both passdb queries of `mailbook dovecot install`,
enforces it. A mailbox's list replaces its domain's; an app password is held to the same
networks as the main one; a mailbox with no list (NULL) logs in from anywhere. Clients
come from 127.0.0.1 and 127.0.0.2 (both this host's: the whole of 127/8 is loopback).

Needs root (Dovecot's mail processes switch users).
"""

from __future__ import annotations

import psycopg
import pytest

from mailbook.dovecot import APP_PASSWORDS_CONF
from tests.harness.dovecot import dovecot_with_mailboxes, imap_login
from tests.harness.process import cli

TARGET, AUTH_PW = "login_networks", "nets-auth-pw"
FOO, BAR = "foo@example.com", "bar@example.com"
PASSWORDS = {FOO: "main secret foo", BAR: "main secret bar"}
HERE, OTHER = "127.0.0.1", "127.0.0.2"
REFUSED = 77  # doveadm auth test: refused


@pytest.fixture(scope="module")
def setup(cluster):
    with dovecot_with_mailboxes(cluster, TARGET, AUTH_PW, PASSWORDS, "the login network tests") as both:
        yield both


@pytest.fixture
def nets(setup):
    """The Dovecot and DSN, with every list cleared afterwards."""
    dc, dsn = setup
    yield dc, dsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE users SET login_networks = NULL WHERE login_networks IS NOT NULL")
        conn.execute("UPDATE transports SET login_networks = NULL WHERE login_networks IS NOT NULL")


def code(dc, user: str, rip: str | None, password: str | None = None, service: str = "imap") -> int:
    """doveadm auth test from client address rip: 0 logged in, 77 refused (refusals are
    checked this way, not by IMAP logins, which Dovecot's auth penalty slows down)."""
    return dc.auth_test(user, password or PASSWORDS[user], service, rip=rip).returncode


def test_mailbox_networks_enforced(nets):
    """A mailbox allowed 127.0.0.1/32 logs in over IMAP from 127.0.0.1 and is refused from
    127.0.0.2, for IMAP and for Postfix's SASL (smtp) alike; a login whose client address
    Dovecot does not know (doveadm without rip) is refused too."""
    dc, dsn = nets
    r = cli(["mailbox", "networks", "set", FOO, "127.0.0.1/32", "--dsn", dsn], check=True)
    assert r.stdout == "foo@example.com may log in from 127.0.0.1/32 only\n", r
    assert imap_login(dc, FOO, PASSWORDS[FOO], source=HERE), dc.log_errors()
    assert not imap_login(dc, FOO, PASSWORDS[FOO], source=OTHER)
    assert code(dc, FOO, HERE) == 0 and code(dc, FOO, HERE, service="smtp") == 0
    assert code(dc, FOO, OTHER) == REFUSED and code(dc, FOO, OTHER, service="smtp") == REFUSED
    assert code(dc, FOO, None) == REFUSED
    assert code(dc, BAR, OTHER) == 0, "another mailbox of the domain is not restricted"


def test_domain_list_and_mailbox_override(nets):
    """A domain's list applies to its mailboxes without one of their own; a mailbox's own
    list replaces it (not added to it): the domain allows 127.0.0.2, foo only 127.0.0.1."""
    dc, dsn = nets
    cli(["domain", "networks", "set", "example.com", "127.0.0.2", "--dsn", dsn], check=True)
    assert code(dc, BAR, OTHER) == 0 and code(dc, BAR, HERE) == REFUSED
    assert code(dc, FOO, OTHER) == 0 and code(dc, FOO, HERE) == REFUSED
    cli(["mailbox", "networks", "set", FOO, "127.0.0.1", "::1", "--dsn", dsn], check=True)
    assert code(dc, FOO, HERE) == 0 and code(dc, FOO, OTHER) == REFUSED
    assert code(dc, FOO, "::1") == 0
    assert code(dc, BAR, OTHER) == 0 and code(dc, BAR, HERE) == REFUSED, "the others keep the domain's"
    shown = cli(["mailbox", "networks", "show", FOO, "--json", "--dsn", dsn], check=True).stdout
    assert '"effective": [\n      "127.0.0.1/32",\n      "::1/128"\n    ]' in shown, shown
    r = cli(["mailbox", "networks", "clear", FOO, "--dsn", dsn], check=True)
    assert "cleared" in r.stdout
    assert code(dc, FOO, OTHER) == 0 and code(dc, FOO, HERE) == REFUSED, "back to the domain's list"
    cli(["domain", "networks", "clear", "example.com", "--dsn", dsn], check=True)
    assert code(dc, FOO, HERE) == 0 and code(dc, BAR, HERE) == 0


def test_app_password_same_networks(nets):
    """An app password logs in from the mailbox's networks only, like the main password:
    Dovecot's second passdb returns allow_nets too."""
    dc, dsn = nets
    r = cli(["mailbox", "app-password", "add", FOO, "phone", "--service", "imap", "--dsn", dsn], check=True)
    [app] = r.stdout.split()
    assert code(dc, FOO, OTHER, app) == 0, "no list yet: from anywhere"
    cli(["mailbox", "networks", "set", FOO, "127.0.0.1/32", "--dsn", dsn], check=True)
    assert code(dc, FOO, HERE, app) == 0
    assert code(dc, FOO, OTHER, app) == REFUSED
    assert imap_login(dc, FOO, app, source=HERE)
    cli(["domain", "networks", "set", "example.com", "127.0.0.2/32", "--dsn", dsn], check=True)
    assert code(dc, FOO, OTHER, app) == REFUSED, "the mailbox's list still wins"
    cli(["mailbox", "networks", "clear", FOO, "--dsn", dsn], check=True)
    assert code(dc, FOO, OTHER, app) == 0 and code(dc, FOO, HERE, app) == REFUSED, "now the domain's"


def test_no_list_logs_in_from_anywhere(nets):
    """Without a list (NULL, the default) Dovecot gets no allow_nets at all: logins from
    any address, and from doveadm with no client address, work as before."""
    dc, _ = nets
    for rip in (HERE, OTHER, "::1", None):
        assert code(dc, FOO, rip) == 0, rip
    assert imap_login(dc, FOO, PASSWORDS[FOO], source=OTHER), dc.log_errors()


ALLOW_NETS = "array_to_string(coalesce(u.login_networks, t.login_networks), ',') AS allow_nets"


def test_empty_allow_nets_refuses_all(nets):
    """Why an empty list is refused (a CHECK) and no list is NULL, not '': given an empty
    allow_nets, Dovecot refuses every login, from any address. Played by rewriting the
    installed queries to answer '' for a moment."""
    dc, _ = nets
    files = [f for f in (dc.sql_conf, dc.sql_conf.parent / APP_PASSWORDS_CONF) if f.exists()]  # 2.4: one file
    installed = {f: f.read_text() for f in files}
    assert sum(text.count(ALLOW_NETS) for text in installed.values()) == 2, "both passdbs return allow_nets"
    try:
        for f, text in installed.items():
            f.write_text(text.replace(ALLOW_NETS, "''::text AS allow_nets"))
        dc.stop()
        dc.start()
        for rip in (HERE, OTHER, None):
            assert code(dc, FOO, rip) == REFUSED, rip
    finally:
        for f, text in installed.items():
            f.write_text(text)
        dc.stop()
        dc.start()
    assert code(dc, FOO, OTHER) == 0


def test_bad_network_one_line_nothing_changed(nets):
    """A network with host bits set, or no network at all, is refused in one line naming
    the value, and the list stays as it was; a domain not hosted likewise."""
    dc, dsn = nets
    cli(["mailbox", "networks", "set", FOO, "127.0.0.1/32", "--dsn", dsn], check=True)
    for bad in ("127.0.0.1/8", "office"):
        r = cli(["mailbox", "networks", "set", FOO, "127.0.0.2", bad, "--dsn", dsn])
        assert r.exit_code == 1 and r.stderr.count("\n") == 1 and f'"{bad}"' in r.stderr, r
    r = cli(["domain", "networks", "show", "nothere.test", "--dsn", dsn])
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "not hosted" in r.stderr, r
    assert code(dc, FOO, HERE) == 0 and code(dc, FOO, OTHER) == REFUSED
    shown = cli(["domain", "networks", "show", "example.com", "--dsn", dsn], check=True).stdout
    assert "example.com" in shown and "127.0.0.1" not in shown, shown
