"""`mailbook maps follow`: the compiled lmdb: tables kept current from the change record
that triggers write (migration 0112_baseline_map_changes), proven with a real PostgreSQL of this module's own
(so that it can be restarted under the follower), the real follower process, and a real
Postfix on the compiled tables answering RCPT over SMTP.

Needs root (Postfix does); under CI the test command runs as root.
"""

from __future__ import annotations

import grp
import io
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbook import data_dir
from mailbook.postfix import compiled, follow
from mailbook.provisioning import bulk
from tests.harness.database import migrated_cluster
from tests.harness.postfix import Postfix, install_postfix
from tests.harness.process import cli, daemon_root
from tests.harness.strategies import ADDRESS, DOMAINS, LOCALS, STEP, apply_step

READER_PW = "reader-pw-maps-follow"
READER_ENV = {"PGPASSWORD": READER_PW}
MAILBOOK = str(Path(sys.executable).parent / "mailbook")


@pytest.fixture(scope="module")
def root_dir():
    with daemon_root("mailbook-follow-", "the maps follow tests") as d:
        yield d


@pytest.fixture(scope="module")
def pg(root_dir):
    """This module's own PostgreSQL: the follower must live through its restart."""
    with migrated_cluster(root_dir / "pg", durable=False, mailreader=READER_PW) as c:
        with psycopg.connect(c.dsn("mail"), autocommit=True) as conn:
            conn.execute("SET ROLE mailadmin")
            conn.execute("SELECT add_domain('example.com')")
            conn.execute("SELECT add_mailbox('foo@example.com', 'foo secret')")
            conn.execute("SELECT add_alias('@example.com', 'foo@example.com')")
            conn.execute("SELECT add_domain('example.org')")
            conn.execute("SELECT add_alias_domain('example.net', 'example.org')")
        yield c


@pytest.fixture(scope="module")
def admin_dsn(pg) -> str:
    return pg.dsn("mail")


@pytest.fixture(scope="module")
def reader_dsn(pg) -> str:
    return f"host=127.0.0.1 port={pg.port} dbname=mail user=mailreader"


@pytest.fixture(scope="module")
def sql_postfix(root_dir, pg):
    """The pgsql: map files (for postmap -c and for comparing answers); not started."""
    return install_postfix(root_dir, pg, "mail", READER_PW)


@pytest.fixture(scope="module")
def sql_config(sql_postfix) -> Path:
    sql_postfix.configure()
    return sql_postfix.config


class Follower:
    """`mailbook maps follow` as the systemd unit runs it: a process of its own."""

    def __init__(self, dest: Path, reader_dsn: str, config: Path, log: Path):
        self.dest, self.reader_dsn, self.config, self.log = dest, reader_dsn, config, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> Follower:
        out = open(self.log, "a")
        self.proc = subprocess.Popen(
            [MAILBOOK, "maps", "follow", "--dest", str(self.dest), "--dsn", self.reader_dsn,
             "--config-dir", str(self.config), "--poll", "1"],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **READER_ENV})
        out.close()
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=20)

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def lag(admin_dsn: str, dest: Path) -> int | None:
    state = compiled.read_state(dest)
    if not state or "snapshot" not in state:
        return None
    with psycopg.connect(admin_dsn) as conn:
        behind, pruned = conn.execute("SELECT transactions, pruned FROM public.compiled_map_lag(%s::pg_snapshot)",
                                      (state["snapshot"],)).fetchone()
        return None if pruned else behind


