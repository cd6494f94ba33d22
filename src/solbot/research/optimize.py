"""Parameter search with Optuna, walk-forward evaluation and Monte Carlo over trade order.

Objective: Sharpe ratio minus ``dd_penalty`` × max drawdown of the backtest. Studies live in
SQLite by default; a PostgreSQL URL lets workers on several machines share one study.
Walk-forward: optimise on ``train_months``, test the best parameters on the next
``test_months``, slide by the test length; only the test windows are reported, chained into
one out-of-sample equity curve (a window starts with the equity the previous one ended with;
a position still open at a window's end is valued at its last close).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np

from solbot.data.bars import BarArrays, FloatArray, timeframe_ms
from solbot.engine.params import Param
from solbot.reporting.metrics import Metrics, compute_metrics
from solbot.reporting.trades import Trade
from solbot.runtime.backtest import BacktestConfig, instrument_for, run_backtest
from solbot.strategies import create, resolve

WARMUP_BARS = 200


def objective_value(m: Metrics, dd_penalty: float = 2.0) -> float:
    sharpe = m.sharpe if math.isfinite(m.sharpe) else 0.0
    return sharpe - dd_penalty * m.max_drawdown


def search_space(strategy: str) -> dict[str, Param]:
    """The parameters ``strategy`` declares for searching (``Strategy.parameters``)."""
    declared = resolve(strategy).parameters
    space = {name: p for name, p in declared.items() if p.searchable}
    if not space:
        raise ValueError(
            f"{strategy}: declares no parameters to search (see Strategy.parameters in "
            "docs/strategies.md)"
        )
    return space


def suggest(trial: Any, space: dict[str, Param]) -> dict[str, Any]:
    return {name: p.suggest(trial, name) for name, p in space.items()}


def optimize(
    bars: BarArrays,
    strategy: str,
    trials: int,
    seed: int = 0,
    storage: str | None = None,
    study_name: str | None = None,
    dd_penalty: float = 2.0,
    progress: Callable[[int, int], None] | None = None,
    trade_from: int = 0,
    fixed: dict[str, Any] | None = None,
    config: BacktestConfig | None = None,
) -> tuple[dict[str, Any], float, Any]:
    """``fixed``: parameters passed to the strategy as they are, not searched."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = search_space(strategy)
    if storage is not None:
        from solbot.persistence.store import normalize_url

        storage = normalize_url(storage)
    study = optuna.create_study(
        direction="maximize",
        storage=storage,
        study_name=study_name,
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed),
    )
    done = [0]

    def objective(trial: Any) -> float:
        params = suggest(trial, space)
        result = run_backtest(
            bars, create(strategy, **params, **(fixed or {})), config, trade_from=trade_from
        )
        value = objective_value(result.metrics, dd_penalty)
        done[0] += 1
        if progress is not None:
            progress(done[0], trials)
        return value

    study.optimize(objective, n_trials=trials)
    return dict(study.best_params), float(study.best_value), study


@dataclass(slots=True)
class Window:
    train: tuple[str, str]
    test: tuple[str, str]
    params: dict[str, Any]
    train_score: float
    test_return: float
    trades: int


@dataclass(slots=True)
class WalkForward:
    strategy: str
    windows: list[Window]
    ts: np.ndarray
    equity: FloatArray
    close: FloatArray
    trades: list[Trade]
    metrics: Metrics
    buy_hold: Metrics
    monte_carlo: dict[str, float] = field(default_factory=dict)


def _month_starts(ts: np.ndarray) -> list[int]:
    first = datetime.fromtimestamp(int(ts[0]) / 1000, UTC)
    last = datetime.fromtimestamp(int(ts[-1]) / 1000, UTC)
    y, m = first.year, first.month + 1
    out = []
    while (y, m) <= (last.year, last.month):
        out.append(int(datetime(y, m, 1, tzinfo=UTC).timestamp() * 1000))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()


