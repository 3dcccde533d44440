"""`mailbook import --from postfixadmin`, proven on a database PostfixAdmin 3.3 built itself:
its schema from its own upgrade.php (PHP CLI), its data through postfixadmin-cli, one
password scheme after another ($CONF['encrypt'] is global). Then Postfix's answers
through PostfixAdmin's documented map queries equal those through mailbook's maps (both
by postmap -q against the same PostgreSQL), except where the import said why; each
mailbox logs in through a real Dovecot with its old password (or not, as before); and a
message put in each maildir before the move is read over IMAP after it."""

from __future__ import annotations

import base64
import os
import subprocess
import time

import psycopg
import pytest

from mailbook.files import write_private
from mailbook.importers import postfixadmin
from mailbook.importers.plan import snapshot
from tests.harness.database import mail_database, table_checksums
from tests.harness.dovecot import install_dovecot
from tests.harness.peers import (
    Lookups,
    PostfixAdmin,
    deliver_file,
    drop_source,
    imap_subjects,
    mailbook_lookups,
    map_file,
    postfix_config,
    source_database,
)
from tests.harness.postfix import VMAIL_GID, VMAIL_UID
from tests.harness.process import PYTHON, ROOT, cli, daemon_root

SOURCE, OWNER, OWNER_PW = "pfa_source", "pfa_owner", "pfa-owner-pw"
TARGET, READER_PW, AUTH_PW = "pfa_target", "pfa-reader-pw", "pfa-auth-pw"

# (address, password, scheme, active): what PostfixAdmin was asked to store. Throwaway
# passwords of this test's own mailboxes: postfixadmin-cli takes them as arguments (its
# interface), and doveadm auth test below as well; no real secret is ever passed so
MAILBOXES = [
    ("foo@example.com", "Foo-secret-12", "md5crypt", True),
    ("keep@example.com", "Keep-secret-12", "md5crypt", True),
    ("fwd@example.com", "Fwd-secret-12", "md5crypt", True),
    ("sleepy@example.com", "Sleepy-secret-12", "md5crypt", False),
    ("sha@example.com", "Sha-secret-12", "php_crypt:SHA512", True),
    ("blf@example.com", "Blf-secret-12", "dovecot:BLF-CRYPT", True),
    ("b64@example.com", "B64-secret-12", "sha512.b64", True),
    ("plain@example.com", "Plain-secret-12", "md5", True),
    ("cap1@capped.example", "Cap-secret-12", "php_crypt:SHA512", True),
]
CANNOT_LOG_IN = {"sleepy@example.com", "plain@example.com"}  # inactive; unsalted md5, listed


def pfa_queries(port: int, root, user: str, password: str) -> dict[str, list]:
    """PostfixAdmin's DOCUMENTS/POSTFIX_CONF.txt queries, in PostgreSQL form as it says
    (active = true, || instead of CONCAT), with its documented transport-support query
    for virtual_mailbox_domains."""
    q = {
        "domains": ["SELECT domain FROM domain WHERE domain='%s' AND active = true"
                    " AND NOT (transport LIKE 'smtp%%' OR transport LIKE 'relay%%')"],
        "relay": ["SELECT domain FROM domain WHERE domain='%s' AND active = true"
                  " AND (transport LIKE 'smtp%%' OR transport LIKE 'relay%%')"],
        "aliases": ["SELECT goto FROM alias WHERE address='%s' AND active = true",
                    "SELECT goto FROM alias,alias_domain WHERE alias_domain.alias_domain = '%d' and alias.address ="
                    " '%u' || '@' || alias_domain.target_domain AND alias.active = true AND alias_domain.active = true",
                    "SELECT goto FROM alias,alias_domain WHERE alias_domain.alias_domain = '%d' and alias.address ="
                    " '@' || alias_domain.target_domain AND alias.active = true AND alias_domain.active = true"],
        "mailboxes": ["SELECT maildir FROM mailbox WHERE username='%s' AND active = true",
                      "SELECT maildir FROM mailbox,alias_domain WHERE alias_domain.alias_domain = '%d' and"
                      " mailbox.username = '%u' || '@' || alias_domain.target_domain AND mailbox.active = true"
                      " AND alias_domain.active = true"],
        "transport": ["SELECT transport FROM domain WHERE domain='%s' AND active = true"],
    }
    return {k: [map_file(root / f"pfa-{k}-{i}.cf", port, user, password, SOURCE, query)
                for i, query in enumerate(v)] for k, v in q.items()}


