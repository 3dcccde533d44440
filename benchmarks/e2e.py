#!/usr/bin/env python3
"""Recipients per second through a real Postfix: mailbook's maps as shipped, PostfixAdmin's
real schema with its documented maps, and static hash: maps of the same data, side by side.

    scripts/bench.sh --e2e [--rounds 3] [--out benchmarks/results/<machine>]
    (that is: .venv/bin/python -m benchmarks.e2e ..., from the checkout)

One private PostgreSQL holds two databases filled with the same mail data: mailbook's
(built by `migrate apply`, loaded through `mailbook import`'s own path) and PostfixAdmin's
(schema created by Debian's postfixadmin 3.3 running its own upgrade.php, rows written as
PostfixAdmin writes them: a self-alias per mailbox, md5crypt hashes, maildir
domain/user/). Three private Postfix 3.7 instances (loopback only, as root, files under
/var/tmp) take mail on their own ports; each is configured by its project's documented
main.cf lines, and deliveries go to discard(8) (the `virtual` service is discard), so the
measurement is Postfix's own work plus its lookups. smtp-source sends each workload; a run
ends when the queue is empty, so the queue manager's lookups count too.

Queries per recipient come from PostgreSQL's own log (log_statement = all for the map
roles, in a separate short run), per map file.

Delivery (issue 18): the same mailbook data through three more Postfix instances that
really deliver: virtual(8) writing the maildirs, Dovecot's LMTP as `mailbook dovecot
install` sets it up (its socket in the instance's queue directory, maildirs under the
work directory, Sieve asking the database for a vacation script at every delivery), and
LMTP with the quota-status check at RCPT (main.cf.snippet's default). Messages per second
accepted (smtp-source done) and delivered (queue empty); quota-status alone is timed by
sending Postfix's policy requests straight to its socket. Results: e2e.json, e2e.md,
e2e.png in --out.

Compiled maps (issue 17): a fourth instance on the lmdb: tables `mailbook maps compile`
writes from mailbook's database, with the main.cf lines `mailbook maps postconf --compiled`
prints, next to the hash: one. `--compiled-only` runs just those two side by side on the
same data and merges their figures into the committed e2e.json (as "compiled_run": the
compiled / hash ratios come from that run's own hash: figures), then checks equivalence at
this scale (benchmarks/compiled.py: compiled.json, compiled.md).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg

from benchmarks.common import machine as machine_of
from benchmarks.common import write_report
from mailbook.demo.cluster import PrivateCluster
from mailbook.files import install as install_files
from mailbook.passwords import new_password
from mailbook.postfix import compiled
from mailbook.postfix.maps import map_files
from mailbook.postfix.postconf import snippet_services, snippet_settings
from mailbook.provisioning import bulk
from tests.harness.data import (
    ALIAS_DOMAIN,
    ALIASES,
    BIG,
    BIG_MAILBOXES,
    CATCHALL,
    CATCHALL_MAILBOXES,
    PFA_HASH,
    RELAY,
    all_mailboxes,
    hosted_domains,
    mailbook_csv,
    numbered,
)
from tests.harness.database import migrate
from tests.harness.dovecot import Dovecot, install_dovecot
from tests.harness.postfix import LOAD_TEST, VMAIL_GID, VMAIL_UID, Postfix
from tests.harness.process import ROOT, private_dir, remove

# (name, smtp-source recipient base, recipients per message, rejected?): smtp-source -N
# adds a running number to the local part, so "m@big" sends 0m@big, 1m@big, ... (Postfix
# 3.7) or m0@big, m1@big, ... (3.9 and later): the mailboxes are named that way (numbered)
WORKLOADS = [
    ("mailbox", f"m@{BIG}", 1, False),
    ("mailbox, 20 per message", f"m@{BIG}", 20, False),
    ("alias", f"a@{BIG}", 1, False),
    ("mailbox via alias domain", f"m@{ALIAS_DOMAIN}", 1, False),
    ("unknown user (550)", f"nobody@{BIG}", 1, True),
    ("unknown user, catch-all", f"nobody@{CATCHALL}", 1, False),
]
# Not here: sender logins on submission. reject_sender_login_mismatch needs a SASL login
# (Postfix ignores it otherwise, and logs so), smtp-source cannot log in, and a login
# costs Dovecot a password hash that would dwarf the lookup. sender-login.cf is measured
# where it is alone: server CPU per lookup, below, and benchmarks/run.py.


# -- mailbook -------------------------------------------------------------------------------

SERVICE_PASSWORDS: dict[str, str] = {}

def build_mailbook(cluster: PrivateCluster, db: str) -> str:
    """Migrated and loaded; returns mailreader's password (mailauth's and mailquota's
    are in SERVICE_PASSWORDS, for Dovecot)."""
    password = new_password()
    SERVICE_PASSWORDS.update(mailauth=new_password(), mailquota=new_password())
    migrate(cluster, db, mailreader=password, **SERVICE_PASSWORDS)
    with psycopg.connect(cluster.dsn(db), autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        mailboxes, aliases = mailbook_csv()
        for text in (mailboxes, aliases):
            _, problems = bulk.import_csv(conn, io.StringIO(text), dry_run=False)
            assert not problems, problems[:3]
        conn.execute("RESET ROLE")
        conn.execute("SELECT add_domain(%s, 'smtp:[192.0.2.25]')", (RELAY,))
        conn.execute("VACUUM ANALYZE")
    return password


def mailbook_postfix(maps: Path, port: int, db: str, password: str, delivery: str = "virtual",
                     mail: Path | None = None, quota_status: bool = True) -> dict[str, str]:
    """main.cf as the snippet has it. delivery virtual without mail: discarded (the maps
    table); with mail: virtual(8) writes there. lmtp: Dovecot's LMTP, with or without
    the quota-status check at RCPT."""
    values = {"hosts": f"127.0.0.1:{port}", "user": "mailreader", "password": password, "dbname": db}
    if not maps.exists():
        install_files({maps / m.name: m.with_connection(values) for m in map_files()}, group="postfix")
    settings = dict(snippet_settings(maps, delivery))
    if mail is not None:
        mail.mkdir(parents=True, exist_ok=True)
        shutil.chown(mail, VMAIL_UID, VMAIL_GID)
        settings.update({"virtual_mailbox_base": str(mail), "virtual_uid_maps": f"static:{VMAIL_UID}",
                         "virtual_gid_maps": f"static:{VMAIL_GID}", "virtual_minimum_uid": "1"})
    if not quota_status:
        settings["smtpd_recipient_restrictions"] = "reject_unlisted_recipient"
    return settings


# -- Dovecot's LMTP, as `mailbook dovecot install` sets it up ---------------------------------

def lmtp_dovecot(work: Path, postfix: Postfix, mail: Path, cluster: PrivateCluster, db: str,
                 auth_pw: str, quota_pw: str) -> Dovecot:
    """The tests' Dovecot (LMTP and quota-status on sockets in postfix's queue directory),
    with no IMAP and the shipped auth cache; replies of Sieve go nowhere."""
    mail.mkdir(parents=True, exist_ok=True)
    shutil.chown(mail, VMAIL_UID, VMAIL_GID)
    for name, pw in (("auth.pw", auth_pw), ("quota.pw", quota_pw)):
        (work / name).write_text(pw + "\n")
        (work / name).chmod(0o600)
    dovecot = install_dovecot(work, mail, "--port", str(cluster.port), "--dbname", db,
                              "--password-file", str(work / "auth.pw"), "--quota-password-file", str(work / "quota.pw"),
                              postfix=postfix, shipped_cache=True)
    dovecot.protocols = ""
    dovecot.submission_host = "127.0.0.1:9"
    return dovecot


def quota_status_cost(socket_path: Path, requests: int = 5000) -> dict:
    """Dovecot's quota-status by itself: Postfix's policy request for a mailbox at RCPT
    (with a SIZE), sent on one connection as one smtpd process would, answered DUNNO
    (no quota set) after Dovecot's userdb lookup in PostgreSQL."""
    import socket
    out = {}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(socket_path))
        f = s.makefile("rwb")

        def ask(i: int) -> bytes:
            f.write(f"request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient={numbered(i % BIG_MAILBOXES, 'm')}@{BIG}\n"
                    f"sender=sender@elsewhere.example\nsize=512\n\n".encode())
            f.flush()
            answer = b""
            while not answer.endswith(b"\n\n"):
                line = f.readline()
                if not line:
                    raise SystemExit("quota-status closed the connection")
                answer += line
            return answer

        first = ask(0)
        if b"action=DUNNO" not in first:
            raise SystemExit(f"quota-status answered {first!r}")
        for i in range(300):  # warm
            ask(i)
        t0 = time.perf_counter()
        for i in range(requests):
            ask(i + 1000)
        seconds = time.perf_counter() - t0
    out["requests"] = requests
    out["us_per_check"] = round(seconds / requests * 1e6, 1)
    out["checks_per_s"] = round(requests / seconds)
    return out


