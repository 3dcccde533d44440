"""Roundcube users change their own password through mailbook, in a real browser.

Debian's Roundcube 1.6 (roundcube-core, roundcube-plugins' password plugin, configured by
`mailbook roundcube install`) served by PHP's built-in server on loopback, its own
database on SQLite (roundcube-sqlite3's schema file, as the package's default), IMAP from a real Dovecot that
authenticates through mailbook, driven by Debian's chromium through Debian's chromedriver
(Selenium from PyPI, no browser download). One Roundcube for the module.

The password plugin is read from /usr/share/roundcube/plugins/password (Debian's
roundcube-plugins; scripts/install.sh --test installs it). Missing, the tests fail; they
never skip.
A screenshot of the password page after a successful change is written to
test-artifacts/ (not committed).
"""

from __future__ import annotations

import grp
import os
import secrets
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

from mailbook.demo.cluster import free_port
from mailbook.files import write_private
from tests.harness.database import mail_database
from tests.harness.dovecot import install_dovecot
from tests.harness.postfix import VMAIL_GID, VMAIL_UID
from tests.harness.process import ROOT, cli, private_dir, remove, require_program, require_root, run

DB = "rcmail"
AUTH_PW = "auth-pw-for-tests"
WEBMAIL_PW = "webmail pw/with:odd@chars%"  # DSN-encoded by `mailbook roundcube install`
ROUNDCUBE = Path("/usr/share/roundcube")
PLUGIN = ROUNDCUBE / "plugins" / "password"  # Debian's roundcube-plugins
ARTIFACTS = ROOT / "test-artifacts"
LOGS: list[Path] = []  # Roundcube's log directory, once it runs
MAILBOXES = {  # address: its password at the start
    "foo@example.com": "foo first passphrase",
    "bar@example.com": "bar first passphrase",
    "baz@example.com": "baz first passphrase",
    "qux@example.com": "qux first passphrase",
}

ROUTER = """\
<?php
// PHP's built-in server: static files as they are, everything else through index.php,
// with this directory as Roundcube's INSTALL_PATH (config/, plugins/, logs/, temp/ here)
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if ($path !== '/' && is_file(__DIR__ . $path) && substr($path, -4) !== '.php') {
    return false;
}
define('INSTALL_PATH', __DIR__ . '/');
chdir(__DIR__);
require __DIR__ . '/index.php';
"""

CONFIG = """\
<?php
$config = [];
$config['db_dsnw'] = 'sqlite:///{roundcube_db}?mode=0640';
$config['imap_host'] = '127.0.0.1:{imap_port}';
$config['smtp_host'] = '127.0.0.1:{smtp_port}';
$config['des_key'] = '{des_key}';
$config['plugins'] = ['password'];
$config['skin'] = 'elastic';
$config['log_driver'] = 'file';
$config['log_dir'] = '{root}/logs/';
$config['temp_dir'] = '{root}/temp/';
$config['enable_installer'] = false;
$config['support_url'] = '';
$config['product_name'] = 'mailbook test webmail';
"""


@pytest.fixture(scope="module")
def root_dir():
    require_root("the Roundcube tests")
    for program in ("/usr/bin/chromium", "/usr/bin/chromedriver", "/usr/bin/php"):
        require_program(program)
    for needed in (ROUNDCUBE / "index.php", ROUNDCUBE / "SQL" / "sqlite.initial.sql", PLUGIN / "drivers" / "sql.php"):
        if not needed.exists():
            pytest.fail(f"{needed} is missing: install roundcube-core, roundcube-sqlite3 and roundcube-plugins "
                        "(scripts/install.sh --test)")
    d = private_dir("mailbook-roundcube-")
    yield d
    if not os.environ.get("MAILBOOK_KEEP_ROUNDCUBE"):
        remove(d)


@pytest.fixture(scope="module")
def mail_db(cluster):
    with mail_database(cluster, DB, mailauth=AUTH_PW, mailwebmail=WEBMAIL_PW) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SET ROLE mailadmin")
            conn.execute("SELECT add_domain('example.com')")
            for address, password in MAILBOXES.items():
                conn.execute("SELECT add_mailbox(%s, %s)", (address, password))
        yield dsn


@pytest.fixture(scope="module")
def dovecot(root_dir, mail_db, cluster):
    mail = root_dir / "mail"
    mail.mkdir()
    os.chown(mail, VMAIL_UID, VMAIL_GID)
    pw = root_dir / "auth.pw"
    write_private(pw, AUTH_PW + "\n")
    dc = install_dovecot(root_dir, mail, "--port", str(cluster.port), "--dbname", DB, "--password-file", str(pw))
    try:  # stopped also when the start fails half-way
        dc.start()
        yield dc
    finally:
        dc.stop()


