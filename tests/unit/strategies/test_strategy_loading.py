"""A user's own strategy, from a file or an installed package's entry point, through the
same ``create`` every command uses; broken ones are one line (``StrategyError``)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from solbot.strategies import StrategyError, create, resolve, source_sha256
from solbot.strategies.trend import TrendFollow

MINE = """
from solbot.domain.messages import SubmitOrder
from solbot.domain.values import OrderType, Side
from solbot.engine.strategy import NO_COMMANDS, Strategy


class BuyTheThirdBar(Strategy):
    name = "third"

    def __init__(self, qty: str = "1") -> None:
        super().__init__()
        self.qty, self.seen = qty, 0

    def on_bar(self, bar):
        self.seen += 1
        if self.seen == 3:
            from decimal import Decimal
            return (SubmitOrder(Side.BUY, OrderType.MARKET, Decimal(self.qty)),)
        return NO_COMMANDS
"""


def write(tmp_path: Path, text: str, name: str = "mine.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_strategy_file_outside_the_package_backtests_through_create(tmp_path: Path) -> None:
    from tests.unit.strategies.test_strategies import market

    path = write(tmp_path, MINE)
    strat = create(str(path), qty="2")
    assert type(strat).__name__ == "BuyTheThirdBar"
    from solbot.runtime.backtest import run_backtest

    res = run_backtest(market(list(100 + np.arange(10.0))), strat)
    (order,) = res.engine.portfolio.orders.values()
    assert order.quantity == 2 and order.status.value == "filled"
    assert resolve(f"{path}:BuyTheThirdBar") is type(strat)
    assert source_sha256(str(path)) is not None and source_sha256("trend") is None


def test_built_in_names_still_resolve() -> None:
    assert resolve("trend") is TrendFollow


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("def broken(:\n", "syntax error at line 1"),
        ("import no_such_module_here\n", "importing it failed: ModuleNotFoundError"),
        ("x = 1\n", "defines no Strategy subclass"),
        (
            MINE + "\n\nclass Another(BuyTheThirdBar):\n    pass\n",
            "defines Another, BuyTheThirdBar; name one",
        ),
    ],
    ids=["syntax", "import", "no-class", "two-classes"],
)
def test_a_broken_strategy_file_is_one_line_naming_what_is_wrong(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(StrategyError, match=message) as info:
        create(str(path))
    assert "\n" not in str(info.value)


def test_unknown_specs_and_bad_parameters_are_strategy_errors(tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match="does not exist"):
        create(str(tmp_path / "missing.py"))
    with pytest.raises(StrategyError, match="has no Strategy subclass 'Nope'"):
        create(f"{write(tmp_path, MINE)}:Nope")
    with pytest.raises(StrategyError, match="unknown strategy 'nope'"):
        create("nope")
    with pytest.raises(StrategyError, match=r"unknown parameters \['no_such_parameter'\]"):
        create("trend", no_such_parameter=1)  # the class's own check
    with pytest.raises(StrategyError, match=r"bad parameters: .*unexpected keyword"):
        create(str(write(tmp_path, MINE)), colour="red")


def test_an_edited_file_is_loaded_again(tmp_path: Path) -> None:
    path = write(tmp_path, MINE)
    first = resolve(str(path))
    write(tmp_path, MINE.replace("BuyTheThirdBar", "BuyTheThird") + "\n# edited\n")
    assert resolve(str(path)).__name__ == "BuyTheThird" and first.__name__ == "BuyTheThirdBar"


def test_an_installed_packages_entry_point_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib import metadata

    write(tmp_path, MINE, "pkg_mine.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = metadata.EntryPoint("third", "pkg_mine:BuyTheThirdBar", "solbot.strategies")
    bad = metadata.EntryPoint("notone", "pkg_mine:NO_COMMANDS", "solbot.strategies")

    def entry_points(**kw: Any) -> list[metadata.EntryPoint]:
        return [ep, bad] if kw.get("group") == "solbot.strategies" else []

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    assert resolve("third").__name__ == "BuyTheThirdBar"
    with pytest.raises(StrategyError, match="is not a Strategy"):
        resolve("notone")


def test_the_built_in_strategies_use_the_public_sdk() -> None:
    """Built-ins import ``solbot.sdk`` and their own package; the few internals they share
    beyond it are listed here with why (a user's strategy needs none of them)."""
    import ast

    allowed = {
        "solbot.sdk",
        "solbot.indicators.regime",  # the regime classifier the managed strategies share
        "solbot.domain.values",  # quantize_down: donchian's quote amount
        "solbot.domain.ledger",  # MARKET_BUY_LOCK_BUFFER: the risk sizing's headroom
    }
    src = Path(__file__).resolve().parents[3] / "src" / "solbot" / "strategies"
    for path in src.glob("*.py"):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("solbot."):
                mod = node.module or ""
                assert mod in allowed or mod.startswith("solbot.strategies."), (path.name, mod)


def test_the_new_strategy_template_trades_as_it_is_and_refuses_bad_names(tmp_path: Path) -> None:
    from solbot.data.synthetic import synthetic_market
    from solbot.research.template import write_template
    from solbot.runtime.backtest import run_backtest

    path = write_template("my_strat", tmp_path)
    bars, _ = synthetic_market(bars=3000, seed=8)
    res = run_backtest(bars, create(str(path)))
    entries = [o for o in res.engine.portfolio.orders.values() if o.tag == "my_strat-entry"]
    assert len(entries) >= 3 and all(o.status.value == "filled" for o in entries)
    with pytest.raises(ValueError, match="exists"):
        write_template("my_strat", tmp_path)
    with pytest.raises(ValueError, match="not a valid name"):
        write_template("My-Strat", tmp_path)
