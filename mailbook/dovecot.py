"""Dovecot's files: dovecot/*.conf.ext (Dovecot 2.3) or dovecot/2.4/*.conf.ext with their
connections, mailbox base, sockets and cache settings filled in, and conf.d/99-mailbook.conf
including them last (`mailbook dovecot install`); and the lookups Dovecot runs."""

from __future__ import annotations

import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from mailbook import Failure, data_dir
from mailbook.files import SNAKEOIL_CERT, SNAKEOIL_KEY

VERSIONS = ("2.3", "2.4")


@dataclass
class LmtpSetup:
    """What delivery through Dovecot's LMTP needs beyond authentication."""
    quota_connect: str                      # libpq string of mailquota (quota_clone's dict)
    postfix_queue: str = "/var/spool/postfix"  # Postfix's queue_directory: the sockets go in private/
    vmail_user: str = "vmail"               # who mail processes run as (mail_uid): the dict socket's owner
    vmail_group: str = "vmail"
    last_login: bool = True                 # last-login-mailbook.conf.ext: IMAP/POP3 logins into last_logins


def installed_version(program: str = "dovecot") -> str:
    """The installed Dovecot's major.minor ("2.3", "2.4"), from `dovecot --version`."""
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if path is None:
        raise Failure("Dovecot is not installed here (no dovecot program): "
                      "install dovecot-core, or say which one with --dovecot-version 2.3|2.4")
    out = subprocess.run([path, "--version"], capture_output=True, text=True, stdin=subprocess.DEVNULL).stdout
    m = re.match(r"(\d+)\.(\d+)", out)
    version = f"{m.group(1)}.{m.group(2)}" if m else ""
    if version not in VERSIONS:
        raise Failure(f"Dovecot {out.split()[0] if out.split() else '?'} is not one mailbook writes for "
                      f"({', '.join(VERSIONS)}); say which with --dovecot-version")
    return version


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


def _quoted(value: str) -> str:
    """A Dovecot 2.4 setting value: in double quotes, backslash and quote escaped."""
    if any(c in value for c in "\n\r\0"):
        raise Failure("a connection setting for Dovecot cannot contain a line break or NUL")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pgsql(name: str, connect: str, indent: str = "  ") -> str:
    """A Dovecot 2.4 `pgsql NAME { parameters { ... } }` block from a libpq string. NAME is
    what 2.4 tells connections apart by (equal names share one, whatever the user); the
    host goes in the parameters, as libpq's host list."""
    params = conninfo_to_dict(connect)
    lines = [f"{indent}pgsql {name} {{", f"{indent}  parameters {{"]
    lines += [f"{indent}    {key} = {_quoted(str(value))}" for key, value in params.items()]
    return "\n".join([*lines, f"{indent}  }}", f"{indent}}}"])


def installed_password(path: Path, user: str) -> str | None:
    """The password `dovecot install` wrote into path earlier for role user (2.3: the
    `connect =` line; 2.4: the `parameters` of a pgsql block), or None when there is no
    such file or it connects as another role. A rerun keeps it, so one role's password
    changes without the other's."""
    try:
        text = path.read_text()
    except OSError:
        return None
    for m in re.finditer(r"^connect = (.*)$", text, flags=re.M):
        try:
            params = conninfo_to_dict(m.group(1))
        except psycopg.ProgrammingError:  # a hand-edited line: nothing to keep
            continue
        if params.get("user") == user and params.get("password"):
            return params["password"]
    for block in re.finditer(r"^\s*parameters \{\n(.*?)^\s*\}", text, flags=re.M | re.S):
        params = {k: re.sub(r"\\(.)", r"\1", v)
                  for k, v in re.findall(r'^\s*(\w+) = "((?:[^"\\]|\\.)*)"$', block.group(1), flags=re.M)}
        if params.get("user") == user and params.get("password"):
            return params["password"]
    return None


