"""mailbook on a Patroni cluster (etcd, three PostgreSQL nodes, synchronous_mode) under
mail load: two SMTP senders through a real Postfix, `doveadm auth test` in a loop through a
real Dovecot, and a provisioning loop (add_mailbox every 100 ms through libpq's multi-host
DSN with target_session_attrs=read-write, each acknowledged address recorded), while in
turn the leader is switched over (`patronictl switchover`), restarted (`patronictl
restart`), its postmaster killed (kill -9; Patroni starts it again) and crashed (kill -9
of its Patroni and its postmaster: the machine dies).

Hard assertions, for every fault: no 5xx; every accepted message delivered; every
acknowledged mailbox present on the new leader, those acknowledged around the fault
logging in through Dovecot; the old leader back as a streaming replica (pg_rewind) with
nobody doing anything. Measured and printed (pytest -s), never asserted as times: 451s,
failed logins, seconds without provisioning. MAILBOOK_PATRONI_LOG=FILE appends each
fault's figures as a JSON line, for the README's ranges.

The cluster runs patroni/patroni.yml as shipped, hardened (issue 28): the last tests prove
that its REST API, etcd and replication refuse whoever lacks the credentials or TLS, and
that `doctor --patroni` fails on a node whose REST API is open again.

One cluster for the whole module. Patroni's timings are shortened (ttl 10, loop_wait 2,
retry_timeout 3; tests/harness/patroni.py) so that the three faults fit the suite's budget.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import psycopg
import pytest

from mailbook.files import write_private
from mailbook.passwords import set_role_password
from tests.harness.dovecot import install_dovecot
from tests.harness.load import USER, USER_PW, Load, assert_all_delivered
from tests.harness.patroni import ETCD_PW, ETCD_USER, REPLICATION_PW, REST_PW, REST_USER, REWIND_PW, PatroniCluster
from tests.harness.postfix import Postfix
from tests.harness.process import cli, private_dir, remove, require_root

READER_PW, AUTH_PW = "reader-pw-patroni", "auth-pw-patroni"
ADMIN, ADMIN_PW = "helpdesk", "helpdesk-pw-patroni"
NEW_PW = "provisioned during a fault"
NODES = 3
FIGURES: list[dict] = []


@pytest.fixture(scope="module")
def stack():
    require_root("the Patroni test (Postfix)")
    root = private_dir("mailbook-patroni-")
    # the lines mailbook needs, as `mailbook hba --patroni` prints them, and the site's own
    # line for its help desk (members of mailadmin) over loopback
    fragment = cli(["hba", "--patroni"], check=True).stdout.rstrip("\n")
    fragment += "\n    - host mail +mailadmin 127.0.0.1/32 scram-sha-256"
    cluster = PatroniCluster(root / "cluster", NODES, fragment)
    (root / "cluster").mkdir()
    postfix = dovecot = None
    try:
        cluster.start()
        # init and migrate apply through a multi-host DSN: libpq finds the leader. The
        # superuser reaches each node over its socket only (no superuser over the network).
        sockets = ",".join(str(n.socket_dir) for n in cluster.nodes)
        ports = ",".join(str(n.pg_port) for n in cluster.nodes)
        admin_dsn = f"host={sockets} port={ports} user=postgres target_session_attrs=read-write"
        cli(["init", "--dsn", admin_dsn], check=True)
        cli(["migrate", "apply", "--dsn", f"{admin_dsn} dbname=mail"], check=True)
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            set_role_password(conn, "mailreader", READER_PW)
            set_role_password(conn, "mailauth", AUTH_PW)
            conn.execute(f"CREATE ROLE {ADMIN} LOGIN IN ROLE mailadmin")
            set_role_password(conn, ADMIN, ADMIN_PW)
        with psycopg.connect(cluster.multi_host_dsn("mail", ADMIN), password=ADMIN_PW, autocommit=True) as conn:
            conn.execute("SELECT add_domain('example.com')")
            conn.execute("SELECT add_mailbox(%s, %s)", (USER, USER_PW))
        reader_pw, auth_pw = root / "reader.pw", root / "auth.pw"
        write_private(reader_pw, READER_PW + "\n")
        write_private(auth_pw, AUTH_PW + "\n")
        # every node on the maps' hosts line and in Dovecot's connect line, first node first
        first, *others = cluster.hosts()
        others_args = [a for h, p in others for a in ("--standby", f"{h}:{p}")]
        cli(["maps", "install", "--dest", str(root / "maps"), "--port", str(first[1]), *others_args,
             "--password-file", str(reader_pw)], check=True)
        postfix = Postfix(root / "postfix", root / "maps")
        postfix.start()
        dovecot = install_dovecot(root, postfix.mail, "--port", str(first[1]), *others_args,
                                  "--password-file", str(auth_pw))
        dovecot.start()
        yield cluster, postfix, dovecot, admin_dsn
    finally:
        if dovecot:
            dovecot.stop()
        if postfix:
            postfix.stop()
        cluster.stop()
        print_table()
        remove(root)


@dataclass
class Provisioning:
    """add_mailbox every 100 ms through the multi-host DSN, reconnecting after an error;
    each attempt recorded as (start, end, address, acknowledged)."""
    dsn: str
    attempts: list[tuple[float, float, str, bool]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _n: int = 0

    def _run(self, tag: str) -> None:
        conn = None
        while not self._stop.is_set():
            self._n += 1
            address = f"{tag}-{self._n}@example.com"
            start = time.monotonic()
            ok = False
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.dsn, password=ADMIN_PW, autocommit=True)
                conn.execute("SELECT add_mailbox(%s, %s)", (address, NEW_PW))
                ok = True  # the commit came back: acknowledged
            except psycopg.Error:
                if conn is not None:
                    conn.close()
                conn = None
            self.attempts.append((start, time.monotonic(), address, ok))
            time.sleep(0.1)
        if conn is not None:
            conn.close()

    def start(self, tag: str) -> None:
        self._thread = threading.Thread(target=self._run, args=(tag,))
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    @property
    def acknowledged(self) -> list[str]:
        return [a for _, _, a, ok in self.attempts if ok]

    def longest_gap(self, fault: float) -> float:
        """Seconds between the last acknowledgment before the fault and the first after it
        ended, i.e. the longest stretch without provisioning around the fault."""
        ends = sorted(end for _, end, _, ok in self.attempts if ok)
        gaps = [b - a for a, b in zip(ends, ends[1:]) if b >= fault]
        return round(max(gaps), 1) if gaps else float("nan")

    def around(self, fault: float, back: float) -> list[str]:
        """The acknowledged addresses at risk: from 2 s before the fault to 3 s after the
        leader is back (a commit acknowledged just before a crash must have reached a standby)."""
        return [a for start, end, a, ok in self.attempts if ok and fault - 2 <= end <= back + 3]


def run_fault(stack, name: str, fault_action) -> dict:
    """Load and provisioning, then the fault; wait until the cluster is whole again; check
    and return the figures. fault_action() returns the moment the leader is back."""
    cluster, postfix, dovecot, admin_dsn = stack
    before = cluster.wait_healthy()
    old_leader = before["leader"]
    old_timeline = before["members"][old_leader]["timeline"]
    log_from = len(dovecot.log_text())
    prov = Provisioning(cluster.multi_host_dsn("mail", ADMIN))
    tag = name.split()[0]  # a local part and a subject
    prov.start(tag)
    with Load(postfix, dovecot, tag) as load:
        fault = time.monotonic()
        back = fault_action(cluster.node(old_leader))
        load.wait_until_back(back, 130)
        time.sleep(2)  # provisioning shows it is back, too
    prov.stop()
    after = cluster.wait_healthy(120)
    whole = time.monotonic()

    figures = {"fault": name, **load.summary(fault, back)}
    figures.update({
        "new_leader": after["leader"], "old_leader": old_leader,
        "old_leader_now": after["members"][old_leader]["role"],
        "timeline": f"{old_timeline}->{after['members'][after['leader']]['timeline']}",
        "provisioned": len(prov.acknowledged),
        "provisioning_failed": sum(not ok for *_, ok in prov.attempts),
        "seconds_without_provisioning": prov.longest_gap(fault),
        "leader_back_after_s": round(back - fault, 1),
        "cluster_whole_after_s": round(whole - fault, 1),
        "pg_rewind": "pg_rewind" in cluster.node(old_leader).log.read_text(errors="replace"),
        # doveadm auth test: 77 a refused password, 75 (EX_TEMPFAIL) Dovecot could not ask SQL
        "login_failures": sorted({o for _, _, o in load.logins if o != "ok"}),
        # ... and why, as Dovecot logged it: a failed SQL query is a temporary failure to
        # the client ([UNAVAILABLE]), not a wrong password
        "dovecot_errors": sorted({line.split(": ", 2)[-1][:160] for line in dovecot.log_text()[log_from:].splitlines()
                                  if "Error" in line}),
    })
    FIGURES.append(figures)
    print(f"\n{name}: {figures}")
    if os.environ.get("MAILBOOK_PATRONI_LOG"):
        with open(os.environ["MAILBOOK_PATRONI_LOG"], "a") as f:
            f.write(json.dumps(figures) + "\n")

    # 5xx would bounce mail; only 250 and 451 are answers a sender handles
    assert figures["smtp_5xx"] == 0, figures
    assert figures["smtp_other"] == [], figures
    assert_all_delivered(postfix, load)
    # every acknowledged mailbox is on the new leader (synchronous replication)
    acked = prov.acknowledged
    assert acked, "provisioning never succeeded"
    with psycopg.connect(admin_dsn + " dbname=mail", autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        present = {e for (e,) in conn.execute("SELECT email FROM users WHERE email = ANY(%s)", (acked,))}
    lost = sorted(set(acked) - present)
    assert not lost, f"{len(lost)} acknowledged mailboxes lost with the leader, e.g. {lost[:5]}"
    # those acknowledged around the fault log in through Dovecot, answered by the cluster now
    for address in prov.around(fault, back):
        r = dovecot.auth_test(address, NEW_PW)
        assert r.returncode == 0, f"{address}: {r.stdout}{r.stderr}{dovecot.log_text()[-1500:]}"
    # every node streams from the leader on its timeline (wait_healthy); where the leader
    # changed, the old one is among them again, nobody having helped
    if after["leader"] != old_leader:
        assert after["members"][old_leader]["role"] in ("replica", "sync_standby"), after
    return figures


def test_patroni_switchover(stack):
    """A switchover under mail load bounces nothing and loses no acknowledged mailbox."""
    cluster = stack[0]

    def switchover(leader):
        s = cluster.state()
        candidate = next(m["name"] for m in s["members"].values() if m["role"] == "sync_standby")
        r = cluster.patronictl_("switchover", "--leader", leader.name, "--candidate", candidate, "--force")
        assert r.returncode == 0, r.stdout + r.stderr
        cluster.wait_for(lambda s: s["leader"] == candidate and s["members"][candidate]["state"] == "running",
                         "the candidate to lead", 60)
        return time.monotonic()

    figures = run_fault(stack, "switchover", switchover)
    assert figures["new_leader"] != figures["old_leader"]


def test_patroni_leader_restart(stack):
    """A leader restart under mail load bounces nothing and loses no acknowledged mailbox."""
    cluster = stack[0]

    def restart(leader):
        started = leader.rest("/patroni")["postmaster_start_time"]
        r = cluster.patronictl_("restart", "mail", leader.name, "--force")
        assert r.returncode == 0, r.stdout + r.stderr
        cluster.wait_for(lambda s: s["leader"] is not None and s["members"][s["leader"]]["state"] == "running"
                         and (leader.rest("/patroni") or {}).get("postmaster_start_time") != started,
                         "the restarted leader to run", 60)
        return time.monotonic()

    run_fault(stack, "restart", restart)


def test_patroni_killed_postmaster(stack):
    """A killed leader postmaster under mail load bounces nothing and loses no acknowledged
    mailbox.

    kill -9 of the leader's postmaster alone (Patroni lives on): Patroni, still holding
    the leader key, finds PostgreSQL gone and starts it again (crash recovery); were that
    to take longer than the key's ttl, a replica would be promoted instead."""
    cluster = stack[0]

    def kill_postmaster(leader):
        started = (leader.rest("/patroni") or {}).get("postmaster_start_time")
        os.kill(leader.postmaster_pid(), signal.SIGKILL)
        cluster.wait_for(lambda s: s["leader"] is not None and s["members"][s["leader"]]["state"] == "running"
                         and (s["leader"] != leader.name
                              or (leader.rest("/patroni") or {}).get("postmaster_start_time") not in (None, started)),
                         "a running leader again", 90)
        return time.monotonic()

    run_fault(stack, "postmaster kill -9", kill_postmaster)


