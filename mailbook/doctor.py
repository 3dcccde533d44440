"""`mailbook doctor`: audit a live server and, optionally, the installed Postfix map files.
The database checks are sql/doctor.sql; pg_hba.conf, migrations and files are read here."""

from __future__ import annotations

import grp
import ipaddress
import os
import shlex
import stat
from pathlib import Path

import psycopg

from mailbook import __version__, data_dir
from mailbook.database import migrations as mig
from mailbook.postfix.compiled import STATE_FILE, read_state
from mailbook.postfix.maps import map_files
from mailbook.postfix.postconf import check_maps

Check = tuple[str, str, str]  # (check, pass|warn|fail, detail)


def database_checks(conn: psycopg.Connection) -> list[Check]:
    return [tuple(row) for row in conn.execute((data_dir("sql") / "doctor.sql").read_text())] + scope_checks(conn)


def scope_checks(conn: psycopg.Connection) -> list[Check]:
    """The customers' admins (admin_scopes, migration 0207) against the roles they name: a
    scope counts only for a login in maildomainadmin that is neither in mailadmin nor a
    superuser (is_scoped_admin()). Each mismatch with the command that resolves it: a
    missing role (one created later under that name would get the scope), one outside
    maildomainadmin (it may call nothing), one in mailadmin or a superuser (it manages
    every domain: its scope confines nothing)."""
    if conn.execute("SELECT to_regclass('public.admin_scopes')").fetchone()[0] is None:
        return []
    # the table itself for the DBA (a broken catalogue cannot hide it); domain_admins() for the help desk
    source = next((s for s, privilege in (("public.admin_scopes", "has_table_privilege('public.admin_scopes', 'SELECT')"),
                                          ("public.domain_admins()",
                                           "has_function_privilege('public.domain_admins()', 'EXECUTE')"))
                   if conn.execute(f"SELECT {privilege}").fetchone()[0]), None)
    if source is None:
        return [("domain admins", "warn", "only a superuser or a member of mailadmin or mailowner may list them")]
    try:
        with conn.transaction():
            rows = conn.execute(f"""SELECT s.admin, s.n, r.oid IS NOT NULL, r.rolsuper,
                                           pg_catalog.pg_has_role(r.oid, 'maildomainadmin', 'MEMBER'),
                                           pg_catalog.pg_has_role(r.oid, 'mailadmin', 'MEMBER'),
                                           pg_catalog.quote_ident(s.admin)
                                      FROM (SELECT d.admin, count(*) AS n FROM {source} d GROUP BY d.admin) s
                                      LEFT JOIN pg_catalog.pg_roles r ON r.rolname = s.admin
                                     ORDER BY 1""").fetchall()
    except psycopg.Error as exc:  # e.g. a catalogue so broken that the API cannot run: said there
        return [("domain admins", "warn", f"could not list them: {exc.diag.message_primary or exc}")]
    found: list[Check] = []
    for name, n, exists, superuser, scoped, global_, role in rows:
        remove = f"mailbook admin remove {shlex.quote(name)}"
        if not exists:
            found.append(("domain admins", "fail", f"{name} manages {n} domain(s) but no such role exists: a role"
                                                   f" created under that name would manage them at once; run: {remove}"))
        elif superuser:
            found.append(("domain admins", "fail", f"{name} manages {n} domain(s) but is a superuser, so it manages"
                                                   f" everything: run ALTER ROLE {role} NOSUPERUSER, or {remove}"))
        elif global_:
            found.append(("domain admins", "fail", f"{name} manages {n} domain(s) but is a member of mailadmin"
                                                   " (directly or through another role), so its scope confines"
                                                   f" nothing: run REVOKE mailadmin FROM {role}, or {remove}"))
        elif not scoped:
            found.append(("domain admins", "warn", f"{name} manages {n} domain(s) but is not a member of"
                                                   f" maildomainadmin, so it may call nothing: run GRANT"
                                                   f" maildomainadmin TO {role}, or {remove}"))
    return found or [("domain admins", "pass", f"{len(rows)} customer admin(s), each a login in maildomainadmin"
                                               " and neither in mailadmin nor a superuser")]


