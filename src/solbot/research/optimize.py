"""Parameter search with Optuna and walk-forward evaluation (Monte Carlo over trade order:
``research.montecarlo``).

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
from solbot.domain.errors import ConfigurationError
from solbot.domain.instruments import instrument_for
from solbot.engine.params import Param
from solbot.reporting.metrics import Metrics, compute_metrics
from solbot.reporting.trades import Trade
from solbot.research.montecarlo import monte_carlo
from solbot.runtime.backtest import BacktestConfig, run_backtest
from solbot.strategies import create, resolve

WARMUP_BARS = 200  # the least history a window is warmed up with


def warmup_bars(strategy: str, bar_ms: int, params: dict[str, Any] | None = None) -> int:
    """Bars to run before a window so that ``strategy`` built with ``params`` is warm
    (``Strategy.warmup_bars``; at least ``WARMUP_BARS``)."""
    return max(WARMUP_BARS, create(strategy, **(params or {})).warmup_bars(bar_ms))


def search_warmup(strategy: str, bar_ms: int, fixed: dict[str, Any] | None = None) -> int:
    """The warm-up that covers every trial of a search: the larger of the defaults' and
    that of every searched parameter at the top of its range (a longer lookback)."""
    need = warmup_bars(strategy, bar_ms, fixed)
    top = {
        name: p.space[1]
        for name, p in search_space(strategy).items()
        if p.kind in ("int", "float", "decimal")
    }
    try:
        need = max(need, warmup_bars(strategy, bar_ms, {**top, **(fixed or {})}))
    except ValueError:  # the tops together break a rule of the strategy (fast < slow...)
        for name, value in top.items():
            try:
                need = max(need, warmup_bars(strategy, bar_ms, {**(fixed or {}), name: value}))
            except ValueError:
                continue
    return need


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0


OBJECTIVES: dict[str, Callable[[Metrics], float]] = {
    "sharpe": lambda m: _finite(m.sharpe),
    "sortino": lambda m: _finite(m.sortino),
    "calmar": lambda m: _finite(m.calmar),
    "sharpe-dd": lambda m: _finite(m.sharpe) - 2.0 * m.max_drawdown,
    "profit-dd": lambda m: _finite(m.total_return) - 2.0 * m.max_drawdown,
}


def objective_fn(name: str) -> Callable[[Metrics], float]:
    """A named objective (``OBJECTIVES``) or ``module:function`` (a callable taking the
    backtest's ``Metrics`` and returning a number to maximise)."""
    if name in OBJECTIVES:
        return OBJECTIVES[name]
    module, sep, attr = name.partition(":")
    if not sep or not module or not attr:
        raise ConfigurationError(
            f"objective {name!r}: choose from {', '.join(OBJECTIVES)} or module:function"
        )
    import importlib

    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"objective {name!r}: {type(exc).__name__}: {exc}") from None
    if not callable(fn):
        raise ConfigurationError(f"objective {name!r} is not callable")
    return fn  # type: ignore[no-any-return]


def objective_value(
    m: Metrics, dd_penalty: float = 2.0, objective: str = "sharpe-dd", min_trades: int = 0
) -> float:
    """The trial's score: the objective, less 10 × the share of ``min_trades`` missing (a
    parameter set that barely trades is not a finding)."""
    if objective == "sharpe-dd":
        value = _finite(m.sharpe) - dd_penalty * m.max_drawdown
    else:
        value = float(objective_fn(objective)(m))
        if not math.isfinite(value):
            value = -1e9
    if min_trades > 0 and m.trades < min_trades:
        value -= 10.0 * (min_trades - m.trades) / min_trades
    return value


