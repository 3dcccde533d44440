"""The mail database itself: migrations and the SQL API (migrations.py), `mailbook init`
(init.py), pg_hba.conf lines (hba.py), the privilege matrix (privileges.py), the
connection lines every installer writes (connlines.py), the reads the command line shows
(queries.py) and query plans (plans.py). Imports nothing of the rooms above it."""