EXPECTED = "catalogue.expected"
EXPECTED_HEADER = """\
# What a freshly migrated mail database's catalogue holds, one fact a line, each with the
# statement that restores it ({database}: the database's name). `mailbook doctor` compares a live
# database with this exactly. Written, whole, by: mailbook privileges --facts --dsn 'dbname=mail'
# > sql/catalogue.expected (on a freshly migrated database), or by the test that checks it:
# MAILBOOK_WRITE_EXPECTED=1 .venv/bin/python -m pytest -q tests/test_doctor.py -k expected_catalogue
"""


def facts(conn: psycopg.Connection) -> list[tuple[str, str, str, str | None]]:
    """(fact, revert, restore, extension) for the live catalogue: sql/catalogue.sql."""
    return [tuple(row) for row in conn.execute((data_dir("sql") / "catalogue.sql").read_text())]


def expected_text(conn: psycopg.Connection) -> str:
    """sql/catalogue.expected as this database's catalogue would have it."""
    return EXPECTED_HEADER + "".join(f"{fact}\t{restore}\n" for fact, _, restore, _ in facts(conn))


def expected_facts() -> dict[str, str]:
    """fact -> restore, as a freshly migrated database has them (sql/catalogue.expected)."""
    lines = (data_dir("sql") / EXPECTED).read_text().splitlines()
    return dict(line.split("\t", 1) for line in lines if line and not line.startswith("#"))


def catalogue_checks(conn: psycopg.Connection, owner_members: tuple[str, ...] = ()) -> list[Check]:
    """The live catalogue against the expected one, exactly: every owner, privilege
    (database, schema, table, column, sequence, function, default), role attribute and
    membership, SECURITY DEFINER setting and extension. Each difference fails, with the
    statement that reverts it."""
    pending = _pending(conn)
    if pending is None:
        return [("catalogue", "warn", "compared with the expected one only by a role that may read the migration"
                                      " log: run doctor as a superuser or a member of mailowner")]
    if pending.ids:
        return [("catalogue", "warn", "compared with the expected one only when every migration is applied:"
                                      " run mailbook migrate apply")]
    database = conn.execute("SELECT quote_ident(current_database())").fetchone()[0]
    live = {fact: (revert, extension) for fact, revert, _, extension in facts(conn)}
    expected = expected_facts()
    # an unexpected extension is one fact: DROP EXTENSION takes its objects and their privileges
    extensions = {f.split(" ")[1]: f for f in set(live) - set(expected) if f.startswith("extension ")}
    folded = {ext: sum(1 for f in set(live) - set(expected) if live[f][1] == ext) for ext in extensions}
    allowed = {f"{conn.execute('SELECT quote_ident(%s)', (m,)).fetchone()[0]} is a member of mailowner"
               for m in owner_members}
    owned = {_owned(f) for f in expected if f.startswith("owner of ")}
    found: list[Check] = []
    # in an order that lets the reverts run one after the other: what is taken from an
    # object before the object, and what lies in a schema before the schema
    for fact in sorted(set(live) - set(expected) - allowed, key=lambda f: (_drop_rank(live[f][0]), f)):
        if fact.startswith("owner of ") and _owned(fact) in owned:
            continue  # another owner than expected: the missing fact below says how to restore it
        if live[fact][1] in extensions:
            continue
        hint = ""
        if fact.startswith("extension ") and folded.get(fact.split(" ")[1]):
            hint = f" (and {folded[fact.split(' ')[1]]} facts about its objects)"
        if fact.endswith(" is a member of mailowner"):  # migrations.py suggests it for a migration account
            hint = f" (a migration account? then say so: --owner-member {fact.split(' is a member')[0]})"
        found.append(("catalogue", "fail",
                      f"unexpected: {fact}{hint}; revert: {live[fact][0].replace('{database}', database)}"))
    for fact in sorted(set(expected) - set(live)):
        found.append(("catalogue", "fail", f"missing: {fact}; restore: {expected[fact].replace('{database}', database)}"))
    return found or [("catalogue", "pass", f"{len(live)} facts exactly as migrated: owners, privileges, role "
                                           "attributes and memberships, SECURITY DEFINER settings, extensions")]


DROP_ORDER = ("DROP VIEW", "DROP MATERIALIZED VIEW", "DROP FOREIGN TABLE", "DROP TABLE", "DROP SEQUENCE",
              "DROP PROCEDURE", "DROP FUNCTION", "DROP EXTENSION", "DROP SCHEMA")


