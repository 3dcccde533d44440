"""Postfix and Dovecot, the real daemons, wired up from postfix-maps/ and dovecot/ by
`mailbook maps install` and `mailbook dovecot install`, against a migrated database.

Needs root (Postfix does); under CI the test command runs as root.
"""

from __future__ import annotations

import grp
import imaplib
import os
import re
import shutil
import stat
import time
from collections import Counter

import psycopg
import pytest

from mailbook.files import write_private
from mailbook.postfix.maps import map_files
from tests.harness.database import migrate, verified
from tests.harness.dovecot import install_dovecot
from tests.harness.postfix import Postfix
from tests.harness.process import cli, private_dir, remove, require_program, require_root, run

DB = "mta"
READER_PW = "reader-pw-for-tests"
AUTH_PW = "auth-pw-for-tests"


@pytest.fixture(scope="module")
def root_dir():
    require_root()
    d = private_dir("mailbook-mta-")
    yield d
    remove(d)


@pytest.fixture(scope="module")
def mta_dsn(cluster):
    dsn = migrate(cluster, DB, mailreader=READER_PW, mailauth=AUTH_PW)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        conn.execute("SELECT add_domain('example.com')")
        conn.execute("SELECT add_domain('example.org')")
        conn.execute("SELECT add_mailbox('foo@example.com', 'foo secret', 'Foo Lastname')")
        conn.execute("SELECT add_mailbox('bar@example.com', 'bar secret')")
        conn.execute("SELECT add_mailbox('sleepy@example.com', 'sleepy secret')")
        conn.execute("SELECT set_mailbox_active('sleepy@example.com', false)")
        conn.execute("SELECT add_mailbox('baz@example.org', 'baz secret')")
        conn.execute("SELECT add_alias('team@example.com', 'foo@example.com')")
        conn.execute("SELECT add_alias('team@example.com', 'bar@example.com')")
        conn.execute("SELECT add_alias('info@example.org', 'foo@example.com')")
    return dsn


@pytest.fixture(scope="module")
def maps_dir(root_dir, mta_dsn, cluster):
    pw = root_dir / "reader.pw"
    write_private(pw, READER_PW + "\n")
    dest = root_dir / "postfix-pgsql"
    cli(["maps", "install", "--dest", str(dest), "--port", str(cluster.port), "--dbname", DB,
         "--password-file", str(pw)], check=True)
    return dest


@pytest.fixture(scope="module")
def postfix(root_dir, maps_dir):
    pf = Postfix(root_dir / "postfix", maps_dir)
    try:  # stopped also when the start fails half-way
        pf.start()
        yield pf
    finally:
        pf.stop()


@pytest.fixture(scope="module")
def dovecot(root_dir, mta_dsn, cluster, postfix):
    pw = root_dir / "auth.pw"
    write_private(pw, AUTH_PW + "\n")
    dc = install_dovecot(root_dir, postfix.mail, "--port", str(cluster.port), "--dbname", DB, "--password-file", str(pw))
    try:  # stopped also when the start fails half-way
        dc.start()
        yield dc
    finally:
        dc.stop()


@pytest.fixture(scope="module")
def config_dir(postfix):
    """postmap reads main.cf (for the pgsql dynamic map): the private instance's."""
    global CONFIG_DIR
    CONFIG_DIR = postfix.config
    return postfix.config


CONFIG_DIR = None


def postmap(key: str, path) -> tuple[int, str, str]:
    r = run([require_program("/usr/sbin/postmap"), "-c", str(CONFIG_DIR), "-q", key, f"pgsql:{path}"])
    return r.returncode, r.stdout.strip(), r.stderr.strip()


# -- mailbook maps install / postconf / check ------------------------------------------------

def test_maps_install_files(maps_dir, cluster):
    """`maps install` writes each map 0640 group postfix with only connection lines changed."""
    postfix_gid = grp.getgrnam("postfix").gr_gid
    for m in map_files():
        path = maps_dir / m.name
        st = path.stat()
        assert stat.S_IMODE(st.st_mode) == 0o640, m.name
        assert st.st_uid == 0 and st.st_gid == postfix_gid, m.name
        installed = path.read_text()
        assert f"password = {READER_PW}" in installed
        assert f"hosts = 127.0.0.1:{cluster.port}" in installed and f"dbname = {DB}" in installed
        changed = [(a, b) for a, b in zip(m.text.splitlines(), installed.splitlines()) if a != b]
        assert {a.split("=")[0].strip() for a, _ in changed} <= {"hosts", "password", "dbname"}, changed


