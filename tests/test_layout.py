"""The package's rooms and their layers, read from the source with ast (nothing is imported).

A module may import the layers below its own, and its own room; the core (layer 0) imports
no room; nothing in mailbook/ imports runner.py; no import cycles; no imports inside
functions (everything a module needs is named at its top).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mailbook"

# room -> layer. A room is a subpackage (mailbook.postfix) or a top-level module.
LAYERS = {
    # the core: errors, connecting, data files, safe writes, passwords, printable text
    "mailbook": 0, "mailbook.files": 0, "mailbook.passwords": 0, "mailbook.terminal": 0,
    # the mail database: migrations, the SQL API, init, connection lines, the CLI's reads
    "mailbook.database": 1,
    # what mailbook wires to the database: one room per program, and provisioning in bulk
    "mailbook.postfix": 2, "mailbook.dovecot": 2, "mailbook.pgbouncer": 2, "mailbook.roundcube": 2,
    "mailbook.patroni": 2, "mailbook.provisioning": 2,
    "mailbook.authcache": 2,  # Dovecot's auth cache kept current (`dovecot follow`)
    "mailbook.dkim": 2,  # OpenDKIM's configuration and the DKIM keys it reads
    "mailbook.dnsrecords": 2,  # the DNS records a domain needs, checked; the mail clients' autoconfig
    # built from the rooms below: moving in from other tools, the audit, the demo
    "mailbook.importers": 3, "mailbook.doctor": 3, "mailbook.demo": 3,
    # the running mail stack from the outside (`doctor --live`), beside the audit
    "mailbook.mailstack": 4,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def room(module: str) -> str:
    return ".".join(module.split(".")[:2])


def imported(module: str) -> set[str]:
    """The modules of mailbook (and runner) that module imports, wherever in the file."""
    out = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            # `from mailbook.postfix import compiled` imports the submodule, else the package
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                     for a in node.names]
        else:
            continue
        out |= {n for n in names if n == "runner" or n == "mailbook" or n.startswith("mailbook.")}
    return out


def test_every_module_has_a_layer():
    """A new room is placed in LAYERS, so the rules below cover it."""
    assert {m for m in MODULES if room(m) not in LAYERS} == set()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down(module):
    """A module imports only lower layers and its own room (the core its own layer); never runner."""
    layer = LAYERS[room(module)]
    wrong = sorted(
        name for name in imported(module)
        if name == "runner" or not (room(name) == room(module) or LAYERS[room(name)] < layer
                                    or LAYERS[room(name)] == layer == 0))
    assert wrong == [], f"{module} imports {wrong} at or above its layer {layer}"


def test_no_import_cycles():
    graph = {m: {n for n in imported(m) if n in MODULES and n != m} for m in MODULES}
    done: set[str] = set()

    def visit(m: str, path: list[str]) -> None:
        if m in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(m):] + [m]))
        if m in done:
            return
        for n in sorted(graph[m]):
            visit(n, path + [m])
        done.add(m)

    for m in sorted(graph):
        visit(m, [])


@pytest.mark.parametrize("path", [ROOT / "runner.py", *sorted(MODULES.values())], ids=lambda p: p.name)
def test_no_imports_inside_functions(path):
    """What a module needs is named at its top (measured: `mailbook --help` is no slower)."""
    inner = [f"line {node.lineno}" for top in ast.parse(path.read_text()).body
             if not isinstance(top, (ast.Import, ast.ImportFrom))
             for node in ast.walk(top) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert inner == []
