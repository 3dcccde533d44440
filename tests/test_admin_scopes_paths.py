"""A customer's admin on the remaining paths (issue 32): send-as, services, import,
export, the audit log, the maildir queue and the domain list. Two customers, each a real
login made by `mailbook admin add` and a member of maildomainadmin: ALICE manages
example.com (and its alias domain example.net), BOB manages example.org. Inside its
scope each path works; across the boundary each refuses with 42501 and a message naming
the admin and the domain, or shows nothing of the other customer, and changes nothing
(table_checksums). tests/test_admin_scopes.py holds the rest of the API."""

from __future__ import annotations

import csv
import io
import json
import stat

import psycopg
import pytest

from tests.harness.database import mail_database, table_checksums
from tests.harness.process import cli

DB = "admin_scopes_paths"
ALICE, BOB = "alice_paths", "bob_paths"
PASSWORDS = {ALICE: "alice-paths-pw-for-tests", BOB: "bob-paths-pw-for-tests"}
HASH = "{BLF-CRYPT}$2y$04$" + "a" * 53


@pytest.fixture(scope="module")
def dsn(cluster, tmp_path_factory):
    with mail_database(cluster, DB) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE settings SET bcrypt_cost = 4")  # hundreds of imported passwords below
            for d in ("example.com", "example.org"):
                conn.execute("SELECT add_domain(%s)", (d,))
            conn.execute("SELECT add_alias_domain('example.net', 'example.com')")
        for name, domain in ((ALICE, "example.com"), (BOB, "example.org")):
            pw = tmp_path_factory.mktemp(name) / "pw"
            pw.write_text(PASSWORDS[name] + "\n")
            cli(["admin", "add", name, "--domain", domain, "--password-file", str(pw), "--dsn", dsn], check=True)
        try:
            yield dsn
        finally:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("DELETE FROM admin_scopes")
            with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
                conn.execute(f"DROP ROLE IF EXISTS {ALICE}, {BOB}")


def login_dsn(cluster, name):
    return f"host=127.0.0.1 port={cluster.port} dbname={DB} user={name} password={PASSWORDS[name]}"