def test_patroni_leader_crash(stack):
    """A leader crash under mail load bounces nothing and the old leader rejoins alone."""
    cluster = stack[0]

    def crash(leader):
        leader.crash()
        cluster.wait_for(lambda s: s["leader"] not in (None, leader.name)
                             and s["members"][s["leader"]]["state"] == "running", "a new leader", 90)
        back = time.monotonic()
        leader.start()  # the machine is back: its service starts Patroni, which rewinds and follows
        return back

    figures = run_fault(stack, "crash (kill -9)", crash)
    assert figures["new_leader"] != figures["old_leader"]


def test_doctor_shows_the_cluster_and_fails_without_a_synchronous_standby(stack):
    cluster, _, _, admin_dsn = stack
    s = cluster.wait_healthy()
    urls = [a for n in cluster.nodes for a in ("--patroni", n.rest_url)]
    r = cli(["doctor", "--dsn", admin_dsn + " dbname=mail", "--json", *urls])
    checks = json.loads(r.stdout)
    assert r.exit_code == 0, r
    by_name = {c["check"]: c for c in checks if c["check"].startswith(("patroni", "synchronous"))}
    assert by_name["patroni leader"]["status"] == "pass" and s["leader"] in by_name["patroni leader"]["detail"]
    assert by_name["synchronous standby"]["status"] == "pass"
    assert all(n.name in by_name["patroni members"]["detail"] for n in cluster.nodes)
    rest_auth = [c for c in checks if c["check"] == "patroni rest auth"]
    assert len(rest_auth) == NODES and all(c["status"] == "pass" and "(401)" in c["detail"] for c in rest_auth), rest_auth

    replicas = [n for n in cluster.nodes if n.name != s["leader"]]
    for n in replicas:
        n.stop()
    try:
        cluster.wait_for(lambda s: not any(m["role"] == "sync_standby" and m["state"] == "running"
                                           for m in s["members"].values()), "no synchronous standby", 60)
        r = cli(["doctor", "--dsn", admin_dsn + " dbname=mail", "--json", *urls])
        assert r.exit_code == 1, r
        sync = next(c for c in json.loads(r.stdout) if c["check"] == "synchronous standby")
        assert sync["status"] == "fail" and "none attached" in sync["detail"]
        assert "synchronous standby" in r.stderr
    finally:
        for n in replicas:
            n.start()
    cluster.wait_healthy()