# -- PostfixAdmin ---------------------------------------------------------------------------

PFA_TREE = Path("/usr/share/postfixadmin")

# Its documented map files (DOCUMENTS/POSTFIX_CONF.txt, "with transport map support"), in
# PostgreSQL's syntax as that file says to write them (active = 't', || for CONCAT).
PFA_MAPS = {
    "virtual_domains_maps.cf": "SELECT domain FROM domain WHERE domain='%s' AND active = 't'"
                               " AND NOT (transport LIKE 'smtp%%' OR transport LIKE 'relay%%')",
    "virtual_alias_maps.cf": "SELECT goto FROM alias WHERE address='%s' AND active = 't'",
    "virtual_alias_domain_maps.cf": "SELECT goto FROM alias,alias_domain WHERE alias_domain.alias_domain = '%d'"
                                    " and alias.address = '%u' || '@' || alias_domain.target_domain"
                                    " AND alias.active='t' AND alias_domain.active='t'",
    "virtual_alias_domain_catchall_maps.cf": "SELECT goto FROM alias,alias_domain"
                                             " WHERE alias_domain.alias_domain = '%d'"
                                             " and alias.address = '@' || alias_domain.target_domain"
                                             " AND alias.active='t' AND alias_domain.active='t'",
    "virtual_mailbox_maps.cf": "SELECT maildir FROM mailbox WHERE username='%s' AND active = 't'",
    "virtual_alias_domain_mailbox_maps.cf": "SELECT maildir FROM mailbox,alias_domain"
                                            " WHERE alias_domain.alias_domain = '%d'"
                                            " and mailbox.username = '%u' || '@' || alias_domain.target_domain"
                                            " AND mailbox.active='t' AND alias_domain.active='t'",
    "relay_domains.cf": "SELECT domain FROM domain WHERE domain='%s' AND active = 't'"
                        " AND (transport LIKE 'smtp%%' OR transport LIKE 'relay%%')",
    "transport_maps.cf": "SELECT transport FROM domain WHERE domain='%s' AND active = 't'",
    # PostfixAdmin documents no sender-login map; the query its users write (a mailbox
    # owns itself, an alias is owned by its destinations) is the comparable one
    "sender_login_maps.cf": "SELECT goto FROM alias WHERE address='%s' AND active = 't'",
}