@pytest.fixture
def owner(dsn):
    """The superuser, with a clean example.com and example.org: box@ in each, nothing else."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM vacations; DELETE FROM send_as; DELETE FROM aliases; DELETE FROM users;"
                     " DELETE FROM maildir_purge_queue; DELETE FROM import_staging;"
                     " UPDATE transports SET disabled_services = '{}'")
        for d in ("example.com", "example.org"):
            conn.execute("SELECT add_mailbox(%s, 'pw pw pw box')", (f"box@{d}",))
        yield conn


@pytest.fixture
def alice(cluster, dsn):
    with psycopg.connect(login_dsn(cluster, ALICE), autocommit=True) as conn:
        yield conn


@pytest.fixture
def bob(cluster, dsn):
    with psycopg.connect(login_dsn(cluster, BOB), autocommit=True) as conn:
        yield conn


def as_(cluster, name):
    """The CLI's environment for a customer's login (never a password on the command line)."""
    return {"MAILBOOK_DSN": login_dsn(cluster, name)}


def refused(conn, owner, statement, name, domain, params=()):
    """statement, run by name's connection, is refused with 42501 naming name and domain,
    and changes nothing."""
    before = table_checksums(owner)
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as exc:
        conn.execute(statement, params)
    assert exc.value.diag.message_primary == f'admin "{name}" may not manage domain "{domain}"', statement
    assert table_checksums(owner) == before, statement


def refused_cli(args, env, owner, *words):
    """`mailbook ARGS` fails in one line that holds words, changing nothing."""
    before = table_checksums(owner)
    r = cli(args, env=env)
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, (args, r)
    for w in words:
        assert w in r.stderr, (args, r)
    assert table_checksums(owner) == before, args
    return r


def test_send_as_scoped(cluster, owner, alice, bob):
    """allow_send_as/disallow_send_as: inside her domains (the address in her alias domain
    too) alice grants and takes back; a login or an address in bob's domain, or an address
    hosted nowhere, is refused naming that domain, before any lookup (the same answer
    whether the grant exists). The CLI says so in one line."""
    alice.execute("SELECT allow_send_as('box@example.com', 'sales@example.com')")
    alice.execute("SELECT allow_send_as('box@example.com', 'sales@example.net')")
    bob.execute("SELECT allow_send_as('box@example.org', 'sales@example.org')")
    for statement, domain in (("SELECT allow_send_as('box@example.com', 'box@example.org')", "example.org"),
                              ("SELECT allow_send_as('box@example.org', 'info@example.com')", "example.org"),
                              ("SELECT allow_send_as('box@example.com', 'me@elsewhere.test')", "elsewhere.test"),
                              ("SELECT disallow_send_as('box@example.org')", "example.org"),
                              ("SELECT disallow_send_as('box@example.org', 'sales@example.org')", "example.org"),
                              ("SELECT disallow_send_as('box@example.com', 'sales@example.org')", "example.org")):
        refused(alice, owner, statement, ALICE, domain)
    refused(bob, owner, "SELECT disallow_send_as('box@example.com', 'sales@example.net')", BOB, "example.com")
    assert alice.execute("SELECT disallow_send_as('box@example.com', 'sales@example.net')").fetchone() == (1,)
    env = as_(cluster, ALICE)
    cli(["sendas", "allow", "box@example.com", "info@example.com"], env=env, check=True)
    refused_cli(["sendas", "allow", "box@example.com", "info@example.org"], env, owner,
                f'admin "{ALICE}" may not manage domain "example.org"', "SQLSTATE 42501")
    cli(["sendas", "disallow", "box@example.com"], env=env, check=True)
    assert owner.execute("SELECT login, address FROM send_as ORDER BY 1").fetchall() == [
        ("box@example.org", "sales@example.org")]


def test_send_as_read_scoped(cluster, dsn, owner):
    """`sendas list` shows a customer's admin the grants of its own mailboxes only
    (my_send_as()), and `sendas who` answers for its own addresses (who_may_send_as()),
    refusing another customer's in one line: the same answer whether anyone may send
    as it. A global admin's `sendas who` is unchanged."""
    owner.execute("SELECT allow_send_as('box@example.com', 'info@example.com')")
    owner.execute("SELECT allow_send_as('box@example.org', 'info@example.org')")
    env = as_(cluster, ALICE)
    rows = json.loads(cli(["sendas", "list", "--json"], env=env, check=True).stdout)
    assert [(r["login"], r["address"]) for r in rows] == [("box@example.com", "info@example.com")]
    assert json.loads(cli(["sendas", "list", "--login", "box@example.org", "--json"], env=env,
                          check=True).stdout) == []
    assert cli(["sendas", "who", "INFO@example.com"], env=env, check=True).stdout == "box@example.com\n"
    for address in ("info@example.org", "nobody@example.org", "x@elsewhere.test"):
        refused_cli(["sendas", "who", address], env, owner, f'admin "{ALICE}" may not manage domain',
                    address.split("@")[1])
    refused_cli(["sendas", "who", "not an address"], env, owner, "not an address")
    assert cli(["sendas", "who", "info@example.org", "--dsn", dsn], check=True).stdout == "box@example.org\n"
    assert cli(["sendas", "who", "x@elsewhere.test", "--dsn", dsn], check=True).stdout == (
        "nobody may send as x@elsewhere.test\n")


def test_services_scoped(cluster, owner, alice):
    """set_mailbox_service/set_domain_service: alice switches services of her mailboxes,
    her domain and its alias domain; bob's mailbox or domain is refused, also through
    `mailbox deny` and `domain deny`, changing nothing."""
    assert alice.execute("SELECT disabled_services FROM set_mailbox_service('box@example.com', 'imap', false)"
                         ).fetchone() == (["imap"],)
    for d in ("example.com", "example.net"):
        assert alice.execute("SELECT disabled_services FROM set_domain_service(%s, 'pop3', false)",
                             (d,)).fetchone() == (["pop3"],)
    refused(alice, owner, "SELECT set_mailbox_service('box@example.org', 'imap', false)", ALICE, "example.org")
    refused(alice, owner, "SELECT set_mailbox_service('nobody@example.org', 'imap', true)", ALICE, "example.org")
    refused(alice, owner, "SELECT set_domain_service('example.org', 'imap', false)", ALICE, "example.org")
    refused(alice, owner, "SELECT set_domain_service('nothere.test', 'imap', false)", ALICE, "nothere.test")
    env = as_(cluster, ALICE)
    assert cli(["mailbox", "allow", "box@example.com", "imap"], env=env, check=True).stdout == \
        "box@example.com: turned off: nothing\n"
    for args in (["mailbox", "deny", "box@example.org", "imap"], ["domain", "deny", "example.org", "imap", "pop3"]):
        refused_cli(args, env, owner, f'admin "{ALICE}" may not manage domain "example.org"')


