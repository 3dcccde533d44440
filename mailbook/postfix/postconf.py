"""Postfix beyond the map files: the main.cf and master.cf settings from
postfix-maps/main.cf.snippet (`mailbook maps postconf`), the configuration a Postfix
reads (PostfixConfig: postconf, for `maps postconf` and `doctor --live`), and Postfix's
own answers through postmap (postmap_query: `maps check`, doctor, the compiled tables)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mailbook import Failure, data_dir
from mailbook.postfix.maps import MapFile, map_files

DEFAULT_MAP_DIR = "/etc/postfix/pgsql"
DOMAIN_KEYED = ("domains.cf", "relay-domains.cf")  # looked up by domain, not by address


DELIVERIES = ("lmtp", "virtual")
# What `--delivery virtual` changes in main.cf.snippet: Postfix's virtual(8) writes the
# maildirs, so there is no Dovecot quota-status service to ask at RCPT.
VIRTUAL_DELIVERY = {
    "virtual_transport": "virtual",
    "smtpd_recipient_restrictions": "reject_unlisted_recipient",
}


def _snippet_lines(dest: Path, delivery: str = "lmtp") -> list[tuple[str, str]]:
    if delivery not in DELIVERIES:
        raise Failure(f"--delivery must be one of {', '.join(DELIVERIES)}, not {delivery!r}")
    text = (data_dir("postfix-maps") / "main.cf.snippet").read_text()
    settings = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            name, value = name.strip(), value.strip().replace(DEFAULT_MAP_DIR, str(dest))
            if delivery == "virtual":
                value = VIRTUAL_DELIVERY.get(name, value)
            settings.append((name, value))
    return settings


def snippet_settings(dest: Path, delivery: str = "lmtp") -> list[tuple[str, str]]:
    """(parameter, value) of main.cf.snippet's main.cf lines, with the map directory set
    to dest, for delivery through Dovecot's LMTP (as shipped) or Postfix's virtual(8)."""
    return [(name, value) for name, value in _snippet_lines(dest, delivery) if "/" not in name]


def snippet_services(dest: Path) -> list[tuple[str, str, str]]:
    """(service/type, parameter, value) of main.cf.snippet's master.cf overrides, the
    lines written as `postconf -P` takes them: rewrite/unix/helpful_warnings = no."""
    out = []
    for name, value in _snippet_lines(dest):
        if "/" in name:
            service, kind, parameter = name.split("/")
            out.append((f"{service}/{kind}", parameter, value))
    return out


@dataclass
class Service:
    """A master.cf entry of master.cf.snippet: "submission/inet", its line without the
    options, and its "-o name=value" options in order."""
    service: str
    entry: str
    options: list[tuple[str, str]]


def submission_services(sender_login_maps: str | None = None) -> list[Service]:
    """master.cf.snippet's services (submission on 587, submissions on 465), with
    smtpd_sender_login_maps set to the given table (main.cf's: pgsql: or compiled)."""
    out: list[Service] = []
    for line in (data_dir("postfix-maps") / "master.cf.snippet").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if not line[0].isspace():
            fields = line.split()
            out.append(Service(f"{fields[0]}/{fields[1]}", " ".join(fields), []))
            continue
        name, _, value = line.strip().removeprefix("-o ").partition("=")
        if name == "smtpd_sender_login_maps" and sender_login_maps is not None:
            value = sender_login_maps
        out[-1].options.append((name, value))
    return out


def tls_files(cert: str | None, key: str | None) -> tuple[str, str] | None:
    """(certificate, key) given with --tls-cert/--tls-key, both absolute; None if neither."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise Failure("give --tls-cert and --tls-key together (the certificate chain and its private key)")
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not path.startswith("/") or any(c.isspace() or c in "\"'$%<" for c in path):
            raise Failure(f"{option} must be an absolute path without spaces, quotes, $, % or <, not {path!r}")
    return cert, key


def with_services(master_cf: str, services: list[tuple[str, str, str]]) -> str:
    """master.cf text with each override added as "-o parameter=value" below its
    service's line (what `postconf -P` does to /etc/postfix/master.cf)."""
    lines = master_cf.splitlines()
    for service, parameter, value in services:
        name, kind = service.split("/")
        at = next(i for i, line in enumerate(lines) if line.split()[:2] == [name, kind])
        lines.insert(at + 1, f"  -o {parameter}={value}")
    return "\n".join(lines) + "\n"


INSTALL = "install Postfix (Debian: apt-get install postfix postfix-pgsql)"


def program(name: str) -> str:
    """The path of one of Postfix's programs (postconf, postmap), also where sbin is not on PATH."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
    if not path:
        raise Failure(f"{name} not found; {INSTALL}")
    return path


def postmap_command(config_dir: Path | None = None) -> list[str]:
    """postmap, reading config_dir's main.cf (postmap -c) when one is given."""
    return PostfixConfig(config_dir).command("postmap")


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    """A read-only Postfix program: no terminal, and an answer within a minute."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, start_new_session=True,
                          stdin=subprocess.DEVNULL)


def postmap_query(key: str, table: str, config_dir: Path | None = None) -> tuple[bool, str | None]:
    """One `postmap -q KEY TABLE`, the table as main.cf names it (pgsql:FILE, lmdb:FILE;
    proxy:... goes through proxymap): (True, value); (True, None) when the table has no
    such key; (False, why) when the lookup failed, why being the cause Postfix gives in the
    warning before its fatal line (which says only "query error"), else its last line."""
    r = _run(postmap_command(config_dir) + ["-q", key, table])
    if r.returncode == 0:
        return True, r.stdout.strip()
    errors = [line.removeprefix("postmap: ").replace("??", " ").strip()
              for line in r.stderr.splitlines() if line.strip()]
    if r.returncode == 1 and not errors:
        return True, None
    cause = next((e for e in reversed(errors) if "connect to pgsql server" in e or "pgsql query failed" in e), None)
    return False, cause or (errors[-1] if errors else f"postmap exited with {r.returncode}")


def postmap_stdin(args: list[str], table: str, text: str, config_dir: Path | None = None) -> str:
    """`postmap ARGS TABLE` fed text on stdin (-q -, -r -i, -d -): what it prints. Exit 1
    is no failure (-q -: some key not found; -d: a key already gone); another exit, a
    fatal line or a warning (-i skips a line it cannot read with only a warning) raises
    Failure with postmap's last line."""
    r = subprocess.run([*postmap_command(config_dir), *args, table], input=text, capture_output=True, text=True)
    if r.returncode not in (0, 1) or "fatal" in r.stderr or "warning" in r.stderr:
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        raise Failure(f"postmap {' '.join(args)} {table} failed: {lines[-1] if lines else r.returncode}")
    return r.stdout


class PostfixConfig:
    """The configuration Postfix reads, in config_dir (postconf -c) or Postfix's default
    place: main.cf's values (postconf -h), master.cf's services and their -o overrides
    (postconf -M, -P). Read-only; each read asks postconf anew."""

    def __init__(self, config_dir: Path | None):
        self.config_dir = config_dir
        self.where = f"{config_dir or '/etc/postfix'}/main.cf"

    def _option(self) -> list[str]:
        return ["-c", str(self.config_dir)] if self.config_dir else []

    def command(self, tool: str) -> list[str]:
        """tool (postconf, postmap) reading this configuration, to run."""
        return [program(tool), *self._option()]

    def shown(self, tool: str, *args: str) -> str:
        """The same as one types it (`postconf -c DIR ...`), quoted for a shell."""
        return shlex.join([tool, *self._option(), *args])

    def postconf(self, *args: str) -> subprocess.CompletedProcess:
        return _run(self.command("postconf") + list(args))

    def values(self, names: list[str], expand: bool = False) -> dict[str, str]:
        """main.cf's effective values (Postfix's defaults included), $names expanded with
        expand (postconf -x -h). Raises Failure when postconf cannot read main.cf."""
        if not names:
            return {}
        r = self.postconf(*(["-x"] if expand else []), "-h", *names)
        if r.returncode != 0:
            error = next((line for line in r.stderr.splitlines() if "fatal" in line), r.stderr.strip())
            raise Failure(f"cannot read {self.where} ({error.split('fatal: ', 1)[-1]}); configure Postfix first"
                          " (Debian: dpkg-reconfigure postfix, Internet Site) or give --config-dir")
        values = r.stdout.splitlines()
        if len(values) != len(names):
            raise Failure(f"postconf answered {len(values)} values for {len(names)} parameters: {r.stderr.strip()}")
        return dict(zip(names, values))

    def value(self, name: str) -> str:
        """One effective value, $names expanded; "" when postconf cannot say."""
        try:
            return self.values([name], expand=True)[name].strip()
        except Failure:
            return ""

    def explicit(self, names: list[str]) -> dict[str, str]:
        """The parameters main.cf itself sets (postconf -n), not Postfix's defaults."""
        r = self.postconf("-n", *names)
        return dict(line.split(" = ", 1) for line in r.stdout.splitlines() if " = " in line)

    def expand(self, word: str) -> str:
        """word with its $name, ${name} and $(name) replaced by their values."""
        names = re.findall(r"\$\{?\(?(\w+)", word)
        values = self.values(sorted(set(names)), expand=True)
        return re.sub(r"\$(?:\{(\w+)\}|\((\w+)\)|(\w+))", lambda m: values[next(g for g in m.groups() if g)], word)

    def master(self) -> tuple[list[list[str]], dict[tuple[str, str], dict[str, str]]]:
        """master.cf's services, each as its fields (postconf -M, the -o options folded into
        the line), and (service, type) -> its -o overrides (postconf -P; an empty one is "").
        None of either for a main.cf alone (a configuration being prepared). Raises Failure
        when postconf cannot read master.cf."""
        if not Path(self.where.removesuffix("main.cf"), "master.cf").exists():
            return [], {}
        entries, params = self.postconf("-M"), self.postconf("-P")
        for r in (entries, params):
            if r.returncode != 0:
                raise Failure(f"cannot read {self.where.removesuffix('main.cf')}master.cf ({r.stderr.strip()})")
        services = [line.split() for line in entries.stdout.splitlines() if line.strip()]
        overrides: dict[tuple[str, str], dict[str, str]] = {}
        for line in params.stdout.splitlines():
            name, value = line.split(" = ", 1) if " = " in line else (line.rstrip(" ="), "")
            if name.count("/") >= 2:
                service, kind, parameter = name.rsplit("/", 2)
                overrides.setdefault((service, kind), {})[parameter] = value.strip()
        return services, overrides


def check_maps(address: str, dest: Path, config_dir: Path | None) -> Iterator[tuple[MapFile, str, str, bool]]:
    domain = address.rpartition("@")[2]
    for m in map_files():
        path = dest / m.name
        if not path.exists():
            yield m, "-", f"(not installed in {dest})", False
            continue
        key = domain if m.name in DOMAIN_KEYED else address
        ok, answer = postmap_query(key, f"pgsql:{path}", config_dir)
        yield m, key, "(not found)" if answer is None else answer, ok