def caught_up(admin_dsn: str, follower: Follower, timeout: float = 30) -> None:
    """Until compiled.json names a snapshot that every committed change is in."""
    deadline = time.monotonic() + timeout
    while lag(admin_dsn, follower.dest) != 0:
        if follower.proc.poll() is not None:
            raise AssertionError(f"follow exited {follower.proc.returncode}:\n{follower.log_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"follow did not catch up in {timeout} s:\n{follower.log_text()[-3000:]}")
        time.sleep(0.05)


def assert_tables_are_a_fresh_compile(admin_dsn: str, dest: Path, config: Path) -> None:
    """Every key of every table, through postmap -s, equals compiled_map_rows() now."""
    with psycopg.connect(admin_dsn) as conn:
        fresh = {m.name: dict(conn.execute("SELECT key, value FROM public.compiled_map_rows(%s)", (m.name,)))
                 for m in compiled.MAPS}
    for m in compiled.MAPS:
        assert compiled.dump(f"lmdb:{dest}/{m.name}", config) == fresh[m.name], m.name


@pytest.fixture(scope="module")
def dest(root_dir) -> Path:
    return root_dir / "compiled"


@pytest.fixture(scope="module")
def follower(root_dir, dest, reader_dsn, sql_config, admin_dsn):
    """One follower for the module, started on an empty DEST (so it compiles in full)."""
    f = Follower(dest, reader_dsn, sql_config, root_dir / "follow.log").start()
    caught_up(admin_dsn, f)
    yield f
    if f.proc.poll() is None:
        f.stop()


@pytest.fixture(scope="module")
def lmdb_postfix(root_dir, dest, follower, sql_postfix):
    """A Postfix whose maps are only the tables the follower keeps."""
    pf = Postfix(root_dir / "postfix-lmdb", sql_postfix.maps)
    parameters = {m.parameter for m in compiled.MAPS}
    pf.overrides = {k: v for k, v in compiled.postconf_settings(dest, pf.delivery) if k in parameters}
    try:  # stopped also when the start fails half-way
        pf.start()
        yield pf
    finally:
        pf.stop()


def admin(admin_dsn: str) -> psycopg.Connection:
    conn = psycopg.connect(admin_dsn, autocommit=True)
    conn.execute("SET ROLE mailadmin")
    return conn


def rcpt_until(pf: Postfix, recipient: str, code: int, timeout: float = 10) -> float:
    """Seconds until Postfix answers RCPT TO recipient with code."""
    start = time.monotonic()
    while True:
        got, msg = pf.rcpt(recipient)
        if got == code:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"RCPT {recipient}: still {got} {msg} after {timeout} s")
        time.sleep(0.05)


# -- the follower at work ------------------------------------------------------------------

def test_follow_full_compile_first(follower, dest):
    """Follow compiles in full when dest has no state and records its snapshot."""
    state = compiled.read_state(dest)
    assert state["snapshot"].count(":") == 2 and state["keys"]["mailboxes"] == 1
    assert "compiled every map in full (no usable compiled.json" in follower.log_text()


def test_follow_new_mailbox_accepted(lmdb_postfix, admin_dsn, follower):
    """A new mailbox is accepted at RCPT by Postfix on the followed tables."""
    assert lmdb_postfix.rcpt("new@example.org")[0] == 550
    with admin(admin_dsn) as conn:
        conn.execute("SELECT add_mailbox('new@example.org', 'new secret')")
    rcpt_until(lmdb_postfix, "new@example.org", 250)
    rcpt_until(lmdb_postfix, "new@example.net", 250)  # its alias domain's key came with it
    with admin(admin_dsn) as conn:
        conn.execute("SELECT set_mailbox_active('new@example.org', false)")
    rcpt_until(lmdb_postfix, "new@example.org", 550)
    # updated in place: no daemon restarts for it (lmdb: tables are opened multi-writer)
    assert "has changed -- restarting" not in lmdb_postfix.log_text()
    assert "applied" in follower.log_text()


def test_a_removed_mailbox_goes_back_to_the_catch_all(lmdb_postfix, admin_dsn, follower):
    with admin(admin_dsn) as conn:
        conn.execute("SELECT add_mailbox('temp@example.com', 'temp secret')")
        caught_up(admin_dsn, follower)
        conn.execute("SELECT remove_mailbox('temp@example.com')")
    caught_up(admin_dsn, follower)
    assert lmdb_postfix.rcpt("temp@example.com")[0] == 250  # the catch-all takes it again
    assert_tables_are_a_fresh_compile(admin_dsn, follower.dest, follower.config)


