"""Monte Carlo over a strategy's trade order: how much of a drawdown is the strategy and how
much the luck of the order its trades came in."""

from __future__ import annotations

import numpy as np


def monte_carlo(trade_returns: list[float], n: int = 500, seed: int = 0) -> dict[str, float]:
    """Resample the trade sequence ``n`` times; returns are PnL / equity before the trade.

    Shuffling the order leaves the final return unchanged but not the path, so max drawdown
    gets a distribution; bootstrapping trades (with replacement) gives the distribution of
    the total return. ES95 = the mean of the worst 5 %."""
    r = np.asarray(trade_returns, dtype=np.float64)
    if len(r) < 2:
        return {}
    rng = np.random.default_rng(seed)
    dds, rets = np.empty(n), np.empty(n)
    for i in range(n):
        path = np.cumprod(1.0 + rng.permutation(r))
        peak = np.maximum.accumulate(np.concatenate([[1.0], path]))[1:]
        dds[i] = float(np.max(1.0 - path / peak))
        rets[i] = float(np.prod(1.0 + rng.choice(r, size=len(r), replace=True)) - 1.0)
    worst_dd = np.sort(dds)[-max(1, n // 20) :]
    worst_ret = np.sort(rets)[: max(1, n // 20)]
    return {
        "resamples": float(n),
        "max_drawdown_p50": float(np.median(dds)),
        "max_drawdown_p95": float(np.percentile(dds, 95)),
        "max_drawdown_es95": float(np.mean(worst_dd)),
        "return_p5": float(np.percentile(rets, 5)),
        "return_es95": float(np.mean(worst_ret)),
    }
