"""`mailbook import --from vmm`, proven on a database vmm 0.7 built itself: its shipped
create_tables.pgsql, its data through the vmm command (which hashes with doveadm pw),
one scheme per user (`vmm userpassword -s`). Then Postfix's answers through vmm's
documented map functions equal those through mailbook's maps except where the import
said why; the printed commands make vmm's uid-owned maildirs readable; each user logs
in through a real Dovecot with the old password (or not, as the services said); a message
put in each maildir before the move is read over IMAP after it."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

from mailbook.files import write_private
from tests.harness.database import mail_database, table_checksums
from tests.harness.dovecot import install_dovecot
from tests.harness.peers import (
    Lookups,
    Vmm,
    deliver_file,
    drop_source,
    imap_subjects,
    mailbook_lookups,
    map_file,
    postfix_config,
    source_database,
)
from tests.harness.postfix import VMAIL_GID, VMAIL_UID
from tests.harness.process import cli, daemon_root, remove

SOURCE, OWNER, OWNER_PW = "vmm_source", "vmm_owner", "vmm-owner-pw"
TARGET, READER_PW, AUTH_PW = "vmm_target", "vmm-reader-pw", "vmm-auth-pw"
OWNER_SPEC = f"{VMAIL_UID}:{VMAIL_GID}"

# (address, password, scheme): every scheme vmm's README names for its users. Throwaway
# passwords of this test's own users: the vmm command takes them as arguments (`useradd -p`,
# `userpassword -p`: its interface), and doveadm auth test below as well; no real secret
# is ever passed so
USERS = [
    ("alice@example.org", "alice-pw-1", "SHA512-CRYPT"),
    ("bob@example.org", "bob-pw-1", "CRAM-MD5"),
    ("carol@example.org", "carol-pw-1", "SSHA512"),
    ("dave@example.org", "dave-pw-1", "BLF-CRYPT"),
    ("erin@example.org", "erin-pw-1", "PLAIN"),
]


@pytest.fixture(scope="module")
def root():
    with daemon_root("mailbook-vmm-", "the move-in tests") as d:
        yield d


@pytest.fixture(scope="module")
def source(cluster, root):
    source_database(cluster, SOURCE, OWNER, OWNER_PW)
    # vmm's domain_data.domaindir is varchar(40): a short base directory
    base = Path(tempfile.mkdtemp(prefix="vmm", dir="/var/tmp"))
    vmm = Vmm(root, cluster.port, SOURCE, OWNER, OWNER_PW, base)
    vmm("domainadd", "example.org")
    for address, password, scheme in USERS:
        vmm("useradd", address, "-p", "placeholder-1")
        vmm("userpassword", address, "-s", scheme, "-p", password)
    vmm("aliasdomainadd", "example.info", "example.org")
    vmm("domainservices", "example.org", "-d", "sieve")
    vmm("userservices", "bob@example.org", "-d", "imap", "pop3")
    vmm("userservices", "bob@example.org", "-e", "sieve")  # his own set may allow what the domain's does not
    vmm("userquota", "alice@example.org", "10M", "-m", "100")
    vmm("domainquota", "example.org", "50M", "-m", "1000")
    vmm("aliasadd", "info@example.org", "alice@example.org", "%n@other.example")
    vmm("aliasadd", "team@example.org", "bob@example.org", "x+%d@other.example")
    vmm("catchalladd", "example.org", "alice@example.org")
    vmm("relocatedadd", "old@example.org", "new@elsewhere.example")
    vmm("domainadd", "relay.example", "-t", "smtp:[mx.relay.example]")
    vmm("aliasadd", "desk@example.org", "help@relay.example")  # into the relay domain: a remote destination
    with psycopg.connect(cluster.dsn(SOURCE), autocommit=True) as conn:
        hashes = dict(conn.execute("SELECT local_part, passwd FROM users").fetchall())
        homes = dict(conn.execute("SELECT local_part || '@example.org', domaindir || '/' || uid FROM users"
                                  " JOIN domain_data USING (gid)").fetchall())
    assert {h.partition("}")[0] + "}" for h in hashes.values()} == {"{" + s + "}" for _, _, s in USERS}
    for address, *_ in USERS:  # mail delivered by the old server, owned as vmm owns it (uid per user)
        st = os.stat(homes[address])
        deliver_file(Path(homes[address]) / "Maildir", "1.M1P1.old", f"before the move {address}", st.st_uid, st.st_gid)
    yield cluster.dsn(SOURCE), base
    drop_source(cluster, SOURCE, OWNER)
    remove(base)


@pytest.fixture(scope="module")
def target(cluster, source):
    with mail_database(cluster, TARGET, mailreader=READER_PW, mailauth=AUTH_PW) as dsn:
        yield dsn


@pytest.fixture(scope="module")
def imported(source, target):
    dsn, _base = source
    dry = cli(["import", "--from", "vmm", "--source-dsn", dsn, "--dsn", target, "--dry-run",
               "--vmail-owner", OWNER_SPEC])
    assert dry.exit_code == 0, dry
    assert "nothing written (dry run)" in dry.stdout
    return cli(["import", "--from", "vmm", "--source-dsn", dsn, "--dsn", target, "--vmail-owner", OWNER_SPEC],
               check=True)


def test_vmm_counts_and_leftovers(imported):
    """Import counts each kind and lists what vmm had and mailbook has not."""
    out = imported.stdout
    assert ("read in one snapshot: 1 domain(s), 1 alias domain(s), 1 relay domain(s), 5 mailbox(s), "
            "5 alias destination(s), 1 catch-all destination(s)") in out, out
    for listed in ("logins as user@example.info:", "relocated old@example.org: moved to new@elsewhere.example",
                   "`old@example.org new@elsewhere.example`", "alias team@example.info -> x+%d@other.example",
                   "domain relay.example: transport smtp:[mx.relay.example] and no mailboxes",
                   "services of example.org: 1 of its users may use services the domain turns off"):
        assert listed in out, out
    assert f"chown -R {OWNER_SPEC} " in out


def test_quotas_inherit_from_the_domain_and_services_follow_vmm(imported, target):
    with psycopg.connect(target, autocommit=True) as conn:
        users = {e: (b, m, sorted(s)) for e, b, m, s in conn.execute(
            "SELECT email, quota_bytes, quota_messages, disabled_services FROM users")}
        aliases = set(conn.execute("SELECT alias, email FROM aliases").fetchall())
    assert users["alice@example.org"][:2] == (10 * 1024 * 1024, 100)  # her own
    assert users["carol@example.org"][:2] == (50 * 1024 * 1024, 1000)  # the domain's
    assert users["bob@example.org"][2] == ["imap", "pop3"]  # his set replaces the domain's (sieve on again)
    assert users["carol@example.org"][2] == ["sieve"]  # the domain's
    # placeholders expanded for the primary name
    assert {("info@example.org", "info@other.example"), ("team@example.org", "bob@example.org"),
            ("team@example.org", "x+example.org@other.example"), ("@example.org", "alice@example.org"),
            ("desk@example.org", "help@relay.example")} <= aliases


def test_postfix_answers_the_same_for_every_address_except_those_listed(root, cluster, source, imported):
    dsn, base = source
    config = postfix_config(root)
    pw = root / "reader.pw"
    write_private(pw, READER_PW + "\n")
    maps = root / "mailbook-maps"
    cli(["maps", "install", "--dest", str(maps), "--port", str(cluster.port), "--dbname", TARGET,
         "--password-file", str(pw)], check=True)

    def q(name, query):  # vmm's documented map files (/usr/share/doc/vmm/examples/postfix)
        return [map_file(root / f"vmm-{name}.cf", cluster.port, OWNER, OWNER_PW, SOURCE, query)]
    theirs = Lookups(config, q("domains", "SELECT gid FROM postfix_gid WHERE domainname='%s'"), [],
                     q("aliases", "SELECT destination FROM postfix_virtual_alias_map('%u', '%d')"),
                     q("mailboxes", "SELECT maildir FROM postfix_virtual_mailbox_map('%u', '%d')"),
                     q("transport", "SELECT transport FROM postfix_transport_map('%u', '%d')"))
    ours = mailbook_lookups(config, maps, prefix=f"{base}/")
    keys = {a for a, _, _ in USERS} | {"info@example.org", "team@example.org", "nobody@example.org", "old@example.org",
                                       "desk@example.org"}
    keys |= {k.replace("@example.org", "@example.info") for k in keys} | {"someone@unhosted.example"}
    keys = sorted(keys)
    a_all, b_all = theirs.answers(keys), ours.answers(keys)
    same, differ = 0, []
    for key in keys:
        a, b = a_all[key], b_all[key]
        same += a == b
        if a != b:
            differ.append((key, a, b))
    # listed: the relocated address (now the catch-all's), and %d expanded for the alias domain
    # and the alias into the relay domain: mailbook relays it to the next hop. vmm lists
    # relay.example among its virtual_mailbox_domains with no mailbox for help@, which this
    # replay reports as unknown; Postfix itself would hand the rewritten address to the
    # domain's smtp: transport (listed: "a relay domain in mailbook")
    assert {d[0] for d in differ} == {"old@example.org", "old@example.info", "team@example.info",
                                      "desk@example.org", "desk@example.info"}, differ
    for key in ("desk@example.org", "desk@example.info"):
        assert a_all[key] == ("virtual", (("unknown", "help@relay.example"),))
        assert b_all[key] == ("virtual", (("help@relay.example", "relay", "smtp:[mx.relay.example]"),))
    assert same >= 12


@pytest.fixture(scope="module")
def dovecot(root, cluster, source, imported):
    _dsn, base = source
    for line in imported.stdout.splitlines():  # the commands the import printed, as the admin would run them
        if line.strip().startswith("chown "):
            subprocess.run(shlex.split(line), check=True)
    os.chmod(base, 0o755)
    pw = root / "auth.pw"
    write_private(pw, AUTH_PW + "\n")
    dc = install_dovecot(root, base, "--port", str(cluster.port), "--dbname", TARGET, "--password-file", str(pw))
    try:  # stopped also when the start fails half-way
        dc.start()
        yield dc
    finally:
        dc.stop()


@pytest.mark.parametrize("address,password,scheme", USERS, ids=[u[2] for u in USERS])
def test_each_user_logs_in_with_the_old_password_through_dovecot(dovecot, address, password, scheme):
    r = dovecot.auth_test(address, password)
    assert r.returncode == 0, (scheme, r.stdout, r.stderr, dovecot.log_text()[-2000:])
    assert dovecot.auth_test(address, password + "x").returncode == 77


def test_services_vmm_turned_off_stay_off(dovecot):
    assert dovecot.auth_test("bob@example.org", "bob-pw-1", "imap").returncode == 77
    assert dovecot.auth_test("carol@example.org", "carol-pw-1", "sieve").returncode == 77
    assert dovecot.auth_test("bob@example.org", "bob-pw-1", "sieve").returncode == 0


def test_vmm_mail_read_after_move(dovecot):
    """Mail placed before the move is read over IMAP after the printed commands."""
    for address, password, _scheme in USERS:
        if address != "bob@example.org":  # no IMAP for bob, in vmm as here
            assert imap_subjects(dovecot.port, address, password) == [f"before the move {address}"]


def _dry_run(source, target, *extra):
    dsn, _base = source
    return cli(["import", "--from", "vmm", "--source-dsn", dsn, "--dsn", target, "--dry-run", "--skip-existing",
                *extra])


def _chown_lines_run_by_sh(stdout: str, where: Path) -> list[subprocess.CompletedProcess]:
    """Each printed chown line as the admin pastes it: through sh, here in an empty directory."""
    return [subprocess.run(["sh", "-c", line.strip()], cwd=where, capture_output=True, text=True, timeout=30)
            for line in stdout.splitlines() if line.strip().startswith("chown ")]


def test_hostile_domaindir_is_refused_naming_it(cluster, source, target, imported, tmp_path):
    """A domaindir with shell syntax in vmm's database (anyone who can write it) is a bad
    row: one line naming the domain and the value, nothing imported, no chown line printed.
    Before 1.0.1 the printed `chown -R OWNER DOMAINDIR` ran the payload when pasted: the
    lines printed are run through sh here, in an empty directory, and create no file."""
    dsn, base = source
    with psycopg.connect(dsn, autocommit=True) as conn:
        gid, domaindir = conn.execute("SELECT gid, domaindir FROM domain_data JOIN domain_name USING (gid)"
                                      " WHERE domainname = 'example.org'").fetchone()
        hostile = f"{base}/0/1|touch${{IFS}}MARK"  # varchar(40): short, and it names no real directory
        conn.execute("UPDATE domain_data SET domaindir = %s WHERE gid = %s", (hostile, gid))
    try:
        before = _checksums(target)
        r = _dry_run(source, target, "--vmail-owner", OWNER_SPEC)
        after = _checksums(target)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE domain_data SET domaindir = %s WHERE gid = %s", (domaindir, gid))
    ran = _chown_lines_run_by_sh(r.stdout, tmp_path)
    assert not (tmp_path / "MARK").exists(), "a printed command ran the domaindir's payload"
    assert r.exit_code == 1, r
    assert f'vmm domain example.org: domaindir "{hostile}" has "|" (U+007C)' in r.stderr, r.stderr
    assert "nothing was imported" in r.stderr and not ran and "chown" not in r.stdout
    assert after == before


def test_printed_chown_line_is_quoted_for_sh(source, target, imported, tmp_path):
    """--vmail-owner with shell syntax in it lands in the printed chown as one argument:
    run through sh it is one (refused) owner, and the payload creates no file."""
    r = _dry_run(source, target, "--vmail-owner", "nobody;touch${IFS}MARK")
    assert r.exit_code == 0, r
    lines = [line.strip() for line in r.stdout.splitlines() if line.strip().startswith("chown ")]
    assert lines and all(shlex.split(line)[:3] == ["chown", "-R", "nobody;touch${IFS}MARK"] for line in lines)
    for done in _chown_lines_run_by_sh(r.stdout, tmp_path):
        assert done.returncode != 0 and "invalid user" in done.stderr, done
    assert not (tmp_path / "MARK").exists(), "a printed command ran the owner's payload"


def test_escape_bytes_in_plan_lines_are_neutralised(source, target, imported):
    """A relocated destination with ESC/OSC/BEL bytes, listed in the plan, reaches the
    terminal as "?" (what SQL's quoted() shows), never as a control sequence."""
    dsn, _base = source
    with psycopg.connect(dsn, autocommit=True) as conn:
        gid = conn.execute("SELECT gid FROM domain_name WHERE domainname = 'example.org'").fetchone()[0]
        conn.execute("INSERT INTO relocated (gid, address, destination) VALUES (%s, 'esc', %s)",
                     (gid, "x\x1b]0;pwned\x07\x1b[2J\x9b1m@elsewhere.example"))
    try:
        r = _dry_run(source, target, "--vmail-owner", OWNER_SPEC)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM relocated WHERE address = 'esc'")
    assert r.exit_code == 0, r
    assert "relocated esc@example.org: moved to x?]0;pwned??[2J?1m@elsewhere.example" in r.stdout, r.stdout
    assert not [c for c in r.stdout + r.stderr if ord(c) < 32 and c != "\n" or 0x7f <= ord(c) <= 0x9f]


def _checksums(dsn: str) -> dict:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return table_checksums(conn)