def test_the_follower_writes_nothing_and_its_role_may_not(admin_dsn, reader_dsn, follower):
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        # the follower's is the only other session: mailreader's, listening
        sessions = conn.execute("SELECT a.usename, l.channel FROM pg_stat_activity a"
                                "  LEFT JOIN LATERAL (SELECT pg_listening_channels() AS channel) l ON false"
                                " WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()").fetchall()
        assert [u for u, _ in sessions] == ["mailreader"]
    with psycopg.connect(reader_dsn, password=READER_PW, autocommit=True) as conn:
        for statement in ("DELETE FROM public.map_changes", "INSERT INTO public.map_changes (domain) VALUES ('x')",
                          "UPDATE public.map_changes_horizon SET pruned_xid = NULL",
                          "SELECT public.prune_map_changes('0')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_killed_follower_restarted_loses_nothing(admin_dsn, follower, sql_config, dest):
    """SIGKILL while a provisioning loop runs, more changes while it is dead, and a restart."""
    stop = threading.Event()

    def provision():
        with admin(admin_dsn) as conn:
            i = 0
            while not stop.is_set():
                conn.execute("SELECT add_mailbox(%s, 'pw')", (f"k{i}@example.org",))
                if i % 3 == 0:
                    conn.execute("SELECT add_alias(%s, %s)", (f"a{i}@example.com", f"k{i}@example.org"))
                i += 1

    t = threading.Thread(target=provision)
    t.start()
    try:
        time.sleep(1.5)
        assert follower.stop(signal.SIGKILL) == -signal.SIGKILL
        time.sleep(0.5)
    finally:
        stop.set()
        t.join()
    follower.start()
    caught_up(admin_dsn, follower)
    assert_tables_are_a_fresh_compile(admin_dsn, dest, sql_config)


def test_follow_crash_repeats_batch(
        admin_dsn, follower, sql_config, dest):
    """A crash between applying and recording the snapshot repeats the batch harmlessly."""
    before = (dest / compiled.STATE_FILE).read_bytes()
    with admin(admin_dsn) as conn:
        conn.execute("SELECT add_mailbox('again@example.com', 'pw')")
        conn.execute("SELECT allow_send_as('again@example.com', 'shared@example.net')")
        conn.execute("SELECT remove_mailbox('k1@example.org')")
    caught_up(admin_dsn, follower)
    follower.stop()
    (dest / compiled.STATE_FILE).write_bytes(before)  # the tables are ahead of compiled.json
    follower.start()
    caught_up(admin_dsn, follower)
    assert_tables_are_a_fresh_compile(admin_dsn, dest, sql_config)


def test_doctor_reports_how_far_the_compiled_maps_are_behind(admin_dsn, follower, dest):
    r = cli(["doctor", "--dsn", admin_dsn, "--compiled", str(dest), "--json"])
    assert '"check": "compiled maps"' in r.stdout and f"{dest} is current" in r.stdout, r
    follower.stop()
    try:
        with admin(admin_dsn) as conn:
            conn.execute("SELECT add_mailbox('late@example.com', 'pw')")
            conn.execute("SELECT add_mailbox('later@example.com', 'pw')")
        time.sleep(1.1)
        r = cli(["doctor", "--dsn", admin_dsn, "--compiled", str(dest), "--max-lag", "1", "--json"])
        assert r.exit_code == 1 and "is 2 transaction(s) behind" in r.stdout, r
        assert "is `mailbook maps follow` running?" in r.stdout and "compiled maps" in r.stderr
        assert "Traceback" not in r.stderr
    finally:
        follower.start()
    caught_up(admin_dsn, follower)
    r = cli(["doctor", "--dsn", admin_dsn, "--compiled", str(dest), "--max-lag", "1", "--json"])
    assert f"{dest} is current" in r.stdout


def test_a_follower_older_than_the_pruned_changes_compiles_in_full(admin_dsn, follower, dest, sql_config):
    follower.stop()
    try:
        with admin(admin_dsn) as conn:
            conn.execute("SELECT add_mailbox('pruned@example.com', 'pw')")
            time.sleep(0.05)
        r = cli(["maps", "prune", "--older-than", "0", "--dsn", admin_dsn])
        assert r.exit_code == 0 and "change record(s) older than 0 deleted" in r.stdout, r
        r = cli(["doctor", "--dsn", admin_dsn, "--compiled", str(dest), "--json"])
        assert r.exit_code == 1 and "older than the change records kept" in r.stdout, r
    finally:
        follower.start()
    caught_up(admin_dsn, follower)
    assert "compiled every map in full (changes since the last snapshot were pruned)" in follower.log_text()
    assert_tables_are_a_fresh_compile(admin_dsn, dest, sql_config)


def test_prune_refuses_a_negative_retention_and_changes_nothing(admin_dsn):
    with psycopg.connect(admin_dsn) as conn:
        before = conn.execute("SELECT count(*) FROM public.map_changes").fetchone()[0]
    r = cli(["maps", "prune", "--older-than", "-1 day", "--dsn", admin_dsn])
    assert r.exit_code == 1 and "retention -1 days is not a positive interval" in r.stderr, r
    assert "Traceback" not in r.stderr
    with psycopg.connect(admin_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM public.map_changes").fetchone()[0] == before


def test_follow_survives_restart(
        pg, admin_dsn, follower, lmdb_postfix):
    """PostgreSQL restart under the follower is survived without restarting it."""
    pid = follower.proc.pid
    pg.stop()
    try:
        time.sleep(2)
        # the point of compiled maps: Postfix answers from its tables meanwhile
        assert lmdb_postfix.rcpt("foo@example.com")[0] == 250
        assert lmdb_postfix.rcpt("nobody@example.org")[0] == 550
    finally:
        pg.start()
    with admin(admin_dsn) as conn:
        conn.execute("SELECT add_mailbox('back@example.org', 'pw')")
    rcpt_until(lmdb_postfix, "back@example.org", 250, timeout=60)
    assert follower.proc.pid == pid and follower.proc.poll() is None
    log = follower.log_text()
    assert "PostgreSQL unavailable (" in log and "retrying in" in log and "reconnected to PostgreSQL" in log
    assert "Traceback" not in log


def test_follow_once_against_a_stopped_server_fails_with_one_line(root_dir, sql_config):
    r = cli(["maps", "follow", "--once", "--dest", str(root_dir / "never"), "--config-dir", str(sql_config),
             "--dsn", "host=127.0.0.1 port=1 dbname=mail user=mailreader"], env=READER_ENV)
    assert r.exit_code == 1 and r.stderr.startswith("mailbook: cannot connect to PostgreSQL"), r
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("change, key", [
    # a mailbox decides the sender-login keys of the aliases that reach it, elsewhere
    ("SELECT set_mailbox_active('fwd@example.com', false)", "info@example.org"),
    # and of the addresses it was granted, elsewhere
    ("SELECT set_mailbox_active('boss@example.com', false)", "boss@example.org"),
    # a domain decides the sender-login keys of its mailboxes' grants elsewhere
    ("SELECT set_domain_active('cross.example', false)", "desk@example.org"),
    # every change of a target reaches its alias domain's keys
    ("SELECT set_mailbox_active('boss@example.com', false)", "boss@example.net"),
])
def test_a_change_reaches_the_keys_it_decides_in_other_domains(admin_dsn, follower, dest, sql_config, change, key):
    """The rules of 0112's header that random sequences rarely hit, one at a time (each
    mailbox below has one way into example.org): the key named is in another domain than
    the row changed, and must follow it."""
    with admin(admin_dsn) as conn:
        conn.execute("SELECT add_domain('cross.example')")
        conn.execute("SELECT add_mailbox('fwd@example.com', 'pw')")
        conn.execute("SELECT add_mailbox('boss@example.com', 'pw')")
        conn.execute("SELECT add_mailbox('desk@cross.example', 'pw')")
        conn.execute("SELECT add_alias('info@example.org', 'fwd@example.com')")
        conn.execute("SELECT allow_send_as('boss@example.com', 'boss@example.org')")
        conn.execute("SELECT allow_send_as('desk@cross.example', 'desk@example.org')")
        try:
            caught_up(admin_dsn, follower)
            assert key in compiled.dump(f"lmdb:{dest}/sender-login", sql_config)
            conn.execute(change)
            caught_up(admin_dsn, follower)
            assert key not in compiled.dump(f"lmdb:{dest}/sender-login", sql_config)
            assert_tables_are_a_fresh_compile(admin_dsn, dest, sql_config)
        finally:
            conn.execute("SELECT remove_alias('info@example.org')")
            for mailbox in ("fwd@example.com", "boss@example.com", "desk@cross.example"):
                conn.execute("SELECT remove_mailbox(%s)", (mailbox,))
            conn.execute("SELECT remove_domain('cross.example')")
    caught_up(admin_dsn, follower)


def recorded(conn: psycopg.Connection, statement: str) -> set[tuple[str | None, str | None]]:
    """The (domain, address) rows one statement's transaction wrote to map_changes."""
    with conn.transaction():
        conn.execute(statement)
        conn.execute("RESET ROLE")
        rows = conn.execute("SELECT domain, address FROM public.map_changes"
                            " WHERE xid = pg_current_xact_id()").fetchall()
        conn.execute("SET ROLE mailadmin")
    return set(rows)


def test_changes_record_addresses(admin_dsn, follower):
    """Row changes record addresses and only catch-alls and domains record a whole domain."""
    with admin(admin_dsn) as conn:
        # a mailbox: its address, and the same local part in the alias domain example.net
        assert recorded(conn, "SELECT add_mailbox('rec@example.org', 'pw')") == {
            ("example.org", "rec@example.org"), ("example.net", "rec@example.net")}
        assert recorded(conn, "SELECT add_alias('recalias@example.com', 'rec@example.org')") == {
            ("example.com", "recalias@example.com")}
        assert recorded(conn, "SELECT allow_send_as('rec@example.org', 'recgrant@example.com')") == {
            ("example.com", "recgrant@example.com")}
        # a mailbox change reaches the aliases that point at it and the grants it holds
        assert recorded(conn, "SELECT set_mailbox_active('rec@example.org', false)") == {
            ("example.org", "rec@example.org"), ("example.net", "rec@example.net"),
            ("example.com", "recalias@example.com"), ("example.com", "recgrant@example.com")}
        # a catch-all decides the self-keys of its whole domain (and its alias domains')
        assert recorded(conn, "SELECT add_alias('@example.org', 'rec@example.org')") == {
            ("example.org", None), ("example.net", None)}
        conn.execute("SELECT remove_alias('@example.org')")
        conn.execute("SELECT remove_alias('recalias@example.com')")
        conn.execute("SELECT remove_mailbox('rec@example.org')")
        assert recorded(conn, "SELECT add_domain('rec.example')") == {("rec.example", None)}
        conn.execute("SELECT remove_domain('rec.example')")
    caught_up(admin_dsn, follower)


def test_a_new_mailbox_in_a_domain_is_applied_as_its_own_keys_only(lmdb_postfix, admin_dsn, follower, dest, sql_config):
    """Many mailboxes in example.org, then one more: the batch changes the new keys
    (mailboxes, sender-login, and the alias domain example.net's virtual and sender-login
    keys), not the domain's other keys, and the tables equal a fresh compile."""
    with admin(admin_dsn) as conn:
        for i in range(40):
            conn.execute("SELECT add_mailbox(%s, 'pw')", (f"many{i}@example.org",))
        caught_up(admin_dsn, follower)
        before = follower.log_text()
        conn.execute("SELECT add_mailbox('one@example.org', 'pw')")
    caught_up(admin_dsn, follower)
    new_lines = follower.log_text()[len(before):]
    assert "applied 4 key change(s)" in new_lines, new_lines
    rcpt_until(lmdb_postfix, "one@example.net", 250)
    assert_tables_are_a_fresh_compile(admin_dsn, dest, sql_config)


def test_follow_big_batch_rebuilds(
        admin_dsn, follower, dest, sql_config, lmdb_postfix):
    """A batch of more than 5000 key changes rebuilds the tables keeping the other domains.

    2,000 mailboxes in one transaction (4 keys each, with the alias domain's): the
    tables are rebuilt from the follower's copy with the batch in it, so the keys of the
    domains the batch did not touch stay; and the same on the way out."""
    hashed = "{BLF-CRYPT}$2a$05$" + "a" * 53
    with admin(admin_dsn) as conn:
        before = follower.log_text()
        conn.execute("SELECT add_mailbox_hashed('bulk' || i || '@example.org', %s) FROM generate_series(1, 2000) i",
                     (hashed,))
        caught_up(admin_dsn, follower)
        assert "rebuilt the changed tables (8000 keys changed)" in follower.log_text()[len(before):]
        assert_tables_are_a_fresh_compile(admin_dsn, dest, sql_config)
        assert lmdb_postfix.rcpt("foo@example.com")[0] == 250  # another domain's key is still there
        rcpt_until(lmdb_postfix, "bulk7@example.net", 250)
        conn.execute("SELECT remove_mailbox('bulk' || i || '@example.org') FROM generate_series(1, 2000) i")
    caught_up(admin_dsn, follower)
    assert_tables_are_a_fresh_compile(admin_dsn, dest, sql_config)


def test_an_import_is_recorded_by_domain(admin_dsn, follower, dest, sql_config, lmdb_postfix):
    """An import of 1,000 mailboxes into one domain, then of 1,000 aliases, records that
    domain once (and its alias domain), not each address (issue 35: a third of a 1M
    import); the follower then serves every imported mailbox and alias, in the domain and
    the alias domain, and its tables equal a fresh compile."""
    hashed = "{BLF-CRYPT}$2a$05$" + "a" * 53
    rows = "".join(f"mailbox,imp{i}@example.org,{hashed}\n" for i in range(1000))
    with admin(admin_dsn) as conn:
        with conn.transaction():
            count, problems = bulk.import_csv(conn, io.StringIO("kind,address,password_hash\n" + rows), dry_run=False)
            conn.execute("RESET ROLE")
            changes = set(conn.execute("SELECT domain, address FROM public.map_changes"
                                       " WHERE xid = pg_current_xact_id()").fetchall())
            conn.execute("SET ROLE mailadmin")
        assert (count, problems) == (1000, [])
        assert changes == {("example.org", None), ("example.net", None)}
        caught_up(admin_dsn, follower, timeout=120)
        assert lmdb_postfix.rcpt("imp999@example.org")[0] == 250
        assert lmdb_postfix.rcpt("imp0@example.net")[0] == 250  # the alias domain's keys came with it
        assert_tables_are_a_fresh_compile(admin_dsn, dest, sql_config)
        # and 1,000 aliases to them, the same way
        aliases = "".join(f"alias,al{i}@example.org,imp{i}@example.org\n" for i in range(1000))
        with conn.transaction():
            count, problems = bulk.import_csv(conn, io.StringIO("kind,address,destination\n" + aliases), dry_run=False)
            conn.execute("RESET ROLE")
            changes = set(conn.execute("SELECT domain, address FROM public.map_changes"
                                       " WHERE xid = pg_current_xact_id()").fetchall())
            conn.execute("SET ROLE mailadmin")
        assert (count, problems, changes) == (1000, [], {("example.org", None), ("example.net", None)})
        caught_up(admin_dsn, follower, timeout=120)
        assert lmdb_postfix.rcpt("al999@example.net")[0] == 250
        assert_tables_are_a_fresh_compile(admin_dsn, dest, sql_config)
        conn.execute("SELECT remove_alias('al' || i || '@example.org') FROM generate_series(0, 999) i")
        conn.execute("SELECT remove_mailbox('imp' || i || '@example.org') FROM generate_series(0, 999) i")
    caught_up(admin_dsn, follower, timeout=120)
    assert lmdb_postfix.rcpt("imp999@example.org")[0] == 550
    assert_tables_are_a_fresh_compile(admin_dsn, dest, sql_config)


# -- the order of the keys within a batch ----------------------------------------------------

class SlowFollower(follow.Follower):
    """The real follower, but each key put or deleted by its own postmap, and after each
    one every probe address asked at RCPT of a Postfix on these tables: what a lookup
    may see in the middle of a batch."""

    def __init__(self, *args, postfix: Postfix, probes: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.postfix, self.probes = postfix, probes
        self.seen: list[dict[str, int]] = []  # the answers after each key

    def _look(self) -> None:
        self.seen.append({a: self.postfix.rcpt(a)[0] for a in self.probes})

    def _postmap_put(self, name, keys):
        for k, v in sorted(keys.items()):
            super()._postmap_put(name, {k: v})
            self._look()

    def _postmap_delete(self, name, keys):
        for k in sorted(keys):
            super()._postmap_delete(name, [k])
            self._look()


@pytest.fixture(scope="module")
def order_tables(root_dir, reader_dsn, sql_postfix, sql_config):
    """Tables of their own, kept by an in-process SlowFollower, and a Postfix on them."""
    dest = root_dir / "order"
    probes = [f"{l}@order.example" for l in ("box", "alias", "off", "nobody")]
    pf = Postfix(root_dir / "postfix-order", sql_postfix.maps)
    parameters = {m.parameter for m in compiled.MAPS}
    pf.overrides = {k: v for k, v in compiled.postconf_settings(dest, pf.delivery) if k in parameters}
    f = SlowFollower(reader_dsn, dest, sql_config, postfix=pf, probes=probes, say=lambda line: None)
    conn = psycopg.connect(reader_dsn, password=READER_PW, autocommit=True)
    f.batch(conn)  # the first batch compiles in full
    try:  # stopped also when the start fails half-way
        pf.start()
        yield f, conn
    finally:
        pf.stop()
        conn.close()


@pytest.mark.parametrize("change, back", [
    # a catch-all: the self-keys and the refusal of the disabled mailbox must be in
    # before "@order.example" and leave after it
    ("SELECT add_alias('@order.example', 'box@order.example')", "SELECT remove_alias('@order.example')"),
    # the domain itself: domains before their addresses, addresses before domains leave
    ("SELECT set_domain_active('order.example', false)", "SELECT set_domain_active('order.example', true)"),
])
def test_follow_key_by_key_safe(
        admin_dsn, order_tables, change, back):
    """A batch applied key by key never accepts what neither the old nor the new state accepts."""
    f, reader = order_tables
    with admin(admin_dsn) as conn:
        conn.execute("SELECT add_domain('order.example')")
        conn.execute("SELECT add_mailbox('box@order.example', 'pw')")
        conn.execute("SELECT add_mailbox('off@order.example', 'pw')")
        conn.execute("SELECT set_mailbox_active('off@order.example', false)")
        conn.execute("SELECT add_alias('alias@order.example', 'box@order.example')")
        try:
            f.batch(reader)
            for statement in (change, back):
                f._look()
                before = f.seen[-1]
                f.seen.clear()
                conn.execute(statement)
                assert f.batch(reader) >= 3  # several keys, so there are moments in between
                after = f.seen[-1]
                assert before != after, statement
                for moment in f.seen:  # accepted only if the old or the new state accepts
                    for address, code in moment.items():
                        assert code != 250 or 250 in (before[address], after[address]), (
                            statement, address, moment, before, after)
        finally:
            for alias in ("alias@order.example", "@order.example"):
                try:
                    with conn.transaction():
                        conn.execute("SELECT remove_alias(%s)", (alias,))
                except psycopg.errors.DatabaseError:
                    pass
            for mailbox in ("box@order.example", "off@order.example"):
                conn.execute("SELECT remove_mailbox(%s)", (mailbox,))
            conn.execute("SELECT remove_domain('order.example')")
    f.batch(reader)


# -- random provisioning with the follower running -----------------------------------------

FOLLOW_STEP = st.one_of(
    STEP,
    st.tuples(st.just("disallow_send_as"), ADDRESS, ADDRESS),
    st.tuples(st.just("set_domain_active"), st.sampled_from(DOMAINS), st.booleans()),
)


@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(first_domains=st.lists(st.sampled_from(DOMAINS), min_size=1, max_size=3, unique=True),
       first_mailboxes=st.lists(ADDRESS, min_size=2, max_size=8),
       steps=st.lists(FOLLOW_STEP, min_size=3, max_size=25))
def test_follow_random_provisioning(
        admin_dsn, follower, sql_postfix, sql_config, dest, first_domains, first_mailboxes, steps):
    """Random provisioning with follow running ends in tables equal to a fresh compile.

    Each example starts from the previous one's end (the follower sees only changes),
    clears the test domains, provisions, and waits for the follower: then every key
    equals a fresh compile and answers as the pgsql: maps do (maps verify's comparison)."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        with conn.transaction():
            for statement in (
                    "DELETE FROM public.send_as WHERE split_part(address, '@', 2) = ANY (%(d)s)"
                    " OR split_part(login, '@', 2) = ANY (%(d)s)",
                    "DELETE FROM public.aliases WHERE domain = ANY (%(d)s)",
                    "DELETE FROM public.users WHERE domain = ANY (%(d)s)",
                    "UPDATE public.transports SET alias_of = NULL WHERE domain = ANY (%(d)s)",
                    "DELETE FROM public.transports WHERE domain = ANY (%(d)s)"):
                conn.execute(statement, {"d": DOMAINS})
        conn.execute("SET ROLE mailadmin")
        for d in first_domains:
            apply_step(conn, ("add_domain", d))
        for a in first_mailboxes:
            apply_step(conn, ("add_mailbox", a, "pw"))
        for step in steps:
            apply_step(conn, step)
    caught_up(admin_dsn, follower)
    assert_tables_are_a_fresh_compile(admin_dsn, dest, sql_config)
    extra = [f"{l}@{d}" for l in LOCALS for d in DOMAINS]
    with psycopg.connect(admin_dsn) as conn:
        db_rows, _ = compiled.snapshot(conn)
    checked, diffs = compiled.verify_keys(dest, sql_postfix.maps, sql_config, db_rows, sample=1, extra_keys=extra)
    assert not diffs, (steps, [str(d) for d in diffs])


# -- the systemd unit ----------------------------------------------------------------------

def test_the_systemd_unit_verifies_and_runs_follow_unprivileged(tmp_path):
    unit = data_dir("postfix-maps") / "mailbook-maps-follow.service"
    text = unit.read_text()
    lines = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    assert lines["User"] == "mailbook-maps" and lines["NoNewPrivileges"] == "yes"
    assert lines["ExecStart"].split()[1:4] == ["maps", "follow", "--dest"]
    assert lines["ReadWritePaths"] == lines["ExecStart"].split()[4] and lines["ProtectSystem"] == "strict"
    assert "password" not in lines["ExecStart"] and "password" not in lines["Environment"]
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # parsed above; systemd itself is not part of the test image
        return
    # verify the unit as shipped, with ExecStart pointing at this checkout's mailbook
    copy = tmp_path / unit.name
    copy.write_text(text.replace(lines["ExecStart"].split()[0], MAILBOOK))
    r = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


# -- keys, owners and modes (issue 28) -----------------------------------------------------

def assert_private_to_postfix(dest: Path) -> None:
    for m in compiled.MAPS:
        for p in (dest / f"{m.name}.lmdb", dest / m.name):
            st = p.stat()
            assert (grp.getgrgid(st.st_gid).gr_name, oct(st.st_mode & 0o777)) == ("postfix", "0o640"), p


def test_followed_tables_stay_0640_group_postfix(lmdb_postfix, admin_dsn, follower, dest):
    """The tables list addresses, maildirs and send-as grants: 0640 group postfix after the
    follower's full compile and after a change it applies in place with postmap -i (same
    file, mode kept), and Postfix still answers from them."""
    assert_private_to_postfix(dest)
    inode = (dest / "mailboxes.lmdb").stat().st_ino
    with admin(admin_dsn) as conn:
        conn.execute("SELECT add_mailbox('private@example.org', 'private secret')")
    rcpt_until(lmdb_postfix, "private@example.org", 250)
    assert (dest / "mailboxes.lmdb").stat().st_ino == inode
    assert_private_to_postfix(dest)


def test_a_hash_address_never_reaches_the_follower(admin_dsn, follower):
    """A "#" key would be a comment to postmap -i: the database refuses the address (22023)."""
    with admin(admin_dsn) as conn:
        try:
            for call in ("add_mailbox('#hash@example.org', 'hash secret')",
                         "add_alias('#off@example.com', 'foo@example.com')"):
                with pytest.raises(psycopg.errors.InvalidParameterValue, match='starts with "#"'):
                    conn.execute(f"SELECT {call}")
        finally:  # (what a release without the rule stored: gone, for the other tests)
            conn.execute("RESET ROLE")
            conn.execute("DELETE FROM public.aliases WHERE alias LIKE '#%'; DELETE FROM public.users WHERE email LIKE '#%'")


@pytest.fixture
def legacy_db(pg):
    """A second mail database on this module's server, for a row today's rules refuse."""
    cli(["init", "--dsn", pg.dsn(), "--database", "legacy"], check=True)
    cli(["migrate", "apply", "--dsn", pg.dsn("legacy")], check=True)
    with psycopg.connect(pg.dsn("legacy"), autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        conn.execute("SELECT add_domain('example.com')")
        conn.execute("SELECT add_mailbox('foo@example.com', 'foo secret')")
        conn.execute("SELECT add_alias('@example.com', 'foo@example.com')")
    yield pg.dsn("legacy")
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute("DROP DATABASE legacy WITH (FORCE)")


def test_follow_fails_loudly_on_a_key_postmap_would_drop(legacy_db, pg, root_dir, sql_config):
    """A "#hash@" mailbox stored before 0201 (CHECK dropped by the owner, put back NOT
    VALID): the follower used to say "applied N key change(s)" while postmap -i read the
    line as a comment. Now it exits 1 naming the key, and the tables are as they were."""
    d = root_dir / f"legacy-{secrets.token_hex(3)}"
    reader = f"host=127.0.0.1 port={pg.port} dbname=legacy user=mailreader"
    once = ["maps", "follow", "--once", "--dest", str(d), "--dsn", reader, "--config-dir", str(sql_config)]
    cli(once, env=READER_ENV, check=True)  # the first compile
    with psycopg.connect(legacy_db, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("ALTER TABLE public.users DROP CONSTRAINT users_email_valid")
            conn.execute("INSERT INTO public.users (email, password, maildir)"
                         " VALUES ('#hash@example.com', '{CRAM-MD5}' || repeat('0', 64), 'example.com/hash/')")
            conn.execute("ALTER TABLE public.users ADD CONSTRAINT users_email_valid"
                         " CHECK (public.address_error(email) IS NULL) NOT VALID")
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    r = cli(once, env=READER_ENV)
    assert r.exit_code == 1 and "key '#hash@example.com' starts with \"#\"" in r.stderr, r
    assert "applied" not in r.stdout and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before


def test_root_follow_refuses_another_users_dir(root_dir, reader_dsn, sql_config):
    """Root following into mailbook-maps' directory would leave root's tables there (and
    the follower crash-looping on EACCES): refused with one line naming runuser."""
    d = root_dir / f"foreign-{secrets.token_hex(3)}"
    d.mkdir()
    os.chown(d, 65534, -1)
    r = cli(["maps", "follow", "--once", "--dest", str(d), "--dsn", reader_dsn, "--config-dir", str(sql_config)],
            env=READER_ENV)
    assert r.exit_code == 1 and f"runuser -u nobody -- mailbook maps follow --dest {d}" in r.stderr, r
    assert list(d.iterdir()) == []


def test_follow_closes_old_tables_and_replaces_foreign_ones(follower, admin_dsn, dest, root_dir, reader_dsn,
                                                           sql_config):
    """Tables a release before 1.0.1 left 0644 get 0640 group postfix when the follower
    starts; one that another user left in the directory (root's compile, which made the
    follower crash-loop on EACCES) makes it compile in full, renaming its own over it."""
    caught_up(admin_dsn, follower)
    d = root_dir / f"upgraded-{secrets.token_hex(3)}"
    shutil.copytree(dest, d)
    for p in d.iterdir():
        p.chmod(0o644)
    os.chown(d / "virtual.lmdb", 65534, -1)
    once = ["maps", "follow", "--once", "--dest", str(d), "--dsn", reader_dsn, "--config-dir", str(sql_config)]
    r = cli(once, env=READER_ENV)
    assert r.exit_code == 0 and "compiled every map in full" in r.stdout, r
    assert (d / "virtual.lmdb").stat().st_uid == os.geteuid()
    assert_private_to_postfix(d)
    assert_tables_are_a_fresh_compile(admin_dsn, d, sql_config)
    for p in d.iterdir():  # and without a foreign file, the modes alone are put right, in place
        p.chmod(0o644)
    inode = (d / "virtual.lmdb").stat().st_ino
    r = cli(once, env=READER_ENV)
    assert r.exit_code == 0 and "in full" not in r.stdout, r
    assert (d / "virtual.lmdb").stat().st_ino == inode
    assert_private_to_postfix(d)
