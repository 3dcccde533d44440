"""The SQL API as a psql user calls it: a member of mailadmin, on a migrated database.

Every refusal is checked for its SQLSTATE, for a message that names the bad value, and
for leaving every table exactly as it was.
"""

from __future__ import annotations

import ctypes

import psycopg
import pytest

from tests.harness.database import table_checksums, verified
from tests.harness.process import require_program, run


def one(conn, query, params=()):
    return conn.execute(query, params).fetchone()[0]


@pytest.fixture
def hosted(admin):
    admin.execute("SELECT add_domain('example.com')")
    return admin


def refused(conn, query, params, sqlstate, *words):
    """Run query, expect SQLSTATE and a message containing each word; nothing may change."""
    before = table_checksums(conn)
    with pytest.raises(psycopg.Error) as err:
        conn.execute(query, params)
    assert err.value.sqlstate == sqlstate, err.value
    message = err.value.diag.message_primary
    for w in words:
        assert w in message, message
    assert table_checksums(conn) == before
    return message


# -- add_mailbox and passwords -----------------------------------------------------------

def test_add_mailbox_stores_a_bcrypt_hash_dovecot_reads_at_cost_10(hosted, db):
    row = hosted.execute(
        "SELECT email, maildir, realname FROM add_mailbox('foo@example.com', 'secret', 'Foo Lastname')"
    ).fetchone()
    assert row == ("foo@example.com", "example.com/foo/", "Foo Lastname")
    db.execute("RESET ROLE")
    stored = one(db, "SELECT password FROM users WHERE email = 'foo@example.com'")
    assert stored.startswith("{BLF-CRYPT}$2a$10$") and len(stored) == len("{BLF-CRYPT}") + 60
    assert one(db, "SELECT crypto.crypt('secret', %s) = %s", (stored[11:], stored[11:]))


def test_add_mailbox_lowercases_the_address(hosted):
    assert one(hosted, "SELECT email FROM add_mailbox('Foo.Bar@EXAMPLE.com', 'pw')") == "foo.bar@example.com"
    assert verified(hosted, "FOO.BAR@example.COM", "pw")


def test_add_mailbox_derives_maildirs_that_differ_across_domains(hosted):
    hosted.execute("SELECT add_domain('example.org')")
    a = one(hosted, "SELECT maildir FROM add_mailbox('foo@example.com', 'pw')")
    b = one(hosted, "SELECT maildir FROM add_mailbox('foo@example.org', 'pw')")
    assert (a, b) == ("example.com/foo/", "example.org/foo/")


def test_add_mailbox_uses_the_cost_the_owner_set(hosted, db):
    db.execute("RESET ROLE")
    db.execute("UPDATE settings SET bcrypt_cost = 4")
    db.execute("SET ROLE alice")
    hosted.execute("SELECT add_mailbox('foo@example.com', 'pw')")
    db.execute("RESET ROLE")
    assert one(db, "SELECT password FROM users").startswith("{BLF-CRYPT}$2a$04$")


def test_mailadmin_cannot_lower_the_bcrypt_cost(admin):
    refused(admin, "UPDATE settings SET bcrypt_cost = 4", (), "42501", "settings")


def test_add_mailbox_duplicate_errors_and_changes_nothing(hosted):
    hosted.execute("SELECT add_mailbox('foo@example.com', 'pw')")
    refused(hosted, "SELECT add_mailbox('FOO@example.com', 'other')", (), "23505", '"foo@example.com"', "exists")


def test_add_mailbox_unhosted_domain(hosted):
    """`add_mailbox()` in an unhosted domain names the domain and changes nothing."""
    msg = refused(hosted, "SELECT add_mailbox('foo@example.org', 'pw')", (), "23503", '"example.org"', "not hosted")
    assert msg


@pytest.mark.parametrize(
    "address, words",
    [
        ("foo", ["not an email address"]),
        ("foo@@example.com", ["not an email address"]),
        ("foo bar@example.com", ["local part"]),
        ("foo/../x@example.com", ["local part"]),
        ("user%other@example.com", ["local part"]),
        (".foo@example.com", ["local part"]),
        ("foo@example", ["not a valid domain name"]),
        ("foo@exämple.com", ["not a valid domain name", "punycode"]),
        ("x" * 65 + "@example.com", ["longer than 64"]),
        ("foo@" + "a" * 250 + ".com", ["longer than"]),
        ("foo\n@example.com", ["local part"]),
    ],
)
def test_add_mailbox_invalid_address_is_refused_with_its_reason(hosted, address, words):
    refused(hosted, "SELECT add_mailbox(%s, 'pw')", (address,), "22023", *words)


