"""benchmarks/README.md's end-to-end benchmark table is the committed result, not a copy that drifted."""

from __future__ import annotations

from conftest import ROOT

RESULTS = ROOT / "benchmarks" / "results" / "debian12-2core"


def test_the_benchmarks_page_leads_with_the_committed_end_to_end_table():
    md = (RESULTS / "e2e.md").read_text()
    table = md[md.index("| workload |"):md.index("\n\n", md.index("| workload |"))]
    benchmarks = (ROOT / "benchmarks" / "README.md").read_text()
    assert table in benchmarks, "paste the table of benchmarks/results/debian12-2core/e2e.md into benchmarks/README.md"
    assert benchmarks.index(table) < benchmarks.index("## Lookups, import and migrations"), "the end-to-end table leads"
    assert (RESULTS / "e2e.json").exists() and (RESULTS / "e2e.png").exists()
