"""`mailbook doctor --patroni URL`: what a Patroni cluster under the mail database says
about itself, from Patroni's REST API (GET /cluster and GET /config on the first node
that answers).

Why the REST API and not pg_stat_replication: the leader's pg_stat_replication lists only
the standbys that are connected right now; a node that is down, or one that lost its
place and cannot stream, is simply absent there. Patroni's /cluster lists every member it
knows from etcd, with its role (leader, sync_standby, replica), state, timeline and lag,
and /config says whether synchronous_mode is on: the same view the election acts on.

It also asks every node whether it takes an unsafe request from anyone (issue 28: with no
restapi.authentication, PATCH /config can set a callback and POST /restart runs it as the
postgres OS user). The probe is a POST /restart that Patroni refuses whatever happens: its
body names the role "mailbook-doctor-probe" and a schedule that is no time. Patroni 3.0
(patroni/api.py, do_POST_restart) checks the credentials first (401, nothing read), and
otherwise validates every key before acting: an unknown role is a 400, an unparseable
schedule a 422 (or, paused, a 500 "Can't schedule restart"), and it breaks out before
ha.restart() or schedule_future_restart(). So 401 means protected; any other refusal of
the body means the request reached the restart code without credentials: fail.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

from mailbook import Failure

Check = tuple[str, str, str]
TIMEOUT = 3  # seconds per node: a dead node must not hold doctor up
# invalid in every key Patroni validates, so that no version restarts on it (module docstring)
PROBE = {"role": "mailbook-doctor-probe", "schedule": "mailbook-doctor-probe"}


def _get(url: str, path: str) -> dict:
    with urllib.request.urlopen(_base(url) + path, timeout=TIMEOUT) as r:
        return json.load(r)


def fetch(urls: list[str]) -> tuple[str, dict, dict]:
    """(url that answered, /cluster, /config) from the first of urls that answers."""
    errors = []
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise Failure(f"--patroni must be a Patroni REST API URL such as http://192.0.2.11:8008, not {url!r}")
        try:
            return url, _get(url, "/cluster"), _get(url, "/config")
        except (OSError, ValueError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
    raise Failure("no Patroni REST API answered (" + "; ".join(errors) + ")")


def _base(url: str) -> str:
    base = url.rstrip("/")
    for suffix in ("/cluster", "/config", "/patroni"):
        base = base.removesuffix(suffix)
    return base


def probe_restart(url: str, credentials: tuple[str, str] | None = None) -> tuple[int, str]:
    """(HTTP status, Patroni's answer) to the harmless POST /restart (PROBE), sent with
    HTTP basic credentials (user, password) or without any. OSError if nothing answers."""
    headers = {"Content-Type": "application/json"}
    if credentials is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
    req = urllib.request.Request(_base(url) + "/restart", data=json.dumps(PROBE).encode(), headers=headers,
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            return r.status, r.read(200).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(200).decode(errors="replace")


def rest_auth_checks(urls: list[str], credentials: tuple[str, str] | None = None) -> list[Check]:
    """Each node's REST API must refuse an unsafe request without credentials (401); with
    credentials given, it must take them (the probe then reaches Patroni's validation and
    is refused there). A node that does not answer is left to the member checks."""
    found: list[Check] = []
    for url in urls:
        try:
            status, answer = probe_restart(url)
        except OSError:
            continue
        if status == 401:
            found.append(("patroni rest auth", "pass", f"{url}: POST /restart without credentials refused (401)"))
        elif status == 403:
            found.append(("patroni rest auth", "warn", f"{url}: POST /restart refused from here by restapi.allowlist or"
                                                       " a client certificate requirement (403); hosts it allows may"
                                                       " still need no password: set restapi.authentication too"))
        else:
            found.append(("patroni rest auth", "fail", f"{url}: POST /restart without credentials reached Patroni's"
                                                       f" restart code (it answered {status} {answer.strip()[:80]!r} to"
                                                       " doctor's invalid request): anyone who reaches this port can"
                                                       " PATCH /config a callback and restart PostgreSQL to run it as"
                                                       " postgres; set restapi.authentication (patroni/patroni.yml)"))
            continue
        if credentials is None:
            continue
        try:
            status, answer = probe_restart(url, credentials)
        except OSError:
            continue
        if status in (401, 403):
            found.append(("patroni rest auth", "fail", f"{url}: the credentials given were refused ({status}):"
                                                       f" patronictl and doctor need restapi.authentication's"
                                                       f" username {credentials[0]!r} and its password"))
        else:
            found.append(("patroni rest auth", "pass", f"{url}: credentials for {credentials[0]!r} accepted"))
    return found


def _lag(member: dict) -> str:
    lag = member.get("lag")
    if lag is None:
        return ""
    if lag == "unknown":
        return ", lag unknown"
    return f", lag {int(lag):,} bytes"


def cluster_checks(urls: list[str], credentials: tuple[str, str] | None = None) -> list[Check]:
    """Members, leader, replication state and lag, synchronous standby, and whether each
    node's REST API refuses unauthenticated unsafe requests. Fails without a leader, with
    synchronous_mode off, or with no synchronous standby attached (then an acknowledged
    add_mailbox would be lost with the leader), and for a REST API that takes an unsafe
    request from anyone; warns for a member that is not running or whose lag is unknown."""
    try:
        url, cluster, config = fetch(urls)
    except Failure as exc:
        return [("patroni", "fail", str(exc))]
    members = cluster.get("members", [])
    names = {"leader": "leader", "sync_standby": "synchronous standby", "replica": "replica"}
    described = "; ".join(
        f"{m.get('name')} {names.get(m.get('role'), m.get('role'))} {m.get('state')}"
        f" at {m.get('host')}:{m.get('port')}, timeline {m.get('timeline', '?')}{_lag(m)}" for m in members)
    found: list[Check] = [("patroni members", "pass", f"{len(members)} member(s), asked {url}: {described}")]
    leaders = [m for m in members if m.get("role") in ("leader", "standby_leader")]
    if not leaders:
        found.append(("patroni leader", "fail", "no leader: provisioning has nowhere to write (an election may"
                                                " be running; patronictl list)"))
    else:
        found.append(("patroni leader", "pass", f"{leaders[0]['name']} at {leaders[0].get('host')}:{leaders[0].get('port')}"))
    if not config.get("synchronous_mode"):
        found.append(("synchronous standby", "fail", "synchronous_mode is off: a mailbox acknowledged just before the"
                                                     " leader fails may be lost; patronictl edit-config --set"
                                                     " synchronous_mode=true"))
    else:
        sync = [m for m in members if m.get("role") == "sync_standby" and m.get("state") in ("running", "streaming")]
        if not sync:
            found.append(("synchronous standby", "fail", "none attached: commits go on without one (synchronous_mode"
                                                         " is not strict), so the leader's loss would lose what it"
                                                         " acknowledged since; bring a replica back"))
        else:
            found.append(("synchronous standby", "pass", ", ".join(f"{m['name']}{_lag(m)}" for m in sync)))
    for m in members:
        if m.get("state") not in ("running", "streaming"):
            found.append(("patroni members", "warn", f"{m.get('name')} is {m.get('state')}"))
        elif m.get("lag") == "unknown":
            found.append(("patroni members", "warn", f"{m.get('name')} is not replicating (lag unknown)"))
    return found + rest_auth_checks(urls, credentials)
