"""Indicators and the market regime on the running bot's recent bars (TA-Lib), for
``GET /api/analysis/{symbol}``."""

from __future__ import annotations

from collections.abc import Iterable

from solbot.domain.messages import Bar, ms_to_datetime


def analysis(recent: Iterable[Bar], symbol: str, timeframe: str) -> dict[str, object]:
    """Indicators, the regime and the last 50 regimes on one symbol's recent bars."""
    from solbot.data.bars import BarArrays
    from solbot.indicators import vectorised as vec
    from solbot.indicators.regime import Regime, classify_arrays

    bars = list(recent)
    if len(bars) < 60:
        return {"bars": len(bars), "ready": False, "indicators": {}}
    a = BarArrays.from_rows(bars, symbol, timeframe)
    up, _mid, lo = vec.donchian(a.high, a.low, 20)
    bb_up, _bb_mid, bb_lo = vec.bollinger(a.close, 20, 2.0)
    last = {
        "ema10": vec.ema(a.close, 10),
        "ema55": vec.ema(a.close, 55),
        "atr14": vec.atr(a.high, a.low, a.close, 14),
        "adx14": vec.adx(a.high, a.low, a.close),
        "rsi14": vec.rsi(a.close),
        "sar": vec.sar(a.high, a.low),
        "donchian_upper20": up,
        "donchian_lower20": lo,
        "bollinger_upper": bb_up,
        "bollinger_lower": bb_lo,
    }
    values = {k: round(float(v[-1]), 6) for k, v in last.items()}
    values["atr_pct"] = round(values["atr14"] / float(a.close[-1]), 6)
    regimes = classify_arrays(a)
    names = [Regime(int(r)).name for r in regimes[-50:]]
    values["ema10_slope5"] = round(float(last["ema10"][-1] / last["ema10"][-6] - 1), 6)
    return {
        "bars": len(bars),
        "ready": True,
        "time": ms_to_datetime(bars[-1].ts),
        "close": bars[-1].close,
        "regime": names[-1],
        "recent_regimes": names,
        "indicators": values,
    }