def build_postfixadmin(cluster: PrivateCluster, db: str, work: Path) -> str:
    """PostfixAdmin's own schema (its upgrade.php, run by php-cli from a private copy of
    Debian's tree so its config points here), filled like PostfixAdmin fills it; returns
    the password of its read-only Postfix role."""
    tree = work / "postfixadmin"
    # config.local.php is a dangling link there (Debian's is not created): cp says so, harmless
    subprocess.run(["cp", "-rL", str(PFA_TREE), str(tree)], check=False, stderr=subprocess.DEVNULL)
    (tree / "templates_c").mkdir(exist_ok=True)
    shutil.copy("/etc/postfixadmin/dbconfig.inc.php", tree / "dbconfig.inc.php")
    owner_pw, reader_pw = new_password(), new_password()
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE pfa_owner LOGIN PASSWORD '{owner_pw}'")
        conn.execute(f"CREATE ROLE pfa_postfix LOGIN PASSWORD '{reader_pw}'")
        conn.execute(f'CREATE DATABASE "{db}" OWNER pfa_owner')
    (tree / "config.local.php").write_text(
        "<?php\n$CONF['configured'] = true;\n$CONF['database_type'] = 'pgsql';\n"
        f"$CONF['database_host'] = '127.0.0.1';\n$CONF['database_port'] = '{cluster.port}';\n"
        f"$CONF['database_user'] = 'pfa_owner';\n$CONF['database_password'] = '{owner_pw}';\n"
        f"$CONF['database_name'] = '{db}';\n")
    out = subprocess.run(["php", "upgrade.php"], cwd=tree / "public", capture_output=True, text=True)
    # (it prints an exception when plpgsql already exists, and goes on: not a failure)
    if out.returncode != 0 or "updating to version" not in out.stdout:
        raise SystemExit(f"PostfixAdmin's upgrade.php failed: {out.stdout[-500:]} {out.stderr[-500:]}")
    shutil.rmtree(tree)  # it held the owner's password
    with psycopg.connect(cluster.dsn(db), autocommit=True) as conn:
        version = conn.execute("SELECT value FROM config WHERE name = 'version'").fetchone()[0]
        with conn.cursor().copy("COPY domain (domain, description, aliases, mailboxes, maxquota, quota,"
                                " transport, backupmx, active) FROM STDIN") as copy:
            for d in hosted_domains() + [ALIAS_DOMAIN]:
                copy.write_row((d, "", 0, 0, 0, 0, "virtual", False, True))
            copy.write_row((RELAY, "", 0, 0, 0, 0, "smtp:[192.0.2.25]", True, True))
        with conn.cursor().copy("COPY mailbox (username, password, name, maildir, quota, local_part,"
                                " domain, active) FROM STDIN") as copy:
            for local, domain, _ in all_mailboxes():
                # PostfixAdmin's maildir with domain_path=YES, domain_in_mailbox=NO
                copy.write_row((f"{local}@{domain}", PFA_HASH, "", f"{domain}/{local}/", 0, local, domain, True))
        with conn.cursor().copy("COPY alias (address, goto, domain, active) FROM STDIN") as copy:
            for local, domain, _ in all_mailboxes():  # the self-row PostfixAdmin adds per mailbox
                copy.write_row((f"{local}@{domain}", f"{local}@{domain}", domain, True))
            for i in range(ALIASES):
                copy.write_row((f"{numbered(i, 'a')}@{BIG}", f"{numbered(i, 'm')}@{BIG}", BIG, True))
            copy.write_row((f"@{CATCHALL}", f"{numbered(0, 'm')}@{BIG}", CATCHALL, True))
        conn.execute("INSERT INTO alias_domain (alias_domain, target_domain, active) VALUES (%s, %s, true)",
                     (ALIAS_DOMAIN, BIG))
        conn.execute("GRANT SELECT ON domain, mailbox, alias, alias_domain TO pfa_postfix")
        conn.execute(f"GRANT CONNECT ON DATABASE \"{db}\" TO pfa_postfix")
        conn.execute("VACUUM ANALYZE")
        print(f"PostfixAdmin schema version {version}", flush=True)
    return reader_pw


def postfixadmin_postfix(maps: Path, port: int, db: str, password: str) -> dict[str, str]:
    files = {}
    for name, query in PFA_MAPS.items():
        files[maps / name] = (f"user = pfa_postfix\npassword = {password}\nhosts = 127.0.0.1:{port}\n"
                              f"dbname = {db}\nquery = {query}\n")
    install_files(files, group="postfix")
    p = f"proxy:pgsql:{maps}/"
    return {
        "virtual_mailbox_domains": p + "virtual_domains_maps.cf",
        "virtual_alias_maps": ", ".join(p + n for n in ("virtual_alias_maps.cf", "virtual_alias_domain_maps.cf",
                                                        "virtual_alias_domain_catchall_maps.cf")),
        "virtual_mailbox_maps": p + "virtual_mailbox_maps.cf, " + p + "virtual_alias_domain_mailbox_maps.cf",
        "relay_domains": p + "relay_domains.cf",
        "transport_maps": p + "transport_maps.cf",
        "smtpd_sender_login_maps": p + "sender_login_maps.cf",
        "virtual_mailbox_base": "/nonexistent",
        "virtual_uid_maps": "static:65534",
        "virtual_gid_maps": "static:65534",
    }


# -- static hash: maps ----------------------------------------------------------------------

