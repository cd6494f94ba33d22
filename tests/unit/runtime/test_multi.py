"""Several symbols in one account: allocation and the portfolio exposure cap."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from solbot.data.synthetic import synthetic_market
from solbot.domain.messages import OrderDenied, OrderSubmitted
from solbot.runtime.multi import allocation_weights, run_multi


def three_markets():  # type: ignore[no-untyped-def]
    out = []
    for sym, seed, scale in (("SOL/USDT", 1, 1.0), ("BTC/USDT", 2, 1000.0), ("ETH/USDT", 3, 100.0)):
        b, _ = synthetic_market(bars=3000, seed=seed, start_price=20.0 * scale)
        b.symbol = sym
        out.append(b)
    return out


def test_equal_and_inverse_volatility_weights():
    m = three_markets()
    eq = allocation_weights(m, "equal", 30)
    assert eq == pytest.approx({"SOL/USDT": 1 / 3, "BTC/USDT": 1 / 3, "ETH/USDT": 1 / 3})
    vol = allocation_weights(m, "vol", 30)
    assert sum(vol.values()) == pytest.approx(1.0)
    sig = {d.symbol: np.std(np.diff(np.log(d.close[: 30 * 24 : 24])), ddof=1) for d in m}
    assert vol["SOL/USDT"] / vol["BTC/USDT"] == pytest.approx(sig["BTC/USDT"] / sig["SOL/USDT"])
    with pytest.raises(ValueError):
        allocation_weights(m, "random", 30)


def test_exposure_cap_denies_buys_that_would_exceed_it():
    m = three_markets()
    res = run_multi(m, "donchian", Decimal("30000"), "equal", exposure_cap=0.5)
    assert res.denied_by_cap > 0
    denials = [
        e
        for r in res.results.values()
        for o in r.engine.portfolio.orders.values()
        for e in o.events
        if isinstance(e, OrderDenied)
    ]
    assert all("portfolio exposure cap" in d.reason for d in denials)
    # the cap limits, it does not stop trading: every symbol still placed orders
    for r in res.results.values():
        assert any(
            isinstance(e, OrderSubmitted)
            for o in r.engine.portfolio.orders.values()
            for e in o.events
        )
    uncapped = run_multi(m, "donchian", Decimal("30000"), "equal", exposure_cap=1.0)
    assert uncapped.denied_by_cap == 0 and uncapped.metrics.trades > res.metrics.trades
    assert res.equity[0] == pytest.approx(30000, rel=1e-3)