@pytest.mark.parametrize(
    "maildir, words",
    [
        ("../etc/", ['".."']),
        ("example.com/../../etc/", ['".."']),
        ("/var/mail/foo/", ["relative"]),
        ("foo", ['end with "/"']),
        ("foo//bar/", ["empty path segments"]),
        ("./foo/", ['"."']),
        ("foo\x01/", ["control characters"]),
        ("foo bar/", ["may only use"]),
        ("%u/", ["may only use"]),
    ],
)
def test_add_mailbox_path_tricks_in_maildir_are_refused(hosted, maildir, words):
    refused(hosted, "SELECT add_mailbox('foo@example.com', 'pw', NULL, %s)", (maildir,), "22023", *words)


def test_add_mailbox_shared_maildir_is_refused(hosted):
    hosted.execute("SELECT add_mailbox('foo@example.com', 'pw', NULL, 'shared/')")
    refused(hosted, "SELECT add_mailbox('bar@example.com', 'pw', NULL, 'shared/')", (), "23505", '"shared/"')


@pytest.mark.parametrize(
    "password, sqlstate, words",
    [
        ("", "22023", ["empty"]),
        (None, "22004", ["NULL"]),
        ("x" * 73, "22023", ["72 bytes"]),
        ("{BLF-CRYPT}$2y$05$abcdefghijklmnopqrstuuCv9FfEVw9dOhH0L3rLXXFGdEPb1l1mG", "22023", ["looks like a password hash"]),
    ],
)
def test_add_mailbox_bad_password_is_refused(hosted, password, sqlstate, words):
    refused(hosted, "SELECT add_mailbox('foo@example.com', %s)", (password,), sqlstate, *words)


def test_add_mailbox_null_address_is_22004(hosted):
    refused(hosted, "SELECT add_mailbox(NULL, 'pw')", (), "22004", "NULL")


def test_set_password_rehashes_and_verify_follows(hosted):
    hosted.execute("SELECT add_mailbox('foo@example.com', 'old')")
    hosted.execute("SELECT set_password('foo@example.com', 'new')")
    assert verified(hosted, "foo@example.com", "new") and not verified(hosted, "foo@example.com", "old")


def test_set_password_unknown_mailbox_is_p0002(hosted):
    refused(hosted, "SELECT set_password('ghost@example.com', 'x')", (), "P0002", '"ghost@example.com"')


# -- pre-hashed passwords from another server --------------------------------------------

# `doveadm pw -s BLF-CRYPT -r 5 -p secret` style output and its bare form
Y_HASH = None


@pytest.fixture
def y_hash(db):
    """A $2y$ bcrypt hash of 'secret', made the way Dovecot and PHP write them."""
    db.execute("RESET ROLE")
    h = one(db, "SELECT crypto.crypt('secret', crypto.gen_salt('bf', 4))")
    db.execute("SET ROLE alice")
    return "$2y$" + h[4:]


@pytest.mark.parametrize("form", ["{BLF-CRYPT}%s", "%s", "{blf-crypt}%s"])
def test_add_mailbox_hashed_accepts_2y_bcrypt_and_verify_reads_it(hosted, y_hash, form):
    hosted.execute("SELECT add_mailbox_hashed('foo@example.com', %s)", (form % y_hash,))
    assert verified(hosted, "foo@example.com", "secret") and not verified(hosted, "foo@example.com", "wrong")


def test_add_mailbox_hashed_refuses_a_plaintext_without_echoing_it(hosted):
    msg = refused(hosted, "SELECT add_mailbox_hashed('foo@example.com', 'hunter2')", (), "22023", "recognised")
    assert "hunter2" not in msg


def test_add_mailbox_hashed_refuses_plain_scheme(hosted):
    refused(hosted, "SELECT add_mailbox_hashed('foo@example.com', '{PLAIN}hunter2')", (), "22023", "plaintext")


SHA512 = "{SHA512-CRYPT}$6$saltsalt$" + "a" * 86


def test_sha512_crypt_hash_is_stored_and_verify_refuses_to_guess(hosted):
    hosted.execute("SELECT add_mailbox_hashed('foo@example.com', %s)", ("$6$saltsalt$" + "a" * 86,))
    hosted.execute("SET ROLE mailowner")  # the DBA: mailadmin may not verify passwords
    with pytest.raises(psycopg.Error) as err:
        hosted.execute("SELECT verify_password('foo@example.com', 'secret')")
    assert err.value.sqlstate == "0A000"
    assert "SHA512-CRYPT" in err.value.diag.message_primary


# SHA512-CRYPT hashes with salts Dovecot's crypt() (libxcrypt) verifies or refuses, each
# made with libxcrypt for the password "Secret-12"; PostfixAdmin's sha512.b64 salts are
# base64, so about one in five has a "+" (migration 0102 takes them)
SALTS_DOVECOT_VERIFIES = ["ab+c/de+fghijklm", "saltsalt", "rounds=5000$a+b"]
SALTS_DOVECOT_REFUSES = ["ab*cd", "ab!cd", "ab;cd", "ab\\cd", "ab cd"]