def test_maps_install_dry_run_names_changes_but_never_the_password(maps_dir, root_dir, cluster):
    other = root_dir / "other.pw"
    write_private(other, "a-new-password\n")
    before = {p.name: p.read_text() for p in maps_dir.iterdir()}
    r = cli(["maps", "install", "--dest", str(maps_dir), "--port", str(cluster.port), "--dbname", DB,
             "--password-file", str(other), "--dry-run"], check=True)
    assert "would update" in r.stdout and "(password)" in r.stdout
    assert "a-new-password" not in r.stdout + r.stderr and READER_PW not in r.stdout
    assert {p.name: p.read_text() for p in maps_dir.iterdir()} == before
    same = cli(["maps", "install", "--dest", str(maps_dir), "--port", str(cluster.port), "--dbname", DB,
                "--password-file", str(root_dir / "reader.pw"), "--dry-run"], check=True)
    assert all(line.startswith("unchanged") for line in same.stdout.splitlines()), same.stdout


def test_dovecot_install_files(dovecot, root_dir, cluster):
    """`dovecot install` writes 0640 group dovecot and dry run changes nothing."""
    dovecot_gid = grp.getgrnam("dovecot").gr_gid
    for path in (dovecot.sql_conf, dovecot.auth_include):
        st = path.stat()
        assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0 and st.st_gid == dovecot_gid, path
    assert AUTH_PW in dovecot.sql_conf.read_text()
    before = dovecot.sql_conf.read_text()
    r = cli(["dovecot", "install", "--dest", str(dovecot.sql_conf), "--conf-d", str(dovecot.auth_include.parent),
             "--port", str(cluster.port), "--dbname", DB, "--mailbox-base", str(dovecot.mail), "--delivery", "virtual",
             "--dry-run"],
            env={"MAILBOOK_DOVECOT_PASSWORD": "another-password"}, check=True)
    assert "another-password" not in r.stdout + r.stderr and AUTH_PW not in r.stdout + r.stderr
    assert dovecot.sql_conf.read_text() == before


def test_doctor_checks_installed_maps(maps_dir, config_dir, mta_dsn, root_dir):
    """Doctor passes installed maps and fails a world readable or broken one."""
    r = cli(["doctor", "--dsn", mta_dsn, "--maps-dir", str(maps_dir), "--config-dir", str(config_dir), "--json"])
    assert r.exit_code == 0, r.stdout + r.stderr
    assert all(f"map {m.name}" in r.stdout for m in map_files()) and "0640-safe and answers" in r.stdout
    broken = root_dir / "maps-broken"
    shutil.copytree(maps_dir, broken)
    (broken / "domains.cf").chmod(0o644)
    text = (broken / "virtual.cf").read_text()
    (broken / "virtual.cf").write_text(text.replace(f"password = {READER_PW}", "password = wrong"))
    r = cli(["doctor", "--dsn", mta_dsn, "--maps-dir", str(broken), "--config-dir", str(config_dir), "--json"])
    assert r.exit_code == 1
    assert "mode 0644: others may read its password" in r.stdout
    assert "postmap -q fails" in r.stdout and "password authentication failed" in r.stdout
    assert r.stderr.startswith("mailbook: 2 check(s) failed: map domains.cf, map virtual.cf")


def test_maps_install_without_a_password_source_fails_clearly(root_dir):
    r = cli(["maps", "install", "--dest", str(root_dir / "nowhere")], env={"MAILBOOK_MAP_PASSWORD": ""})
    assert r.exit_code == 1 and "--password-file" in r.stderr
    assert not (root_dir / "nowhere").exists()


def test_maps_postconf_prints_the_corrected_main_cf(maps_dir, tmp_path):
    """On Postfix's stock main.cf: the maps, and mydestination left as it is (the host's own names)."""
    (tmp_path / "main.cf").write_text("compatibility_level = 3.6\n")
    r = cli(["maps", "postconf", "--dest", str(maps_dir), "--config-dir", str(tmp_path),
             "--vmail-user", "nobody", "--vmail-group", "nogroup"], check=True)
    lines = [line.replace(f"postconf -c {tmp_path} ", "postconf ") for line in r.stdout.splitlines()]
    assert f"postconf -e 'virtual_mailbox_maps = proxy:pgsql:{maps_dir}/mailboxes.cf'" in lines
    assert f"postconf -e 'virtual_alias_maps = proxy:pgsql:{maps_dir}/virtual.cf'" in lines
    assert "# mydestination: kept as it is ($myhostname, localhost.$mydomain, localhost):" \
           " the host's own names, no hosted domain" in lines, r.stdout
    assert not any("'mydestination =" in line for line in lines)
    assert not any("virtual_maps =" in l for l in lines)  # the obsolete name the tutorial used
    assert not any(l.endswith("local_recipient_maps = '") for l in lines)


