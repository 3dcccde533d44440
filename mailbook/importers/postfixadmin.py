"""PostfixAdmin 3.3 (Debian 12's `postfixadmin`, schema version 1847, as its upgrade.php
builds it) into mailbook's rows.

What PostfixAdmin means, and how it lands here:
- domain: a hosted domain; transport smtp:/relay: makes it a relay (backup MX) domain, as
  PostfixAdmin's documented relay_domains query does; `aliases`/`mailboxes` 0 unlimited,
  -1 none, else the cap; `quota` (MB, domain total) the byte cap (MB x quota_multiplier).
- alias_domain: an alias domain of its target.
- mailbox: password hash (bare md5crypt $1$ and php_crypt $6$ get their {SCHEME}), name,
  maildir byte for byte (relative to virtual_mailbox_base, so the mail on disk is found),
  quota in bytes (PostfixAdmin stores MB x 1,024,000; 0 unlimited).
- alias: `goto` is a comma-separated list: one row per destination. A mailbox's own row
  lists the mailbox itself when mail is kept ("deliver to the local mailbox"): alone it
  is no alias; with other destinations the self-destination is kept so a copy stays;
  without it the mailbox only forwards. "@domain" is the catch-all.
"""

from __future__ import annotations

import shlex

import psycopg

from mailbook import Failure
from mailbook.importers.plan import Plan, missing_columns, unsafe_path, unwrap_hash

VERSION = 1847  # config.version that PostfixAdmin 3.3's upgrade.php leaves
QUOTA_MULTIPLIER = 1024000  # $CONF['quota_multiplier'], PostfixAdmin's default
WANTED = {
    "config": ["name", "value"],
    "domain": ["domain", "description", "aliases", "mailboxes", "maxquota", "quota", "transport", "backupmx", "active"],
    "alias_domain": ["alias_domain", "target_domain", "active"],
    "mailbox": ["username", "password", "name", "maildir", "quota", "active", "domain", "local_part"],
    "alias": ["address", "goto", "domain", "active"],
    "vacation": ["email", "subject", "active"],
    "fetchmail": ["mailbox", "src_server", "src_user", "active"],
}


def is_relay(transport: str | None) -> bool:
    return bool(transport) and (transport.startswith("smtp") or transport.startswith("relay"))


def postfix_transport(transport: str | None) -> str:
    """PostfixAdmin's transport column as a Postfix name:nexthop (`virtual` is `virtual:`)."""
    if not transport:
        return "virtual:"
    return transport if ":" in transport else transport + ":"


def cap(value: int) -> int | None:
    """PostfixAdmin's count cap: 0 unlimited, -1 disabled (none may be added)."""
    return None if value == 0 else 0 if value < 0 else value


