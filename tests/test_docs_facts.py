"""What the docs state as fact holds on this machine: the packages they list are the ones
the setup runs, a Dovecot setting they show can be pasted as it stands, a release is
named by its version, and every test file they cite exists."""

from __future__ import annotations

import re
from pathlib import Path

from mailbook.dovecot import LmtpSetup, dovecot_files, installed_version
from tests.harness.process import ROOT, private_dir, remove, require_program, run

PAGES = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def code_blocks(path: Path) -> list[tuple[int, str, str]]:
    """(line number, language, text) of each fenced block."""
    text = path.read_text()
    return [(text[:m.start()].count("\n") + 1, m.group(1), m.group(2))
            for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M)]


def section(path: Path, heading: str) -> str:
    """The text under a heading, to the next heading of its level or above (a `#` line in
    a code block is a comment, not a heading)."""
    text = path.read_text()
    masked = re.sub(r"^```.*?^```", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S | re.M)
    m = re.search(rf"^(#+) {re.escape(heading)}\n", masked, flags=re.M)
    assert m, f"{path.name} has no heading {heading!r}"
    end = re.search(rf"^#{{1,{len(m.group(1))}}} ", masked[m.end():], flags=re.M)
    return text[m.end():m.end() + end.start() if end else None]


def listed_packages(text: str) -> set[str]:
    """The Debian packages text lists: the words of each `apt-get install ...` and of each
    `(Debian: `pkg`)`, whether in a code span or a block, across line breaks."""
    text = re.sub(r"\s+", " ", text)
    names = set()
    for words in re.findall(r"apt-get install ((?:[a-z0-9][a-z0-9.+-]+ ?)+)", text):
        names.update(words.split())
    names.update(re.findall(r"Debian: `([a-z0-9][a-z0-9.+-]+)`", text))
    return names


def package_of(path: str) -> str:
    """The installed Debian package that holds path (dpkg -S)."""
    r = run(["dpkg-query", "-S", path])
    assert r.returncode == 0, f"no installed package holds {path}: {r.stderr}"
    return r.stdout.split(":")[0]


# What each place that lists packages sets up, as the files that do it: dpkg names the package.
DOVECOT_LMTP = ["/usr/lib/dovecot/lmtp",                          # `dovecot install`'s default delivery
                "/usr/lib/dovecot/modules/lib90_sieve_plugin.so",  # vacation replies, users' filters
                "/usr/lib/dovecot/managesieve"]                   # users' own scripts (ManageSieve)
NEEDED = {
    ("operations.md", "Wiring up Postfix and Dovecot"): [
        "/usr/sbin/postfix", "/usr/lib/postfix/postfix-pgsql.so",   # Postfix and its pgsql: maps
        "/usr/sbin/dovecot", "/usr/lib/dovecot/imap",               # Dovecot, IMAP logins
        "/usr/lib/dovecot/modules/libdriver_pgsql.so",              # SQL passdb/userdb, the dicts
        *DOVECOT_LMTP],
    ("admin-guide.md", "Deliver through Dovecot's LMTP: quotas at RCPT, usage, vacation replies"): DOVECOT_LMTP,
    ("admin-guide.md", "Compiled maps: Postfix reads local lmdb: tables (volume, outages)"): [
        "/usr/lib/postfix/postfix-lmdb.so"],
}