@pytest.fixture(scope="module")
def root():
    with daemon_root("mailbook-pfa-", "the move-in tests") as d:
        yield d


@pytest.fixture(scope="module")
def pfa(cluster, root):
    """PostfixAdmin, its database's schema built by its own upgrade.php."""
    source_database(cluster, SOURCE, OWNER, OWNER_PW)
    tool = PostfixAdmin(root, cluster.port, SOURCE, OWNER, OWNER_PW)
    tool.upgrade()
    yield tool
    drop_source(cluster, SOURCE, OWNER)


@pytest.fixture(scope="module")
def source(cluster, pfa):
    """PostfixAdmin's own database, its rows written by postfixadmin-cli. The passwords below
    go on postfixadmin-cli's command line, which is how that tool takes them: throwaway values
    for mailboxes that exist only in this test's database, never a real secret."""
    pfa.cli("domain", "add", "example.com", "--description", "main", "--aliases", "0", "--mailboxes", "0",
            "--maxquota", "0", "--quota", "0", "--transport", "virtual", "--active", "1", "--default-aliases", "1")
    pfa.cli("domain", "add", "example.net", "--aliases", "0", "--mailboxes", "0", "--transport", "virtual",
            "--active", "1", "--default-aliases", "0")
    pfa.cli("aliasdomain", "add", "example.net", "--target-domain", "example.com", "--active", "1")
    pfa.cli("domain", "add", "capped.example", "--aliases", "5", "--mailboxes", "3", "--maxquota", "50",
            "--quota", "100", "--transport", "virtual", "--active", "1", "--default-aliases", "0")
    pfa.cli("domain", "add", "backup.example", "--aliases", "0", "--mailboxes", "0", "--backupmx", "1",
            "--transport", "smtp:[mx.backup.example]", "--active", "1", "--default-aliases", "0")
    for address, password, scheme, active in MAILBOXES:
        pfa.set_encrypt(scheme)
        pfa.cli("mailbox", "add", address, "--password", password, "--password2", password, "--name",
                f"User {scheme}", "--quota", "20", "--active", "1" if active else "0", "--welcome-mail", "0")
    # sha512.b64's salt is 16 characters of base64: about one in five has a "+", which
    # crypt's own alphabet lacks (the import refused those before 1.0). Let
    # PostfixAdmin set the password again until its salt has one, so every run moves one.
    pfa.set_encrypt("sha512.b64")
    for _ in range(60):
        with psycopg.connect(cluster.dsn(SOURCE), autocommit=True) as conn:
            b64 = conn.execute("SELECT password FROM mailbox WHERE username = 'b64@example.com'").fetchone()[0]
        if "+" in base64.b64decode(b64.removeprefix("{SHA512-CRYPT.B64}")).decode().split("$")[2]:
            break
        pfa.cli("mailbox", "update", "b64@example.com", "--password", "B64-secret-12", "--password2", "B64-secret-12")
    else:
        raise AssertionError("PostfixAdmin wrote no sha512.b64 salt with a '+' in 60 tries")
    pfa.cli("alias", "update", "fwd@example.com", "--goto", "out@elsewhere.example", "--goto-mailbox", "0")
    pfa.cli("alias", "update", "keep@example.com", "--goto", "copy@elsewhere.example", "--goto-mailbox", "1")
    pfa.cli("alias", "add", "info@example.com", "--goto", "foo@example.com,team@elsewhere.example", "--active", "1")
    pfa.cli("alias", "add", "old@example.com", "--goto", "foo@example.com", "--active", "0")
    pfa.cli("alias", "add", "@example.com", "--goto", "foo@example.com", "--active", "1")
    pfa.cli("alias", "add", "sales@capped.example", "--goto", "cap1@capped.example", "--active", "1")
    pfa.cli("alias", "add", "ops@example.com", "--goto", "desk@backup.example", "--active", "1")  # into a relay domain
    with psycopg.connect(cluster.dsn(SOURCE), autocommit=True) as conn:
        # postfixadmin-cli has no vacation module: the one row written by SQL, as the web form stores it
        conn.execute("INSERT INTO vacation (email, subject, body, domain, active)"
                     " VALUES ('foo@example.com', 'Away', 'back soon', 'example.com', true)")
        hashes = dict(conn.execute("SELECT username, password FROM mailbox").fetchall())
    # what PostfixAdmin wrote: bare $1$ (md5crypt), bare $6$ (php_crypt), {BLF-CRYPT}$2y$, {SHA512-CRYPT.B64}
    assert hashes["foo@example.com"].startswith("$1$") and hashes["sha@example.com"].startswith("$6$")
    assert hashes["blf@example.com"].startswith("{BLF-CRYPT}$2y$")
    assert hashes["b64@example.com"].startswith("{SHA512-CRYPT.B64}")
    return cluster.dsn(SOURCE)


