"""The package's shape, read from its source: the layers import downwards only (no import
cycle among clgraph's modules, counting imports inside functions), few imports inside
functions, no function longer than 80 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parent.parent / "clgraph"
MAX_FUNCTION_LINES = 80
MAX_LOCAL_IMPORTS = 15


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = (path, ast.parse(path.read_text(), str(path)))
    return out


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(mods):
    """(importer, imported, inside a function) for every import of a clgraph module."""
    edges = []
    for name, (path, tree) in mods.items():
        is_package = path.name == "__init__.py"
        funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef,
                                                              ast.AsyncFunctionDef))]
        local = {id(n) for f in funcs for n in ast.walk(f)}
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node)
                # ``from . import x`` may name a submodule
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                           for a in node.names]
            for t in targets:
                if t.startswith("clgraph") and t in mods and t != name:
                    edges.append((name, t, id(node) in local))
    return edges


def test_no_import_cycle():
    mods = _modules()
    g = nx.DiGraph()
    for a, b, _ in _imports(mods):
        # a package's __init__ importing its own submodules is how a package is assembled;
        # a submodule importing its package's __init__ back is what would close a cycle
        if b.startswith(a + "."):
            continue
        g.add_edge(a, b)
    cycles = list(nx.simple_cycles(g))
    assert not cycles, sorted(cycles, key=len)[:5]


def test_few_imports_inside_functions():
    """Only optional or heavy modules (torch, mpi4py, ...) are imported inside functions."""
    local = []
    for name, (_, tree) in _modules().items():
        for f in ast.walk(tree):
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
                local += [(name, f.name) for n in ast.walk(f)
                          if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert len(local) <= MAX_LOCAL_IMPORTS, local


def test_no_long_function():
    long = []
    for name, (_, tree) in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append((name, node.name, n))
    assert not long, long


def test_checks_can_fail():
    """The checker sees what it looks for: a cycle through a function-level import, and a
    long function."""
    src = {"clgraph.a": "from . import b\n", "clgraph.b": "def f():\n    from . import a\n"}
    mods = {k: (Path(k.replace(".", "/") + ".py"), ast.parse(v)) for k, v in src.items()}
    edges = _imports(mods)
    assert ("clgraph.b", "clgraph.a", True) in edges and ("clgraph.a", "clgraph.b", False) in edges