def _drop_rank(revert: str) -> int:
    """0 for a REVOKE or ALTER; then views before the tables they read, tables before
    their sequences and the functions their triggers call, extensions, schemas last."""
    return next((i + 1 for i, word in enumerate(DROP_ORDER) if revert.startswith(word + " ")), 0)


def _owned(fact: str) -> str:
    """'owner of table public.users: mailowner' -> 'table public.users'."""
    return fact[len("owner of "):].rsplit(": ", 1)[0]


def verifier_checks(conn: psycopg.Connection) -> list[Check]:
    """How the service roles' passwords are stored: SCRAM (or none yet), never md5."""
    try:
        with conn.transaction():
            rows = conn.execute("SELECT rolname, rolpassword FROM pg_catalog.pg_authid"
                                " WHERE rolname IN ('mailreader', 'mailauth', 'mailquota', 'mailwebmail', 'maildkim')"
                                " ORDER BY 1").fetchall()
    except psycopg.errors.InsufficientPrivilege:
        return [("role passwords", "warn", "only a superuser may read how passwords are stored: run doctor as one")]
    found: list[Check] = []
    for role, stored in rows:
        if stored is not None and not stored.startswith("SCRAM-SHA-256$"):
            kind = "an md5 hash" if stored.startswith("md5") else "a plaintext"
            found.append(("role passwords", "fail", f"{role}'s password is stored as {kind}: set it again with"
                                                    f" `mailbook role password {role} --generate FILE`"))
    return found or [("role passwords", "pass",
                      "mailreader, mailauth, mailquota, mailwebmail and maildkim: SCRAM-SHA-256 or not set")]


def stored_row_checks(conn: psycopg.Connection) -> list[Check]:
    """Rows older than today's rules: nested maildirs (0026), hashes out of bounds (0027),
    format characters in realnames (0029); and {CRAM-MD5} hashes (0040) as a warning.
    Reported, never rewritten."""
    if conn.execute("SELECT to_regclass('public.nested_maildirs')").fetchone()[0] is None:
        return []
    if not conn.execute("SELECT has_table_privilege('public.users', 'SELECT')").fetchone()[0]:
        return [("stored mailboxes", "warn", "only a superuser or a member of mailowner may read the password hashes")]
    found: list[Check] = []
    nested = conn.execute("SELECT inner_maildir, inner_email, outer_maildir, outer_email FROM public.nested_maildirs"
                          " ORDER BY 3, 1").fetchall()
    for inner, inner_email, outer, outer_email in nested[:20]:
        found.append(("nested maildirs", "fail", f"{inner} of {inner_email} lies inside {outer} of {outer_email}:"
                                                 " give one a directory of its own (UPDATE users SET maildir = ...)"))
    if len(nested) > 20:
        found.append(("nested maildirs", "fail", f"and {len(nested) - 20} more pair(s): SELECT * FROM nested_maildirs"))
    bad = conn.execute("""SELECT x.email, x.problem
                            FROM (SELECT u.email, coalesce(public.password_hash_error(u.password),
                                                           public.realname_error(u.realname)) AS problem
                                    FROM public.users u) x
                           WHERE x.problem IS NOT NULL
                           ORDER BY 1""").fetchall()
    for email, problem in bad[:20]:
        found.append(("stored mailboxes", "fail", f"{email}: {problem}"))
    if len(bad) > 20:
        found.append(("stored mailboxes", "fail", f"and {len(bad) - 20} more mailbox(es) today's rules refuse"))
    # accepted since 0040 so that vmm's users keep their passwords, but unsalted and cheap
    weak = conn.execute("SELECT count(*), min(u.email) FROM public.users u"
                        " WHERE left(u.password, 10) = '{CRAM-MD5}'").fetchone()
    if weak[0]:
        found.append(("weak password hashes", "warn",
                      f"{weak[0]} mailbox(es), e.g. {weak[1]}, keep an unsalted {{CRAM-MD5}} hash (moved in from vmm):"
                      " ask their users for new passwords (mailbook mailbox passwd)"))
    # MD5-CRYPT from PostfixAdmin or vmm: salted, but cheap; Dovecot 2.4 takes it only with
    # auth_allow_weak_schemes, which `mailbook dovecot install` sets for these
    md5 = conn.execute("SELECT count(*), min(u.email) FROM public.users u"
                       " WHERE u.password LIKE '{MD5-CRYPT}%' OR u.password LIKE '{CRYPT}$1$%'"
                       " OR u.password LIKE '$1$%'").fetchone()
    if md5[0]:
        found.append(("weak password hashes", "warn",
                      f"{md5[0]} mailbox(es), e.g. {md5[1]}, keep an MD5-CRYPT hash (moved in): a password change"
                      " replaces it with BLF-CRYPT (mailbook mailbox passwd, or the user in webmail)"))
    if not any(status == "fail" for _, status, _ in found):
        found.append(("stored mailboxes", "pass", "no nested maildirs; every hash and realname meets today's rules"))
    return found + stored_address_checks(conn)


