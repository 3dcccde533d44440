"""`mailbook pgbouncer install`: the files it writes, and what it refuses. (The config
itself is run by a real PgBouncer in tests/test_outage.py.)"""

from __future__ import annotations

import configparser
import grp
import stat

from mailbook.files import write_private
from tests.harness.process import cli


def install(tmp_path, *extra: str, reader: str = "reader pw", auth: str = 'auth "quoted" pw'):
    write_private(tmp_path / "r.pw", reader + "\n")
    write_private(tmp_path / "a.pw", auth + "\n")
    return cli(["pgbouncer", "install", "--dest", str(tmp_path / "etc"), "--server-port", "5433",
                "--listen-port", "6433", "--reader-password-file", str(tmp_path / "r.pw"),
                "--auth-password-file", str(tmp_path / "a.pw"), *extra])


def test_pgbouncer_install(tmp_path):
    """`pgbouncer install` writes a transaction pooler for the mail database and the two service
    roles."""
    r = install(tmp_path)
    assert r.exit_code == 0, r
    ini, users = tmp_path / "etc" / "pgbouncer.ini", tmp_path / "etc" / "userlist.txt"
    for path in (ini, users):
        st = path.stat()
        assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_gid == grp.getgrnam("postgres").gr_gid
    config = configparser.ConfigParser(delimiters=("=",), comment_prefixes=(";",), interpolation=None)
    config.read_string(ini.read_text())
    assert dict(config["databases"]) == {"mail": "host=127.0.0.1 port=5433 dbname=mail"}
    pgb = config["pgbouncer"]
    assert (pgb["listen_addr"], pgb["listen_port"], pgb["pool_mode"]) == ("127.0.0.1", "6433", "transaction")
    assert (pgb["auth_type"], pgb["auth_file"]) == ("scram-sha-256", str(users))
    assert pgb["admin_users"] == "" and pgb["server_login_retry"] == "1" and "min_pool_size" not in pgb
    # the only logins: the two service roles, each password quoted as PgBouncer reads it
    assert users.read_text() == '"mailreader" "reader pw"\n"mailauth" "auth ""quoted"" pw"\n'
    assert "reader pw" not in r.stdout + r.stderr and "quoted" not in r.stdout + r.stderr
    again = install(tmp_path)
    assert again.exit_code == 0 and again.stdout.count("unchanged") == 2, again


def test_pgbouncer_install_dry_run(tmp_path):
    """`pgbouncer install` dry run writes nothing and bad values change nothing."""
    r = install(tmp_path, "--dry-run")
    assert r.exit_code == 0 and "would create" in r.stdout and not (tmp_path / "etc").exists(), r
    for args, word in [(["--server-host", "db host"], "--server-host"),
                       (["--dbname", "mail' x"], "--dbname"),
                       (["--listen-port", "0"], "--listen-port"),
                       (["--server-port", "70000"], "--server-port")]:
        r = install(tmp_path, *args)
        assert r.exit_code == 1 and word in r.stderr and r.stderr.count("\n") == 1, r
        assert not (tmp_path / "etc").exists()
    r = cli(["pgbouncer", "install", "--dest", str(tmp_path / "etc"), "--reader-password-file", "-",
             "--auth-password-file", "-"], input="x\n")
    assert r.exit_code == 1 and "stdin" in r.stderr and not (tmp_path / "etc").exists()
