"""Delivery through Dovecot's LMTP, as main.cf.snippet and `mailbook dovecot install` ship
it, against the real daemons: Postfix hands mail to Dovecot's LMTP socket in its queue
directory; Dovecot's quota-status answers Postfix's check_policy_service at RCPT; Dovecot
writes each mailbox's usage into quota_usage as mailquota; Pigeonhole reads the vacation
script from SQL through its dict and sends replies back through Postfix.

The module starts with Postfix's virtual(8) delivering (the old setup), then switches the
same maildirs to LMTP, as an existing server would."""

from __future__ import annotations

import imaplib
import math
import re
import time

import psycopg
import pytest

from tests.harness.database import sql
from tests.harness.lmtp import DB, FOO_PW, QUOTA_PW, admin_dsn, daemons, dovecot, postfix, usage  # noqa: F401  (the fixtures)
from tests.harness.postfix import Postfix
from tests.harness.process import cli, wait_for


def imap_subjects(dovecot, user: str, password: str) -> list[str]:
    with imaplib.IMAP4("127.0.0.1", dovecot.port) as imap:
        imap.login(user, password)
        imap.select("INBOX", readonly=True)
        _, data = imap.search(None, "ALL")
        subjects = []
        for num in data[0].split():
            _, parts = imap.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects.append(parts[0][1].decode().strip().removeprefix("Subject: "))
        imap.logout()
        return subjects


def rcpt(postfix: Postfix, recipient: str, size: int | None = None, sender: str = "sender@elsewhere.example"):
    with postfix.smtp() as s:
        s.mail(sender, [f"SIZE={size}"] if size is not None else [])
        code, msg = s.rcpt(recipient)
        return code, msg.decode()


# -- LMTP delivery and the switch from virtual(8) --------------------------------------------

def test_switch_to_lmtp(
        daemons, postfix, dovecot):
    """Mail delivered by virtual(8) before the switch is read over IMAP and new mail lands
    beside it."""
    _, _, before = daemons
    postfix.send("foo@example.com", "delivered by LMTP after the switch")
    after = postfix.delivered("example.com/foo/", "delivered by LMTP after the switch")
    assert after.parent == before.parent  # the same maildir's new/
    postfix.logged(r"to=<foo@example\.com>.*relay=[^ ]*private/dovecot-lmtp.*status=sent")
    subjects = imap_subjects(dovecot, "foo@example.com", FOO_PW)
    assert "delivered by virtual(8) before the switch" in subjects
    assert "delivered by LMTP after the switch" in subjects


def test_maps_postconf_defaults_to_lmtp_and_keeps_virtual8_as_a_choice(postfix, tmp_path):
    (tmp_path / "main.cf").write_text("compatibility_level = 3.6\n")  # Postfix's stock settings
    where = ["--config-dir", str(tmp_path), "--vmail-user", "nobody", "--vmail-group", "nogroup"]
    lmtp = cli(["maps", "postconf", "--dest", str(postfix.maps), *where], check=True).stdout
    lmtp = lmtp.replace(f"postconf -c {tmp_path} ", "postconf ").splitlines()
    assert "postconf -e 'virtual_transport = lmtp:unix:private/dovecot-lmtp'" in lmtp
    assert "postconf -e 'recipient_delimiter = +'" in lmtp
    assert ("postconf -e 'smtpd_recipient_restrictions = reject_unlisted_recipient,"
            " check_policy_service unix:private/quota-status'") in lmtp
    virtual = cli(["maps", "postconf", "--dest", str(postfix.maps), "--delivery", "virtual", *where], check=True).stdout
    assert "'virtual_transport = virtual'" in virtual and "quota-status" not in virtual
    bad = cli(["maps", "postconf", "--delivery", "procmail"])
    assert bad.exit_code != 0 and "procmail" in bad.stderr


def test_lmtp_install_files(dovecot):
    """`dovecot install` writes the LMTP include and dict files 0640 and prints no password."""
    conf = dovecot.sql_conf.parent
    include = (conf / "lmtp-mailbook.conf.ext").read_text()
    assert f"unix_listener {dovecot.lmtp_include.parent.parent / 'postfix' / 'queue'}/private/dovecot-lmtp" in include
    assert "user = nobody\n    group = nogroup" in include
    quota = (conf / "dovecot-dict-quota.conf.ext").read_text()
    # user=mailquota (2.3's connect line) or user = "mailquota" (2.4's parameters)
    assert re.search(r'\buser ?= ?"?mailquota\b', quota) and QUOTA_PW in quota
    assert re.search(r'\buser ?= ?"?mailauth\b', (conf / "dovecot-dict-sieve.conf.ext").read_text())
    for name in ("lmtp-mailbook.conf.ext", "dovecot-dict-quota.conf.ext", "dovecot-dict-sieve.conf.ext"):
        assert (conf / name).stat().st_mode & 0o777 == 0o640, name


