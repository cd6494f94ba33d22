"""A deterministic synthetic SOL-like market with regime switching.

A Markov chain moves between UPTREND, DOWNTREND, RANGE and CRASH regimes; each regime has
its own drift, volatility and (for RANGE) mean reversion. Every bar is built from a path of
sub-steps, so open/high/low/close are consistent. The same seed always gives the same bars.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from solbot.data.bars import BarArrays, timeframe_ms
from solbot.domain.errors import ConfigurationError

HOUR_MS = 3_600_000


class Regime(IntEnum):
    UPTREND = 0
    DOWNTREND = 1
    RANGE = 2
    CRASH = 3


@dataclass(frozen=True, slots=True)
class RegimeParams:
    drift: float  # log-return per hour
    vol: float  # stdev of log-return per hour
    mean_reversion: float  # per hour, towards the regime's anchor price (RANGE)
    mean_hours: float  # expected duration


REGIMES: dict[Regime, RegimeParams] = {
    Regime.UPTREND: RegimeParams(0.0016, 0.011, 0.0, 240.0),
    Regime.DOWNTREND: RegimeParams(-0.0014, 0.012, 0.0, 200.0),
    Regime.RANGE: RegimeParams(0.0, 0.009, 0.02, 320.0),
    Regime.CRASH: RegimeParams(-0.012, 0.03, 0.0, 14.0),
}

# Where a regime goes when it ends (rows: from, columns: to).
TRANSITIONS = np.array(
    [
        [0.0, 0.30, 0.60, 0.10],
        [0.30, 0.0, 0.62, 0.08],
        [0.45, 0.40, 0.0, 0.15],
        [0.15, 0.25, 0.60, 0.0],
    ]
)


def synthetic_market(
    bars: int = 8760,
    timeframe: str = "1h",
    seed: int = 8,
    start_price: float = 20.0,
    start_ms: int = 1_640_995_200_000,  # 2022-01-01T00:00Z
    substeps: int = 12,
) -> tuple[BarArrays, npt.NDArray[np.int8]]:
    """Return the bars and the regime of each bar."""
    if bars < 1:
        raise ConfigurationError("bars must be >= 1")
    step = timeframe_ms(timeframe)
    hours = step / HOUR_MS
    rng = np.random.default_rng(seed)
    regimes = np.empty(bars, dtype=np.int8)
    regime = Regime.RANGE
    left = 0
    for i in range(bars):
        if left <= 0:
            if i > 0:
                regime = Regime(int(rng.choice(4, p=TRANSITIONS[regime])))
            left = max(1, int(rng.exponential(REGIMES[regime].mean_hours / hours)))
        regimes[i] = regime
        left -= 1

    dt = hours / substeps
    log_p = np.log(start_price)
    # a sane band around the start: 1/400 to 250 times it (from 20: 0.05 to 5,000)
    floor, ceiling = log_p + np.log(0.05 / 20.0), log_p + np.log(5000.0 / 20.0)
    anchor = log_p
    prev_regime = -1
    o = np.empty(bars)
    h = np.empty(bars)
    lo = np.empty(bars)
    c = np.empty(bars)
    v = np.empty(bars)
    shocks = rng.standard_normal((bars, substeps))
    vol_noise = rng.lognormal(0.0, 0.35, bars)
    for i in range(bars):
        r = Regime(int(regimes[i]))
        prm = REGIMES[r]
        if r != prev_regime:
            anchor = log_p
            prev_regime = r
        path = np.empty(substeps + 1)
        path[0] = log_p
        x = log_p
        for k in range(substeps):
            pull = prm.mean_reversion * (anchor - x) * dt
            x = x + prm.drift * dt + pull + prm.vol * np.sqrt(dt) * shocks[i, k]
            x = min(max(x, floor), ceiling)  # keep prices in a sane band
            path[k + 1] = x
        prices = np.exp(path)
        o[i], c[i] = prices[0], prices[-1]
        h[i], lo[i] = prices.max(), prices.min()
        move = abs(path[-1] - path[0]) / (prm.vol * np.sqrt(hours))
        v[i] = 50_000.0 * hours * (1.0 + move) * vol_noise[i] * (3.0 if r == Regime.CRASH else 1.0)
        log_p = path[-1]
    o, h, lo, c = (np.round(x, 4) for x in (o, h, lo, c))
    h = np.maximum.reduce([h, o, c])
    lo = np.minimum.reduce([lo, o, c])
    ts = start_ms + step * np.arange(bars, dtype=np.int64)
    out = BarArrays(
        ts, o, h, lo, c, np.round(v, 2), "SOL/USDT", timeframe, {"source": f"synthetic seed={seed}"}
    )
    return out, regimes