def test_rest_api_refuses_unauthenticated_writes(stack):
    """What the review did from the network, without credentials: PATCH /config with an
    on_restart callback, then POST /restart. Each node answers 401; the dynamic
    configuration has no callback and no PostgreSQL restarted. With the credentials, the
    same endpoint takes the request (doctor's harmless probe, refused for its body)."""
    cluster, _, _, _ = stack
    cluster.wait_healthy()
    marker = cluster.root / "callback-ran"
    evil = {"postgresql": {"callbacks": {"on_restart": f"/bin/sh -c 'id > {marker}'"}}, "synchronous_mode": False}
    for node in cluster.nodes:
        started = node.rest("/patroni")["postmaster_start_time"]
        status, text = node.request("PATCH", "/config", evil)
        assert status == 401, f"{node.name} PATCH /config: {status} {text}"
        status, text = node.request("POST", "/restart", {})
        assert status == 401, f"{node.name} POST /restart: {status} {text}"
        status, text = node.request("POST", "/restart", {"role": "mailbook-doctor-probe"}, auth=True)
        assert status == 400, f"{node.name} authenticated probe: {status} {text}"
        time.sleep(0.5)
        assert node.rest("/patroni")["postmaster_start_time"] == started, f"{node.name} restarted"
    config = cluster.nodes[0].rest("/config")
    assert "callbacks" not in config.get("postgresql", {}) and config["synchronous_mode"] is True, config
    assert not marker.exists()
    cluster.wait_healthy()