def walk_forward(
    bars: BarArrays,
    strategy: str,
    trials: int = 20,
    train_months: int = 3,
    test_months: int = 1,
    seed: int = 0,
    dd_penalty: float = 2.0,
    progress: Callable[[int, int], None] | None = None,
    fixed: dict[str, Any] | None = None,
    shortable: bool = False,
) -> WalkForward:
    starts = _month_starts(bars.ts)
    idx = [int(np.searchsorted(bars.ts, s)) for s in starts]
    windows: list[Window] = []
    eq_parts: list[FloatArray] = []
    ts_parts: list[np.ndarray] = []
    close_parts: list[FloatArray] = []
    trades: list[Trade] = []
    pos_parts: list[FloatArray] = []
    trade_returns: list[float] = []
    cash = Decimal("10000")
    n_windows = max(0, len(idx) - train_months - test_months + 1)
    for w in range(n_windows):
        tr0, tr1 = idx[w], idx[w + train_months]
        te1 = (
            idx[w + train_months + test_months]
            if w + train_months + test_months < len(idx)
            else len(bars)
        )
        if te1 - tr1 < 24 or tr1 - tr0 < 24 * 30:
            continue
        warm = max(0, tr0 - WARMUP_BARS)
        inst = replace(instrument_for(bars.symbol), shortable=True) if shortable else None
        params, score, _ = optimize(
            bars.slice(warm, tr1),
            strategy,
            trials,
            seed + w,
            dd_penalty=dd_penalty,
            trade_from=tr0 - warm,
            fixed=fixed,
            config=BacktestConfig(instrument=inst),
        )
        t_warm = max(0, tr1 - WARMUP_BARS)
        config = BacktestConfig(initial_cash=cash, instrument=inst)
        res = run_backtest(
            bars.slice(t_warm, te1),
            create(strategy, **params, **(fixed or {})),
            config,
            trade_from=tr1 - t_warm,
            close_at_end=True,
        )
        k = tr1 - t_warm
        eq = res.equity[k:].copy()
        eq[-1] = float(res.metrics.final_equity)  # after the closing sale's fee and slippage
        eq_parts.append(eq)
        pos_parts.append(res.position[k:])
        trade_returns.extend(
            float(t.pnl) / float(res.equity[max(t.entry_bar - 1, 0)])
            for t in res.trades
            if t.entry_bar >= k and not t.is_open
        )
        ts_parts.append(bars.ts[tr1:te1])
        close_parts.append(bars.close[tr1:te1])
        trades.extend(t for t in res.trades if t.entry_bar >= k)
        cash = Decimal(res.metrics.final_equity)
        windows.append(
            Window(
                (_day(int(bars.ts[tr0])), _day(int(bars.ts[tr1 - 1]))),
                (_day(int(bars.ts[tr1])), _day(int(bars.ts[te1 - 1]))),
                params,
                score,
                float(eq[-1] / eq[0] - 1) if len(eq) else 0.0,
                sum(1 for t in res.trades if t.entry_bar >= k and not t.is_open),
            )
        )
        if progress is not None:
            progress(w + 1, n_windows)
    if not windows:
        raise ValueError("not enough data for one train + test window")
    equity = np.concatenate(eq_parts)
    ts = np.concatenate(ts_parts)
    close = np.concatenate(close_parts)
    bar_ms = timeframe_ms(bars.timeframe)
    fees = sum((t.fees for t in trades), Decimal(0))
    exposure = np.concatenate(pos_parts) != 0
    metrics = compute_metrics(equity, close, exposure, trades, bar_ms, fees, cash)
    bh_equity = 10000.0 * close / close[0]
    buy_hold = compute_metrics(
        bh_equity,
        close,
        np.ones(len(close), bool),
        [],
        bar_ms,
        Decimal(0),
        Decimal(repr(float(bh_equity[-1]))),
    )
    wf = WalkForward(strategy, windows, ts, equity, close, trades, metrics, buy_hold)
    wf.monte_carlo = monte_carlo(trade_returns, seed=seed)
    return wf


def monte_carlo(trade_returns: list[float], n: int = 500, seed: int = 0) -> dict[str, float]:
    """Resample the trade sequence ``n`` times; returns are PnL / equity before the trade.

    Shuffling the order leaves the final return unchanged but not the path, so max drawdown
    gets a distribution; bootstrapping trades (with replacement) gives the distribution of
    the total return. ES95 = the mean of the worst 5 %."""
    r = np.asarray(trade_returns, dtype=np.float64)
    if len(r) < 2:
        return {}
    rng = np.random.default_rng(seed)
    dds, rets = np.empty(n), np.empty(n)
    for i in range(n):
        path = np.cumprod(1.0 + rng.permutation(r))
        peak = np.maximum.accumulate(np.concatenate([[1.0], path]))[1:]
        dds[i] = float(np.max(1.0 - path / peak))
        rets[i] = float(np.prod(1.0 + rng.choice(r, size=len(r), replace=True)) - 1.0)
    worst_dd = np.sort(dds)[-max(1, n // 20) :]
    worst_ret = np.sort(rets)[: max(1, n // 20)]
    return {
        "resamples": float(n),
        "max_drawdown_p50": float(np.median(dds)),
        "max_drawdown_p95": float(np.percentile(dds, 95)),
        "max_drawdown_es95": float(np.mean(worst_dd)),
        "return_p5": float(np.percentile(rets, 5)),
        "return_es95": float(np.mean(worst_ret)),
    }
