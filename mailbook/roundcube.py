"""`mailbook roundcube install`: the configuration of Roundcube's password plugin (Debian's
roundcube-plugins, Roundcube 1.6), so that a user's password change is a call of
change_password() as mailwebmail, and nothing more.

What Roundcube 1.6's SQL driver (plugins/password/drivers/sql.php) does with it:
- it replaces %u with the login name, %o with the current and %p with the new password
  (%l, %d, %h: local part, domain, IMAP host; %P and %O: hashes made by Roundcube, not
  wanted here), each as a quoted literal in the statement's text: never a bound parameter;
- for a statement starting with SELECT it reports success if a row comes back, and
  otherwise the generic "Could not save new password."; it cannot show a database's
  message, and on a database error it writes the statement, both passwords included,
  into its errors log. So the query asks for a row only when the password was changed,
  and change_password() answers a refusal as a row, never as an error.
The plugin checks before calling the driver: the current password against the session's
(password_confirm_current: "Current password incorrect."), the minimum length
(password_minimum_length, written here from the database's settings.password_min_length
so the form shows the policy's rule) and a new password equal to the current one.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from mailbook import Failure

QUERY = "SELECT 1 FROM public.change_password(%u, %o, %p) WHERE changed"

CONFIG = """\
<?php
// Roundcube's password plugin, configured by `mailbook roundcube install`: a password
// change is one call of mailbook's change_password() as the PostgreSQL role
// mailwebmail, which may do nothing else (no table, no hash). mailbook checks the
// current password, its policy and its bound on guessing, and audits every attempt.
// This file holds mailwebmail's password: mode 0640, group www-data.

$config['password_driver'] = 'sql';
$config['password_db_dsn'] = {dsn};
// %u the login, %o the current and %p the new password. Roundcube reports success only
// when a row comes back; mailbook answers a refusal as a row whose changed is false, so
// none comes back, and never as a database error (Roundcube would write the statement,
// passwords included, to its log).
$config['password_query'] = {query};

// Roundcube's own checks, before it asks the database: the current password against the
// one the user logged in with, and mailbook's minimum length (settings.password_min_length
// when this file was written), so the form shows the rule and its message.
$config['password_confirm_current'] = true;
$config['password_minimum_length'] = {min_length};
$config['password_minimum_score'] = 0;
$config['password_force_save'] = false;
$config['password_algorithm'] = 'clear';   // the plaintext goes to mailbook, which hashes it
$config['password_log'] = true;            // Roundcube's own log: who changed, never the password
"""


def php_string(value: str) -> str:
    """A single-quoted PHP string literal: only backslash and quote are special there."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def dsn(host: str, port: int, dbname: str, user: str, password: str) -> str:
    """Roundcube's PEAR-style DSN, pgsql://user:password@host:port/dbname. Roundcube
    rawurldecode()s user and password; a host starting with / is a Unix socket directory,
    written unix(/path)."""
    for name, value in (("--host", host), ("--dbname", dbname), ("--user", user)):
        if not value or any(c in value for c in "@'\"\\ ?#") or (name != "--host" and "/" in value):
            raise Failure(f"{name} {value!r} cannot go into Roundcube's DSN")
    where = f"unix({host})" if host.startswith("/") else f"{host}:{port}"
    return f"pgsql://{quote(user, safe='')}:{quote(password, safe='')}@{where}/{dbname}"


def config_text(db_dsn: str, min_length: int) -> str:
    return CONFIG.format(dsn=php_string(db_dsn), query=php_string(QUERY), min_length=int(min_length))


def roundcube_files(dest: Path, db_dsn: str, min_length: int) -> dict[Path, str]:
    """dest/config.inc.php: Debian links /usr/share/roundcube/plugins/password/config.inc.php
    to /etc/roundcube/plugins/password/config.inc.php."""
    return {dest / "config.inc.php": config_text(db_dsn, min_length)}
