"""The time-series momentum rules on hand-built markets, through the real engine.

Each market is a path of daily closes walked hour by hour (24 bars a day, geometric steps),
so the daily series the strategy reads are known exactly: its closes, its lookbacks and the
standard deviation of its log returns are computed here by hand and the orders checked
against them.
"""

from __future__ import annotations

import itertools
import math
import statistics
from decimal import Decimal as D

from solbot.data.bars import BarArrays
from solbot.domain.orders import Order, OrderStatus
from solbot.domain.values import OrderType, Side
from solbot.runtime.backtest import BacktestResult, run_backtest
from solbot.strategies.tsmom import DAY_MS, TimeSeriesMomentum
from tests.unit.strategies.test_strategies import T0, market

H = 3_600_000
assert T0 % DAY_MS == 0  # a UTC midnight


def daily_path(start: float, returns: list[float]) -> list[float]:
    closes = [start]
    for r in returns:
        closes.append(closes[-1] * (1 + r))
    return closes


def walk(daily_closes: list[float], wick: float = 0.001) -> BarArrays:
    """24 hourly bars per day from each daily close to the next (the first day flat)."""
    hourly = [daily_closes[0]] * 24
    for a, b in itertools.pairwise(daily_closes):
        step = (b / a) ** (1 / 24)
        hourly += [a * step**k for k in range(1, 25)]
    return market(hourly, wick)


def orders(res: BacktestResult, tag: str | None = None) -> list[Order]:
    out = sorted(res.engine.portfolio.orders.values(), key=lambda o: (o.created_ts, o.order_id))
    return [o for o in out if tag is None or o.tag == tag]


def daily_vol(closes: list[float], n: int) -> float:
    logs = [math.log(b / a) for a, b in itertools.pairwise(closes[-n - 1 :])]
    return statistics.stdev(logs)


CALM_UP = [0.03, -0.01] * 60  # +1 % a day on average, 2 % daily volatility


def test_warm_up_covers_the_longest_daily_lookback():
    assert TimeSeriesMomentum().warmup_bars(H) == (60 + 2) * 24
    assert TimeSeriesMomentum(slow_days=100, vol_days=120).warmup_bars(4 * H) == 122 * 6


def test_no_trade_before_the_daily_series_are_warm():
    closes = daily_path(100, CALM_UP[:55])  # fewer days than slow_days (60)
    res = run_backtest(walk(closes), TimeSeriesMomentum())
    assert orders(res) == []


