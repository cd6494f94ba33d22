"""Donchian breakout through the engine agrees with an independent vectorised reference,
and the backtest (vectorised indicators) and live (incremental) modes place the same orders."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from solbot.data.bars import BarArrays
from solbot.data.importers import read_freqtrade_json
from solbot.data.synthetic import synthetic_market
from solbot.domain.instruments import sol_usdt
from solbot.domain.ledger import Ledger
from solbot.engine.core import Engine
from solbot.engine.portfolio import Portfolio
from solbot.engine.ports import SimClock
from solbot.runtime.backtest import run_backtest
from solbot.strategies import create
from solbot.strategies.donchian import DonchianBreakout
from solbot.venues.sim import SimulatedExchange
from tests.conftest import shared_file


def reference_trades(b: BarArrays, n_in: int = 20, n_out: int = 10) -> list[tuple[int, int | None]]:
    """Signal on bar t's close against the previous n bars; act at bar t+1's open."""
    n = len(b)
    upper = np.full(n, np.nan)
    lower = np.full(n, np.nan)
    upper[n_in:] = sliding_window_view(b.high, n_in).max(axis=1)[:-1]
    lower[n_out:] = sliding_window_view(b.low, n_out).min(axis=1)[:-1]
    trades: list[tuple[int, int | None]] = []
    entry: int | None = None
    for t in range(n - 1):
        if entry is None and b.close[t] > upper[t]:
            entry = t + 1
        elif entry is not None and t >= entry and b.close[t] < lower[t]:
            trades.append((int(b.ts[entry]), int(b.ts[t + 1])))
            entry = None
    if entry is not None:
        trades.append((int(b.ts[entry]), None))
    return trades


def engine_trades(b: BarArrays, **params: object) -> list[tuple[int, int | None]]:
    result = run_backtest(b, create("donchian", **params))
    return [(t.entry_ts, t.exit_ts) for t in result.trades]


def test_engine_trades_equal_reference_on_synthetic_market():
    b, _ = synthetic_market(bars=6000, seed=11)
    ref = reference_trades(b)
    assert len(ref) > 40
    assert engine_trades(b) == ref


def test_engine_trades_equal_reference_with_other_periods():
    b, _ = synthetic_market(bars=4000, seed=5)
    assert engine_trades(b, entry_period=55, exit_period=20) == reference_trades(b, 55, 20)


def test_engine_trades_equal_reference_on_real_sol_1h():
    b = read_freqtrade_json(shared_file("SOL_USDT-1h.json"))
    ref = reference_trades(b)
    got = engine_trades(b)
    assert len(got) == len(ref)
    for i, (g, r) in enumerate(zip(got, ref, strict=True)):
        assert g == r, f"trade {i}: engine {g} != reference {r}"


def run_live_mode(b: BarArrays) -> list[tuple[str, str, str, str, int]]:
    """The engine exactly as the live runner drives it: no history, incremental indicators."""
    inst = sol_usdt()
    balances = {"USDT": Decimal("10000"), "SOL": Decimal(0)}
    venue = SimulatedExchange(inst, balances)
    engine = Engine(DonchianBreakout(), Portfolio(inst, Ledger(balances)), venue, SimClock())
    engine.start(history=None)
    for bar in b.bars():
        engine.on_bar(bar)
    return [
        (r.fill.order_id, r.fill.side.value, str(r.fill.quantity), str(r.fill.price), r.fill.ts)
        for r in engine.portfolio.fills
    ]


def test_backtest_and_live_feed_place_identical_orders():
    b, _ = synthetic_market(bars=5000, seed=2)
    backtest = run_backtest(b, DonchianBreakout())
    fills = [
        (r.fill.order_id, r.fill.side.value, str(r.fill.quantity), str(r.fill.price), r.fill.ts)
        for r in backtest.engine.portfolio.fills
    ]
    assert len(fills) > 50
    assert run_live_mode(b) == fills
