"""Several symbols in one account: one engine per symbol, stepped together in time.

Capital is split into sleeves — ``equal`` or ``vol`` (inverse volatility of daily returns,
measured on the ``calibration_days`` before trading starts, which are not traded) — and a
portfolio-wide exposure cap denies any buy that would take the value of all positions above
``exposure_cap`` × total equity. Each engine is the ordinary engine with its own simulated
venue; the cap is an extra pre-trade check that sees every engine.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from solbot.data.bars import BarArrays, FloatArray, timeframe_ms
from solbot.domain.errors import ConfigurationError
from solbot.domain.messages import Bar
from solbot.domain.values import ZERO
from solbot.engine.core import Engine
from solbot.engine.risk import ExposureCap
from solbot.reporting.metrics import Metrics, compute_metrics
from solbot.runtime.backtest import BacktestConfig, BacktestResult, build_engine, summarise
from solbot.strategies import create

DAY_MS = 86_400_000


@dataclass(slots=True)
class MultiResult:
    symbols: list[str]
    weights: dict[str, float]
    results: dict[str, BacktestResult]
    ts: np.ndarray
    equity: FloatArray
    metrics: Metrics
    max_exposure: float
    denied_by_cap: int


def _tagged(d: BarArrays, i: int) -> Iterator[tuple[int, int, Bar]]:
    # a function, not a generator expression in a loop: ``i`` must bind per stream
    return ((bar.ts, i, bar) for bar in d.bars())


def allocation_weights(
    datasets: list[BarArrays], mode: str, calibration_days: int
) -> dict[str, float]:
    if mode == "equal":
        return {d.symbol: 1.0 / len(datasets) for d in datasets}
    if mode != "vol":
        raise ConfigurationError("allocation must be 'equal' or 'vol'")
    inv = {}
    for d in datasets:
        end = int(d.ts[0]) + calibration_days * DAY_MS
        k = int(np.searchsorted(d.ts, end))
        per_day = max(1, DAY_MS // timeframe_ms(d.timeframe))
        closes = d.close[:k:per_day]
        if len(closes) < 5:
            raise ConfigurationError(f"{d.symbol}: not enough calibration data for vol weights")
        sigma = float(np.std(np.diff(np.log(closes)), ddof=1))
        inv[d.symbol] = 1.0 / sigma
    total = sum(inv.values())
    return {s: v / total for s, v in inv.items()}


def run_multi(
    datasets: list[BarArrays],
    strategy: str,
    cash: Decimal = Decimal("30000"),
    allocation: str = "equal",
    exposure_cap: float = 1.0,
    calibration_days: int = 30,
) -> MultiResult:
    symbols = [d.symbol for d in datasets]
    if len(set(symbols)) != len(symbols):
        raise ConfigurationError("each data file must be a different symbol")
    weights = allocation_weights(datasets, allocation, calibration_days)
    engines: dict[str, tuple[Engine, object]] = {}
    marks: dict[str, Decimal] = {}
    cap = ExposureCap(
        Decimal(str(exposure_cap)),
        lambda: ((e.portfolio, marks.get(sym, ZERO)) for sym, (e, _) in engines.items()),
    )

    for d in datasets:
        config = BacktestConfig(
            initial_cash=(cash * Decimal(str(weights[d.symbol]))).quantize(Decimal("0.00000001"))
        )
        eng, venue = build_engine(create(strategy), config, d.symbol)
        eng.risk.extra_checks.append(cap)
        eng.start(history=d)
        engines[d.symbol] = (eng, venue)
    start_ts = min(int(d.ts[0]) for d in datasets) + calibration_days * DAY_MS
    # merge the bars of all symbols by time; ties in symbol order
    streams = [_tagged(d, i) for i, d in enumerate(datasets)]
    all_ts: list[int] = []
    exposed: list[bool] = []
    exposure_max = 0.0
    last_ts = None
    for ts, i, bar in heapq.merge(*streams):
        d = datasets[i]
        eng, _ = engines[d.symbol]
        marks[d.symbol] = eng.portfolio.instrument.price(bar.close)
        if ts < start_ts:
            eng.warm_up(bar)
        else:
            eng.on_bar(bar)
        if ts != last_ts and ts >= start_ts:
            all_ts.append(ts)
            last_ts = ts
            eq = sum(float(e.portfolio.equity(marks.get(s, ZERO))) for s, (e, _) in engines.items())
            ex = sum(
                float(e.portfolio.ledger.total(e.portfolio.instrument.base) * marks.get(s, ZERO))
                for s, (e, _) in engines.items()
            )
            exposure_max = max(exposure_max, ex / eq if eq > 0 else 0.0)
            exposed.append(ex > 0)
    results = {
        d.symbol: summarise(
            d,
            engines[d.symbol][0],
            engines[d.symbol][1],  # type: ignore[arg-type]
            BacktestConfig(initial_cash=engines[d.symbol][0].portfolio.initial_quote),
        )
        for d in datasets
    }
    grid = np.array(all_ts, dtype=np.int64)
    total = np.zeros(len(grid))
    hold = np.zeros(len(grid))  # buy & hold with the same weights, from the first traded bar
    for d in datasets:
        r = results[d.symbol]
        idx = np.maximum(np.searchsorted(d.ts, grid, side="right") - 1, 0)
        total += r.equity[idx]
        first = d.close[idx[0]]
        hold += float(cash) * weights[d.symbol] * d.close[idx] / first
    trades = [t for r in results.values() for t in r.trades]
    fees = sum((r.engine.portfolio.fees_paid for r in results.values()), ZERO)
    bar_ms = min(timeframe_ms(d.timeframe) for d in datasets)
    metrics = compute_metrics(
        total,
        hold,
        np.array(exposed, dtype=bool),
        trades,
        bar_ms,
        fees,
        Decimal(repr(float(total[-1]))),
    )
    return MultiResult(symbols, weights, results, grid, total, metrics, exposure_max, cap.denied)