# The 2.3 quota column and what 2.4 reads instead (it ignores a quota_rule field).
_QUOTA_23 = ("CASE WHEN u.quota_bytes IS NOT NULL OR u.quota_messages IS NOT NULL THEN '*' || "
             "coalesce(':bytes=' || u.quota_bytes, '') || coalesce(':messages=' || u.quota_messages, '') END AS quota_rule")
_QUOTA_24 = "u.quota_bytes AS quota_storage_size, u.quota_messages AS quota_message_count"
# The vacation dict only for mailboxes with a reply due or to come: 2.3's userdb answers
# the plugin setting sieve_before; 2.4's makes its sieve_script mailbook-vacation a
# `before` script (lmtp-mailbook.conf.ext declares it `global`: not run at delivery).
_VACATION = "EXISTS (SELECT FROM vacations v WHERE v.email = u.email AND (v.ends IS NULL OR v.ends > now()))"
_SIEVE_23 = f", CASE WHEN {_VACATION} THEN 'dict:proxy::mailbook_sieve;name=mailbook-vacation' END AS sieve_before"
_SIEVE_24 = f", CASE WHEN {_VACATION} THEN 'before' END AS \"sieve_script/mailbook-vacation/type\""


def dovecot_queries(version: str = "2.3", iterate: bool = False) -> dict[str, str]:
    """The lookups Dovecot runs per login and per delivery (password_query, user_query; with
    iterate, also iterate_query, which lists every mailbox by design), as written in
    dovecot/dovecot-sql.conf.ext, in the variables of the given Dovecot version."""
    text = (data_dir("dovecot") / "dovecot-sql.conf.ext").read_text()
    names = "password_query|user_query" + ("|iterate_query" if iterate else "")
    queries = {m.group(1): m.group(2).strip() for m in re.finditer(rf"^({names})\s*=\s*(.+)$", text, re.M)}
    if version == "2.3":
        return queries
    assert _QUOTA_23 in queries["user_query"], "dovecot-sql.conf.ext's quota column changed: update _QUOTA_23"
    assert _SIEVE_23 in queries["user_query"], "dovecot-sql.conf.ext's sieve column changed: update _SIEVE_23"
    return {name: _variables_24(query.replace(_QUOTA_23, _QUOTA_24).replace(_SIEVE_23, _SIEVE_24)) for name, query in queries.items()}


_TOKEN_24 = "%{password | concat('--------') | substr(0, 8)}"


def _variables_24(query: str) -> str:
    """A 2.3 query in 2.4's variables: %{user}, %{protocol} (2.3's %{service}),
    %{remote_ip} (2.3's %r), and the password's first 8 characters (2.3's %8w) through
    2.4's substr filter. 2.4's substr fails (temp_fail: "internal auth failure") on a
    password shorter than its length, so the password is padded first with dashes, which
    no token has: a short password is a miss, as on 2.3."""
    query = query.replace("%u", "%{user}").replace("%{service}", "%{protocol}").replace("'%r'", "'%{remote_ip}'")
    query = query.replace("%8w", _TOKEN_24)
    left = query.replace("%{user}", "").replace("%{protocol}", "").replace("%{remote_ip}", "").replace(_TOKEN_24, "")
    assert re.findall(r"%\{?\w*", left) == [], query
    return query


APP_PASSWORDS_CONF = "dovecot-sql-app-passwords.conf.ext"


def app_password_query(version: str = "2.3") -> str:
    """The second passdb's lookup (app passwords, by address and the password's first 8
    characters), as written in dovecot/dovecot-sql-app-passwords.conf.ext, in the variables
    of the given Dovecot version."""
    text = (data_dir("dovecot") / APP_PASSWORDS_CONF).read_text()
    query = re.search(r"^password_query\s*=\s*(.+)$", text, re.M).group(1).strip()
    return query if version == "2.3" else _variables_24(query)


@dataclass
class SubmissionSetup:
    """Postfix's submission (SASL through Dovecot) and the certificate Dovecot presents."""
    postfix_queue: str = "/var/spool/postfix"  # the auth listener goes in its private/
    submission: bool = True                    # False: no listener (a receive-only MX)
    tls_cert: str = SNAKEOIL_CERT             # the same files Postfix's submission reads
    tls_key: str = SNAKEOIL_KEY


