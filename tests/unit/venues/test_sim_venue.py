"""The simulated exchange's documented intrabar rules, on hand-built bars."""

from __future__ import annotations

from decimal import Decimal as D

from solbot.domain.messages import (
    CancelOrder,
    OrderCancelled,
    OrderDenied,
    OrderRejected,
    SubmitBracket,
    SubmitOrder,
)
from solbot.domain.orders import OrderStatus
from solbot.domain.values import Liquidity, OrderType, Side
from solbot.venues.sim import SimConfig
from tests.conftest import Scripted, bar, make_engine

BUY, SELL = Side.BUY, Side.SELL


def run(script, bars, **kw):
    strat = Scripted(script)
    engine, venue = make_engine(strat, **kw)
    for b in bars:
        engine.on_bar(b)
    return engine, venue, strat


def test_market_buy_fills_at_next_open_with_slippage_and_taker_fee():
    cmd = SubmitOrder(BUY, OrderType.MARKET, D("10"))
    engine, _, strat = run({0: [cmd]}, [bar(0, 10, 11, 9, 10), bar(1, 20, 21, 19, 20)])
    (f,) = strat.fills
    assert f.price == D("20.01")  # 20 * 1.0005 rounded up to the tick
    assert f.fee == D("0.2001") and f.liquidity is Liquidity.TAKER
    assert f.ts == bar(1, 0, 0, 0, 0).ts
    pf = engine.portfolio
    assert pf.ledger.total("USDT") == D("10000") - D("200.1") - D("0.2001")
    assert pf.position.qty == D("10")


def test_quote_sized_market_buy_never_spends_more_than_asked():
    cmd = SubmitOrder(BUY, OrderType.MARKET, quote_quantity=D("10000"))
    engine, venue, strat = run({0: [cmd]}, [bar(0, 10, 11, 9, 10), bar(1, 13, 14, 12, 13)])
    (f,) = strat.fills
    assert f.quantity * f.price + f.fee <= D("10000")
    assert engine.portfolio.ledger.free("USDT") >= 0
    assert venue.books.snapshot() == engine.portfolio.ledger.snapshot()


def test_resting_limit_buy_needs_trade_through_and_fills_at_its_price_as_maker():
    cmd = SubmitOrder(BUY, OrderType.LIMIT, D("1"), price=D("9.00"))
    bars = [bar(0, 10, 10, 10, 10), bar(1, 10, 10, 9.0, 9.5), bar(2, 9.5, 9.6, 8.99, 9.2)]
    _, _, strat = run({0: [cmd]}, bars)
    (f,) = strat.fills  # touching 9.00 on bar 1 did not fill
    assert f.price == D("9.00") and f.liquidity is Liquidity.MAKER and f.ts == bars[2].ts


def test_limit_fills_on_touch_when_configured():
    cmd = SubmitOrder(BUY, OrderType.LIMIT, D("1"), price=D("9.00"))
    bars = [bar(0, 10, 10, 10, 10), bar(1, 10, 10, 9.0, 9.5)]
    _, _, strat = run({0: [cmd]}, bars, config=SimConfig(fill_limit_on_touch=True))
    assert len(strat.fills) == 1


def test_post_only_limit_that_would_cross_is_rejected():
    cmd = SubmitOrder(BUY, OrderType.LIMIT, D("1"), price=D("10.50"), post_only=True)
    engine, _, strat = run({0: [cmd]}, [bar(0, 10, 10, 10, 10), bar(1, 10, 11, 9, 10)])
    assert isinstance(strat.events[-1], OrderRejected)
    assert "post-only" in strat.events[-1].reason
    assert engine.portfolio.ledger.free("USDT") == D("10000")  # reservation returned


def test_stop_sell_fills_at_open_when_the_open_gaps_through():
    engine0 = [SubmitOrder(BUY, OrderType.MARKET, D("1"))]
    stop = [SubmitOrder(SELL, OrderType.STOP_MARKET, D("1"), trigger_price=D("9.00"))]
    bars = [bar(0, 10, 10, 10, 10), bar(1, 10, 10, 10, 10), bar(2, 8, 8.5, 7, 8)]
    _, _, strat = run({0: engine0, 1: stop}, bars)
    assert strat.fills[-1].price == D("7.99")  # open 8 * 0.9995, not the 9.00 trigger


def test_stop_sell_fills_at_trigger_minus_slippage_inside_the_bar():
    buy = [SubmitOrder(BUY, OrderType.MARKET, D("1"))]
    stop = [SubmitOrder(SELL, OrderType.STOP_MARKET, D("1"), trigger_price=D("9.00"))]
    bars = [bar(0, 10, 10, 10, 10), bar(1, 10, 10, 10, 10), bar(2, 9.5, 9.6, 8.5, 9)]
    _, _, strat = run({0: buy, 1: stop}, bars)
    assert strat.fills[-1].price == D("8.99")  # 9.00 * 0.9995 rounded down