def search_space(strategy: str) -> dict[str, Param]:
    """The parameters ``strategy`` declares for searching (``Strategy.parameters``)."""
    declared = resolve(strategy).parameters
    space = {name: p for name, p in declared.items() if p.searchable}
    if not space:
        raise ConfigurationError(
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
    objective: str = "sharpe-dd",
    min_trades: int = 0,
    jobs: int = 1,
    prune: bool = False,
) -> tuple[dict[str, Any], float, Any]:
    """``fixed``: parameters passed to the strategy as they are, not searched. ``prune``:
    each trial reports its objective at ``PRUNE_STEPS`` points of its run and Optuna's
    median pruner stops one that is worse than the median of the trials before it at the
    same point (after ``PRUNE_STARTUP`` whole trials): a bad parameter set costs a part of a
    backtest, not a whole one. ``jobs`` > 1:
    that many processes share the study (``storage`` is then required: SQLite on one
    machine, PostgreSQL across machines), each running its share of ``trials`` with its own
    sampler seed (``seed`` + its number) — the study then depends on their timing; with
    ``jobs`` 1 a seed gives the same study every time."""
    import optuna

    objective_fn(objective)  # a bad name fails here, not in every trial
    if jobs > 1 and prune:
        raise ConfigurationError("--prune works with --jobs 1 in optimize (walk-forward: any)")
    if jobs > 1:
        return _optimize_parallel(
            bars, strategy, trials, seed, storage, study_name, dd_penalty, progress,
            trade_from, fixed, config, objective, min_trades, jobs,
        )  # fmt: skip

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
        pruner=(
            optuna.pruners.MedianPruner(n_startup_trials=PRUNE_STARTUP, n_warmup_steps=0)
            if prune
            else optuna.pruners.NopPruner()
        ),
    )
    done = [0]

    def objective_of_trial(trial: Any) -> float:
        params = suggest(trial, space)

        def report(step: int, partial: Any) -> None:
            # the objective so far (no min-trades penalty: the run is not over)
            trial.report(objective_value(partial.metrics, dd_penalty, objective), step)
            if trial.should_prune():
                done[0] += 1
                if progress is not None:
                    progress(done[0], trials)
                raise optuna.TrialPruned()

        try:
            built = create(strategy, **params, **(fixed or {}))
        except ConfigurationError as exc:  # a combination the strategy refuses (fast < slow)
            trial.set_user_attr("refused", str(exc))
            done[0] += 1
            if progress is not None:
                progress(done[0], trials)
            raise optuna.TrialPruned() from None
        result = run_backtest(
            bars,
            built,
            config,
            trade_from=trade_from,
            checkpoints=PRUNE_STEPS if prune else 0,
            on_checkpoint=report if prune else None,
        )
        value = objective_value(result.metrics, dd_penalty, objective, min_trades)
        trial.set_user_attr("trades", result.metrics.trades)
        done[0] += 1
        if progress is not None:
            progress(done[0], trials)
        return value

    study.optimize(objective_of_trial, n_trials=trials)
    return dict(study.best_params), float(study.best_value), study


def _worker(args: tuple[Any, ...]) -> int:
    """One process's share of a parallel study (its own sampler seed, the shared storage)."""
    (bars, strategy, trials, seed, storage, name, dd, trade_from, fixed, config, obj, mt) = args
    optimize(
        bars, strategy, trials, seed, storage, name, dd, None, trade_from, fixed, config,
        obj, mt, jobs=1,
    )  # fmt: skip
    return int(trials)


