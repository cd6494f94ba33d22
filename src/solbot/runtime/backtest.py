"""Backtest runner: the live engine, a simulated clock and the simulated exchange."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice

import numpy as np

from solbot.data.bars import BarArrays, FloatArray, timeframe_ms
from solbot.domain.instruments import Instrument, instrument_for
from solbot.domain.ledger import Ledger
from solbot.domain.messages import CancelAll, SubmitOrder
from solbot.domain.values import ZERO, OrderType, Side, TradingState
from solbot.engine.core import Engine
from solbot.engine.portfolio import Portfolio
from solbot.engine.ports import SimClock
from solbot.engine.risk import RiskEngine, RiskLimits
from solbot.engine.strategy import Strategy
from solbot.reporting.metrics import Metrics, compute_metrics
from solbot.reporting.trades import Trade, build_trades
from solbot.venues.sim import SimConfig, SimulatedExchange

Progress = Callable[[int, int], None]
CHUNK = 65_536


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    initial_cash: Decimal = Decimal("10000")
    sim: SimConfig = field(default_factory=SimConfig)
    risk: RiskLimits = field(default_factory=RiskLimits)
    instrument: Instrument | None = None
    # protective stops as stop-limits this far beyond the trigger, as live on Binance spot
    # (None: stop-market orders)
    stop_limit_offset: Decimal | None = Decimal("0.005")


@dataclass(slots=True)
class BacktestResult:
    bars: BarArrays
    engine: Engine
    venue: SimulatedExchange
    equity: FloatArray
    position: FloatArray
    trades: list[Trade]
    metrics: Metrics


def build_engine(
    strategy: Strategy, config: BacktestConfig, symbol: str
) -> tuple[Engine, SimulatedExchange]:
    inst = config.instrument or instrument_for(symbol)
    balances = {inst.quote: config.initial_cash, inst.base: ZERO}
    venue = SimulatedExchange(inst, balances, config.sim)
    portfolio = Portfolio(inst, Ledger(balances))
    engine = Engine(
        strategy,
        portfolio,
        venue,
        SimClock(),
        RiskEngine(config.risk),
        stop_limit_offset=config.stop_limit_offset,
    )
    return engine, venue


def run_backtest(
    bars: BarArrays,
    strategy: Strategy,
    config: BacktestConfig | None = None,
    progress: Progress | None = None,
    trade_from: int = 0,
    close_at_end: bool = False,
    checkpoints: int = 0,
    on_checkpoint: Callable[[int, BacktestResult], None] | None = None,
) -> BacktestResult:
    """``trade_from``: bars before this index only warm indicators up (no strategy calls).
    ``close_at_end``: cancel what rests and sell the position at the last close (less
    slippage and fees), so every trade is closed and counted. ``checkpoints``: that many
    times, evenly spread over the traded bars, ``on_checkpoint(k, result so far)`` is called
    with the run summarised up to there (the optimiser's pruning; it may raise to stop)."""
    config = config or BacktestConfig()
    engine, venue = build_engine(strategy, config, bars.symbol)
    engine.start(history=bars)
    on_bar = engine.on_bar
    total = len(bars)
    it = bars.bars()
    done = 0
    for bar in islice(it, trade_from):
        engine.warm_up(bar)
    done = trade_from
    span = total - trade_from
    stops = [trade_from + span * k // (checkpoints + 1) for k in range(1, checkpoints + 1)]
    stops = [s for s in stops if s > trade_from] if on_checkpoint is not None else []
    while done < total:
        step = min(total, done + CHUNK, *(s for s in stops if s > done))
        for bar in islice(it, step - done):
            on_bar(bar)
        done = step
        if progress is not None:
            progress(done, total)
        if on_checkpoint is not None and done in stops:
            on_checkpoint(stops.index(done), summarise(bars.slice(0, done), engine, venue, config))
    engine.stop()
    if close_at_end and engine.last_bar is not None:
        liquidate(engine, venue, engine.last_bar.close)
    return summarise(bars, engine, venue, config)


def liquidate(engine: Engine, venue: SimulatedExchange, price: float) -> None:
    inst = engine.portfolio.instrument
    engine.execute([CancelAll()])
    qty = engine.portfolio.ledger.free(inst.base)
    if qty >= inst.min_qty:
        engine.risk.set_state(TradingState.REDUCING, "end of backtest window")  # quietly
        engine.execute([SubmitOrder(Side.SELL, OrderType.MARKET, inst.qty(qty), tag="end")])
        venue.match_market_now(price)
        engine.on_venue_event_drain()


def summarise(
    bars: BarArrays, engine: Engine, venue: SimulatedExchange, config: BacktestConfig
) -> BacktestResult:
    """Equity per bar rebuilt from the fill log: balances change only at fills, so
    equity[t] = quote[t] + base[t] * close[t] with quote/base carried forward."""
    pf = engine.portfolio
    n = len(bars)
    idx = np.array([r.bar_index for r in pf.fills], dtype=np.int64)
    quote = np.array([float(r.quote_total) for r in pf.fills], dtype=np.float64)
    base = np.array([float(r.base_total) for r in pf.fills], dtype=np.float64)
    pos = np.array([float(r.position_qty) for r in pf.fills], dtype=np.float64)
    at = np.searchsorted(idx, np.arange(n), side="right") - 1
    initial = float(config.initial_cash)
    quote_t = np.where(at >= 0, quote[np.maximum(at, 0)] if len(idx) else initial, initial)
    base_t = np.where(at >= 0, base[np.maximum(at, 0)] if len(idx) else 0.0, 0.0)
    pos_t = np.where(at >= 0, pos[np.maximum(at, 0)] if len(idx) else 0.0, 0.0)
    equity = quote_t + base_t * bars.close
    trades = build_trades(pf.fills)
    mark = pf.instrument.price(float(bars.close[-1])) if n else ZERO
    metrics = compute_metrics(
        equity,
        bars.close,
        pos_t != 0.0,
        trades,
        timeframe_ms(bars.timeframe),
        pf.fees_paid,
        pf.instrument.money(pf.equity(mark)),
    )
    return BacktestResult(bars, engine, venue, equity, pos_t, trades, metrics)
