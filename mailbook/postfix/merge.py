"""`mailbook maps postconf`: mailbook's main.cf settings merged with what main.cf already
says, so that wiring the maps leaves the rest of the server working (issue 31).

Three parameters are shared with the rest of the server and are merged, never replaced:
mydestination keeps the host's own names (local mail to root, cron, upgrades) and loses
only hosted domains; smtpd_recipient_restrictions keeps the admin's checks and gains
mailbook's; smtpd_relay_restrictions is left alone when it already refuses relaying.
Every other setting is mailbook's own and is set, saying what it was. The submission
services go into master.cf the same way: added whole if missing, else mailbook's options
set and the admin's others kept; the certificate stays main.cf's unless one is given.
The result is a shell script: `postconf -e`/`-M`/`-P` lines, each value quoted, and `#`
lines saying why.
"""

from __future__ import annotations

import grp
import pwd
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mailbook import Failure
from mailbook.postfix.postconf import PostfixConfig, Service, postmap_query

MERGED = ("mydestination", "smtpd_recipient_restrictions", "smtpd_relay_restrictions")
# restrictions that take one argument (a table, a policy server, a DNS list)
_TAKES_ARGUMENT = re.compile(r"^(check_(?!relay_domains$)\w+|reject_rbl_client|reject_rhsbl_\w+|"
                             r"permit_dnswl_client|permit_rhswl_client)$")
# what mailbook puts into smtpd_recipient_restrictions in one mode and must take out in another
_MAILBOOK_OWNED = re.compile(r"^(check_policy_service unix:private/quota-status|"
                             r"check_recipient_access \S+/refused-recipients)$")
# past these, a hosted recipient is accepted: mailbook's checks go before the first of them
_ACCEPTS_HOSTED = {"permit", "reject", "defer", "permit_auth_destination"}
_REFUSES_RELAY = {"reject_unauth_destination", "defer_unauth_destination"}


def vmail_ids(user: str, group: str) -> tuple[int, int]:
    """The uid of user and the gid of group, the owner of the mail (virtual(8) delivers as it)."""
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        raise Failure(f"no user {user!r} on this machine: create it (adduser --system --group --home /home/mail"
                      f" {user}) or give --vmail-user") from None
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise Failure(f"no group {group!r} on this machine: create it (addgroup --system {group})"
                      " or give --vmail-group") from None
    return uid, gid


class MainCf(PostfixConfig):
    """main.cf as Postfix reads it (PostfixConfig), and whether its domains are hosted."""

    def hosted(self, domain: str, table: str) -> bool | None:
        """Whether table (virtual_mailbox_domains) finds domain; None if it cannot be asked."""
        ok, answer = postmap_query(domain, table.removeprefix("proxy:"), self.config_dir)
        return answer is not None if ok else None


def restriction_items(value: str) -> list[str]:
    """A restriction list as items, an argument kept with its restriction
    ("check_policy_service unix:private/x"), a {...} group as one word."""
    words = re.findall(r"\{[^}]*\}|[^\s,{}]+", value)
    items: list[str] = []
    for word in words:
        if items and _TAKES_ARGUMENT.match(items[-1]):
            items[-1] += f" {word}"
        else:
            items.append(word)
    return items


@dataclass
class Change:
    name: str
    value: str | None          # None: left as it is
    why: list[str] = field(default_factory=list)


def merge_mydestination(current: str, wanted: str, main_cf: MainCf, domains_table: str) -> Change:
    """Keep what is there and the host's own names; drop a hosted domain (it must be a
    virtual mailbox domain only: Postfix would deliver its mail with local(8))."""
    items, why = restriction_items(current), []
    kept: list[str] = []
    unknown: list[str] = []
    for item in items:
        if ":" in item or "/" in item:  # a table of names, not a name
            kept.append(item)
            continue
        name = main_cf.expand(item).lower()
        hosted = main_cf.hosted(name, domains_table)
        if hosted:
            why.append(f"drops {item}: {name} is a hosted (virtual mailbox) domain, and a domain must not be in both")
            continue
        if hosted is None:
            unknown.append(name)
        kept.append(item)
    if unknown:
        why.append(f"could not ask {domains_table} whether {', '.join(unknown)} are hosted (maps installed?"
                   " `mailbook maps check`); kept")
    for local in restriction_items(wanted):
        if local not in kept and main_cf.hosted(main_cf.expand(local).lower(), domains_table) is not True:
            kept.append(local)
            why.append(f"adds {local}: local delivery for the host itself (mail to root, cron, upgrades)")
    if kept == items:
        return Change("mydestination", None, why + [f"kept as it is ({current or 'empty'})"
                                                       + ("" if unknown else ": the host's own names, no hosted domain")])
    return Change("mydestination", ", ".join(kept), why)


