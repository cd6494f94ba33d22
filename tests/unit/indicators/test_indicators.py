"""Incremental indicators agree with TA-Lib to 1e-9 after warm-up."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from solbot.data.bars import BarArrays
from solbot.data.importers import read_freqtrade_json
from solbot.data.synthetic import synthetic_market
from solbot.indicators import incremental as inc
from solbot.indicators import vectorised as vec
from solbot.indicators.feed import IndicatorSpec
from tests.conftest import SHARED_DATA


def markets() -> list[tuple[str, BarArrays]]:
    out = [("synthetic", synthetic_market(bars=3000, seed=3)[0])]
    real = SHARED_DATA / "SOL_USDT-1h.json"
    if real.exists():
        out.append(("SOL 1h", read_freqtrade_json(real).slice(0, 6000)))
    return out


MARKETS = markets()


def agree(live: list[float], ref: np.ndarray) -> None:
    ref_l = ref.tolist()
    assert len(live) == len(ref_l)
    first = next(i for i, v in enumerate(ref_l) if not math.isnan(v))
    for i in range(len(ref_l)):
        if i < first:
            assert math.isnan(live[i]), f"value during warm-up at {i}"
            continue
        assert live[i] == pytest.approx(ref_l[i], rel=1e-9, abs=1e-9), f"bar {i}"


@pytest.mark.parametrize(("name", "m"), MARKETS, ids=[n for n, _ in MARKETS])
@pytest.mark.parametrize("period", [2, 10, 14, 55])
def test_ema_rsi_atr_adx_agree_with_talib(name, m, period):
    e, r, a, d = inc.EMA(period), inc.RSI(period), inc.ATR(period), inc.ADX(period)
    ev, rv, av, dv = [], [], [], []
    for h, lo, c in zip(m.high.tolist(), m.low.tolist(), m.close.tolist(), strict=True):
        ev.append(e.update(c))
        rv.append(r.update(c))
        av.append(a.update(h, lo, c))
        dv.append(d.update(h, lo, c))
    agree(ev, vec.ema(m.close, period))
    agree(rv, vec.rsi(m.close, period))
    agree(av, vec.atr(m.high, m.low, m.close, period))
    agree(dv, vec.adx(m.high, m.low, m.close, period))


@pytest.mark.parametrize(("name", "m"), MARKETS, ids=[n for n, _ in MARKETS])
@pytest.mark.parametrize(("acc", "mx"), [(0.02, 0.2), (0.01, 0.1), (0.05, 0.5)])
def test_parabolic_sar_agrees_with_talib(name, m, acc, mx):
    s = inc.ParabolicSAR(acc, mx)
    live = [s.update(h, lo) for h, lo in zip(m.high.tolist(), m.low.tolist(), strict=True)]
    agree(live, vec.sar(m.high, m.low, acc, mx))


@pytest.mark.parametrize(("name", "m"), MARKETS, ids=[n for n, _ in MARKETS])
@pytest.mark.parametrize("period", [5, 20])
def test_donchian_and_bollinger_agree_with_talib(name, m, period):
    dc, bb = inc.Donchian(period), inc.Bollinger(period, 2.0)
    ups, los, bu, bm, bl = [], [], [], [], []
    for h, lo, c in zip(m.high.tolist(), m.low.tolist(), m.close.tolist(), strict=True):
        u, _, low = dc.update(h, lo)
        ups.append(u)
        los.append(low)
        x, y, z = bb.update(c)
        bu.append(x)
        bm.append(y)
        bl.append(z)
    up, _, lo_ref = vec.donchian(m.high, m.low, period)
    agree(ups, up)
    agree(los, lo_ref)
    ref = vec.bollinger(m.close, period, 2.0)
    agree(bu, ref[0])
    agree(bm, ref[1])
    agree(bl, ref[2])


@pytest.mark.parametrize(
    "spec",
    [
        IndicatorSpec("highest", 20, source="high", shift=1),
        IndicatorSpec("lowest", 10, source="low", shift=1),
        IndicatorSpec("ema", 10),
        IndicatorSpec("adx", 14),
        IndicatorSpec("sar"),
        IndicatorSpec("bollinger", 20, output="lower"),
        IndicatorSpec("rsi", 14, shift=2),
        IndicatorSpec("volatility", 30),
        IndicatorSpec("volatility", 30, timeframe="1d"),
    ],
)
def test_feed_spec_incremental_twin_matches_vectorised(spec):
    m = MARKETS[0][1].slice(0, 800)
    twin = spec.incremental(3_600_000)
    agree([twin.update(b) for b in m.bars()], spec.vectorised(m))


def test_volatility_on_hand_values():
    """The standard deviation (ddof 1) of the last n log returns, by hand."""
    closes = [100.0, 110.0, 99.0, 99.0, 108.9]
    r = [math.log(110 / 100), math.log(99 / 110), 0.0, math.log(108.9 / 99)]
    want = [statistics.stdev(r[0:3]), statistics.stdev(r[1:4])]
    twin = inc.Volatility(3)
    live = [twin.update(x) for x in closes]
    assert all(math.isnan(x) for x in live[:3]) and live[3:] == pytest.approx(want)
    assert vec.volatility(np.array(closes), 3)[3:].tolist() == pytest.approx(want)


def test_rolling_extreme_on_hand_values():
    mx = inc.RollingExtreme(3, is_max=True)
    assert [mx.update(x) for x in [1, 3, 2, 1, 0, 5]][2:] == [3, 3, 2, 5]
