"""Market regime per bar: UPTREND, DOWNTREND, RANGE, MIXED and EMERGENCY.

Inputs per bar: EMA(fast) and its slope over ``slope_bars`` bars, EMA(fast) against
EMA(slow), ADX, and ATR/close; a bar whose move is violent against the previous ATR (or
against a fixed percentage) is an EMERGENCY. ``classify`` works on one bar (the live path);
``classify_arrays`` computes the same rules for a whole series (research); a test checks
they agree. Thresholds are parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from solbot.data.bars import BarArrays
from solbot.indicators import vectorised as vec


class Regime(IntEnum):
    MIXED = 0
    UPTREND = 1
    DOWNTREND = 2
    RANGE = 3
    EMERGENCY = 4


@dataclass(frozen=True, slots=True)
class RegimeParams:
    ema_fast: int = 10
    ema_slow: int = 55
    slope_bars: int = 5
    adx_period: int = 14
    atr_period: int = 14
    adx_trend: float = 25.0
    adx_range: float = 20.0
    slope_min: float = 0.004  # EMA(fast) change over slope_bars, as a fraction
    range_atr_max: float = 0.03  # ATR/close above this is too wild to call a range
    emergency_atr: float = 4.0  # bar true range >= this many previous ATRs
    emergency_move: float = 0.10  # or |close/prev_close - 1| >= this


def classify(
    p: RegimeParams,
    close: float,
    prev_close: float,
    true_range: float,
    ema_fast: float,
    ema_fast_ago: float,
    ema_slow: float,
    adx: float,
    atr_prev: float,
) -> Regime:
    if math.isnan(atr_prev) or math.isnan(adx) or math.isnan(ema_slow) or math.isnan(ema_fast_ago):
        return Regime.MIXED  # warm-up
    if (
        abs(close / prev_close - 1.0) >= p.emergency_move
        or true_range >= p.emergency_atr * atr_prev
    ):
        return Regime.EMERGENCY
    slope = ema_fast / ema_fast_ago - 1.0
    if adx >= p.adx_trend:
        if ema_fast > ema_slow and slope > p.slope_min:
            return Regime.UPTREND
        if ema_fast < ema_slow and slope < -p.slope_min:
            return Regime.DOWNTREND
    if adx < p.adx_range and abs(slope) < p.slope_min and atr_prev / close < p.range_atr_max:
        return Regime.RANGE
    return Regime.MIXED


def classify_arrays(a: BarArrays, p: RegimeParams | None = None) -> npt.NDArray[np.int8]:
    p = p or RegimeParams()
    c = a.close
    prev_c = vec.shift(c, 1)
    tr = np.maximum(a.high - a.low, np.maximum(np.abs(a.high - prev_c), np.abs(a.low - prev_c)))
    ef = vec.ema(c, p.ema_fast)
    ef_ago = vec.shift(ef, p.slope_bars)
    es = vec.ema(c, p.ema_slow)
    adx = vec.adx(a.high, a.low, c, p.adx_period)
    atr_prev = vec.shift(vec.atr(a.high, a.low, c, p.atr_period), 1)
    out = np.full(len(c), Regime.MIXED, dtype=np.int8)
    ready = ~(np.isnan(atr_prev) | np.isnan(adx) | np.isnan(es) | np.isnan(ef_ago))
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = ef / ef_ago - 1.0
        emergency = (np.abs(c / prev_c - 1.0) >= p.emergency_move) | (
            tr >= p.emergency_atr * atr_prev
        )
        trend = adx >= p.adx_trend
        up = trend & (ef > es) & (slope > p.slope_min)
        down = trend & (ef < es) & (slope < -p.slope_min)
        rng = (adx < p.adx_range) & (np.abs(slope) < p.slope_min) & (atr_prev / c < p.range_atr_max)
    out[ready & rng] = Regime.RANGE
    out[ready & down] = Regime.DOWNTREND
    out[ready & up] = Regime.UPTREND
    out[ready & emergency] = Regime.EMERGENCY
    return out
