"""Compiled maps (`mailbook maps compile` / `verify`): lmdb: tables that answer every key
as the pgsql: maps do, proven through Postfix's own postmap and through two real Postfix
instances on loopback, one on each kind of map.

Needs root (Postfix does); under CI the test command runs as root.
"""

from __future__ import annotations

import grp
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbook.postfix import compiled
from tests.harness.database import mail_database
from tests.harness.postfix import Postfix, install_postfix
from tests.harness.process import cli, daemon_root
from tests.harness.strategies import ADDRESS, DOMAINS, LOCALS, STEP, apply_step

DB = "compiled"
READER_PW = "reader-pw-compiled-maps"


def populate(conn: psycopg.Connection) -> None:
    """Every rule the maps know: a catch-all next to mailboxes, a disabled mailbox, an
    inactive alias, a mailbox that also forwards, alias domains of a target with and
    without a catch-all, an inactive domain and an inactive alias domain, a relay domain,
    send-as grants (one of them written in an alias domain)."""
    sql = [
        "SELECT add_domain('example.com')",
        "SELECT add_domain('example.org')",
        "SELECT add_mailbox('foo@example.com', 'foo secret')",
        "SELECT add_mailbox('bar@example.com', 'bar secret')",
        "SELECT add_mailbox('sleepy@example.com', 'sleepy secret')",
        "SELECT set_mailbox_active('sleepy@example.com', false)",
        "SELECT add_mailbox('baz@example.org', 'baz secret')",
        "SELECT add_alias('team@example.com', 'foo@example.com')",
        "SELECT add_alias('team@example.com', 'bar@example.com')",
        "SELECT add_alias('fwd@example.com', 'someone@elsewhere.example')",
        "SELECT add_alias('@example.com', 'foo@example.com')",
        "SELECT add_alias('bar@example.com', 'baz@example.org')",
        "SELECT add_alias('gone@example.com', 'foo@example.com')",
        "SELECT add_alias('info@example.org', 'foo@example.com')",
        "SELECT add_alias_domain('example.net', 'example.com')",
        "SELECT add_alias_domain('example.info', 'example.org')",
        "SELECT add_alias_domain('sleepy.example', 'example.com')",
        "SELECT set_domain_active('sleepy.example', false)",
        "SELECT add_domain('dead.example')",
        "SELECT add_mailbox('ghost@dead.example', 'ghost secret')",
        "SELECT add_alias('@dead.example', 'ghost@dead.example')",
        "SELECT set_domain_active('dead.example', false)",
        "SELECT add_domain('relay.example', 'smtp:[192.0.2.7]')",
        "SELECT allow_send_as('bar@example.com', 'team@example.com')",
        "SELECT allow_send_as('baz@example.org', 'sales@example.net')",
        "SELECT allow_send_as('foo@example.com', 'news@elsewhere.example')",
        "SELECT allow_send_as('sleepy@example.com', 'info@example.org')",
    ]
    conn.execute("SET ROLE mailadmin")
    for statement in sql:
        conn.execute(statement)
    conn.execute("RESET ROLE")
    # no API deactivates an alias row; an import or an older front-end may leave one
    conn.execute("UPDATE public.aliases SET active = false WHERE alias = 'gone@example.com'")


@pytest.fixture(scope="module")
def root_dir():
    with daemon_root("mailbook-compiled-", "the compiled-maps tests") as d:
        yield d


@pytest.fixture(scope="module")
def dsn(cluster):
    with mail_database(cluster, DB, mailreader=READER_PW) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            populate(conn)
        yield dsn


@pytest.fixture(scope="module")
def reader_dsn(cluster, dsn) -> str:
    """What `maps compile` connects as in production: mailreader, password from the environment."""
    return f"host=127.0.0.1 port={cluster.port} dbname={DB} user=mailreader"


READER_ENV = {"PGPASSWORD": READER_PW}


