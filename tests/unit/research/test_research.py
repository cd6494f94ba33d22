"""Walk-forward bookkeeping and Monte Carlo statistics."""

from __future__ import annotations

import numpy as np
import pytest

from solbot.data.synthetic import synthetic_market
from solbot.research.montecarlo import monte_carlo
from solbot.research.optimize import walk_forward


def test_monte_carlo_shuffles_paths_not_the_final_return():
    rng = np.random.default_rng(3)
    r = list(rng.normal(0.002, 0.02, 200))
    mc = monte_carlo(r, n=300, seed=1)
    assert mc["resamples"] == 300
    assert 0 < mc["max_drawdown_p50"] <= mc["max_drawdown_p95"] <= mc["max_drawdown_es95"] < 1
    assert mc["return_es95"] <= mc["return_p5"]
    assert monte_carlo([0.1]) == {}


def test_monte_carlo_of_only_losses_draws_down_the_same_in_every_order():
    mc = monte_carlo([-0.01] * 50, n=50)
    expected = 1 - 0.99**50
    assert mc["max_drawdown_p50"] == pytest.approx(expected)
    assert mc["max_drawdown_es95"] == pytest.approx(expected)


def test_walk_forward_reports_only_test_windows_in_order():
    bars, _ = synthetic_market(bars=24 * 31 * 7, seed=12)  # ~7 months of 1h bars
    wf = walk_forward(bars, "donchian", trials=3, seed=2)
    assert len(wf.windows) >= 2
    for w in wf.windows:
        assert w.train[1] < w.test[0]  # train ends before its test starts
    for a, b in zip(wf.windows, wf.windows[1:], strict=False):
        assert a.test[1] < b.test[0]  # test windows follow each other without overlap
    first_test_ms = int(np.datetime64(wf.windows[0].test[0]).astype("datetime64[ms]").astype(int))
    assert wf.ts[0] == first_test_ms and np.all(np.diff(wf.ts) > 0)
    assert wf.equity[0] == pytest.approx(10000, rel=1e-3)
    assert all(first_test_ms <= t.entry_ts for t in wf.trades)
    assert wf.buy_hold.total_return == pytest.approx(wf.close[-1] / wf.close[0] - 1)
    assert wf.metrics.trades == sum(w.trades for w in wf.windows)


def test_walk_forward_windows_are_warmed_up_for_the_strategys_longest_lookback():
    from solbot.research.optimize import WARMUP_BARS, search_warmup, warmup_bars

    hour = 3_600_000
    assert warmup_bars("donchian", hour) == WARMUP_BARS
    assert warmup_bars("tsmom", hour) == (60 + 2) * 24  # 60 daily closes under 1h bars
    assert warmup_bars("tsmom", hour, {"slow_days": 90}) == (90 + 2) * 24
    # a search covers its longest trial: slow_days searched up to 120
    assert search_warmup("tsmom", hour) == (120 + 2) * 24
    assert search_warmup("tsmom", 4 * hour, {"slow_days": 100}) == (100 + 2) * 6
