"""Strategy rules on constructed markets, through the real engine and simulated exchange."""

from __future__ import annotations

import itertools
from decimal import Decimal as D

import numpy as np

from solbot.data.bars import BarArrays
from solbot.domain.messages import SubmitOrder
from solbot.domain.orders import OrderStatus
from solbot.domain.values import OrderType, Side
from solbot.runtime.backtest import run_backtest
from solbot.strategies.managed import ManagedStrategy
from solbot.strategies.meanrev import MeanReversion
from solbot.strategies.switcher import RegimeSwitcher
from solbot.strategies.trend import TrendFollow

T0 = 1_700_006_400_000
H = 3_600_000


def market(closes: list[float] | np.ndarray, wick: float = 0.003) -> BarArrays:
    c = np.asarray(closes, dtype=float)
    o = np.concatenate([[c[0]], c[:-1]])
    return BarArrays(
        T0 + H * np.arange(len(c), dtype=np.int64),
        o,
        np.maximum(o, c) * (1 + wick),
        np.minimum(o, c) * (1 - wick),
        c,
        np.full(len(c), 1e6),
        "SOL/USDT",
        "1h",
    )


def flat_then_breakout(n_flat: int = 80, n_up: int = 40) -> np.ndarray:
    flat = 100 + 0.3 * np.sin(np.arange(n_flat) * 1.3)
    up = flat[-1] * 1.012 ** np.arange(1, n_up + 1)
    return np.concatenate([flat, up])


def test_trend_entry_is_a_bracket_sized_to_one_percent_risk():
    res = run_backtest(market(flat_then_breakout()), TrendFollow(adx_min=0))
    orders = list(res.engine.portfolio.orders.values())
    entry = next(o for o in orders if o.tag == "trend-entry")
    legs = [o for o in orders if o.oco_group == f"oco-{entry.order_id}"]
    # as on Binance spot: a stop-limit 0.5 % under its trigger and a maker-only take-profit
    assert {o.type for o in legs} == {OrderType.LIMIT, OrderType.STOP_LIMIT}
    tp_leg = next(o for o in legs if o.type is OrderType.LIMIT)
    stop = next(o for o in legs if o.type is OrderType.STOP_LIMIT)
    tp, sl = tp_leg.price, stop.trigger_price
    assert tp is not None and sl is not None and stop.price is not None
    assert tp_leg.post_only and stop.price == res.engine.portfolio.instrument.price_down(
        sl * D("0.995")
    )
    # signal close c, 1 R = c - stop; take-profit 2.5 R above c, within a tick of rounding
    c = D(repr(float(res.bars.close[res.bars.ts.tolist().index(entry.created_ts)])))
    r = c - sl
    assert abs(tp - (c + D("2.5") * r)) <= D("0.02")
    risked = entry.quantity * r
    assert D("99.5") <= risked <= D("100")  # 1 % of the 10,000 equity (lot rounding below)


def test_trend_pyramids_at_most_twice():
    res = run_backtest(market(flat_then_breakout(n_up=80)), TrendFollow(adx_min=0, trail_atr=3))
    adds = [o for o in res.engine.portfolio.orders.values() if o.tag == "trend-add"]
    assert 1 <= len(adds) <= 2


class BuyAndHold(ManagedStrategy):
    """Enters once and never exits by itself: only the shared risk rules act."""

    name = "hold"

    def wants_entry(self, bar):  # type: ignore[no-untyped-def]
        return not self.ctx.open_orders() and not self.ctx.position_qty and bar.ts > T0 + 5 * H

    def enter(self, bar):  # type: ignore[no-untyped-def]
        return (SubmitOrder(Side.BUY, OrderType.MARKET, D("50")),)


