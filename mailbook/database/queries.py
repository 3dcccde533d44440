"""The reads the command line shows (`domain list`, `mailbox list`, `log`...): every SQL
text of runner.py that is more than a one-line call of an API function, in one place.

They read the views and tables a member of mailadmin may read as itself (the connecting
role, not through a SECURITY DEFINER function), so what one may list is what one may read
in psql; a customer's admin (maildomainadmin), who may read no table, reads through the
scope-checked my_*() functions instead. Every value is a bound parameter.
"""

from __future__ import annotations

DOMAINS = ("SELECT t.domain, t.alias_of, t.transport, t.gid, t.active,"
           " t.disabled_services AS services_off,"
           " t.max_mailboxes, t.max_aliases, t.max_quota_bytes, t.max_mailbox_quota_bytes,"
           " (SELECT count(*) FROM mailboxes m WHERE m.domain = t.domain) AS mailboxes,"
           " (SELECT count(*) FROM aliases a WHERE a.domain = t.domain) AS aliases"
           " FROM transports t ORDER BY t.domain")
# the same for a customer's admin (maildomainadmin), who may not read the tables: its domains only
MY_DOMAINS = "SELECT * FROM my_domains()"

# (domain, domain): every mailbox, or one domain's
MAILBOXES = ("SELECT email, realname, maildir, quota_bytes, used_bytes, quota_messages, used_messages, active,"
             " disabled_services AS services_off, created, last_login FROM mailboxes"
             " WHERE %s::text IS NULL OR domain = lower(%s) ORDER BY email")
# the same for a customer's admin (maildomainadmin), who may not read the view: its domains only
MY_MAILBOXES = MAILBOXES.replace(" FROM mailboxes", " FROM my_mailboxes()")
# mailboxes without a login for N days or ever (stale_mailboxes() narrows a customer's
# admin to its domains as my_mailboxes() does); 22023 for fewer than 1 day
STALE = ("SELECT email, last_login, created, active, used_bytes FROM stale_mailboxes(%s)"
         " WHERE %s::text IS NULL OR domain = lower(%s)")

QUOTA_COLUMNS = "email, quota_bytes, used_bytes, quota_messages, used_messages"
# one mailbox through my_mailbox(), which a customer's admin may call in its domains (and
# is refused, 42501, across them); P0002 when there is no such mailbox
QUOTA = f"SELECT {QUOTA_COLUMNS} FROM my_mailbox(%s)"
# set_mailbox_quota() sets both limits (NULL: none); a limit not given keeps the stored
# one, read in the same statement: (email, keep bytes?, bytes, keep messages?, messages)
SET_QUOTA = (f"SELECT {QUOTA_COLUMNS} FROM set_mailbox_quota(%(email)s,"
             " CASE WHEN %(keep_bytes)s THEN (SELECT m.quota_bytes FROM my_mailbox(%(email)s) m)"
             " ELSE %(bytes)s::bigint END,"
             " CASE WHEN %(keep_messages)s THEN (SELECT m.quota_messages FROM my_mailbox(%(email)s) m)"
             " ELSE %(messages)s::bigint END)")

_VACATION_COLUMNS = "email, subject, starts, ends, days, (starts <= now() AND (ends IS NULL OR now() < ends)) AS due"
VACATIONS = f"SELECT {_VACATION_COLUMNS} FROM vacations ORDER BY email"
VACATION = f"SELECT {_VACATION_COLUMNS}, body FROM vacations WHERE email = lower(%s)"
# the same for a customer's admin (maildomainadmin), who may not read the table: its
# domains' replies (runner checks the scope of one mailbox first: existing_mailbox())
MY_VACATIONS = VACATIONS.replace(" FROM vacations", " FROM my_vacations()")
MY_VACATION = VACATION.replace(" FROM vacations", " FROM my_vacations()")

# (domain, domain): every alias, or one domain's
ALIASES = ("SELECT alias, email AS destination, active FROM aliases"
           " WHERE %s::text IS NULL OR domain = lower(%s) ORDER BY alias, email")
MY_ALIASES = ALIASES.replace(" FROM aliases", " FROM my_aliases()")

# (login, login): every grant, or one mailbox's
SEND_AS = ("SELECT login, address, created FROM send_as"
           " WHERE %s::text IS NULL OR login = lower(%s) ORDER BY login, address")
# the same for a customer's admin, who may not read the table: its domains' mailboxes only
MY_SEND_AS = SEND_AS.replace(" FROM send_as", " FROM my_send_as()")

# what sender-login.cf answers for an address (a customer's admin: its own domains only)
SENDERS = "SELECT login FROM who_may_send_as(%s) AS login"

PASSWORD_MIN_LENGTH = "SELECT password_min_length FROM public.settings"


def audit_log(table: str | None, key: str | None, since: str | None, limit: int,
              scoped: bool = False) -> tuple[str, tuple]:
    """`mailbook log`'s query and its parameters: the newest `limit` changes (to table, to
    rows whose key contains key, after since: a time or an interval), oldest first.
    scoped: for a customer's admin, who may not read audit_log: my_audit_log() applies
    the same filters to its domains' rows."""
    # an absolute time starts with a year; anything else is an interval
    since_sql = "%s::timestamptz" if since and since[:4].isdigit() else "now() - %s::interval"
    columns = ("id, at, login_role AS login, acting_role AS role, operation,"
               " table_name AS table, row_key AS key, array_to_string(changed, ',') AS changed, reason")
    if scoped:
        return (f"SELECT {columns} FROM my_audit_log(%s, %s, {since_sql if since else 'NULL'}, %s) ORDER BY id",
                (table, key, *([since] if since else []), limit))
    where, params = ["true"], []
    if table:
        where.append("table_name = %s")
        params.append(table)
    if key:
        where.append("strpos(row_key, %s) > 0")
        params.append(key.lower())
    if since:
        where.append(f"at >= {since_sql}")
        params.append(since)
    query = (f"SELECT * FROM (SELECT {columns}"
             f" FROM audit_log WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT %s) newest ORDER BY id")
    return query, (*params, limit)

# mailboxes removed with a grace period (0214), a customer's admin's own domains only
# (removed_mailboxes_list() narrows them)
REMOVED = ("SELECT email, realname, maildir, removed, removed_by, purge_after, restorable, aliases"
           " FROM removed_mailboxes_list() WHERE %s::text IS NULL OR split_part(email, '@', 2) = lower(%s)")
# `maildirs purge`: windows that have ended move into the purge queue first (--dry-run: which would)
EXPIRE = "SELECT email, maildir FROM expire_removed_mailboxes()"
EXPIRING = "SELECT email, maildir FROM removed_mailboxes_list() WHERE NOT restorable"