def test_alias_and_alias_domain_mail_arrives_through_lmtp(postfix):
    postfix.send("team@example.com", "to the team alias")
    postfix.delivered("example.com/foo/", "to the team alias")
    postfix.send("bar@example.net", "to bar through the alias domain")
    postfix.delivered("example.com/bar/", "to bar through the alias domain")


# -- plus-addressing -------------------------------------------------------------------------

def test_a_tagged_address_reaches_its_mailbox_never_the_catch_all(postfix):
    for address in ("foo+news@example.com", "Foo+Other@EXAMPLE.com", "foo+net@example.net", "team+x@example.com"):
        postfix.send(address, f"tagged {address}")
        postfix.delivered("example.com/foo/", f"tagged {address}")
        assert not postfix.messages("example.com/catchall/", f"tagged {address}"), address


def test_a_tagged_unknown_user_goes_to_the_catch_all_or_is_refused_at_rcpt(postfix):
    postfix.send("nobody+x@example.com", "tagged unknown with a catch-all")
    postfix.delivered("example.com/catchall/", "tagged unknown with a catch-all")
    for address in ("nobody+x@example.org", "sleepy+x@example.com", "sleepy@example.com"):
        code, msg = rcpt(postfix, address)
        assert code == 550 and "5.1.1" in msg, (address, code, msg)


# -- quota at RCPT ----------------------------------------------------------------------------

def test_over_quota_refused_at_rcpt(postfix, admin_dsn):
    """Over quota is refused at RCPT by size and when full and a raise takes effect at once."""
    cli(["mailbox", "quota", "full@example.com", "--bytes", "3000", "--dsn", admin_dsn], check=True)
    postfix.send("full@example.com", "fills half", body="x" * 1200)
    postfix.delivered("example.com/full/", "fills half")
    assert rcpt(postfix, "full@example.com", size=1000)[0] == 250     # fits
    code, msg = rcpt(postfix, "full@example.com", size=5000)          # would not fit
    assert code == 552 and msg.startswith("5.2.2") and "Mailbox is full" in msg, (code, msg)
    assert rcpt(postfix, "full+tag@example.com", size=5000)[0] == 552  # a tag changes nothing
    # raised with one SQL call: the very next RCPT sees it, nothing reloaded
    cli(["mailbox", "quota", "full@example.com", "--bytes", "100000", "--dsn", admin_dsn], check=True)
    assert rcpt(postfix, "full@example.com", size=5000)[0] == 250
    with postfix.smtp() as s:
        message = "From: a@elsewhere.example\r\nTo: full@example.com\r\nSubject: after the raise\r\n\r\n" + "y" * 5000
        s.mail("a@elsewhere.example", [f"SIZE={len(message)}"])
        assert s.rcpt("full@example.com")[0] == 250
        assert s.data(message)[0] == 250
    postfix.delivered("example.com/full/", "after the raise")
    # lowered below what it holds: full, refused at RCPT whatever the size
    cli(["mailbox", "quota", "full@example.com", "--bytes", "1000", "--dsn", admin_dsn], check=True)
    assert rcpt(postfix, "full@example.com")[0] == 552
    assert rcpt(postfix, "nobody@example.org")[0] == 550              # unknown users: still 550 first


def test_lmtp_defers_not_bounces(postfix, admin_dsn):
    """LMTP defers rather than bounces a message that got past the RCPT check."""
    cli(["mailbox", "quota", "later@example.com", "--bytes", "2000", "--dsn", admin_dsn], check=True)
    # no SIZE=: the RCPT check cannot know, Postfix accepts; LMTP then says 4xx
    with postfix.smtp() as s:
        s.mail("bar@example.com")  # smtplib's sendmail() would add SIZE= itself
        assert s.rcpt("later@example.com")[0] == 250
        assert s.data("From: bar@example.com\r\nTo: later@example.com\r\nSubject: too big, no SIZE\r\n\r\n"
                      + "z" * 6000 + "\r\n")[0] == 250
    wait_for(lambda: re.search(r"to=<later@example\.com>.*status=deferred.*4\.2\.2", postfix.log_text()),
             "the deferral in Postfix's log")
    assert not re.search(r"to=<later@example\.com>.*status=bounced", postfix.log_text())
    cli(["mailbox", "quota", "later@example.com", "--bytes", "100000", "--dsn", admin_dsn], check=True)
    postfix.postqueue_flush()
    postfix.delivered("example.com/later/", "too big, no SIZE", timeout=40)
    assert not postfix.messages("example.com/bar/", "Undelivered")     # no bounce to the sender


