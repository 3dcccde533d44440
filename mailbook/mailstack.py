"""`mailbook doctor --live`: the running Postfix and Dovecot, proven from the outside.

Read-only: it asks Postfix (`postconf`, `postmap -q`) and Dovecot (`doveconf`, `doveadm`)
for their effective configuration, talks to the LMTP and quota-status sockets as Postfix
would, and reads the database only for what Dovecot's auth cache followers and the
compiled maps have caught up with. One check a line, (check, pass|warn|fail, detail),
the detail saying what to run when it fails. It writes nothing and changes nothing: the
LMTP session ends after LHLO, the policy request asks about one recipient.

Both Dovecot releases: 2.3 names passdb/userdb blocks without a name, reads the SQL from
an args file and keeps Pigeonhole's settings in plugin { sieve = ... }; 2.4 names them
(passdb sql { query = ... }), keeps the script in sieve_script personal { active_path }.
The checks read `doveconf -n`, which both print in the same block syntax.
"""

from __future__ import annotations

import glob
import re
import shutil
import socket
import stat
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from mailbook import Failure, authcache, dkim
from mailbook.doctor import compiled_lag_checks
from mailbook.files import parse_settings
from mailbook.postfix.compiled import STATE_FILE
from mailbook.postfix.maps import map_files
from mailbook.postfix.postconf import PostfixConfig, postmap_query, program

Check = tuple[str, str, str]  # (check, pass|warn|fail, detail)

# The main.cf parameters that must name mailbook's maps (compiled.MAPS has the lmdb: names)
MAP_PARAMETERS = ("virtual_mailbox_domains", "virtual_mailbox_maps", "virtual_alias_maps", "transport_maps",
                  "relay_domains", "smtpd_sender_login_maps")
TABLE = re.compile(r"(?:proxy:)?(pgsql|lmdb|hash|cdb|mysql|ldap|sqlite|texthash|inline|static|regexp|pcre|unix)"
                   r":([^\s,]+)")
SUBMISSION_PORTS = ("submission", "submissions", "587", "465")
TIMEOUT = 10.0  # seconds for a socket or a program to answer
OPENDKIM_CONFIG = Path("/etc/opendkim.conf")  # `mailbook dkim install --config`'s default
TRAP = "~/.dovecot.sieve"  # Maildir++ takes it for a folder (home is the maildir)


