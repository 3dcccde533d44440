"""Vacation subjects and bodies are user text: whatever is typed, set_vacation() either
refuses it with a clear 22xxx error and writes nothing, or stores it, and then the script
Dovecot gets (view sieve_scripts) compiles in Pigeonhole's own compiler and does exactly
one thing: a vacation reply whose subject and text are the typed ones. Run through
Debian's `sieve-test` (dovecot-sieve), hostile pieces first, then generated (hypothesis)."""

from __future__ import annotations

import re

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness.data import HOSTILE
from tests.harness.database import ADMIN_LOGIN
from tests.harness.dovecot import tool_config
from tests.harness.process import private_dir, remove, require_program, run

SIEVE_SPECIALS = ['"; discard; "', '\\"', '\\', '";\r\nredirect "evil@example.org";\r\n"', "text:\r\n.\r\n",
                  "}", "{", "#", "/*", "*/", "\r\n.\r\n", "require [\"fileinto\"];", "${x}", "\u2028", "\x85"]
piece = st.sampled_from(HOSTILE + SIEVE_SPECIALS) | st.text(max_size=20)
hostile_text = st.lists(piece, min_size=1, max_size=5).map("".join)


@pytest.fixture
def vacationer(db):
    tmp_path = private_dir("mailbook-sieve-")  # sieve-test reads the script as the mail user
    db.execute("UPDATE settings SET bcrypt_cost = 4")
    db.execute("SELECT add_domain('example.com')")
    db.execute("SELECT add_mailbox('foo@example.com', 'pw')")
    conf = tmp_path / "dovecot.conf"
    conf.write_text(tool_config(tmp_path / "mail"))
    (tmp_path / "message.eml").write_text("From: sender@elsewhere.example\r\nTo: foo@example.com\r\n"
                                          "Subject: hello\r\n\r\nhi\r\n")
    yield db, tmp_path
    remove(tmp_path)


def lines(text: str) -> str:
    return re.sub(r"\r\n|\r|\n", "\n", text)


def check(db, root, subject: str, body: str) -> None:
    before = db.execute("SELECT count(*) FROM vacations").fetchone()
    db.execute(f"SET ROLE {ADMIN_LOGIN}")
    try:
        db.execute("SELECT set_vacation('foo@example.com', %s, %s)", (subject, body))
    except psycopg.Error as exc:
        if exc.sqlstate is None and "\x00" in subject + body:
            pass  # psycopg refuses NUL before sending (DataError): nothing reaches the server
        else:
            assert exc.sqlstate and exc.sqlstate.startswith("22"), (exc.sqlstate, str(exc), subject, body)
        db.execute("RESET ROLE")
        assert db.execute("SELECT count(*) FROM vacations").fetchone() == before
        return
    except ValueError:  # psycopg refuses NUL before sending: nothing reaches the server
        assert "\x00" in subject + body
        db.execute("RESET ROLE")
        return
    db.execute("RESET ROLE")
    script = db.execute("SELECT script FROM sieve_scripts WHERE username = 'foo@example.com'").fetchone()[0]
    path = root / "vacation.sieve"
    path.write_bytes(script.encode())
    path.chmod(0o644)
    r = run([require_program("/usr/bin/sieve-test"), "-c", str(root / "dovecot.conf"), "-x", "+vacation",
             str(path), str(root / "message.eml")])
    assert r.returncode == 0, (r.stdout, r.stderr, script)
    actions = r.stdout.split("Performed actions:", 1)[1].split("Implicit keep:", 1)[0]
    assert actions.count(" * ") == 1 and " * send vacation message:" in actions, actions  # nothing but the reply
    assert re.search(r"=> subject : (.*)", actions).group(1) == subject, (actions, subject)
    sent = lines(actions).split("START MESSAGE\n", 1)[1].rsplit("\nEND MESSAGE", 1)[0]
    assert sent == lines(body), (sent, body)


@pytest.mark.parametrize("text", HOSTILE + SIEVE_SPECIALS, ids=range(len(HOSTILE + SIEVE_SPECIALS)))
def test_hostile_vacation_pieces(vacationer, text):
    """Each hostile piece as subject and body is refused or replied verbatim."""
    db, root = vacationer
    check(db, root, text, text)
    check(db, root, "Away " + text, "Back soon. " + text + " Bye.")


def test_generated_text_is_refused_or_replied_verbatim(vacationer):
    db, root = vacationer

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(hostile_text, hostile_text)
    def one(subject, body):
        check(db, root, subject, body)

    one()