def _optimize_parallel(
    bars: BarArrays,
    strategy: str,
    trials: int,
    seed: int,
    storage: str | None,
    study_name: str | None,
    dd_penalty: float,
    progress: Callable[[int, int], None] | None,
    trade_from: int,
    fixed: dict[str, Any] | None,
    config: BacktestConfig | None,
    objective: str,
    min_trades: int,
    jobs: int,
) -> tuple[dict[str, Any], float, Any]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    import optuna

    if storage is None:
        raise ConfigurationError("--jobs > 1 needs a study storage shared by the processes")
    if study_name is None:
        raise ConfigurationError("--jobs > 1 needs a study name shared by the processes")
    from solbot.persistence.store import normalize_url

    storage = normalize_url(storage)
    optuna.create_study(direction="maximize", storage=storage, study_name=study_name,
                        load_if_exists=True)  # fmt: skip
    shares = [trials // jobs + (1 if k < trials % jobs else 0) for k in range(jobs)]
    done = 0
    ctx = multiprocessing.get_context("spawn")  # no forked event loops, threads or locks
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = [
            pool.submit(
                _worker,
                (
                    bars,
                    strategy,
                    n,
                    seed + k,
                    storage,
                    study_name,
                    dd_penalty,
                    trade_from,
                    fixed,
                    config,
                    objective,
                    min_trades,
                ),
            )
            for k, n in enumerate(shares)
            if n > 0
        ]
        for fut in as_completed(futures):
            done += fut.result()
            if progress is not None:
                progress(done, trials)
    study = optuna.load_study(study_name=study_name, storage=storage)
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
    position: FloatArray = field(default_factory=lambda: np.zeros(0))  # per test bar


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


PRUNE_STEPS = 3  # a trial reports at 1/4, 2/4 and 3/4 of its bars
PRUNE_STARTUP = 5  # whole trials before any is pruned


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
    objective: str = "sharpe-dd",
    min_trades: int = 0,
    jobs: int = 1,
    prune: bool = False,
) -> WalkForward:
    """``jobs`` > 1: the windows' searches (independent: each its own in-memory study and
    seed) run in that many processes; the test months then run in order (each starts with
    the equity the one before ended with). The result does not depend on ``jobs``."""
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
    inst = replace(instrument_for(bars.symbol), shortable=True) if shortable else None
    plan: list[tuple[int, int, int, int]] = []  # (window, train start, train end, test end)
    per_day = max(1, 86_400_000 // timeframe_ms(bars.timeframe))
    for w in range(n_windows):
        tr0, tr1 = idx[w], idx[w + train_months]
        te1 = (
            idx[w + train_months + test_months]
            if w + train_months + test_months < len(idx)
            else len(bars)
        )
        if te1 - tr1 < per_day or tr1 - tr0 < per_day * 30:  # a day's test, a month's train
            continue
        plan.append((w, tr0, tr1, te1))
    searches = [
        (bars, tr0, tr1, strategy, trials, seed + w, dd_penalty, fixed, inst, objective,
         min_trades, prune)
        for w, tr0, tr1, _ in plan
    ]  # fmt: skip
    found = _search_windows(searches, jobs)
    for (w, tr0, tr1, te1), (params, score) in zip(plan, found, strict=True):
        merged = {**params, **(fixed or {})}
        t_warm = max(0, tr1 - warmup_bars(strategy, timeframe_ms(bars.timeframe), merged))
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
        raise ConfigurationError("not enough data for one train + test window")
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
    wf.position = np.concatenate(pos_parts)
    return wf


def _search_window(args: tuple[Any, ...]) -> tuple[dict[str, Any], float]:
    """One walk-forward window's search on its train months (warmed up before them)."""
    bars, tr0, tr1, strategy, trials, seed, dd_penalty, fixed, inst, objective, mt, prune = args
    warm = max(0, tr0 - search_warmup(strategy, timeframe_ms(bars.timeframe), fixed))
    params, score, _ = optimize(
        bars.slice(warm, tr1),
        strategy,
        trials,
        seed,
        dd_penalty=dd_penalty,
        trade_from=tr0 - warm,
        fixed=fixed,
        config=BacktestConfig(instrument=inst),
        objective=objective,
        min_trades=mt,
        prune=prune,
    )
    return params, score


def _search_windows(
    searches: list[tuple[Any, ...]], jobs: int
) -> list[tuple[dict[str, Any], float]]:
    if jobs <= 1 or len(searches) <= 1:
        return [_search_window(a) for a in searches]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # each process gets only its window's bars (from its warm-up before its train months)
    trimmed = []
    for a in searches:
        bars, tr0, tr1 = a[0], a[1], a[2]
        lo = max(0, tr0 - search_warmup(a[3], timeframe_ms(bars.timeframe), a[7]))
        trimmed.append((bars.slice(lo, tr1), tr0 - lo, tr1 - lo, *a[3:]))
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        return list(pool.map(_search_window, trimmed))
