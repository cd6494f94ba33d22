"""Imports flow one way: domain <- engine <- strategies; venues implement ports; runtime wires."""

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
