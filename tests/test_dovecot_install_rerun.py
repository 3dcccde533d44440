"""`mailbook dovecot install` run again, as an admin does to change one password or after
an upgrade: a password not given is kept from the files installed (the first install needs
both, and says which option is missing), and only the steps not yet done are asked for.
Into a private copy of the distribution's /etc/dovecot, read back with doveconf."""

from __future__ import annotations

import re
import shutil

import pytest

from mailbook.dovecot import VERSIONS, installed_version
from mailbook.files import write_private
from tests.harness.process import cli, private_dir, remove, require_program, require_root, run

NO_ENV = {"MAILBOOK_DOVECOT_PASSWORD": "", "MAILBOOK_QUOTA_PASSWORD": ""}


@pytest.fixture
def etc():
    """A copy of /etc/dovecot as the distribution installed it, and password files beside it."""
    require_root()
    root = private_dir("mailbook-dovecot-rerun-")
    try:
        shutil.copytree("/etc/dovecot", root / "dovecot", symlinks=True)
        for name, password in (("auth1", "auth-pw-1"), ("auth2", "auth-pw-2"), ("quota1", "quota-pw-1"),
                               ("quota2", "quota-pw-2")):
            write_private(root / f"{name}.pw", password + "\n")
        yield root / "dovecot"
    finally:
        remove(root)


def install(etc, *args: str, version: str | None = None):
    pw = {"--password-file": "auth", "--quota-password-file": "quota"}
    argv = ["dovecot", "install", "--dest", str(etc / "dovecot-sql.conf.ext"), "--conf-d", str(etc / "conf.d"),
            "--vmail-user", "nobody", "--vmail-group", "nogroup", "--dovecot-version", version or installed_version()]
    for a in args:  # "--password-file=1" -> --password-file ETC/../auth1.pw
        option, _, n = a.partition("=")
        argv += [option, str(etc.parent / f"{pw[option]}{n}.pw")]
    return cli(argv, env=NO_ENV)


def doveconf(etc, *args: str) -> str:
    r = run([require_program("/usr/bin/doveconf"), "-c", str(etc / "dovecot.conf"), *args])
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_first_install_names_missing_option(etc):
    """Without the usage role's password the first install writes nothing and says to give
    --quota-password-file (not --password-file, the other role's option)."""
    r = install(etc, "--password-file=1")
    assert r.exit_code == 1 and len(r.stderr.splitlines()) == 1, r
    assert "mailquota: give --quota-password-file FILE" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (etc / "conf.d" / "99-mailbook.conf").exists()
    r = install(etc, "--quota-password-file=1")
    assert r.exit_code == 1 and "mailauth: give --password-file FILE" in r.stderr, r


@pytest.mark.parametrize("version", VERSIONS)
def test_rerun_keeps_the_other_password(etc, version):
    """A rerun given one role's password changes that one and keeps the other's as
    installed (Dovecot 2.3's connect lines and 2.4's pgsql blocks alike); given none, it
    keeps both and changes nothing."""
    sql, quota = etc / "dovecot-sql.conf.ext", etc / "dovecot-dict-quota.conf.ext"
    assert install(etc, "--password-file=1", "--quota-password-file=1", version=version).exit_code == 0
    r = install(etc, "--quota-password-file=2", version=version)
    assert r.exit_code == 0, r
    assert "keeping mailauth's password" in r.stdout and "mailquota's password" not in r.stdout, r.stdout
    assert "auth-pw-1" in sql.read_text() and "quota-pw-2" in quota.read_text()
    assert "quota-pw-1" not in quota.read_text()
    r = install(etc, "--password-file=2", version=version)
    assert r.exit_code == 0 and "keeping mailquota's password" in r.stdout, r
    assert "auth-pw-2" in sql.read_text() and "auth-pw-1" not in sql.read_text() and "quota-pw-2" in quota.read_text()
    assert "auth-pw-2" in (etc / "dovecot-dict-sieve.conf.ext").read_text()
    r = install(etc, version=version)
    assert r.exit_code == 0 and re.findall(r"^(?:create|update)", r.stdout, flags=re.M) == [], r.stdout
    if version == installed_version():
        assert "passdb" in doveconf(etc, "-n")


def test_rerun_hints_only_what_is_left(etc):
    """The first install asks for 10-auth.conf's system passdb to be commented out and for
    a reload; once that is done and nothing changes, a rerun asks for nothing. An include
    an older mailbook put in 10-auth.conf is named for removal."""
    auth = etc / "conf.d" / "10-auth.conf"
    r = install(etc, "--password-file=1", "--quota-password-file=1")
    assert r.exit_code == 0, r
    assert "comment out `!include auth-system.conf.ext`" in r.stdout and "systemctl reload dovecot" in r.stdout, r.stdout
    auth.write_text(re.sub(r"^!include auth-system\.conf\.ext", "#!include auth-system.conf.ext",
                           auth.read_text(), flags=re.M))
    r = install(etc)
    assert r.exit_code == 0, r
    assert "next:" not in r.stdout and "comment out" not in r.stdout and "includes the rest" not in r.stdout, r.stdout
    assert "passdb" in doveconf(etc, "-n")
    auth.write_text(auth.read_text() + f"!include {etc / 'conf.d' / 'auth-mailbook.conf.ext'}\n")
    r = install(etc)
    assert r.exit_code == 0 and "remove `!include" in r.stdout and "auth-mailbook.conf.ext`" in r.stdout, r.stdout
    assert "systemctl reload" not in r.stdout and "comment out" not in r.stdout, r.stdout