def hash_postfix(maps: Path) -> dict[str, str]:
    """The same answers as mailbook's maps, as hash: files (what a site that rebuilds its
    tables from a script would run)."""
    maps.mkdir(parents=True, exist_ok=True)
    mailboxes = all_mailboxes()
    tables = {
        "domains": [f"{d} {d}" for d in [*hosted_domains(), ALIAS_DOMAIN]],
        "mailboxes": [f"{local}@{domain} {maildir}" for local, domain, maildir in mailboxes],
        # aliases; the alias domain as one entry per address its target accepts; the
        # catch-all after self-entries for the catch-all domain's mailboxes
        "virtual": ([f"{numbered(i, 'a')}@{BIG} {numbered(i, 'm')}@{BIG}" for i in range(ALIASES)]
                    + [f"{numbered(i, 'm')}@{ALIAS_DOMAIN} {numbered(i, 'm')}@{BIG}" for i in range(BIG_MAILBOXES)]
                    + [f"{numbered(i, 'a')}@{ALIAS_DOMAIN} {numbered(i, 'a')}@{BIG}" for i in range(ALIASES)]
                    + [f"{numbered(i, 'm')}@{CATCHALL} {numbered(i, 'm')}@{CATCHALL}" for i in range(CATCHALL_MAILBOXES)]
                    + [f"@{CATCHALL} {numbered(0, 'm')}@{BIG}"]),
        "transport": [f"{RELAY} smtp:[192.0.2.25]"],
        "relay_domains": [f"{RELAY} {RELAY}"],
        "sender_logins": ([f"{local}@{domain} {local}@{domain}" for local, domain, _ in mailboxes]
                          + [f"{numbered(i, 'a')}@{BIG} {numbered(i, 'm')}@{BIG}" for i in range(ALIASES)]),
    }
    (maps / "main.cf").write_text("compatibility_level = 3.6\n")  # postmap's own, not /etc/postfix's
    for name, lines in tables.items():
        (maps / name).write_text("\n".join(lines) + "\n")
        subprocess.run(["postmap", "-c", str(maps), f"hash:{maps / name}"], check=True)
    h = f"hash:{maps}/"
    return {
        "virtual_mailbox_domains": h + "domains", "virtual_mailbox_maps": h + "mailboxes",
        "virtual_alias_maps": h + "virtual", "transport_maps": h + "transport",
        "relay_domains": h + "relay_domains", "smtpd_sender_login_maps": h + "sender_logins",
        "virtual_mailbox_base": "/nonexistent", "virtual_uid_maps": "static:65534",
        "virtual_gid_maps": "static:65534",
    }


# -- compiled maps: lmdb: tables from mailbook's database ------------------------------------

def mailbook_cli(args: list[str], password: str) -> tuple[float, str]:
    """Seconds and stdout of one `mailbook` command (runner.py), mailreader's password in
    the environment as `maps compile` takes it in production."""
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, str(ROOT / "runner.py"), *args], capture_output=True, text=True,
                       env={**os.environ, "PGPASSWORD": password})
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"mailbook {' '.join(args[:2])} failed: {r.stdout[-1500:]} {r.stderr[-500:]}")
    return seconds, r.stdout


def postmap_config(work: Path) -> Path:
    """A config directory for postmap alone (not /etc/postfix's)."""
    conf = work / "postmap-conf"
    conf.mkdir(exist_ok=True)
    (conf / "main.cf").write_text("compatibility_level = 3.6\n")
    return conf


def compile_maps(work: Path, port: int, db: str, password: str) -> tuple[Path, float]:
    """`mailbook maps compile` as mailreader into work/compiled-maps; (dest, seconds)."""
    dest = work / "compiled-maps"
    seconds, _ = mailbook_cli(["maps", "compile", "--dest", str(dest), "--dsn",
                               f"host=127.0.0.1 port={port} dbname={db} user=mailreader",
                               "--config-dir", str(postmap_config(work))], password)
    return dest, seconds


def compiled_postfix(dest: Path) -> dict[str, str]:
    """main.cf as `mailbook maps postconf --compiled --delivery virtual` prints it."""
    return dict(compiled.postconf_settings(dest, "virtual"))


def compiled_run(throughput_: dict, rounds: int, compile_s: float) -> dict:
    """The compiled instance's figures and the hash: ones of the same rounds, taken out of
    the main table (which compares the three SQL-or-static setups of the first issue)."""
    return {"rounds": rounds, "compile_s": round(compile_s, 1),
            "throughput": {w: {k: t.pop(k) if k == "compiled" else list(t[k]) for k in ("hash", "compiled")}
                           for w, t in throughput_.items()}}


def compiled_markdown(r: dict) -> list[str]:
    """The compiled-maps table: lmdb: tables next to hash: files, both from one run."""
    c = r["compiled_run"]
    lines = ["", "## Compiled maps (lmdb:) next to static hash: maps", "",
             f"The same data; `mailbook maps compile` wrote the lmdb: tables in {c['compile_s']} s, "
             "Postfix reads them with the main.cf lines of `mailbook maps postconf --compiled` (one more "
             "lookup per recipient than the hash: instance: the refused-recipients check). "
             f"{c['rounds']} rounds, the two taking turns; ratios are the median of per-round ratios.", "",
             "| workload | hash: rcpt/s | compiled rcpt/s | compiled / hash |", "|---|---|---|---|"]
    for w, t in c["throughput"].items():
        ratio = statistics.median(x / y for x, y in zip(t["compiled"], t["hash"]))
        lines.append(f"| {w} | {min(t['hash']):,.0f}–{max(t['hash']):,.0f} | "
                     f"{min(t['compiled']):,.0f}–{max(t['compiled']):,.0f} | {ratio:.2f}x |")
    return lines


