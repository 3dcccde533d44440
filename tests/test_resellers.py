"""Resellers (issue 32, migration 0208): two customers' domain admins, res_alice
(example.com) and res_bob (example.org), and a reseller, res_rex, who creates its own
domains within limits, each a real login, through psql and the CLI. Inside its scope a
reseller adds, caps, disables and removes domains and gives them sub-admins; across the
boundary, and for a plain domain admin at all, each is refused with a precise SQLSTATE
and message and changes nothing. The limits bind everyone (mailadmin and the owner's DML
too) and hold under 8 racing sessions. pgTAP: tests/pgtap/19_resellers.sql."""

from __future__ import annotations

import json
import threading

import psycopg
import pytest

from mailbook.database.privileges import ROLES
from tests.harness.database import mail_database, table_checksums
from tests.harness.process import cli

DB = "resellers"
ALICE, BOB, REX, RAY, SUB = "res_alice", "res_bob", "res_rex", "res_ray", "res_sub"
PASSWORDS = {ALICE: "res-alice-pw", BOB: "res-bob-pw", REX: "res-rex-pw", RAY: "res-ray-pw", SUB: "res-sub-pw",
             "mailreader": "res-mailreader-pw"}


@pytest.fixture(scope="module")
def dsn(cluster, tmp_path_factory):
    with mail_database(cluster, DB, mailreader=PASSWORDS["mailreader"]) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for d in ("example.com", "example.org"):
                conn.execute("SELECT add_domain(%s)", (d,))
        pw = tmp_path_factory.mktemp("pw") / "pw"
        for name, domain in ((ALICE, "example.com"), (BOB, "example.org")):
            pw.write_text(PASSWORDS[name] + "\n")
            cli(["admin", "add", name, "--domain", domain, "--password-file", str(pw), "--dsn", dsn], check=True)
        for name in (REX, RAY):
            pw.write_text(PASSWORDS[name] + "\n")
            cli(["admin", "reseller", name, "--max-domains", "2", "--max-mailboxes", "3", "--password-file", str(pw),
                 "--dsn", dsn], check=True)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {SUB} LOGIN PASSWORD '{PASSWORDS[SUB]}'; GRANT maildomainadmin TO {SUB}")
        try:
            yield dsn
        finally:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("DELETE FROM admin_scopes; DELETE FROM resellers")
            with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
                conn.execute(f"DROP ROLE IF EXISTS {ALICE}, {BOB}, {REX}, {RAY}, {SUB}")


def login_dsn(cluster, name):
    return f"host=127.0.0.1 port={cluster.port} dbname={DB} user={name} password={PASSWORDS[name]}"


def connect_as(cluster, name):
    return psycopg.connect(login_dsn(cluster, name), autocommit=True)