def bracket(tp: str = "12.00", sl: str = "9.00") -> SubmitBracket:
    return SubmitBracket(SubmitOrder(BUY, OrderType.MARKET, D("1")), D(tp), D(sl))


def test_bracket_when_both_legs_inside_one_bar_assumes_the_stop():
    bars = [bar(0, 10, 10, 10, 10), bar(1, 10, 10, 10, 10), bar(2, 10, 13, 8, 10)]
    engine, venue, strat = run({0: [bracket()]}, bars)
    _entry, exit_ = strat.fills
    assert exit_.side is SELL and exit_.price == D("8.99")
    tp = next(o for o in engine.portfolio.orders.values() if o.type is OrderType.LIMIT)
    assert tp.status is OrderStatus.CANCELLED and "OCO" in tp.reason
    assert engine.portfolio.position.is_flat
    assert not venue.open_order_ids()
    assert venue.books.snapshot() == engine.portfolio.ledger.snapshot()


def test_bracket_when_open_gaps_above_take_profit_fills_the_take_profit():
    bars = [bar(0, 10, 10, 10, 10), bar(1, 10, 10, 10, 10), bar(2, 12.5, 13, 8, 10)]
    _, _, strat = run({0: [bracket()]}, bars)
    assert strat.fills[-1].price == D("12.00") and strat.fills[-1].liquidity is Liquidity.MAKER


def test_bracket_legs_are_armed_only_after_the_entry_fills():
    bars = [bar(0, 10, 10, 10, 10), bar(1, 10, 10, 10, 10)]
    engine, venue, _ = run({0: [bracket()]}, bars[:1])
    assert len(engine.portfolio.orders) == 1
    engine.on_bar(bars[1])
    assert len(venue.open_order_ids()) == 2  # take-profit and stop, one shared hold
    assert engine.portfolio.ledger.balance("SOL").locked == D("1")


def test_volume_cap_gives_partial_fills_until_done():
    cmd = SubmitOrder(BUY, OrderType.MARKET, D("3"))
    bars = [bar(0, 10, 10, 10, 10, 10), *[bar(i, 10, 10, 10, 10, 10) for i in range(1, 4)]]
    engine, _, strat = run({0: [cmd]}, bars, config=SimConfig(max_volume_fraction=0.1))
    assert [f.quantity for f in strat.fills] == [D("1"), D("1"), D("1")]
    (o,) = engine.portfolio.orders.values()
    assert o.status is OrderStatus.FILLED
    assert [e.__class__.__name__ for e in o.events].count("OrderFilled") == 3


def test_cancel_releases_the_reservation():
    buy = SubmitOrder(BUY, OrderType.LIMIT, D("1"), price=D("5.00"))
    bars = [bar(0, 10, 10, 10, 10), bar(1, 10, 10, 10, 10), bar(2, 10, 10, 10, 10)]
    engine, _, strat = run({0: [buy], 1: [CancelOrder("sb-1")]}, bars)  # type: ignore[arg-type]
    assert isinstance(strat.events[-1], OrderCancelled)
    assert engine.portfolio.ledger.snapshot()["USDT"] == (D("10000"), D("0"))


def test_unaffordable_order_is_denied_before_the_venue():
    cmd = SubmitOrder(BUY, OrderType.LIMIT, D("2000"), price=D("10.00"))
    _, venue, strat = run({0: [cmd]}, [bar(0, 10, 10, 10, 10), bar(1, 10, 10, 10, 10)])
    assert isinstance(strat.events[-1], OrderDenied)
    assert "insufficient USDT" in strat.events[-1].reason
    assert not venue.open_order_ids()


def test_bracket_entry_partly_filled_then_cancelled_still_gets_its_exits():
    entry = SubmitOrder(BUY, OrderType.LIMIT, D("3"), price=D("9.50"))
    cmd = SubmitBracket(entry, D("12.00"), D("8.00"))
    bars = [bar(0, 10, 10, 10, 10, 10), bar(1, 10, 10, 9.4, 9.6, 10)]
    engine, venue, _ = run({0: [cmd]}, bars, config=SimConfig(max_volume_fraction=0.1))
    (entry_order,) = engine.portfolio.orders.values()
    assert entry_order.filled_qty == D("1")  # 10 % of the bar's volume
    engine.execute([CancelOrder(entry_order.order_id)])
    legs = [o for o in engine.portfolio.orders.values() if o.oco_group]
    assert {o.quantity for o in legs} == {D("1")} and len(legs) == 2
    assert len(venue.open_order_ids()) == 2
