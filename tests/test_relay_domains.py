"""Relay and backup-MX domains, through a real Postfix: a domain whose transport is
smtp:[host]:port is accepted at RCPT and passed on to that host (a small SMTP receiver
here), never delivered into a mailbox; the tables refuse mailboxes in it."""

from __future__ import annotations

import socketserver
import threading
import time

import psycopg
import pytest

from mailbook.demo.cluster import free_port
from tests.harness.database import mail_database
from tests.harness.postfix import install_postfix
from tests.harness.process import cli, private_dir, remove, require_root

DB = "relaydomains"
READER_PW = "reader-pw-relay-domains"


class NextHop(socketserver.ThreadingTCPServer):
    """The next hop: a minimal SMTP server that keeps what it receives."""
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port: int):
        self.received: list[tuple[list[str], str]] = []
        super().__init__(("127.0.0.1", port), _Session)


class _Session(socketserver.StreamRequestHandler):
    def handle(self):
        rcpts, out = [], self.wfile
        out.write(b"220 nexthop.test ESMTP\r\n")
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                out.write(b"250 nexthop.test\r\n")
            elif verb == b"MAIL":
                rcpts = []
                out.write(b"250 ok\r\n")
            elif verb == b"RCPT":
                rcpts.append(line.decode().split(":", 1)[1].strip().strip("<>").split(">")[0])
                out.write(b"250 ok\r\n")
            elif verb == b"DATA":
                out.write(b"354 go ahead\r\n")
                body = []
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    body.append(data.decode(errors="replace"))
                self.server.received.append((rcpts, "".join(body)))
                out.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                out.write(b"221 bye\r\n")
                return
            else:
                out.write(b"250 ok\r\n")


@pytest.fixture(scope="module")
def next_hop():
    server = NextHop(free_port())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def admin_dsn(cluster, next_hop):
    require_root()
    with mail_database(cluster, DB, mailreader=READER_PW) as dsn:
        cli(["domain", "add", "example.com", "--dsn", dsn], check=True)
        cli(["domain", "add", "relayed.example", "--transport", f"smtp:[127.0.0.1]:{next_hop.server_address[1]}",
             "--dsn", dsn], check=True)
        yield dsn


@pytest.fixture(scope="module")
def postfix(admin_dsn, cluster):
    root = private_dir("mailbook-relay-")
    pf = install_postfix(root, cluster, DB, READER_PW)
    try:  # stopped also when the start fails half-way
        pf.start()
        yield pf
    finally:
        pf.stop()
        remove(root)


def test_mail_for_a_relay_domain_is_accepted_and_passed_on_to_its_next_hop(postfix, next_hop):
    assert postfix.rcpt("anyone@relayed.example")[0] == 250
    postfix.send("someone@relayed.example", "for the next hop")
    deadline = time.time() + 30
    while time.time() < deadline and not next_hop.received:
        time.sleep(0.2)
    assert next_hop.received, postfix.log_text()[-3000:]
    rcpts, body = next_hop.received[0]
    assert rcpts == ["someone@relayed.example"] and "Subject: for the next hop" in body
    assert not (postfix.mail / "relayed.example").exists()            # nothing delivered here
    assert postfix.rcpt("someone@unhosted.example")[0] == 554         # still no open relay


def test_relay_domain_no_mailboxes(admin_dsn):
    """A relay domain holds no mailboxes and a domain with mailboxes cannot become one."""
    r = cli(["mailbox", "add", "x@relayed.example", "--password-stdin", "--dsn", admin_dsn], input="pw pw pw\n")
    assert r.exit_code == 1 and 'domain "relayed.example" is relayed to "smtp:[127.0.0.1]:' in r.stderr, r
    assert "23514" in r.stderr and len(r.stderr.splitlines()) == 1
    cli(["mailbox", "add", "foo@example.com", "--password-stdin", "--dsn", admin_dsn], input="pw pw pw\n", check=True)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:   # the owner's DML meets the rule too
        with pytest.raises(psycopg.errors.CheckViolation, match="holds no mailboxes"):
            conn.execute("UPDATE transports SET transport = 'smtp:[backup.example]' WHERE domain = 'example.com'")


def test_alias_into_relay_domain(
        admin_dsn, postfix, next_hop, tmp_path):
    """An alias may forward into a relay domain by hand or by import and mail reaches the next
    hop."""
    # the next hop alone knows a relay domain's addresses: a destination there is remote,
    # accepted like any address elsewhere, by add_alias() and by the import alike
    cli(["alias", "add", "team@example.com", "desk@relayed.example", "--dsn", admin_dsn], check=True)
    f = tmp_path / "aliases.csv"
    f.write_text("kind,address,destination\nalias,ops@example.com,oncall@relayed.example\n")
    cli(["import", str(f), "--dsn", admin_dsn], check=True)
    # an address of a domain delivered here must still exist
    r = cli(["alias", "add", "typo@example.com", "nobody@example.com", "--dsn", admin_dsn])
    assert r.exit_code == 1 and "is in a domain hosted here but is no mailbox or alias" in r.stderr, r
    next_hop.received.clear()
    postfix.send("team@example.com", "through the alias")
    postfix.send("ops@example.com", "through the imported alias")
    deadline = time.time() + 30
    while time.time() < deadline and len(next_hop.received) < 2:
        time.sleep(0.2)
    got = sorted((rcpts, body.split("Subject: ")[1].splitlines()[0]) for rcpts, body in next_hop.received)
    assert got == [(["desk@relayed.example"], "through the alias"),
                   (["oncall@relayed.example"], "through the imported alias")], postfix.log_text()[-3000:]