def _submission_settings(version: str, setup: SubmissionSetup) -> str:
    """The certificate (IMAP, POP3, ManageSieve over TLS) and, for Postfix's submission
    services, the auth listener in Postfix's queue (smtpd_sasl_path = private/auth)."""
    for option, path in (("--tls-cert", setup.tls_cert), ("--tls-key", setup.tls_key)):
        if not path.startswith("/") or any(c.isspace() or c in "\\\"'$%<{}" for c in path):
            raise Failure(f"{option} must be an absolute path without spaces, quotes, $, %, < or braces, not {path!r}")
    queue = _queue(setup.postfix_queue)
    text = ("# The certificate and key Postfix's submission services present too (smtpd_tls_cert_file,\n"
            "# smtpd_tls_key_file): `mailbook dovecot install --tls-cert FILE --tls-key FILE`\n")
    if version == "2.3":
        text += f"ssl_cert = <{setup.tls_cert}\nssl_key = <{setup.tls_key}\n"
    else:
        text += f"ssl_server_cert_file = {setup.tls_cert}\nssl_server_key_file = {setup.tls_key}\n"
    if setup.submission:
        text += ("# Postfix's submission services log users in here (smtpd_sasl_type = dovecot,\n"
                 "# smtpd_sasl_path = private/auth, relative to Postfix's queue directory); only Postfix\n"
                 "# may connect\n"
                 "service auth {\n"
                 f"  unix_listener {queue}/private/auth {{\n"
                 "    mode = 0660\n    user = postfix\n    group = postfix\n  }\n}\n")
    return text


def _queue(postfix_queue: str) -> str:
    queue = postfix_queue.rstrip("/")
    if not re.fullmatch(r"/[A-Za-z0-9._/-]*", queue):
        raise Failure(f"--postfix-queue must be an absolute path of letters, digits and ._-/, not {postfix_queue!r}")
    return queue


DOVECOT_FIRST_VALID_UID = 500  # Dovecot's default: lower uids are refused for mail access


def _first_valid_uid(lmtp: LmtpSetup | None) -> str:
    """first_valid_uid lowered to the vmail user's uid when that is a system one
    (`adduser --system` gives one below 500): Dovecot refuses mail access to a lower uid,
    so every userdb lookup, delivery and quota check failed. Nothing when the user does not
    exist yet (the next steps say so) or its uid is already admitted."""
    if lmtp is None:
        return ""
    try:
        uid = pwd.getpwnam(lmtp.vmail_user).pw_uid
    except KeyError:
        return ""
    if uid >= DOVECOT_FIRST_VALID_UID:
        return ""
    return (f"# {lmtp.vmail_user}'s uid is a system one; Dovecot refuses mail access below first_valid_uid\n"
            f"first_valid_uid = {uid}\n")