def test_maps_check_shows_what_postfix_sees(maps_dir, config_dir):
    r = cli(["maps", "check", "team@example.com", "--dest", str(maps_dir), "--config-dir", str(config_dir)], check=True)
    line = next(l for l in r.stdout.splitlines() if "virtual_alias_maps" in l)
    assert sorted(line.split("-> ")[1].split(",")) == ["bar@example.com", "foo@example.com"]
    # the default "virtual:" is left to virtual_transport (LMTP, or virtual(8))
    assert re.search(r"transport\.cf\s+transport_maps\s+team@example\.com\s+-> \(not found\)", r.stdout)
    assert re.search(r"mailboxes\.cf\s+virtual_mailbox_maps\s+team@example\.com\s+-> \(not found\)", r.stdout)


def test_maps_check_without_main_cf_says_so(maps_dir, root_dir):
    (root_dir / "empty-etc").mkdir(exist_ok=True)
    r = cli(["maps", "check", "foo@example.com", "--dest", str(maps_dir), "--config-dir", str(root_dir / "empty-etc")])
    assert r.exit_code == 1 and "main.cf: No such file" in r.stderr


def test_maps_check_with_a_wrong_password_fails_naming_the_map(root_dir, cluster, config_dir):
    bad = root_dir / "bad.pw"
    write_private(bad, "wrong\n")
    dest = root_dir / "bad-maps"
    cli(["maps", "install", "--dest", str(dest), "--port", str(cluster.port), "--dbname", DB,
         "--password-file", str(bad)], check=True)
    r = cli(["maps", "check", "foo@example.com", "--dest", str(dest), "--config-dir", str(config_dir)])
    assert r.exit_code == 1 and "map(s) failed" in r.stderr and "password authentication failed" in r.stderr and r.stderr.count("\n") == 1


# -- postmap -q on each installed map ----------------------------------------------------------

@pytest.mark.parametrize(
    "map_name, key, expected",
    [
        ("mailboxes.cf", "foo@example.com", "example.com/foo/"),
        ("mailboxes.cf", "Foo@EXAMPLE.com", "example.com/foo/"),     # Postfix folds case; we store lowercase
        ("mailboxes.cf", "nobody@example.com", None),
        ("mailboxes.cf", "sleepy@example.com", None),               # inactive
        ("mailboxes.cf", "@example.com", None),                     # no local part: no query
        ("mailboxes.cf", "foo", None),                              # no domain: no query
        ("domains.cf", "example.com", "example.com"),
        ("domains.cf", "EXAMPLE.ORG", "example.org"),
        ("domains.cf", "example.net", None),
        ("virtual.cf", "info@example.org", "foo@example.com"),
        ("virtual.cf", "foo@example.com", None),
        ("transport.cf", "anyone@example.com", None),           # the default: virtual_transport decides
        ("transport.cf", "anyone@relay.example", None),         # an unknown domain
        ("transport.cf", "example.com", None),                  # a bare domain: no query
        ("transport.cf", ".example.com", None),                 # a parent domain: no query
        ("sender-login.cf", "foo@example.com", "foo@example.com"),
        ("sender-login.cf", "info@example.org", "foo@example.com"),
        ("sender-login.cf", "bar@example.com", "bar@example.com"),
        ("sender-login.cf", "stranger@example.com", None),
        ("mailboxes.cf", "x' OR '1'='1@example.com", None),          # quotes are escaped: a miss
        ("virtual.cf", "a\\'b@example.com", None),
    ],
)
def test_postmap_answers(maps_dir, config_dir, map_name, key, expected):
    code, out, err = postmap(key, maps_dir / map_name)
    assert err == "", err
    if expected is None:
        assert code == 1 and out == ""
    else:
        assert code == 0 and out == expected


HOSTILE_KEYS = ["x' OR '1'='1@example.com", "foo@example.com' --", "'; DROP TABLE users; --@example.com",
                "a\\'b@example.com", "back\\slash@example.com\\", "%s@example.com", "%u%d%%@example.com",
                "foo@example.com\t", "f\u043eo@example.com",  # a Cyrillic o
                "x" * 5000 + "@example.com", "example.com'", "@", "'@'"]