def test_cross_customer_edges(owner, alice):
    """The edges decided: an alias in alice's domain may forward to bob's address (as to
    any outside address); a catch-all of her own domain is hers, bob's catch-all is not;
    a send-as grant across customers is refused either way round (test_send_as_scoped)."""
    alice.execute("SELECT add_alias('fwd@example.com', 'box@example.org')")
    alice.execute("SELECT add_alias('@example.com', 'box@example.com')")
    refused(alice, owner, "SELECT add_alias('@example.org', 'box@example.com')", ALICE, "example.org")
    assert owner.execute("SELECT alias, email FROM aliases ORDER BY 1").fetchall() == [
        ("@example.com", "box@example.com"), ("fwd@example.com", "box@example.org")]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_import_scoped(cluster, owner, tmp_path):
    """A file of alice's own rows imports (a forward to bob's address included); a file
    with any row in bob's domain (or a domain not hosted) is refused whole: each such line
    named with its domain, and nothing else said, not even that bob's box@ exists; nothing
    written, no staged row left."""
    env = as_(cluster, ALICE)
    good = write(tmp_path, "good.csv",
                 "kind,address,destination,password,subject,body\n"
                 "mailbox,new@example.com,,new secret 1,,\n"
                 "alias,info@example.com,new@example.com,,,\n"
                 "alias,fwd@example.com,box@example.org,,,\n"
                 "alias,@example.com,box@example.com,,,\n"
                 "sendas,info@example.net,new@example.com,,,\n"
                 "vacation,new@example.com,,,Away,Back soon\n")
    assert cli(["import", str(good)], env=env, check=True).stdout == f"imported 6 row(s) from {good}\n"
    assert owner.execute("SELECT count(*) FROM users WHERE email = 'new@example.com'").fetchone() == (1,)
    bad = write(tmp_path, "bad.csv",
                "kind,address,destination,password\n"
                "mailbox,two@example.com,,two secret 2\n"     # fine
                "mailbox,box@example.org,,spy secret 3\n"     # 3: bob's, and it exists
                "alias,@example.org,box@example.com,\n"      # 4: bob's catch-all
                "alias,x@example.com,box@example.org,\n"     # fine: a forward
                "sendas,box@example.org,two@example.com,\n"  # 6: send as bob's address
                "sendas,y@example.com,box@example.org,\n"    # 7: bob's login
                "domain,new.test,,\n"                         # 8: a domain not hers
                "domain,alias.test,example.org,\n"            # 9: and an alias domain of bob's
                "mailbox,z@nothere.test,,z secret 4\n")        # 10
    before = table_checksums(owner)
    r = cli(["import", str(bad)], env=env)
    assert r.exit_code == 1, r
    said = [f'{bad}:{line}: admin "{ALICE}" may not manage domain "{d}"' for line, d in (
        (3, "example.org"), (4, "example.org"), (6, "example.org"), (7, "example.org"), (8, "new.test"),
        (9, "alias.test"), (9, "example.org"), (10, "nothere.test"))]
    assert r.stderr.splitlines()[:-1] == said, r.stderr
    assert f"7 bad rows (8 problems) in {bad}; nothing was imported" in r.stderr.splitlines()[-1], r
    assert table_checksums(owner) == before, "nothing written, nothing left staged"
    assert owner.execute("SELECT count(*) FROM import_staging").fetchone() == (0,)
    # the dry run says the same; bob's own rows go in for bob
    assert cli(["import", str(bad), "--dry-run"], env=env).stderr == r.stderr
    theirs = write(tmp_path, "bob.csv", "kind,address,password\nmailbox,two@example.org,two secret 2\n")
    before = table_checksums(owner)
    assert cli(["import", str(theirs)], env=env).stderr.splitlines() == [
        f'{theirs}:2: admin "{ALICE}" may not manage domain "example.org"',
        f"mailbook: 1 bad row in {theirs}; nothing was imported"]
    assert table_checksums(owner) == before
    cli(["import", str(theirs)], env=as_(cluster, BOB), check=True)