def merge_recipient_restrictions(current: str, wanted: str) -> Change:
    """The admin's checks stay in their order; mailbook's go where the first earlier
    mailbook check was, else before the first item that accepts a hosted recipient
    (permit_auth_destination, a final permit/reject), else last. A mailbook check of
    another mode (quota-status with virtual(8), a compiled table's refusals) goes."""
    items, ours = restriction_items(current), restriction_items(wanted)
    why = []
    at = next((i for i, item in enumerate(items) if item in ours or _MAILBOOK_OWNED.match(item)), None)
    if at is None:
        at = next((i for i, item in enumerate(items) if item in _ACCEPTS_HOSTED), len(items))
    before = [item for item in items[:at] if item not in ours and not _MAILBOOK_OWNED.match(item)]
    after = [item for item in items[at:] if item not in ours and not _MAILBOOK_OWNED.match(item)]
    gone = [item for item in items if _MAILBOOK_OWNED.match(item) and item not in ours]
    merged = before + ours + after
    if merged == items:
        return Change("smtpd_recipient_restrictions", None, ["kept as it is: it has mailbook's checks"])
    others = before + after
    if others:
        why.append(f"keeps {', '.join(others)}")
    added = [item for item in ours if item not in items]
    if added:
        quota = any("quota-status" in item for item in added)
        why.append(f"adds {', '.join(added)}" + (f" after {before[-1]}" if before else " first")
                   + ": unknown users refused at RCPT (550, no bounce)"
                   + ("; a full mailbox refused at RCPT (552) by Dovecot's quota-status" if quota else ""))
    if gone:
        why.append(f"drops {', '.join(gone)}: not part of this delivery mode")
    return Change("smtpd_recipient_restrictions", ", ".join(merged), why)


def merge_relay_restrictions(current: str, wanted: str, recipient: list[str]) -> Change:
    """Leave a list that already refuses relaying; else add reject_unauth_destination."""
    items = restriction_items(current)
    refusing = [item for item in items if item in _REFUSES_RELAY]
    if refusing:
        return Change("smtpd_relay_restrictions", None, [f"kept as it is: it already refuses relaying ({refusing[0]})"])
    if not items:
        if any(item in _REFUSES_RELAY for item in recipient):
            return Change("smtpd_relay_restrictions", None,
                          ["kept empty: smtpd_recipient_restrictions refuses relaying"])
        return Change("smtpd_relay_restrictions", wanted, ["sets it: nothing refused relaying to other domains"])
    at = len(items) - 1 if items[-1] in ("permit", "reject", "defer") else len(items)
    merged = items[:at] + ["reject_unauth_destination"] + items[at:]
    return Change("smtpd_relay_restrictions", ", ".join(merged),
                  [f"keeps {', '.join(items)}; adds reject_unauth_destination: nothing refused relaying"])


def merged_settings(settings: list[tuple[str, str]], main_cf: MainCf) -> list[Change]:
    """settings (mailbook's main.cf lines) as changes to main_cf: the shared parameters
    merged, the others set, each saying what it replaces."""
    names = [name for name, _ in settings]
    current = main_cf.values(names)
    explicit = main_cf.explicit(names)
    expanded = main_cf.values([n for n in names if n in MERGED and n != "mydestination"], expand=True)
    wanted = dict(settings)
    out = []
    recipient = wanted.get("smtpd_recipient_restrictions", "")
    for name, value in settings:
        raw = current[name]
        # a default written as a compatibility expression (${{$compatibility_level} ...}) is read expanded
        listed = expanded[name] if name in expanded and "${{" in raw else raw
        if name == "mydestination":
            out.append(merge_mydestination(raw, value, main_cf, wanted.get("virtual_mailbox_domains", "")))
        elif name == "smtpd_recipient_restrictions":
            change = merge_recipient_restrictions(listed, value)
            recipient = change.value if change.value is not None else listed
            out.append(change)
        elif name == "smtpd_relay_restrictions":
            out.append(merge_relay_restrictions(listed, value, restriction_items(recipient)))
        else:  # mailbook's own: set, saying what main.cf itself had there
            was = explicit.get(name, "").strip()
            out.append(Change(name, value, [f"was {was}"] if was and was != value else []))
    return out


