"""vmm 0.7 (Debian 12's `vmm`, its create_tables.pgsql) into mailbook's rows.

What vmm means, and how it lands here:
- a domain group (domain_data, one gid) with one primary domain_name and any others:
  the primary is a hosted domain, each other name an alias domain of it. vmm's users also
  log in as user@other-name; mailbook logs them in as user@primary only (listed).
- users: local_part@primary; the hash as vmm stored it ({SCHEME}, from doveadm pw); the
  maildir relative to vmm's base_directory (domaindir/uid/Maildir/), so with
  virtual_mailbox_base = that directory the mail on disk is found; the files are owned
  by a uid per user, so the commands that give them to the vmail owner are printed.
- quota: the user's quotalimit, else the domain's (vmm's own rule, as its Dovecot query
  applies it), bytes and messages, 0 meaning none; userquota holds usage, not limits.
- services: the user's service_set, else the domain's; smtp, pop3, imap, sieve (smtp off
  also turns mailbook's `submission` off: both are sending after a login).
- alias: one row per destination, per group, so per every domain name of it: %n, %d and
  %= are expanded for the primary name (listed where an alias domain's own answer differed).
- catchall: the group's catch-all, "@primary" here.
- relocated and per-user transports: no mailbook row; listed, with the Postfix lines to keep them.
"""

from __future__ import annotations

import os
import shlex
from collections import Counter

import psycopg

from mailbook import Failure
from mailbook.importers.plan import Plan, missing_columns, unsafe_path, unwrap_hash
from mailbook.terminal import quoted

WANTED = {
    "domain_data": ["gid", "qid", "ssid", "tid", "domaindir", "note"],
    "domain_name": ["domainname", "gid", "is_primary"],
    "users": ["local_part", "passwd", "name", "uid", "gid", "mid", "qid", "ssid", "tid", "note"],
    "alias": ["gid", "address", "destination"],
    "catchall": ["gid", "destination"],
    "relocated": ["gid", "address", "destination"],
    "quotalimit": ["qid", "bytes", "messages"],
    "service_set": ["ssid", "smtp", "pop3", "imap", "sieve"],
    "transport": ["tid", "transport"],
    "maillocation": ["mid", "fid", "directory"],
    "mailboxformat": ["fid", "format"],
}
SERVICES = ("smtp", "pop3", "imap", "sieve")


def interpolate(destination: str, local: str, domain: str) -> str:
    """vmm's _interpolate_destination(): %n the local part, %d the domain, %= both."""
    return destination.replace("%n", local).replace("%d", domain).replace("%=", f"{local}={domain}")


def off(flags: tuple[bool, bool, bool, bool]) -> set[str]:
    """The mailbook services a vmm service_set turns off."""
    out = {name for name, on in zip(SERVICES, flags) if not on}
    return out | {"submission"} if "smtp" in out else out


def words(services: set[str]) -> str | None:
    order = ["imap", "pop3", "smtp", "submission", "sieve"]
    return " ".join(s for s in order if s in services) or None