def test_import_batch_scoped_in_sql(owner, alice):
    """The same through psql: alice stages rows herself and calls import_batch(); a row of
    bob's comes back as a problem, and the staged rows are gone."""
    with alice.transaction():
        alice.execute("INSERT INTO import_staging (kind, address, password) VALUES"
                      " ('mailbox', 'a@example.com', 'a secret 1'), ('mailbox', 'b@example.org', 'b secret 2')")
        problems = alice.execute("SELECT line, problem FROM import_batch()").fetchall()
    assert problems == [(3, f'admin "{ALICE}" may not manage domain "example.org"')]
    assert owner.execute("SELECT count(*) FROM import_staging").fetchone() == (0,)
    assert owner.execute("SELECT count(*) FROM users WHERE email = 'a@example.com'").fetchone() == (0,)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        alice.execute("SELECT * FROM import_staging")


def test_import_nested_maildirs_scoped(cluster, owner, tmp_path):
    """tests/test_hostile_admin.py's nested-maildir import, as a customer's admin: every
    nested maildir is named by line, and nothing is written. (A maildir around others,
    the domain's own directory, is refused before: test_import_maildir_outside_scoped.)"""
    f = write(tmp_path, "nested.csv",
              "kind,address,password,maildir\n"
              "mailbox,a1@example.com,secret one 1,example.com/a1/\n"
              "mailbox,a2@example.com,secret two 2,example.com/a1/sub/\n"     # inside line 2
              "mailbox,a4@example.com,secret four 4,example.com/box/x/\n")    # inside box's
    before = table_checksums(owner)
    r = cli(["import", str(f)], env=as_(cluster, ALICE))
    assert r.exit_code == 1, r
    assert f'{f}:3: maildir "example.com/a1/sub/" lies inside the maildir "example.com/a1/" on line 2' in r.stderr
    assert (f'{f}:4: maildir "example.com/box/x/" lies inside the maildir "example.com/box/" of "box@example.com"'
            in r.stderr)
    assert table_checksums(owner) == before


def test_import_maildir_outside_scoped(cluster, owner, tmp_path):
    """An import follows new_mailbox()'s rule for a customer's admin: a maildir the file
    gives lies strictly below its own domain's directory. One in another customer's tree,
    or the domain directory itself, is refused whole, by line, before any other check
    (which would name the other customer's mailbox); nothing written."""
    f = write(tmp_path, "outside.csv",
              "kind,address,password,maildir\n"
              "mailbox,ok@example.com,secret ok 1,example.com/ok/\n"
              "mailbox,spy@example.com,secret spy 2,example.org/box/sub/\n"   # in bob's tree
              "mailbox,all@example.com,secret all 3,example.com/\n")          # the domain directory
    before = table_checksums(owner)
    r = cli(["import", str(f)], env=as_(cluster, ALICE))
    assert r.exit_code == 1, r
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f'{f}:3: maildir "example.org/box/sub/" of "spy@example.com" lies outside'), r.stderr
    assert lines[1].startswith(f'{f}:4: maildir "example.com/" of "all@example.com" lies outside'), r.stderr
    assert "box@example.org" not in r.stderr
    assert len(lines) == 3 and "nothing was imported" in lines[2], r.stderr
    assert table_checksums(owner) == before


