"""A wheel built from the checkout works outside it: the SQL ships inside."""

from __future__ import annotations

import os
import re
import site
import zipfile
from pathlib import Path

import psycopg
import pytest

from tests.harness.process import PYTHON, ROOT, run


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The sdist and the wheel, as a release builds them (python -m build; the backend
    from the test environment, no download)."""
    out = tmp_path_factory.mktemp("dist")
    r = run([PYTHON, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)])
    assert r.returncode == 0, r.stdout + r.stderr
    return out


@pytest.fixture(scope="module")
def wheel(dist) -> Path:
    (path,) = dist.glob("mailbook-*.whl")
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
    for p in ROOT.glob("migrations/**/*.sql"):  # the baseline and, for older databases, pre-1.0/
        assert f"mailbook/{p.relative_to(ROOT).as_posix()}" in names
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
    assert "applied 0100_baseline_hardening" in r.stdout
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
    assert sorted(run([str(installed)], env=env, cwd=tmp_path).stdout.split()) == ["passwd", "password-age"]


def test_the_sdist_carries_what_a_wheel_is_built_from(dist):
    import tarfile

    (sdist,) = dist.glob("mailbook-*.tar.gz")
    names = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    for path in ("pyproject.toml", "README.md", "CHANGELOG.md", "runner.py", "mailbook/__init__.py",
                 "migrations/0100_baseline_hardening.sql",
                 "migrations/pre-1.0/0001_harden_database.sql", "sql/roles.sql", "postfix-maps/main.cf.snippet"):
        assert path in names, path


def test_installed_version_and_demo(installed, tmp_path):
    """Installed mailbook names its version and runs the demo outside the checkout."""
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    r = run([str(installed), "--version"], cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == f"mailbook {version}\n", r
    import shutil
    import tempfile

    # as root, the demo's server runs as postgres, which must reach its directory (pytest's
    # tmp_path sits under a private one)
    parent = Path(tempfile.mkdtemp(prefix="mailbook-wheel-demo-"))
    os.chmod(parent, 0o755)
    data = parent / "demo"
    try:
        r = run([str(installed), "demo", "--data-dir", str(data)], cwd=tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "foo@example.com" in r.stdout and f"Stop it with `{installed} demo --stop`" in r.stdout, r.stdout
        status = run([str(installed), "migrate", "status", "--dsn",
                      re.search(r'psql "(host=/[^"]+)"', r.stdout).group(1)], cwd=tmp_path)
        assert f"mailbook {version}, schema at" in status.stdout, status
    finally:
        stopped = run([str(installed), "demo", "--stop", "--data-dir", str(data)], cwd=tmp_path)
        run([str(installed), "demo", "--reset", "--data-dir", str(data)], cwd=tmp_path)
        shutil.rmtree(parent, ignore_errors=True)
    assert stopped.stdout.strip() == "stopped"