def _program(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")


def _run(cmd: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    """A read-only tool, no terminal (doveadm reads a password from stdin only without one)."""
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60, start_new_session=True,
                          stdin=None if stdin is not None else subprocess.DEVNULL)


def _last_line(r: subprocess.CompletedProcess) -> str:
    lines = [line.strip() for line in (r.stderr + r.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {r.returncode}"


# -- Postfix -------------------------------------------------------------------------------

def postfix_checks(config_dir: Path | None, address: str | None, conn: psycopg.Connection | None,
                   dovecot: Dovecot | None, max_lag: float, opendkim_config: Path = OPENDKIM_CONFIG) -> list[Check]:
    pf = PostfixConfig(config_dir)
    try:
        for tool in ("postconf", "postmap"):
            program(tool)
    except Failure:
        return [("postfix", "fail", "postconf/postmap not found: apt-get install postfix postfix-pgsql")]
    r = pf.postconf("-h", "queue_directory")
    if r.returncode != 0:
        return [("postfix", "fail", f"{pf.shown('postconf')} fails: {_last_line(r)}: is --config-dir Postfix's?")]
    queue = Path(r.stdout.strip())
    found: list[Check] = []
    tables: dict[str, list[str]] = {}
    for parameter in MAP_PARAMETERS:
        check, used = _map_parameter(pf, parameter)
        found.append(check)
        tables[parameter] = used
    found += _lookup_checks(pf, tables, address)
    compiled_dirs = sorted({str(Path(t.split(":", 1)[1]).parent) for ts in tables.values() for t in ts
                            if t.startswith("lmdb:")})
    if conn is not None:
        for d in compiled_dirs:
            found += compiled_lag_checks(conn, Path(d), max_lag)
    found.append(_lmtp_check(pf, queue, dovecot))
    found += _policy_checks(pf, queue, address)
    found += _submission_checks(pf, queue, dovecot)
    if conn is not None:
        found += dkim_signer_checks(pf, queue, conn, opendkim_config)
    return found


def _mailbook_map(path: Path) -> str | None:
    """Why path is not one of mailbook's map files as installed, or None if it is."""
    shipped = {m.name: m for m in map_files()}
    if path.name not in shipped:
        return f"{path} is not one of mailbook's map files ({', '.join(sorted(shipped))})"
    try:
        text = path.read_text()
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    if parse_settings(text).get("query") != shipped[path.name].query:
        return f"{path} has another query than mailbook's {path.name}"
    return None


def _map_parameter(pf: PostfixConfig, parameter: str) -> tuple[Check, list[str]]:
    """Whether main.cf's parameter names mailbook's pgsql: file or compiled lmdb: table."""
    value = pf.value(parameter)
    tables = [f"{kind}:{where}" for kind, where in TABLE.findall(value)]
    ours, problems = [], []
    for t in tables:
        kind, where = t.split(":", 1)
        if kind == "pgsql":
            why = _mailbook_map(Path(where))
            (problems.append(why) if why else ours.append(t))
        elif kind == "lmdb" and (Path(where).parent / STATE_FILE).exists():
            ours.append(t)
    name = f"postfix {parameter}"
    fix = f"mailbook maps install; mailbook maps postconf --config-dir {pf.config_dir or '/etc/postfix'} | sh"
    if ours:
        written = [full for full in re.findall(r"\S+", value.replace(",", " ")) if any(full.endswith(o) for o in ours)]
        return (name, "pass", f"{', '.join(written)} (mailbook's)"), [w for w in written]
    detail = f"{parameter} = {value or '(empty)'} names none of mailbook's maps"
    if problems:
        detail += f" ({problems[0]})"
    return (name, "fail", f"{detail}: {fix}"), []


def _lookup_checks(pf: PostfixConfig, tables: dict[str, list[str]], address: str | None) -> list[Check]:
    """The known address, through the tables main.cf names, as Postfix looks it up."""
    if address is None:
        return [("postfix lookup", "warn", "no mailbox to look up: give --canary ADDRESS")]
    domain = address.rpartition("@")[2]
    found: list[Check] = []
    for parameter, key in (("virtual_mailbox_domains", domain), ("virtual_mailbox_maps", address)):
        for table in tables.get(parameter, []):
            ok, answer = postmap_query(key, table, pf.config_dir)
            cmd = pf.shown("postmap", "-q", key, table)
            if not ok:
                if table.startswith("proxy:"):  # proxymap says only "query error"; the table itself says why
                    direct_ok, direct = postmap_query(key, table.removeprefix("proxy:"), pf.config_dir)
                    answer = answer if direct_ok else direct
                found.append((f"postfix lookup {parameter}", "fail",
                              f"`{cmd}` fails: {answer}: is Postfix running (proxy: needs proxymap), the map"
                              " file's connection right (hosts, dbname, password: mailbook maps check)?"))
            elif not answer:
                found.append((f"postfix lookup {parameter}", "fail",
                              f"`{cmd}` finds nothing for {key}, which the database holds: does the map file"
                              " point at this database (hosts, dbname)? mailbook maps install --dest DIR"))
            else:
                found.append((f"postfix lookup {parameter}", "pass", f"{key} -> {answer} ({table})"))
    return found


def _unix_path(endpoint: str, queue: Path) -> Path | None:
    """unix:private/x (or private/x, or an absolute path) as a path; None for inet:."""
    if endpoint.startswith("inet:"):
        return None
    path = Path(endpoint.removeprefix("unix:"))
    return path if path.is_absolute() else queue / path


def _connect(endpoint: str, queue: Path) -> socket.socket:
    path = _unix_path(endpoint, queue)
    if path is not None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        s.connect(str(path))
        return s
    host, _, port = endpoint.removeprefix("inet:").rpartition(":")
    return socket.create_connection((host.strip("[]"), int(port)), timeout=TIMEOUT)


def _lmtp_check(pf: PostfixConfig, queue: Path, dovecot: Dovecot | None) -> Check:
    transport = pf.value("virtual_transport")
    if not transport.startswith("lmtp:"):
        return ("LMTP", "pass", f"virtual_transport = {transport}: Postfix delivers itself, no LMTP to ask")
    endpoint = transport.removeprefix("lmtp:")
    where = _unix_path(endpoint, queue) or endpoint
    try:
        with _connect(endpoint, queue) as s, s.makefile("rwb") as f:
            greeting = f.readline().decode(errors="replace").strip()
            f.write(b"LHLO doctor.mailbook.invalid\r\n")
            f.flush()
            reply = []
            while True:
                line = f.readline().decode(errors="replace")
                reply.append(line.strip())
                if not line or line[3:4] != "-":
                    break
            f.write(b"QUIT\r\n")
            f.flush()
    except OSError as exc:
        listener = ""
        if dovecot is not None and isinstance(where, Path) and not dovecot.listens(where, "lmtp"):
            listener = f"; Dovecot has no service lmtp unix_listener {where} either (mailbook dovecot install)"
        return ("LMTP", "fail", f"{where} does not answer ({exc.strerror or exc}): is Dovecot running"
                                f" (systemctl start dovecot; doveadm log errors){listener}")
    if not greeting.startswith("220") or not reply[-1].startswith("250"):
        return ("LMTP", "fail", f"{where} answered {greeting!r} and {reply[-1]!r} to LHLO: not Dovecot's LMTP?"
                                " (doveadm log errors)")
    return ("LMTP", "pass", f"{where} answers LHLO: {greeting}")


def _policy_checks(pf: PostfixConfig, queue: Path, address: str | None) -> list[Check]:
    restrictions = pf.value("smtpd_recipient_restrictions")
    endpoints = re.findall(r"check_policy_service\s+(?:\{\s*)?(\S+?)[,}\s]", restrictions + " ")
    if not endpoints:
        if pf.value("virtual_transport").startswith("lmtp:"):
            return [("quota-status", "warn", "smtpd_recipient_restrictions asks no policy service: over-quota mail"
                                             " is accepted and bounced later; mailbook maps postconf | sh")]
        return []
    found = []
    recipient = address or "postmaster@doctor.mailbook.invalid"
    request = ("request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
               f"client_address=127.0.0.1\nsender=doctor@mailbook.invalid\nrecipient={recipient}\nsize=0\n\n")
    for endpoint in endpoints:
        where = _unix_path(endpoint, queue) or endpoint
        try:
            with _connect(endpoint, queue) as s, s.makefile("rwb") as f:
                f.write(request.encode())
                f.flush()
                answer = f.readline().decode(errors="replace").strip()
        except OSError as exc:
            found.append(("policy service", "fail", f"{where} does not answer ({exc.strerror or exc}): is Dovecot"
                                                    " running (its service quota-status listener)?"))
            continue
        if not answer.startswith("action="):
            found.append(("policy service", "fail", f"{where} answered {answer!r}, not action=...:"
                                                    " doveadm log errors"))
        else:
            found.append(("policy service", "pass", f"{where} answers a request for {recipient}: {answer}"))
    return found


def _submission_checks(pf: PostfixConfig, queue: Path, dovecot: Dovecot | None) -> list[Check]:
    """Each inet smtpd service that is submission (by name or port) or lets clients log in."""
    hint = f"mailbook maps postconf --config-dir {pf.config_dir or '/etc/postfix'} (its submission lines)"
    found: list[Check] = []
    for service, opts in _submission_services(pf):
        def get(parameter: str, opts: dict[str, str] = opts) -> str:  # the -o override, else main.cf's
            return opts[parameter] if parameter in opts else pf.value(parameter)
        name, problems = f"submission {service}", []
        if get("smtpd_sasl_auth_enable") != "yes":
            problems.append("smtpd_sasl_auth_enable is not yes: nobody can log in to send")
        if get("smtpd_sasl_type") != "dovecot":
            problems.append(f"smtpd_sasl_type = {get('smtpd_sasl_type')}, not dovecot")
        sasl = get("smtpd_sasl_path")
        path = _unix_path(sasl, queue) if sasl else None
        if path is not None:
            if not (path.exists() and stat.S_ISSOCK(path.stat().st_mode)):
                problems.append(f"no socket at {path} (smtpd_sasl_path = {sasl}): is Dovecot running?")
            if dovecot is not None and not dovecot.listens(path, "auth"):
                problems.append(f"Dovecot has no service auth unix_listener {path} (mailbook dovecot install"
                                " writes it, mode 0660 user postfix)")
        wrapper = get("smtpd_tls_wrappermode") == "yes"
        level = get("smtpd_tls_security_level")
        if not wrapper and not (level == "encrypt" or level == "may" and get("smtpd_tls_auth_only") == "yes"):
            problems.append(f"smtpd_tls_security_level = {level or 'none'}: passwords would cross in clear"
                                " (encrypt, or smtpd_tls_wrappermode=yes on 465)")
        files = [get("smtpd_tls_cert_file"), get("smtpd_tls_key_file")]
        chain = get("smtpd_tls_chain_files")
        files = [f for f in (chain.replace(",", " ").split() if chain else files)]
        if not [f for f in files if f]:
            problems.append("no certificate (smtpd_tls_cert_file/smtpd_tls_key_file): Debian's snakeoil for a test"
                            " (apt-get install ssl-cert), a real one for production")
        for f in files:
            if f and not _readable(Path(f)):
                problems.append(f"{f} is missing or unreadable (smtpd_tls_cert_file/key_file)")
        if problems:
            found += [(name, "fail", f"{p}: {hint}") for p in problems]
        else:
            found.append((name, "pass", f"SASL through Dovecot at {path}, TLS"
                                        f" {'wrapper' if wrapper else level} with {' '.join(files)}"))
    return found or [("submission", "fail", "no submission service in master.cf (587 and 465, SASL through"
                                            f" Dovecot): {hint} | sh")]


def _submission_services(pf: PostfixConfig) -> list[tuple[str, dict[str, str]]]:
    """Each inet smtpd service that is submission (by name or port) or lets clients log in,
    with its -o overrides; none when master.cf cannot be read (_submission_checks says so)."""
    try:
        services, overrides = pf.master()
    except Failure:
        return []
    found = []
    for fields in services:
        if len(fields) < 8 or fields[1] != "inet" or fields[7] != "smtpd":
            continue
        opts = overrides.get((fields[0], "inet"), {})
        sasl = opts["smtpd_sasl_auth_enable"] if "smtpd_sasl_auth_enable" in opts else pf.value("smtpd_sasl_auth_enable")
        if fields[0].rpartition(":")[2] in SUBMISSION_PORTS or sasl == "yes":
            found.append((fields[0], opts))
    return found


def _milters(value: str) -> list[tuple[str, dict[str, str]]]:
    """A milter list (comma or space separated; `{ inet:host:port, default_action=... }`
    groups carry per-milter settings) as (endpoint, settings) pairs."""
    out: list[tuple[str, dict[str, str]]] = []
    for group, plain in re.findall(r"\{([^}]*)\}|([^\s,{}]+)", value):
        if plain:
            out.append((plain, {}))
            continue
        words = [w.strip() for w in group.split(",") if w.strip()]
        if words:
            out.append((words[0], dict(w.split("=", 1) for w in words[1:] if "=" in w)))
    return out


def _same_milter(endpoint: str, signer: str, queue: Path) -> bool:
    """Whether Postfix's milter endpoint is the signer's (unix paths relative to the queue)."""
    if endpoint.startswith("inet:") or signer.startswith("inet:"):
        return endpoint == signer
    return _unix_path(endpoint, queue) == _unix_path(signer, queue)


def _milter_answers(endpoint: str, queue: Path) -> str:
    """Negotiate options with the milter at endpoint as Postfix does first (SMFIC_OPTNEG,
    protocol version 6) and quit: its answer, or OSError/ValueError."""
    with _connect(endpoint, queue) as s:
        s.sendall(struct.pack(">IcIII", 13, b"O", 6, 0x1FF, 0x1FFFFF))
        header = _read(s, 5)
        length, command = struct.unpack(">Ic", header)
        body = _read(s, length - 1) if 1 < length < 65536 else b""
        s.sendall(struct.pack(">Ic", 1, b"Q"))
    if command != b"O" or len(body) < 12:
        raise ValueError(f"answered {command!r} to option negotiation: not a milter?")
    version, _, _ = struct.unpack(">III", body[:12])
    return f"milter protocol version {version}"


def _read(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ValueError("closed the connection during option negotiation")
        data += chunk
    return data


def dkim_signer_checks(pf: PostfixConfig, queue: Path, conn: psycopg.Connection, opendkim_config: Path) -> list[Check]:
    """With an active DKIM key in the database: Postfix passes mail from port 25, its
    submission services and sendmail (smtpd_milters, their -o overrides, non_smtpd_milters)
    through the milter OpenDKIM's configuration listens on, that socket negotiates, and
    what Postfix does when it does not (milter_default_action)."""
    name = "dkim signer"
    try:
        with conn.transaction():
            domains = [d for (d,) in conn.execute(
                "SELECT DISTINCT domain FROM public.dkim_keys_list() WHERE state = 'active' ORDER BY 1")]
    except psycopg.Error as exc:
        return [(name, "warn", f"cannot tell whether a DKIM key is active ({exc.diag.message_primary or exc}):"
                               " run doctor as a superuser or a member of mailadmin")]
    if not domains:
        return [(name, "pass", "no active DKIM key: DKIM is not in use here, mail leaves unsigned"
                               " (mailbook dkim add DOMAIN, then activate it, to sign)")]
    fix = f"mailbook dkim install --config {opendkim_config} --config-dir {pf.config_dir or '/etc/postfix'}" \
          " | grep ^postconf | sh; postfix reload"
    try:
        text = opendkim_config.read_text()
    except OSError as exc:
        return [(name, "fail", f"cannot read OpenDKIM's configuration {opendkim_config} ({exc.strerror}), so"
                               f" {len(domains)} domain(s) with an active key may leave unsigned: {fix}"
                               " (or --opendkim-config FILE)")]
    found_socket = re.search(r"^\s*Socket\s+(\S+)", text, re.M | re.I)
    try:
        signer = dkim.milter_address(found_socket[1]) if found_socket else None
    except Failure:
        signer = None
    if signer is None:
        return [(name, "fail", f"{opendkim_config} has no Socket that Postfix can name (inet:PORT@HOST or"
                               f" local:PATH): {fix}")]
    found: list[Check] = []
    default = pf.value("milter_default_action")
    contexts = [("", "smtpd_milters", pf.value("smtpd_milters"), pf.value("receive_override_options"), default),
                ("", "non_smtpd_milters", pf.value("non_smtpd_milters"), pf.value("receive_override_options"), default)]
    for service, opts in _submission_services(pf):
        if any(p in opts for p in ("smtpd_milters", "receive_override_options", "milter_default_action")):
            contexts.append((f"master.cf's {service} -o ", "smtpd_milters",
                             opts.get("smtpd_milters", pf.value("smtpd_milters")),
                             opts.get("receive_override_options", pf.value("receive_override_options")),
                             opts.get("milter_default_action", default)))
    accepting, named = [], []
    for where, parameter, value, receive, action in contexts:
        milters = [(e, settings) for e, settings in _milters(value) if _same_milter(e, signer, queue)]
        what = "mail from sendmail on this host" if parameter == "non_smtpd_milters" else "mail received by smtpd"
        if "no_milters" in receive.replace(",", " ").split():
            found.append((name, "fail", f"{where}receive_override_options = {receive} turns milters off: {what}"
                                        " leaves unsigned; remove no_milters there"))
        elif not milters:
            found.append((name, "fail", f"{where}{parameter} = {value or '(empty)'} does not name OpenDKIM's"
                                        f" {signer} ({opendkim_config}'s Socket): {what} leaves unsigned: {fix}"))
        else:
            named.append(f"{where}{parameter}")
            if milters[0][1].get("default_action", action) == "accept":
                accepting.append(f"{where}{parameter}")
    try:
        answer = _milter_answers(signer, queue)
    except (OSError, ValueError) as exc:
        where = _unix_path(signer, queue) or signer
        found.append((name, "fail", f"OpenDKIM at {where} does not answer ({getattr(exc, 'strerror', None) or exc}):"
                                    " is it running? (systemctl restart opendkim; journalctl -u opendkim);"
                                    f" meanwhile mail leaves unsigned or waits (milter_default_action = {default})"))
    else:
        wired = f"; {', '.join(named)} name it" if len(named) == len(contexts) else ""
        # accept is what `dkim install` sets (a signer down holds up no mail, inbound mail
        # included): a note, not a warning every wired stack would show; the answer above
        # is what fails when it matters
        note = (f"; milter_default_action = accept ({', '.join(accepting)}): while OpenDKIM does not answer, mail"
                " leaves unsigned (this check then fails; tempfail would hold it, inbound mail too)") if accepting else ""
        found.append((name, "pass", f"OpenDKIM at {signer} answers ({answer}){wired}; {len(domains)} domain(s)"
                                    f" have an active key{note}"))
    return found


def _readable(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.read(1)
        return True
    except OSError:
        return False


# -- Dovecot -------------------------------------------------------------------------------

@dataclass
class Block:
    header: str  # "passdb sql", "service auth", "unix_listener /path"; "" for the top
    settings: dict[str, str] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)

    def find(self, kind: str) -> list[Block]:
        """The blocks directly below whose header's first word is kind."""
        return [b for b in self.blocks if b.header.split(" ", 1)[0] == kind]

    def walk(self, path: tuple[str, ...] = ()):
        """(headers above, key, value) for every setting, depth first."""
        for key, value in self.settings.items():
            yield path, key, value
        for b in self.blocks:
            yield from b.walk((*path, b.header))


def parse_doveconf(text: str) -> Block:
    """`doveconf -n` output as blocks (both releases print the same syntax)."""
    top = Block("")
    stack = [top]
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("{"):
            b = Block(line[:-1].strip().replace('"', ""))
            stack[-1].blocks.append(b)
            stack.append(b)
        elif line == "}":
            stack.pop() if len(stack) > 1 else None
        else:
            key, _, value = line.partition("=")
            stack[-1].settings[key.strip()] = value.strip()
    return top


@dataclass
class Dovecot:
    conf: Path  # the main file doveconf reads
    config: Block
    doveconf: str
    doveadm: str

    def command(self, tool: str) -> list[str]:
        return [tool, "-c", str(self.conf)]

    def value(self, name: str) -> str:
        """One setting's effective value, defaults included (`doveconf -n` leaves them out);
        -P because 2.3 hides ssl_key's file name otherwise (only this setting is printed)."""
        r = _run([self.doveconf, "-c", str(self.conf), "-P", "-h", name])
        return r.stdout.strip() if r.returncode == 0 else ""

    def listens(self, path: Path, service: str) -> bool:
        """Whether service has a unix_listener at path (relative ones are below base_dir)."""
        base = Path(self.config.settings.get("base_dir", "/run/dovecot"))
        for s in self.config.find("service"):
            if s.header.split(" ", 1)[1:] != [service]:
                continue
            for listener in s.find("unix_listener"):
                at = Path(listener.header.split(" ", 1)[1])
                if (at if at.is_absolute() else base / at) == path:
                    return True
        return False


def load_dovecot(conf: Path | None) -> Dovecot | Check:
    doveconf, doveadm = _program("doveconf"), _program("doveadm")
    if not doveconf or not doveadm:
        return ("dovecot", "fail", "doveconf/doveadm not found: apt-get install dovecot-core")
    conf = conf or Path("/etc/dovecot/dovecot.conf")
    r = _run([doveconf, "-c", str(conf), "-n"])
    if r.returncode != 0:
        return ("dovecot", "fail", f"doveconf -c {conf} -n fails: {_last_line(r)}")
    return Dovecot(conf, parse_doveconf(r.stdout), doveconf, doveadm)


def dovecot_checks(dc: Dovecot, conn: psycopg.Connection | None, canary: str | None, password: str | None,
                   max_lag: float) -> list[Check]:
    found = _db_checks(dc)
    order, last = _include_check(dc)
    found.append(order)
    found.append(_sieve_check(dc, last))
    found.append(_tls_check(dc))
    found.append(_auth_cache_check(dc, conn, max_lag))
    if canary is not None:
        found += _canary_checks(dc, canary, password)
    return found


def _sql_queries(dc: Dovecot, db: Block) -> str:
    """The queries a passdb/userdb block runs: 2.4's inline, 2.3's from its args file."""
    text = " ".join(v for k, v in db.settings.items() if k.endswith("query"))
    args = db.settings.get("args", "")
    if db.settings.get("driver") == "sql" and args:
        try:
            text += Path(args.split()[-1]).read_text()
        except OSError as exc:
            text += f"(cannot read {args}: {exc.strerror})"
    return text


def _db_checks(dc: Dovecot) -> list[Check]:
    """mailbook's passdb and userdb, first of their kind (a PAM passdb before it is asked first)."""
    found = []
    # the SQL only mailbook's queries run: its allow-list function, its two tables
    markers = {"passdb": "dovecot_service_allowed(", "userdb": "JOIN transports t ON t.domain = u.domain"}
    for kind, marker in markers.items():
        dbs = dc.config.find(kind)
        ours = [i for i, b in enumerate(dbs) if marker in _sql_queries(dc, b)]
        fix = "mailbook dovecot install (its conf.d/99-mailbook.conf includes auth-mailbook.conf.ext)"
        if not ours:
            found.append((f"dovecot {kind}", "fail", f"no {kind} runs mailbook's query"
                          f" ({', '.join(b.header for b in dbs) or 'none at all'}): {fix}"))
        elif ours[0] > 0:
            before = ", ".join(b.header + " " + b.settings.get("driver", "") for b in dbs[:ours[0]])
            found.append((f"dovecot {kind}", "warn", f"{before.strip()} is asked before mailbook's: in"
                          " conf.d/10-auth.conf comment out !include auth-system.conf.ext"))
        else:
            found.append((f"dovecot {kind}", "pass", f"{dbs[0].header} runs mailbook's query"))
    return found


def included_files(conf: Path) -> list[tuple[Path, Path | None]]:
    """Every file Dovecot reads, in order, with the file that included it (None for conf):
    !include and !include_try, relative to the including file, globs sorted."""
    out: list[tuple[Path, Path | None]] = []

    def read(path: Path, parent: Path | None, depth: int) -> None:
        out.append((path, parent))
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            return
        for line in lines:
            m = re.match(r"\s*!include(_try)?\s+(\S+)", line)
            if not m or depth > 20:
                continue
            pattern = m.group(2).strip('"')
            pattern = pattern if pattern.startswith("/") else str(path.parent / pattern)
            for name in sorted(glob.glob(pattern)):
                read(Path(name), path, depth + 1)
    read(conf, None, 0)
    return out


def _include_check(dc: Dovecot) -> tuple[Check, list[Path]]:
    """conf.d/99-mailbook.conf read, and nothing but what it includes after it; the files after."""
    files = included_files(dc.conf)
    at = next((i for i, (p, _) in enumerate(files) if p.name == "99-mailbook.conf"), None)
    if at is None:
        return (("dovecot include order", "fail", f"no 99-mailbook.conf is read from {dc.conf}: mailbook dovecot"
                 " install --conf-d /etc/dovecot/conf.d (and !include conf.d/*.conf in dovecot.conf)"), [])
    ours = {files[at][0]}
    later = []
    for path, parent in files[at + 1:]:
        if parent in ours:
            ours.add(path)
        else:
            later.append(path)
    if later:
        return (("dovecot include order", "warn", f"{files[at][0]} is read before {', '.join(map(str, later))}:"
                 " what those set wins over mailbook's settings; move them before it or into it"), later)
    return (("dovecot include order", "pass", f"{files[at][0]} is read last"), [])


def _sieve_check(dc: Dovecot, later: list[Path]) -> Check:
    """No active Sieve script at ~/.dovecot.sieve where LMTP runs Sieve (home is the maildir)."""
    lmtp = [b for b in dc.config.find("protocol") if b.header == "protocol lmtp"]
    plugins = " ".join(v for b in lmtp for k, v in b.settings.items() if k == "mail_plugins")
    plugins += " ".join(k for b in lmtp for p in b.find("mail_plugins") for k, v in p.settings.items() if v == "yes")
    if "sieve" not in plugins:
        return ("dovecot sieve", "pass", "LMTP runs no Sieve (no sieve in protocol lmtp's mail_plugins)")
    if _is_24(dc):  # sieve_script NAME { active_path }; no personal script unless one is set
        scripts = [(b.header, b.settings.get("active_path", "")) for b in dc.config.find("sieve_script")
                   if "active_path" in b.settings]
    else:  # plugin { sieve }; unset is Pigeonhole's default, file:~/sieve;active=~/.dovecot.sieve
        scripts = [("plugin", b.settings["sieve"]) for b in dc.config.find("plugin") if "sieve" in b.settings]
        scripts = scripts or [("plugin", f"(unset: Pigeonhole's default, active={TRAP})")]
    wrong = [(where, value) for where, value in scripts if TRAP in value]
    if wrong:
        setters = [str(f) for f in later if ".dovecot.sieve" in f.read_text(errors="replace")]
        by = f", set by {', '.join(setters)} (read after mailbook's include)" if setters else ""
        return ("dovecot sieve", "fail", f"{wrong[0][0]}: {wrong[0][1]}{by}: Maildir++ takes ~/.dovecot.sieve for a"
                                         " folder and a user's filter defers mail (451 4.2.0); remove that setting,"
                                         " and read conf.d/99-mailbook.conf last")
    return ("dovecot sieve", "pass", "; ".join(f"{where}: {value}" for where, value in scripts) or "no personal script")


def _tls_check(dc: Dovecot) -> Check:
    """IMAP, POP3 and ManageSieve logins from other hosts only over TLS, with a certificate
    and key Dovecot can read (a missing file stops Dovecot's login processes at their next
    start, not at reload). Loopback clients (webmail) may log in without TLS either way."""
    v24 = _is_24(dc)
    cleartext = "auth_allow_cleartext" if v24 else "disable_plaintext_auth"
    hint = "mailbook dovecot install --tls-cert FILE --tls-key FILE (the files Postfix's submission reads)"
    # doveconf -n prints what differs from the defaults (ssl = yes; cleartext refused); 2.4's
    # doveconf -h ssl fails ("multiple settings matched": the ssl_* ones)
    settings = dc.config.settings
    ssl = settings.get("ssl", "yes").lower()
    allowed = settings.get(cleartext, "no" if v24 else "yes").lower() == ("yes" if v24 else "no")
    if ssl == "no":
        return ("dovecot tls", "fail", f"ssl = no: passwords from other hosts cross in clear; set ssl = required"
                                       f" (or yes) and {hint}")
    problems = []
    if allowed and ssl != "required":
        problems.append(f"{cleartext} = {settings[cleartext]}: a client may send its password before STARTTLS"
                        f" (the default, {'no' if v24 else 'yes'}, refuses that)")
    files = []
    for name, path in _tls_files(dc, v24):
        if not path:
            problems.append(f"{name} is not set: {hint}")
        elif not _readable(Path(path)):
            problems.append(f"{path} is missing or unreadable ({name}): {hint}")
        files.append(path)
    if problems:
        return ("dovecot tls", "fail", "; ".join(problems))
    return ("dovecot tls", "pass", f"ssl = {ssl} with {' '.join(files)}")


def _tls_files(dc: Dovecot, v24: bool) -> list[tuple[str, str]]:
    """(setting, file) of the server certificate and key. 2.4 prints them in doveconf -n as
    ssl_server { cert_file key_file } (doveconf -h answers "" for ssl_server_cert_file);
    2.3 hides ssl_key there, and "<file" means the file's contents."""
    if v24:
        block = next(iter(dc.config.find("ssl_server")), Block("ssl_server"))
        return [(f"ssl_server_{k}", block.settings.get(k) or dc.config.settings.get(f"ssl_server_{k}", ""))
                for k in ("cert_file", "key_file")]
    return [(name, dc.value(name).removeprefix("<")) for name in ("ssl_cert", "ssl_key")]


def _is_24(dc: Dovecot) -> bool:
    return "dovecot_config_version" in dc.config.settings


def _seconds(value: str) -> float | None:
    """Dovecot's time ("15 mins", "900 s", "1 hour", "0") in seconds."""
    m = re.fullmatch(r"\s*(\d+)\s*([a-z]*)\s*", value)
    if not m:
        return None
    unit = m.group(2)
    factor = 1 if unit in ("", "s", "sec", "secs", "second", "seconds") else \
        60 if unit.startswith("min") else 3600 if unit.startswith("h") else \
        86400 if unit.startswith("d") else 0.001 if unit.startswith("ms") else 1
    return int(m.group(1)) * factor


def _auth_cache_check(dc: Dovecot, conn: psycopg.Connection | None, max_lag: float) -> Check:
    settings = dc.config.settings
    size, ttl = settings.get("auth_cache_size", "0"), settings.get("auth_cache_ttl", "1 hour")
    seconds = _seconds(ttl)
    if re.fullmatch(r"0\s*[A-Za-z]*", size) or not seconds:
        return ("auth cache", "pass", f"off (auth_cache_size = {size}, auth_cache_ttl = {ttl}): a change counts"
                                      " at the next login or delivery")
    if conn is None:
        return ("auth cache", "warn", f"on, ttl {ttl}: a change waits up to {ttl} unless `mailbook dovecot"
                                      " follow` flushes it (give --dsn to check it does)")
    return _follower_check(conn, ttl, max_lag)


def _follower_check(conn: psycopg.Connection, ttl: str, max_lag: float) -> Check:
    """The `dovecot follow` sessions on this database, and the changes none has flushed."""
    if conn.execute("SELECT to_regclass('public.auth_cache_changes')").fetchone()[0] is None:
        return ("auth cache", "warn", f"on, ttl {ttl}; this database records no changes for `mailbook dovecot"
                                      " follow` yet: mailbook migrate apply")
    sessions = [name for (name,) in conn.execute(
        "SELECT application_name FROM pg_catalog.pg_stat_activity"
        " WHERE datname = current_database() AND application_name LIKE %s ORDER BY backend_start",
        (authcache.APPLICATION + "%",))]
    start = "systemctl enable --now mailbook-dovecot-follow (dovecot/mailbook-dovecot-follow.service)"
    if not sessions:
        return ("auth cache", "fail", f"on, ttl {ttl}, and no `mailbook dovecot follow` is connected to this database:"
                                      f" a password, quota or disable change waits up to {ttl}; {start}")
    behind = []
    for name in sessions:
        snap = name[len(authcache.APPLICATION):].strip()
        if not snap:
            behind.append("one follower has not finished its first flush")
            continue
        try:
            with conn.transaction():
                n, oldest = conn.execute(
                    "SELECT count(*), extract(epoch FROM now() - min(c.changed_at))::float"
                    "  FROM public.auth_cache_changes c"
                    " WHERE NOT pg_catalog.pg_visible_in_snapshot(c.xid, %s::pg_snapshot)"
                    "   AND c.changed_at < now() - make_interval(secs => %s)", (snap, max_lag)).fetchone()
        except psycopg.errors.InsufficientPrivilege:
            return ("auth cache", "warn", f"on, ttl {ttl}, {len(sessions)} follower(s) connected; only a superuser or"
                                          " a member of mailowner may read which changes they flushed")
        except psycopg.Error as exc:
            behind.append(f"a follower says {snap!r}, unreadable ({exc.sqlstate})")
            continue
        if n:
            behind.append(f"a follower has not flushed {n} change(s), the oldest {oldest:.0f} s old")
    if behind:
        return ("auth cache", "fail", f"on, ttl {ttl}: {'; '.join(behind)}: is it stuck (journalctl -u"
                                      f" mailbook-dovecot-follow; doveadm works?); a change waits up to {ttl}")
    return ("auth cache", "pass", f"on, ttl {ttl}; {len(sessions)} `mailbook dovecot follow` connected, every change"
                                  f" older than {max_lag:g} s flushed: changes count within seconds")


def _canary_checks(dc: Dovecot, address: str, password: str | None) -> list[Check]:
    found = []
    if password is not None:
        # the password on stdin (doveadm asks for it when none is given), never in argv
        r = _run(dc.command(dc.doveadm) + ["auth", "test", address], stdin=password + "\n")
        if r.returncode == 0:
            found.append(("canary auth", "pass", f"doveadm auth test {address}: logged in"))
        elif r.returncode == 77 and "auth failed" in r.stdout:  # else it reached no auth process
            found.append(("canary auth", "fail", f"doveadm auth test {address}: refused (wrong password, mailbox or"
                                                 " domain disabled, or passdb not mailbook's): doveadm log errors"))
        else:
            found.append(("canary auth", "fail", f"doveadm auth test {address} fails: {_last_line(r)}: is Dovecot"
                                                 " running?"))
    r = _run(dc.command(dc.doveadm) + ["user", address])
    fields = dict(line.split("\t", 1) for line in r.stdout.splitlines() if "\t" in line)
    if r.returncode == 0 and fields.get("home"):
        found.append(("canary user", "pass", f"doveadm user {address}: home {fields['home']}"))
    elif r.returncode == 0 or r.returncode == 67:
        found.append(("canary user", "fail", f"doveadm user {address}: unknown to the userdb (not in this database,"
                                             " or inactive): mailbook mailbox show"))
    else:
        found.append(("canary user", "fail", f"doveadm user {address} fails: {_last_line(r)}: is Dovecot running?"))
    return found


def live_checks(conn: psycopg.Connection | None, postfix_config: Path | None, dovecot_config: Path | None,
                canary: str | None, canary_password: str | None, max_lag: float,
                opendkim_config: Path = OPENDKIM_CONFIG) -> list[Check]:
    """Every check of `doctor --live`, Postfix's first."""
    address = canary
    if address is None and conn is not None:
        try:
            with conn.transaction():
                row = conn.execute("SELECT email FROM public.users WHERE active ORDER BY email LIMIT 1").fetchone()
            address = row[0] if row else None
        except psycopg.Error:
            address = None
    dc = load_dovecot(dovecot_config)
    dovecot = dc if isinstance(dc, Dovecot) else None
    found = postfix_checks(postfix_config, address, conn, dovecot, max_lag, opendkim_config)
    found += dovecot_checks(dovecot, conn, canary, canary_password, max_lag) if dovecot else [dc]
    return found


