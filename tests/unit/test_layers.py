"""Imports flow one way: domain <- engine <- strategies; venues implement ports; runtime
wires; the API sees the bot only through its view; infra stands on the domain alone; and no
module of src/solbot imports, however indirectly, a module that imports it back (every import
counts: at the top, inside a function, or for type checking only)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "solbot"

FORBIDDEN = {
    "domain": (
        "solbot.engine",
        "solbot.venues",
        "solbot.runtime",
        "solbot.data",
        "solbot.strategies",
        "solbot.indicators",
        "solbot.reporting",
        "solbot.cli",
    ),
    "engine": (
        "solbot.venues",
        "solbot.runtime",
        "solbot.strategies",
        "solbot.reporting",
        "solbot.cli",
    ),
    "indicators": (
        "solbot.engine",
        "solbot.venues",
        "solbot.runtime",
        "solbot.strategies",
        "solbot.cli",
    ),
    "strategies": ("solbot.venues", "solbot.runtime", "solbot.reporting", "solbot.cli"),
    "venues": ("solbot.runtime", "solbot.strategies", "solbot.reporting", "solbot.cli"),
    "data": ("solbot.engine", "solbot.venues", "solbot.runtime", "solbot.strategies", "solbot.cli"),
    "runtime": ("solbot.api", "solbot.cli", "solbot.bot", "solbot.ops"),
    "reporting": ("solbot.runtime", "solbot.cli", "solbot.api"),
}

# layers that may import only these (and the standard library, third-party packages)
ONLY = {
    "infra": ("solbot.domain", "solbot.infra"),
    "api": ("solbot.api", "solbot.control", "solbot.runtime.view", "solbot.domain"),
    "control": ("solbot.control", "solbot.runtime.view", "solbot.domain"),
}


def imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_does_not_import_upward(layer):
    bad = []
    for f in (SRC / layer).rglob("*.py"):
        for mod in imports(f):
            if mod.startswith(FORBIDDEN[layer]):
                bad.append(f"{f.relative_to(SRC)} imports {mod}")
    assert not bad, bad


def test_domain_uses_only_the_standard_library():
    allowed = set(sys.stdlib_module_names) | {"solbot"}
    bad = [
        f"{f.name}: {m}"
        for f in (SRC / "domain").rglob("*.py")
        for m in imports(f)
        if m.split(".")[0] not in allowed and m != "__future__"
    ]
    assert not bad, bad


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(f): f for f in SRC.rglob("*.py")}


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def graph() -> dict[str, set[str]]:
    """Module -> the src/solbot modules it imports (``from a import b`` counts a and a.b)."""
    out: dict[str, set[str]] = {}
    for mod, path in MODULES.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for n in names:
                if n.startswith("solbot"):
                    r = _resolve(n)
                    if r is not None and r != mod:
                        deps.add(r)
        out[mod] = deps
    return out


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize("layer", sorted(ONLY))
def test_layer_imports_only_what_it_stands_on(layer):
    allowed = ONLY[layer]
    bad = [
        f"{f.relative_to(SRC)} imports {mod}"
        for f in (SRC / layer).rglob("*.py")
        for mod in imports(f)
        if mod.startswith("solbot.") and not mod.startswith(allowed)
    ]
    assert not bad, bad


def test_no_import_circle_in_the_package():
    assert circles(graph()) == []


def test_the_circle_finder_finds_a_circle():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(g) == [["a", "b", "c"]]
