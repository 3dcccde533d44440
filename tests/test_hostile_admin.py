"""The hostile help-desk admin, end to end (issue 15): a member of mailadmin provisions and
nothing more, and root's maintenance never destroys a live mailbox. Real Postfix delivers,
real Dovecot authenticates, real directories are purged; the admin works through the
`mailbook` command as the login `alice`, as a help-desk would.

Its counterpart (issue 28): a stolen service password, each service role played through
a real login of its own against the same world: what the thief gets is what its job
needs, and no more."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest

from mailbook.database.migrations import LOCK_KEY
from mailbook.files import write_private
from tests.harness.database import ADMIN_LOGIN, ADMIN_PASSWORD, mail_database
from tests.harness.dovecot import install_dovecot
from tests.harness.postfix import install_postfix
from tests.harness.process import cli, private_dir, remove, require_root, started

DB = "hostile"
READER_PW = "hostile reader pw"
AUTH_PW = "hostile auth pw"
QUOTA_PW = "hostile quota pw"
WEBMAIL_PW = "hostile webmail pw"


@pytest.fixture(scope="module")
def world(cluster):
    """A mail database with Postfix delivering into a mail base and Dovecot reading it."""
    require_root("the hostile-admin tests")
    root = private_dir("mailbook-hostile-")
    with mail_database(cluster, DB, mailreader=READER_PW, mailauth=AUTH_PW, mailquota=QUOTA_PW,
                       mailwebmail=WEBMAIL_PW) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE settings SET bcrypt_cost = 4")  # hundreds of imported passwords below
        with ExitStack() as stop:  # a Dovecot that fails to start leaves no Postfix behind
            stop.callback(remove, root)
            postfix = started(stop, install_postfix(root, cluster, DB, READER_PW))
            write_private(root / "auth.pw", AUTH_PW + "\n")
            dovecot = started(stop, install_dovecot(root, postfix.mail, "--port", str(cluster.port), "--dbname", DB,
                                                    "--password-file", str(root / "auth.pw")))
            yield dsn, f"host=127.0.0.1 port={cluster.port} dbname={DB} user={ADMIN_LOGIN}", postfix, dovecot


def alice(args: list[str], admin_dsn: str, input: str | None = None):
    """`mailbook ARGS` as the help-desk login."""
    return cli([*args, "--dsn", admin_dsn], input=input, env={"PGPASSWORD": ADMIN_PASSWORD})


def ok(args, admin_dsn, input=None):
    r = alice(args, admin_dsn, input)
    assert r.exit_code == 0, r
    return r


def refused(args, admin_dsn, sqlstate: str, *words: str, input=None):
    r = alice(args, admin_dsn, input)
    assert r.exit_code == 1, r
    line = r.stderr.strip()
    assert "\n" not in line and "Traceback" not in line and f"SQLSTATE {sqlstate}" in line, r
    for w in words:
        assert w in line, r
    return line


def test_a_nested_maildir_is_refused_and_purge_never_destroys_live_mail(world):
    dsn, admin_dsn, postfix, dovecot = world
    ok(["domain", "add", "example.com"], admin_dsn)
    ok(["domain", "add", "other.org"], admin_dsn)
    for who in ("foo@example.com", "boss@other.org"):
        ok(["mailbox", "add", who, "--password-stdin"], admin_dsn, f"{who} secret\n")
    postfix.send("foo@example.com", "for-foo")
    postfix.send("boss@other.org", "for-boss")
    foo_mail = postfix.delivered("example.com/foo/", "for-foo")
    boss_mail = postfix.delivered("other.org/boss/", "for-boss")

    # the two attacks the review reproduced: a maildir around foo's, one inside boss's
    refused(["mailbox", "add", "evil@example.com", "--maildir", "example.com/", "--password-stdin"], admin_dsn,
            "23P01", '"example.com/"', '"foo@example.com"', input="evil secret\n")
    refused(["mailbox", "add", "spy@example.com", "--maildir", "other.org/boss/.Archive/", "--password-stdin"],
            admin_dsn, "23P01", '"other.org/boss/"', '"boss@other.org"', input="spy secret\n")
    assert dovecot.auth_test("spy@example.com", "spy secret").returncode == 77, "spy must not exist for Dovecot"

    # a nested row from before migration 0026 (the owner's DML with the rule switched off)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE users DISABLE TRIGGER users_maildirs_apart")
        conn.execute("INSERT INTO users (email, password, maildir)"
                     " SELECT 'evil@example.com', password, 'example.com/' FROM users WHERE email = 'foo@example.com'")
        conn.execute("ALTER TABLE users ENABLE TRIGGER users_maildirs_apart")
    ok(["mailbox", "remove", "evil@example.com"], admin_dsn)
    dry = alice(["maildirs", "purge", "--base", str(postfix.mail), "--dry-run"], admin_dsn)
    assert dry.exit_code == 1, dry
    assert 'kept example.com/ (evil@example.com): the maildir "example.com/foo/" of "foo@example.com" lies inside it' \
        in dry.stdout, dry
    real = alice(["maildirs", "purge", "--base", str(postfix.mail)], admin_dsn)
    assert real.exit_code == 1 and "kept example.com/" in real.stdout, real
    assert foo_mail.exists() and boss_mail.exists(), "live mail was deleted"
    assert "example.com/" in ok(["maildirs", "list"], admin_dsn).stdout, "the entry stays for a human to decide"
    ok(["maildirs", "forget", "example.com/"], admin_dsn)


def test_an_import_names_every_nested_maildir_by_line_and_writes_nothing(world, tmp_path):
    dsn, admin_dsn, postfix, dovecot = world
    ok(["domain", "add", "imp.org"], admin_dsn)
    ok(["mailbox", "add", "chief@imp.org", "--password-stdin"], admin_dsn, "chief secret 1\n")
    f = tmp_path / "nested.csv"
    f.write_text("kind,address,password,maildir\n"
                 "mailbox,a1@imp.org,secret one 1,imp.org/a1/\n"
                 "mailbox,a2@imp.org,secret two 2,imp.org/a1/sub/\n"       # inside line 2
                 "mailbox,a3@imp.org,secret three 3,imp.org/\n"            # around chief's, and line 2's
                 "mailbox,a4@imp.org,secret four 4,imp.org/chief/x/\n")    # inside chief's and line 4's
    r = alice(["import", str(f)], admin_dsn)
    assert r.exit_code == 1, r
    assert f'{f}:3: maildir "imp.org/a1/sub/" lies inside the maildir "imp.org/a1/" on line 2' in r.stderr
    assert f'{f}:4: maildir "imp.org/" would contain the maildir "imp.org/chief/" of "chief@imp.org"' in r.stderr
    assert f'{f}:5: maildir "imp.org/chief/x/" lies inside the maildir "imp.org/chief/" of "chief@imp.org"' in r.stderr
    assert f'{f}:5: maildir "imp.org/chief/x/" lies inside the maildir "imp.org/" on line 4' in r.stderr
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE domain = 'imp.org'").fetchone() == (1,)


def test_a_symlink_that_puts_a_live_maildir_inside_a_queued_one_keeps_it(world):
    dsn, admin_dsn, postfix, dovecot = world
    ok(["domain", "add", "gone.org"], admin_dsn)
    ok(["domain", "add", "link.org"], admin_dsn)
    ok(["mailbox", "add", "old@gone.org", "--password-stdin"], admin_dsn, "old secret 1\n")
    ok(["mailbox", "add", "x@link.org", "--password-stdin"], admin_dsn, "x secret 1\n")
    postfix.send("old@gone.org", "for-old")
    postfix.delivered("gone.org/old/", "for-old")
    # on disk, link.org is a symlink into the old maildir, so x's maildir lies inside it
    base = postfix.mail
    os.symlink(base / "gone.org" / "old", base / "link.org")
    owner = (base / "gone.org" / "old").stat().st_uid
    for sub in ("", "new", "cur", "tmp"):
        (base / "link.org" / "x" / sub).mkdir(exist_ok=True)
        os.chown(base / "link.org" / "x" / sub, owner, -1)
    x_mail = base / "link.org" / "x" / "new" / "1.mail"
    x_mail.write_text("Subject: for-x\n\nlive mail\n")
    assert x_mail.resolve().is_relative_to(base / "gone.org" / "old")
    ok(["mailbox", "remove", "old@gone.org"], admin_dsn)
    r = alice(["maildirs", "purge", "--base", str(base)], admin_dsn)
    assert r.exit_code == 1, r
    assert "kept gone.org/old/ (old@gone.org): the maildir link.org/x/ of x@link.org resolves to" in r.stdout, r
    assert x_mail.exists(), "a live mailbox's mail was deleted through a symlink"
    ok(["maildirs", "forget", "gone.org/old/"], admin_dsn)


def test_a_zero_round_hash_is_refused_and_dovecot_takes_no_wrong_password(world):
    dsn, admin_dsn, postfix, dovecot = world
    ok(["domain", "add", "hash.org"], admin_dsn)
    zero = "{PBKDF2}$1$ab$0$" + "0" * 40
    refused(["mailbox", "add", "zero@hash.org", "--hashed", "--password-stdin"], admin_dsn,
            "22023", "{PBKDF2} has 0 rounds", "1000 to 1000000", input=zero + "\n")
    for guess in ("anything", "", "zero"):
        assert dovecot.auth_test("zero@hash.org", guess).returncode == 77
    costly = "$2a$31$" + "a" * 53
    refused(["mailbox", "add", "slow@hash.org", "--hashed", "--password-stdin"], admin_dsn,
            "22023", "cost 31", input=costly + "\n")
    # a PBKDF2 hash as Dovecot itself writes it is accepted and checked by Dovecot
    real = dovecot.doveadm("pw", "-s", "PBKDF2", "-p", "moved in secret").stdout.strip()
    ok(["mailbox", "add", "pbkdf2@hash.org", "--hashed", "--password-stdin"], admin_dsn, real + "\n")
    assert dovecot.auth_test("pbkdf2@hash.org", "moved in secret").returncode == 0, dovecot.log_text()
    assert dovecot.auth_test("pbkdf2@hash.org", "a wrong guess").returncode == 77


@pytest.mark.parametrize("role", ["mailowner", "mailauth", "mailreader", "postgres"])
def test_a_help_desk_login_cannot_become_another_role(world, role):
    """SET ROLE is checked against the login itself: alice is only a member of mailadmin."""
    dsn, admin_dsn, postfix, dovecot = world
    with psycopg.connect(admin_dsn, password=ADMIN_PASSWORD, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"SET ROLE {role}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"SET SESSION AUTHORIZATION {role}")


@pytest.mark.parametrize("username", ["boss@other.org' OR '1'='1", "boss@other.org'--", "' OR email LIKE '%",
                                      "%u", "boss@other.org\\", 'boss@other.org" OR "1"="1'])
def test_hostile_usernames_log_nobody_in_through_dovecot(world, username):
    """The review's username injection attempts stay refused: Dovecot escapes the
    username into its SQL, and no such address exists."""
    dsn, admin_dsn, postfix, dovecot = world
    alice(["domain", "add", "other.org"], admin_dsn)  # if the first test has not: 23505 then, harmless
    alice(["mailbox", "add", "boss@other.org", "--password-stdin"], admin_dsn, "boss@other.org secret\n")
    assert dovecot.auth_test("boss@other.org", "boss@other.org secret").returncode == 0, dovecot.log_text()
    assert dovecot.auth_test(username, "boss@other.org secret").returncode == 77, dovecot.log_text()


def test_staging_leftovers_cleared(world, tmp_path):
    """Rows a help-desk leaves in staging are never imported and are cleared."""
    dsn, admin_dsn, postfix, dovecot = world
    ok(["domain", "add", "stage.org"], admin_dsn)
    with psycopg.connect(admin_dsn, password=ADMIN_PASSWORD, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO import_staging (batch, kind, address, password)"
                         " VALUES ((pg_current_xact_id()::text::bigint + 5)::text::xid8, 'mailbox',"
                         " 'backdoor@stage.org', 'backdoor secret')")
        conn.execute("INSERT INTO import_staging (kind, address, password)"
                     " VALUES ('mailbox', 'stray@stage.org', 'stray secret')")  # committed, own batch
    csv = tmp_path / "users.csv"
    csv.write_text("kind,address,password\nmailbox,real@stage.org,real secret 1\n")
    r = ok(["import", str(csv)], admin_dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        added = [e for (e,) in conn.execute("SELECT email FROM users WHERE domain = 'stage.org'")]
        left = conn.execute("SELECT count(*) FROM import_staging").fetchone()[0]
    assert added == ["real@stage.org"], r
    assert left == 0, "a committed staging row outlived the next import"


def test_an_import_leaves_no_plaintext_in_the_statistics(world, tmp_path):
    dsn, admin_dsn, postfix, dovecot = world
    ok(["domain", "add", "stats.org"], admin_dsn)
    csv = tmp_path / "many.csv"
    csv.write_text("kind,address,password,realname\n" + "".join(
        f"mailbox,u{i}@stats.org,Plain-{i:04d}-secret,User {i}\n" for i in range(400)))
    ok(["import", str(csv)], admin_dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        analyzed = conn.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'import_staging'").fetchone()[0]
        leaked = conn.execute("SELECT attname FROM pg_stats WHERE tablename = 'import_staging'"
                              " AND (most_common_vals::text LIKE '%Plain-%' OR histogram_bounds::text LIKE '%Plain-%'"
                              "      OR attname IN ('password', 'password_hash'))").fetchall()
    assert analyzed > 0, "the import no longer analyzes its staged rows: this test proves nothing"
    assert leaked == [], f"plaintext passwords reached pg_statistic: {leaked}"


def test_migration_lock_holder_named(world):
    """A help-desk session holding the migration lock is named not waited for."""
    dsn, admin_dsn, postfix, dovecot = world
    with psycopg.connect(admin_dsn, password=ADMIN_PASSWORD, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        pid = conn.info.backend_pid
        mailbook = Path(sys.executable).parent / "mailbook"
        r = subprocess.run([str(mailbook), "migrate", "apply", "--dsn", dsn], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 1, r
    assert f"session {pid} (role {ADMIN_LOGIN}) holds mailbook's migration lock but may not migrate" in r.stderr, r
    assert f"SELECT pg_terminate_backend({pid})" in r.stderr and "Traceback" not in r.stderr, r


@pytest.mark.parametrize("isolation", ["read committed", "repeatable read"])
def test_two_sessions_racing_to_nest_maildirs_never_both_win(db, cluster, isolation):
    admin = f"host=127.0.0.1 port={cluster.port} dbname={db.info.dbname} user={ADMIN_LOGIN}"
    db.execute("SELECT add_domain('race.org')")
    first = psycopg.connect(admin, password=ADMIN_PASSWORD)
    second = psycopg.connect(admin, password=ADMIN_PASSWORD)
    try:
        first.execute("SELECT * FROM add_mailbox('inner@race.org', 'inner secret 1', NULL, 'race.org/inner/')")
        outcome = {}

        def outer():
            try:
                second.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
                second.execute("SELECT 1")  # takes the snapshot before the first commits
                second.execute("SELECT * FROM add_mailbox('outer@race.org', 'outer secret 1', NULL, 'race.org/')")
                second.commit()
                outcome["result"] = "added"
            except psycopg.Error as exc:
                second.rollback()
                outcome["result"] = exc.sqlstate

        t = threading.Thread(target=outer)
        t.start()
        t.join(2)
        assert t.is_alive(), "the second writer did not wait for the first"
        first.commit()
        t.join(30)
        assert outcome["result"] == ("23P01" if isolation == "read committed" else "40001")
        assert db.execute("SELECT array_agg(email ORDER BY email) FROM users WHERE domain = 'race.org'"
                          ).fetchone()[0] == ["inner@race.org"]
    finally:
        first.close()
        second.close()


# -- a stolen service password (issue 28) -------------------------------------------------

def thief(cluster, role: str, password: str) -> psycopg.Connection:
    """A login as role over TCP with its stolen password, autocommit."""
    return psycopg.connect(f"host=127.0.0.1 port={cluster.port} dbname={DB} user={role} password='{password}'",
                           autocommit=True)


@pytest.fixture
def victim(world):
    """A mailbox of the world, removed afterwards."""
    dsn, admin_dsn, _, _ = world
    address = "victim@stolen.example"
    ok(["domain", "add", "stolen.example"], admin_dsn)
    ok(["mailbox", "add", address, "--password-stdin"], admin_dsn, input="the victim's password\n")
    yield address
    ok(["domain", "remove", "stolen.example", "--cascade"], admin_dsn)


def test_stolen_webmail_password(world, cluster, victim):
    """mailwebmail: rolled-back checks tell nothing, a failed answering statement still
    counts, five guesses lock out the change (never the user's IMAP login), and nothing
    but the two calls is open to it."""
    dsn, _, _, dovecot = world
    with thief(cluster, "mailwebmail", WEBMAIL_PW) as conn:
        for guess in ["guess 1", "the victim's password"]:
            with conn.transaction(force_rollback=True):
                ticket = conn.execute("SELECT ticket FROM check_current_password(%s, %s)", (victim, guess)).fetchone()[0]
                assert conn.execute("SELECT code FROM change_password(%s, %s, 'pwned pwned pwned')",
                                    (victim, ticket)).fetchone() == ("MB006",)
        for n in range(5):
            ticket = conn.execute("SELECT ticket FROM check_current_password(%s, %s)", (victim, f"g{n}")).fetchone()[0]
            with pytest.raises(psycopg.errors.DivisionByZero):
                conn.execute("SELECT 1 / 0 FROM change_password(%s, %s, 'pwned pwned pwned') WHERE code = '28P01'",
                             (victim, ticket))
        assert conn.execute("SELECT code FROM check_current_password(%s, %s)",
                            (victim, "the victim's password")).fetchone() == ("MB004",)
        for statement in ("SELECT * FROM users", "SELECT * FROM password_attempts", "SELECT * FROM audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    assert dovecot.auth_test(victim, "the victim's password").returncode == 0
    with psycopg.connect(dsn) as owner:
        assert owner.execute("SELECT count(*) FROM audit_log WHERE row_key = %s AND reason LIKE '28P01%%'",
                             (victim,)).fetchone() == (5,)


def test_stolen_reader_password(world, cluster, victim):
    """mailreader: what the maps answer, and no more; a password, name or quota change is
    no longer visible in the change record it may read (1.0 recorded every UPDATE)."""
    _, admin_dsn, _, _ = world
    with thief(cluster, "mailreader", READER_PW) as conn:
        assert conn.execute("SELECT postfix_mailbox('victim', 'stolen.example')").fetchone() == (
            "stolen.example/victim/",)
        since = conn.execute("SELECT pg_current_snapshot()").fetchone()[0]
        ok(["mailbox", "passwd", victim, "--password-stdin"], admin_dsn, input="a new password for her\n")
        ok(["mailbox", "quota", victim, "--bytes", "1000000"], admin_dsn)
        assert conn.execute("SELECT * FROM compiled_map_changes(%s::pg_snapshot)", (since,)).fetchall() == []
        for statement in ("SELECT password FROM users", "SELECT * FROM users", "SELECT * FROM map_changes",
                          "INSERT INTO map_changes (domain) VALUES ('x.example')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_stolen_quota_password(world, cluster, victim):
    """mailquota: writes usage counters of existing mailboxes, within bounds (1.0 took
    INT64's maximum and negative numbers); reads nothing else."""
    with thief(cluster, "mailquota", QUOTA_PW) as conn:
        conn.execute("INSERT INTO quota_usage (email, bytes, messages) VALUES (%s, 1, 1)"
                     " ON CONFLICT (email) DO UPDATE SET bytes = 1, messages = 1", (victim,))
        for bad in ("bytes = 9223372036854775807", "bytes = -1", "messages = -5", "messages = 2147483648"):
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute(f"UPDATE quota_usage SET {bad} WHERE email = %s", (victim,))
        for statement in ("SELECT bytes FROM quota_usage", "SELECT * FROM users", "UPDATE users SET active = false"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_stolen_auth_password(world, cluster, victim):
    """mailauth: the hashes Dovecot verifies, nothing to write; and Dovecot, which logs in
    with it, lets a mailbox whose every service is off in for no service at all, even one
    mailbook does not know (1.0's query was a deny-list)."""
    _, admin_dsn, _, dovecot = world
    with thief(cluster, "mailauth", AUTH_PW) as conn:
        for statement in ("UPDATE users SET password = 'x'", "DELETE FROM users", "INSERT INTO quota_usage VALUES ('x')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    ok(["mailbox", "deny", victim, "imap", "pop3", "smtp", "submission", "sieve"], admin_dsn)
    for service in ("imap", "doveadm", "x-unknown"):
        r = dovecot.auth_test(victim, "the victim's password", service)
        assert r.returncode == 77, (service, r)