def stored_address_checks(conn: psycopg.Connection) -> list[Check]:
    """Addresses stored before today's address_error() (0201: none may start with "#",
    which postmap reads as a comment, so `maps compile`/`follow` refuse to run while one
    is stored). Reported, never rewritten: the caller has read users (stored_row_checks)."""
    bad = conn.execute("""SELECT x.what, x.address, x.problem
                            FROM (SELECT 'mailbox' AS what, u.email AS address, public.address_error(u.email) AS problem
                                    FROM public.users u
                                  UNION ALL
                                  SELECT 'alias', a.alias, public.alias_error(a.alias) FROM public.aliases a
                                  UNION ALL
                                  SELECT 'alias destination', a.email, public.address_error(a.email) FROM public.aliases a
                                  UNION ALL
                                  SELECT 'send-as address', s.address, public.address_error(s.address)
                                    FROM public.send_as s) x
                           WHERE x.problem IS NOT NULL
                           ORDER BY 2, 1""").fetchall()
    found: list[Check] = [("stored addresses", "fail", f"{what} {address}: {problem}; give it another"
                                                      " address (UPDATE ... SET) or remove it")
                          for what, address, problem in bad[:20]]
    if len(bad) > 20:
        found.append(("stored addresses", "fail", f"and {len(bad) - 20} more address(es) today's rules refuse"))
    return found or [("stored addresses", "pass", "every mailbox, alias and send-as address meets today's rules")]


def _share(share) -> str:
    """A share of a quota as a percentage, capped: a counter far beyond its quota (a
    lowered quota, or a forged write before 0203 bounded the counters) reads as "more
    than 1000%", not as a 15-digit number."""
    return f"{share:.0%}" if share <= 10 else "more than 1000%"


def usage_checks(conn: psycopg.Connection) -> list[Check]:
    """Mailboxes at 90 % or more of their quota (bytes or messages), from the usage
    Dovecot writes (quota_usage, 0060): a warning each, so they are seen before the
    quota-status check starts refusing their mail."""
    if conn.execute("SELECT to_regclass('public.quota_usage')").fetchone()[0] is None:
        return []
    full = conn.execute("""SELECT email, used_bytes, quota_bytes, used_messages, quota_messages,
                                  greatest(used_bytes::numeric / quota_bytes, used_messages::numeric / quota_messages) AS share
                             FROM public.mailboxes
                            WHERE used_bytes >= 0.9 * quota_bytes OR used_messages >= 0.9 * quota_messages
                            ORDER BY share DESC, email""").fetchall()
    found: list[Check] = []
    for email, used, limit, used_messages, limit_messages, share in full[:20]:
        parts = [f"{used:,} of {limit:,} bytes" if limit else "",
                 f"{used_messages:,} of {limit_messages:,} messages" if limit_messages else ""]
        found.append(("mailbox usage", "warn", f"{email} uses {_share(share)} of its quota ({'; '.join(p for p in parts if p)}):"
                                               " raise it (mailbook mailbox quota) or ask the user to clean up"))
    if len(full) > 20:
        found.append(("mailbox usage", "warn", f"and {len(full) - 20} more mailbox(es) at 90 % or more"))
    measured = conn.execute("SELECT count(*) FROM public.quota_usage").fetchone()[0]
    return found or [("mailbox usage", "pass", f"no mailbox at 90 % of its quota ({measured} measured by Dovecot)")]


