"""Writing configuration files that hold a password: atomically, mode 0640, group-owned
by the daemon that reads them (Postfix's virtual(8) and proxymap(8) run unprivileged:
a root-only map file makes delivery defer with "mail system configuration error")."""

from __future__ import annotations

import grp
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from mailbook import Failure
from mailbook.maps import parse_settings
from mailbook.secrets import write_atomically

MODE = 0o640


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
