"""The test suite; a package so that its harness imports as `tests.harness` here and in
the benchmarks alike."""
