"""`mailbook maildirs purge`: delete the maildirs of removed mailboxes from disk.

The database queues a removed mailbox's maildir (migration 0021); this deletes it, as
root on the mail host, only if the path lies inside the base directory with no symbolic
link on the way, the directory belongs to the vmail uid, and no mailbox uses the path or
a path above or below it (claim_maildir() decides that under a lock, in the transaction
that deletes). On disk too, no live maildir may lie at or below what is deleted: each
mailbox's maildir is resolved as Dovecot and Postfix would (following symlinks), so a
link that puts one inside the doomed directory keeps the directory. Every
path component is opened with O_NOFOLLOW, one directory at a time, and the tree is
removed relative to its parent's descriptor, so a symlink swapped in after the checks
cannot redirect the deletion.
"""

from __future__ import annotations

import bisect
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import psycopg

from mailbook import Failure

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Outcome:
    maildir: str
    email: str
    action: str   # removed, would remove, forgotten, kept
    reason: str = ""

    @property
    def refused(self) -> bool:
        """Kept for a reason that needs a human (not merely in use again)."""
        return self.action == "kept" and not self.reason.startswith("a mailbox uses it")


class LiveMaildirs:
    """Every mailbox's maildir as it resolves on disk, sorted, to ask which lie at or
    below a directory."""

    def __init__(self, conn: psycopg.Connection, base: Path):
        rows = conn.execute("SELECT maildir, email FROM mailboxes").fetchall()
        self._paths = sorted((os.path.realpath(base / maildir), maildir, email) for maildir, email in rows)

    def inside(self, directory: Path) -> str | None:
        """A reason if a live maildir resolves to directory or below it, else None."""
        top = os.path.realpath(directory)
        i = bisect.bisect_left(self._paths, (top,))
        for real, maildir, email in self._paths[i:]:
            if real != top and not real.startswith(top + os.sep):
                break
            return f"the maildir {maildir} of {email} resolves to {real}, inside it on disk"
        return None


def _open_parent(base_fd: int, parts: tuple[str, ...]) -> int:
    """A descriptor of the directory holding parts[-1], reached without symlinks."""
    fd = os.dup(base_fd)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def _check(base_fd: int, maildir: str, uid: int) -> tuple[str, str]:
    """("ok" | "gone" | "unsafe", reason)."""
    parts = PurePosixPath(maildir).parts
    if not parts or PurePosixPath(maildir).is_absolute() or any(p in ("", ".", "..") for p in parts):
        return "unsafe", "not a plain relative path"
    try:
        parent = _open_parent(base_fd, parts)
    except FileNotFoundError:
        return "gone", "no longer on disk"
    except OSError as exc:  # ELOOP: a symlink on the way; ENOTDIR: a file
        return "unsafe", f"a parent directory is a symlink or not a directory ({exc.strerror})"
    try:
        st = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return "gone", "no longer on disk"
    finally:
        os.close(parent)
    if stat.S_ISLNK(st.st_mode):
        return "unsafe", "it is a symlink"
    if not stat.S_ISDIR(st.st_mode):
        return "unsafe", "it is not a directory"
    if st.st_uid != uid:
        return "unsafe", f"it belongs to uid {st.st_uid}, not the vmail uid {uid}"
    return "ok", ""


def purge(conn: psycopg.Connection, base: Path, uid: int | None, dry_run: bool) -> list[Outcome]:
    try:
        base_fd = os.open(base, DIR_FLAGS)
    except OSError as exc:
        raise Failure(f"--base {base}: {exc.strerror} (it must be a directory, not a symlink)") from None
    try:
        if uid is None:
            uid = os.fstat(base_fd).st_uid  # the vmail user owns the mail base
        if uid == 0:
            raise Failure(f"--base {base} belongs to root; give the vmail uid with --uid")
        outcomes = []
        queued = conn.execute("SELECT maildir, email, reason FROM queued_maildirs()").fetchall()
        live = LiveMaildirs(conn, base) if queued else None
        for maildir, email, busy in queued:
            if busy:  # why a mailbox needs it, or one above or below it
                outcomes.append(Outcome(maildir, email, "kept", busy))
                continue
            verdict, reason = _check(base_fd, maildir, uid)
            if verdict == "ok":
                reason = live.inside(base / maildir) or ""
                verdict = "unsafe" if reason else verdict
            if verdict == "unsafe":
                outcomes.append(Outcome(maildir, email, "kept", reason))
            elif dry_run:
                outcomes.append(Outcome(maildir, email, "would forget" if verdict == "gone" else "would remove", reason))
            else:
                outcomes.append(_remove(conn, base_fd, maildir, email, uid, verdict, reason))
        return outcomes
    finally:
        os.close(base_fd)


def _remove(conn, base_fd: int, maildir: str, email: str, uid: int, verdict: str, reason: str) -> Outcome:
    """Claim the entry and delete the directory in one transaction: if the deletion
    fails, the claim is rolled back and the path stays queued."""
    try:
        with conn.transaction():
            if not conn.execute("SELECT claim_maildir(%s)", (maildir,)).fetchone()[0]:
                why = conn.execute("SELECT reason FROM queued_maildirs() WHERE maildir = %s", (maildir,)).fetchone()
                return Outcome(maildir, email, "kept", why[0] if why and why[0] else "a mailbox uses it again")
            if verdict == "gone":
                return Outcome(maildir, email, "forgotten", reason)
            # checked again under the claim, then removed relative to its parent's descriptor
            verdict, reason = _check(base_fd, maildir, uid)
            if verdict != "ok":
                raise _Keep(reason)
            parts = PurePosixPath(maildir).parts
            parent = _open_parent(base_fd, parts)
            try:
                shutil.rmtree(parts[-1], dir_fd=parent)
            finally:
                os.close(parent)
    except _Keep as keep:
        return Outcome(maildir, email, "kept", str(keep))
    except OSError as exc:
        return Outcome(maildir, email, "kept", f"could not delete it: {exc.strerror}")
    return Outcome(maildir, email, "removed")


class _Keep(Exception):
    """A check failed under the claim: roll it back, keep the entry."""