def libxcrypt(password: str, setting: str) -> str:
    """crypt(3) from libxcrypt (libcrypt.so.1), the function Dovecot's {SHA512-CRYPT} calls.
    Through ctypes: Python 3.13 (Debian 13) no longer has the `crypt` module. libxcrypt
    answers a failure token ("*0"/"*1") for a setting it refuses; NULL is taken as "*0"."""
    libcrypt = ctypes.CDLL("libcrypt.so.1", use_errno=True)
    libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libcrypt.crypt.restype = ctypes.c_char_p
    made = libcrypt.crypt(password.encode(), setting.encode())
    return made.decode() if made else "*0"


def test_libxcrypt_is_the_c_library_crypt():
    """The helper gives SHA-crypt's published test vector (Drepper's specification) on
    Python 3.11 and 3.13 alike, verifies with the whole hash as setting, and answers a
    failure token for a salt character libxcrypt refuses."""
    vector = ("$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OT"
              "LiBFdcbYEdFCoEOfaS35inz1")
    assert libxcrypt("Hello world!", "$6$saltstring") == vector
    assert libxcrypt("Hello world!", vector) == vector
    assert libxcrypt("Hello world!", "$6$ab*cd").startswith("*")


def test_a_sha_crypt_hash_is_taken_exactly_when_dovecot_verifies_it(hosted):
    doveadm = require_program("doveadm")
    stored = {}
    for salt in SALTS_DOVECOT_VERIFIES + SALTS_DOVECOT_REFUSES:
        made = libxcrypt("Secret-12", "$6$" + salt)
        stored[salt] = "{SHA512-CRYPT}" + (made if made.startswith("$6$") else f"$6${salt}$" + "a" * 86)
        dovecot = run([doveadm, "pw", "-t", stored[salt], "-p", "Secret-12"])
        error = hosted.execute("SELECT password_hash_error(%s)", (stored[salt],)).fetchone()[0]
        assert (dovecot.returncode == 0) == (salt in SALTS_DOVECOT_VERIFIES), (salt, dovecot.stderr)
        assert (error is None) == (salt in SALTS_DOVECOT_VERIFIES), (salt, error)
    plus = stored[SALTS_DOVECOT_VERIFIES[0]]
    hosted.execute("SELECT add_mailbox_hashed('plus@example.com', %s)", (plus,))
    hosted.execute("SET ROLE mailowner")  # the DBA: mailadmin never reads hashes
    assert hosted.execute("SELECT password FROM users WHERE email = 'plus@example.com'").fetchone() == (plus,)


def test_verify_password_unknown_mailbox_is_p0002(hosted):
    hosted.execute("SET ROLE mailowner")
    refused(hosted, "SELECT verify_password('ghost@example.com', 'x')", (), "P0002", '"ghost@example.com"')


# -- the tutorial's own statements ---------------------------------------------------------

def test_tutorial_insert_with_bare_crypt_hash_still_works(db):
    db.execute("INSERT INTO transports (domain, gid, transport) VALUES ('yourdomain.com', 1000, 'virtual:')")
    db.execute("SET search_path = public, crypto")  # pgcrypto's schema since 0030: the DBA names it
    db.execute(
        "INSERT INTO users (email, password, realname, maildir)"
        " VALUES ('foo@yourdomain.com', crypt('ecnrypted_password', gen_salt('bf', 5)), 'Foo Lastname', 'foo/')"
    )
    db.execute("SET ROLE alice")
    assert verified(db, "foo@yourdomain.com", "ecnrypted_password")


def test_tutorial_unsalted_md5_insert_is_refused(db):
    db.execute("INSERT INTO transports (domain) VALUES ('yourdomain.com')")
    refused(db, "INSERT INTO users (email, password, realname, maildir) VALUES"
                " ('foo@yourdomain.com', md5('ecnrypted_password'), 'Foo Lastname', 'foo/')",
            (), "23514", "users_password_hashed")


def test_tutorial_alias_in_typo_domain_exmaple_is_refused(db):
    db.execute("INSERT INTO transports (domain, gid, transport) VALUES ('example.com', 1000, 'virtual:')")
    refused(db, "INSERT INTO aliases (alias, email) VALUES ('bar@exmaple.com', 'foo@example.com')",
            (), "23503", "aliases_domain_hosted")


def test_two_domains_may_share_one_vmail_gid(db):
    db.execute("INSERT INTO transports (domain, gid) VALUES ('example.com', 1000), ('example.org', 1000)")
    assert one(db, "SELECT count(*) FROM transports WHERE gid = 1000") == 2


def test_direct_insert_of_mixed_case_is_refused(db):
    refused(db, "INSERT INTO transports (domain) VALUES ('Example.COM')", (), "23514", "transports_domain_valid")


# -- domains --------------------------------------------------------------------------------

