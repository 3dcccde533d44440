"""Postfix beyond the map files: the main.cf and master.cf settings from
postfix-maps/main.cf.snippet (`mailbook maps postconf`), and Postfix's own answers
through postmap (`mailbook maps check`, the compiled tables)."""

from __future__ import annotations

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


def postmap_path() -> str:
    path = shutil.which("postmap") or ("/usr/sbin/postmap" if Path("/usr/sbin/postmap").exists() else None)
    if not path:
        raise Failure("postmap not found; install Postfix (Debian: apt-get install postfix postfix-pgsql)")
    return path


def postmap_command(config_dir: Path | None = None) -> list[str]:
    """postmap, reading config_dir's main.cf (postmap -c) when one is given."""
    return [postmap_path()] + (["-c", str(config_dir)] if config_dir else [])


def postmap_query(key: str, path: Path, config_dir: Path | None = None) -> tuple[bool, str]:
    """(ok, answer) for one `postmap -q`: the value, "(not found)", or the error line."""
    cmd = postmap_command(config_dir) + ["-q", key, f"pgsql:{path}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode == 0:
        return True, r.stdout.strip()
    errors = [line.removeprefix("postmap: ").replace("??", " ").strip()
              for line in r.stderr.splitlines() if line.strip()]
    if r.returncode == 1 and not errors:
        return True, "(not found)"
    # the reason is in the connection or query warning; the final fatal line only says "query error"
    cause = next((e for e in reversed(errors) if "connect to pgsql server" in e or "pgsql query failed" in e), None)
    return False, cause or (errors[-1] if errors else f"postmap exited with {r.returncode}")


def check_maps(address: str, dest: Path, config_dir: Path | None) -> Iterator[tuple[MapFile, str, str, bool]]:
    domain = address.rpartition("@")[2]
    for m in map_files():
        path = dest / m.name
        if not path.exists():
            yield m, "-", f"(not installed in {dest})", False
            continue
        key = domain if m.name in DOMAIN_KEYED else address
        ok, answer = postmap_query(key, path, config_dir)
        yield m, key, answer, ok