@pytest.fixture(scope="module")
def target(cluster, source):
    with mail_database(cluster, TARGET, mailreader=READER_PW, mailauth=AUTH_PW) as dsn:
        yield dsn


@pytest.fixture(scope="module")
def dry_run(source, target):
    before = _checksums(target)
    r = cli(["import", "--from", "postfixadmin", "--source-dsn", source, "--dsn", target, "--dry-run"])
    assert _checksums(target) == before
    return r


@pytest.fixture(scope="module")
def imported(source, target, dry_run):
    return cli(["import", "--from", "postfixadmin", "--source-dsn", source, "--dsn", target], check=True)


def _checksums(dsn: str) -> dict:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return table_checksums(conn)


def test_pfa_dry_run(dry_run):
    """Dry run counts each kind lists what cannot move and writes nothing."""
    assert dry_run.exit_code == 0, dry_run
    out = dry_run.stdout
    assert ("read in one snapshot: 2 domain(s), 1 alias domain(s), 1 relay domain(s), 9 mailbox(s), "
            "12 alias destination(s), 1 catch-all destination(s)") in out, out
    assert "nothing written (dry run)" in out
    for listed in ("password of plain@example.com: its hash (no {SCHEME} prefix)",
                   "maximum mailbox quota of capped.example: 50 MB",
                   "vacation of foo@example.com: active auto-reply ('Away')",
                   "alias old@example.com: inactive: PostfixAdmin gave its mail to the catch-all",
                   "alias sleepy@example.com: inactive: PostfixAdmin gave its mail to the catch-all"):
        assert listed in out, out


def test_import_writes_every_row_through_the_import_path_and_audits_it(imported, target):
    assert "imported 26 row(s) from PostfixAdmin" in imported.stdout, imported
    with psycopg.connect(target, autocommit=True) as conn:
        rows = dict(conn.execute("SELECT email, maildir || ' ' || coalesce(quota_bytes::text, '-') || ' '"
                                 " || active FROM users").fetchall())
        aliases = set(conn.execute("SELECT alias, email, active FROM aliases").fetchall())
        domains = {d: (t, a, mm, ma, mq) for d, t, a, mm, ma, mq in conn.execute(
            "SELECT domain, transport, alias_of, max_mailboxes, max_aliases, max_quota_bytes FROM transports")}
        audited = conn.execute("SELECT count(*) FROM audit_log WHERE table_name = 'users'"
                               " AND operation = 'INSERT'").fetchone()[0]
    assert rows["foo@example.com"] == "example.com/foo/ 20480000 true"  # maildir byte for byte; MB x 1,024,000
    assert rows["sleepy@example.com"].endswith(" false")
    assert audited == len(MAILBOXES)
    # the self-row alone is no alias; with more destinations it keeps a copy; without it, forward only
    assert ("foo@example.com", "foo@example.com", True) not in aliases
    assert {("keep@example.com", "keep@example.com", True), ("keep@example.com", "copy@elsewhere.example", True)} <= aliases
    assert ("fwd@example.com", "out@elsewhere.example", True) in aliases
    assert ("fwd@example.com", "fwd@example.com", True) not in aliases
    assert {("info@example.com", "foo@example.com", True), ("info@example.com", "team@elsewhere.example", True),
            ("old@example.com", "foo@example.com", False), ("@example.com", "foo@example.com", True)} <= aliases
    assert ("ops@example.com", "desk@backup.example", True) in aliases  # a relay domain's address is remote
    assert domains["example.net"][1] == "example.com"
    assert domains["backup.example"][0] == "smtp:[mx.backup.example]"
    assert domains["capped.example"][2:] == (3, 5, 100 * 1024000)
    assert domains["example.com"][0] == "virtual:" and domains["example.com"][2:] == (None, None, None)