def test_etcd_refuses_anonymous_access(stack):
    """etcd runs with authentication: without a token the cluster's keys can be neither
    read nor written (the leader key stays put); Patroni's own user reads them and may
    write nothing outside /service/mail/."""
    cluster, _, _, _ = stack
    etcd = cluster.etcd
    status, text = etcd.range("/service/mail/")
    assert status != 200 and "user name is empty" in text, (status, text)
    status, text = etcd.put("/service/mail/leader", "intruder")
    assert status != 200 and "user name is empty" in text, (status, text)
    status, text = etcd.call("auth/authenticate", {"name": ETCD_USER, "password": "a guess"})
    assert status != 200 and "authentication failed" in text, (status, text)

    token = etcd.token(ETCD_USER, ETCD_PW)
    status, text = etcd.range("/service/mail/", token)
    assert status == 200, text
    keys = {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]).decode()
            for kv in json.loads(text).get("kvs", [])}
    assert keys.get("/service/mail/leader") == cluster.leader().name, keys
    status, text = etcd.put("/service/other/x", "1", token)
    assert status == 403 and "permission denied" in text, (status, text)


def test_replication_refuses_connections_without_tls(stack):
    """pg_hba has hostssl lines only for replicator and rewinder: the same login without
    TLS matches no line and is refused; with TLS it is taken; and the standbys Patroni
    runs do stream over TLS."""
    cluster, _, _, admin_dsn = stack
    leader = cluster.leader()
    for user, password, extra in (("replicator", REPLICATION_PW, "replication=true"),
                                  ("rewinder", REWIND_PW, "dbname=postgres")):
        dsn = f"host=127.0.0.1 port={leader.pg_port} user={user} {extra} connect_timeout=5"
        with pytest.raises(psycopg.OperationalError) as refused:
            psycopg.connect(dsn + " sslmode=disable", password=password).close()
        assert "no pg_hba.conf entry" in str(refused.value) and "no encryption" in str(refused.value), refused.value
        with psycopg.connect(dsn + " sslmode=require", password=password) as conn:
            assert conn.pgconn.ssl_in_use
    with psycopg.connect(leader.dsn(), autocommit=True) as conn:
        rows = conn.execute("SELECT r.application_name, s.ssl FROM pg_stat_replication r"
                            " JOIN pg_stat_ssl s USING (pid)").fetchall()
    assert len(rows) == NODES - 1 and all(ssl for _, ssl in rows), rows