# -- a private Postfix: the tests' own (tests/harness/postfix.py) -----------------------------

# every delivery is discarded: what is measured is Postfix's work and its lookups
DISCARD = ("virtual", "smtp", "relay", "lmtp", "local")
# the delivery instances: virtual(8) and lmtp(8) for real
DELIVERING = ("smtp", "relay", "local")


class Instance(Postfix):
    """The tests' Postfix with the given main.cf lines for the maps, a load test's limits,
    and discard(8) in place of delivery (unless deliver)."""

    def __init__(self, name: str, root: Path, settings: dict[str, str],
                 services: list[tuple[str, str, str]] | None = None, deliver: bool = False):
        super().__init__(root, settings=settings, services=services, domain="bench.test",
                         discard=DELIVERING if deliver else DISCARD,
                         delivery="lmtp" if settings.get("virtual_transport", "").startswith("lmtp") else "virtual")
        self.name = name
        self.overrides = dict(LOAD_TEST)
        self.configure()
        self.accepted_seconds = 0.0  # of the last send: until smtp-source had handed everything over

    def start(self) -> None:
        super().start()
        self.wait_empty()

    def queued(self) -> int:
        return sum(len(files) for sub in ("incoming", "active", "deferred", "maildrop")
                   for _, _, files in os.walk(self.queue / sub))

    def wait_empty(self, timeout: float = 300) -> None:
        deadline = time.time() + timeout
        while self.queued():
            if time.time() > deadline:
                log = self.root / "maillog"
                text = log.read_text(errors="replace") if log.exists() else ""
                stuck = [line for line in text.splitlines() if "status=deferred" in line or "warning:" in line]
                raise SystemExit(f"{self.name}: queue not empty after {timeout} s; last log lines:\n"
                                 + "\n".join(stuck[-8:]))
            time.sleep(0.02)

    def send(self, base: str, per_message: int, messages: int, rejected: bool, submission: bool) -> float:
        """Seconds from the first connection until the queue is empty again."""
        port = self.submission_port if submission else self.port
        sender = f"{numbered(1, 'm')}@{BIG}" if submission else "sender@elsewhere.example"
        cmd = ["smtp-source", "-d", "-s", "8", "-l", "512", "-m", str(messages), "-f", sender,
               "-t", base, "-N", *(["-r", str(per_message)] if per_message > 1 else []),
               *(["-A"] if rejected else []), f"127.0.0.1:{port}"]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{self.name}: smtp-source failed: {r.stderr[-500:]}")
        self.accepted_seconds = time.perf_counter() - t0
        self.wait_empty()
        return time.perf_counter() - t0

    def log_errors(self) -> list[str]:
        log = self.root / "maillog"
        text = log.read_text(errors="replace") if log.exists() else ""
        return [line for line in text.splitlines() if "warning:" in line or "fatal:" in line][-5:]

    def deferred(self) -> int:
        """Deliveries that failed in the last runs (status=deferred or bounced in the log)."""
        log = self.root / "maillog"
        text = log.read_text(errors="replace") if log.exists() else ""
        return len(re.findall(r"status=(?:deferred|bounced)", text))


# -- one run --------------------------------------------------------------------------------

def messages_for(per_message: int, scale: float) -> int:
    # every recipient a different address: BIG's 60,000 mailboxes bound a run
    return max(100, int((2000 if per_message == 1 else 1000) * scale))


def throughput(instances: list[Instance], rounds: int, scale: float) -> dict:
    """recipients/s per workload per instance, per round; the instances take turns."""
    out: dict = {w[0]: {i.name: [] for i in instances} for w in WORKLOADS}
    for r in range(rounds):
        for name, base, per_message, rejected in WORKLOADS:
            submission = False
            messages = messages_for(per_message, scale)
            for inst in (instances if r % 2 == 0 else reversed(instances)):
                seconds = inst.send(base, per_message, messages, rejected, submission)
                out[name][inst.name].append(round(messages * per_message / seconds, 1))
            print(f"round {r + 1} {name}: " + ", ".join(f"{i.name} {out[name][i.name][-1]}/s" for i in instances),
                  flush=True)
    return out


# (name, recipient base, recipients per message, messages at scale 1)
DELIVERY_WORKLOADS = [("mailbox", f"m@{BIG}", 1, 500), ("mailbox, 20 per message", f"m@{BIG}", 20, 50)]
DELIVERY_CONFIGS = ["mailbook, discard", "virtual(8)", "LMTP", "LMTP + quota-status"]


def delivery(instances: dict[str, Instance], rounds: int, scale: float) -> dict:
    """Messages per second accepted and delivered, per workload, configuration and round."""
    out: dict = {w[0]: {c: {"accepted": [], "delivered": []} for c in instances} for w in DELIVERY_WORKLOADS}
    for r in range(rounds):
        for name, base, per_message, messages in DELIVERY_WORKLOADS:
            n = max(20, int(messages * scale))
            order = list(instances.items())
            for config, inst in (order if r % 2 == 0 else reversed(order)):
                seconds = inst.send(base, per_message, n, False, False)
                out[name][config]["accepted"].append(round(n / inst.accepted_seconds, 1))
                out[name][config]["delivered"].append(round(n / seconds, 1))
            print(f"round {r + 1} delivery {name}: " + ", ".join(
                f"{c} {out[name][c]['accepted'][-1]}/{out[name][c]['delivered'][-1]} msg/s" for c in instances),
                flush=True)
    return out


