"""A customer's admin (issue 32): two customers, alice_com (example.com, and its alias
domain example.net) and bob_org (example.org), each a real login made by `mailbook admin
add` and a member of maildomainadmin, call the SQL API as psql would. Inside its scope
each granted function works; across the boundary each is refused with 42501, a message
naming the admin and the domain, and changes nothing; every function not granted to
maildomainadmin is refused whatever the domain; no table or view is readable.

("alice", the harness's help-desk login, is a member of mailadmin: a global admin.)
pgTAP (tests/pgtap/18_admin_scopes.sql) holds the role, the table and the audit."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.harness.database import mail_database, table_checksums
from tests.harness.process import cli

DB = "admin_scopes"
ALICE, BOB = "alice_com", "bob_org"
PASSWORDS = {ALICE: "alice-com-pw-for-tests", BOB: "bob-org-pw-for-tests"}

# what maildomainadmin may EXECUTE: the functions that check the scope (and nothing else)
GRANTED = {
    "add_alias", "add_mailbox", "add_mailbox_hashed", "admin_may_manage", "clear_vacation", "domain_admins",
    "existing_mailbox", "managed_domains", "my_aliases", "my_mailbox", "my_mailboxes", "my_vacations", "new_mailbox",
    "remove_alias", "remove_mailbox", "require_domain_scope", "set_mailbox_active", "set_mailbox_quota", "set_password", "set_vacation",
    # tests/test_admin_scopes_paths.py
    "allow_send_as", "disallow_send_as", "set_mailbox_service", "set_domain_service", "import_batch",
    "queued_maildirs", "my_domains", "my_audit_log", "my_export", "my_send_as", "who_may_send_as",
    "dkim_dns_records", "stale_mailboxes",
    # a reseller's (tests/test_resellers.py): refused to a plain domain admin inside, with 42501
    "add_alias_domain", "add_domain", "grant_domain_admin", "remove_domain", "resellers",
    "revoke_domain_admin", "set_domain_active", "set_domain_limits", "set_mailbox_quota_cap", "whoami",
    # app passwords and forwards (issue 33): tests/test_app_passwords.py, tests/test_forward.py
    "add_app_password", "app_passwords_list", "revoke_app_password", "set_forward", "forward_of", "clear_forward",
    # login networks (issue 33): tests/test_login_networks.py
    "set_login_networks", "clear_login_networks", "login_networks",
    # delete with a grace period (issue 33): tests/test_grace_delete.py
    "restore_mailbox", "removed_mailboxes_list",
    # password expiry (issue 33): tests/test_password_expiry.py
    "set_password_max_age", "clear_password_max_age", "password_max_age", "passwords_expiring",
    # renaming a mailbox (issue 33): tests/test_rename.py
    "rename_mailbox",
}

# each granted call that touches a domain, with {d} for the domain: (setup as the owner, call)
CALLS = {
    "add_mailbox": (None, "SELECT add_mailbox('new@{d}', 'pw pw pw new')"),
    "add_mailbox_hashed": (None, "SELECT add_mailbox_hashed('new@{d}', '{{BLF-CRYPT}}$2y$10$' || repeat('a', 53))"),
    "new_mailbox": (None, "SELECT new_mailbox('new@{d}', NULL, NULL, NULL)"),
    "existing_mailbox": (None, "SELECT existing_mailbox('box@{d}')"),
    "set_password": (None, "SELECT set_password('box@{d}', 'another pw pw')"),
    "disable": (None, "SELECT set_mailbox_active('box@{d}', false)"),
    "set_mailbox_quota": (None, "SELECT set_mailbox_quota('box@{d}', 1000000)"),
    "remove_mailbox": (None, "SELECT remove_mailbox('box@{d}')"),
    "remove_mailbox_keep": (None, "SELECT remove_mailbox('box@{d}', 30)"),
    "restore_mailbox": ("SELECT remove_mailbox('box@{d}', 30)", "SELECT restore_mailbox('box@{d}')"),
    "add_alias": (None, "SELECT add_alias('info@{d}', 'box@{d}')"),
    "add_catch_all": (None, "SELECT add_alias('@{d}', 'box@{d}')"),
    "remove_alias": ("SELECT add_alias('sales@{d}', 'box@{d}')", "SELECT remove_alias('sales@{d}')"),
    "set_vacation": (None, "SELECT set_vacation('box@{d}', 'Away', 'Back soon')"),
    "clear_vacation": ("SELECT set_vacation('box@{d}', 'Away', 'Back soon')", "SELECT clear_vacation('box@{d}')"),
    "set_login_networks": (None, "SELECT set_login_networks('box@{d}', ARRAY['192.0.2.0/24'])"),
    "set_domain_networks": (None, "SELECT set_login_networks('{d}', ARRAY['2001:db8::/32'])"),
    "clear_login_networks": ("SELECT set_login_networks('{d}', ARRAY['192.0.2.9'])", "SELECT clear_login_networks('{d}')"),
    "login_networks": (None, "SELECT login_networks('box@{d}')"),
    "set_password_max_age": (None, "SELECT set_password_max_age('box@{d}', 90)"),
    "set_domain_password_age": (None, "SELECT set_password_max_age('{d}', 30)"),
    "clear_password_max_age": ("SELECT set_password_max_age('{d}', 30)", "SELECT clear_password_max_age('{d}')"),
    "password_max_age": (None, "SELECT password_max_age('box@{d}')"),
    "rename_mailbox": (None, "SELECT rename_mailbox('box@{d}', 'renamed@{d}', true)"),
}


@pytest.fixture(scope="module")
def dsn(cluster, tmp_path_factory):
    with mail_database(cluster, DB) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
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
        conn.execute("DELETE FROM vacations; DELETE FROM aliases; DELETE FROM users; DELETE FROM maildir_purge_queue;"
                     " DELETE FROM removed_mailboxes")  # former_addresses go with their users
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


@pytest.mark.parametrize("call", CALLS)
def test_scoped_call_inside(call, owner, alice, bob):
    """Each granted function works for a customer's admin in its own domain (alice in
    example.com, bob in example.org)."""
    setup, statement = CALLS[call]
    for conn, d in ((alice, "example.com"), (bob, "example.org")):
        if setup:
            owner.execute(setup.format(d=d))
        before = table_checksums(owner)
        conn.execute(statement.format(d=d))
        assert table_checksums(owner) != before or call in ("new_mailbox", "existing_mailbox", "login_networks", "password_max_age"), call


@pytest.mark.parametrize("call", CALLS)
def test_scoped_call_across(call, owner, alice, bob):
    """Across the boundary each is refused with 42501, naming the admin and the domain,
    and changes nothing: alice in bob's example.org, bob in alice's example.com and its
    alias domain example.net, either in a domain not hosted at all."""
    setup, statement = CALLS[call]
    for conn, name, d in ((alice, ALICE, "example.org"), (bob, BOB, "example.com"), (bob, BOB, "example.net"),
                          (alice, ALICE, "nothere.test")):
        if setup and d in ("example.com", "example.org"):  # an alias domain has no mailboxes
            owner.execute(setup.format(d=d))
        before = table_checksums(owner)
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as exc:
            conn.execute(statement.format(d=d))
        assert exc.value.diag.message_primary == f'admin "{name}" may not manage domain "{d}"', call
        assert table_checksums(owner) == before, (call, d)


def test_forward_to_another_customer(owner, alice):
    """An alias in alice's domain may forward to bob's address, as to any outside address:
    the destination is not hers to manage, only the alias is. The change is audited under
    her own login."""
    alice.execute("SELECT add_alias('fwd@example.com', 'box@example.org')")
    assert owner.execute("SELECT email FROM aliases WHERE alias = 'fwd@example.com'").fetchall() == [("box@example.org",)]
    assert owner.execute("SELECT login_role, acting_role, operation FROM audit_log WHERE table_name = 'aliases'"
                         " ORDER BY id DESC LIMIT 1").fetchone() == (ALICE, ALICE, "INSERT"), "audited under her login"


def test_scoped_listing(owner, alice, bob):
    """my_mailboxes() shows each admin its domains' mailboxes only; domain_admins() its own
    scope; a global admin sees all of both."""
    assert alice.execute("SELECT email FROM my_mailboxes()").fetchall() == [("box@example.com",)]
    assert bob.execute("SELECT email FROM my_mailboxes()").fetchall() == [("box@example.org",)]
    assert alice.execute("SELECT admin, domain FROM domain_admins()").fetchall() == [(ALICE, "example.com")]
    owner.execute("SET ROLE mailadmin")
    assert len(owner.execute("SELECT * FROM my_mailboxes()").fetchall()) == 2
    assert owner.execute("SELECT admin, domain FROM domain_admins()").fetchall() == [
        (ALICE, "example.com"), (BOB, "example.org")]


def test_scoped_removed_list(owner, alice, bob):
    """removed_mailboxes_list() shows a customer's admin the mailboxes removed with a
    grace period in its own domains only; the other's stays out of its reach."""
    alice.execute("SELECT remove_mailbox('box@example.com', 30)")
    bob.execute("SELECT remove_mailbox('box@example.org', 30)")
    assert alice.execute("SELECT email, restorable FROM removed_mailboxes_list()").fetchall() == [("box@example.com", True)]
    assert bob.execute("SELECT email FROM removed_mailboxes_list()").fetchall() == [("box@example.org",)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        bob.execute("SELECT restore_mailbox('box@example.com')")
    assert alice.execute("SELECT email FROM restore_mailbox('box@example.com')").fetchall() == [("box@example.com",)]


def test_scoped_expiring_list(owner, alice, bob):
    """passwords_expiring() shows a customer's admin the expiring passwords of its own
    domains only; a global admin sees both."""
    owner.execute("UPDATE transports SET password_max_age = 30 WHERE domain IN ('example.com', 'example.org')")
    owner.execute("UPDATE users SET password_changed = now() - interval '40 days'")
    try:
        assert alice.execute("SELECT email, expired FROM passwords_expiring(14)").fetchall() == [("box@example.com", True)]
        assert bob.execute("SELECT email FROM passwords_expiring(14)").fetchall() == [("box@example.org",)]
        owner.execute("SET ROLE mailadmin")
        assert len(owner.execute("SELECT * FROM passwords_expiring(14)").fetchall()) == 2
    finally:
        owner.execute("RESET ROLE")
        owner.execute("UPDATE transports SET password_max_age = NULL")


def test_ungranted_functions_refused(owner, alice):
    """maildomainadmin may EXECUTE exactly the scope-checked functions; every other
    function of schema public (from the catalogue, so a new one is covered) is refused
    with 42501 before it runs, whatever its arguments, and changes nothing. (The NULLs
    are subqueries: the planner folds a STRICT function of constant NULLs to NULL
    without calling it, nor checking its privilege.)"""
    rows = owner.execute(
        "SELECT p.proname, format('%s(%s)', p.oid::regproc, (SELECT string_agg(format('(SELECT NULL::%s)', format_type(t, NULL)), ', ')"
        "                                                  FROM unnest(p.proargtypes) AS t)),"
        "       has_function_privilege('maildomainadmin', p.oid, 'EXECUTE')"
        "  FROM pg_proc p"
        " WHERE p.pronamespace = 'public'::regnamespace AND p.prokind = 'f'"
        "   AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)"
        "   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')").fetchall()
    assert {name for name, _, granted in rows if granted} == GRANTED
    before = table_checksums(owner)
    refused = 0
    for _, call, granted in rows:
        if granted:
            continue
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for function"):
            alice.execute(f"SELECT {call}")
            pytest.fail(call)
        refused += 1
    assert refused > 50 and table_checksums(owner) == before


def test_scoped_admin_reads_no_table(owner, alice):
    """No table or view of schema public is readable by a customer's admin: not users
    (hashes), not admin_scopes (the other customers), not the mailboxes view."""
    relations = [r for (r,) in owner.execute(
        "SELECT quote_ident(relname) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " AND relkind IN ('r', 'v', 'p') ORDER BY 1")]
    assert {"users", "admin_scopes", "mailboxes"} <= set(relations)
    for relation in relations:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            alice.execute(f"SELECT 1 FROM public.{relation} LIMIT 1")


def test_admin_cli(cluster, dsn, owner, tmp_path):
    """`mailbook admin add/list/remove` with the real CLI: an existing login gains a domain
    without a password; a domain it does not manage refuses the removal in one line,
    changing nothing; a removed scope refuses the next call; a global admin or a service
    role is refused, and the membership the command granted on the way is rolled back."""
    r = cli(["admin", "add", ALICE, "--domain", "example.org", "--dsn", dsn], check=True)
    assert r.stdout.splitlines() == [f"{ALICE} manages example.org"]
    listed = cli(["admin", "list", "--dsn", dsn, "--json"], check=True).stdout
    assert '"example.org"' in listed and BOB in listed
    r = cli(["admin", "remove", ALICE, "--domain", "example.org", "--domain", "nothere.test", "--dsn", dsn])
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "nothere.test" in r.stderr, r
    assert cli(["admin", "remove", ALICE, "--domain", "example.org", "--dsn", dsn], check=True).stdout == \
        f"{ALICE} manages 1 domain(s) fewer\n"
    with psycopg.connect(login_dsn(cluster, ALICE), autocommit=True) as alice:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            alice.execute("SELECT existing_mailbox('box@example.org')")
    r = cli(["admin", "add", "alice", "--domain", "example.com", "--dsn", dsn])
    assert r.exit_code == 1 and "member of mailadmin" in r.stderr, r
    r = cli(["admin", "add", "mailreader", "--domain", "example.com", "--dsn", dsn])
    assert r.exit_code == 1 and "one of mailbook's own roles" in r.stderr, r
    assert owner.execute("SELECT pg_has_role('mailreader', 'maildomainadmin', 'MEMBER')").fetchone() == (False,)


def test_doctor_knows_scoped_admins(dsn):
    """doctor's catalogue check expects the role maildomainadmin and its grants, and takes
    customers' logins in it as expected (like the help desk's in mailadmin); one that
    may hand the role on is reported."""
    def catalogue():
        r = cli(["doctor", "--dsn", dsn, "--json"])
        return next(c for c in json.loads(r.stdout) if c["check"] == "catalogue")
    assert catalogue()["status"] == "pass", catalogue()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"GRANT maildomainadmin TO {ALICE} WITH ADMIN OPTION")
        try:
            found = catalogue()
        finally:
            conn.execute(f"REVOKE ADMIN OPTION FOR maildomainadmin FROM {ALICE}")
    assert found["status"] == "fail" and f"{ALICE} may grant maildomainadmin to others" in found["detail"], found


def test_rollback_refused_while_scoped(cluster, fresh_db):
    """Rolling back 0207 is refused, in one line, while a scope exists (it would silently
    turn every customer's admin into one that manages nothing); once revoked, it goes."""
    cli(["migrate", "apply", "--dsn", fresh_db], check=True)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE ROLE t32_carol NOLOGIN; GRANT maildomainadmin TO t32_carol")
        try:
            conn.execute("SELECT add_domain('example.com'); SELECT grant_domain_admin('t32_carol', 'example.com')")
            # the migrations after 0207 first (0209, DKIM keys: none here)
            newer = [m for (m,) in conn.execute("SELECT migration_id FROM _yoyo_migration"
                                                " WHERE migration_id > '0207_add_admin_scopes'")]
            if newer:
                cli(["migrate", "rollback", "--count", str(len(newer)), "--dsn", fresh_db], check=True)
            r = cli(["migrate", "rollback", "--dsn", fresh_db])
            assert r.exit_code == 1 and "domain admin scopes exist" in r.stderr and r.stderr.count("\n") == 1, r
            assert conn.execute("SELECT count(*) FROM admin_scopes").fetchone() == (1,)
            # a rollback above took the API away until the next apply: the owner deletes the row
            conn.execute("DELETE FROM admin_scopes" if newer else "SELECT revoke_domain_admin('t32_carol')")
            assert "rolled back 0207_add_admin_scopes" in cli(["migrate", "rollback", "--dsn", fresh_db], check=True).stdout
            assert conn.execute("SELECT has_database_privilege('maildomainadmin', current_database(), 'CONNECT'),"
                                " has_schema_privilege('maildomainadmin', 'public', 'USAGE')").fetchone() == (False, False)
        finally:
            conn.execute("DROP ROLE t32_carol")


def test_cli_as_scoped_admin(cluster, owner):
    """The provisioning commands a customer's admin needs work with its own login
    (MAILBOOK_DSN; a password never on the command line) inside its domain, and refuse
    another customer's in one line, changing nothing."""
    env = {"MAILBOOK_DSN": login_dsn(cluster, ALICE)}
    steps = [["mailbox", "add", "new@example.com", "--password-stdin"],
             ["mailbox", "passwd", "new@example.com", "--password-stdin"],
             ["mailbox", "disable", "new@example.com"], ["mailbox", "enable", "new@example.com"],
             ["alias", "add", "info@example.com", "new@example.com", "box@example.org"],
             ["alias", "remove", "info@example.com"],
             ["vacation", "set", "new@example.com", "--subject", "Away", "--body-file", "-"],
             ["vacation", "clear", "new@example.com"], ["mailbox", "remove", "new@example.com"]]
    for args in steps:
        cli(args, input="pw pw pw new\n", env=env, check=True)  # a password, or the reply's text
        before = table_checksums(owner)
        r = cli([a.replace("example.com", "example.org") for a in args], input="pw pw pw new\n", env=env)
        assert r.exit_code == 1 and r.stderr.count("\n") == 1, (args, r)
        assert f'admin "{ALICE}" may not manage domain "example.org"' in r.stderr, (args, r)
        assert table_checksums(owner) == before, args
    listed = json.loads(cli(["mailbox", "list", "--json"], env=env, check=True).stdout)
    assert [m["email"] for m in listed] == ["box@example.com"], "her domains' mailboxes only"
    assert cli(["mailbox", "list", "--domain", "example.org"], env=env, check=True).stdout == "(none)\n"