def test_add_domain_defaults_to_virtual_transport_and_lowercases(admin):
    assert admin.execute("SELECT domain, transport, gid, active FROM add_domain('Example.COM')").fetchone() == (
        "example.com", "virtual:", None, True)


def test_add_domain_twice_is_23505(hosted):
    refused(hosted, "SELECT add_domain('example.com')", (), "23505", '"example.com"', "already hosted")


@pytest.mark.parametrize("domain", ["localhost", "-bad.com", "exa mple.com", "a..b", "", "example.com."])
def test_add_domain_invalid_name_is_22023(admin, domain):
    refused(admin, "SELECT add_domain(%s)", (domain,), "22023")


@pytest.mark.parametrize("transport", ["", "virtual", "smtp:[a] b", "Smtp:"])
def test_add_domain_invalid_transport_is_22023(admin, transport):
    refused(admin, "SELECT add_domain('example.com', %s)", (transport,), "22023", "transport")


def test_add_domain_relay_transport_and_gid(admin):
    row = admin.execute("SELECT transport, gid FROM add_domain('relay.example.com', 'smtp:[mx.example.net]:25', 2000)").fetchone()
    assert row == ("smtp:[mx.example.net]:25", 2000)
    refused(admin, "SELECT add_domain('x.example.com', 'virtual:', 0)", (), "22023", "gid")


def test_remove_domain_refuses_while_mailboxes_remain_then_cascades(hosted):
    hosted.execute("SELECT add_mailbox('foo@example.com', 'pw')")
    hosted.execute("SELECT add_alias('bar@example.com', 'foo@example.com')")
    refused(hosted, "SELECT remove_domain('example.com')", (), "23503", "1 mailbox", "1 alias")
    hosted.execute("SELECT remove_domain('example.com', cascade => true)")
    assert one(hosted, "SELECT count(*) FROM mailboxes") == 0
    assert one(hosted, "SELECT count(*) FROM aliases") == 0
    assert one(hosted, "SELECT count(*) FROM transports") == 0


def test_remove_domain_cascade_also_drops_forwards_to_its_mailboxes(hosted):
    hosted.execute("SELECT add_domain('example.org')")
    hosted.execute("SELECT add_mailbox('foo@example.com', 'pw')")
    hosted.execute("SELECT add_alias('x@example.org', 'foo@example.com')")
    hosted.execute("SELECT remove_domain('example.com', true)")
    assert one(hosted, "SELECT count(*) FROM aliases") == 0


def test_remove_unknown_domain_is_p0002(admin):
    refused(admin, "SELECT remove_domain('nowhere.com')", (), "P0002", '"nowhere.com"')


def test_set_domain_active(hosted):
    assert one(hosted, "SELECT active FROM set_domain_active('EXAMPLE.com', false)") is False
    refused(hosted, "SELECT set_domain_active('nowhere.com', true)", (), "P0002")
    refused(hosted, "SELECT set_domain_active('example.com', NULL)", (), "22004")


# -- mailboxes and aliases ----------------------------------------------------------------

def test_set_mailbox_active_and_remove_mailbox(hosted):
    hosted.execute("SELECT add_mailbox('foo@example.com', 'pw')")
    assert one(hosted, "SELECT active FROM set_mailbox_active('foo@example.com', false)") is False
    hosted.execute("SELECT add_alias('bar@example.com', 'foo@example.com')")
    hosted.execute("SELECT remove_mailbox('foo@example.com')")
    assert one(hosted, "SELECT count(*) FROM aliases") == 0
    refused(hosted, "SELECT remove_mailbox('foo@example.com')", (), "P0002", '"foo@example.com"')


def test_alias_fans_out_to_several_destinations(hosted):
    hosted.execute("SELECT add_mailbox('foo@example.com', 'pw')")
    hosted.execute("SELECT add_alias('team@example.com', 'foo@example.com')")
    hosted.execute("SELECT add_alias('Team@Example.com', 'Someone@Elsewhere.net')")
    rows = hosted.execute("SELECT email FROM aliases WHERE alias = 'team@example.com' ORDER BY 1").fetchall()
    assert rows == [("foo@example.com",), ("someone@elsewhere.net",)]
    refused(hosted, "SELECT add_alias('team@example.com', 'foo@example.com')", (), "23505", "already forwards")


def test_alias_to_unknown_local_address_is_refused(hosted):
    refused(hosted, "SELECT add_alias('bar@example.com', 'ghost@example.com')", (), "23503", '"ghost@example.com"')


def test_alias_in_typo_domain_is_refused_by_the_api(hosted):
    refused(hosted, "SELECT add_alias('bar@exmaple.com', 'foo@example.com')", (), "23503", '"exmaple.com"')


