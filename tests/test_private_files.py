"""Files that hold secrets (exports of every hash, password files, map files with the
service role's password) are written so that nothing planted beside them can widen who
reads them: the temporary file is created exclusively, never through a symlink, and has
its final owner and mode before a byte is written. Real directories, as root (CI runs so)."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

import pytest

from mailbook.files import install, write_private
from tests.harness.process import require_root

NOBODY = pwd.getpwnam("nobody").pw_uid


@pytest.fixture
def shared_dir(tmp_path) -> Path:
    """A directory others may write into, as /tmp or a careless backup directory is."""
    d = tmp_path / "shared"
    d.mkdir()
    d.chmod(0o1777)
    return d


def plant_world_readable(path: Path) -> Path:
    """What a local user could leave at the temporary name the old code used."""
    planted = path.with_name(f".{path.name}.tmp")
    planted.write_text("planted\n")
    planted.chmod(0o666)
    if os.geteuid() == 0:
        os.chown(planted, NOBODY, -1)
    return planted


def test_planted_temp_file_unused(shared_dir):
    """A planted world readable temp file is never used for a private file."""
    target = shared_dir / "backup.csv"
    planted = plant_world_readable(target)
    write_private(target, "kind,address,password_hash\nmailbox,foo@example.com,{BLF-CRYPT}$2a$10$x\n")
    st = target.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid(), oct(st.st_mode)
    assert target.read_text().startswith("kind,address,password_hash\n")
    assert planted.read_text() == "planted\n" and stat.S_IMODE(planted.stat().st_mode) == 0o666


def test_a_planted_symlink_is_never_followed_for_a_private_file(shared_dir, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours\n")
    target = shared_dir / "reader.pw"
    os.symlink(outside, target.with_name(f".{target.name}.tmp"))
    write_private(target, "secret\n")
    assert outside.read_text() == "not yours\n"
    assert not target.is_symlink() and target.read_text() == "secret\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_symlink_at_the_target_itself_is_replaced_not_written_through(shared_dir, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours\n")
    target = shared_dir / "export.csv"
    os.symlink(outside, target)
    write_private(target, "hashes\n")
    assert outside.read_text() == "not yours\n" and not target.is_symlink()


def test_map_files_are_installed_0640_whatever_was_planted_beside_them(shared_dir, tmp_path):
    outside = tmp_path / "outside.cf"
    outside.write_text("not yours\n")
    virtual, mailboxes = shared_dir / "virtual.cf", shared_dir / "mailboxes.cf"
    plant_world_readable(virtual)
    for old_name in (f".{virtual.name}.mailbook-tmp", f".{mailboxes.name}.mailbook-tmp"):
        os.symlink(outside, shared_dir / old_name)
    install({virtual: "password = secret\n", mailboxes: "password = secret\n"}, group="root")
    for path in (virtual, mailboxes):
        st = path.stat()
        assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_gid == 0 and not path.is_symlink(), path
        assert path.read_text() == "password = secret\n"
    assert outside.read_text() == "not yours\n"
    # nothing of ours is left behind
    assert not [p for p in shared_dir.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")
                and p.name != f".{virtual.name}.tmp"]


def test_cluster_ignores_planted_link(tmp_path):
    """A private cluster never writes as root through a link its OS user planted.

    The cluster's directory belongs to the postgres OS user (and, once it runs, to
    whoever is its database superuser: COPY ... TO PROGRAM); root writes the port file and
    configs there and must not follow a symlink left in their place."""
    import tempfile

    require_root("the private cluster's file test (only root writes into the OS user's directory)")

    from mailbook.demo.cluster import SUPERUSER, PrivateCluster
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours\n")
    root = Path(tempfile.mkdtemp(prefix="mailbook-link-", dir="/var/tmp"))
    cluster = PrivateCluster(root, durable=False)
    try:
        cluster.init()
        hba = (cluster.data / "pg_hba.conf").stat()
        assert (hba.st_uid, stat.S_IMODE(hba.st_mode)) == (pwd.getpwnam(SUPERUSER).pw_uid, 0o600)
        os.symlink(outside, cluster.port_file)
        cluster.start()
        assert outside.read_text() == "not yours\n" and not cluster.port_file.is_symlink()
        assert cluster.port_file.read_text() == str(cluster.port)
    finally:
        cluster.destroy()
