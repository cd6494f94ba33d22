"""Pruning inside the optimiser and walk-forward: a backtest reports its objective part-way
(``run_backtest(checkpoints=…)``) and Optuna's median pruner stops trials that trail; a
checkpointed run is the same run; a pruned study still picks from whole trials only."""

from __future__ import annotations

import optuna

from solbot.data.synthetic import synthetic_market
from solbot.research.optimize import PRUNE_STARTUP, PRUNE_STEPS, optimize, walk_forward
from solbot.runtime.backtest import BacktestConfig, run_backtest
from solbot.strategies import create


def test_a_checkpointed_backtest_reports_its_run_so_far_and_ends_as_the_same_run():
    bars, _ = synthetic_market(bars=4000, seed=5)
    seen: list[tuple[int, int, float]] = []

    def note(k: int, partial: object) -> None:
        seen.append((k, len(partial.bars), float(partial.equity[-1])))  # type: ignore[attr-defined]

    plain = run_backtest(bars, create("donchian"), BacktestConfig(), trade_from=200)
    checked = run_backtest(
        bars, create("donchian"), BacktestConfig(), trade_from=200, checkpoints=3,
        on_checkpoint=note,
    )  # fmt: skip
    assert [(k, n) for k, n, _ in seen] == [(0, 1150), (1, 2100), (2, 3050)]  # 1/4, 2/4, 3/4
    assert [float(plain.equity[n - 1]) for _, n, _ in seen] == [eq for _, _, eq in seen]
    assert checked.metrics == plain.metrics and len(checked.trades) == len(plain.trades)


def test_pruning_stops_trailing_trials_and_the_best_is_a_whole_trial():
    bars, _ = synthetic_market(bars=6000, seed=9)
    _, best, study = optimize(bars, "donchian", 24, seed=3, prune=True)
    states = [t.state for t in study.trials]
    pruned = [t for t in study.trials if t.state is optuna.trial.TrialState.PRUNED]
    assert pruned, states  # some trial trailed the median part-way
    assert all(t.number >= PRUNE_STARTUP for t in pruned)
    assert all(len(t.intermediate_values) <= PRUNE_STEPS for t in pruned)
    complete = [t for t in study.trials if t.state is optuna.trial.TrialState.COMPLETE]
    assert best == max(t.value for t in complete)
    _, _, unpruned = optimize(bars, "donchian", 24, seed=3)
    assert all(t.state is optuna.trial.TrialState.COMPLETE for t in unpruned.trials)


def test_walk_forward_with_pruning_reports_the_same_windows():
    bars, _ = synthetic_market(bars=24 * 31 * 6, seed=12)
    plain = walk_forward(bars, "donchian", trials=8, seed=2)
    pruned = walk_forward(bars, "donchian", trials=8, seed=2, prune=True)
    assert [(w.train, w.test) for w in pruned.windows] == [(w.train, w.test) for w in plain.windows]
