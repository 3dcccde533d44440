"""etcd and a Patroni cluster of PostgreSQL nodes (the installed server, its bin directory
from find_bindir) on loopback, for tests/test_patroni.py and benchmarks/patroni.py.

Each node's configuration is patroni/patroni.yml as shipped, its $words filled in, its
pg_hba list from `mailbook hba --patroni`: so the REST API wants a password for what
changes anything, etcd runs with authentication on (a root user, and a patroni user whose
role reaches only /service/mail/), and PostgreSQL has TLS on (a throwaway self-signed
certificate made here with openssl) for the hostssl replication and pg_rewind lines. etcd and Patroni run as the unprivileged
postgres OS user when we are root (PostgreSQL refuses root; Patroni starts PostgreSQL),
started directly with Popen's user= (no runuser in between), so a kill -9 reaches the
real process. All ports come from free_port(); all files live under one directory.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import re
import shutil
import signal
import string
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from mailbook import data_dir
from mailbook.demo.cluster import find_bindir, free_port
from mailbook.files import write_atomically

from .process import end

OS_USER = "postgres"
SUPERUSER_PW = "patroni-superuser-pw"
REPLICATION_PW = "patroni-replication-pw"
REWIND_PW = "patroni-rewind-pw"
# the REST API's and etcd's users are named in patroni.yml; their passwords are filled in
REST_USER, REST_PW = "patroni", "patroni-rest-pw"
ETCD_USER, ETCD_PW = "patroni", "patroni-etcd-pw"
ETCD_ROOT_PW = "etcd-root-pw"
# Small timings so that one test sees three faults within its budget (Patroni's defaults
# are 30/10/10): the lock expires 10 s after a leader's last renewal, nodes look every 2 s.
TTL, LOOP_WAIT, RETRY_TIMEOUT = 10, 2, 3
SCOPE = "mail"


def require(path: str) -> str:
    if not (shutil.which(path) or os.path.exists(path)):
        # never a skip: the Patroni test is part of the suite (scripts/install.sh --test)
        raise AssertionError(f"{path} is not installed: scripts/install.sh --test installs patroni and etcd-server")
    return shutil.which(path) or path


def _as_postgres() -> dict:
    """Popen arguments that run a child as the postgres OS user when we are root."""
    if os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam(OS_USER)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [],
            "env": {"HOME": str(pw.pw_dir), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}}


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, OS_USER, OS_USER)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def basic_auth(user: str, password: str) -> str:
    return "Basic " + _b64(f"{user}:{password}")


def http(method: str, url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, str]:
    """(status, body text) of one request; 4xx and 5xx are answers too, not exceptions."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 and its key, both owned by the
    postgres OS user, the key 0600 (PostgreSQL refuses a key others may read)."""
    directory.mkdir(mode=0o700)
    _own(directory)
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run([require("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    for path in (cert, key):
        os.chmod(path, 0o600)
        _own(path)
    return cert, key


class Etcd:
    def __init__(self, root: Path):
        self.root = root
        self.client_port, self.peer_port = free_port(), free_port()
        self.binary = require("/usr/bin/etcd")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def call(self, path: str, body: dict, token: str | None = None) -> tuple[int, str]:
        """One request to etcd's v3 JSON gateway (what etcdctl does over gRPC; etcdctl is
        in etcd-client, which the tests do not need)."""
        return http("POST", f"{self.url}/v3/{path}", body, {"Authorization": token} if token else None)

    def token(self, user: str, password: str) -> str:
        status, text = self.call("auth/authenticate", {"name": user, "password": password})
        assert status == 200, text
        return json.loads(text)["token"]

    def enable_auth(self, prefix: str) -> None:
        """As the admin guide's step 2 does with etcdctl: a root user, a role that may read
        and write prefix only, a patroni user with that role, then authentication on."""
        steps = [("auth/user/add", {"name": "root", "password": ETCD_ROOT_PW}),
                 ("auth/user/grant", {"user": "root", "role": "root"}),
                 ("auth/role/add", {"name": "patroni"}),
                 ("auth/role/grant", {"name": "patroni", "perm": {
                     "permType": "READWRITE", "key": _b64(prefix), "range_end": _b64(prefix[:-1] + chr(ord(prefix[-1]) + 1))}}),
                 ("auth/user/add", {"name": ETCD_USER, "password": ETCD_PW}),
                 ("auth/user/grant", {"user": ETCD_USER, "role": "patroni"}),
                 ("auth/enable", {})]
        for path, body in steps:
            status, text = self.call(path, body)
            assert status == 200, f"etcd {path}: {status} {text}"

    def range(self, key: str, token: str | None = None) -> tuple[int, str]:
        """Read every key under the prefix key."""
        return self.call("kv/range", {"key": _b64(key), "range_end": _b64(key[:-1] + chr(ord(key[-1]) + 1))}, token)

    def put(self, key: str, value: str, token: str | None = None) -> tuple[int, str]:
        return self.call("kv/put", {"key": _b64(key), "value": _b64(value)}, token)

    def start(self, auth: bool = True) -> None:
        self.root.mkdir(mode=0o700)
        _own(self.root)
        peer = f"http://127.0.0.1:{self.peer_port}"
        log = open(self.root / "etcd.log", "w")
        _own(self.root / "etcd.log")
        self.proc = subprocess.Popen(
            [self.binary, "--name", "etcd1", "--data-dir", str(self.root / "data"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"etcd1={peer}", "--initial-cluster-state", "new"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.root,
            start_new_session=True, **_as_postgres())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if json.load(r).get("health") == "true":
                        break
            except OSError:
                pass
            assert self.proc.poll() is None, (self.root / "etcd.log").read_text()[-2000:]
            time.sleep(0.2)
        else:
            raise AssertionError("etcd did not become healthy: " + (self.root / "etcd.log").read_text()[-2000:])
        if auth:
            self.enable_auth(f"/service/{SCOPE}/")

    def stop(self) -> None:
        end(self.proc)


class Node:
    """One Patroni process and the PostgreSQL it runs."""

    def __init__(self, root: Path, name: str, etcd: Etcd, hba_fragment: str, tls: tuple[Path, Path]):
        self.root, self.name = root, name
        self.tls = tls
        self.pg_port, self.rest_port = free_port(), free_port()
        self.data = root / "data"
        self.config = root / "patroni.yml"
        self.log = root / "patroni.log"
        self.etcd, self.hba_fragment = etcd, hba_fragment
        self.proc: subprocess.Popen | None = None
        self.patroni = require("/usr/bin/patroni")

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def socket_dir(self) -> Path:
        return self.root

    def dsn(self, dbname: str = "postgres") -> str:
        """Superuser over this node's socket (trust there; see write_config)."""
        return f"host={self.socket_dir} port={self.pg_port} dbname={dbname} user=postgres"

    def write_config(self, rest_authentication: bool = True) -> None:
        """patroni.yml filled in; rest_authentication=False drops restapi.authentication
        (the REST API as 95b1218 shipped it: unsafe requests from anyone)."""
        if not self.root.exists():
            self.root.mkdir(mode=0o700)
            _own(self.root)
        template = string.Template((data_dir("patroni") / "patroni.yml").read_text())
        text = template.substitute(
            scope=SCOPE, name=self.name,
            rest_address=f"127.0.0.1:{self.rest_port}",
            etcd_hosts=f"127.0.0.1:{self.etcd.client_port}",
            ttl=TTL, loop_wait=LOOP_WAIT, retry_timeout=RETRY_TIMEOUT,
            pg_address=f"127.0.0.1:{self.pg_port}",
            data_dir=self.data, pgpass=self.root / "pgpass", bin_dir=find_bindir(),
            superuser_password=SUPERUSER_PW, replication_password=REPLICATION_PW, rewind_password=REWIND_PW,
            restapi_password=REST_PW, etcd_password=ETCD_PW,
            ssl_cert_file=self.tls[0], ssl_key_file=self.tls[1],
            socket_dir=self.socket_dir,
            # the tests run as root and reach the superuser over the node's private socket
            # directory (0700, postgres); on a real host: peer
            local_superuser_method="trust",
            cluster_network="127.0.0.1/32",
            mailbook_hba=self.hba_fragment,
        )
        if not rest_authentication:  # (a file without the block is open already)
            text = text.replace(f"  authentication:\n    username: {REST_USER}\n    password: '{REST_PW}'\n", "", 1)
        ids = {}
        if os.geteuid() == 0:  # Patroni reads it as postgres; it holds passwords: 0600
            pw = pwd.getpwnam(OS_USER)
            ids = {"uid": pw.pw_uid, "gid": pw.pw_gid}
        write_atomically(self.config, text, 0o600, **ids)

    def start(self) -> None:
        if not self.config.exists():
            self.write_config()
        log = open(self.log, "a")
        _own(self.log)
        self.proc = subprocess.Popen([self.patroni, str(self.config)], stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.root, start_new_session=True,
                                     **_as_postgres())

    def reload(self) -> None:
        """SIGHUP: Patroni reads its file again (the REST API's authentication included)."""
        assert self.proc and self.proc.poll() is None, "Patroni is not running"
        self.proc.send_signal(signal.SIGHUP)

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n")[0])
        except (OSError, ValueError):
            return None

    def crash(self) -> None:
        """The node dies as a machine would: SIGKILL to Patroni and to the postmaster
        (whose backends then exit on their own, as they do when it is gone)."""
        pid = self.postmaster_pid()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc = None

    def stop(self) -> None:
        """Patroni stops its PostgreSQL on SIGTERM; whatever is left is killed."""
        end(self.proc, 30)
        pid = self.postmaster_pid()
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def rest(self, path: str = "/cluster") -> dict | None:
        try:
            with urllib.request.urlopen(f"{self.rest_url}{path}", timeout=3) as r:
                return json.load(r)
        except OSError:
            return None
        except ValueError:
            return None

    def request(self, method: str, path: str, body: dict | None = None, auth: bool = False) -> tuple[int, str]:
        """(status, text) of a request to this node's REST API, with the credentials or without."""
        headers = {"Authorization": basic_auth(REST_USER, REST_PW)} if auth else None
        return http(method, f"{self.rest_url}{path}", body, headers)

    def log_tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