def hba_checks(conn: psycopg.Connection) -> list[Check]:
    """pg_hba.conf as the server reads it: errors, trust, ident or cleartext over the
    network, trust for more than superusers on the socket, a superuser (or `all`)
    reachable from beyond loopback (netmask counted), md5, and lines letting any role into
    any database from beyond loopback."""
    try:
        with conn.transaction():
            rules = conn.execute("SELECT line_number, type, database, user_name, address, netmask, auth_method,"
                                 " error FROM pg_catalog.pg_hba_file_rules ORDER BY line_number").fetchall()
    except psycopg.errors.InsufficientPrivilege:
        return [("pg_hba.conf", "warn", "only a superuser may read pg_hba_file_rules: run doctor as one")]
    supers = {r for (r,) in conn.execute("SELECT rolname FROM pg_catalog.pg_roles WHERE rolsuper")}
    found: list[Check] = []
    for line, kind, databases, users, address, netmask, method, error in rules:
        where = f"line {line}"
        address = _network(address, netmask)
        superusers = "all" in users or bool(supers & set(users))
        if error:
            found.append(("pg_hba.conf", "fail", f"{where}: {error}"))
        elif method in ("trust", "password") and kind != "local":
            found.append(("pg_hba.conf", "fail", f"{where}: {method} over the network ({address})"))
        elif method == "password":
            found.append(("pg_hba.conf", "fail", f"{where}: password sends it in clear text; use scram-sha-256"))
        elif method == "ident" and kind != "local" and not _loopback(address):
            found.append(("pg_hba.conf", "fail", f"{where}: ident from {address} believes whatever identd the client"
                                                 " host runs, as good as trust; use scram-sha-256"))
        elif method == "trust" and not set(users) <= supers:
            found.append(("pg_hba.conf", "fail", f"{where}: trust on the local socket lets any local user in as"
                                                 f" {','.join(users)}, help-desk and service roles included; use"
                                                 " peer or scram-sha-256"))
        elif kind != "local" and superusers and not _loopback(address):
            found.append(("pg_hba.conf", "fail", f"{where}: a superuser ({','.join(users)}) may log in from {address};"
                                                 " let superusers in over the local socket only"))
        elif method == "md5":
            found.append(("pg_hba.conf", "warn", f"{where}: md5; use scram-sha-256"))
        elif method == "trust":
            found.append(("pg_hba.conf", "warn", f"{where}: trust on the local socket for {','.join(users)}"))
        elif kind != "local" and databases == ["all"] and users == ["all"] and not _loopback(address):
            found.append(("pg_hba.conf", "warn", f"{where}: any role into any database from {address}"))
    return found or [("pg_hba.conf", "pass", f"{len(rules)} line(s): no trust, cleartext or md5 over the network")]


def _network(address: str | None, netmask: str | None) -> str | None:
    """'127.0.0.1' with netmask '0.0.0.0' -> '127.0.0.0/0': the rule's reach, not its first address."""
    try:
        prefix = bin(int(ipaddress.ip_address(netmask))).count("1")
        return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
    except ValueError:
        return address  # a host name, samehost, samenet, all; or no address (local)


def _loopback(address: str | None) -> bool:
    if address == "samehost":  # the server's own addresses: connections from this host
        return True
    try:
        net = ipaddress.ip_network(address)
    except (ValueError, TypeError):
        return False  # a host name, samehost, samenet, all
    return net.network_address.is_loopback and net.broadcast_address.is_loopback


def _pending(conn: psycopg.Connection) -> mig.Pending | None:
    """What `migrate apply` would run; None if this role may not read the log (a help-desk login)."""
    try:
        with conn.transaction():
            return mig.pending(conn)
    except psycopg.errors.InsufficientPrivilege:
        return None


def migration_checks(conn: psycopg.Connection) -> list[Check]:
    pending = _pending(conn)
    if pending is None:
        return [("migrations", "warn", "only a superuser or a member of mailowner may read which are applied")]
    return [version_check(conn)] + _pending_check(pending)


def version_check(conn: psycopg.Connection) -> Check:
    """The package's version and the schema's; a warning when the database is newer."""
    v = mig.schema_version(conn)
    said = f"mailbook {__version__}, schema at {v.latest or 'nothing applied'}"
    if v.unknown:
        return ("version", "warn", f"{said}; the database has {len(v.unknown)} migration(s) this mailbook does not"
                                   f" know ({v.unknown[-1]} …): it is newer, upgrade mailbook before using it")
    return ("version", "pass", said)