def script(changes: list[Change], services: list[tuple[str, str, str]], config_dir: Path | None,
           header: str, master: Sequence[ServiceChange] = ()) -> list[str]:
    """The shell script: `# why` lines above each `postconf -e` line, then master.cf's
    overrides and services (`postconf -P`, `postconf -M`)."""
    postconf = PostfixConfig(config_dir).shown("postconf")
    lines = [f"# {header}"]
    for change in changes:
        lines += [f"# {change.name}: {why}" for why in change.why]
        if change.value is not None:
            lines.append(f"{postconf} -e {shlex.quote(f'{change.name} = {change.value}')}")
    for service, name, value in services:
        lines.append(f"{postconf} -P {shlex.quote(f'{service}/{name}={value}')}")
    for change in master:
        lines += [f"# {change.service}: {why}" for why in change.why]
        if change.entry is not None:
            lines.append(f"{postconf} -M {shlex.quote(f'{change.service}={change.entry}')}")
        lines += [f"{postconf} -P {shlex.quote(f'{change.service}/{name}={value}')}" for name, value in change.options]
    return lines


@dataclass
class ServiceChange:
    service: str                        # "submission/inet"
    entry: str | None                   # the master.cf line to add (postconf -M), None: it is there
    options: list[tuple[str, str]]      # "-o" overrides to set (postconf -P)
    why: list[str] = field(default_factory=list)


def merged_services(services: list[Service], main_cf: MainCf) -> list[ServiceChange]:
    """services (postconf.Service: master.cf.snippet's) as changes to master.cf: a
    missing service is added whole; an existing one gets mailbook's options, keeps its
    others, and each option that changes says what it was."""
    entries, overrides = main_cf.master()
    present = {"/".join(fields[:2]) for fields in entries if len(fields) > 1}
    out = []
    for service in services:
        if service.service not in present:
            out.append(ServiceChange(service.service, service.entry, list(service.options),
                                     [f"adds it: {service.entry}"]))
            continue
        ours = dict(service.options)
        current = overrides.get(tuple(service.service.split("/", 1)), {})
        why = []
        others = [f"{name}={value}" for name, value in current.items() if name not in ours]
        if others:
            why.append(f"keeps {', '.join(others)}")
        changed = [(name, value) for name, value in service.options if current.get(name) != value]
        for name, value in changed:
            if name in current:
                why.append(f"{name} was {current[name] or '(empty)'}, becomes {value or '(empty)'}"
                           " (mailbook's submission: TLS, Dovecot's login, sender checks)")
        if not changed:
            why.append("kept as it is: it has mailbook's options")
        elif any(name not in current for name, _ in changed):
            why.append(f"adds {', '.join(name for name, _ in changed if name not in current)}")
        out.append(ServiceChange(service.service, None, changed, why))
    return out


def tls_changes(files: tuple[str, str] | None, default: tuple[str, str], main_cf: MainCf) -> list[Change]:
    """smtpd_tls_cert_file and smtpd_tls_key_file: the files given; without, main.cf's own
    if it names any (a real certificate stays), else default (Debian's snakeoil)."""
    names = ("smtpd_tls_cert_file", "smtpd_tls_key_file")
    explicit = main_cf.explicit(list(names))
    out = []
    for name, given, fallback in zip(names, files or (None, None), default):
        was = explicit.get(name, "").strip()
        if given is None and was:
            out.append(Change(name, None, [f"kept as it is ({was}); another: --tls-cert FILE --tls-key FILE"]))
            continue
        value = given or fallback
        if was == value:
            out.append(Change(name, None, [f"kept as it is ({was})"]))
            continue
        why = [f"was {was}"] if was else []
        if not Path(value).exists():
            why.append(f"{value} does not exist (yet)" + (": apt-get install ssl-cert, or --tls-cert/--tls-key"
                                                          if given is None else ""))
        out.append(Change(name, value, why))
    return out
