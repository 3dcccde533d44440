"""Provisioning in bulk: CSV import and export (bulk.py) and the purge of removed
mailboxes' maildirs (maildirs.py)."""