def _pending_check(pending: mig.Pending) -> list[Check]:
    if pending.old_chain:
        steps = f", {len(pending.ids)} step(s) pending ({pending.ids[0]} …)" if pending.ids else ""
        return [("migrations", "warn", f"built by the pre-1.0 migrations{steps}: run mailbook migrate apply"
                                       " to move it onto the 1.0 baseline (its objects do not change)")]
    if pending.ids:
        return [("migrations", "warn", f"{len(pending.ids)} pending ({pending.ids[0]} …): run mailbook migrate apply")]
    return [("migrations", "pass", "all applied")]


def map_file_checks(dest: Path, config_dir: Path | None) -> list[Check]:
    """Each installed map: not readable by others (it holds a password), group postfix
    (virtual(8) must read it), owned by root; and whether it answers a lookup."""
    try:
        postfix_gid = grp.getgrnam("postfix").gr_gid
    except KeyError:
        postfix_gid = None
    answers = {m.name: (ok, answer) for m, _key, answer, ok in check_maps("doctor-probe@invalid.example", dest, config_dir)}
    found: list[Check] = []
    for m in map_files():
        name, path = f"map {m.name}", dest / m.name
        if not path.exists():
            found.append((name, "fail", f"not installed in {dest}: mailbook maps install"))
            continue
        st = path.stat()
        mode = stat.S_IMODE(st.st_mode)
        problems = []
        if mode & 0o007:
            problems.append(("fail", f"mode {mode:04o}: others may read its password; chmod 0640"))
        elif postfix_gid is not None and st.st_gid != postfix_gid:
            problems.append(("warn", "not group postfix: Postfix's daemons may not read it"))
        elif st.st_uid != 0 and os.geteuid() == 0:
            problems.append(("warn", "not owned by root"))
        ok, answer = answers[m.name]
        if not ok and "permission denied for table" in answer:
            # the tutorial's map files, or any that SELECT from the tables: mailreader
            # reads no table since 1.0, only the lookup functions mailbook's files call
            problems.append(("fail", "reads tables mailreader may not read (the tutorial's or a pre-1.0 map"
                                     f" file): mailbook maps install --dest {dest}"))
        elif not ok:
            problems.append(("fail", f"postmap -q fails: {answer}"))
        found += [(name, status, detail) for status, detail in problems] or [(name, "pass", "0640-safe and answers")]
    return found


def compiled_lag_checks(conn: psycopg.Connection, dest: Path, max_lag: float) -> list[Check]:
    """How far the compiled tables in dest are behind the database: the committed
    transactions that changed map keys since the snapshot dest/compiled.json names
    (written by `maps compile` and after every batch of `maps follow`), and how old the
    oldest of them is. Fails past max_lag seconds, or when pruning has made the snapshot
    too old to follow."""
    state = read_state(dest)
    if not state or "snapshot" not in state:
        return [("compiled maps", "fail", f"{dest / STATE_FILE} is missing or names no snapshot:"
                                          f" run `mailbook maps compile --dest {dest}` (or `maps follow`)")]
    if conn.execute("SELECT to_regprocedure('public.compiled_map_lag(pg_snapshot)')").fetchone()[0] is None:
        return [("compiled maps", "warn", "this database records no map changes yet: `mailbook migrate apply`")]
    behind, oldest, age, pruned = conn.execute(
        "SELECT l.transactions, l.oldest, extract(epoch FROM now() - l.oldest), l.pruned"
        "  FROM public.compiled_map_lag(%s::pg_snapshot) l", (state["snapshot"],)).fetchone()
    since = state.get("followed_at") or state.get("compiled_at")
    if pruned:
        return [("compiled maps", "fail", f"{dest} applied snapshot {state['snapshot']} ({since}), older than the"
                                          " change records kept (maps prune): `maps follow` will compile in full;"
                                          " is it running?")]
    if not behind:
        return [("compiled maps", "pass", f"{dest} is current (snapshot {state['snapshot']}, written {since})")]
    detail = (f"{dest} is {behind} transaction(s) behind; the oldest change not in it is {float(age):.1f} s old"
              f" ({oldest:%Y-%m-%d %H:%M:%S %Z})")
    if float(age) > max_lag:
        return [("compiled maps", "fail", f"{detail}, more than {max_lag:g} s: is `mailbook maps follow` running?")]
    return [("compiled maps", "pass", detail)]
