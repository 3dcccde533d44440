"""The benchmarks; run each as a module from the checkout (`python -m benchmarks.e2e`), so
that `mailbook` and the tests' harness (`tests.harness`) import as packages."""