def test_second_run_refuses_naming_what_exists_unless_skip_existing(imported, source, target):
    before = _checksums(target)
    r = cli(["import", "--from", "postfixadmin", "--source-dsn", source, "--dsn", target])
    assert r.exit_code == 1
    assert "row(s) of PostfixAdmin are already in mailbook (" in r.stderr and "domain example.com" in r.stderr
    assert "--skip-existing" in r.stderr and "Traceback" not in r.stderr + r.stdout
    r = cli(["import", "--from", "postfixadmin", "--source-dsn", source, "--dsn", target, "--skip-existing"])
    assert r.exit_code == 0, r
    assert "already in mailbook, left out (26)" in r.stdout and "imported 0 row(s)" in r.stdout
    assert _checksums(target) == before


def test_a_database_that_is_not_postfixadmin_is_one_clear_line(cluster, target):
    r = cli(["import", "--from", "postfixadmin", "--source-dsn", cluster.dsn("postgres"), "--dsn", target, "--dry-run"])
    assert r.exit_code == 1
    assert r.stderr.startswith("mailbook: this is not a PostfixAdmin 3.3 database: no config.name")
    assert len(r.stderr.strip().splitlines()) == 1


def test_an_unknown_schema_version_is_refused(cluster, source, target):
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("UPDATE config SET value = '1900' WHERE name = 'version'")
    try:
        r = cli(["import", "--from", "postfixadmin", "--source-dsn", source, "--dsn", target, "--dry-run"])
    finally:
        with psycopg.connect(source, autocommit=True) as conn:
            conn.execute("UPDATE config SET value = '1847' WHERE name = 'version'")
    assert r.exit_code == 1 and "schema version 1900 is newer than 3.3's (1847)" in r.stderr


def test_the_source_is_read_in_one_read_only_repeatable_read_snapshot(source):
    with snapshot(source) as conn:
        assert conn.execute("SHOW transaction_isolation").fetchone()[0] == "repeatable read"
        assert conn.execute("SHOW transaction_read_only").fetchone()[0] == "on"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM mailbox")