def test_docs_list_every_package():
    """Where the docs list Debian packages, they name every package whose files the setup
    they describe uses (dpkg -S of Dovecot's lmtp, its Sieve plugin, ...); and each Postfix
    and Dovecot package scripts/install.sh installs for the tests is named in the docs."""
    missing = []
    for (page, heading), files in NEEDED.items():
        listed = listed_packages(section(ROOT / "docs" / page, heading))
        missing += [f"{page} '{heading}': {package_of(f)} ({f})" for f in files if package_of(f) not in listed]
    assert missing == []
    # LMTP delivery is what `dovecot install` writes by default, with the Sieve plugin
    files = dovecot_files(Path("/etc/dovecot/dovecot-sql.conf.ext"), Path("/etc/dovecot/conf.d"), "dbname=mail",
                          "/home/mail", LmtpSetup("dbname=mail"), version=installed_version())
    lmtp = files[Path("/etc/dovecot/conf.d/lmtp-mailbook.conf.ext")]
    assert "lmtp" in lmtp and "sieve" in lmtp
    script = (ROOT / "scripts" / "install.sh").read_text()
    tested = set(re.findall(r"\b((?:postfix|dovecot)(?:-[a-z0-9]+)*)\b", script.split('"--test"', 1)[1].split("elif")[0]))
    everywhere = set().union(*(listed_packages(p.read_text()) for p in PAGES))
    assert tested - everywhere == set()


def test_one_dovecot_setting_per_line():
    """No line of a code block in the docs holds two `name = value` settings (Dovecot takes
    `mail_uid = 200, mail_gid = 1000` as one odd mail_uid), comments included; and a block
    of plain Dovecot settings is one the installed doveconf reads."""
    crowded = []
    for page in PAGES:
        for start, lang, text in code_blocks(page):
            for n, line in enumerate(text.splitlines()):
                if lang != "sql" and re.search(r"\b[a-z_]+ = [^=]*?[,;] *[a-z_]+ = ", line):
                    crowded.append(f"{page.relative_to(ROOT)}:{start + 1 + n}: {line.strip()}")
    assert crowded == []
    flat = [(page, start, text) for page in PAGES for start, lang, text in code_blocks(page)
            if not lang and all(re.fullmatch(r"#.*|[a-z_]+ = .*|", line) for line in text.splitlines())]
    assert flat, "no block of plain Dovecot settings found: the check reads nothing"
    work = private_dir("mailbook-doc-dovecot-")
    try:
        for page, start, text in flat:
            head = "dovecot_config_version = 2.4.0\ndovecot_storage_version = 2.4.0\n" if installed_version() == "2.4" else ""
            (work / "dovecot.conf").write_text(head + text)
            r = run([require_program("/usr/bin/doveconf"), "-c", str(work / "dovecot.conf"), "-n"])
            assert r.returncode == 0, f"{page.relative_to(ROOT)}:{start}: {r.stderr}"
            for name in re.findall(r"^([a-z_]+) = ", text, flags=re.M):
                assert re.search(rf"^{name} = ", r.stdout, flags=re.M), f"{page.relative_to(ROOT)}:{start}: {name}"
    finally:
        remove(work)


def test_a_release_is_named_by_version():
    """The docs say since which release by its version (CHANGELOG.md), not by the issue
    that brought it: a reader knows which version runs, not which issue."""
    found = []
    for page in PAGES:
        text = re.sub(r"\s+", " ", page.read_text())
        found += [f"{page.relative_to(ROOT)}: {m.group(0)}" for m in re.finditer(
            r"\b(?:since|from|as of|until|before|after|release with|version with)(?: the)?(?: release with)? issue \d+",
            text, flags=re.I)]
    assert found == []


def test_cited_test_files_exist():
    """Every tests/... file the docs cite exists, and a cited tests/x.py::name is a test
    in it (the contributing guide's tests/test_x.py::test_name is a pattern, not a file)."""
    broken = []
    for page in [*PAGES, ROOT / "CHANGELOG.md"]:
        for path, name in re.findall(r"\b(tests/[A-Za-z0-9_./-]*[A-Za-z0-9_])(?:::(\w+))?", page.read_text()):
            if path == "tests/test_x.py":
                continue
            if not (ROOT / path).exists():
                broken.append(f"{page.relative_to(ROOT)}: {path}")
            elif name and not re.search(rf"^(?:async )?def {name}\(", (ROOT / path).read_text(), flags=re.M):
                broken.append(f"{page.relative_to(ROOT)}: {path}::{name}")
    assert broken == []
