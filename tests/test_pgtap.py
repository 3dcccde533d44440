"""Each pgTAP file under tests/pgtap/ is one pytest item, run by pg_prove against the
`mail` database that `mailbook init` and `mailbook migrate apply` built."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.harness.process import require_program, run

FILES = sorted(p for p in (Path(__file__).parent / "pgtap").glob("[0-9]*.sql"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_pgtap(path, mail_dsn, cluster):
    pg_prove = require_program("pg_prove")
    dbname = psycopg.conninfo.conninfo_to_dict(mail_dsn)["dbname"]
    r = run([pg_prove, "--verbose", "--failures", "-h", cluster.host, "-p", str(cluster.port),
             "-U", "postgres", "-d", dbname, str(path)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "All tests successful" in r.stdout, r.stdout


def test_there_is_a_pgtap_file_per_concern():
    assert [p.stem for p in FILES] == [
        "01_schema", "02_privileges", "03_functions", "04_bad_input",  # the core, by concern
        "05_audit_log", "06_send_as", "07_service_access", "08_quotas_and_limits",  # then a file per feature
        "09_maildir_queue", "10_relay_domains",
        "11_hostile_admin", "12_stored_text", "13_webmail", "14_usage_and_vacations",
        "15_map_change_columns", "16_map_keys", "17_auth_cache_changes", "18_admin_scopes", "19_resellers",
        "20_scoped_paths", "21_dkim", "22_dns", "23_last_login", "24_app_passwords",
        "25_login_networks", "26_grace_delete", "27_password_expiry", "28_rename", "29_dkim_rotation"]