def read(conn: psycopg.Connection, vmail_owner: str = "vmail:vmail") -> Plan:
    missing = missing_columns(conn, WANTED)
    if missing or conn.execute("SELECT to_regprocedure('postfix_virtual_alias_map(varchar, varchar)')").fetchone()[0] is None:
        raise Failure("this is not a vmm 0.7 database (create_tables.pgsql): no "
                      + (", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "") if missing
                         else "function postfix_virtual_alias_map(varchar, varchar)"))
    plan = Plan("vmm", "0.7")
    services = {s: (a, b, c, d) for s, a, b, c, d in conn.execute("SELECT ssid, smtp, pop3, imap, sieve FROM service_set")}
    quotas = {q: (b, m) for q, b, m in conn.execute("SELECT qid, bytes, messages FROM quotalimit")}
    transports = dict(conn.execute("SELECT tid, transport FROM transport").fetchall())
    locations = {m: (d, f) for m, d, f in conn.execute(
        "SELECT l.mid, l.directory, f.format FROM maillocation l JOIN mailboxformat f USING (fid)")}
    groups = {g: (q, s, t, dd, note) for g, q, s, t, dd, note in conn.execute(
        "SELECT gid, qid, ssid, tid, domaindir, note FROM domain_data ORDER BY gid")}
    names = conn.execute("SELECT domainname, gid, is_primary FROM domain_name ORDER BY is_primary DESC, domainname").fetchall()
    users = conn.execute("SELECT local_part, passwd, name, uid, gid, mid, qid, ssid, tid, note FROM users"
                         " ORDER BY gid, local_part").fetchall()
    aliases = conn.execute("SELECT gid, address, destination FROM alias ORDER BY gid, address, destination").fetchall()
    catchalls = conn.execute("SELECT gid, destination FROM catchall ORDER BY gid, destination").fetchall()
    relocated = conn.execute("SELECT gid, address, destination FROM relocated ORDER BY gid, address").fetchall()

    primary = {g: n for n, g, p in names if p}
    others: dict[int, list[str]] = {}
    for n, g, p in names:
        if not p:
            others.setdefault(g, []).append(n)
    # a domaindir goes into the printed chown commands and every maildir: refused unless plain
    bad_dir: set[int] = set()
    for g, (*_x, dd, _n) in groups.items():
        problem = unsafe_path("domaindir", dd) or (
            None if dd.startswith("/") else f"domaindir {quoted(dd)} is not an absolute path, as vmm writes it")
        if problem:
            bad_dir.add(g)
            if g in primary:  # a group without one is not moved (listed below)
                plan.refuse(f"domain {primary[g]}", problem)
    bases = {os.path.dirname(os.path.dirname(dd.rstrip("/"))) for g, (*_x, dd, _n) in groups.items() if g not in bad_dir}
    if len(bases) > 1:
        raise Failure(f"vmm's domains live under {len(bases)} base directories ({', '.join(sorted(bases))}):"
                      " mailbook's maildirs are relative to one virtual_mailbox_base")
    base = bases.pop() if bases else "/var/lib/vmm"
    users_of = Counter(u[4] for u in users)
    # names whose mail is delivered here: a relay domain (no users) passes its mail on, so an
    # alias into it is a remote destination, as add_alias() takes it
    hosted_names = {d for g, d in primary.items()
                    if users_of[g] or not transports[groups[g][2]].startswith(("smtp:", "relay:"))}
    alias_names = {o: primary[g] for g, os_ in others.items() if g in primary for o in os_}
    addresses = {f"{u[0]}@{primary[u[4]]}" for u in users if u[4] in primary}
    addresses |= {f"{a}@{primary[g]}" for g, a, _d in aliases if g in primary}

    domain_off: dict[int, set[str]] = {}
    for g, (_qid, ssid, tid, domaindir, note) in groups.items():
        d = primary.get(g)
        if d is None:
            plan.leave(f"domain group {g}", f"has no primary domain name ({domaindir}): not moved")
            continue
        transport = transports[tid]
        relay = transport.startswith(("smtp:", "relay:"))
        if relay and users_of[g]:
            plan.leave(f"domain {d}", f"transport {transport} with {users_of[g]} mailbox(es): mailbook relays only"
                       " domains without mailboxes; moved with transport virtual: (its mailboxes deliver here)")
            transport = "virtual:"
        elif relay:
            plan.leave(f"domain {d}", f"transport {transport} and no mailboxes: a relay domain in mailbook, which accepts"
                       " every local part and leaves refusing unknown ones to the next hop (vmm refused them here)")
        dflags = services[ssid]
        domain_off[g] = off(dflags)
        reopened = [u for u in users if u[4] == g and u[7] is not None and not domain_off[g] <= off(services[u[7]])]
        if reopened:
            plan.leave(f"services of {d}", f"{len(reopened)} of its users may use services the domain turns off"
                       f" (e.g. {reopened[0][0]}@{d}); mailbook's domain list would shut them out, so each mailbox"
                       " carries its own list and the domain none")
            domain_off[g] = set()
        if users_of[g] and g not in bad_dir:  # the mail is owned by a uid per user and the domain's gid: give it to the vmail owner
            plan.command("chown", "-R", vmail_owner, domaindir)
        values = dict(address=d, transport=transport, services_off=words(domain_off[g]))
        plan.add("domain", "relay domain" if relay and not users_of[g] else "domain", f"domain {d}", **values)
        if note:
            plan.leave(f"note of {d}", f"{note!r}: mailbook keeps no notes")
        for other in others.get(g, []):
            plan.add("domain", "alias domain", f"alias domain {other}", address=other, destination=d)
            if users_of[g]:
                plan.leave(f"logins as user@{other}", f"vmm let {d}'s users log in under every name of the domain;"
                           f" mailbook logs them in as user@{d} only (mail to user@{other} still arrives)")

    for local, passwd, name, uid, g, mid, qid, ssid, tid, note in users:
        d = primary.get(g)
        if d is None:
            continue
        address = f"{local}@{d}"
        directory, fmt = locations[mid]
        home = os.path.join(groups[g][3].rstrip("/"), str(uid))
        maildir = os.path.relpath(os.path.join(home, directory), base) + "/"
        problem = None if g in bad_dir else unsafe_path("maildir", maildir)
        if problem:
            plan.refuse(f"mailbox {address}", problem)
        if fmt != "maildir":
            plan.leave(f"mailbox {address}", f"its mail is in {fmt} format ({home}/{directory}); mailbook's Dovecot reads"
                       " maildir:~: convert it first (doveadm sync -u ... maildir:...)")
        bytes_, messages = quotas[qid if qid is not None else groups[g][0]]
        uflags = services[ssid] if ssid is not None else services[groups[g][1]]
        password_hash, plaintext = unwrap_hash(passwd)
        plan.add("mailbox", "mailbox", f"mailbox {address}", address=address, password_hash=password_hash,
                 password=plaintext, realname=name or None, maildir=maildir,
                 quota_bytes=bytes_ or None, quota_messages=messages or None,
                 services_off=words(off(uflags) - domain_off.get(g, set())))
        if tid is not None and transports[tid] != transports[groups[g][2]]:
            plan.leave(f"transport of {address}", f"{transports[tid]} for this user only: mailbook routes per domain;"
                       f" add `{address} {transports[tid]}` to a hash: transport_maps ahead of mailbook's to keep it")
        if note:
            plan.leave(f"note of {address}", f"{note!r}: mailbook keeps no notes")

    for g, local, destination in aliases:
        d = primary.get(g)
        if d is None:
            continue
        address = f"{local}@{d}"
        dest = interpolate(destination, local, d)
        dest_local, _, dest_domain = dest.rpartition("@")
        if dest_domain in alias_names:  # vmm answered it by the group: the primary's address
            dest = f"{dest_local}@{alias_names[dest_domain]}"
        if "%d" in destination or "%=" in destination:
            for other in others.get(g, []):
                plan.leave(f"alias {local}@{other} -> {destination}", f"vmm expanded it for {other}"
                           f" ({interpolate(destination, local, other)}); mailbook's alias domain reaches"
                           f" {address}, which forwards to {dest}")
        if dest.rpartition("@")[2] in hosted_names and dest not in addresses:
            plan.leave(f"alias {address} -> {dest}", f"{dest} is neither a mailbox nor an alias here (vmm accepted the"
                       " mail and bounced it later); this destination is not moved")
            continue
        plan.add("alias", "alias destination", f"alias {address} -> {dest}", address=address, destination=dest)

    for g, destination in catchalls:
        d = primary.get(g)
        if d is None:
            continue
        if "%" in destination:
            plan.leave(f"catch-all of {d} -> {destination}", "its destination depends on the unknown local part;"
                       " a mailbook catch-all forwards to fixed addresses: not moved")
            continue
        plan.add("alias", "catch-all destination", f"catch-all of {d} -> {destination}",
                 address=f"@{d}", destination=destination)

    for g, local, destination in relocated:
        d = primary.get(g)
        if d is None:
            continue
        plan.leave(f"relocated {local}@{d}", f"moved to {destination}: mailbook has no such row; put"
                   f" `{local}@{d} {destination}` in a hash: relocated_maps file"
                   + (f" (until then the catch-all of {d} takes its mail)" if any(c[0] == g for c in catchalls)
                      else " (until then mail to it is refused as unknown)"))
    if users:
        plan.commands.insert(0, f"# Postfix: virtual_mailbox_base = {base}; Dovecot: mailbook dovecot install"
                                f" --mailbox-base {shlex.quote(base)}")
        plan.leave("homes", f"vmm's home was {base}/<dir>/<gid>/<uid> with the mail in its Maildir; mailbook's home is"
                   " the maildir itself, so files kept beside it (Sieve scripts) must move into it")
    return plan
