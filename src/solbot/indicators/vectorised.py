"""Vectorised indicators through TA-Lib. Inputs are float64 numpy arrays."""

from __future__ import annotations

import numpy as np
import talib

from solbot.data.bars import FloatArray


def ema(close: FloatArray, period: int) -> FloatArray:
    return np.asarray(talib.EMA(close, timeperiod=period), dtype=np.float64)


def sma(close: FloatArray, period: int) -> FloatArray:
    return np.asarray(talib.SMA(close, timeperiod=period), dtype=np.float64)


def atr(high: FloatArray, low: FloatArray, close: FloatArray, period: int = 14) -> FloatArray:
    return np.asarray(talib.ATR(high, low, close, timeperiod=period), dtype=np.float64)


def adx(high: FloatArray, low: FloatArray, close: FloatArray, period: int = 14) -> FloatArray:
    return np.asarray(talib.ADX(high, low, close, timeperiod=period), dtype=np.float64)


def rsi(close: FloatArray, period: int = 14) -> FloatArray:
    return np.asarray(talib.RSI(close, timeperiod=period), dtype=np.float64)


def sar(
    high: FloatArray, low: FloatArray, acceleration: float = 0.02, maximum: float = 0.2
) -> FloatArray:
    return np.asarray(
        talib.SAR(high, low, acceleration=acceleration, maximum=maximum), dtype=np.float64
    )


def highest(values: FloatArray, period: int) -> FloatArray:
    return np.asarray(talib.MAX(values, timeperiod=period), dtype=np.float64)


def lowest(values: FloatArray, period: int) -> FloatArray:
    return np.asarray(talib.MIN(values, timeperiod=period), dtype=np.float64)


def donchian(
    high: FloatArray, low: FloatArray, period: int = 20
) -> tuple[FloatArray, FloatArray, FloatArray]:
    upper, lower = highest(high, period), lowest(low, period)
    return upper, (upper + lower) / 2.0, lower


def bollinger(
    close: FloatArray, period: int = 20, k: float = 2.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    up, mid, lo = talib.BBANDS(
        close,
        timeperiod=period,
        nbdevup=k,
        nbdevdn=k,
        matype=talib.MA_Type.SMA,  # type: ignore[attr-defined]
    )
    return (
        np.asarray(up, dtype=np.float64),
        np.asarray(mid, dtype=np.float64),
        np.asarray(lo, dtype=np.float64),
    )


def volatility(close: FloatArray, period: int) -> FloatArray:
    """The sample standard deviation (ddof 1) of the last ``period`` log returns close to
    close, per bar (not annualised); NaN until ``period`` returns exist."""
    out = np.full(len(close), np.nan)
    if period < 2 or len(close) <= period:
        return out
    r = np.diff(np.log(close))
    windows = np.lib.stride_tricks.sliding_window_view(r, period)
    out[period:] = np.std(windows, axis=1, ddof=1)
    return out


def shift(values: FloatArray, n: int) -> FloatArray:
    """Values delayed by ``n`` bars (NaN-padded): the value known ``n`` bars ago. A negative
    ``n`` looks into the future — only for research labels; the look-ahead check catches it."""
    if n == 0:
        return values
    out = np.full_like(values, np.nan)
    if n > 0:
        out[n:] = values[:-n]
    else:
        out[:n] = values[-n:]
    return out
