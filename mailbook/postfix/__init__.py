"""Postfix: the pgsql: map files (maps.py), the main.cf/master.cf settings and postmap
(postconf.py), the compiled lmdb: tables (compiled.py) and the follower that keeps them
current (follow.py)."""
