"""Declared strategy parameters (``engine.params``): typed, checked where a strategy is built
(``--param``, ``SOLBOT_STRATEGY_PARAMS``), and the optimiser's search space."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from solbot.engine.params import Choice, Dec, Flag, Float, Int, ParamError
from solbot.research.optimize import search_space
from solbot.strategies import StrategyError, create


@pytest.mark.parametrize(
    ("param", "raw", "value"),
    [
        (Int(20, 2, 100), "30", 30),
        (Int(20, 2, 100), 30.0, 30),
        (Float(1.0, 0.0, 5.0), "2.5", 2.5),
        (Dec("0.1", "0", "1"), "0.25", Decimal("0.25")),
        (Dec("0.1", "0", "1"), 0.25, Decimal("0.25")),
        (Choice("a", ("a", "b")), "b", "b"),
        (Choice(3, (3, 5)), "5", 5),
        (Flag(False), "true", True),
        (Flag(False), False, False),
    ],
)
def test_a_declared_parameter_converts_what_the_command_line_or_json_gives(
    param: object, raw: object, value: object
) -> None:
    assert param.check("p", raw) == value  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("param", "raw", "message"),
    [
        (Int(20, 2, 100), "1", r"parameter p: '1' is outside \[2, 100\]"),
        (Int(20, 2, 100), "2.5", "parameter p: '2.5' is not an integer"),
        (Int(20, 2, 100), True, "parameter p: True is not an integer"),
        (Float(1.0, 0.0, 5.0), "inf", "parameter p: 'inf' is not a number"),
        (Float(1.0, 0.0, 5.0), "nan", "parameter p: 'nan' is not a number"),
        (Dec("0.1", "0", "1"), "lots", "parameter p: 'lots' is not a decimal number"),
        (Choice("a", ("a", "b")), "c", "parameter p: 'c' is not one of a, b"),
        (Flag(False), "maybe", "parameter p: 'maybe' is not true or false"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_parameter(
    param: object, raw: object, message: str
) -> None:
    with pytest.raises(ParamError, match=message):
        param.check("p", raw)  # type: ignore[attr-defined]


def test_create_checks_declared_parameters_and_passes_the_others_on() -> None:
    strat = create("trend", entry_period="30", exchange_trail="true", risk_per_trade=0.005)
    assert strat.entry_period == 30 and strat.trails_at_exchange is True  # type: ignore[attr-defined]
    with pytest.raises(StrategyError, match="parameter adx_min: 200 is outside"):
        create("trend", adx_min=200)


def test_the_settings_name_the_bad_parameter(tmp_path: Path) -> None:
    from solbot.runtime.config import ConfigError, load_settings

    env = {"SOLBOT_STRATEGY": "meanrev", "SOLBOT_STRATEGY_PARAMS": '{"period": 1}'}
    with pytest.raises(ConfigError) as exc:
        load_settings(tmp_path, environ=env)
    assert str(exc.value) == "config: strategy: parameter period: 1 is outside [2, 1000]"


def test_the_search_space_is_what_the_built_in_strategies_declare() -> None:
    space = {k: (p.kind, p.space) for k, p in search_space("trend").items()}
    assert space == {
        "entry_period": ("int", (10, 60)),
        "adx_min": ("float", (15, 35)),
        "trail_atr": ("float", (0.8, 4.0)),
        "tp_r": ("float", (1.5, 5.0)),
    }  # the ranges (and their order: a seeded study's) of the table they replaced
    assert list(search_space("solbot")) == [
        "trend_entry_period",
        "trend_trail_atr",
        "adx_trend",
        "mr_k",
    ]
    with pytest.raises(ValueError, match="ladder: declares no parameters to search"):
        search_space("ladder")


def test_a_users_strategy_file_declares_its_own_search_space(tmp_path: Path) -> None:
    path = tmp_path / "own.py"
    path.write_text(
        "from solbot.engine.params import Int, Choice\n"
        "from solbot.engine.strategy import Strategy\n"
        "class Own(Strategy):\n"
        "    parameters = {'n': Int(5, 1, 50, search=(2, 9)), 'mode': Choice('x', ('x', 'y'))}\n"
        "    def __init__(self, n=5, mode='x'):\n"
        "        super().__init__()\n"
        "        self.n, self.mode = n, mode\n"
    )
    space = search_space(str(path))
    assert {k: p.space for k, p in space.items() if p.kind == "int"} == {"n": (2, 9)}
    assert create(str(path), n="7").n == 7  # type: ignore[attr-defined]
    with pytest.raises(StrategyError, match="parameter n: '0' is outside"):
        create(str(path), n="0")


def test_objectives_by_name_or_module_function_and_the_min_trades_penalty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from solbot.reporting.metrics import Metrics
    from solbot.research.optimize import objective_fn, objective_value

    m = Metrics(0.5, 0.4, 1.2, 1.6, 0.25, 1.6, 1.5, 0.5, 0.3, 4, "1", "15000", 0.9)
    assert objective_value(m) == pytest.approx(1.2 - 2 * 0.25)  # today's sharpe-dd
    assert objective_value(m, objective="sortino") == 1.6
    assert objective_value(m, objective="profit-dd") == pytest.approx(0.5 - 0.5)
    assert objective_value(m, objective="calmar", min_trades=8) == pytest.approx(1.6 - 5.0)
    (tmp_path / "myobj.py").write_text("def score(m):\n    return m.win_rate * m.trades\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert objective_value(m, objective="myobj:score") == 2.0
    with pytest.raises(ValueError, match="choose from sharpe, sortino"):
        objective_fn("best")
    with pytest.raises(ValueError, match="ModuleNotFoundError"):
        objective_fn("no_such_mod:f")
