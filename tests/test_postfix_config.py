"""The one reader of a Postfix configuration (postconf.PostfixConfig) and the one `postmap -q`
(postconf.postmap_query), which `maps postconf`, `maps check`, doctor and `doctor --live`
share: their answers from the real postconf and postmap on a configuration of their own."""

from __future__ import annotations

import pytest

from mailbook import Failure
from mailbook.postfix.postconf import PostfixConfig, postmap_query, postmap_stdin
from tests.harness.process import private_dir, remove, require_program

MASTER_CF = """\
smtp       inet  n       -       y       -       -       smtpd
submission inet  n       -       y       -       -       smtpd
  -o syslog_name=postfix/submission
  -o smtpd_client_restrictions=
  -o { smtpd_tls_security_level = encrypt }
"""


@pytest.fixture
def conf():
    require_program("postconf")
    root = private_dir("mailbook-postfix-config-")
    (root / "main.cf").write_text("compatibility_level = 3.6\nmyhostname = mx.example.org\n"
                                  "mydestination = $myhostname, localhost\n")
    (root / "master.cf").write_text(MASTER_CF)
    (root / "table").write_text("known@example.org found-it\n")
    try:
        yield root
    finally:
        remove(root)


def test_main_cf_values(conf):
    """values() are main.cf's and Postfix's defaults, expanded on request; explicit() only
    what main.cf sets; value() one expanded value, "" for an unknown parameter."""
    pf = PostfixConfig(conf)
    assert pf.values(["mydestination", "smtpd_tls_security_level"]) == {
        "mydestination": "$myhostname, localhost", "smtpd_tls_security_level": ""}
    assert pf.values(["mydestination"], expand=True) == {"mydestination": "mx.example.org, localhost"}
    assert pf.explicit(["myhostname", "mydomain"]) == {"myhostname": "mx.example.org"}
    assert pf.value("mydestination") == "mx.example.org, localhost" and pf.value("no_such_parameter") == ""
    assert pf.expand("${myhostname}/$(myhostname)") == "mx.example.org/mx.example.org"


def test_master_cf_services_and_overrides(conf):
    """master() has each service's fields and its -o overrides by (service, type); an
    override set to nothing is "" (it is not main.cf's value)."""
    services, overrides = PostfixConfig(conf).master()
    assert [fields[:2] for fields in services] == [["smtp", "inet"], ["submission", "inet"]]
    assert services[1][7] == "smtpd"
    assert overrides == {("submission", "inet"): {"smtpd_client_restrictions": "",
                                                  "smtpd_tls_security_level": "encrypt",
                                                  "syslog_name": "postfix/submission"}}


def test_config_without_master_or_main_cf(conf):
    """A main.cf alone has no services; without main.cf, values() is one-line Failure naming it."""
    (conf / "master.cf").unlink()
    assert PostfixConfig(conf).master() == ([], {})
    (conf / "main.cf").unlink()
    with pytest.raises(Failure, match=rf"^cannot read {conf}/main.cf \(.*\); configure Postfix first") as exc:
        PostfixConfig(conf).values(["mydestination"])
    assert "\n" not in str(exc.value)
    assert PostfixConfig(conf).value("mydestination") == ""


def test_shown_commands(conf):
    """shown() is the command as one types it, -c only for a config dir given, quoted."""
    assert PostfixConfig(None).shown("postconf") == "postconf"
    assert PostfixConfig(conf).shown("postmap", "-q", "a b", "pgsql:/x") == f"postmap -c {conf} -q 'a b' pgsql:/x"


def test_postmap_query_answers(conf):
    """Found: (True, value); not in the table: (True, None); a table that cannot be read:
    (False, postmap's reason)."""
    require_program("postmap")
    table = f"texthash:{conf}/table"
    assert postmap_query("known@example.org", table, conf) == (True, "found-it")
    assert postmap_query("other@example.org", table, conf) == (True, None)
    ok, why = postmap_query("known@example.org", f"texthash:{conf}/missing", conf)
    assert not ok and why.startswith("fatal: open database") and "missing" in why, why


def test_postmap_query_pgsql_cause(conf):
    """A pgsql: table whose server is not there: the cause from postmap's warning, not the
    fatal "query error" line after it."""
    require_program("postmap")
    (conf / "down.cf").write_text("hosts = 127.0.0.1:1\ndbname = mail\nuser = nobody\n"
                                  "query = SELECT 1 WHERE '%s' = ''\n")
    ok, why = postmap_query("known@example.org", f"pgsql:{conf}/down.cf", conf)
    assert not ok and "connect to pgsql server 127.0.0.1:1" in why, why


def test_postmap_stdin(conf):
    """Keys on stdin: the found ones printed, exit 1 (some not found) no failure; a table
    that cannot be read is a Failure naming the command."""
    require_program("postmap")
    out = postmap_stdin(["-q", "-"], f"texthash:{conf}/table", "known@example.org\nother@example.org\n", conf)
    assert out == "known@example.org\tfound-it\n"
    with pytest.raises(Failure, match=rf"^postmap -q - texthash:{conf}/missing failed: .*fatal"):
        postmap_stdin(["-q", "-"], f"texthash:{conf}/missing", "a\n", conf)