@pytest.fixture(scope="module")
def plugin_config(root_dir, mail_db, cluster):
    """`mailbook roundcube install` as an admin runs it (the minimum length read from the database)."""
    pw = root_dir / "webmail.pw"
    write_private(pw, WEBMAIL_PW + "\n")
    dest = root_dir / "etc-roundcube-plugins-password"
    r = cli(["roundcube", "install", "--dest", str(dest), "--drivers", str(root_dir / "drivers"),
             "--port", str(cluster.port), "--dbname", DB, "--password-file", str(pw), "--dsn", mail_db], check=True)
    assert f"created {dest / 'config.inc.php'}" in r.stdout and WEBMAIL_PW not in r.stdout + r.stderr
    assert f"created {root_dir / 'drivers' / 'mailbook.php'}" in r.stdout
    return dest / "config.inc.php"


@pytest.fixture(scope="module")
def roundcube_db(root_dir):
    """Roundcube's own database on SQLite, as its Debian package sets it up by default
    (roundcube-sqlite3), created from the package's own schema file."""
    import sqlite3
    path = root_dir / "roundcube.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript((ROUNDCUBE / "SQL" / "sqlite.initial.sql").read_text())
    os.chmod(path, 0o640)
    return path


@pytest.fixture(scope="module")
def roundcube(root_dir, dovecot, plugin_config, roundcube_db, cluster):
    """A private Roundcube tree (Debian's files linked in, our config and plugin config)
    served by `php -S` on a free loopback port; yields its base URL."""
    doc = root_dir / "roundcube"
    for sub in ("config", "plugins", "skins", "logs", "temp"):
        (doc / sub).mkdir(parents=True)
    for name in ("index.php", "program", "SQL"):
        (doc / name).symlink_to(ROUNDCUBE / name)
    for skin in (ROUNDCUBE / "skins").iterdir():
        (doc / "skins" / skin.name).symlink_to(skin)
    for name in ("defaults.inc.php", "mimetypes.php"):
        (doc / "config" / name).symlink_to(Path("/etc/roundcube") / name)
    (doc / "config" / "config.inc.php").write_text(CONFIG.format(
        roundcube_db=roundcube_db, imap_port=dovecot.port, smtp_port=free_port(),
        des_key=secrets.token_hex(12), root=doc))
    for plugin in (ROUNDCUBE / "plugins").iterdir():
        if plugin.name != "password":
            (doc / "plugins" / plugin.name).symlink_to(plugin)
    password = doc / "plugins" / "password"
    password.mkdir()
    for entry in PLUGIN.iterdir():
        if entry.name not in ("config.inc.php", "drivers"):
            (password / entry.name).symlink_to(entry)
    # the package's drivers and mailbook's, as `roundcube install` puts it beside them
    (password / "drivers").mkdir()
    for entry in (PLUGIN / "drivers").iterdir():
        (password / "drivers" / entry.name).symlink_to(entry)
    (password / "drivers" / "mailbook.php").symlink_to(root_dir / "drivers" / "mailbook.php")
    (password / "config.inc.php").symlink_to(plugin_config)  # as Debian links it to /etc/roundcube/plugins
    (doc / "router.php").write_text(ROUTER)
    port = free_port()
    log = open(root_dir / "php-server.log", "w")
    server = subprocess.Popen(["/usr/bin/php", "-S", f"127.0.0.1:{port}", "-t", str(doc), str(doc / "router.php")],
                              cwd=doc, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(base + "/", timeout=5) as answer:
                assert answer.status == 200
                break
        except OSError:
            assert time.monotonic() < deadline and server.poll() is None, (root_dir / "php-server.log").read_text()
            time.sleep(0.2)
    LOGS.append(doc / "logs")
    yield base
    server.terminate()
    server.wait(10)
    log.close()


@pytest.fixture(scope="module")
def browser(root_dir, roundcube):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,900", f"--user-data-dir={root_dir / 'chromium'}"):
        options.add_argument(flag)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a browser or driver
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver",
                                                               log_output=str(root_dir / "chromedriver.log")))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


# -- what a user does ----------------------------------------------------------------------

def wait_for(browser, css, timeout=30):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(browser, timeout).until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "last-page.html").write_text(browser.page_source)
        browser.save_screenshot(str(ARTIFACTS / "last-page.png"))
        raise AssertionError(f"{css} did not show on {browser.current_url}; the page is in {ARTIFACTS}") from None


def log_in(browser, base, user, password) -> str:
    """Log in on Roundcube's form; the task it lands on ('mail'), or the error it shows."""
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(base + "/?_task=login")
    wait_for(browser, "#rcmloginuser").send_keys(user)
    browser.find_element(By.CSS_SELECTOR, "#rcmloginpwd").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "#rcmloginsubmit").click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "_task=mail" in browser.current_url:
            wait_for(browser, "#taskmenu a.logout")
            return "mail"
        shown = message(browser, wait=0)
        if shown:
            return shown
        time.sleep(0.2)
    raise AssertionError(f"neither logged in nor refused: {browser.current_url}")


