"""`mailbook demo`: a private, throwaway PostgreSQL cluster (cluster.py, which the tests and
benchmarks start too) and the example set up on it (demo.py)."""