@pytest.fixture(scope="module")
def sql_postfix(root_dir, cluster, dsn):
    """A Postfix on the pgsql: maps, as `mailbook maps install` writes them."""
    pf = install_postfix(root_dir, cluster, DB, READER_PW)
    try:  # stopped also when the start fails half-way
        pf.start()
        yield pf
    finally:
        pf.stop()


@pytest.fixture(scope="module")
def dest(root_dir, reader_dsn, sql_postfix) -> Path:
    d = root_dir / "compiled"
    cli(["maps", "compile", "--dest", str(d), "--dsn", reader_dsn, "--config-dir", str(sql_postfix.config)],
        env=READER_ENV, check=True)
    return d


@pytest.fixture(scope="module")
def lmdb_postfix(root_dir, dest, sql_postfix):
    """A second Postfix whose maps are only the compiled tables (`maps postconf --compiled`)."""
    pf = Postfix(root_dir / "postfix-lmdb", sql_postfix.maps)
    # the lines `maps postconf --compiled` prints for the maps; the harness keeps its own places
    parameters = {m.parameter for m in compiled.MAPS}
    pf.overrides = {k: v for k, v in compiled.postconf_settings(dest, pf.delivery) if k in parameters}
    try:  # stopped also when the start fails half-way
        pf.start()
        yield pf
    finally:
        pf.stop()


def verify(dest: Path, postfix: Postfix, *extra: str, env: dict = READER_ENV):
    return cli(["maps", "verify", "--dest", str(dest), "--maps-dir", str(postfix.maps),
                "--config-dir", str(postfix.config), *extra], env=env)


# -- compile -------------------------------------------------------------------------------

def test_compile_writes_every_map(dest):
    """Compile writes every map as an lmdb: table and records its snapshot."""
    for m in compiled.MAPS:
        for table in (dest / f"{m.name}.lmdb", dest / m.name):  # and postmap's input, kept for reading
            assert table.is_file() and not table.is_symlink(), table
            # addresses, maildirs, send-as grants: Postfix's daemons read them, no one else
            assert oct(table.stat().st_mode & 0o777) == "0o640", table
            assert grp.getgrgid(table.stat().st_gid).gr_name == "postfix", table
    state = json.loads((dest / compiled.STATE_FILE).read_text())
    assert state["keys"]["domains"] == 4  # example.com, .org, .net, .info; relay and inactive ones are not
    assert state["snapshot_xmin"] > 0 and state["snapshot_time"]
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_compiled_keys_explicit(dest):
    """Compiled keys turn catch-alls and alias domains into explicit keys."""
    virtual = dict(line.split("\t") for line in (dest / "virtual").read_text().splitlines())
    assert virtual["@example.com"] == "foo@example.com"
    assert virtual["foo@example.com"] == "foo@example.com"  # a mailbox the catch-all must not take
    assert virtual["sleepy@example.com"] == "sleepy@example.com"  # nor a disabled one
    assert virtual["gone@example.com"] == "gone@example.com"  # nor an inactive alias
    assert virtual["bar@example.net"] == "bar@example.com" and virtual["@example.net"] == "@example.com"
    assert virtual["baz@example.info"] == "baz@example.org" and "@example.info" not in virtual
    assert not [k for k in virtual if k.endswith(("dead.example", "sleepy.example"))]
    refused = (dest / "refused-recipients").read_text()
    assert "sleepy@example.com\t550 5.1.1" in refused and "sleepy@example.net\t550" in refused
    assert "foo@example.com" not in refused
    transport = dict(line.split("\t") for line in (dest / "transport").read_text().splitlines())
    assert transport["relay.example"] == "smtp:[192.0.2.7]" and "dead.example" not in transport


def test_compiled_maps_answer_every_key_as_the_pgsql_maps_do(dest, sql_postfix, reader_dsn):
    r = verify(dest, sql_postfix, "--dsn", reader_dsn, "--sample", "5")
    assert r.exit_code == 0, r
    assert "hold every key of the database and answer as the pgsql: maps do" in r.stdout