def read(conn: psycopg.Connection, cleartext: bool = False) -> Plan:
    missing = missing_columns(conn, WANTED)
    if missing:
        raise Failure(f"this is not a PostfixAdmin 3.3 database: no {', '.join(missing[:5])}"
                      f"{' ...' if len(missing) > 5 else ''}")
    version = conn.execute("SELECT value FROM config WHERE name = 'version'").fetchone()
    if version is None or not version[0].isdigit() or int(version[0]) != VERSION:
        raise Failure(f"PostfixAdmin schema version {version[0] if version else '(none)'} is not the one this"
                      f" reads ({VERSION}, PostfixAdmin 3.3): run PostfixAdmin's upgrade.php first"
                      if version is None or not version[0].isdigit() or int(version[0]) < VERSION else
                      f"PostfixAdmin schema version {version[0]} is newer than 3.3's ({VERSION}): not read by this mailbook")
    plan = Plan("PostfixAdmin", f"3.3 (schema {version[0]})")
    domains = conn.execute("SELECT domain, description, aliases, mailboxes, maxquota, quota, transport, backupmx,"
                           " active FROM domain ORDER BY domain").fetchall()
    alias_of = {a: (t, act) for a, t, act in conn.execute("SELECT alias_domain, target_domain, active FROM alias_domain")}
    mailboxes = conn.execute("SELECT username, password, name, maildir, quota, active, domain FROM mailbox"
                             " ORDER BY username").fetchall()
    aliases = conn.execute("SELECT address, goto, domain, active FROM alias ORDER BY address").fetchall()
    vacations = {e: (s, a) for e, s, a in conn.execute("SELECT email, subject, active FROM vacation")}
    fetchmail = conn.execute("SELECT mailbox, src_server, src_user, active FROM fetchmail ORDER BY 1, 2, 3").fetchall()

    kind_of: dict[str, str] = {}  # domain -> hosted, alias, relay
    for d, _descr, _a, _m, _mq, _q, transport, _backupmx, _act in domains:
        kind_of[d] = "alias" if d in alias_of else "relay" if is_relay(transport) else "hosted"
    boxes = {m[0]: m for m in mailboxes}
    goto = {a: [g.strip() for g in dest.split(",") if g.strip()] for a, dest, _d, _act in aliases}
    alias_active = {a: act for a, _g, _d, act in aliases}
    catch_all = {a[1:] for a in goto if a.startswith("@")}
    quota_less = {m[6] for m in mailboxes if m[4] <= 0}

    # mailbook counts an alias address once, forwards of mailboxes included
    alias_addresses: dict[str, int] = {}
    for a, dests in goto.items():
        if a in boxes and dests == [a]:
            continue
        alias_addresses[a.rpartition("@")[2]] = alias_addresses.get(a.rpartition("@")[2], 0) + 1

    for d, _descr, n_aliases, n_mailboxes, maxquota, quota, transport, backupmx, active in domains:
        if d == "ALL":
            plan.leave("domain ALL", "PostfixAdmin's marker for superadmins, not a mail domain: not needed")
            continue
        if kind_of[d] == "alias":
            target, ad_active = alias_of[d]
            plan.add("domain", "alias domain", f"alias domain {d}", address=d, destination=target,
                     active=str(bool(active and ad_active)).lower())
            continue
        values = dict(address=d, transport=postfix_transport(transport), active=str(bool(active)).lower())
        if kind_of[d] == "relay":
            plan.add("domain", "relay domain", f"domain {d}", **values)
            continue
        if backupmx:
            plan.leave(f"domain {d}", f"marked backup MX, but its transport ({transport or 'none'}) delivers here"
                       " (PostfixAdmin's documented maps relay only smtp: and relay: transports); hosted as before")
        limit = cap(n_mailboxes)
        if limit is not None:
            values["max_mailboxes"] = limit
        limit = cap(n_aliases)
        if limit is not None and alias_addresses.get(d, 0) > limit:
            plan.leave(f"alias cap of {d}", f"PostfixAdmin's cap {n_aliases} does not count mailboxes' forwards;"
                       f" mailbook counts every alias address ({alias_addresses[d]} here): no cap set; set one with"
                       f" `{shlex.join(['mailbook', 'domain', 'limits', d])} --aliases N`")
        elif limit is not None:
            values["max_aliases"] = limit
        if quota > 0 and d in quota_less:
            plan.leave(f"quota cap of {d}", f"{quota} MB in all, but some of its mailboxes have no quota, which mailbook"
                       " refuses under a total cap: no cap set; give those mailboxes a quota, then"
                       f" `{shlex.join(['mailbook', 'domain', 'limits', d, '--quota-bytes', str(quota * QUOTA_MULTIPLIER)])}`")
        elif quota > 0:
            values["max_quota_bytes"] = quota * QUOTA_MULTIPLIER
        if maxquota > 0:
            plan.leave(f"maximum mailbox quota of {d}", f"{maxquota} MB per mailbox is a PostfixAdmin form rule;"
                       " mailbook has none (each mailbox's own quota is carried)")
        plan.add("domain", "domain", f"domain {d}", **values)

    for username, password, name, maildir, quota, active, d in mailboxes:
        if kind_of.get(d) != "hosted":
            plan.leave(f"mailbox {username}", f"its domain {d} is an {kind_of.get(d)} domain here, which holds no"
                       " mailboxes in mailbook; not moved (its mail stays in its maildir)")
            continue
        # judged by the target (check_hashes): a hash it refuses is listed; with --cleartext-passwords
        # ($CONF['encrypt'] = 'cleartext', stored as typed) such a value is the password itself. A hash
        # it takes stays a hash either way: the scheme is one global setting, and rows written
        # before it was switched keep theirs
        problem = unsafe_path("maildir", maildir or "")  # relative, byte for byte: checked as it will be used
        if problem:
            plan.refuse(f"mailbox {username}", problem)
        password_hash, plaintext = unwrap_hash(password)
        row = plan.add("mailbox", "mailbox", f"mailbox {username}", address=username, password_hash=password_hash,
                       password=plaintext, realname=name or None, maildir=maildir,
                       quota_bytes=quota if quota > 0 else None, active=str(bool(active)).lower())
        row.cleartext = cleartext and plaintext is None and password_hash == password
        if username not in goto and d in catch_all:
            plan.leave(f"mailbox {username}", f"has no alias row of its own, so PostfixAdmin's catch-all of {d} took its"
                       " mail; in mailbook the mailbox gets it")

    for address, dests in goto.items():
        local, _, d = address.rpartition("@")
        active = alias_active[address]
        what = f"catch-all {address}" if not local else f"alias {address}"
        if kind_of.get(d) == "alias":
            target = alias_of[d][0]
            via = goto.get(f"{local}@{target}")
            same = via is not None and sorted(via) == sorted(dests)
            plan.leave(what, f"{d} is an alias domain: mailbook keeps aliases in the target, so"
                       f" {address} now reaches {local}@{target}"
                       + (" (which forwards to the same destinations)" if same else
                          f" ({'which forwards to ' + ', '.join(via) if via else 'its mailbox, alias or catch-all, if any'})"
                          f" instead of {', '.join(dests)}"))
            continue
        if not active and d in catch_all and local:
            plan.leave(what, f"inactive: PostfixAdmin gave its mail to the catch-all of {d}; mailbook refuses it"
                       " (a catch-all never takes an existing address's mail)")
        # a vacation's auto-reply address (user#domain@vacation_domain): listed below
        dests = [g for g in dests if not (address in vacations and "#" in g.partition("@")[0])]
        if address in boxes and dests == [address]:
            continue  # the mailbox's own row: "keep the mail here", no alias
        for dest in dests:
            if dest.startswith("@"):
                plan.leave(f"{what} -> {dest}", "a domain-wide forward: mailbook aliases name addresses; to send every"
                           f" address of {d} to {dest[1:]}, remove {d} and run"
                           f" `{shlex.join(['mailbook', 'domain', 'add', d, '--alias-of', dest[1:]])}`")
                continue
            dl, _, dd = dest.rpartition("@")
            if kind_of.get(dd) == "alias":  # Postfix expands it again, through the alias domain's target
                dest, dd = f"{dl}@{alias_of[dd][0]}", alias_of[dd][0]
            if kind_of.get(dd) == "hosted" and dest not in boxes and dest not in goto:
                plan.leave(f"{what} -> {dest}", f"{dest} is neither a mailbox nor an alias here (PostfixAdmin accepted"
                           " the mail and bounced it later); this destination is not moved")
                continue
            plan.add("alias", "catch-all destination" if not local else "alias destination", f"{what} -> {dest}",
                     address=address, destination=dest, active=str(bool(active)).lower())

    for email, (subject, active) in sorted(vacations.items()):
        plan.leave(f"vacation of {email}", f"{'active' if active else 'inactive'} auto-reply ({subject!r}): mailbook has"
                   " no auto-reply of its own; set it up with Dovecot's Sieve vacation extension")
    for mailbox, server, user, active in fetchmail:
        plan.leave(f"fetchmail of {mailbox}", f"{'active' if active else 'inactive'} polling of {user}@{server}: not a"
                   " mailbook row; run fetchmail (or getmail) from cron with its own configuration")
    return plan
