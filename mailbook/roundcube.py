"""`mailbook roundcube install`: Roundcube's password plugin (Debian's roundcube-plugins,
Roundcube 1.6) set up so that a user's password change is two calls of mailbook's SQL
API as mailwebmail, and nothing more: check_current_password(), committed, then
change_password() with its ticket (sql/api/25_change_password.sql says why two).

Why a driver of our own (drivers/mailbook.php) and not the plugin's stock SQL driver:
- the stock driver sends one statement; a guess counted in the same transaction that
  answers it can be rolled back by whoever holds mailwebmail's password, so mailbook
  answers only after the count is committed, which takes two;
- it writes %o and %p into the statement as quoted literals (rcube_db::_query) and, on
  any database error, logs that statement, both passwords included; this driver binds
  them as parameters of a prepared statement (PDO, no emulation), so no statement text
  ever holds a password, in Roundcube's log or in PostgreSQL's;
- it can show mailbook's reason for a refusal (too short, contains the name...), where
  the stock driver only says "Could not save new password.".
The plugin checks before calling the driver: the current password against the session's
(password_confirm_current), the minimum length (password_minimum_length, written here
from the database's settings.password_min_length so the form shows the rule) and a new
password equal to the current one.
"""

from __future__ import annotations

from pathlib import Path

DRIVER = """\
<?php
// mailbook's password driver for Roundcube's password plugin, written by
// `mailbook roundcube install` (no secret here: the connection settings are in the
// plugin's config.inc.php). A change is two calls as the PostgreSQL role mailwebmail,
// each its own transaction (PDO autocommits): check_current_password() counts and
// audits the guess and answers a ticket, then change_password() tells the outcome for
// that committed ticket. Passwords are bound parameters, never statement text.

class rcube_mailbook_password
{
    public function save($curpass, $passwd, $username)
    {
        $rcmail = rcmail::get_instance();
        try {
            $db = new PDO($rcmail->config->get('mailbook_db_dsn'), $rcmail->config->get('mailbook_db_user'),
                          $rcmail->config->get('mailbook_db_password'),
                          [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::ATTR_EMULATE_PREPARES => false]);
            $check = $db->prepare('SELECT ticket, code, message FROM public.check_current_password(?, ?)');
            $check->execute([$username, $curpass]);
            $checked = $check->fetch(PDO::FETCH_ASSOC);
            if ($checked['ticket'] === null) {
                return $this->refused($checked);
            }
            $change = $db->prepare('SELECT changed, code, message FROM public.change_password(?, ?, ?)');
            $change->execute([$username, $checked['ticket'], $passwd]);
            $result = $change->fetch(PDO::FETCH_ASSOC);
        }
        catch (PDOException $e) {
            // the SQLSTATE only: a message could quote what the server was sent
            rcube::raise_error(['code' => 600, 'file' => __FILE__, 'line' => __LINE__,
                                'message' => 'mailbook password driver: database error ' . $e->getCode()], true, false);
            return PASSWORD_CONNECT_ERROR;
        }
        return $result['changed'] ? PASSWORD_SUCCESS : $this->refused($result);
    }

    private function refused($row)
    {
        // "Could not save new password." followed by mailbook's reason (Roundcube escapes it)
        return ['code' => PASSWORD_ERROR, 'message' => $row['message']];
    }
}
"""

CONFIG = """\
<?php
// Roundcube's password plugin, configured by `mailbook roundcube install`: a password
// change is two calls of mailbook's SQL API (check_current_password(), then
// change_password() with its ticket) as the PostgreSQL role mailwebmail, which may do
// nothing else (no table, no hash), through mailbook's driver (drivers/mailbook.php).
// mailbook checks the current password, its policy and its bound on guessing, and audits
// every attempt. This file holds mailwebmail's password: mode 0640, group www-data.

$config['password_driver'] = 'mailbook';
$config['mailbook_db_dsn'] = {dsn};
$config['mailbook_db_user'] = {user};
$config['mailbook_db_password'] = {password};

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


def config_text(db_dsn: str, user: str, password: str, min_length: int) -> str:
    return CONFIG.format(dsn=php_string(db_dsn), user=php_string(user), password=php_string(password),
                         min_length=int(min_length))


def roundcube_files(dest: Path, drivers: Path, db_dsn: str, user: str, password: str,
                    min_length: int) -> dict[Path, str]:
    """dest/config.inc.php (Debian links /usr/share/roundcube/plugins/password/config.inc.php
    to /etc/roundcube/plugins/password/config.inc.php) and drivers/mailbook.php."""
    return {dest / "config.inc.php": config_text(db_dsn, user, password, min_length),
            drivers / "mailbook.php": DRIVER}