@pytest.fixture
def owner(dsn, cluster):
    """The superuser, after a reset: example.com (alice's) and example.org (bob's) with
    box@ each; rex holds rex.test (which it added itself, with box@rex.test), limits 2
    domains and 3 mailboxes; ray holds nothing, the same limits; sub manages nothing."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM vacations; DELETE FROM aliases; DELETE FROM users; DELETE FROM maildir_purge_queue")
        conn.execute("DELETE FROM transports WHERE alias_of IS NOT NULL")
        conn.execute("DELETE FROM transports WHERE domain NOT IN ('example.com', 'example.org')")
        conn.execute("DELETE FROM admin_scopes WHERE admin NOT IN (%s, %s)", (ALICE, BOB))
        conn.execute("UPDATE transports SET max_mailbox_quota_bytes = NULL, active = true,"
                     " max_mailboxes = NULL, max_aliases = NULL, max_quota_bytes = NULL")
        for r in (REX, RAY):
            conn.execute("SELECT make_reseller(%s, 2, 3)", (r,))
        with connect_as(cluster, REX) as rex:
            rex.execute("SELECT add_domain('rex.test')")
        for d in ("example.com", "example.org", "rex.test"):
            conn.execute("SELECT add_mailbox(%s, 'pw pw pw box')", (f"box@{d}",))
        yield conn


@pytest.fixture
def rex(cluster, owner):
    with connect_as(cluster, REX) as conn:
        yield conn


@pytest.fixture
def alice(cluster, owner):
    with connect_as(cluster, ALICE) as conn:
        yield conn


def test_reseller_manages_its_domains(owner, rex, cluster):
    """A reseller adds a domain (it enters its scope, audited under its login), an alias
    domain of it, caps, disables and enables it, gives it to a sub-admin (who then works
    in it, and whom domain_admins() shows the reseller), takes it back and removes it."""
    assert rex.execute("SELECT domain FROM add_domain('Rex2.TEST')").fetchone() == ("rex2.test",)
    assert rex.execute("SELECT array_agg(d ORDER BY d) FROM managed_domains() d").fetchone() == (["rex.test", "rex2.test"],)
    assert owner.execute("SELECT login_role, operation, row_key FROM audit_log WHERE table_name = 'admin_scopes'"
                         " ORDER BY id DESC LIMIT 1").fetchone() == (REX, "INSERT", f"{REX} -> rex2.test")
    rex.execute("SELECT add_alias_domain('rex-alias.test', 'rex2.test')")
    assert rex.execute("SELECT admin_may_manage('rex-alias.test')").fetchone() == (True,)
    rex.execute("SELECT set_domain_limits('rex2.test', 10, 20, NULL)")
    rex.execute("SELECT set_mailbox_quota_cap('rex2.test', 1000000)")
    rex.execute("SELECT set_domain_active('rex2.test', false)")
    rex.execute("SELECT set_domain_active('rex2.test', true)")
    assert owner.execute("SELECT max_mailboxes, max_aliases, max_mailbox_quota_bytes, active FROM transports"
                         " WHERE domain = 'rex2.test'").fetchone() == (10, 20, 1000000, True)
    assert rex.execute("SELECT grant_domain_admin(%s, 'rex2.test')", (SUB,)).fetchone() == (True,)
    with connect_as(cluster, SUB) as sub:
        sub.execute("SELECT add_mailbox('new@rex2.test', 'pw pw pw new', quota_bytes => 500000)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            sub.execute("SELECT add_mailbox('new@rex.test', 'pw pw pw new')")
    assert rex.execute("SELECT admin, domain FROM domain_admins()").fetchall() == [
        (REX, "rex.test"), (REX, "rex2.test"), (SUB, "rex2.test")]
    assert rex.execute("SELECT revoke_domain_admin(%s)", (SUB,)).fetchone() == (1,)
    rex.execute("SELECT remove_domain('rex2.test', cascade => true)")
    assert owner.execute("SELECT count(*) FROM transports WHERE domain LIKE 'rex%'").fetchone() == (1,)


# (who, statement, SQLSTATE, message): each refused, changing nothing
REFUSALS = [
    # a reseller across the boundary: someone else's domain
    (REX, "SELECT add_alias_domain('mine.test', 'example.com')", "42501", f'admin "{REX}" may not manage domain "example.com"'),
    (REX, "SELECT remove_domain('example.org')", "42501", f'admin "{REX}" may not manage domain "example.org"'),
    (REX, "SELECT set_domain_active('example.com', false)", "42501", f'admin "{REX}" may not manage domain "example.com"'),
    (REX, "SELECT set_domain_limits('example.com', 1, 1, NULL)", "42501",
     f'admin "{REX}" may not manage domain "example.com"'),
    (REX, "SELECT set_mailbox_quota_cap('example.com', 1000)", "42501", f'admin "{REX}" may not manage domain "example.com"'),
    (REX, f"SELECT grant_domain_admin('{SUB}', 'example.com')", "42501", f'admin "{REX}" may not manage domain "example.com"'),
    (REX, f"SELECT revoke_domain_admin('{ALICE}', 'example.com')", "42501",
     f'admin "{REX}" may not manage domain "example.com"'),
    (REX, f"SELECT revoke_domain_admin('{ALICE}')", "P0002", f'admin "{ALICE}" manages no domain'),
    (REX, "SELECT add_mailbox('x@example.com', 'pw pw pw x')", "42501", f'admin "{REX}" may not manage domain "example.com"'),
    # a reseller's sub-admins: never itself, mailbook's roles, a global admin or another reseller
    (REX, f"SELECT grant_domain_admin('{REX}', 'rex.test')", "22023", f'admin "{REX}" manages domain "rex.test" already'),
    (REX, "SELECT grant_domain_admin('mailreader', 'rex.test')", "22023",
     'role "mailreader" is one of mailbook\'s own roles, not a customer\'s login'),
    (REX, "SELECT grant_domain_admin('alice', 'rex.test')", "22023",
     'role "alice" is a member of mailadmin and manages every domain already'),
    (REX, f"SELECT grant_domain_admin('{RAY}', 'rex.test')", "22023",
     f'role "{RAY}" is another reseller: only a mailadmin gives a domain to a reseller'),
    (REX, f"SELECT revoke_domain_admin('{REX}', 'rex.test')", "22023", f'admin "{REX}" cannot give up its own domains this way'),
    # where mail goes on disk is a mailadmin's
    (REX, "SELECT add_domain('gid.test', 'virtual:', 5000)", "42501",
     f'reseller "{REX}" may not choose a transport or gid ("virtual:" 5000); a mailadmin does'),
    (REX, "SELECT add_domain('relay.test', 'smtp:[mx.example.net]')", "42501",
     f'reseller "{REX}" may not choose a transport or gid ("smtp:[mx.example.net]" NULL); a mailadmin does'),
    (REX, f"SELECT make_reseller('{REX}', 100, 100)", "42501", "permission denied for function make_reseller"),
    (REX, f"SELECT unmake_reseller('{RAY}')", "42501", "permission denied for function unmake_reseller"),
    # a plain domain admin may do none of a reseller's things, even in its own domain
    (ALICE, "SELECT add_domain('alice.test')", "42501", f'admin "{ALICE}" is not a reseller: it may not add domains'),
    (ALICE, "SELECT add_alias_domain('alice.test', 'example.com')", "42501",
     f'admin "{ALICE}" is not a reseller: it may not add alias domains'),
    (ALICE, "SELECT remove_domain('example.com', true)", "42501", f'admin "{ALICE}" is not a reseller: it may not remove domains'),
    (ALICE, "SELECT set_domain_active('example.com', false)", "42501",
     f'admin "{ALICE}" is not a reseller: it may not enable or disable domains'),
    (ALICE, "SELECT set_domain_limits('example.com', 100, 100, NULL)", "42501",
     f'admin "{ALICE}" is not a reseller: it may not cap domains'),
    (ALICE, "SELECT set_mailbox_quota_cap('example.com', NULL)", "42501",
     f'admin "{ALICE}" is not a reseller: it may not cap domains'),
    (ALICE, f"SELECT grant_domain_admin('{SUB}', 'example.com')", "42501",
     f'admin "{ALICE}" is not a reseller: it may not grant domain admins'),
    (ALICE, f"SELECT revoke_domain_admin('{BOB}', 'example.org')", "42501",
     f'admin "{ALICE}" is not a reseller: it may not revoke domain admins'),
    # the limits: rex holds 2 of 2 domains after the setup line, 1 of 3 mailboxes
    (REX, "SELECT add_domain('third.test')", "23514", f'reseller "{REX}" allows at most 2 domain(s) and has 2 already'),
    ("mailadmin", f"SELECT grant_domain_admin('{REX}', 'example.org')", "23514",
     f'reseller "{REX}" allows at most 2 domain(s) and has 2 already'),
    (REX, "SELECT add_mailbox('c@rex.test', 'pw pw pw c')", "23514",
     f'reseller "{REX}" allows at most 3 mailbox(es) across its domains and has 3 already'),
    ("mailadmin", "SELECT add_mailbox('c@rex.test', 'pw pw pw c')", "23514",
     f'reseller "{REX}" allows at most 3 mailbox(es) across its domains and has 3 already'),
    ("owner", "INSERT INTO users (email, password, maildir) SELECT 'c@rex.test', password, 'rex.test/c/' FROM users LIMIT 1", "23514",
     f'reseller "{REX}" allows at most 3 mailbox(es) across its domains and has 3 already'),
    ("mailadmin", f"SELECT make_reseller('{SUB}', -1, 1)", "22023",
     "limits must not be negative and a total quota must be positive (NULL for no cap), not -1 domains, 1 mailboxes, NULL bytes"),
    ("mailadmin", "SELECT make_reseller('res_nobody', 1, 1)", "42704", 'role "res_nobody" does not exist'),
    ("mailadmin", "SELECT make_reseller('mailauth', 1, 1)", "22023",
     'role "mailauth" is one of mailbook\'s own roles, not a customer\'s login'),
    ("mailadmin", "SELECT make_reseller('alice', 1, 1)", "22023",
     'role "alice" is a member of mailadmin and manages every domain already'),
    ("mailadmin", "SELECT make_reseller('postgres', 1, 1)", "22023", 'role "postgres" is a superuser and manages every domain already'),
]


@pytest.mark.parametrize("who, statement, sqlstate, message", REFUSALS, ids=[f"{i:02d}" for i in range(len(REFUSALS))])
def test_reseller_refusals(who, statement, sqlstate, message, owner, rex, cluster):
    """Each refusal has its SQLSTATE and a message naming the login, the domain or the
    limit with its count, and changes nothing."""
    rex.execute("SELECT add_domain('rex2.test')")  # rex: 2 of 2 domains
    rex.execute("SELECT add_mailbox('a@rex.test', 'pw pw pw a'); SELECT add_mailbox('b@rex2.test', 'pw pw pw b')")
    before = table_checksums(owner)
    if who == "owner":
        conn = owner
    elif who == "mailadmin":
        conn = owner
        owner.execute("SET ROLE mailadmin")
    else:
        conn = rex if who == REX else connect_as(cluster, who)
    try:
        with pytest.raises(psycopg.Error) as exc:
            conn.execute(statement)
    finally:
        if conn not in (owner, rex):
            conn.close()
        owner.execute("RESET ROLE")
    assert (exc.value.sqlstate, exc.value.diag.message_primary) == (sqlstate, message)
    assert table_checksums(owner) == before


def test_quota_limits(owner, rex):
    """Under a reseller's total quota a mailbox needs a quota and the sum holds; under a
    domain's largest-mailbox cap no mailbox may exceed it (nor have none). A cap lowered
    below what is held stops additions only: a password change still works."""
    owner.execute("UPDATE users SET quota_bytes = 100000 WHERE email = 'box@rex.test'")
    owner.execute(f"SELECT make_reseller('{REX}', 2, 10, 1000000)")
    before = table_checksums(owner)
    with pytest.raises(psycopg.errors.CheckViolation, match="needs a quota"):
        rex.execute("SELECT add_mailbox('a@rex.test', 'pw pw pw a')")
    rex.execute("SELECT add_mailbox('a@rex.test', 'pw pw pw a', quota_bytes => 800000)")
    with pytest.raises(psycopg.errors.CheckViolation) as exc:
        rex.execute("SELECT set_mailbox_quota('a@rex.test', 950000)")
    assert exc.value.diag.message_primary == \
        f'reseller "{REX}" caps its total quota at 1000000 bytes; its mailboxes have 900000 and would have 1050000'
    rex.execute("SELECT set_mailbox_quota_cap('rex.test', 500000)")
    with pytest.raises(psycopg.errors.CheckViolation) as exc:
        rex.execute("SELECT add_mailbox('b@rex.test', 'pw pw pw b', quota_bytes => 600000)")
    assert exc.value.diag.message_primary == \
        'domain "rex.test" caps each mailbox\'s quota at 500000 bytes; mailbox "b@rex.test" would have 600000'
    rex.execute("SELECT set_password('a@rex.test', 'another pw pw')")  # 800000 > cap, but unchanged
    owner.execute(f"SELECT make_reseller('{REX}', 0, 1, NULL)")  # below what it holds
    rex.execute("SELECT set_password('a@rex.test', 'a third pw pw')")
    with pytest.raises(psycopg.errors.CheckViolation, match="allows at most 1 mailbox"):
        rex.execute("SELECT add_mailbox('c@rex.test', 'pw pw pw c', quota_bytes => 1000)")
    assert table_checksums(owner) != before


def test_import_meets_the_limits(owner, dsn, tmp_path):
    """`mailbook import` as the DBA is refused whole when its rows would take a reseller
    past its mailbox limit, naming the limit; nothing is added."""
    csv = tmp_path / "rows.csv"
    csv.write_text("kind,address,password\nmailbox,i1@rex.test,pw pw pw i1\nmailbox,i2@rex.test,pw pw pw i2\n"
                   "mailbox,i3@rex.test,pw pw pw i3\n")
    before = table_checksums(owner)
    r = cli(["import", str(csv), "--dsn", dsn])
    assert r.exit_code == 1 and f'reseller "{REX}" allows at most 3 mailbox(es)' in r.stderr, r
    assert table_checksums(owner) == before


def test_reseller_cli(cluster, owner, dsn, tmp_path):
    """The CLI as the reseller's login (MAILBOOK_DSN, its password never on the command
    line): domain add/list/disable/enable/limits/remove, an alias domain, a sub-admin
    given and taken; another customer's domain refused in one line, changing nothing; then
    whoami for each kind of login, and the DBA's `admin reseller` rerun and `admin list`."""
    env = {"MAILBOOK_DSN": login_dsn(cluster, REX), "MAILBOOK_ADMIN_DSN": login_dsn(cluster, REX)}
    steps = [["domain", "add", "rex2.test"], ["domain", "add", "rex-alias.test", "--alias-of", "rex2.test"],
             ["domain", "disable", "rex2.test"], ["domain", "enable", "rex2.test"],
             ["domain", "limits", "rex2.test", "--mailboxes", "5", "--mailbox-quota-bytes", "1000000"],
             ["admin", "add", SUB, "--domain", "rex2.test"], ["admin", "remove", SUB, "--domain", "rex2.test"]]
    for args in steps:
        cli(args, env=env, check=True)
    domains = json.loads(cli(["domain", "list", "--json"], env=env, check=True).stdout)
    assert [(d["domain"], d["max_mailbox_quota_bytes"]) for d in domains] == [
        ("rex-alias.test", None), ("rex.test", None), ("rex2.test", 1000000)]
    for args in (["domain", "disable", "example.org"], ["domain", "remove", "example.org"],
                 ["domain", "add", "x.test", "--alias-of", "example.org"], ["domain", "limits", "example.org"],
                 ["admin", "add", SUB, "--domain", "example.org"]):
        before = table_checksums(owner)
        r = cli(args, env=env)
        assert r.exit_code == 1 and r.stderr.count("\n") == 1, (args, r)
        assert f'admin "{REX}" may not manage domain "example.org"' in r.stderr, (args, r)
        assert table_checksums(owner) == before
    r = cli(["domain", "add", "third.test"], env=env)
    assert r.exit_code == 1 and f'reseller "{REX}" allows at most 2 domain(s) and has 2 already' in r.stderr, r
    assert cli(["domain", "remove", "rex2.test", "--cascade"], env=env, check=True).stdout.endswith("removed rex2.test\n")

    whoami = cli(["whoami"], env=env, check=True).stdout
    assert whoami.splitlines() == [
        f"{REX}: reseller; may create domains within its limits, manage them and give them sub-admins",
        "domains: rex.test", "domains 1 of 2; mailboxes 1 of 3; quota bytes 0 of no cap"]
    me = json.loads(cli(["whoami", "--json"], env=env, check=True).stdout)
    assert (me["kind"], me["used_mailboxes"], me["max_domains"]) == ("reseller", 1, 2)
    kinds = {name: json.loads(cli(["whoami", "--json"], env={"MAILBOOK_DSN": login_dsn(cluster, name)},
                                  check=True).stdout)["kind"] for name in (ALICE, SUB, "mailreader")}
    assert kinds == {ALICE: "domain admin", SUB: "nothing", "mailreader": "service role"}
    assert json.loads(cli(["whoami", "--json", "--dsn", dsn], check=True).stdout)["kind"] == "superuser"
    assert "domains: example.com" in cli(["whoami"], env={"MAILBOOK_DSN": login_dsn(cluster, ALICE)}, check=True).stdout

    r = cli(["admin", "reseller", REX, "--max-domains", "5", "--max-mailboxes", "50", "--max-quota", "2G", "--dsn", dsn],
            check=True)
    assert r.stdout == f"{REX} is a reseller: domains 5, mailboxes 50, quota bytes 2147483648\n"
    listed = json.loads(cli(["admin", "list", "--json", "--dsn", dsn], check=True).stdout)
    assert {"admin": REX, "max_domains": 5, "domains": 1, "max_mailboxes": 50, "mailboxes": 1,
            "max_quota_bytes": 2147483648, "quota_bytes": 0} in listed["resellers"]
    assert {"admin": ALICE, "domain": "example.com"}.items() <= listed["scopes"][0].items()
    r = cli(["admin", "reseller", REX, "--max-quota", "lots", "--dsn", dsn])
    assert r.exit_code == 1 and "--max-quota takes a size" in r.stderr, r
    as_rex = json.loads(cli(["admin", "list", "--json"], env=env, check=True).stdout)
    assert [r["admin"] for r in as_rex["resellers"]] == [REX], "a reseller sees its own row only"