def test_entries_are_brackets_at_the_first_bar_of_a_day_stopped_by_daily_volatility():
    closes = daily_path(100, CALM_UP[:80])
    bars = walk(closes)
    res = run_backtest(bars, TimeSeriesMomentum())
    entries = orders(res, "tsmom-entry")
    assert entries, "a rising market with both lookbacks up must be bought"
    ts = bars.ts.tolist()
    days = [o.created_ts // DAY_MS for o in entries]
    assert len(set(days)) == len(days), "at most one decision a UTC day"
    assert all(o.created_ts % DAY_MS == 0 for o in entries), "decided on the day's first bar"
    inst = res.engine.portfolio.instrument
    for e in entries:
        day = (e.created_ts - T0) // DAY_MS  # the last closed day is day - 1
        known = closes[:day]
        sigma = daily_vol(known, 30)
        close = float(bars.close[ts.index(e.created_ts)])
        legs = [o for o in orders(res) if o.oco_group == f"oco-{e.order_id}"]
        stop = next(o for o in legs if o.type.is_stop)
        tp = next(o for o in legs if o.type is OrderType.LIMIT)
        assert stop.trigger_price is not None and tp.price is not None
        want_stop = inst.price_down(close * (1 - 3.0 * sigma))
        assert abs(stop.trigger_price - want_stop) <= inst.tick_size, (stop, want_stop)
        assert float(tp.price) >= close * (1 + 10 * 3.0 * sigma) * 0.999
        # at most 1 % of the equity lost at the stop (the risk layer's hard limit)
        equity = res.equity[ts.index(e.created_ts)]
        assert e.quantity is not None
        loss = float(e.quantity) * (close - float(stop.trigger_price))
        assert loss <= 0.01 * equity * 1.001, (loss, equity)


def test_never_more_tranches_than_allowed_resting_at_once():
    closes = daily_path(100, CALM_UP[:100])
    for cap in (2, 4):
        res = run_backtest(walk(closes), TimeSeriesMomentum(max_tranches=cap))
        stops = [o for o in orders(res) if o.type.is_stop and o.oco_group]
        # a calm rise asks for more than the risk per tranche allows, and no stop is hit
        assert len(stops) == cap and all(o.status.is_open for o in stops)


def test_goes_flat_when_both_lookbacks_turn_down():
    fall = [-0.03, 0.01] * 40
    closes = daily_path(100, CALM_UP[:80] + fall)
    bars = walk(closes)
    # a wide stop: the exit must come from the signal, not from the exchange-side stop
    res = run_backtest(bars, TimeSeriesMomentum(stop_vol=20.0))
    exits = orders(res, "tsmom-exit")
    assert len(exits) == 1 and exits[0].side is Side.SELL
    day = (exits[0].created_ts - T0) // DAY_MS
    known = closes[:day]
    assert known[-1] < known[-1 - 20] and known[-1] < known[-1 - 60]
    before = closes[: day - 1]  # the day before, one sign at least was still up
    assert before[-1] > before[-1 - 20] or before[-1] > before[-1 - 60]
    assert float(res.engine.portfolio.position.qty) < 1e-6
    assert not [o for o in res.engine.portfolio.open_orders()]


def test_half_signal_when_the_lookbacks_disagree():
    s = TimeSeriesMomentum()

    class V:
        def __init__(self, value: float) -> None:
            self.value = value

    s.d_close, s.d_fast, s.d_slow, s.d_vol = V(100), V(110), V(90), V(0.05)  # type: ignore[assignment]
    half = s.target_weight()
    assert half is not None
    assert math.isclose(half, 0.5 * 0.5 / (0.05 * math.sqrt(365)))
    s.d_fast = V(95)  # type: ignore[assignment]
    assert s.target_weight() == 2 * half
    s.d_vol = V(0.001)  # type: ignore[assignment]
    assert s.target_weight() == 1.0, "capped"
    s.d_close = V(80)  # type: ignore[assignment]
    assert s.target_weight() == 0.0


def test_a_black_swan_sends_the_position_flat_before_the_day_is_over():
    closes = daily_path(100, CALM_UP[:80])
    bars = walk(closes)
    n = len(bars)
    crash_at = n - 12  # mid-day: hour 12
    c = bars.close.copy()
    c[crash_at:] *= 0.8  # 20 % down in one hour
    crashed = market(c, 0.001)
    res = run_backtest(crashed, TimeSeriesMomentum(stop_vol=20.0))
    out = orders(res, "tsmom-crash")
    assert len(out) == 1 and out[0].created_ts == int(bars.ts[crash_at])
    assert float(res.engine.portfolio.position.qty) < 1e-6


def test_higher_volatility_holds_a_smaller_weight():
    def held_weight(returns: list[float]) -> float:
        strategy = TimeSeriesMomentum(stop_vol=1.0, tp_r=100.0)  # no take-profit reached
        res = run_backtest(walk(daily_path(100, returns)), strategy)
        last = float(res.bars.close[-1])
        return float(res.engine.portfolio.position.qty) * last / float(res.equity[-1])

    calm = held_weight([0.012, 0.008] * 50)  # 0.3 % daily vol: the cap (1.0) binds
    wild = held_weight([0.09, -0.07] * 50)  # 8 % daily vol: 0.5 / (0.08 √365) ≈ 0.33
    target = 0.5 / (daily_vol(daily_path(100, [0.09, -0.07] * 50), 30) * math.sqrt(365))
    assert wild <= target + 1e-9, (wild, target)
    assert wild >= target - 0.1 - 0.05, "within the band of the target (and a tranche's rounding)"
    assert calm > 0.8 and calm > 2 * wild


def test_down_sizing_sells_the_newest_tranche_and_keeps_the_oldest_stop():
    calm = [0.03, -0.01] * 40
    wild = [0.10, -0.04] * 25  # still rising, volatility three times as high
    closes = daily_path(100, calm + wild)
    res = run_backtest(walk(closes), TimeSeriesMomentum(target_vol=0.1, band=0.05))
    entries = orders(res, "tsmom-entry")
    reduce = orders(res, "tsmom-reduce")
    assert len(entries) >= 2 and reduce, (len(entries), len(reduce))
    first_reduce = reduce[0]
    before = [e for e in entries if e.created_ts < first_reduce.created_ts]
    newest, oldest = before[-1], before[0]

    def legs(entry: Order) -> list[Order]:
        return [o for o in orders(res) if o.oco_group == f"oco-{entry.order_id}"]

    # the newest tranche's exits were cancelled when it was sold; its quantity was sold
    assert all(
        o.status is OrderStatus.CANCELLED and o.events[-1].ts == first_reduce.created_ts
        for o in legs(newest)
    )
    assert first_reduce.quantity == newest.filled_qty
    # the oldest keeps its stop at the exchange past the sale (its take-profit fills later)
    old_stop = next(o for o in legs(oldest) if o.type.is_stop)
    assert old_stop.status.is_open or old_stop.events[-1].ts > first_reduce.created_ts
    assert first_reduce.reduce_only and first_reduce.side is Side.SELL
    assert D(0) < res.engine.portfolio.position.qty


def _with_hours(bars: BarArrays, moves: dict[int, float]) -> BarArrays:
    """``bars`` with the closes from bar i on multiplied by ``moves[i]`` (cumulatively)."""
    c = bars.close.copy()
    for i, f in sorted(moves.items()):
        c[i:] *= f
    return market(c, 0.001)


def test_an_hourly_spike_inside_a_calm_4h_bar_is_no_crash() -> None:
    bars = walk(daily_path(100, CALM_UP[:80]))
    n = len(bars)
    k = n - 24 + 8 + 1  # 09:00 of the last day, inside its 08:00-12:00 bucket
    spiked = _with_hours(bars, {k: 0.99, k + 1: 1 / 0.99})  # -1 % for an hour: 6 hourly ATRs
    res = run_backtest(spiked, TimeSeriesMomentum(stop_vol=20.0))
    assert res.engine.portfolio.position.qty > 0
    assert orders(res, "tsmom-crash") == [], "an hourly EMERGENCY is not a crash on 4h bars"


def test_a_falling_4h_emergency_sends_the_position_flat_when_that_bar_closes() -> None:
    bars = walk(daily_path(100, CALM_UP[:80]))
    n = len(bars)
    k = n - 24 + 8  # 08:00 of the last day: the 08:00-12:00 bucket falls 4 % in its first hour
    res = run_backtest(_with_hours(bars, {k: 0.96}), TimeSeriesMomentum(stop_vol=20.0))
    out = orders(res, "tsmom-crash")
    assert len(out) == 1
    assert out[0].created_ts == int(bars.ts[k + 3])  # the bucket's last hour closes it
    assert float(res.engine.portfolio.position.qty) < 1e-6