def query_counts(cluster: PrivateCluster, instances: list[Instance], roles: dict[str, str]) -> dict:
    """Statements per recipient by map, read from PostgreSQL's log: every statement of
    the map roles is logged during one short run per workload."""
    out: dict = {}
    log = cluster.log
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        for role in roles.values():
            conn.execute(f"ALTER ROLE {role} SET log_statement = 'all'")
    try:
        # the map roles' connections are pooled by proxymap: restart so they pick it up
        for inst in instances:
            if inst.name in roles:
                inst.stop()
                inst.start()
        for name, base, per_message, rejected in WORKLOADS:
            submission = False
            messages = 50
            for inst in instances:
                if inst.name not in roles:
                    continue
                start = log.stat().st_size
                inst.send(base, per_message, messages, rejected, submission)
                time.sleep(0.3)
                with open(log, errors="replace") as f:
                    f.seek(start)
                    text = f.read()
                statements = [m.group(1) for m in re.finditer(r"LOG:  statement: (.*)", text)]
                by_query = Counter(_which_map(s) for s in statements)
                recipients = messages * per_message
                out.setdefault(name, {})[inst.name] = {
                    "per_recipient": round(len(statements) / recipients, 2),
                    "by_map": {k: round(v / recipients, 2) for k, v in sorted(by_query.items())}}
    finally:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            for role in roles.values():
                conn.execute(f"ALTER ROLE {role} RESET log_statement")
        for inst in instances:
            if inst.name in roles:
                inst.stop()
                inst.start()
    return out


def server_cpu(cluster: PrivateCluster, db: str, user: str, password: str, queries: dict[str, list[str]],
               rounds: int = 3) -> dict:
    """PostgreSQL's own CPU time per lookup, in µs, for each map's query sent as Postfix
    sends it (plain text, one simple-protocol query per key, on one connection), next to
    a trivial query of the same shape (SELECT 'key') on the same connection; read from
    the backend's /proc/<pid>/schedstat (nanoseconds). The two take turns in batches of
    1,000 so that whatever else the machine does weighs on both; the lowest batch of each
    is reported, and the ratio is the median of the batch pairs' ratios."""
    out = {}
    with psycopg.connect(host="127.0.0.1", port=cluster.port, dbname=db, user=user, password=password,
                         autocommit=True) as conn:
        pid = conn.info.backend_pid

        def cpu_ns() -> int:
            return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])

        def batch(statements: list[bytes]) -> float:
            c0 = cpu_ns()
            for s in statements:
                r = conn.pgconn.exec_(s)
                assert r.status in (1, 2), (s, r.error_message)  # COMMAND_OK, TUPLES_OK
            return (cpu_ns() - c0) / len(statements) / 1000

        for name, statements in queries.items():
            keys = [s.encode() for s in statements]
            trivial = [f"SELECT '{k}'".encode() for k in _keys_of(statements)]
            batch(keys[:300]), batch(trivial[:300])  # warm: plans cached, pages in memory
            a, b = [], []
            for _ in range(rounds):
                for i in range(0, len(keys), 1000):
                    a.append(batch(keys[i:i + 1000]))
                    b.append(batch(trivial[i:i + 1000]))
            out[name] = {"us": round(min(a), 1), "trivial_us": round(min(b), 1),
                         "ratio": round(statistics.median(x / y for x, y in zip(a, b)), 2)}
    return out


def _keys_of(statements: list[str]) -> list[str]:
    return [re.findall(r"'([^']*)'", s)[0] for s in statements]


KEY_KINDS = {  # the key each map is asked for in the workloads
    "domains.cf": "domain", "mailboxes.cf": "mailbox", "relay-domains.cf": "other domain",
    "sender-login.cf": "mailbox", "transport.cf": "mailbox", "virtual.cf": "alias",
    "virtual_domains_maps.cf": "domain", "virtual_alias_maps.cf": "alias",
    "virtual_alias_domain_maps.cf": "via alias domain", "virtual_alias_domain_catchall_maps.cf": "via alias domain",
    "virtual_mailbox_maps.cf": "mailbox", "virtual_alias_domain_mailbox_maps.cf": "via alias domain",
    "relay_domains.cf": "other domain", "transport_maps.cf": "domain",
}


def lookup_keys(scale: float) -> int:
    """Keys per map for server_cpu(): 4,000 at scale 1, never fewer than one batch."""
    return max(1000, int(4000 * scale))


def policy_requests(scale: float) -> int:
    """Policy requests for quota_status_cost(): 5,000 at scale 1."""
    return max(500, int(5000 * scale))


def lookup_statements(templates: dict[str, str], count: int = 4000) -> dict[str, list[str]]:
    """Each map's statement, as Postfix expands it, for `count` keys of its kind."""
    from mailbook.postfix.maps import expand
    kinds = {"domain": lambda i: BIG, "mailbox": lambda i: f"{numbered(i, 'm')}@{BIG}", "alias": lambda i: f"{numbered(i, 'a')}@{BIG}",
             "via alias domain": lambda i: f"{numbered(i, 'm')}@{ALIAS_DOMAIN}",
             "other domain": lambda i: f"host{i}.elsewhere.example"}
    return {name: [expand(query, kinds[KEY_KINDS[name]](i)) for i in range(count)]
            for name, query in templates.items()}


def _which_map(statement: str) -> str:
    """The map file a logged statement came from."""
    for m in map_files():
        head = re.split(r"'%[sud]'", m.query)[0].strip()
        if statement.startswith(head):
            return m.name
    for name, query in PFA_MAPS.items():
        head = re.split(r"'%[sud]'", query)[0].strip()
        if statement.startswith(head):
            return "pfa:" + name
    return statement[:40]


def machine() -> dict:
    postfix = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True, text=True).stdout.strip()
    return {**machine_of(), "postfix": postfix}


