"""`mailbook hba` against a real server: the lines load without error, and then the
service roles reach the mail database (socket and loopback, SCRAM) and nothing else does."""

from __future__ import annotations

import ipaddress
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from mailbook.demo.cluster import SUPERUSER, PrivateCluster
from mailbook.passwords import set_role_password
from tests.harness.process import cli


@pytest.fixture(scope="module")
def hba_cluster():
    """A cluster of its own: its pg_hba.conf is replaced by mailbook's lines."""
    c = PrivateCluster(Path(tempfile.mkdtemp(prefix="mailbook-hba-")), durable=False)
    c.start()
    cli(["init", "--dsn", c.dsn()], check=True)
    with psycopg.connect(c.dsn(), autocommit=True) as conn:
        set_role_password(conn, "mailreader", "reader-pw-for-tests")
        set_role_password(conn, "mailauth", "auth-pw-for-tests")
        set_role_password(conn, "mailwebmail", "webmail-pw-for-tests")
        conn.execute("CREATE ROLE bob LOGIN IN ROLE mailadmin")
        set_role_password(conn, "bob", "bob-pw-for-tests")
    lines = cli(["hba"], check=True).stdout
    (c.data / "pg_hba.conf").write_text(f"local all {SUPERUSER} trust\n" + lines)
    with psycopg.connect(c.dsn(), autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
    # the postmaster reloads asynchronously: wait until the old "host all all" line is gone
    deadline = time.monotonic() + 20
    while reaches(c, "127.0.0.1", "postgres", "mailreader", "reader-pw-for-tests"):
        assert time.monotonic() < deadline, "pg_hba.conf was not reloaded"
        time.sleep(0.1)
    yield c
    c.destroy()


def reaches(c: PrivateCluster, host: str, dbname: str, user: str, password: str) -> bool:
    try:
        with psycopg.connect(host=host, port=c.port, dbname=dbname, user=user, password=password, connect_timeout=5):
            return True
    except psycopg.OperationalError as exc:
        assert "no pg_hba.conf entry" in str(exc) or "password authentication failed" in str(exc), exc
        return False


def test_hba_lines_load_without_error_and_grant_nothing_broader(hba_cluster):
    with psycopg.connect(hba_cluster.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL").fetchall() == []
        rules = conn.execute("SELECT type, database, user_name, address, auth_method FROM pg_hba_file_rules"
                             " WHERE user_name <> ARRAY[%s]", (SUPERUSER,)).fetchall()
    assert {(t, a) for t, _, _, a, _ in rules} == {("local", None), ("host", "127.0.0.1"), ("host", "::1")}
    assert {tuple(d) for _, d, _, _, _ in rules} == {("mail",)}
    assert {tuple(u) for _, _, u, _, _ in rules} == {("mailreader",), ("mailauth",), ("mailquota",), ("mailwebmail",),
                                                            ("maildkim",)}
    assert {m for *_, m in rules} == {"scram-sha-256"}


@pytest.mark.parametrize("via", ["socket", "loopback"])
def test_service_roles_reach_the_mail_database_with_their_passwords(hba_cluster, via):
    host = hba_cluster.host if via == "socket" else "127.0.0.1"
    assert reaches(hba_cluster, host, "mail", "mailreader", "reader-pw-for-tests")
    assert reaches(hba_cluster, host, "mail", "mailauth", "auth-pw-for-tests")
    assert reaches(hba_cluster, host, "mail", "mailwebmail", "webmail-pw-for-tests")


@pytest.mark.parametrize("dbname, user, password", [
    ("postgres", "mailreader", "reader-pw-for-tests"),   # another database
    ("mail", "mailreader", "wrong"),                      # a wrong password
    ("mail", "bob", "bob-pw-for-tests"),                  # an admin: left to the site's own lines
])
def test_anything_else_is_refused(hba_cluster, dbname, user, password):
    assert not reaches(hba_cluster, "127.0.0.1", dbname, user, password)


def test_bad_names_and_networks_are_one_clear_line():
    r = cli(["hba", "--network", "192.0.2.1/28"])
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "has host bits set" in r.stderr
    r = cli(["hba", "--dbname", "mail; DROP"])
    assert r.exit_code == 1 and "not a plain PostgreSQL name" in r.stderr
    r = cli(["hba", "--network", "2001:db8::/64"], check=True)
    assert "hostssl  mail      mailauth     2001:db8::/64" in r.stdout


@pytest.mark.parametrize("network", ["0.0.0.0/0", "::/0", "10.0.0.0/8", "2001:db8::/32", "::ffff:0.0.0.0/96"])
def test_hba_refuses_wide_network(network):
    """A network wider than the mail hosts is refused and nothing is printed."""
    r = cli(["hba", "--network", network])
    assert r.exit_code == 1 and r.stdout == "" and r.stderr.count("\n") == 1, r
    assert "wider than a /" in r.stderr and "one --network each" in r.stderr


def test_a_mail_hosts_network_up_to_the_limit_is_accepted():
    for network in ("192.0.2.0/24", "10.1.0.0/16", "2001:db8:1::/48", "::ffff:192.0.2.0/120"):
        printed = ipaddress.ip_network(network)  # IPv6 as PostgreSQL reads it back
        assert f"hostssl  mail      mailauth     {printed}" in cli(["hba", "--network", network], check=True).stdout


def test_hba_patroni():
    """`hba --patroni` prints the same rules as items of Patroni's pg_hba list."""
    plain = [line.split() for line in cli(["hba", "--network", "192.0.2.0/28"], check=True).stdout.splitlines()
             if not line.startswith("#")]
    patroni = cli(["hba", "--patroni", "--network", "192.0.2.0/28"], check=True).stdout.splitlines()
    items = [line.removeprefix("    - ").split() for line in patroni if line.startswith("    - ")]
    assert items == plain and len(items) > 4
    assert all(line.startswith("    # ") or line.startswith("    - ") for line in patroni)  # YAML under pg_hba:
    r = cli(["hba", "--patroni", "--network", "0.0.0.0/0"])
    assert r.exit_code == 1 and r.stdout == ""


def test_hba_help_names_every_role():
    """`mailbook hba --help` names each role `mailbook hba` prints lines for."""
    lines = cli(["hba"], check=True).stdout.splitlines()
    roles = {line.split()[2] for line in lines if line and not line.startswith("#")}
    assert roles >= {"mailreader", "mailauth", "mailquota"}
    help_text = " ".join(cli(["hba", "--help"], check=True).stdout.split())
    assert {r for r in roles if r not in help_text} == set(), help_text