def test_a_failing_build_leaves_the_previous_table_in_place(dest, root_dir, reader_dsn):
    """postmap fails after the new input is written (no main.cf): the tables Postfix reads
    are the previous ones, byte for byte, and no temporary file is left behind."""
    before = {p.name: (p.stat().st_ino, p.read_bytes()) for p in dest.iterdir()}
    (root_dir / "no-main-cf").mkdir(exist_ok=True)
    r = cli(["maps", "compile", "--dest", str(dest), "--dsn", reader_dsn,
             "--config-dir", str(root_dir / "no-main-cf")], env=READER_ENV)
    assert r.exit_code == 1 and "postmap could not build domains.lmdb" in r.stderr, r
    assert "Traceback" not in r.stderr
    assert {p.name: (p.stat().st_ino, p.read_bytes()) for p in dest.iterdir()} == before


def test_compiled_map_rows_refuses_an_unknown_map_name(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE mailreader")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown compiled map nope"):
            conn.execute("SELECT * FROM public.compiled_map_rows('nope')")


# -- a real Postfix on each kind of map ----------------------------------------------------

RECIPIENTS = [
    "foo@example.com", "team@example.com", "fwd@example.com", "bar@example.com",
    "sleepy@example.com", "gone@example.com", "anything@example.com",
    "FOO@Example.COM", "foo@example.net", "sleepy@example.net", "unknown@example.net",
    "baz@example.org", "info@example.org", "nobody@example.org",
    "baz@example.info", "info@example.info", "nobody@example.info",
    "ghost@dead.example", "x@sleepy.example", "someone@relay.example", "someone@elsewhere.example",
]


def test_postfix_answers_rcpt_the_same_on_compiled_and_pgsql_maps(sql_postfix, lmdb_postfix):
    on_sql = [(r, *sql_postfix.rcpt(r)) for r in RECIPIENTS]
    on_lmdb = [(r, *lmdb_postfix.rcpt(r)) for r in RECIPIENTS]
    assert [(r, code) for r, code, _ in on_lmdb] == [(r, code) for r, code, _ in on_sql]
    codes = {r: code for r, code, _ in on_lmdb}
    assert codes["anything@example.com"] == codes["unknown@example.net"] == 250  # the catch-all
    assert codes["sleepy@example.com"] == codes["gone@example.com"] == codes["nobody@example.org"] == 550
    assert codes["someone@relay.example"] == 250 and codes["ghost@dead.example"] == 554
    replies = {r: msg for r, _, msg in on_lmdb}
    assert "User unknown in virtual mailbox table" in replies["sleepy@example.com"]


def test_mail_is_delivered_through_the_compiled_maps_alone(lmdb_postfix, dsn):
    with psycopg.connect(dsn) as conn:
        maildir = {e: m for e, m in conn.execute("SELECT email, maildir FROM public.users")}
    cases = [("foo@example.com", "foo@example.com"), ("anything@example.com", "foo@example.com"),
             ("unknown@example.net", "foo@example.com"), ("info@example.info", "foo@example.com"),
             # bar@example.com forwards (an alias row on a mailbox replaces it, as in virtual.cf)
             ("bar@example.net", "baz@example.org"), ("team@example.com", "baz@example.org")]
    for i, (recipient, mailbox) in enumerate(cases):
        subject = f"compiled {i} {secrets.token_hex(3)}"
        lmdb_postfix.send(recipient, subject)
        lmdb_postfix.delivered(maildir[mailbox], subject)
    assert "pgsql" not in lmdb_postfix.log_text()


