"""Pre-trade risk: every failure is an OrderDenied event with a reason, never an exception."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from solbot.domain.messages import OrderDenied, SubmitOrder, TradingStateChanged
from solbot.domain.values import OrderType, Side, TradingState
from solbot.engine.risk import RiskLimits
from tests.conftest import Scripted, bar, make_engine

BUY, SELL = Side.BUY, Side.SELL


def denial(
    cmd: SubmitOrder,
    state: TradingState = TradingState.ACTIVE,
    base: str = "0",
    limits: RiskLimits | None = None,
) -> str:
    strat = Scripted({0: [cmd]})
    engine, venue = make_engine(strat, base=base)
    if limits:
        engine.risk.limits = limits
    engine.set_trading_state(state, "test")
    engine.on_bar(bar(0, 10, 10, 10, 10))
    (ev,) = [e for e in strat.events if isinstance(e, OrderDenied)]
    assert not venue.open_order_ids()
    assert engine.portfolio.ledger.free("USDT") == D("10000")
    return ev.reason


@pytest.mark.parametrize(
    ("cmd", "kwargs", "needle"),
    [
        (SubmitOrder(BUY, OrderType.MARKET, D("1")), {"state": TradingState.HALTED}, "halted"),
        (SubmitOrder(BUY, OrderType.MARKET, D("1")), {"state": TradingState.REDUCING}, "REDUCING"),
        # the engine's protective exit goes out in a halt only as a reduce-only sell of a
        # position held: marked protective, a buy is still new exposure
        (
            SubmitOrder(BUY, OrderType.MARKET, D("1"), protective=True),
            {"state": TradingState.HALTED},
            "halted",
        ),
        (
            SubmitOrder(SELL, OrderType.MARKET, D("1"), reduce_only=True, protective=True),
            {"state": TradingState.HALTED, "base": "1"},
            "halted",
        ),
        (SubmitOrder(SELL, OrderType.MARKET, D("1")), {}, "long-only"),
        (SubmitOrder(SELL, OrderType.MARKET, D("2")), {"base": "1"}, "long-only"),
        (SubmitOrder(BUY, OrderType.MARKET, D("0.1")), {}, "below minimum 5"),
        (SubmitOrder(BUY, OrderType.MARKET, D("1.0001")), {}, "multiple of 0.001"),
        (SubmitOrder(BUY, OrderType.LIMIT, D("1"), price=D("9.999")), {}, "limit price"),
        (SubmitOrder(BUY, OrderType.STOP_MARKET, D("1")), {}, "trigger price"),
        (SubmitOrder(BUY, OrderType.MARKET, D("5000")), {}, "insufficient USDT"),
        (
            SubmitOrder(BUY, OrderType.MARKET, D("100")),
            {"limits": RiskLimits(max_order_value=D("500"))},
            "above maximum 500",
        ),
        (SubmitOrder(BUY, OrderType.MARKET, D("1"), reduce_only=True), {}, "reduce-only"),
        (SubmitOrder(BUY, OrderType.MARKET, D("1"), quote_quantity=D("10")), {}, "exactly one"),
    ],
)
def test_submit_when_check_fails_then_denied_with_reason(cmd, kwargs, needle):
    assert needle in denial(cmd, **kwargs)


def test_reducing_state_allows_a_sell_that_shrinks_the_position():
    strat2 = Scripted(
        {
            0: [SubmitOrder(BUY, OrderType.MARKET, D("2"))],
            1: [SubmitOrder(SELL, OrderType.MARKET, D("1"))],
        }
    )
    engine, _ = make_engine(strat2)
    engine.on_bar(bar(0, 10, 10, 10, 10))
    engine.on_bar(bar(1, 10, 10, 10, 10))  # buy fills at this open
    engine.set_trading_state(TradingState.REDUCING, "test")
    engine.on_bar(bar(2, 10, 10, 10, 10))
    engine.on_bar(bar(3, 10, 10, 10, 10))
    assert not [e for e in strat2.events if isinstance(e, OrderDenied)]
    assert engine.portfolio.position.qty == D("1")


def test_strategy_exception_halts_trading_instead_of_crashing():
    class Broken(Scripted):
        def on_bar(self, bar):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    strat = Broken()
    engine, _ = make_engine(strat)
    seen: list[object] = []
    engine.listeners.append(seen.append)
    engine.on_bar(bar(0, 10, 10, 10, 10))
    assert engine.risk.state is TradingState.HALTED
    assert isinstance(seen[-1], TradingStateChanged) and "boom" in seen[-1].reason


def test_shortable_market_refuses_a_sell_that_would_flip_a_long_into_a_short():
    from solbot.domain.messages import OrderDenied as Denied

    strat = Scripted(
        {
            0: [SubmitOrder(BUY, OrderType.MARKET, D("2"))],
            2: [SubmitOrder(SELL, OrderType.MARKET, D("5"))],
            3: [SubmitOrder(SELL, OrderType.MARKET, D("2"))],
            5: [SubmitOrder(SELL, OrderType.MARKET, D("3"))],
        }
    )
    engine, _ = make_engine(strat, shortable=True)
    for i in range(7):
        engine.on_bar(bar(i, 10, 10, 10, 10))
    (denied,) = [e for e in strat.events if isinstance(e, Denied)]
    assert "close the long" in denied.reason
    assert engine.portfolio.position.qty == D("-3")  # flat first, then a 3 SOL short
    assert engine.portfolio.ledger.free("SOL") == D("-3")
