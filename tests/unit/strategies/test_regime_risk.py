"""Regime classifier and risk layer on hand-built bars."""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np
import pytest

from solbot.data.bars import BarArrays
from solbot.domain.instruments import sol_usdt
from solbot.indicators import vectorised as vec
from solbot.indicators.regime import Regime, RegimeParams, classify, classify_arrays
from solbot.strategies.risk import HOUR_MS, RiskManager, RiskParams
from tests.conftest import SHARED_DATA

T0 = 1_700_006_400_000


def series(closes: np.ndarray, wick: float = 0.002) -> BarArrays:
    opens = np.concatenate([[closes[0]], closes[:-1]])
    high = np.maximum(opens, closes) * (1 + wick)
    low = np.minimum(opens, closes) * (1 - wick)
    ts = T0 + HOUR_MS * np.arange(len(closes), dtype=np.int64)
    return BarArrays(ts, opens, high, low, closes, np.ones(len(closes)), "SOL/USDT", "1h")


def test_steady_rise_is_uptrend_and_fall_is_downtrend():
    up = classify_arrays(series(100 * 1.004 ** np.arange(200)))
    down = classify_arrays(series(100 * 0.996 ** np.arange(200)))
    assert np.all(up[120:] == Regime.UPTREND)
    assert np.all(down[120:] == Regime.DOWNTREND)


def test_tight_oscillation_is_range():
    x = np.arange(300)
    closes = 100 + 0.6 * np.sin(x * 1.3)  # choppy: up and down every few bars
    r = classify_arrays(series(closes, wick=0.001))
    assert np.all(r[150:] == Regime.RANGE)
    noise = 100 + np.random.default_rng(1).normal(0, 0.3, 300)
    rn = classify_arrays(series(noise, wick=0.001))
    assert np.mean(rn[150:] == Regime.RANGE) > 0.8
    assert not np.any(np.isin(rn[150:], [Regime.UPTREND, Regime.DOWNTREND]))


def test_slow_swings_are_not_called_a_range():
    x = np.arange(300)
    r = classify_arrays(series(100 + 0.8 * np.sin(x / 3.0), wick=0.001))
    assert not np.any(r[150:] == Regime.RANGE)  # EMA slope too steep for a range


def test_violent_bar_is_emergency():
    closes = np.concatenate([100 + 0.5 * np.sin(np.arange(150) / 3.0), [85.0, 86.0]])
    r = classify_arrays(series(closes))
    assert r[150] == Regime.EMERGENCY and r[149] != Regime.EMERGENCY


def test_warm_up_is_mixed():
    assert np.all(classify_arrays(series(100 * 1.004 ** np.arange(60)))[:54] == Regime.MIXED)


def test_scalar_and_vectorised_classifiers_agree_on_real_data():
    from solbot.data.importers import load_bars

    path = SHARED_DATA / "SOL_USDT-1h.json"
    if not path.exists():
        pytest.skip(f"real market data {path} is absent")
    a = load_bars(path)
    p = RegimeParams()
    want = classify_arrays(a, p)
    ef, es = vec.ema(a.close, p.ema_fast), vec.ema(a.close, p.ema_slow)
    ef_ago = vec.shift(ef, p.slope_bars)
    adx = vec.adx(a.high, a.low, a.close, p.adx_period)
    atr_prev = vec.shift(vec.atr(a.high, a.low, a.close, p.atr_period), 1)
    got = []
    for i in range(len(a)):
        prev = a.close[i - 1] if i else a.open[0]
        tr = max(a.high[i] - a.low[i], abs(a.high[i] - prev), abs(a.low[i] - prev))
        got.append(classify(p, a.close[i], prev, tr, ef[i], ef_ago[i], es[i], adx[i], atr_prev[i]))
    assert np.array_equal(np.array(got, dtype=np.int8)[1:], want[1:])


def test_position_size_risks_one_percent_of_equity():
    rm = RiskManager()
    inst = sol_usdt()
    qty = rm.size(inst, equity=D("10000"), free_quote=D("10000"), entry=D("100"), stop=D("95"))
    assert qty == D("20.000")  # 20 × (100 − 95) = 100 = 1 % of 10,000
    assert (D("100") - D("95")) * qty == D("100")


def test_position_size_is_capped_by_equity_and_free_balance_and_minimums():
    rm = RiskManager()
    inst = sol_usdt()
    tight = rm.size(inst, D("10000"), D("10000"), D("100"), D("99.9"))  # 1,000 SOL wanted
    assert tight * D("100") * (1 + inst.taker_fee) <= D("10000")
    poor = rm.size(inst, D("10000"), D("300"), D("100"), D("95"))
    assert poor * D("100") <= D("300")
    assert rm.size(inst, D("300"), D("300"), D("100"), D("10")) == 0  # below min notional
    assert rm.size(inst, D("10000"), D("10000"), D("100"), D("101")) == 0  # stop above entry


def test_daily_drawdown_halts_entries_for_24_hours():
    rm = RiskManager(RiskParams(daily_drawdown=0.05, halt_hours=24))
    assert not rm.on_bar(T0, 100, 10_000) and rm.can_enter(T0)
    rm.on_bar(T0 + HOUR_MS, 100, 9_600)
    assert rm.can_enter(T0 + HOUR_MS)
    rm.on_bar(T0 + 2 * HOUR_MS, 100, 9_490)  # −5.1 % on the day
    assert not rm.can_enter(T0 + 2 * HOUR_MS)
    assert not rm.can_enter(T0 + 25 * HOUR_MS)
    assert rm.can_enter(T0 + 26 * HOUR_MS)


def test_black_swan_fires_once_on_a_15_percent_drop_within_the_window():
    rm = RiskManager(RiskParams(black_swan_drop=0.15, black_swan_hours=24))
    closes = [100, 104, 101, 95, 90, 88.3, 87, 86, 90]
    fired = [rm.on_bar(T0 + i * HOUR_MS, c, 10_000) for i, c in enumerate(closes)]
    assert fired == [False, False, False, False, False, True, False, False, False]
    assert rm.black_swan is False and rm.stop_multiplier() == 1.0
    slow = RiskManager(RiskParams(black_swan_drop=0.15, black_swan_hours=24))
    fired = [slow.on_bar(T0 + i * 10 * HOUR_MS, c, 10_000) for i, c in enumerate(closes)]
    assert not any(fired)  # the same fall spread over days is no black swan


def test_max_entries_per_day():
    rm = RiskManager(RiskParams(max_entries_per_day=2))
    rm.on_bar(T0, 100, 10_000)
    rm.entered()
    rm.entered()
    assert not rm.can_enter(T0)
    rm.on_bar(T0 + 24 * HOUR_MS, 100, 10_000)
    assert rm.can_enter(T0 + 24 * HOUR_MS)