def message(browser, wait=30) -> str:
    """The text of the message Roundcube shows at the top of the page (#messagestack)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + wait
    while True:
        try:
            texts = [e.text.strip() for e in browser.find_elements(By.CSS_SELECTOR, "#messagestack div")]
        except StaleElementReferenceException:
            texts = []  # a message went, or the page moved on, between finding and reading it
        texts = [t for t in texts if t]
        texts = [t for t in texts if t not in ("Loading...", "Saving...")]
        if texts or time.monotonic() >= deadline:
            return texts[-1] if texts else ""
        time.sleep(0.2)


def change_password(browser, base, current, new, confirm=None, screenshot: str | None = None) -> str:
    """Settings -> Password, fill in the form, Save; the message Roundcube then shows."""
    from selenium.webdriver.common.by import By

    browser.get(base + "/?_task=settings")
    # the password plugin's page is a page of its own (the plugin sets noframe), not a frame
    wait_for(browser, "#settings-menu a[href*='plugin.password']").click()
    wait_for(browser, "#curpasswd").send_keys(current)
    browser.find_element(By.CSS_SELECTOR, "#newpasswd").send_keys(new)
    browser.find_element(By.CSS_SELECTOR, "#confpasswd").send_keys(confirm if confirm is not None else new)
    ready(browser)
    browser.find_element(By.CSS_SELECTOR, ".formbuttons button.mainaction").click()
    shown = message(browser)
    if screenshot:
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / screenshot))
    return shown


def ready(browser):
    """Wait until Roundcube's scripts have loaded and nothing is in progress."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(lambda b: b.execute_script(
        "return !!(window.rcmail && rcmail.loaded && !rcmail.busy)"))


def log_out(browser):
    """The Logout button in the task menu, once Roundcube's scripts are ready (a click
    before that is lost)."""
    button = wait_for(browser, "#taskmenu a.logout")
    ready(browser)
    button.click()
    wait_for(browser, "#rcmloginuser")


def roundcube_logs() -> str:
    """Everything Roundcube has logged (errors, password changes, ...)."""
    return "".join(f"--- {f.name}\n{f.read_text(errors='replace')}" for d in LOGS for f in sorted(d.iterdir()))


def audit(mail_db, email):
    with psycopg.connect(mail_db) as conn:
        return conn.execute("SELECT login_role, operation, changed, split_part(reason, ':', 1) FROM audit_log"
                            " WHERE row_key = %s AND operation IN ('UPDATE', 'REFUSED') ORDER BY id", (email,)).fetchall()


# -- the tests -----------------------------------------------------------------------------

def test_roundcube_change_password(browser, roundcube, dovecot, mail_db):
    """A user changes the password in Roundcube and only the new one logs in."""
    user, old, new = "foo@example.com", MAILBOXES["foo@example.com"], "a second passphrase"
    assert log_in(browser, roundcube, user, old) == "mail"
    shown = change_password(browser, roundcube, old, new, screenshot="roundcube-password-changed.png")
    assert shown == "Successfully saved.", (roundcube_logs(), audit(mail_db, user))
    log_out(browser)
    assert log_in(browser, roundcube, user, new) == "mail"
    log_out(browser)
    assert log_in(browser, roundcube, user, old) == "Login failed."
    assert dovecot.auth_test(user, new).returncode == 0
    assert dovecot.auth_test(user, old).returncode == 77
    assert audit(mail_db, user) == [("mailwebmail", "UPDATE", ["password", "password_changed"], None)]


def test_roundcube_wrong_current(browser, roundcube, dovecot, mail_db):
    """A wrong current password shows Roundcube's error and changes nothing."""
    user, old = "bar@example.com", MAILBOXES["bar@example.com"]
    assert log_in(browser, roundcube, user, old) == "mail"
    assert change_password(browser, roundcube, "not my password", "a perfectly good one") == (
        "Current password incorrect.")
    log_out(browser)
    assert dovecot.auth_test(user, old).returncode == 0
    assert audit(mail_db, user) == []  # Roundcube compares with the session's password first


def test_roundcube_policy(
        browser, roundcube, dovecot, mail_db):
    """The policy shows in the page and the database refuses what Roundcube cannot check."""
    user, old = "baz@example.com", MAILBOXES["baz@example.com"]
    assert log_in(browser, roundcube, user, old) == "mail"
    # the minimum length, mailbook's settings.password_min_length written into the plugin's config
    assert change_password(browser, roundcube, old, "too short") == "Password must be at least 12 characters long."
    # the local part: only mailbook knows that rule; its driver shows mailbook's reason
    assert change_password(browser, roundcube, old, "my name is baz, long enough") == (
        'Could not save new password. the new password must not contain "baz", the name in the address')
    log_out(browser)
    assert dovecot.auth_test(user, old).returncode == 0
    assert audit(mail_db, user) == [("mailwebmail", "REFUSED", None, "MB003")]