def run(out_dir: Path, rounds: int, scale: float) -> dict:
    if os.geteuid() != 0:
        raise SystemExit("the end-to-end benchmark runs Postfix, which needs root")
    for program in ("postfix", "smtp-source", "postmap", "php"):
        if not shutil.which(program):
            raise SystemExit(f"{program} not found: run scripts/bench.sh, which installs it")
    work = private_dir("mailbook-e2e-")
    cluster = PrivateCluster(work / "pg", settings=["shared_buffers = 512MB", "max_wal_size = 4GB"])
    instances: list[Instance] = []
    delivering: dict[str, Instance] = {}
    dovecot: Dovecot | None = None
    try:
        cluster.start()
        t0 = time.perf_counter()
        reader_pw = build_mailbook(cluster, "mail")
        pfa_pw = build_postfixadmin(cluster, "postfixadmin", work)
        print(f"data loaded in {time.perf_counter() - t0:.0f} s", flush=True)
        dest, compile_s = compile_maps(work, cluster.port, "mail", reader_pw)
        print(f"maps compiled in {compile_s:.1f} s", flush=True)
        instances = [
            Instance("hash", work / "hash", hash_postfix(work / "hash-maps")),
            Instance("compiled", work / "compiled", compiled_postfix(dest), snippet_services(dest)),
            Instance("mailbook", work / "mailbook", mailbook_postfix(work / "mb-maps", cluster.port, "mail", reader_pw),
                     snippet_services(work / "mb-maps")),
            Instance("postfixadmin", work / "pfa", postfixadmin_postfix(work / "pfa-maps", cluster.port,
                                                                        "postfixadmin", pfa_pw)),
        ]
        for inst in instances:
            inst.start()
            inst.send(f"m@{BIG}", 1, 300, False, False)  # warm: processes forked, caches filled
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        result = {"machine": {**machine(), "postgresql": version}, "rounds": rounds,
                  "data": {"mailboxes": len(all_mailboxes()), "aliases": ALIASES,
                           "domains": len(hosted_domains()) + 2},
                  "messages": {w[0]: messages_for(w[2], scale) for w in WORKLOADS}}
        mb_templates = {m.name: m.query for m in map_files()}
        pfa_templates = {k: v for k, v in PFA_MAPS.items() if k != "sender_login_maps.cf"}
        result["server_cpu"] = {
            "mailbook": server_cpu(cluster, "mail", "mailreader", reader_pw,
                                   lookup_statements(mb_templates, lookup_keys(scale)), min(3, rounds)),
            "postfixadmin": server_cpu(cluster, "postfixadmin", "pfa_postfix", pfa_pw,
                                       lookup_statements(pfa_templates, lookup_keys(scale)), min(3, rounds)),
        }
        print(json.dumps(result["server_cpu"]), flush=True)
        result["queries"] = query_counts(cluster, instances, {"mailbook": "mailreader", "postfixadmin": "pfa_postfix"})
        result["throughput"] = throughput(instances, rounds, scale)
        result["compiled_run"] = compiled_run(result["throughput"], rounds, compile_s)
        result["warnings"] = {i.name: i.log_errors() for i in instances}
        for inst in instances:  # hash:, compiled and PostfixAdmin are done; mailbook's discard stays
            if inst.name != "mailbook":
                inst.stop()

        # delivery: the same mailbook data and maps, three instances that really deliver
        mb_maps = work / "mb-maps"
        virt = Instance("virtual(8)", work / "mb-virtual",
                        mailbook_postfix(mb_maps, cluster.port, "mail", reader_pw, "virtual", work / "virtual-mail"),
                        snippet_services(mb_maps), deliver=True)
        lmtp_plain = Instance("LMTP", work / "mb-lmtp",
                              mailbook_postfix(mb_maps, cluster.port, "mail", reader_pw, "lmtp", quota_status=False),
                              snippet_services(mb_maps), deliver=True)
        lmtp_qs = Instance("LMTP + quota-status", work / "mb-lmtp-qs",
                           mailbook_postfix(mb_maps, cluster.port, "mail", reader_pw, "lmtp"),
                           snippet_services(mb_maps), deliver=True)
        # one Dovecot; its sockets in the quota-status instance's queue, linked into the other's
        dovecot = lmtp_dovecot(work, lmtp_qs, work / "lmtp-mail", cluster, "mail",
                               SERVICE_PASSWORDS["mailauth"], SERVICE_PASSWORDS["mailquota"])
        for inst in (virt, lmtp_plain, lmtp_qs):
            inst.start()
        dovecot.start()
        (lmtp_plain.queue / "private" / "dovecot-lmtp").symlink_to(lmtp_qs.queue / "private" / "dovecot-lmtp")
        delivering = {"mailbook, discard": next(i for i in instances if i.name == "mailbook"), "virtual(8)": virt, "LMTP": lmtp_plain,
                      "LMTP + quota-status": lmtp_qs}
        for inst in delivering.values():
            inst.send(f"m@{BIG}", 1, 100, False, False)  # warm: processes, Dovecot's auth cache
        result["delivery"] = delivery(delivering, rounds, scale)
        result["quota_status"] = quota_status_cost(lmtp_qs.queue / "private" / "quota-status", policy_requests(scale))
        print(json.dumps(result["quota_status"]), flush=True)
        result["delivery_problems"] = {c: i.deferred() for c, i in delivering.items()}
        result["warnings"].update({c: i.log_errors() for c, i in delivering.items() if c != "mailbook, discard"})
        result["warnings"]["dovecot"] = dovecot.log_errors()
    finally:
        if dovecot:
            dovecot.stop()
        for inst in [*instances, *delivering.values()]:
            inst.stop()
        cluster.destroy()
        remove(work)
    write_report(out_dir, "e2e", result, markdown(result))
    plot(result, out_dir / "e2e.png")
    return result