def _main_settings(version: str, conf_d: Path, mailbox_base: str, lmtp: LmtpSetup | None,
                   submission: SubmissionSetup) -> str:
    """conf.d/99-mailbook.conf: read after the distribution's conf.d files (Debian's
    10-mail, 20-lmtp and 90-sieve set what mailbook's setup needs otherwise; 10-ssl its
    own certificate)."""
    head = ("# mailbook's Dovecot settings, written by `mailbook dovecot install`. The name makes it\n"
            "# the last of conf.d/*.conf, so the distribution's own files cannot override it.\n")
    includes = f"!include {conf_d / 'auth-mailbook.conf.ext'}\n"
    if lmtp:
        includes += f"!include {conf_d / 'lmtp-mailbook.conf.ext'}\n"
        if lmtp.last_login:  # its dict server and connection are the LMTP include's
            includes += f"!include {conf_d / 'last-login-mailbook.conf.ext'}\n"
    users = (f"# mail processes run as the owner of the maildirs\n"
             f"mail_uid = {lmtp.vmail_user}\nmail_gid = {lmtp.vmail_group}\n") if lmtp else ""
    users += _first_valid_uid(lmtp)
    users += _submission_settings(version, submission)
    if version == "2.3":
        return (head + "# whole addresses, lower-cased: Foo@Example.COM finds foo@example.com\n"
                "auth_username_format = %Lu\n"
                "# home (from the userdb) is the maildir Postfix delivers into\n"
                "mail_location = maildir:~\n" + users + includes)
    return (head + "# home (from the userdb) is the maildir Postfix delivers into; Debian's mbox home,\n"
            "# mail path and /var/mail INBOX are cleared\n"
            "mail_driver = maildir\nmail_path = ~\nmail_home =\nmail_inbox_path = .\n"
            "# INBOX is the maildir's root (Maildir++), not a folder of it\n"
            "namespace inbox {\n  inbox = yes\n}\n"
            "# locks and the duplicate database outside the maildirs (in one, Maildir++ lists the\n"
            "# .dovecot.lda-dupes.locks directory as a folder)\n"
            f"mail_volatile_path = {mailbox_base}.dovecot-volatile/%{{user}}\n" + users + includes)


def dovecot_files(dest: Path, conf_d: Path, connect: str, mailbox_base: str,
                  lmtp: LmtpSetup | None = None, auth_cache_ttl: int = 900,
                  version: str = "2.3", submission: SubmissionSetup | None = None) -> dict[Path, str]:
    """For the given Dovecot version: dest (the SQL passdb/userdb with its connection and
    mailbox base), the auth include pointing at it (its cache ttls set to auth_cache_ttl
    seconds, 0: no cache) and conf.d/99-mailbook.conf including it; with lmtp, also the
    LMTP include and its two dict files (quota usage and, unless lmtp.last_login is False,
    last logins as mailquota; vacation scripts as the auth role), next to dest. submission: the certificate and Postfix's auth listener
    (default: Debian's snakeoil, /var/spool/postfix/private/auth)."""
    if version not in VERSIONS:
        raise Failure(f"--dovecot-version must be one of {', '.join(VERSIONS)}, not {version!r}")
    if not mailbox_base.startswith("/") or any(c in mailbox_base for c in "'\\\"%$ \t\n"):
        raise Failure(f"--mailbox-base must be an absolute path without quotes, spaces, % or $, not {mailbox_base!r}")
    base = mailbox_base.rstrip("/") + "/"
    source = data_dir("dovecot") / ("2.4" if version == "2.4" else "")
    if lmtp:
        queue = _queue(lmtp.postfix_queue)
        for option, name in (("--vmail-user", lmtp.vmail_user), ("--vmail-group", lmtp.vmail_group)):
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name):
                raise Failure(f"{option} must be a user or group name, not {name!r}")
    if version == "2.3":
        sql = _with_connect((source / "dovecot-sql.conf.ext").read_text(), connect)
    else:
        sql = (source / "dovecot-sql.conf.ext").read_text().replace("@CONNECTION@", _pgsql("mailbook_auth", connect))
        for name, query in dovecot_queries("2.4", iterate=True).items():
            sql = sql.replace(f"@{name}@", query)
        sql = sql.replace("@app_password_query@", app_password_query("2.4"))
    sql = sql.replace("'/home/mail/'", f"'{base}'")
    app_passwords = dest.parent / APP_PASSWORDS_CONF
    auth = (source / "auth-mailbook.conf.ext").read_text().replace("/etc/dovecot/dovecot-sql.conf.ext", str(dest))
    auth = auth.replace(f"/etc/dovecot/{APP_PASSWORDS_CONF}", str(app_passwords))
    auth = _with_auth_cache(auth, auth_cache_ttl)
    files = {dest: sql, conf_d / "auth-mailbook.conf.ext": auth}
    if version == "2.3":  # the second passdb's file (2.4: a second block in dest)
        files[app_passwords] = _with_connect((source / APP_PASSWORDS_CONF).read_text(), connect)
    files[conf_d / "99-mailbook.conf"] = _main_settings(version, conf_d, base, lmtp, submission or SubmissionSetup())
    if lmtp is None:
        return files
    quota_dict, sieve_dict = dest.parent / "dovecot-dict-quota.conf.ext", dest.parent / "dovecot-dict-sieve.conf.ext"
    include = (source / "lmtp-mailbook.conf.ext").read_text()
    include = include.replace("/var/spool/postfix/", queue + "/")
    include = include.replace("/etc/dovecot/dovecot-dict-quota.conf.ext", str(quota_dict))
    include = include.replace("/etc/dovecot/dovecot-dict-sieve.conf.ext", str(sieve_dict))
    include = include.replace("    user = vmail\n    group = vmail\n",
                              f"    user = {lmtp.vmail_user}\n    group = {lmtp.vmail_group}\n")
    files[conf_d / "lmtp-mailbook.conf.ext"] = include
    if lmtp.last_login:
        files[conf_d / "last-login-mailbook.conf.ext"] = (source / "last-login-mailbook.conf.ext").read_text()
    if version == "2.3":
        files[quota_dict] = _with_connect((source / "dovecot-dict-quota.conf.ext").read_text(), lmtp.quota_connect)
        files[sieve_dict] = _with_connect((source / "dovecot-dict-sieve.conf.ext").read_text(), connect)
    else:
        files[quota_dict] = (source / "dovecot-dict-quota.conf.ext").read_text().replace(
            "@CONNECTION@", _pgsql("mailbook_quota", lmtp.quota_connect))
        files[sieve_dict] = (source / "dovecot-dict-sieve.conf.ext").read_text().replace(
            "@CONNECTION@", _pgsql("mailbook_sieve", connect))
    return files