def test_roundcube_five_wrong(
        browser, roundcube, dovecot, mail_db, cluster):
    """After five wrong current passwords Roundcube is refused even the right one.

    Roundcube itself never sends a wrong current password (it compares with the session's
    first); whoever holds mailwebmail's password can. Five guesses through that login, then the
    user's own change with the right password is refused by the limit, and all of it is audited."""
    user, old = "qux@example.com", MAILBOXES["qux@example.com"]
    with psycopg.connect(f"host=127.0.0.1 port={cluster.port} dbname={DB} user=mailwebmail password='{WEBMAIL_PW}'",
                         autocommit=True) as thief:
        for n in range(5):
            ticket = thief.execute("SELECT ticket FROM public.check_current_password(%s, %s)",
                                   (user, f"guess {n}")).fetchone()[0]
            assert thief.execute("SELECT code FROM public.change_password(%s, %s, 'a brand new passphrase')",
                                 (user, ticket)).fetchone() == ("28P01",)
    assert log_in(browser, roundcube, user, old) == "mail"  # IMAP logins are not limited: only changes
    assert change_password(browser, roundcube, old, "a brand new passphrase").startswith(
        "Could not save new password. too many wrong current passwords: try again in 1")
    log_out(browser)
    assert dovecot.auth_test(user, old).returncode == 0
    assert [row[3] for row in audit(mail_db, user)] == ["28P01"] * 5 + ["MB004"]


def test_no_password_reaches_roundcubes_logs(browser, roundcube, mail_db):
    """Run last: every password the tests typed, against every log Roundcube wrote."""
    logs = roundcube_logs()
    assert "Password changed for user foo@example.com" in logs  # password_log: who, never what
    typed = [*MAILBOXES.values(), "a second passphrase", "not my password", "a perfectly good one", "too short",
             "my name is baz, long enough", "a brand new passphrase", WEBMAIL_PW]
    assert not [p for p in typed if p in logs]


def test_roundcube_install_files(plugin_config, root_dir, cluster):
    """`roundcube install` writes 0640 group www-data and dry run names no password."""
    st = plugin_config.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0 and st.st_gid == grp.getgrnam("www-data").gr_gid
    text = plugin_config.read_text()
    assert "$config['password_driver'] = 'mailbook';" in text
    assert f"$config['mailbook_db_dsn'] = 'pgsql:host=127.0.0.1;port={cluster.port};dbname={DB}';" in text
    assert "$config['mailbook_db_user'] = 'mailwebmail';" in text
    assert f"$config['mailbook_db_password'] = '{WEBMAIL_PW.replace(chr(39), chr(92) + chr(39))}';" in text
    driver = root_dir / "drivers" / "mailbook.php"
    assert run(["/usr/bin/php", "-l", str(driver)]).returncode == 0
    assert "check_current_password(?, ?)" in driver.read_text() and WEBMAIL_PW not in driver.read_text()
    assert "$config['password_minimum_length'] = 12;" in text
    assert run(["/usr/bin/php", "-l", str(plugin_config)]).returncode == 0
    guide = (ROOT / "docs" / "admin-guide.md").read_text()
    documented = guide.split("`roundcube install` writes")[1].split("```php\n")[1].split("```")[0]
    for line in documented.splitlines():  # the admin guide shows the file as written
        setting = line.split("//")[0].strip().replace("port=5432;dbname=mail", f"port={cluster.port};dbname={DB}"
                                                      ).replace("'PASSWORD'", f"'{WEBMAIL_PW}'")
        assert setting in text, setting
    before = text
    r = cli(["roundcube", "install", "--dest", str(plugin_config.parent), "--drivers", str(root_dir / "drivers"),
             "--port", str(cluster.port), "--dbname", DB, "--min-length", "14", "--dry-run"],
            env={"MAILBOOK_WEBMAIL_PASSWORD": "another-password"}, check=True)
    assert "would update" in r.stdout and "mailbook_db_password" in r.stdout and "password_minimum_length" in r.stdout
    assert "another-password" not in r.stdout + r.stderr and WEBMAIL_PW not in r.stdout + r.stderr
    assert plugin_config.read_text() == before
    r = cli(["roundcube", "install", "--dest", str(root_dir / "nowhere"), "--host", "db host", "--min-length", "12"],
            env={"MAILBOOK_WEBMAIL_PASSWORD": "x"})
    assert r.exit_code == 1 and r.stderr == "mailbook: --host 'db host' cannot go into Roundcube's database settings\n"
    assert not (root_dir / "nowhere").exists()