# -- usage in SQL -----------------------------------------------------------------------------

def doveadm_usage(dovecot, email: str) -> tuple[int, int, int]:
    """(vsize bytes, messages) of INBOX, and quota get's STORAGE value (KiB)."""
    r = dovecot.doveadm("-f", "tab", "mailbox", "status", "-u", email, "vsize messages", "INBOX")
    assert r.returncode == 0, r.stderr
    head, values = (line.split("\t") for line in r.stdout.splitlines()[:2])
    status = dict(zip(head, values))
    vsize, messages = int(status["vsize"]), int(status["messages"])
    q = dovecot.doveadm("-f", "tab", "quota", "get", "-u", email)
    storage = next(line.split("\t") for line in q.stdout.splitlines() if "\tSTORAGE\t" in line)
    return vsize, messages, int(storage[2])


def test_usage_rows_match_doveadm_after_delivery_append_and_expunge(postfix, dovecot, admin_dsn):
    postfix.send("bar@example.com", "counted one")
    postfix.delivered("example.com/bar/", "counted one")

    def matches():
        vsize, messages, kib = doveadm_usage(dovecot, "bar@example.com")
        row = usage(admin_dsn, "bar@example.com")
        return row == (vsize, messages) and kib == math.ceil(vsize / 1024) and (vsize, messages)

    vsize, messages = wait_for(matches, "bar's usage row to match doveadm")
    # an IMAP APPEND (a mail process running as the vmail user) and an expunge update it too
    with imaplib.IMAP4("127.0.0.1", dovecot.port) as imap:
        imap.login("bar@example.com", "bar pw pw")
        assert imap.append("INBOX", None, None, b"Subject: appended\r\n\r\n" + b"a" * 3000 + b"\r\n")[0] == "OK"
        wait_for(lambda: usage(admin_dsn, "bar@example.com")[1] == messages + 1, "the APPEND in the usage row")
        assert usage(admin_dsn, "bar@example.com")[0] > vsize + 3000
        imap.select("INBOX")
        _, data = imap.search(None, "SUBJECT", "appended")
        imap.store(data[0].split()[0], "+FLAGS", "\\Deleted")
        imap.expunge()
        imap.logout()
    wait_for(matches, "the expunge in the usage row")
    out = cli(["mailbox", "quota", "bar@example.com", "--json", "--dsn", admin_dsn], check=True).stdout
    assert f'"used_bytes": {vsize}' in out and f'"used_messages": {messages}' in out
    listed = cli(["mailbox", "list", "--domain", "example.com", "--json", "--dsn", admin_dsn], check=True).stdout
    assert f'"used_bytes": {vsize}' in listed