# -- reports --------------------------------------------------------------------------------

def ratios(result: dict, a: str, b: str, workload: str) -> list[float]:
    """a/b per round: each ratio from one round, where both ran minutes apart at most."""
    t = result["throughput"][workload]
    return [x / y for x, y in zip(t[a], t[b])]


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [
        "# End to end: recipients per second through a real Postfix",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores; Postfix {m['postfix']}, PostgreSQL {m['postgresql']}. "
        f"{r['data']['mailboxes']:,} mailboxes, {r['data']['aliases']:,} aliases, {r['data']['domains']} domains; "
        f"{r['rounds']} rounds, the three configurations taking turns. Figures are ranges over rounds; "
        "ratios are the median of per-round ratios.",
        "",
        "| workload | hash: rcpt/s | mailbook rcpt/s | PostfixAdmin rcpt/s | mailbook / hash | "
        "mailbook / PostfixAdmin | queries per rcpt, mailbook | PostfixAdmin |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for w in r["throughput"]:
        t = r["throughput"][w]
        rng = {k: f"{min(v):,.0f}–{max(v):,.0f}" for k, v in t.items()}
        q = r["queries"].get(w, {})
        lines.append(
            f"| {w} | {rng['hash']} | {rng['mailbook']} | {rng['postfixadmin']} | "
            f"{statistics.median(ratios(r, 'mailbook', 'hash', w)):.2f}x | "
            f"{statistics.median(ratios(r, 'mailbook', 'postfixadmin', w)):.2f}x | "
            f"{q.get('mailbook', {}).get('per_recipient', '–')} | {q.get('postfixadmin', {}).get('per_recipient', '–')} |")
    if "delivery" in r:
        lines += ["", "## Delivery: messages per second through mailbook's maps, accepted and delivered", "",
                  "The same data and maps; hash: and PostfixAdmin are in the table above. Accepted: "
                  "smtp-source has handed over every message; delivered: the queue is empty again. "
                  "`discard` is the table above's mailbook; virtual(8) writes maildirs; LMTP hands "
                  "each message to Dovecot (maildir, quota count, usage row, Sieve asking the database "
                  "for a vacation script); `+ quota-status` adds the check at RCPT that main.cf.snippet ships.", "",
                  "| workload | configuration | accepted msg/s | delivered msg/s | delivered rcpt/s | "
                  "delivered / discard |", "|---|---|---|---|---|---|"]
        per = {w[0]: w[2] for w in DELIVERY_WORKLOADS}
        for w, by in r["delivery"].items():
            base = by["mailbook, discard"]["delivered"]
            for config, t in by.items():
                rel = statistics.median(x / y for x, y in zip(t["delivered"], base))
                lines.append(f"| {w} | {config} | {min(t['accepted']):,.0f}–{max(t['accepted']):,.0f} | "
                             f"{min(t['delivered']):,.0f}–{max(t['delivered']):,.0f} | "
                             f"{min(t['delivered']) * per[w]:,.0f}–{max(t['delivered']) * per[w]:,.0f} | {rel:.2f}x |")
        q = r["quota_status"]
        lines += ["", f"quota-status by itself: {q['us_per_check']} µs per check on one connection "
                  f"({q['checks_per_s']:,} checks/s; {q['requests']:,} Postfix policy requests for mailboxes "
                  "without a quota, each a Dovecot userdb lookup in PostgreSQL, answered DUNNO). Failed "
                  "deliveries in the delivery runs: "
                  + ", ".join(f"{c} {n}" for c, n in r["delivery_problems"].items()) + "."]
    if "compiled_run" in r:
        lines += compiled_markdown(r)
    lines += ["", "PostgreSQL's CPU per lookup, each map's query sent as Postfix sends it (plain text), "
              "next to a trivial query of the same shape (`SELECT 'key'`) on the same connection:", "",
              "| map | µs per lookup | trivial query µs | ratio |", "|---|---|---|---|"]
    for who, maps in r.get("server_cpu", {}).items():
        for name, c in maps.items():
            lines.append(f"| {who}: `{name}` | {c['us']} | {c['trivial_us']} | {c['ratio']}x |")
    lines += ["", "Queries per recipient by map file (from PostgreSQL's log):", ""]
    for w, by in r["queries"].items():
        for who, q in by.items():
            lines.append(f"- {w}, {who}: " + ", ".join(f"{k} {v}" for k, v in q["by_map"].items()))
    return "\n".join(lines) + "\n"


def plot(r: dict, path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    workloads = list(r["throughput"])
    names = ["hash", "mailbook", "postfixadmin"]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.27
    for k, name in enumerate(names):
        med = [statistics.median(r["throughput"][w][name]) for w in workloads]
        lo = [m - min(r["throughput"][w][name]) for w, m in zip(workloads, med)]
        hi = [max(r["throughput"][w][name]) - m for w, m in zip(workloads, med)]
        ax.bar([i + (k - 1) * width for i in range(len(workloads))], med, width, yerr=[lo, hi], label=name, capsize=2)
    ax.set_xticks(range(len(workloads)))
    ax.set_xticklabels(workloads, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("recipients per second")
    ax.set_title(f"Through Postfix {r['machine']['postfix']}, {r['data']['mailboxes']:,} mailboxes")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--scale", type=float, default=1.0, help="messages per run, as a share of the default")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "local")
    a = p.parse_args()
    r = run(a.out, a.rounds, a.scale)
    print(markdown(r))


if __name__ == "__main__":
    main()