def test_pfa_one_snapshot(source, target):
    """A writer committing between the imports reads changes nothing the import sees.

    The import reads PostfixAdmin in several statements (domains, alias domains, mailboxes,
    aliases, vacations, fetchmail). A writer holds the alias table, so the real command stops
    after reading domains and mailboxes and waits before reading aliases; meanwhile other
    writes commit: a mailbox and its self-alias row (as PostfixAdmin adds them, two tables),
    a changed goto, a vacation. Then the writer lets go. Read statement by statement, the
    import would now see the new alias row without its mailbox, the new goto and the
    vacation; read in one snapshot it prints exactly what it printed before the writes."""
    command = [PYTHON, str(ROOT / "runner.py"), "import", "--from", "postfixadmin", "--source-dsn", source,
               "--dsn", target, "--dry-run", "--skip-existing"]  # --skip-existing: whether or not imported yet
    before = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert before.returncode == 0, before.stderr
    holder = psycopg.connect(source)
    try:
        holder.execute("LOCK TABLE alias IN ACCESS EXCLUSIVE MODE")
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with psycopg.connect(source, autocommit=True) as watch:
            deadline = time.time() + 60
            while not watch.execute("SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                                    " AND wait_event_type = 'Lock' AND query LIKE '%%FROM alias %%'").fetchone():
                assert proc.poll() is None and time.time() < deadline, proc.communicate()
                time.sleep(0.05)
            # it has read the domains and mailboxes; these commit before it reads the rest
            watch.execute("INSERT INTO mailbox (username, password, name, maildir, quota, local_part, domain, active)"
                          " VALUES ('late@example.com', '$1$abcdefgh$abcdefghijklmnopqrstuv', 'Late',"
                          " 'example.com/late/', 0, 'late', 'example.com', true)")
            watch.execute("INSERT INTO vacation (email, subject, body, domain, active)"
                          " VALUES ('keep@example.com', 'Gone fishing', 'later', 'example.com', true)")
        holder.execute("INSERT INTO alias (address, goto, domain, active)"
                       " VALUES ('late@example.com', 'late@example.com', 'example.com', true)")
        holder.execute("UPDATE alias SET goto = 'team@elsewhere.example' WHERE address = 'info@example.com'")
        holder.commit()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out == before.stdout
        # the writes were real: a new snapshot sees them
        with snapshot(source) as conn:
            after = postfixadmin.read(conn)
        assert "late@example.com" in {r.values["address"] for r in after.rows if r.kind == "mailbox"}
        assert ("vacation of keep@example.com", ) == tuple(w for w, _ in after.left if w == "vacation of keep@example.com")
        assert "info@example.com -> foo@example.com" not in {r.source.partition(" ")[2] for r in after.rows}
    finally:
        holder.rollback()
        with psycopg.connect(source, autocommit=True) as conn:  # as it was, for the tests below
            conn.execute("DELETE FROM vacation WHERE email = 'keep@example.com'")
            conn.execute("DELETE FROM alias WHERE address = 'late@example.com'")
            conn.execute("DELETE FROM mailbox WHERE username = 'late@example.com'")
            conn.execute("UPDATE alias SET goto = 'foo@example.com,team@elsewhere.example'"
                         " WHERE address = 'info@example.com'")
        holder.close()


@pytest.fixture(scope="module")
def lookups(root, cluster, imported):
    config = postfix_config(root)
    pw = root / "reader.pw"
    write_private(pw, READER_PW + "\n")
    maps = root / "mailbook-maps"
    cli(["maps", "install", "--dest", str(maps), "--port", str(cluster.port), "--dbname", TARGET,
         "--password-file", str(pw)], check=True)
    q = pfa_queries(cluster.port, root, OWNER, OWNER_PW)
    theirs = Lookups(config, q["domains"], q["relay"], q["aliases"], q["mailboxes"], q["transport"])
    return theirs, mailbook_lookups(config, maps)


def test_postfix_answers_the_same_for_every_address_except_those_listed(lookups, imported, source):
    theirs, ours = lookups
    with psycopg.connect(source, autocommit=True) as conn:
        keys = {a for (a,) in conn.execute("SELECT address FROM alias UNION SELECT username FROM mailbox")}
    keys = {k for k in keys if not k.startswith("@")}
    keys |= {k.replace("@example.com", "@example.net") for k in keys if k.endswith("@example.com")}
    keys |= {"nobody@example.com", "nobody@example.net", "nobody@capped.example", "anyone@backup.example",
             "someone@unhosted.example"}
    keys = sorted(keys)
    a_all, b_all = theirs.answers(keys), ours.answers(keys)
    same, differ = 0, []
    for key in keys:
        a, b = a_all[key], b_all[key]
        if a == b:
            same += 1
        else:
            differ.append((key, a, b))
    listed = imported.stdout
    unexplained = [d for d in differ if d[0] not in listed and d[0].replace("example.net", "example.com") not in listed]
    assert not unexplained, unexplained
    assert same >= 25, (same, differ)
    # the differences are the ones the import listed: inactive addresses the catch-all took
    assert {d[0] for d in differ} <= {"old@example.com", "sleepy@example.com", "old@example.net", "sleepy@example.net"}


@pytest.fixture(scope="module")
def dovecot(root, cluster, imported):
    mail = root / "mail"
    mail.mkdir()
    os.chown(mail, VMAIL_UID, VMAIL_GID)
    for address, *_ in MAILBOXES:  # mail delivered by the old server, before the move
        local, _, domain = address.partition("@")
        deliver_file(mail / domain / local, f"1.M1P1.old-{local}", f"before the move {address}", VMAIL_UID, VMAIL_GID)
        os.chown(mail / domain, VMAIL_UID, VMAIL_GID)
    pw = root / "auth.pw"
    write_private(pw, AUTH_PW + "\n")
    dc = install_dovecot(root, mail, "--port", str(cluster.port), "--dbname", TARGET, "--password-file", str(pw))
    try:  # stopped also when the start fails half-way
        dc.start()
        yield dc
    finally:
        dc.stop()


@pytest.mark.parametrize("address,password,scheme,active", MAILBOXES, ids=[m[0] for m in MAILBOXES])
def test_pfa_old_passwords_log_in(dovecot, address, password, scheme, active):
    """Each mailbox logs in with its old password through Dovecot as before."""
    r = dovecot.auth_test(address, password)
    if address in CANNOT_LOG_IN:
        assert r.returncode == 77, r.stdout + r.stderr
    else:
        assert r.returncode == 0, (scheme, r.stdout, r.stderr, dovecot.log_text()[-2000:])
        assert dovecot.auth_test(address, password + "x").returncode == 77


def test_mail_placed_before_the_move_is_read_over_imap_after_it(dovecot):
    for address, password, _scheme, _active in MAILBOXES:
        if address not in CANNOT_LOG_IN:
            assert imap_subjects(dovecot.port, address, password) == [f"before the move {address}"]


def test_pfa_cleartext_hashed(pfa, source, target,
                                                                                            dovecot):
    """Cleartext passwords move in bcrypt hashed with the flag and are listed without it.

    PostfixAdmin's $CONF['encrypt'] = 'cleartext' stores the password as typed. Without
    --cleartext-passwords such a value is listed as a hash mailbook refuses (and never
    printed); with it, it goes in as the password and is hashed with bcrypt, while the
    hashes written before the scheme was switched stay hashes. Both log in."""
    pfa.cli("domain", "add", "clear.example", "--aliases", "0", "--mailboxes", "0", "--maxquota", "0", "--quota", "0",
            "--transport", "virtual", "--active", "1", "--default-aliases", "0")
    pfa.set_encrypt("md5crypt")
    pfa.cli("mailbox", "add", "before@clear.example", "--password", "Before-secret-12", "--password2",
            "Before-secret-12", "--quota", "0", "--active", "1", "--welcome-mail", "0")
    pfa.set_encrypt("cleartext")
    pfa.cli("mailbox", "add", "clear@clear.example", "--password", "Clear-secret-12", "--password2",
            "Clear-secret-12", "--quota", "0", "--active", "1", "--welcome-mail", "0")
    with psycopg.connect(source, autocommit=True) as conn:
        stored = dict(conn.execute("SELECT username, password FROM mailbox WHERE domain = 'clear.example'").fetchall())
    assert stored["clear@clear.example"] == "Clear-secret-12" and stored["before@clear.example"].startswith("$1$")

    base = ["import", "--from", "postfixadmin", "--source-dsn", source, "--dsn", target, "--skip-existing"]
    r = cli([*base, "--dry-run"], check=True)
    assert ("password of clear@clear.example: its hash (no {SCHEME} prefix) is one mailbook refuses" in r.stdout
            and "see --cleartext-passwords" in r.stdout), r.stdout
    assert "password of before@clear.example" not in r.stdout
    assert "Clear-secret-12" not in r.stdout + r.stderr

    r = cli([*base, "--cleartext-passwords"], check=True)
    assert "imported 3 row(s) from PostfixAdmin" in r.stdout, r.stdout  # the domain and its two mailboxes
    assert "password of" not in r.stdout and "Clear-secret-12" not in r.stdout + r.stderr
    with psycopg.connect(target, autocommit=True) as conn:
        hashes = dict(conn.execute("SELECT email, password FROM users WHERE domain = 'clear.example'").fetchall())
    assert hashes["clear@clear.example"].startswith("{BLF-CRYPT}$2")
    assert hashes["before@clear.example"] == "{MD5-CRYPT}" + stored["before@clear.example"]
    for address, password in (("clear@clear.example", "Clear-secret-12"), ("before@clear.example", "Before-secret-12")):
        assert dovecot.auth_test(address, password).returncode == 0, dovecot.log_text()[-2000:]


def test_hostile_maildir_is_refused_naming_it(source, target, imported):
    """A PostfixAdmin maildir with shell syntax (anyone who can write its database, or a
    local part PostfixAdmin let through) is a bad row: one line naming the mailbox and
    the value, nothing imported. Before 1.0.1 it moved in: mailbook's maildir rule allows
    $ { } | & and the path reaches Dovecot, `maildirs purge` and the admin's own commands."""
    hostile = "example.com/e|touch${IFS}MARK/"
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("INSERT INTO mailbox (username, password, name, maildir, quota, local_part, domain, active)"
                     " VALUES ('evil@example.com', '$1$abcdefgh$abcdefghijklmnopqrstuv', 'Evil', %s, 0, 'evil',"
                     " 'example.com', true)", (hostile,))
    try:
        before = _checksums(target)
        r = cli(["import", "--from", "postfixadmin", "--source-dsn", source, "--dsn", target, "--skip-existing"])
        after = _checksums(target)
    finally:
        with psycopg.connect(source, autocommit=True) as conn:
            conn.execute("DELETE FROM mailbox WHERE username = 'evil@example.com'")
        with psycopg.connect(target, autocommit=True) as conn:  # only if it did move in
            conn.execute("DELETE FROM users WHERE email = 'evil@example.com'")
    assert r.exit_code == 1, r
    assert f'PostfixAdmin mailbox evil@example.com: maildir "{hostile}" has "|" (U+007C)' in r.stderr, r.stderr
    assert "1 bad row in PostfixAdmin's data; nothing was imported" in r.stderr
    assert after == before