def test_mailquota_may_write_usage_counters_and_nothing_else(cluster, admin_dsn):
    dsn = f"host=127.0.0.1 port={cluster.port} dbname={DB} user=mailquota password={QUOTA_PW}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO quota_usage (bytes, messages, email) VALUES (1, 1, 'robot@example.com')"
                     " ON CONFLICT (email) DO UPDATE SET bytes = 2, messages = 2")
        for statement in ("SELECT bytes FROM quota_usage", "SELECT email FROM users", "DELETE FROM quota_usage",
                          "UPDATE quota_usage SET email = 'x@example.com'", "SELECT * FROM vacations",
                          "SELECT * FROM sieve_scripts", "SELECT add_domain('evil.example')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        with pytest.raises(psycopg.errors.ForeignKeyViolation):  # only for a mailbox that exists
            conn.execute("INSERT INTO quota_usage (bytes, messages, email) VALUES (1, 1, 'ghost@example.com')")


def test_usage_row_removed_and_warned(postfix, admin_dsn):
    """Removing a mailbox removes its usage row and doctor warns at 90 percent."""
    postfix.send("robot@example.com", "robot fills up", body="r" * 2000)
    postfix.delivered("example.com/robot/", "robot fills up")
    wait_for(lambda: (usage(admin_dsn, "robot@example.com") or (0,))[0] and
             usage(admin_dsn, "robot@example.com")[1] >= 1, "robot's usage row")
    used = usage(admin_dsn, "robot@example.com")[0]
    sql(admin_dsn, "SELECT set_mailbox_quota('robot@example.com', %s)", int(used / 0.95))
    r = cli(["doctor", "--dsn", admin_dsn, "--json"])
    assert "robot@example.com uses 95% of its quota" in r.stdout or "robot@example.com uses 9" in r.stdout, r.stdout
    sql(admin_dsn, "SELECT remove_mailbox('robot@example.com')")
    assert sql(admin_dsn, "SELECT count(*) FROM quota_usage WHERE email = 'robot@example.com'") == [(0,)]


# -- vacation replies --------------------------------------------------------------------------

def vacation_log(dovecot, pattern: str, timeout: float = 20):
    return wait_for(lambda: re.search(pattern, dovecot.log_text()), f"Dovecot's log: {pattern}", timeout)


def test_vacation_one_reply(postfix, dovecot, admin_dsn):
    """A vacationing mailbox gets its mail and the sender exactly one reply for two."""
    body = "I am away.\nBack on Monday; \"urgent\"? Ask bar\\baz.\n"
    cli(["vacation", "set", "foo@example.com", "--subject", "Out of office", "--body-file", "-", "--days", "3",
         "--dsn", admin_dsn], input=body, check=True)
    for n in (1, 2):
        postfix.send("foo@example.com", f"while away {n}", sender="bar@example.com")
        postfix.delivered("example.com/foo/", f"while away {n}")
    vacation_log(dovecot, r"discarded duplicate vacation response to <bar@example\.com>")
    reply = postfix.delivered("example.com/bar/", "Out of office")
    text = reply.read_text()
    assert "Auto-Submitted: auto-replied" in text and "Back on Monday; \"urgent\"? Ask bar\\baz." in text
    time.sleep(1)
    assert len(postfix.messages("example.com/bar/", "Out of office")) == 1


def test_no_reply_to_lists_bulk_auto_submitted_or_the_null_sender(postfix, dovecot, admin_dsn):
    postfix.send("foo@example.com", "from a list", sender="list@example.com",
                 headers="List-Id: <news.example.com>\r\n")
    vacation_log(dovecot, r"discarding vacation response to mailinglist recipient <list@example\.com>")
    postfix.send("foo@example.com", "bulk mail", sender="bulk@example.com", headers="Precedence: bulk\r\n")
    vacation_log(dovecot, r"discarding vacation response to precedence=bulk message from <bulk@example\.com>")
    postfix.send("foo@example.com", "a robot's", sender="robot2@example.org",
                 headers="Auto-Submitted: auto-generated\r\n")
    vacation_log(dovecot, r"discarding vacation response to auto-submitted message from <robot2@example\.org>")
    postfix.send("foo@example.com", "a bounce", sender="")
    vacation_log(dovecot, r"discarded vacation reply to <>")
    for box in ("list", "bulk"):
        assert not postfix.messages(f"example.com/{box}/", "Out of office"), box


def test_no_reply_outside_the_dates_or_after_clear_vacation(postfix, dovecot, admin_dsn):
    sql(admin_dsn, "SELECT set_vacation('foo@example.com', 'Not yet', 'later', now() + interval '1 day')")
    postfix.send("foo@example.com", "before the vacation", sender="baz@example.org")
    postfix.delivered("example.com/foo/", "before the vacation")
    sql(admin_dsn, "SELECT set_vacation('foo@example.com', 'Over', 'gone', now() - interval '2 days',"
                   " now() - interval '1 day')")
    postfix.send("foo@example.com", "after the vacation", sender="baz@example.org")
    postfix.delivered("example.com/foo/", "after the vacation")
    cli(["vacation", "clear", "foo@example.com", "--dsn", admin_dsn], check=True)
    postfix.send("foo@example.com", "after clear_vacation", sender="baz@example.org")
    postfix.delivered("example.com/foo/", "after clear_vacation")
    # and the control: with a reply due, baz gets one
    sql(admin_dsn, "SELECT set_vacation('foo@example.com', 'Now away', 'away')")
    postfix.send("foo@example.com", "during the vacation", sender="baz@example.org")
    postfix.delivered("example.org/baz/", "Now away")
    assert [p for p in ("Not yet", "Over", "Out of office") if postfix.messages("example.org/baz/", p)] == []
    sql(admin_dsn, "SELECT clear_vacation('foo@example.com')")


def test_a_reply_answers_for_the_mailboxs_aliases_and_alias_domains(postfix, dovecot, admin_dsn):
    sql(admin_dsn, "SELECT set_vacation('foo@example.com', 'Alias reply', 'away')")
    try:
        # addressed to the alias (To: team@), delivered to foo: still foo's own mail
        postfix.send("team@example.com", "to team while away", sender="later@example.com")
        postfix.delivered("example.com/later/", "Alias reply")
    finally:
        sql(admin_dsn, "SELECT clear_vacation('foo@example.com')")


# -- the user's own Sieve script beside mailbook's vacation -------------------------------------

def personal_script(postfix, maildir: str, script: str) -> None:
    """What ManageSieve would leave in the mailbox's home (sieve = file:~/sieve;
    active=~/dovecot.sieve): the script, and the link that makes it the active one,
    owned by the mail user (nobody here) so Pigeonhole may compile it beside."""
    import os
    import shutil
    home = postfix.mail / maildir
    (home / "sieve").mkdir(exist_ok=True)
    (home / "sieve" / "mine.sieve").write_text(script)
    link = home / "dovecot.sieve"
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink("sieve/mine.sieve", link)
    for path in (home / "sieve", home / "sieve" / "mine.sieve"):
        shutil.chown(path, "nobody", "nogroup")
    os.lchown(link, pwd_uid("nobody"), -1)
    for stale in (home / "sieve").glob("*.svbin"):
        stale.unlink()


def pwd_uid(user: str) -> int:
    import pwd
    return pwd.getpwnam(user).pw_uid


def flagged_subjects(dovecot, user: str, password: str, folder: str) -> list[str]:
    with imaplib.IMAP4("127.0.0.1", dovecot.port) as imap:
        imap.login(user, password)
        if imap.select(folder, readonly=True)[0] != "OK":
            return []
        _, data = imap.search(None, "FLAGGED")
        out = []
        for num in data[0].split():
            _, parts = imap.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            out.append(parts[0][1].decode().strip().removeprefix("Subject: "))
        imap.logout()
        return out


def test_own_script_and_vacation(postfix, dovecot, admin_dsn):
    """The user's own script files and flags mail while mailbook's vacation replies."""
    personal_script(postfix, "example.com/foo/",
                    'require ["fileinto", "imap4flags", "mailbox"];\r\n'
                    'if header :contains "subject" "project" {\r\n'
                    '  addflag "\\\\Flagged";\r\n  fileinto :create "Projects";\r\n}\r\n')
    sql(admin_dsn, "SELECT set_vacation('foo@example.com', 'Away (mailbook)', 'away')")
    try:
        postfix.send("foo@example.com", "project plan", sender="list@example.com")
        postfix.delivered("example.com/list/", "Away (mailbook)")  # mailbook's reply went out
        wait_for(lambda: flagged_subjects(dovecot, "foo@example.com", FOO_PW, "Projects") == ["project plan"],
                 "the user's script to file and flag the message")
        assert "project plan" not in imap_subjects(dovecot, "foo@example.com", FOO_PW)  # not kept in INBOX too
    finally:
        sql(admin_dsn, "SELECT clear_vacation('foo@example.com')")
    # without a reply due, the user's script alone still files
    postfix.send("foo@example.com", "project budget", sender="list@example.com")
    wait_for(lambda: "project budget" in flagged_subjects(dovecot, "foo@example.com", FOO_PW, "Projects"),
             "the user's script without mailbook's vacation")


def test_vacation_runs_first(
        postfix, dovecot, admin_dsn):
    """Mailbook's vacation runs first and the user's own vacation answers only when none is due."""
    # Pigeonhole runs sieve_before (mailbook's) first; a vacation action in a later
    # script of the same delivery is dropped, so the sender never gets two replies
    personal_script(postfix, "example.com/foo/",
                    'require ["vacation"];\r\nvacation :days 1 :subject "Mine (own script)" "my own words";\r\n')
    sql(admin_dsn, "SELECT set_vacation('foo@example.com', 'Away (mailbook)', 'away')")
    try:
        postfix.send("foo@example.com", "while both are set", sender="bulk@example.com")
        postfix.delivered("example.com/foo/", "while both are set")
        postfix.delivered("example.com/bulk/", "Away (mailbook)")
        time.sleep(2)
        assert not postfix.messages("example.com/bulk/", "Mine (own script)")
    finally:
        sql(admin_dsn, "SELECT clear_vacation('foo@example.com')")
    postfix.send("foo@example.com", "after clear_vacation", sender="bulk@example.com")
    postfix.delivered("example.com/bulk/", "Mine (own script)")  # the user's own reply, now alone
    assert len(postfix.messages("example.com/bulk/", "Away (mailbook)")) == 1
    (postfix.mail / "example.com/foo/dovecot.sieve").unlink()