def test_remove_alias_one_destination_or_all(hosted):
    hosted.execute("SELECT add_mailbox('foo@example.com', 'pw')")
    hosted.execute("SELECT add_alias('team@example.com', 'foo@example.com')")
    hosted.execute("SELECT add_alias('team@example.com', 'x@elsewhere.net')")
    assert one(hosted, "SELECT remove_alias('team@example.com', 'x@elsewhere.net')") == 1
    refused(hosted, "SELECT remove_alias('team@example.com', 'x@elsewhere.net')", (), "P0002")
    assert one(hosted, "SELECT remove_alias('team@example.com')") == 1


# -- what mailadmin may not do ------------------------------------------------------------

@pytest.mark.parametrize(
    "statement",
    [
        "SELECT password FROM users",
        "SELECT * FROM users",
        "INSERT INTO transports (domain) VALUES ('evil.com')",
        "DELETE FROM aliases",
        "UPDATE users SET active = false",
        "SELECT assert_valid('x')",
        "SELECT insert_mailbox('a@example.com', '{BLF-CRYPT}x', NULL, 'x/', NULL)",
    ],
)
def test_mailadmin_has_no_direct_writes_and_no_hashes(hosted, statement):
    refused(hosted, statement, (), "42501")


def test_mailadmins_pre_checks_write_nothing_and_refuse_as_the_api_does(hosted):
    """new_mailbox() and existing_mailbox() are granted so that `mailbook mailbox add` and
    `passwd` can refuse bad arguments before asking for a password: they only read."""
    before = table_checksums(hosted)
    assert hosted.execute("SELECT * FROM new_mailbox('New@example.com', NULL, NULL, NULL)").fetchone() == (
        "new@example.com", "example.com/new/")
    assert table_checksums(hosted) == before
    refused(hosted, "SELECT new_mailbox('a@b.com', NULL, NULL, NULL)", (), "23503", "b.com")
    refused(hosted, "SELECT existing_mailbox('ghost@example.com')", (), "P0002", "ghost@example.com")


DOMAIN_CASES = [
    "example.com", "a.b.c.example.com", "xn--bcher-kva.example", "1.example.com", "a-b.example.com",
    "x.y", "a" * 63 + ".com", "example.c0m", "example.x-y",
    "-example.com", "example-.com", "example.-com", "example.com-", "a" * 64 + ".com", "example",
    "example.1com", "example..com", ".example.com", "example.com.", "exa_mple.com", "ex ample.com",
]


@pytest.mark.parametrize("domain", DOMAIN_CASES)
def test_domain_rule_matches_the_rfc_1123_label_pattern(admin, domain):
    """domain_name_error() (cheap regexes since 0011) agrees with the one-regex form of the
    rule: labels of 1-63 letters, digits and inner hyphens, at least two, the last
    starting with a letter."""
    label = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
    reference = admin.execute(f"SELECT %s ~ '^({label}\\.)+[a-z]([a-z0-9-]{{0,61}}[a-z0-9])?$'", (domain,)).fetchone()[0]
    error = admin.execute("SELECT domain_name_error(%s)", (domain,)).fetchone()[0]
    assert (error is None) == reference, (domain, error)


# -- validation helpers rewritten for speed keep their answers -----------------------------

def validation_corpus(db) -> dict[str, list[str]]:
    """Edge cases by hand, plus random strings over each rule's interesting alphabet."""
    import random
    rng = random.Random(7)
    bcrypt = db.execute("SELECT crypto.crypt('pw', crypto.gen_salt('bf', 4))").fetchone()[0]  # $2a$04$ + 53
    body = bcrypt[7:]
    hashes = [bcrypt, "{BLF-CRYPT}" + bcrypt, "{CRYPT}" + bcrypt, "{blf-crypt}" + bcrypt,
              "{BLF-CRYPT}$2y$10$" + body, "$2b$31$" + body, "$2b$32$" + body, "$2b$03$" + body,
              "$2c$10$" + body, "$2a$1$" + body, "$2a$10$" + body[:-1], "$2a$10$" + body + "x",
              "$2a$10$" + body[:-1] + "!", "$2a$10$" + body[:-1] + "$", "{BLF-CRYPT}$2a$10 " + body,
              "{PLAIN}secret", "{SHA512-CRYPT}$6$salt$" + "a" * 86, "{SSHA}" + "A" * 28, "hunter2", "", "$",
              "{BLF-CRYPT}", "x{BLF-CRYPT}$2a$10$" + body]
    alphabet = "ab$2yx{}./19A-0"
    hashes += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) + body[rng.randint(0, 53):]
               for _ in range(300)]
    domains = ["example.com", "a.b", "-a.com", "a-.com", "a.-b.com", "a.b-", "a-b.c-d.example",
               "a" * 63 + ".com", "a" * 64 + ".com", "b." + "a" * 64, "x" * 60 + "." + "y" * 64,
               "EXAMPLE.com", "ex ample.com", "example", "example.1com", "xn--bcher-kva.example",
               "a..b", ".a.com", "a.com.", "", "1.2.3.4", "a.b.c.d.e.f"]
    domains += ["".join(rng.choice("ab-.1") for _ in range(rng.randint(1, 12))) for _ in range(400)]
    domains += ["".join(rng.choice("a-.") for _ in range(rng.randint(60, 70))) + ".com" for _ in range(50)]
    maildirs = ["a/", "example.com/foo/", "./a/", "a/./", "a/../b/", "../", "a//b/", "/a/", "a", "a b/",
                "a/\x01/", "ü/", "a'b/", "a~b/", ".a/", "a./", "..a/", "a/..b/", "", "/", "//", "a/.", "a/.."]
    maildirs += ["".join(rng.choice("a./ ~") for _ in range(rng.randint(1, 10))) for _ in range(500)]
    locals_ = ["a", "a.b", "a..b", ".a", "a.", "a-b", "a.-b", "a-.b", "o'neil", "A", "ü", "x" * 50, "x" * 64,
               "x" * 65, "", "a+tag", "a b", "%", "-", "a@b"]
    addresses = [f"{l}@{d}" for l in locals_ for d in domains[:22]] + ["no-at", "@", "a@", "@b.com", "a@b@c.com"]
    addresses += ["".join(rng.choice("ab.-@1A'") for _ in range(rng.randint(1, 14))) + rng.choice(["", ".com", ".c-m"])
                  for _ in range(600)]
    addresses += ["u" * rng.randint(1, 40) + "@" + "d" * rng.randint(1, 30) + ".com" for _ in range(50)]
    return {"domain_name_error": domains, "password_hash_error": hashes, "maildir_error": maildirs,
            "address_error": addresses,
            "normalised_password_hash": hashes + ["{blf-crypt}" + bcrypt, "{SHA512-CRYPT}x", "{sha512-crypt}x",
                                                 "{BLF-CRYPT", "{BLF-CRYPT}"]}


