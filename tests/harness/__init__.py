"""One harness for the tests and the benchmarks: what a test starts is what a benchmark
measures. Each module is one concern (docs/contributing.md lists them):

- process: run, require_program, require_root, private_dir, remove, started, wait_for,
  `cli()` (mailbook in-process), keep_generated, ROOT
- database: migrate(), migrated_cluster(), mail_database(), table_checksums, verified
- postfix, dovecot, pgbouncer, patroni: the daemons, private instances
- lmtp: the LMTP stack as fixtures; load: SMTP and login load during a fault, and
  outage_stack() (PostgreSQL, PgBouncer, Postfix, Dovecot) it runs against
- peers: the sources people move in from (PostfixAdmin, vmm) and Postfix lookups replayed
- data, strategies: generated data (hostile strings, the benchmarks' scale data; hypothesis)
- sqldocs: docs/sql-api.md from the catalogue

Every fixture and context manager here stops what it started, also when a start fails.
"""