class PatroniCluster:
    def __init__(self, root: Path, nodes: int, hba_fragment: str):
        self.root = root
        self.etcd = Etcd(root / "etcd")
        self.tls = (root / "tls" / "server.crt", root / "tls" / "server.key")
        self.nodes = [Node(root / f"pg{i + 1}", f"pg{i + 1}", self.etcd, hba_fragment, self.tls) for i in range(nodes)]
        self.patronictl = require("/usr/bin/patronictl")
        require(str(find_bindir() / "pg_rewind"))

    # -- what clients use ------------------------------------------------------------
    def hosts(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", n.pg_port) for n in self.nodes]

    def multi_host_dsn(self, dbname: str, user: str, **extra: str) -> str:
        """libpq's multi-host form: every node, the one that takes writes chosen at connect."""
        parts = [f"host={','.join(h for h, _ in self.hosts())}", f"port={','.join(str(p) for _, p in self.hosts())}",
                 f"dbname={dbname}", f"user={user}", "target_session_attrs=read-write", "connect_timeout=3"]
        parts += [f"{k}={v}" for k, v in extra.items()]
        return " ".join(parts)

    # -- life cycle --------------------------------------------------------------------
    def start(self, timeout: float = 120) -> None:
        make_certificate(self.tls[0].parent)
        # etcd gets its users when patroni.yml gives Patroni one (it does; were that line
        # lost, etcd would run open and test_etcd_refuses_anonymous_access say so)
        template = (data_dir("patroni") / "patroni.yml").read_text()
        self.etcd.start(auth=re.search(r"^etcd3:\n(?:[ #].*\n)*?  username: ", template, re.M) is not None)
        self.nodes[0].start()  # the first bootstraps (initdb), the others copy it
        self.wait_for(lambda s: s["leader"] == self.nodes[0].name, "the first node to lead", timeout)
        for n in self.nodes[1:]:
            n.start()
        self.wait_healthy(timeout)

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()
        self.etcd.stop()

    # -- what Patroni says -------------------------------------------------------------
    def state(self) -> dict | None:
        """{'leader': name|None, 'members': {name: member}} from the first node answering."""
        for n in self.nodes:
            c = n.rest("/cluster")
            if c is not None:
                members = {m["name"]: m for m in c.get("members", [])}
                leader = next((m["name"] for m in members.values() if m.get("role") == "leader"), None)
                return {"leader": leader, "members": members}
        return None

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def leader(self) -> Node:
        s = self.state()
        assert s and s["leader"], f"no leader: {s}"
        return self.node(s["leader"])

    def healthy(self, s: dict | None) -> bool:
        """A leader, every node a running replica of it on its timeline, one synchronous."""
        if not s or not s["leader"] or len(s["members"]) != len(self.nodes):
            return False
        leader = s["members"][s["leader"]]
        if leader.get("state") != "running":
            return False
        replicas = [m for m in s["members"].values() if m["name"] != s["leader"]]
        return all(m.get("state") in ("running", "streaming") and m.get("timeline") == leader.get("timeline")
                   and m.get("lag", 0) != "unknown" for m in replicas) \
            and any(m.get("role") == "sync_standby" for m in replicas)

    def wait_for(self, predicate, what: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        s = None
        while time.monotonic() < deadline:
            s = self.state()
            if s is not None and predicate(s):
                return s
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}; last state {s}\n"
                             + "\n".join(f"--- {n.name}\n{n.log_tail(1500)}" for n in self.nodes))

    def wait_healthy(self, timeout: float = 90) -> dict:
        return self.wait_for(self.healthy, "a leader and every node a streaming replica, one synchronous", timeout)

    def patronictl_(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.patronictl, "-c", str(self.nodes[0].config), *args],
                              capture_output=True, text=True, timeout=120, cwd=self.root, **_as_postgres())