@pytest.mark.parametrize("rewrite", ["0012_validate_without_regex_where_cheaper",
                                     "0025_cheaper_address_and_hash_fast_paths"])
def test_validation_helpers_rewritten_for_speed_answer_exactly_as_before(db, rewrite):
    """0012 rewrote five helpers without regexes where LIKE and strpos() are cheaper, 0025
    two fast paths again; the definitions before each (from its rollback) must agree
    with the rewrite's own (from the migration: later migrations may change the rules,
    as 0027 bounded the hashes' work factors) on every input."""
    from mailbook import data_dir
    old = (data_dir("migrations") / "pre-1.0" / f"{rewrite}.rollback.sql").read_text()
    new = (data_dir("migrations") / "pre-1.0" / f"{rewrite}.sql").read_text()
    db.execute("CREATE SCHEMA old; CREATE SCHEMA new")
    try:
        db.execute(old.replace("FUNCTION public.", "FUNCTION old."))
        db.execute(new.replace("FUNCTION public.", "FUNCTION new."))
        rewritten = {r[0] for r in db.execute("SELECT proname FROM pg_proc WHERE pronamespace = 'old'::regnamespace")}
        assert rewritten
        for fn, values in validation_corpus(db).items():
            if fn not in rewritten:
                continue
            rows = db.execute(f"SELECT v, new.{fn}(v), old.{fn}(v) FROM unnest(%s::text[]) v", (values,)).fetchall()
            differ = [(v, now, was) for v, now, was in rows if now != was]
            assert not differ, (fn, differ[:5])
            if fn.endswith("_error"):
                assert any(now is None for _, now, _ in rows) and any(now for _, now, _ in rows), fn
    finally:
        db.execute("DROP SCHEMA old CASCADE; DROP SCHEMA new CASCADE")