@pytest.mark.parametrize("key", HOSTILE_KEYS, ids=range(len(HOSTILE_KEYS)))
def test_hostile_keys_find_nothing_and_raise_no_error_in_any_map(maps_dir, config_dir, key):
    for m in map_files():
        code, out, err = postmap(key, maps_dir / m.name)
        if m.name == "transport.cf" and "@" in key:
            # answered by the key's domain alone: the same as a plain address there
            assert (code, out, err) == postmap("plain@" + key.rpartition("@")[2], maps_dir / m.name), (key[:60], out)
            continue
        assert (code, out, err) == (1, "", ""), (m.name, key[:60], code, out, err)


def test_alias_with_several_destinations_answers_all_comma_joined(maps_dir, config_dir):
    code, out, _ = postmap("team@example.com", maps_dir / "virtual.cf")
    assert code == 0 and sorted(out.split(",")) == ["bar@example.com", "foo@example.com"]


def test_the_tutorials_own_map_files_are_refused_and_doctor_names_the_fix(root_dir, cluster, mta_dsn, config_dir):
    """The tutorial's three files, as printed, but for host (port) and password and dbname.
    Since 1.0 mailreader reads no table (only the lookup functions), so their SELECTs are
    refused: Postfix answers 4xx, nothing bounces, and doctor says what to run."""
    tutorial = {
        "mailboxes.cf": ("users", "maildir", "email"),
        "transport.cf": ("transports", "transport", "domain"),
        "virtual.cf": ("aliases", "email", "alias"),
    }
    d = root_dir / "tutorial-maps"
    d.mkdir(exist_ok=True)
    for name, (table, select, where) in tutorial.items():
        (d / name).write_text(
            f"user=mailreader\npassword={READER_PW}\ndbname={DB}\ntable={table}\n"
            f"select_field={select}\nwhere_field={where}\nhosts=127.0.0.1:{cluster.port}\n")
        os.chmod(d / name, 0o640)
        os.chown(d / name, 0, grp.getgrnam("postfix").gr_gid)
    for key, name in (("foo@example.com", "mailboxes.cf"), ("example.com", "transport.cf"),
                      ("info@example.org", "virtual.cf")):
        code, out, err = postmap(key, d / name)
        # a lookup error (smtpd: 451), never a quiet "not found" (a 550 for a real mailbox)
        assert code != 0 and "permission denied" in err and "query error" in err, (name, code, out, err)
    r = cli(["doctor", "--dsn", mta_dsn, "--maps-dir", str(d), "--config-dir", str(config_dir)])
    lines = [l for l in r.stdout.splitlines() if "mailboxes.cf" in l]
    assert r.exit_code == 1 and any("maps install" in l and "reads tables" in l for l in lines), r.stdout


# -- a running Postfix: SMTP on loopback ---------------------------------------------------------

def test_mail_to_a_mailbox_lands_in_its_maildir(postfix):
    postfix.send("foo@example.com", "to-foo")
    f = postfix.delivered("example.com/foo/", "to-foo")
    assert f.stat().st_uid == postfix.mail.stat().st_uid


def test_postfix_query_counts(postfix, cluster):
    """Postfix asks PostgreSQL seven times for a mailbox and four times for an unknown user.

    Counted in PostgreSQL's own log, through the whole shipped snippet: per recipient,
    for a mailbox,
    domains.cf and transport.cf once in smtpd's and once in qmgr's address resolution,
    virtual.cf in smtpd and cleanup, mailboxes.cf in smtpd and virtual(8); for an unknown
    user, smtpd's four and the 550. relay-domains.cf is never asked about a hosted domain
    (main.cf.snippet turns off the resolver's check for a domain in both)."""
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("ALTER ROLE mailreader SET log_statement = 'all'")
    try:
        postfix.reload()  # proxymap reconnects, with the setting
        time.sleep(1)
        start = cluster.log.stat().st_size
        postfix.send("foo@example.com", "counted")
        postfix.delivered("example.com/foo/", "counted")
        time.sleep(0.5)
        mailbox = _lookups_logged(cluster, start)
        start = cluster.log.stat().st_size
        assert postfix.rcpt("nobody@example.com")[0] == 550
        time.sleep(0.5)
        unknown = _lookups_logged(cluster, start)
    finally:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("ALTER ROLE mailreader RESET log_statement")
        postfix.reload()
    assert mailbox == {"postfix_mailbox_domain": 2, "postfix_transport": 2, "postfix_virtual": 2,
                       "postfix_mailbox": 2}, mailbox
    assert unknown == {"postfix_mailbox_domain": 1, "postfix_transport": 1, "postfix_virtual": 1,
                       "postfix_mailbox": 1}, unknown