def test_import_staging_leftovers_scoped(cluster, owner, alice, tmp_path):
    """tests/test_hostile_admin.py's staging leftovers, as a customer's admin: she cannot
    stage a row into another transaction's batch; a row she commits outside an import (in
    bob's domain, even) is never imported and is cleared by her next import."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        alice.execute("INSERT INTO import_staging (batch, kind, address, password)"
                      " VALUES ((pg_current_xact_id()::text::bigint + 5)::text::xid8, 'mailbox',"
                      " 'backdoor@example.org', 'backdoor secret')")
    alice.execute("INSERT INTO import_staging (kind, address, password)"
                  " VALUES ('mailbox', 'stray@example.org', 'stray secret')")  # committed, own batch
    f = write(tmp_path, "users.csv", "kind,address,password\nmailbox,real@example.com,real secret 1\n")
    cli(["import", str(f)], env=as_(cluster, ALICE), check=True)
    assert [e for (e,) in owner.execute("SELECT email FROM users ORDER BY 1")] == [
        "box@example.com", "box@example.org", "real@example.com"]
    assert owner.execute("SELECT count(*) FROM import_staging").fetchone() == (0,)


def test_import_statistics_scoped(cluster, owner, tmp_path):
    """tests/test_hostile_admin.py's statistics check, as a customer's admin: her import
    analyzes the staged rows and no plaintext password reaches pg_statistic."""
    f = write(tmp_path, "many.csv", "kind,address,password,realname\n" + "".join(
        f"mailbox,u{i}@example.com,Plain-{i:04d}-secret,User {i}\n" for i in range(400)))
    cli(["import", str(f)], env=as_(cluster, ALICE), check=True)
    analyzed = owner.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'import_staging'").fetchone()[0]
    leaked = owner.execute("SELECT attname FROM pg_stats WHERE tablename = 'import_staging'"
                           " AND (most_common_vals::text LIKE '%Plain-%' OR histogram_bounds::text LIKE '%Plain-%'"
                           "      OR attname IN ('password', 'password_hash'))").fetchall()
    assert analyzed > 0, "the import no longer analyzes its staged rows: this test proves nothing"
    assert leaked == [], f"plaintext passwords reached pg_statistic: {leaked}"


def mine(row: dict) -> bool:
    """Whether an exported row is alice's, by sql/api/85_scoped_reads.sql's rule."""
    key = row["destination"] if row["kind"] == "sendas" else row["address"]
    domain = key if row["kind"] == "domain" else key.lstrip("'").rpartition("@")[2]
    return domain in ("example.com", "example.net")


def test_export_scoped(cluster, dsn, owner, alice, bob, tmp_path):
    """A customer's admin exports its domains' rows (domains and alias domains, mailboxes,
    aliases and catch-alls, send-as, vacations), the same rows as the owner's export
    carries for them but without a hash, and not one row of the other customer; the file
    is 0600. A mailadmin is still refused."""
    for conn, d, alias_domain in ((alice, "example.com", "example.net"), (bob, "example.org", None)):
        conn.execute(f"SELECT add_mailbox_hashed('x@{d}', %s, 'X of {d}')", (HASH,))
        conn.execute(f"SELECT add_alias('info@{d}', 'x@{d}'), add_alias('@{d}', 'box@{d}')")
        conn.execute(f"SELECT allow_send_as('x@{d}', 'info@{alias_domain or d}')")
        conn.execute(f"SELECT set_vacation('x@{d}', 'Away', '=cmd|x')")
    path = tmp_path / "alice.csv"
    r = cli(["export", str(path)], env=as_(cluster, ALICE), check=True)
    assert "of your domains, without password hashes" in r.stdout, r
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    exported = path.read_text()
    assert "example.org" not in exported and "$2y$" not in exported, exported
    everything = cli(["export", "-", "--dsn", dsn], check=True).stdout
    expected = [dict(r, password_hash="") for r in csv.DictReader(io.StringIO(everything)) if mine(r)]
    got = list(csv.DictReader(io.StringIO(exported)))
    assert got == expected
    assert {r["kind"] for r in got} == {"domain", "mailbox", "alias", "sendas", "vacation"}
    assert [r["address"] for r in got if r["kind"] == "domain"] == ["example.com", "example.net"]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        alice.execute("SELECT * FROM users")
    owner.execute("SET ROLE mailadmin")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        owner.execute("SELECT * FROM my_export()")


def test_log_scoped(cluster, owner, alice, bob):
    """`mailbook log` for a customer's admin shows its domains' changes only (mailboxes,
    aliases, its domains' rows, send-as, vacations, its own scope), through my_audit_log();
    not bob's, not a row that only points at her (bob's forward to her box), not the
    settings or a TRUNCATE, not what happened to her domain before she was given it. The
    audit_log table stays unreadable."""
    owner.execute("SELECT add_alias('fwd@example.org', 'box@example.com')")
    owner.execute("SELECT allow_send_as('box@example.org', 'box@example.com')")  # bob's login, her address
    owner.execute("UPDATE settings SET bcrypt_cost = 4")
    owner.execute("UPDATE settings SET bcrypt_cost = 5; UPDATE settings SET bcrypt_cost = 4")
    owner.execute("TRUNCATE maildir_purge_queue")
    alice.execute("SELECT add_alias('team@example.com', 'box@example.com')")
    alice.execute("SELECT set_domain_service('example.net', 'pop3', false)")
    alice.execute("SELECT allow_send_as('box@example.com', 'team@example.net')")
    alice.execute("SELECT set_vacation('box@example.com', 'Away', 'Back soon')")
    rows = json.loads(cli(["log", "--limit", "10000", "--json"], env=as_(cluster, ALICE), check=True).stdout)
    keys = {(r["table"], r["key"]) for r in rows}
    assert {("users", "box@example.com"), ("aliases", "team@example.com -> box@example.com"),
            ("transports", "example.net"), ("send_as", "box@example.com -> team@example.net"),
            ("vacations", "box@example.com"), ("admin_scopes", f"{ALICE} -> example.com")} <= keys, keys
    granted = owner.execute("SELECT granted FROM admin_scopes WHERE admin = %s", (ALICE,)).fetchone()[0]
    for r in rows:
        assert r["key"] and r["table"] != "settings", r
        assert "example.org" not in r["key"].split(" -> ")[0], r
        if r["table"] == "admin_scopes":
            assert r["key"].startswith(f"{ALICE} -> "), r
    assert not [r for r in rows if (r["table"], r["key"], r["operation"]) == ("transports", "example.com", "INSERT")], \
        "added before she was given it"
    assert owner.execute("SELECT min(at) FROM audit_log WHERE id = ANY(%s)", ([r["id"] for r in rows],)
                         ).fetchone()[0] >= granted
    bobs = json.loads(cli(["log", "--limit", "10000", "--json"], env=as_(cluster, BOB), check=True).stdout)
    assert ("aliases", "fwd@example.org -> box@example.com") in {(r["table"], r["key"]) for r in bobs}
    assert not {r["id"] for r in bobs} & {r["id"] for r in rows}
    # the filters, as the table's
    assert cli(["log", "--key", "fwd@example.org"], env=as_(cluster, ALICE), check=True).stdout == "(no changes)\n"
    newest = json.loads(cli(["log", "--limit", "1", "--table", "vacations", "--since", "1 hour", "--json"],
                            env=as_(cluster, ALICE), check=True).stdout)
    assert [(r["table"], r["key"], r["operation"]) for r in newest] == [("vacations", "box@example.com", "INSERT")]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        alice.execute("SELECT * FROM audit_log")


def test_maildir_queue_scoped(cluster, owner, alice):
    """A customer's admin lists its domains' queued maildirs (`maildirs list`), with a
    reason that names nobody (the mailbox in the way is bob's here); claiming and
    forgetting stay mailadmin's: refused by PostgreSQL, also through `maildirs forget`."""
    owner.execute("SELECT remove_mailbox('box@example.com'), remove_mailbox('box@example.org')")
    owner.execute("SELECT add_mailbox('in@example.org', 'pw pw pw in', NULL, 'example.com/box/in/')")
    listed = json.loads(cli(["maildirs", "list", "--json"], env=as_(cluster, ALICE), check=True).stdout)
    assert [(m["maildir"], m["removed_mailbox"], m["in_use"]) for m in listed] == [
        ("example.com/box/", "box@example.com", True)]
    assert alice.execute("SELECT reason FROM queued_maildirs()").fetchall() == [
        ("a mailbox's maildir is at, above or below it",)]
    owner.execute("SET ROLE mailadmin")
    assert len(owner.execute("SELECT * FROM queued_maildirs()").fetchall()) == 2
    assert "in@example.org" in owner.execute("SELECT reason FROM queued_maildirs() WHERE in_use").fetchone()[0]
    owner.execute("RESET ROLE")
    before = table_checksums(owner)
    for call in ("SELECT claim_maildir('example.com/box/')", "SELECT forget_maildir('example.com/box/')"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for function"):
            alice.execute(call)
    refused_cli(["maildirs", "forget", "example.com/box/"], as_(cluster, ALICE), owner, "permission denied")
    assert table_checksums(owner) == before


def test_domain_list_scoped(cluster, dsn, owner):
    """`mailbook domain list` shows a customer's admin its domains and their alias domains
    only, with the counts mailadmin sees for them."""
    for name, domains in ((ALICE, ["example.com", "example.net"]), (BOB, ["example.org"])):
        listed = json.loads(cli(["domain", "list", "--json"], env=as_(cluster, name), check=True).stdout)
        assert [d["domain"] for d in listed] == domains
    everything = json.loads(cli(["domain", "list", "--json", "--dsn", dsn], check=True).stdout)
    mine = json.loads(cli(["domain", "list", "--json"], env=as_(cluster, ALICE), check=True).stdout)
    assert mine == [d for d in everything if d["domain"] in ("example.com", "example.net")]