def test_black_swan_halves_the_position():
    closes = [100.0] * 30 + [99.0, 95.0, 90.0, 86.0, 84.0, 84.0]  # -16 % within 24 h
    res = run_backtest(market(closes), BuyAndHold(emergency_move=0.5, emergency_atr=100))
    halves = [
        o for o in res.engine.portfolio.orders.values() if o.tag == "black swan: halve exposure"
    ]
    assert len(halves) == 1 and halves[0].status is OrderStatus.FILLED
    before = sum(
        (f.fill.quantity for f in res.engine.portfolio.fills if f.fill.side is Side.BUY), D(0)
    )
    assert abs(halves[0].quantity - before / 2) <= D("0.001")


def test_mean_reversion_buys_below_the_band_and_targets_the_middle():
    x = np.arange(120)
    closes = list(100 + 0.4 * np.sin(x * 1.3))
    closes += [97.0, 96.5, 97.5, 99.0, 100.2, 100.1]
    res = run_backtest(market(closes), MeanReversion(rsi_max=50))
    entries = [o for o in res.engine.portfolio.orders.values() if o.tag == "mr-entry"]
    assert entries and entries[0].status is OrderStatus.FILLED
    assert res.engine.portfolio.position.is_flat  # the take-profit or the exit ran


def test_switcher_stays_flat_in_a_downtrend_and_in_an_emergency():
    down = market(100 * 0.995 ** np.arange(300))
    res = run_backtest(down, RegimeSwitcher())
    assert not any(
        o.side is Side.BUY and o.status is OrderStatus.FILLED
        for o in res.engine.portfolio.orders.values()
    )


def test_grid_never_places_a_buy_beyond_its_cap():
    from solbot.data.synthetic import synthetic_market
    from solbot.runtime.backtest import BacktestConfig, build_engine
    from solbot.strategies.grid import RangeGrid

    bars, _ = synthetic_market(bars=4000, seed=31)
    engine, _venue = build_engine(RangeGrid(), BacktestConfig(), bars.symbol)
    engine.start(history=bars)
    pf = engine.portfolio
    checked = worst = 0.0
    seen: set[str] = set()
    for bar in bars.bars():
        engine.on_bar(bar)
        equity = pf.equity(pf.instrument.price(bar.close))
        resting = sum(
            (o.leaves_qty * (o.price or 0) for o in pf.open_orders() if o.side is Side.BUY), D(0)
        )
        ratio = float((pf.position.qty * pf.position.avg_price + resting) / equity)
        worst = max(worst, ratio)
        new = [o for o in pf.open_orders() if o.side is Side.BUY and o.order_id not in seen]
        if new:  # the bar that placed them: the cap must hold against this bar's equity
            assert ratio <= 0.35 + 1e-9
            checked += 1
        seen.update(o.order_id for o in pf.open_orders())
    grid_fills = [r for r in pf.fills if r.fill.side is Side.SELL]
    assert checked > 10 and grid_fills, "the grid should have traded"
    assert worst <= 0.36  # equity moves after placement can lift the ratio a little


def test_grid_stop_cancels_resting_buys_even_when_nothing_was_bought():
    from solbot.strategies.grid import RangeGrid

    x = np.arange(200)
    closes = list(100 + 0.6 * np.sin(x * 1.3))  # a range: the grid starts
    closes += [103.0, 106.0, 109.0, 112.0]  # breakout upwards before any level below fills
    res = run_backtest(market(closes, wick=0.001), RangeGrid())
    pf = res.engine.portfolio
    assert any(o.tag.startswith("grid-buy") for o in pf.orders.values())
    assert not pf.open_orders()


def test_switcher_shorts_a_downtrend_only_on_a_shortable_market():
    from dataclasses import replace

    from solbot.domain.instruments import sol_usdt
    from solbot.runtime.backtest import BacktestConfig

    closes = np.concatenate(
        [100 + 0.3 * np.sin(np.arange(80) * 1.3), 100 * 0.994 ** np.arange(1, 200)]
    )
    spot = run_backtest(market(closes), RegimeSwitcher())
    assert not any(
        o.side is Side.SELL and o.tag.startswith("trend-short")
        for o in spot.engine.portfolio.orders.values()
    )
    config = BacktestConfig(instrument=replace(sol_usdt(), shortable=True))
    res = run_backtest(market(closes), RegimeSwitcher(), config)
    shorts = [
        o
        for o in res.engine.portfolio.orders.values()
        if o.tag == "trend-short-entry" and o.status is OrderStatus.FILLED
    ]
    assert shorts
    assert min(r.position_qty for r in res.engine.portfolio.fills) < 0
    assert res.metrics.total_return > 0  # a steady fall is what a short is for
    assert res.engine.portfolio.ledger.snapshot() == res.venue.books.snapshot()