def _lookups_logged(cluster, start: int) -> dict[str, int]:
    with open(cluster.log, errors="replace") as f:
        f.seek(start)
        text = f.read()
    # the recipient's lookups only: smtpd also resolves the sender (sender@elsewhere.example),
    # at most once per message, less when its resolver cache still holds it
    return dict(Counter(re.findall(r"statement: SELECT (postfix_\w+)\((?:'[^']*', )?'example\.com'\)", text)))


def test_mail_to_a_mixed_case_address_is_delivered(postfix):
    postfix.send("Foo@Example.COM", "mixed-case")
    postfix.delivered("example.com/foo/", "mixed-case")


def test_mail_to_an_alias_lands_in_every_destination(postfix):
    postfix.send("team@example.com", "to-team")
    postfix.delivered("example.com/foo/", "to-team")
    postfix.delivered("example.com/bar/", "to-team")


def test_unknown_user_in_a_hosted_domain_is_refused_at_rcpt_with_550(postfix):
    code, msg = postfix.rcpt("nobody@example.com")
    assert code == 550 and "5.1.1" in msg and "User unknown in virtual mailbox table" in msg


def test_inactive_mailbox_is_refused_at_rcpt(postfix):
    code, msg = postfix.rcpt("sleepy@example.com")
    assert code == 550 and "5.1.1" in msg


def test_unhosted_domain_is_relay_denied(postfix):
    code, msg = postfix.rcpt("someone@example.net")
    assert code == 554 and "Relay access denied" in msg


def test_postfix_warns_about_nothing_in_our_configuration(postfix):
    assert "warning" not in postfix.log_text().lower() or all(
        "mydestination" not in l for l in postfix.log_text().splitlines() if "warning" in l.lower())


# -- Dovecot ----------------------------------------------------------------------------------------

def test_doveadm_auth_accepts_the_password_add_mailbox_stored(dovecot):
    r = dovecot.auth_test("foo@example.com", "foo secret")
    assert r.returncode == 0, r.stdout + r.stderr + dovecot.log_text()


def test_doveadm_auth_is_case_insensitive_in_the_username(dovecot):
    assert dovecot.auth_test("FOO@Example.com", "foo secret").returncode == 0


def test_doveadm_auth_refuses_a_wrong_password_and_an_inactive_mailbox(dovecot):
    assert dovecot.auth_test("foo@example.com", "wrong").returncode == 77
    assert dovecot.auth_test("sleepy@example.com", "sleepy secret").returncode == 77
    assert dovecot.auth_test("nobody@example.com", "x").returncode == 77