def test_import_rows_of_0024_reads_every_staged_row_as_that_of_0023_did(db):
    """0024 gave import_rows' kind a fast path and lower-cases the default maildir once;
    the 0023 view (from 0024's rollback) must read every staged row as 0024's own view
    does (from the migration: 0029 changed what the view reads since)."""
    from mailbook import data_dir
    rollback = (data_dir("migrations") / "pre-1.0" / "0024_import_staging_fast_paths.rollback.sql").read_text()
    old_view = rollback[rollback.index("CREATE OR REPLACE VIEW public.import_rows"):]
    forward = (data_dir("migrations") / "pre-1.0" / "0024_import_staging_fast_paths.sql").read_text()
    new_view = forward[forward.index("CREATE OR REPLACE VIEW public.import_rows"):]
    corpus = validation_corpus(db)
    kinds = ["mailbox", " Mailbox", "MAILBOX ", "mailbox\t", "domain", "Domain", "alias", "ALIAS", "sendas",
             " sendas ", "send as", "", None, "mail box", "mailboxes", "\u0130mailbox"]
    addresses = corpus["address_error"] + ["Foo@Example.COM", "\u00c4@b.de", "a@b@c", "@x.com", "x@", "", None]
    with psycopg.connect(db.info.dsn) as conn:  # one transaction: the staged rows are its batch
        conn.execute("CREATE TEMP VIEW old_import_rows AS" + old_view.split(" AS", 1)[1].replace("public.import_rows", ""))
        conn.execute("CREATE TEMP VIEW new_import_rows AS" + new_view.split(" AS", 1)[1].replace("public.import_rows", ""))
        conn.execute("""INSERT INTO import_staging (kind, address, maildir, password_hash, active)
                        SELECT k, a, m, h, act
                          FROM unnest(%s::text[]) k, unnest(%s::text[]) a,
                               unnest(ARRAY[NULL, '', 'x/y/']) m, unnest(ARRAY[NULL, '$2y$04$abc']) h,
                               unnest(ARRAY[NULL, ' TRUE ']) act""", (kinds, addresses))
        staged = conn.execute("SELECT count(*) FROM import_staging").fetchone()[0]
        assert staged > 50_000
        differ = conn.execute("""(SELECT * FROM new_import_rows EXCEPT ALL SELECT * FROM old_import_rows)
                                 UNION ALL
                                 (SELECT * FROM old_import_rows EXCEPT ALL SELECT * FROM new_import_rows)
                                 LIMIT 5""").fetchall()
        assert not differ, differ
        conn.rollback()


# -- the hosted-domain rule under concurrency (0013: checked per statement) -----------------

ORPHANS = """SELECT (SELECT count(*) FROM users u WHERE NOT EXISTS (SELECT FROM transports t WHERE t.domain = u.domain))
                  + (SELECT count(*) FROM aliases a WHERE NOT EXISTS (SELECT FROM transports t WHERE t.domain = a.domain))"""


def concurrently(db, first: str, second: str) -> tuple[Exception | None, Exception | None]:
    """Run `first` in an open transaction, start `second` in another session (it blocks
    or not), commit the first; return each session's error, if any."""
    import threading
    a = psycopg.connect(db.info.dsn)
    b = psycopg.connect(db.info.dsn, autocommit=True)
    errors: list[Exception | None] = [None, None]
    try:
        try:
            a.execute(first)
        except psycopg.Error as exc:
            errors[0] = exc
            a.rollback()

        def other():
            try:
                b.execute(second)
            except psycopg.Error as exc:
                errors[1] = exc

        t = threading.Thread(target=other)
        t.start()
        t.join(1.0)  # long enough for `second` to reach the lock it waits for
        if errors[0] is None:
            try:
                a.commit()
            except psycopg.Error as exc:
                errors[0] = exc
        t.join(30)
        assert not t.is_alive(), "the second session never finished (deadlock?)"
    finally:
        a.close()
        b.close()
    return errors[0], errors[1]


BULK_INSERT = """INSERT INTO users (email, password, maildir)
                 SELECT 'u' || g || '@example.com', '{BLF-CRYPT}' || crypto.crypt('pw', crypto.gen_salt('bf', 4)), 'u' || g || '/'
                   FROM generate_series(1, 200) g"""


@pytest.mark.parametrize("remove", ["SELECT remove_domain('example.com')", "DELETE FROM transports"])
def test_remove_domain_during_insert(db, remove):
    """Domain removed while a bulk insert is uncommitted waits and is refused."""
    db.execute("INSERT INTO transports (domain) VALUES ('example.com')")
    inserted, removed = concurrently(db, BULK_INSERT, remove)
    assert inserted is None
    assert removed is not None and removed.sqlstate == "23503", removed
    assert db.execute("SELECT count(*) FROM users").fetchone() == (200,)
    assert db.execute(ORPHANS).fetchone() == (0,)


def test_insert_during_domain_removal(db):
    """Bulk insert while the domain removal is uncommitted waits and is refused."""
    db.execute("INSERT INTO transports (domain) VALUES ('example.com')")
    removed, inserted = concurrently(db, "SELECT remove_domain('example.com')", BULK_INSERT)
    assert removed is None
    assert inserted is not None and inserted.sqlstate == "23503" and '"example.com"' in str(inserted), inserted
    assert db.execute("SELECT count(*) FROM transports").fetchone() == (0,)
    assert db.execute(ORPHANS).fetchone() == (0,)


def test_cascade_during_insert(db):
    """Cascading removal during an insert takes the new mailboxes with it."""
    db.execute("INSERT INTO transports (domain) VALUES ('example.com')")
    inserted, removed = concurrently(db, BULK_INSERT, "SELECT remove_domain('example.com', cascade => true)")
    assert inserted is None and removed is None
    assert db.execute("SELECT count(*) FROM users").fetchone() == (0,)
    assert db.execute(ORPHANS).fetchone() == (0,)