def test_verify_names_a_key_that_changed_since_compile_and_exits_1(dest, sql_postfix, dsn, reader_dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        conn.execute("SELECT add_mailbox('late@example.org', 'late secret')")
        conn.execute("SELECT set_mailbox_active('bar@example.com', false)")
    try:
        r = verify(dest, sql_postfix, "--dsn", reader_dsn)
        assert r.exit_code == 1, r
        assert "mailboxes late@example.org: compiled (not found), SQL example.org/late/" in r.stdout
        assert "mailboxes bar@example.com: compiled example.com/bar/, SQL (not found)" in r.stdout
        assert "sender-login late@example.org" in r.stdout
        assert r.stderr.startswith("mailbook: ") and "difference(s)" in r.stderr
        # compile catches up, and the new tables verify
        cli(["maps", "compile", "--dest", str(dest), "--dsn", reader_dsn,
             "--config-dir", str(sql_postfix.config)], env=READER_ENV, check=True)
        assert verify(dest, sql_postfix, "--dsn", reader_dsn).exit_code == 0
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SET ROLE mailadmin")
            conn.execute("SELECT remove_mailbox('late@example.org')")
            conn.execute("SELECT set_mailbox_active('bar@example.com', true)")


def test_verify_without_compiled_tables_says_what_to_run(root_dir, sql_postfix):
    r = verify(root_dir / "nothing-here", sql_postfix)
    assert r.exit_code == 1 and "run `mailbook maps compile" in r.stderr and "Traceback" not in r.stderr


def test_postconf_compiled(dest, sql_postfix):
    """Postconf compiled replaces every pgsql: map and keeps the quota check."""
    r = cli(["maps", "postconf", "--compiled", "--dest", str(dest), "--config-dir", str(sql_postfix.config),
             "--vmail-user", "nobody", "--vmail-group", "nogroup"])
    assert r.exit_code == 0, r.stderr
    assert "pgsql:" not in "".join(line for line in r.stdout.splitlines() if not line.startswith("#"))
    restrictions = next(line for line in r.stdout.splitlines() if "-e 'smtpd_recipient_restrictions" in line)
    assert f"check_recipient_access lmdb:{dest}/refused-recipients, reject_unlisted_recipient" in restrictions
    assert "check_policy_service unix:private/quota-status" in restrictions
    assert "virtual_transport = lmtp:unix:private/dovecot-lmtp" in r.stdout


# -- keys postmap cannot store (issue 28) --------------------------------------------------

def test_hash_address_cannot_exist_to_be_dropped(dsn, dest, sql_postfix, reader_dsn):
    """postmap reads a source line starting with "#" as a comment: a "#hash@" mailbox next
    to the catch-all would lose its key and its mail go to foo@. Such an address cannot be
    stored (22023, named), so the tables compiled now hold every key the database has."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        try:
            for call in ("add_mailbox('#hash@example.com', 'hash secret')",
                         "add_alias('#off@example.com', 'foo@example.com')",
                         "allow_send_as('foo@example.com', '#boss@example.com')"):
                with pytest.raises(psycopg.errors.InvalidParameterValue, match='starts with "#"') as e:
                    conn.execute(f"SELECT {call}")
                assert '"#' in str(e.value)
        finally:  # (what a release without the rule stored: gone, for the other tests)
            conn.execute("RESET ROLE")
            conn.execute("DELETE FROM public.send_as WHERE address LIKE '#%';"
                         " DELETE FROM public.aliases WHERE alias LIKE '#%'; DELETE FROM public.users WHERE email LIKE '#%'")
    cli(["maps", "compile", "--dest", str(dest), "--dsn", reader_dsn, "--config-dir", str(sql_postfix.config)],
        env=READER_ENV, check=True)
    r = verify(dest, sql_postfix, "--dsn", reader_dsn)
    assert r.exit_code == 0, r


@pytest.fixture
def legacy_hash_row(dsn):
    """A "#hash@example.com" mailbox stored as before 0201: the owner inserts it with the
    CHECK dropped and puts the CHECK back NOT VALID (what an upgraded database holds)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("ALTER TABLE public.users DROP CONSTRAINT users_email_valid")
            conn.execute("INSERT INTO public.users (email, password, maildir)"
                         " VALUES ('#hash@example.com', '{CRAM-MD5}' || repeat('0', 64), 'example.com/hash/')")
            conn.execute("ALTER TABLE public.users ADD CONSTRAINT users_email_valid"
                         " CHECK (public.address_error(email) IS NULL) NOT VALID")
    yield "#hash@example.com"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM public.users WHERE email = '#hash@example.com'")
        conn.execute("ALTER TABLE public.users VALIDATE CONSTRAINT users_email_valid")


def snapshot_files(d: Path) -> dict:
    return {p.name: (p.stat().st_ino, p.read_bytes()) for p in d.iterdir()}


def test_doctor_lists_a_stored_hash_address(legacy_hash_row, dsn):
    """A "#" address stored before today's rule is listed by doctor, and left as it is."""
    r = cli(["doctor", "--dsn", dsn, "--json"])
    found = [c for c in json.loads(r.stdout) if c["check"] == "stored addresses"]
    assert r.exit_code == 1 and [c["status"] for c in found] == ["fail"], r
    assert found[0]["detail"].startswith('mailbox #hash@example.com: local part of "#hash@example.com" starts with "#"')
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM public.users WHERE email = %s", (legacy_hash_row,)).fetchone() == (1,)


def test_compile_refuses_a_key_postmap_would_drop(legacy_hash_row, dest, sql_postfix, reader_dsn):
    """With such a row, compile fails with one line naming the key, and writes nothing:
    the tables Postfix reads stay the previous ones, byte for byte."""
    before = snapshot_files(dest)
    r = cli(["maps", "compile", "--dest", str(dest), "--dsn", reader_dsn, "--config-dir", str(sql_postfix.config)],
            env=READER_ENV)
    assert r.exit_code == 1 and "map mailboxes: key '#hash@example.com' starts with \"#\"" in r.stderr, r
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert snapshot_files(dest) == before


def test_verify_finds_a_hash_key_missing(legacy_hash_row, dest, sql_postfix, reader_dsn):
    """Run as the admin guide runs it (no --dsn option: the database from the environment),
    verify compared only the keys the compiled tables have, so a key compile dropped was
    never asked; now every key of the database is held against the compiled table."""
    r = verify(dest, sql_postfix, env={**READER_ENV, "MAILBOOK_DSN": reader_dsn})
    assert r.exit_code == 1, r
    assert "mailboxes #hash@example.com: compiled (not found), SQL example.com/hash/" in r.stdout


def test_verify_finds_a_key_missing_from_a_table(dest, sql_postfix, reader_dsn):
    """A key gone from the compiled tables that no other key names (baz@example.org: only a
    value elsewhere) is found, run as the admin guide runs verify (the DSN from the
    environment), not only when a random sample happens to hit it."""
    try:
        for name in ("mailboxes", "sender-login"):
            subprocess.run(["postmap", "-c", str(sql_postfix.config), "-d", "baz@example.org", f"lmdb:{dest}/{name}"],
                           check=True)
        r = verify(dest, sql_postfix, env={**READER_ENV, "MAILBOOK_DSN": reader_dsn})
        assert r.exit_code == 1, r
        assert "mailboxes baz@example.org: compiled (not found), SQL example.org/baz/" in r.stdout
        assert "sender-login baz@example.org: compiled (not found)" in r.stdout
    finally:
        cli(["maps", "compile", "--dest", str(dest), "--dsn", reader_dsn, "--config-dir", str(sql_postfix.config)],
            env=READER_ENV, check=True)


# -- writing into the directory: no planted name is followed (issue 28) ---------------------

VICTIM = "root's own secret\n"


@pytest.fixture
def victims(root_dir):
    """Two root-only files a hostile directory owner would like written or opened up."""
    made = []
    for i in range(2):
        v = root_dir / f"victim-{i}-{secrets.token_hex(3)}"
        v.write_text(VICTIM)
        v.chmod(0o600)
        made.append(v)
    yield made
    for v in made:
        v.unlink(missing_ok=True)


def swapping_postmap(root_dir: Path, victim: Path) -> dict:
    """PATH with a `postmap` that runs the real one and then, when it has built a table,
    puts a symlink to victim in its place: what a directory owner racing the compiler
    does between postmap's exit and the chmod."""
    bin_dir = root_dir / "swapping-bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "postmap"
    script.write_text(f"""#!/bin/sh
/usr/sbin/postmap "$@" || exit $?
for last; do :; done
case "$*" in *" -q "*|*" -s "*|*" -d "*|*" -i "*) exit 0;; esac
case "$last" in lmdb:*) t="${{last#lmdb:}}.lmdb"; rm -f "$t"; ln -s {victim} "$t";; esac
""")
    script.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_root_compile_refuses_another_users_dir(root_dir, victims, reader_dsn, sql_postfix):
    """Root compiling into a directory another user owns (mailbook-maps' in production):
    refused with one line naming runuser, before anything is opened there; neither the
    symlink planted at the old predictable state name nor a swapped table reaches root's
    files."""
    d = root_dir / f"foreign-{secrets.token_hex(3)}"
    d.mkdir()
    os.chown(d, 65534, -1)  # nobody
    (d / f".{compiled.STATE_FILE}.{os.getpid()}").symlink_to(victims[0])  # the name 95b1218 wrote through
    r = cli(["maps", "compile", "--dest", str(d), "--dsn", reader_dsn, "--config-dir", str(sql_postfix.config)],
            env={**READER_ENV, **swapping_postmap(root_dir, victims[1])})
    assert r.exit_code == 1 and f"runuser -u nobody -- mailbook maps compile --dest {d}" in r.stderr, r
    assert r.stderr.count("\n") == 1
    for v in victims:
        assert v.read_text() == VICTIM and oct(v.stat().st_mode & 0o777) == "0o600", v
    assert sorted(p.name for p in d.iterdir()) == [f".{compiled.STATE_FILE}.{os.getpid()}"]


def test_compile_never_chmods_through_a_swapped_name(root_dir, victims, reader_dsn, sql_postfix):
    """If the table postmap built is replaced by a symlink before its mode is set, the
    compiler sets nothing through it (descriptor opened O_NOFOLLOW) and installs nothing."""
    d = root_dir / f"own-{secrets.token_hex(3)}"
    r = cli(["maps", "compile", "--dest", str(d), "--dsn", reader_dsn, "--config-dir", str(sql_postfix.config)],
            env={**READER_ENV, **swapping_postmap(root_dir, victims[1])})
    assert r.exit_code == 1 and "is not the table postmap wrote" in r.stderr and "Traceback" not in r.stderr, r
    assert victims[1].read_text() == VICTIM and oct(victims[1].stat().st_mode & 0o777) == "0o600"
    assert not [p for p in d.iterdir() if p.is_symlink() or p.name.endswith(".lmdb")]


def mailbook_as(user: str, *args: str) -> list[str]:
    """The command line of `mailbook ARGS` run as user through runuser, as the admin guide
    does. That user cannot read this interpreter (it may live under /root), so Debian's
    python3 runs this checkout with its virtualenv's packages."""
    site = Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    return ["runuser", "-u", user, "--", "env", f"PYTHONPATH={site}:{Path(__file__).parent.parent}", "/usr/bin/python3",
            "-c", "import sys; from runner import app; sys.argv[0] = 'mailbook'; app()", *args]


def test_compile_as_the_directory_owner_as_documented(root_dir, reader_dsn, sql_postfix):
    """The admin guide's set-up: DEST owned by the follower's user, setgid group postfix
    (that user is not in group postfix), compile run as that user through runuser: the
    tables are its own, 0640 group postfix, and no temporary file is left."""
    d = root_dir / f"maps-user-{secrets.token_hex(3)}"
    d.mkdir()
    os.chown(d, 65534, grp.getgrnam("postfix").gr_gid)
    d.chmod(0o2750)
    r = subprocess.run(mailbook_as("nobody", "maps", "compile", "--dest", str(d), "--dsn", reader_dsn,
                                   "--config-dir", str(sql_postfix.config)),
                       env={**os.environ, **READER_ENV}, capture_output=True, text=True, cwd="/")
    assert r.returncode == 0, r.stderr
    for m in compiled.MAPS:
        for p in (d / f"{m.name}.lmdb", d / m.name):
            st = p.stat()
            assert (st.st_uid, grp.getgrgid(st.st_gid).gr_name, oct(st.st_mode & 0o777)) == (65534, "postfix", "0o640"), p
    assert not [p for p in d.iterdir() if p.name.startswith(".")]


# -- random provisioning, then compile and compare every key -------------------------------

@pytest.fixture(scope="module")
def property_db(cluster, dsn, sql_postfix, root_dir):
    """The module's database emptied for each example: its pgsql: maps and Postfix config
    stay, so postmap asks the same files."""
    return dsn


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(first_domains=st.lists(st.sampled_from(DOMAINS), min_size=1, max_size=3, unique=True),
       first_mailboxes=st.lists(ADDRESS, min_size=2, max_size=8),
       steps=st.lists(STEP, min_size=3, max_size=25))
def test_random_provisioning_compiles(
        property_db, sql_postfix, root_dir, reader_dsn, first_domains, first_mailboxes, steps):
    """Random provisioning compiles to tables that answer as the pgsql: maps."""
    with psycopg.connect(property_db, autocommit=True) as conn:
        conn.execute("DELETE FROM public.send_as; DELETE FROM public.aliases; DELETE FROM public.users;"
                     " UPDATE public.transports SET alias_of = NULL; DELETE FROM public.transports")
        conn.execute("SET ROLE mailadmin")
        # a populated start, so that most random steps find something to act on
        for d in first_domains:
            apply_step(conn, ("add_domain", d))
        for a in first_mailboxes:
            apply_step(conn, ("add_mailbox", a, "pw"))
        for step in steps:
            apply_step(conn, step)
    dest = root_dir / "property"
    cli(["maps", "compile", "--dest", str(dest), "--dsn", reader_dsn, "--config-dir", str(sql_postfix.config)],
        env=READER_ENV, check=True)
    extra = [f"{l}@{d}" for l in LOCALS for d in DOMAINS]  # every address the steps could name
    with psycopg.connect(property_db) as conn:
        db_rows, _ = compiled.snapshot(conn)
    checked, diffs = compiled.verify_keys(dest, sql_postfix.maps, sql_postfix.config, db_rows, sample=1,
                                          extra_keys=extra)
    assert not diffs, (steps, [str(d) for d in diffs])


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(first_domains=st.lists(st.sampled_from(DOMAINS), min_size=1, max_size=3, unique=True),
       first_mailboxes=st.lists(ADDRESS, min_size=2, max_size=8),
       steps=st.lists(STEP, min_size=3, max_size=25),
       asked_domains=st.lists(st.sampled_from(DOMAINS), max_size=2, unique=True),
       asked=st.lists(ADDRESS, min_size=1, max_size=6, unique=True))
def test_compiled_map_rows_partial(
        property_db, first_domains, first_mailboxes, steps, asked_domains, asked):
    """Compiled map rows for some addresses and domains are exactly those keys of a full
    compile.

    What `maps follow` reads for a batch: the keys equal to the addresses asked plus
    every key of the domains asked, each with the value a full compile gives it (and
    nothing else), whatever state random provisioning left."""
    with psycopg.connect(property_db, autocommit=True) as conn:
        conn.execute("DELETE FROM public.send_as; DELETE FROM public.aliases; DELETE FROM public.users;"
                     " UPDATE public.transports SET alias_of = NULL; DELETE FROM public.transports")
        conn.execute("SET ROLE mailadmin")
        for d in first_domains:
            apply_step(conn, ("add_domain", d))
        for a in first_mailboxes:
            apply_step(conn, ("add_mailbox", a, "pw"))
        for step in steps:
            apply_step(conn, step)
        for m in compiled.MAPS:
            full = dict(conn.execute("SELECT key, value FROM public.compiled_map_rows(%s)", (m.name,)))
            expected = {k: v for k, v in full.items() if k in asked or compiled_key_domain(k) in asked_domains}
            got = conn.execute("SELECT key, value FROM public.compiled_map_rows(%s, %s, %s)",
                               (m.name, asked_domains, asked)).fetchall()
            assert len(got) == len(dict(got)) and dict(got) == expected, (m.name, steps, asked_domains, asked)


def compiled_key_domain(key: str) -> str:
    return key.rpartition("@")[2]
