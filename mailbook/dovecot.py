"""Dovecot's files: dovecot/*.conf.ext with their connect lines, mailbox base, sockets and
cache settings filled in (`mailbook dovecot install`), and the lookups Dovecot runs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mailbook import Failure, data_dir


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


def expand_dovecot(query: str, user: str, service: str = "imap") -> str:
    """The SQL Dovecot sends for a login name (auth_username_format = %Lu lower-cases it)
    logging in to a service."""
    return query.replace("%u", user.lower().replace("'", "''")).replace("%{service}", service)
