"""`mailbook doctor --patroni URL`: what a Patroni cluster under the mail database says
about itself, from Patroni's REST API (GET /cluster and GET /config on the first node
that answers).

Why the REST API and not pg_stat_replication: the leader's pg_stat_replication lists only
the standbys that are connected right now; a node that is down, or one that lost its
place and cannot stream, is simply absent there. Patroni's /cluster lists every member it
knows from etcd, with its role (leader, sync_standby, replica), state, timeline and lag,
and /config says whether synchronous_mode is on: the same view the election acts on.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from mailbook import Failure

Check = tuple[str, str, str]
TIMEOUT = 3  # seconds per node: a dead node must not hold doctor up


def _get(url: str, path: str) -> dict:
    base = url.rstrip("/")
    for suffix in ("/cluster", "/config", "/patroni"):
        base = base.removesuffix(suffix)
    with urllib.request.urlopen(base + path, timeout=TIMEOUT) as r:
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


def _lag(member: dict) -> str:
    lag = member.get("lag")
    if lag is None:
        return ""
    if lag == "unknown":
        return ", lag unknown"
    return f", lag {int(lag):,} bytes"


def cluster_checks(urls: list[str]) -> list[Check]:
    """Members, leader, replication state and lag, synchronous standby. Fails without a
    leader, with synchronous_mode off, or with no synchronous standby attached (then an
    acknowledged add_mailbox would be lost with the leader); warns for a member that is
    not running or whose lag is unknown."""
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
    return found