INITIAL_LOAD = """
INSERT INTO import_staging (kind, address, password_hash)
SELECT 'mailbox', 'u' || g || '@example.com', (SELECT '{BLF-CRYPT}' || crypto.crypt('pw', crypto.gen_salt('bf', 4)))
  FROM generate_series(1, 10000) g;
DO $$
DECLARE p record;
BEGIN
    FOR p IN SELECT * FROM import_batch() LOOP
        RAISE EXCEPTION 'line %: %', p.line, p.problem USING ERRCODE = '23503';
    END LOOP;
END
$$"""


def test_domain_removed_during_an_initial_load_waits_for_it_and_is_refused(db):
    """An initial load (10,000 mailboxes into an empty users) sets users' keys aside
    under an exclusive lock: a removal waits for the load and then finds its mailboxes."""
    db.execute("INSERT INTO transports (domain) VALUES ('example.com')")
    loaded, removed = concurrently(db, INITIAL_LOAD, "SELECT remove_domain('example.com')")
    assert loaded is None
    assert removed is not None and removed.sqlstate == "23503", removed
    assert db.execute("SELECT count(*) FROM users").fetchone() == (10_000,)
    assert db.execute(ORPHANS).fetchone() == (0,)


def test_load_during_domain_removal(db):
    """Initial load while the domain removal is uncommitted waits and writes nothing."""
    db.execute("INSERT INTO transports (domain) VALUES ('example.com')")
    keys = db.execute("SELECT count(*) FROM pg_index WHERE indrelid = 'users'::regclass").fetchone()
    removed, loaded = concurrently(db, "SELECT remove_domain('example.com')", INITIAL_LOAD)
    assert removed is None
    assert loaded is not None and loaded.sqlstate == "23503" and 'domain "example.com" is not hosted here' in str(loaded), loaded
    assert db.execute("SELECT count(*) FROM users").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM pg_index WHERE indrelid = 'users'::regclass").fetchone() == keys
    assert db.execute(ORPHANS).fetchone() == (0,)


def test_remove_domain_during_load(db):
    """Domain removed while an initial load writes its rows waits for it without a deadlock.

    The removal arrives mid-load, once the load holds users and is writing (a test-only
    trigger holds it there): the two lock in the same order, so the removal waits, finds
    the mailboxes and is refused; neither is cancelled as a deadlock (40P01)."""
    import threading
    import time
    db.execute("INSERT INTO transports (domain) VALUES ('example.com')")
    db.execute("""CREATE FUNCTION public.hold_for_test() RETURNS trigger LANGUAGE plpgsql
                  AS $$ BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NULL; END $$""")
    db.execute("CREATE TRIGGER hold_for_test BEFORE INSERT ON users FOR EACH STATEMENT EXECUTE FUNCTION hold_for_test()")
    holder = psycopg.connect(db.info.dsn)
    load = psycopg.connect(db.info.dsn)  # one transaction: the staged rows are its batch
    remove = psycopg.connect(db.info.dsn, autocommit=True)
    outcome: dict[str, Exception | None] = {}

    def run(name, conn, sql):
        try:
            conn.execute(sql)
            conn.commit()
            outcome[name] = None
        except psycopg.Error as exc:
            outcome[name] = exc

    def waits(conn, event=None):
        """Until the session waits for a lock (of that kind, if given)."""
        for _ in range(300):
            row = db.execute("SELECT wait_event_type, wait_event FROM pg_stat_activity WHERE pid = %s",
                             (conn.info.backend_pid,)).fetchone()
            if row[0] == "Lock" and event in (None, row[1]):
                return
            time.sleep(0.05)
        raise AssertionError(f"session {conn.info.backend_pid} never waited for a lock")

    try:
        holder.execute("SELECT pg_advisory_xact_lock(4242)")
        loading = threading.Thread(target=run, args=("load", load, INITIAL_LOAD))
        loading.start()
        waits(load, "advisory")  # users is locked, its keys set aside, the INSERT begun
        removing = threading.Thread(target=run, args=("remove", remove, "SELECT remove_domain('example.com')"))
        removing.start()
        waits(remove)
        holder.rollback()  # the load goes on
        loading.join(60)
        removing.join(60)
    finally:
        holder.close()
        load.close()
        remove.close()
    assert outcome["load"] is None, outcome
    assert outcome["remove"] is not None and outcome["remove"].sqlstate == "23503", outcome
    assert db.execute("SELECT count(*) FROM users").fetchone() == (10_000,)
    assert db.execute(ORPHANS).fetchone() == (0,)


def test_domain_removal_at_repeatable_read_is_refused_with_the_reason(db):
    db.execute("INSERT INTO transports (domain) VALUES ('example.com')")
    with psycopg.connect(db.info.dsn) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with pytest.raises(psycopg.Error) as err:
            conn.execute("DELETE FROM transports WHERE domain = 'example.com'")
    assert err.value.sqlstate == "0A000" and "READ COMMITTED" in str(err.value)
    assert db.execute("SELECT count(*) FROM transports").fetchone() == (1,)