def expand_dovecot(query: str, user: str, service: str = "imap", password: str = "", remote_ip: str = "") -> str:
    """The SQL Dovecot 2.3 sends for a login name (auth_username_format = %Lu lower-cases
    it) logging in to a service (with password's first 8 characters for %8w) from a
    client address (%r; '' when Dovecot knows none)."""
    return (query.replace("%u", user.lower().replace("'", "''")).replace("%{service}", service)
            .replace("%8w", password[:8].replace("'", "''")).replace("'%r'", "'" + remote_ip.replace("'", "''") + "'"))


def dovecot_next_steps(version: str, conf_d: Path, changed: set[Path], vmail_user: str | None = None) -> list[str]:
    """What is left to do after `dovecot install` wrote the changed files into conf_d,
    read from the files as they are: nothing already done is asked for again."""
    steps = []
    if vmail_user is not None:
        try:
            pwd.getpwnam(vmail_user)
        except KeyError:
            steps.append(f"next: there is no user {vmail_user} yet: create it (adduser --system --group"
                         f" {vmail_user}), then run `mailbook dovecot install` again (it admits its uid)")
    if conf_d / "99-mailbook.conf" in changed:
        steps.append(f"for Dovecot {version}: {conf_d / '99-mailbook.conf'} includes the rest, after the"
                     " distribution's conf.d files")
    try:
        auth = (conf_d / "10-auth.conf").read_text()
    except OSError:
        auth = ""
    if re.search(r"^\s*!include\s+auth-system\.conf\.ext\s*$", auth, flags=re.M):
        steps.append("next: in conf.d/10-auth.conf, comment out `!include auth-system.conf.ext` (system users:"
                     " its PAM passdb would be asked first)")
    old = re.findall(r"^\s*(!include\S*\s+\S*(?:auth|lmtp)-mailbook\.conf\.ext)\s*$", auth, flags=re.M)
    if old:
        steps.append(f"next: in conf.d/10-auth.conf, remove {', '.join(f'`{line}`' for line in old)}"
                     " (99-mailbook.conf includes it, last)")
    if changed:
        steps.append("next: `doveconf -n`, then `systemctl reload dovecot`")
    return steps