def test_role_names_match_privileges_py(owner):
    """mailbook_role_names(), which grant_domain_admin() and make_reseller() refuse, is
    the list of roles mailbook/database/privileges.py knows (less PUBLIC)."""
    (names,) = owner.execute("SELECT mailbook_role_names()").fetchone()
    assert names == [r for r in ROLES if r != "public"]


def race(cluster, calls):
    """Run each (login, statement) in its own session, all released at once by a barrier;
    the SQLSTATE of each (None: it succeeded)."""
    start = threading.Barrier(len(calls))
    outcome = [None] * len(calls)

    def work(i, name, statement):
        with connect_as(cluster, name) as conn:
            start.wait()
            try:
                conn.execute(statement)
                outcome[i] = None
            except psycopg.Error as exc:
                outcome[i] = exc.sqlstate
    threads = [threading.Thread(target=work, args=(i, *c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcome


def test_race_two_resellers_at_domain_limit(owner, cluster):
    """8 sessions, 4 of rex (1 of 3 domains held) and 4 of ray (0 of 2), add a domain
    each at once: exactly 2 of each succeed, the rest fail with 23514, and each ends at
    its limit."""
    owner.execute(f"SELECT make_reseller('{REX}', 3, 10)")
    calls = [(REX if i % 2 else RAY, f"SELECT add_domain('race{i}.test')") for i in range(8)]
    outcome = race(cluster, calls)
    for name in (REX, RAY):
        mine = [o for (who, _), o in zip(calls, outcome) if who == name]
        assert (mine.count(None), mine.count("23514")) == (2, 2), (name, outcome)
    assert owner.execute("SELECT admin, count(*) FROM admin_scopes WHERE admin IN (%s, %s) GROUP BY admin ORDER BY admin",
                         (RAY, REX)).fetchall() == [(RAY, 2), (REX, 3)]


def test_race_mailboxes_at_reseller_limit(owner, cluster):
    """8 sessions add a mailbox each at once across two of rex's domains, as rex, its
    sub-admin: rex holds 1 of 5, so exactly 4 succeed, the rest
    fail with 23514, and rex ends with 5."""
    owner.execute(f"SELECT make_reseller('{REX}', 3, 5)")
    with connect_as(cluster, REX) as rex:
        rex.execute("SELECT add_domain('rex2.test')")
        rex.execute(f"SELECT grant_domain_admin('{SUB}', 'rex2.test')")
    logins = [REX, SUB, REX, SUB, REX, SUB, REX, SUB]
    calls = [(who, f"SELECT add_mailbox('r{i}@{'rex.test' if who == REX else 'rex2.test'}', 'pw pw pw r')")
             for i, who in enumerate(logins)]
    outcome = race(cluster, calls)
    assert outcome.count(None) == 4 and outcome.count("23514") == 4, outcome
    assert owner.execute("SELECT count(*) FROM users WHERE domain IN ('rex.test', 'rex2.test')").fetchone() == (5,)
