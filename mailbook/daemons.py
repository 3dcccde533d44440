"""What `mailbook maps` and `mailbook dovecot` need beyond copying files: main.cf
settings from the snippet, Postfix's own answers through postmap, Dovecot's files."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from mailbook import Failure, data_dir
from mailbook.maps import MapFile, map_files

DEFAULT_MAP_DIR = "/etc/postfix/pgsql"
DOMAIN_KEYED = ("domains.cf", "relay-domains.cf")  # looked up by domain, not by address


DELIVERIES = ("lmtp", "virtual")
# What `--delivery virtual` changes in main.cf.snippet: Postfix's virtual(8) writes the
# maildirs, so there is no Dovecot quota-status service to ask at RCPT.
VIRTUAL_DELIVERY = {
    "virtual_transport": "virtual",
    "smtpd_recipient_restrictions": "reject_unlisted_recipient",
}


def _snippet_lines(dest: Path, delivery: str = "lmtp") -> list[tuple[str, str]]:
    if delivery not in DELIVERIES:
        raise Failure(f"--delivery must be one of {', '.join(DELIVERIES)}, not {delivery!r}")
    text = (data_dir("postfix-maps") / "main.cf.snippet").read_text()
    settings = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            name, value = name.strip(), value.strip().replace(DEFAULT_MAP_DIR, str(dest))
            if delivery == "virtual":
                value = VIRTUAL_DELIVERY.get(name, value)
            settings.append((name, value))
    return settings


def snippet_settings(dest: Path, delivery: str = "lmtp") -> list[tuple[str, str]]:
    """(parameter, value) of main.cf.snippet's main.cf lines, with the map directory set
    to dest, for delivery through Dovecot's LMTP (as shipped) or Postfix's virtual(8)."""
    return [(name, value) for name, value in _snippet_lines(dest, delivery) if "/" not in name]


def snippet_services(dest: Path) -> list[tuple[str, str, str]]:
    """(service/type, parameter, value) of main.cf.snippet's master.cf overrides, the
    lines written as `postconf -P` takes them: rewrite/unix/helpful_warnings = no."""
    out = []
    for name, value in _snippet_lines(dest):
        if "/" in name:
            service, kind, parameter = name.split("/")
            out.append((f"{service}/{kind}", parameter, value))
    return out


def with_services(master_cf: str, services: list[tuple[str, str, str]]) -> str:
    """master.cf text with each override added as "-o parameter=value" below its
    service's line (what `postconf -P` does to /etc/postfix/master.cf)."""
    lines = master_cf.splitlines()
    for service, parameter, value in services:
        name, kind = service.split("/")
        at = next(i for i, line in enumerate(lines) if line.split()[:2] == [name, kind])
        lines.insert(at + 1, f"  -o {parameter}={value}")
    return "\n".join(lines) + "\n"


def postmap_path() -> str:
    path = shutil.which("postmap") or ("/usr/sbin/postmap" if Path("/usr/sbin/postmap").exists() else None)
    if not path:
        raise Failure("postmap not found; install Postfix (Debian: apt-get install postfix postfix-pgsql)")
    return path