def test_doveadm_auth_follows_set_password(dovecot, mta_dsn):
    with psycopg.connect(mta_dsn, autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        conn.execute("SELECT set_password('bar@example.com', 'bar new secret')")
    assert dovecot.auth_test("bar@example.com", "bar new secret").returncode == 0
    assert dovecot.auth_test("bar@example.com", "bar secret").returncode == 77


def test_a_doveadm_pw_hash_imported_with_add_mailbox_hashed_authenticates(dovecot, mta_dsn):
    r = dovecot.doveadm("pw", "-s", "BLF-CRYPT", "-r", "5", "-p", "imported secret")
    assert r.returncode == 0 and r.stdout.startswith("{BLF-CRYPT}$2y$"), r.stdout + r.stderr
    with psycopg.connect(mta_dsn, autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        conn.execute("SELECT add_mailbox_hashed('moved@example.com', %s)", (r.stdout.strip(),))
        assert verified(conn, "moved@example.com", "imported secret")
    assert dovecot.auth_test("moved@example.com", "imported secret").returncode == 0
    assert dovecot.auth_test("moved@example.com", "wrong").returncode == 77


def test_doveadm_user_iterates_active_mailboxes(dovecot):
    r = dovecot.doveadm("user", "*")
    users = set(r.stdout.split())
    assert {"foo@example.com", "bar@example.com", "baz@example.org"} <= users
    assert "sleepy@example.com" not in users


def test_userdb_gives_home_and_quota(dovecot, mta_dsn, postfix):
    with psycopg.connect(mta_dsn, autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        conn.execute("SELECT add_mailbox('quota@example.com', 'q secret', NULL, NULL, 1048576)")
    r = dovecot.doveadm("user", "quota@example.com")
    assert r.returncode == 0, r.stderr
    assert f"home\t{postfix.mail}/example.com/quota/" in r.stdout
    assert all(line in r.stdout for line in dovecot.quota_fields(1048576)), r.stdout


def test_imap_login_sees_the_message_postfix_delivered(postfix, dovecot):
    postfix.send("baz@example.org", "for-imap")
    postfix.delivered("example.org/baz/", "for-imap")
    imap = imaplib.IMAP4("127.0.0.1", dovecot.port)
    try:
        imap.login("baz@example.org", "baz secret")
        typ, data = imap.select("INBOX")
        assert typ == "OK"
        typ, found = imap.search(None, '(SUBJECT "for-imap")')
        assert typ == "OK" and found[0].split(), dovecot.log_text()
    finally:
        imap.logout()


def test_imap_login_with_a_wrong_password_is_refused(dovecot):
    imap = imaplib.IMAP4("127.0.0.1", dovecot.port)
    with pytest.raises(imaplib.IMAP4.error):
        imap.login("baz@example.org", "wrong")
    imap.logout()


def test_proxy_maps_share_connections_across_smtpd_processes(postfix, cluster):
    """Evidence for proxy:pgsql: in main.cf.snippet: with eight SMTP sessions checking
    recipients at once, Postfix holds about one connection per map, not one per smtpd."""
    sessions = []
    try:
        for i in range(8):
            s = postfix.smtp()
            s.mail("sender@elsewhere.example")
            assert s.rcpt("foo@example.com")[0] == 250
            assert s.rcpt(f"nobody{i}@example.com")[0] == 550
            sessions.append(s)
        smtpd = int(run(["pgrep", "-c", "-f", f"smtpd -n 127.0.0.1:{postfix.port}"]).stdout.strip() or 0)
        proxymaps = int(run(["pgrep", "-c", "-x", "proxymap"]).stdout.strip() or 0)
        virtuals = int(run(["pgrep", "-c", "-x", "virtual"]).stdout.strip() or 0)
        with psycopg.connect(cluster.dsn(DB)) as conn:
            queries = [q for (q,) in conn.execute(
                "SELECT left(query, 40) FROM pg_stat_activity WHERE usename = 'mailreader'")]
    finally:
        for s in sessions:
            s.close()
    per_map = Counter(queries)
    print(f"{smtpd} smtpd, {proxymaps} proxymap, {virtuals} virtual processes; "
          f"mailreader connections per map query: {dict(per_map)}")
    assert smtpd >= 8 and proxymaps >= 1
    # pooled: one per proxymap process (master starts a second one when the first is busy)
    # plus, for the mailbox path, one per virtual(8) process still idling from earlier
    # deliveries (it opens that map directly); unproxied maps would hold one per smtpd
    assert per_map and max(per_map.values()) <= proxymaps + virtuals, (per_map, proxymaps, virtuals)
    assert max(per_map.values()) < smtpd


# -- the database goes away and comes back ----------------------------------------------------------
# Kept last in this file on purpose: after an outage Postfix's pgsql client keeps the server
# marked down for about a minute, which would make any later lookup test answer 451.


def test_database_down_defers(postfix, cluster):
    """Database down defers with 4xx and mail is delivered once it is back."""
    cluster.stop()
    try:
        code, msg = postfix.rcpt("foo@example.com")
        assert 400 <= code < 500, (code, msg)  # deferred at the sender, never bounced
    finally:
        cluster.start()
    # a sending MTA retries; Postfix's pgsql client may keep the server marked down for
    # about a minute after a failure, so retry the way a sender would, for up to 3 minutes
    deadline = time.time() + 180
    while True:
        try:
            postfix.send("foo@example.com", "after-outage")
            break
        except Exception as exc:
            assert "4.3.0" in str(exc) or "451" in str(exc) or "Temporary" in str(exc), exc
            assert time.time() < deadline, "Postfix did not recover within 3 minutes"
            time.sleep(5)
    postfix.delivered("example.com/foo/", "after-outage")
    # nothing of the user's bounced, and no sender was told of a failure. (Postfix may
    # notify the postmaster of the lookup errors; this test server cannot deliver that
    # notice, which shows up as a bounce to postmaster@ and is not the user's mail.)
    log = postfix.log_text()
    assert not [line for line in log.splitlines() if "status=bounced" in line and "to=<foo@example.com>" in line]
    assert "sender non-delivery notification" not in log
