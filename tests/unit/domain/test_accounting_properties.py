"""Property tests of the accounting: random markets, random order flow, invariants each bar."""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solbot.data.bars import BarArrays
from solbot.domain.messages import CancelAll, SubmitBracket, SubmitOrder
from solbot.domain.values import OrderType, Side
from solbot.runtime.backtest import BacktestConfig, summarise
from solbot.venues.sim import SimConfig
from tests.conftest import Scripted, make_engine

BUY, SELL = Side.BUY, Side.SELL
CASH = D("1000")
TOL = D("1e-12")


@st.composite
def markets(draw: st.DrawFn) -> BarArrays:
    n = draw(st.integers(5, 40))
    steps = draw(st.lists(st.floats(-0.08, 0.08), min_size=n, max_size=n))
    wicks = draw(
        st.lists(st.tuples(st.floats(0, 0.05), st.floats(0, 0.05)), min_size=n, max_size=n)
    )
    vols = draw(st.lists(st.floats(0.5, 500), min_size=n, max_size=n))
    close = 10.0 * np.exp(np.cumsum(steps))
    open_ = np.concatenate([[10.0], close[:-1]])
    high = np.maximum(open_, close) * (1 + np.array([w[0] for w in wicks]))
    low = np.minimum(open_, close) * (1 - np.array([w[1] for w in wicks]))
    ts = 1_600_000_000_000 + 3_600_000 * np.arange(n, dtype=np.int64)
    return BarArrays(
        ts,
        np.round(open_, 2),
        np.round(high, 2) + 0.01,
        np.round(low, 2) - 0.01,
        np.round(close, 2),
        np.array(vols),
        "SOL/USDT",
        "1h",
    )


prices = st.decimals(D("5"), D("20"), places=2)
qtys = st.decimals(D("0.5"), D("40"), places=3)
commands = st.one_of(
    st.builds(lambda q: SubmitOrder(BUY, OrderType.MARKET, q), qtys),
    st.builds(
        lambda q: SubmitOrder(BUY, OrderType.MARKET, quote_quantity=q),
        st.decimals(D("5"), D("1200"), places=2),
    ),
    st.builds(lambda q: SubmitOrder(SELL, OrderType.MARKET, q), qtys),
    st.builds(
        lambda q, p, po: SubmitOrder(BUY, OrderType.LIMIT, q, price=p, post_only=po),
        qtys,
        prices,
        st.booleans(),
    ),
    st.builds(lambda q, p: SubmitOrder(SELL, OrderType.LIMIT, q, price=p), qtys, prices),
    st.builds(
        lambda q, p: SubmitOrder(SELL, OrderType.STOP_MARKET, q, trigger_price=p), qtys, prices
    ),
    st.builds(
        lambda q, tp, sl: SubmitBracket(SubmitOrder(BUY, OrderType.MARKET, q), tp, sl),
        qtys,
        st.decimals(D("10.5"), D("30"), places=2),
        st.decimals(D("2"), D("9.5"), places=2),
    ),
    st.just(CancelAll()),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    m=markets(),
    script=st.dictionaries(st.integers(0, 39), st.lists(commands, max_size=3), max_size=25),
    partial=st.booleans(),
    shortable=st.booleans(),
)
def test_accounting_invariants_hold_at_every_bar(m, script, partial, shortable):
    strat = Scripted(script)
    config = SimConfig(max_volume_fraction=0.05 if partial else None)
    engine, venue = make_engine(strat, cash=str(CASH), config=config, shortable=shortable)
    pf, led, inst = engine.portfolio, engine.portfolio.ledger, engine.portfolio.instrument
    equity_dec = []
    for b in m.bars():
        engine.on_bar(b)
        fills = [r.fill for r in pf.fills]
        # balances never negative (free base only on a shortable market, where a short sale
        # borrows it, even while other orders hold base), fees never negative
        for asset, (free, locked) in led.snapshot().items():
            assert locked >= 0
            assert free >= 0 or (shortable and asset == "SOL")
        assert led.free("USDT") >= 0
        assert all(f.fee >= 0 for f in fills)
        # cash follows from the fills alone
        bought = sum((f.quantity * f.price for f in fills if f.side is BUY), D(0))
        sold = sum((f.quantity * f.price for f in fills if f.side is SELL), D(0))
        fees = sum((f.fee for f in fills), D(0))
        assert led.total("USDT") == CASH - bought + sold - fees
        base = sum((f.quantity if f.side is BUY else -f.quantity for f in fills), D(0))
        assert led.total("SOL") == base == pf.position.qty
        # position accounting (avg price, realised PnL) agrees with the ledger
        pos = pf.position
        # (exact but for the 28-digit division behind the average price)
        lhs = led.total("USDT") + pos.qty * pos.avg_price
        assert abs(lhs - (CASH + pos.realised_pnl - fees)) < TOL
        # equity = cash + position value
        mark = inst.price(b.close)
        assert pf.equity(mark) == led.total("USDT") + pos.qty * mark
        equity_dec.append(led.total("USDT") + pos.qty * D(repr(b.close)))
        # our books mirror the exchange's; nothing stays locked without an open order
        assert led.snapshot() == venue.books.snapshot()
        if not pf.open_orders():
            assert all(locked == 0 for _, locked in led.snapshot().values())
    # the report's vectorised equity curve equals the Decimal books bar by bar
    result = summarise(m, engine, venue, BacktestConfig(initial_cash=CASH))
    np.testing.assert_allclose(result.equity, [float(e) for e in equity_dec], rtol=1e-12)
    if pos.qty == 0:
        realised = sum((r.realised_pnl for r in pf.fills), D(0))
        assert abs(realised - fees - (led.total("USDT") - CASH)) < TOL
