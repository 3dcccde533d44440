"""A wheel built from the checkout works outside it: the SQL ships inside."""

from __future__ import annotations

import os
import site
import zipfile
from pathlib import Path

import psycopg
import pytest

from conftest import PYTHON, ROOT, run


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    r = run([PYTHON, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)])
    assert r.returncode == 0, r.stderr
    (path,) = out.glob("mailbook-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("venv")
    # the dependencies come from the test environment (a .pth file naming its
    # site-packages, after the venv's own: --system-site-packages would name the base
    # interpreter's instead); the project itself only from the wheel
    assert run([PYTHON, "-m", "venv", str(venv)]).returncode == 0
    (own,) = venv.glob("lib/python3*/site-packages")
    (own / "test-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    r = run([str(venv / "bin" / "pip"), "install", "--no-deps", "--no-index", str(wheel)])
    assert r.returncode == 0, r.stderr
    return venv / "bin" / "mailbook"


def test_wheel_ships_migrations_sql_map_files_and_dovecot_files(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for p in ROOT.glob("migrations/*.sql"):
        assert f"mailbook/migrations/{p.name}" in names
    for p in ROOT.glob("sql/**/*.sql"):
        assert f"mailbook/sql/{p.relative_to(ROOT / 'sql')}" in names
    for directory in ("postfix-maps", "dovecot"):
        shipped = [p for p in (ROOT / directory).iterdir() if p.is_file()]
        assert shipped, directory
        for p in shipped:
            assert f"mailbook/{directory}/{p.name}" in names
    assert "runner.py" in names


def test_installed_mailbook_migrates_a_database_from_outside_the_checkout(installed, fresh_db, tmp_path):
    r = run([str(installed), "migrate", "apply", "--dsn", fresh_db], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "applied 0001_harden_database" in r.stdout
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT to_regprocedure('public.add_mailbox(text,text,text,text,bigint)') IS NOT NULL").fetchone() == (True,)
    # and it is not reading the checkout's files: its module lives in the venv
    r = run([str(installed.parent / "python"), "-c", "import mailbook, runner; print(mailbook.data_dir('migrations'))"], cwd=tmp_path)
    assert r.returncode == 0 and str(ROOT) not in r.stdout, r.stdout


def test_installed_mailbook_completes_commands_in_bash(installed, tmp_path):
    """Typer's completion protocol, as the script from `mailbook --show-completion bash` drives it."""
    script = run([str(installed), "--show-completion", "bash"], cwd=tmp_path)
    assert script.returncode == 0 and "complete -o default -F _mailbook_completion mailbook" in script.stdout
    env = {**os.environ, "_MAILBOOK_COMPLETE": "complete_bash", "COMP_WORDS": "mailbook mail", "COMP_CWORD": "1"}
    r = run([str(installed)], env=env, cwd=tmp_path)
    assert sorted(r.stdout.split()) == ["mailbox", "maildirs"], r
    env["COMP_WORDS"], env["COMP_CWORD"] = "mailbook mailbox p", "2"
    assert run([str(installed)], env=env, cwd=tmp_path).stdout.split() == ["passwd"]
