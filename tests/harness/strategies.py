"""Hypothesis strategies: random provisioning on three domains (tests/test_compiled_maps.py,
test_maps_follow.py), applied through the SQL API as mailadmin."""

from __future__ import annotations

import psycopg
from hypothesis import strategies as st

DOMAINS = ["a.test", "b.test", "c.test"]
LOCALS = ["u1", "u2", "u3", "info"]
ADDRESS = st.builds(lambda l, d: f"{l}@{d}", st.sampled_from(LOCALS), st.sampled_from(DOMAINS))
STEP = st.one_of(
    st.tuples(st.just("add_mailbox"), ADDRESS, st.just("pw")),
    st.tuples(st.just("add_alias"), st.sampled_from(DOMAINS).map(lambda d: "@" + d), ADDRESS),  # catch-alls, often
    st.tuples(st.just("add_alias"), st.one_of(ADDRESS, st.sampled_from(DOMAINS).map(lambda d: "@" + d)), ADDRESS),
    st.tuples(st.just("add_alias_domain"), st.sampled_from(DOMAINS), st.sampled_from(DOMAINS)),
    st.tuples(st.just("set_mailbox_active"), ADDRESS, st.booleans()),
    st.tuples(st.just("set_domain_active"), st.sampled_from(DOMAINS), st.booleans()),
    st.tuples(st.just("remove_mailbox"), ADDRESS),
    st.tuples(st.just("remove_alias"), ADDRESS),
    st.tuples(st.just("remove_domain"), st.sampled_from(DOMAINS)),
    st.tuples(st.just("allow_send_as"), ADDRESS, ADDRESS),
    st.tuples(st.just("deactivate_alias"), ADDRESS),
)


def apply_step(conn: psycopg.Connection, step: tuple) -> None:
    """One provisioning call as mailadmin; a refused one (a duplicate, an unknown mailbox)
    changes nothing, as the API promises, and the sequence goes on."""
    name, *args = step
    try:
        with conn.transaction():
            if name == "deactivate_alias":  # no API for it; imports can leave such rows
                conn.execute("RESET ROLE")
                conn.execute("UPDATE public.aliases SET active = false WHERE alias = %s", args)
            else:
                conn.execute(f"SELECT public.{name}({', '.join(['%s'] * len(args))})", args)
    except psycopg.errors.DatabaseError:
        pass
    finally:
        conn.execute("SET ROLE mailadmin")