def _ladder_sells(offer_patience: int) -> list[tuple[str, D | None]]:
    from solbot.strategies.ladder import Ladder

    # a dip fills the bid, then the market sags below the offer and stays there
    closes = [100.0, 98.0] + [97.0] * 8 + [97.5] * 3
    res = run_backtest(
        market(closes, wick=0.0),
        Ladder(offset=0.004, target=0.02, patience=2, offer_patience=offer_patience),
    )
    orders = res.engine.portfolio.orders.values()
    return [(o.status.value, o.price) for o in orders if o.side is Side.SELL]


def test_ladder_offer_waits_for_its_price_unless_offer_patience_requotes_it() -> None:
    waiting = _ladder_sells(0)
    assert len(waiting) == 1 and waiting[0][0] == "accepted"  # one offer, still resting
    requoted = _ladder_sells(4)
    assert requoted[0][0] == "cancelled" and requoted[0][1] == waiting[0][1] == D("101.60")
    assert requoted[-1] == ("filled", D("97.39"))  # just above the market, target given up
    assert all(r == ("cancelled", D("97.39")) for r in requoted[1:-1])


def test_dust_worth_less_than_the_minimum_notional_is_no_position_and_blocks_no_entry():
    from tests.conftest import bar, make_engine

    strat = TrendFollow()
    engine, _ = make_engine(strat, base="1")
    engine.on_bar(bar(0, 20, 20.1, 19.9, 20))
    engine.portfolio.position.qty = D("0.01")  # left after an exit: 0.2 USDT, above the lot
    assert strat.held() == 0 and strat.exit_all("x") == ()
    engine.portfolio.position.qty = D("1")  # 20 USDT: a position
    assert strat.held() == D("1")


def test_mean_reversion_with_entry_bps_bids_under_the_close_and_withdraws_an_unfilled_bid():
    x = np.arange(120)
    closes = list(100 + 0.4 * np.sin(x * 1.3))
    closes += [97.0, 96.5, 97.5, 99.0, 100.2, 100.1]
    res = run_backtest(market(closes), MeanReversion(rsi_max=50, entry_bps=30))
    bars = market(closes)
    entries = [o for o in res.engine.portfolio.orders.values() if o.tag == "mr-entry"]
    assert entries and all(o.type is OrderType.LIMIT for o in entries)
    for o in entries:  # 30 bps under the close of the bar it was sent on, rounded down
        i = int(np.searchsorted(bars.ts, o.created_ts))
        assert o.price == D(str(bars.close[i])) * (1 - D("0.003")) // D("0.01") * D("0.01")
    assert any(o.status is OrderStatus.FILLED for o in entries)
    for o in entries:  # a bid rests one bar at most: filled, or withdrawn at the next bar
        assert o.status in (OrderStatus.FILLED, OrderStatus.CANCELLED), o.status
    assert res.engine.portfolio.position.is_flat
    far = run_backtest(market(closes), MeanReversion(rsi_max=50, entry_bps=150))
    bids = [o for o in far.engine.portfolio.orders.values() if o.tag == "mr-entry"]
    # 1.5 % under: never reached here; each bid withdrawn at the next bar (a new one may follow)
    assert bids and all(o.status is OrderStatus.CANCELLED for o in bids)
    sent = sorted(int(np.searchsorted(bars.ts, o.created_ts)) for o in bids)
    assert all(b - a >= 2 for a, b in itertools.pairwise(sent))  # cancel bar between
    assert not far.engine.portfolio.open_orders()
