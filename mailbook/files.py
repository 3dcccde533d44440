"""Writing files safely: the one atomic write (write_atomically; write_private for a file
only its owner may read), and the configuration files that hold a password: mode 0640,
group-owned by the daemon that reads them (Postfix's virtual(8) and proxymap(8) run
unprivileged: a root-only map file makes delivery defer with "mail system configuration
error"), reporting which settings change (plan, install, Change)."""

from __future__ import annotations

import contextlib
import grp
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mailbook import Failure

MODE = 0o640

# The certificate Postfix's submission services and Dovecot present unless told another
# (--tls-cert/--tls-key, e.g. certbot's fullchain.pem and privkey.pem): Debian's
# self-signed one from the ssl-cert package, enough for a test.
SNAKEOIL_CERT = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
SNAKEOIL_KEY = "/etc/ssl/private/ssl-cert-snakeoil.key"


def write_atomically(path: Path, text: str, mode: int = 0o600, gid: int | None = None,
                     uid: int | None = None) -> None:
    """Replace path with text, never readable more widely than mode on the way. The
    temporary file beside it is created exclusively under an unpredictable name
    (mkstemp: O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600), so a file or a symlink someone
    planted there is never opened, let alone written through; its owner, group and mode
    are set on the descriptor before the first byte (a group it already has, e.g. from a
    setgid directory, is left as it is: only root or a member may chown to it); then
    fsync, rename over path (which replaces a symlink at path itself rather than
    following it), and fsync the directory, so the new file survives a crash."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            st = os.fstat(f.fileno())  # (mkstemp made it ours: euid, egid or the directory's group)
            if (uid is not None and uid != st.st_uid) or (gid is not None and gid != st.st_gid):
                os.fchown(f.fileno(), -1 if uid is None else uid, -1 if gid is None else gid)
            os.fchmod(f.fileno(), mode)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (0600), atomically."""
    write_atomically(path, text, 0o600)


def parse_settings(text: str) -> dict[str, str]:
    """`name = value` settings as Postfix reads a main.cf-style file: # comments and
    blank lines skipped, a line that starts with whitespace continues the one before."""
    logical: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and logical:
            logical[-1] += " " + line.strip()
        else:
            logical.append(line.strip())
    out = {}
    for line in logical:
        if "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _settings(text: str) -> dict[str, str]:
    return parse_settings(text)  # map files, Dovecot's and PgBouncer's files alike


@dataclass
class Change:
    path: Path
    action: str  # create, update, unchanged
    detail: str  # which settings change (names only: never a value, never a password)

    def line(self, dry_run: bool) -> str:
        verb = {"create": "create", "update": "update", "unchanged": "unchanged"}[self.action]
        if self.action == "unchanged":
            return f"unchanged {self.path}"
        prefix = f"would {verb}" if dry_run else verb.rstrip("e") + "ed"
        return f"{prefix} {self.path}{f' ({self.detail})' if self.detail else ''}"


def plan(files: dict[Path, str], group: str) -> list[Change]:
    gid = _gid(group)
    changes = []
    for path, text in files.items():
        if not path.exists():
            changes.append(Change(path, "create", f"mode 0640, group {group}" if gid is not None else "mode 0640"))
            continue
        old = path.read_text()
        differ = sorted(k for k in set(_settings(old)) | set(_settings(text))
                        if _settings(old).get(k) != _settings(text).get(k))
        if old != text and not differ:
            differ = ["comments"]
        st = path.stat()
        if stat.S_IMODE(st.st_mode) != MODE:
            differ.append(f"mode {stat.S_IMODE(st.st_mode):04o} -> 0640")
        if gid is not None and st.st_gid != gid:
            differ.append(f"group -> {group}")
        changes.append(Change(path, "update" if differ else "unchanged", ", ".join(differ)))
    return changes


def install(files: dict[Path, str], group: str, dry_run: bool = False) -> list[Change]:
    """Write each file (text) unless dry_run; returns what changed or would change."""
    changes = plan(files, group)
    if dry_run:
        return changes
    gid = _gid(group)
    for change in changes:
        if change.action != "unchanged":
            _write(change.path, files[change.path], gid)
    return changes


def _gid(group: str) -> int | None:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return None


def _write(path: Path, text: str, gid: int | None) -> None:
    directory = path.parent
    try:
        if not directory.exists():
            directory.mkdir(parents=True, mode=0o750)
            if gid is not None:
                os.chown(directory, -1, gid)
        write_atomically(path, text, MODE, gid)
    except PermissionError as exc:
        raise Failure(f"cannot write {path}: {exc.strerror}; run as root") from None