def postmap_query(key: str, path: Path, config_dir: Path | None = None) -> tuple[bool, str]:
    """(ok, answer) for one `postmap -q`: the value, "(not found)", or the error line."""
    cmd = [postmap_path()] + (["-c", str(config_dir)] if config_dir else []) + ["-q", key, f"pgsql:{path}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode == 0:
        return True, r.stdout.strip()
    errors = [line.removeprefix("postmap: ").replace("??", " ").strip()
              for line in r.stderr.splitlines() if line.strip()]
    if r.returncode == 1 and not errors:
        return True, "(not found)"
    # the reason is in the connection or query warning; the final fatal line only says "query error"
    cause = next((e for e in reversed(errors) if "connect to pgsql server" in e or "pgsql query failed" in e), None)
    return False, cause or (errors[-1] if errors else f"postmap exited with {r.returncode}")


def check_maps(address: str, dest: Path, config_dir: Path | None) -> Iterator[tuple[MapFile, str, str, bool]]:
    domain = address.rpartition("@")[2]
    for m in map_files():
        path = dest / m.name
        if not path.exists():
            yield m, "-", f"(not installed in {dest})", False
            continue
        key = domain if m.name in DOMAIN_KEYED else address
        ok, answer = postmap_query(key, path, config_dir)
        yield m, key, answer, ok


@dataclass
class LmtpSetup:
    """What delivery through Dovecot's LMTP needs beyond authentication."""
    quota_connect: str                      # libpq string of mailquota (quota_clone's dict)
    postfix_queue: str = "/var/spool/postfix"  # Postfix's queue_directory: the sockets go in private/
    vmail_user: str = "vmail"               # who mail processes run as: the dict socket's owner
    vmail_group: str = "vmail"


def _with_auth_cache(text: str, ttl: int) -> str:
    """auth-mailbook.conf.ext with auth_cache_ttl set to ttl seconds and the negative ttl to
    at most that; 0: no cache."""
    if ttl < 0:
        raise Failure(f"--auth-cache-ttl must be 0 (no cache) or a number of seconds, not {ttl}")
    negative = int(re.search(r"^auth_cache_negative_ttl = (\d+) s$", text, flags=re.M).group(1))
    text = re.sub(r"^auth_cache_ttl = .*$", f"auth_cache_ttl = {ttl} s", text, flags=re.M)
    text = re.sub(r"^auth_cache_negative_ttl = .*$", f"auth_cache_negative_ttl = {min(ttl, negative)} s", text, flags=re.M)
    if ttl == 0:
        text = re.sub(r"^auth_cache_size = .*$", "auth_cache_size = 0", text, flags=re.M)
    return text


def _with_connect(text: str, connect: str) -> str:
    return re.sub(r"^connect = .*$", lambda _: f"connect = {connect}", text, flags=re.M)


def dovecot_files(dest: Path, conf_d: Path, connect: str, mailbox_base: str,
                  lmtp: LmtpSetup | None = None, auth_cache_ttl: int = 900) -> dict[Path, str]:
    """dovecot-sql.conf.ext with its connect line and mailbox base set, and the
    auth include pointing at it (its cache ttls set to auth_cache_ttl seconds, 0: no
    cache); with lmtp, also the LMTP include and its two dict files (quota usage as
    mailquota, vacation scripts as the auth role), next to dest."""
    if not mailbox_base.startswith("/") or "'" in mailbox_base or "\\" in mailbox_base:
        raise Failure(f"--mailbox-base must be an absolute path without quotes, not {mailbox_base!r}")
    base = mailbox_base.rstrip("/") + "/"
    source = data_dir("dovecot")
    sql = _with_connect((source / "dovecot-sql.conf.ext").read_text(), connect)
    sql = sql.replace("'/home/mail/'", f"'{base}'")
    auth = (source / "auth-mailbook.conf.ext").read_text().replace("/etc/dovecot/dovecot-sql.conf.ext", str(dest))
    auth = _with_auth_cache(auth, auth_cache_ttl)
    files = {dest: sql, conf_d / "auth-mailbook.conf.ext": auth}
    if lmtp is None:
        return files
    queue = lmtp.postfix_queue.rstrip("/")
    if not re.fullmatch(r"/[A-Za-z0-9._/-]*", queue):
        raise Failure(f"--postfix-queue must be an absolute path of letters, digits and ._-/, not {lmtp.postfix_queue!r}")
    for option, name in (("--vmail-user", lmtp.vmail_user), ("--vmail-group", lmtp.vmail_group)):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name):
            raise Failure(f"{option} must be a user or group name, not {name!r}")
    quota_dict, sieve_dict = dest.parent / "dovecot-dict-quota.conf.ext", dest.parent / "dovecot-dict-sieve.conf.ext"
    include = (source / "lmtp-mailbook.conf.ext").read_text()
    include = include.replace("/var/spool/postfix/", queue + "/")
    include = include.replace("/etc/dovecot/dovecot-dict-quota.conf.ext", str(quota_dict))
    include = include.replace("/etc/dovecot/dovecot-dict-sieve.conf.ext", str(sieve_dict))
    include = include.replace("    user = vmail\n    group = vmail\n",
                              f"    user = {lmtp.vmail_user}\n    group = {lmtp.vmail_group}\n")
    files[conf_d / "lmtp-mailbook.conf.ext"] = include
    files[quota_dict] = _with_connect((source / "dovecot-dict-quota.conf.ext").read_text(), lmtp.quota_connect)
    files[sieve_dict] = _with_connect((source / "dovecot-dict-sieve.conf.ext").read_text(), connect)
    return files


def dovecot_queries() -> dict[str, str]:
    """The lookups Dovecot runs per login and per delivery (not iterate_query, which
    lists every mailbox by design), as written in dovecot/dovecot-sql.conf.ext."""
    text = (data_dir("dovecot") / "dovecot-sql.conf.ext").read_text()
    return {m.group(1): m.group(2).strip()
            for m in re.finditer(r"^(password_query|user_query)\s*=\s*(.+)$", text, re.M)}


def plan_scans(plan: dict) -> list[tuple[str, str]]:
    """(node type, relation) of every scan in an EXPLAIN (FORMAT JSON) plan node and below:
    what the query-plan test and the benchmark check a lookup by."""
    found = [(plan["Node Type"], plan.get("Relation Name", ""))] if "Scan" in plan["Node Type"] else []
    for child in plan.get("Plans", []):
        found += plan_scans(child)
    return found


def expand_dovecot(query: str, user: str, service: str = "imap") -> str:
    """The SQL Dovecot sends for a login name (auth_username_format = %Lu lower-cases it)
    logging in to a service."""
    return query.replace("%u", user.lower().replace("'", "''")).replace("%{service}", service)
