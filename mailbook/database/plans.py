"""Query plans: what the query-plan test and the benchmark check a lookup by."""

from __future__ import annotations


def plan_scans(plan: dict) -> list[tuple[str, str]]:
    """(node type, relation) of every scan in an EXPLAIN (FORMAT JSON) plan node and below:
    what the query-plan test and the benchmark check a lookup by."""
    found = [(plan["Node Type"], plan.get("Relation Name", ""))] if "Scan" in plan["Node Type"] else []
    for child in plan.get("Plans", []):
        found += plan_scans(child)
    return found
