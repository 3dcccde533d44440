"""The SECURITY DEFINER API cannot be hijacked by its callers.

A member of mailadmin who has somewhere to create objects (here a schema of their own, as
if a DBA had granted one; in the mail database itself they cannot even create temporary
objects) shadows what the functions use: `lower`, `crypt`, `gen_salt`, `split_part`, the
`=` operator on text, the tables, in front of pg_catalog on their search_path and in
pg_temp. Every API call must still use the real objects: the decoys are never called,
the real tables get the right rows, the hashes are real bcrypt."""

from __future__ import annotations

import psycopg
import pytest

from tests.harness.database import ADMIN_LOGIN, verified

DECOYS = r"""
CREATE TABLE evil.calls (what text);
CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE sql VOLATILE
    AS $$ INSERT INTO evil.calls VALUES ('lower') RETURNING 'hijacked@example.com' $$;
CREATE FUNCTION evil.split_part(text, text, integer) RETURNS text LANGUAGE sql VOLATILE
    AS $$ INSERT INTO evil.calls VALUES ('split_part') RETURNING 'example.com' $$;
CREATE FUNCTION evil.crypt(text, text) RETURNS text LANGUAGE sql VOLATILE
    AS $$ INSERT INTO evil.calls VALUES ('crypt: ' || $1) RETURNING '$2a$04$' || repeat('x', 53) $$;
CREATE FUNCTION evil.gen_salt(text, integer) RETURNS text LANGUAGE sql VOLATILE
    AS $$ INSERT INTO evil.calls VALUES ('gen_salt') RETURNING '$2a$04$' || repeat('s', 22) $$;
CREATE FUNCTION evil.text_eq(text, text) RETURNS boolean LANGUAGE sql VOLATILE
    AS $$ INSERT INTO evil.calls VALUES ('=') RETURNING true $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_eq);
CREATE TABLE evil.users (email text, password text, realname text, maildir text, domain text, active boolean);
CREATE TABLE evil.transports (LIKE public.transports);
CREATE TABLE evil.aliases (LIKE public.aliases);
CREATE TABLE evil.settings (bcrypt_cost integer);
INSERT INTO evil.settings VALUES (4);
-- open to everyone, the API's owner included, so that a careless function would reach them
GRANT USAGE ON SCHEMA evil TO PUBLIC;
GRANT ALL ON ALL TABLES IN SCHEMA evil TO PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA evil TO PUBLIC;
"""


@pytest.fixture
def attacker(db):
    db.execute(f"CREATE SCHEMA evil AUTHORIZATION {ADMIN_LOGIN}")
    db.execute(f"SET ROLE {ADMIN_LOGIN}")
    db.execute(DECOYS)
    # temporary decoys too, which a careless search_path would also find
    db.execute("CREATE TEMP TABLE transports (LIKE public.transports)")
    db.execute("CREATE TEMP TABLE users (email text, password text, maildir text, domain text, active boolean)")
    db.execute("CREATE FUNCTION pg_temp.lower(text) RETURNS text LANGUAGE sql"
               " AS $$ SELECT 'temp-hijacked@example.com' $$")
    db.execute("SET search_path = evil, pg_temp, public, pg_catalog")
    return db


def test_api_calls_use_the_real_objects_whatever_the_callers_search_path(attacker):
    db = attacker
    db.execute("SELECT add_domain('Example.COM')")
    db.execute("SELECT add_mailbox('Foo@Example.com', 'correct horse')")
    db.execute("SELECT add_alias('Team@Example.com', 'foo@example.com')")
    db.execute("SELECT set_password('foo@example.com', 'battery staple')")
    assert verified(db, "foo@example.com", "battery staple") and not verified(db, "foo@example.com", "correct horse")
    db.execute("SELECT add_mailbox('bar@example.com', 'x y z')")
    db.execute("SELECT remove_mailbox('bar@example.com')")
    assert db.execute("SELECT what FROM evil.calls").fetchall() == []
    for table in ("evil.users", "evil.transports", "evil.aliases", "pg_temp.users", "pg_temp.transports"):
        assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
    db.execute("RESET ROLE")
    db.execute("SET search_path = public, pg_catalog")
    rows = db.execute("SELECT email, maildir, password FROM public.users ORDER BY email").fetchall()
    assert [(e, m) for e, m, _ in rows] == [("foo@example.com", "example.com/foo/")]
    cost = db.execute("SELECT bcrypt_cost FROM public.settings").fetchone()[0]
    assert rows[0][2].startswith(f"{{BLF-CRYPT}}$2a${cost:02d}$") and "xxxxxxxx" not in rows[0][2]
    assert db.execute("SELECT alias, email FROM public.aliases").fetchall() == [("team@example.com", "foo@example.com")]


def test_a_mailadmin_cannot_create_anything_in_the_mail_database(mail_dsn):
    """Where the attacks above would have to be staged: no schema, no temporary objects."""
    with psycopg.connect(mail_dsn, autocommit=True) as conn:
        conn.execute(f"SET ROLE {ADMIN_LOGIN}")
        for statement, sqlstate in [("CREATE SCHEMA evil", "42501"),
                                    ("CREATE TEMP TABLE users (x int)", "42501"),
                                    ("CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE sql AS 'SELECT $1'",
                                     "42501")]:
            with pytest.raises(psycopg.Error) as err:
                conn.execute(statement)
            assert err.value.sqlstate == sqlstate, (statement, err.value)