def test_doctor_fails_on_an_open_rest_api(stack, tmp_path):
    """One node's REST API with the open configuration of 1.0 (no restapi.authentication):
    doctor --patroni fails naming it. Hardened again, doctor passes, and accepts the
    credentials from a file or $MAILBOOK_PATRONI_PASSWORD, failing on a wrong one."""
    cluster, _, _, admin_dsn = stack
    s = cluster.wait_healthy()
    urls = [a for n in cluster.nodes for a in ("--patroni", n.rest_url)]
    doctor = ["doctor", "--dsn", admin_dsn + " dbname=mail", "--json", *urls]
    open_node = next(n for n in cluster.nodes if n.name != s["leader"])

    def rest_auth(r):
        return [c for c in json.loads(r.stdout) if c["check"] == "patroni rest auth"]

    def wait_probe(node, expected):
        deadline = time.monotonic() + 30
        while node.request("POST", "/restart", {"role": "mailbook-doctor-probe"})[0] != expected:
            assert time.monotonic() < deadline, f"{node.name} did not reload: {node.log_tail()}"
            time.sleep(0.5)

    open_node.write_config(rest_authentication=False)
    open_node.reload()
    try:
        wait_probe(open_node, 400)
        r = cli(doctor)
        assert r.exit_code == 1, r
        failed = [c for c in rest_auth(r) if c["status"] == "fail"]
        assert len(failed) == 1 and open_node.rest_url in failed[0]["detail"], rest_auth(r)
        assert "restapi.authentication" in failed[0]["detail"]
        assert "patroni rest auth" in r.stderr
    finally:
        open_node.write_config()
        open_node.reload()
        wait_probe(open_node, 401)
    cluster.wait_healthy()

    pw_file = tmp_path / "patroni-rest.pw"
    write_private(pw_file, REST_PW + "\n")
    r = cli([*doctor, "--patroni-password-file", str(pw_file)])
    assert r.exit_code == 0, r
    checks = rest_auth(r)
    assert all(c["status"] == "pass" for c in checks), checks
    assert sum(f"credentials for {REST_USER!r} accepted" in c["detail"] for c in checks) == NODES, checks
    r = cli(doctor, env={"MAILBOOK_PATRONI_PASSWORD": "not the password"})
    assert r.exit_code == 1, r
    wrong = [c for c in rest_auth(r) if c["status"] == "fail"]
    assert len(wrong) == NODES and all("refused (401)" in c["detail"] for c in wrong), wrong


def print_table() -> None:
    if not FIGURES:
        return
    cols = ["fault", "smtp_attempts", "smtp_451", "smtp_5xx", "logins", "logins_failed", "provisioned",
            "provisioning_failed", "seconds_without_provisioning", "leader_back_after_s", "cluster_whole_after_s",
            "pg_rewind", "timeline"]
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for f in FIGURES:
        print("| " + " | ".join(str(f.get(c)) for c in cols) + " |")
