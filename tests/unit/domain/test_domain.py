from __future__ import annotations

from decimal import Decimal as D

import pytest

from solbot.domain.instruments import sol_usdt
from solbot.domain.ledger import InsufficientBalance, Ledger
from solbot.domain.messages import (
    Fill,
    OrderAccepted,
    OrderCancelled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
)
from solbot.domain.orders import TRANSITIONS, InvalidTransition, Order, OrderStatus
from solbot.domain.positions import Position
from solbot.domain.values import Liquidity, OrderId, OrderType, Side, TradeId

OID = OrderId("o-1")


def order(qty: str = "2") -> Order:
    return Order(OID, "SOL/USDT", Side.BUY, OrderType.LIMIT, D(qty), price=D("10"))


def fill(qty: str, price: str = "10", side: Side = Side.BUY, fee: str = "0.01") -> Fill:
    return Fill(
        OID, TradeId("t"), "SOL/USDT", side, D(qty), D(price), D(fee), "USDT", Liquidity.TAKER, 0
    )


def test_instrument_rounds_prices_to_ticks_and_quantities_down_to_lots():
    inst = sol_usdt()
    assert inst.price(12.345) == D("12.34")  # half-even
    assert inst.price_up("12.341") == D("12.35")
    assert inst.price_down("12.349") == D("12.34")
    assert inst.qty("1.23456") == D("1.234")
    assert inst.qty_ok(D("1.234")) and not inst.qty_ok(D("1.2345")) and not inst.qty_ok(D("0"))
    assert inst.price_ok(D("10.01")) and not inst.price_ok(D("10.001"))


def test_fee_rounds_up_and_is_never_negative():
    inst = sol_usdt()
    assert inst.fee(D("0.000000001"), D("0.001")) == D("0.00000001")
    assert inst.fee(D("100"), D("0")) == 0


def test_order_lifecycle_when_partially_then_fully_filled():
    o = order()
    assert o.apply(OrderSubmitted(OID, 1)) is OrderStatus.SUBMITTED
    assert o.apply(OrderAccepted(OID, 2, "V1")) is OrderStatus.ACCEPTED
    assert o.apply(OrderFilled(OID, 3, fill("0.5"))) is OrderStatus.PARTIALLY_FILLED
    assert o.leaves_qty == D("1.5")
    assert o.apply(OrderFilled(OID, 4, fill("1.5", "12"))) is OrderStatus.FILLED
    assert o.avg_price == D("11.5")
    assert o.fees == D("0.02")
    assert o.status.is_terminal


@pytest.mark.parametrize(
    ("events", "bad"),
    [
        ([], OrderAccepted(OID, 0)),  # accept before submit
        ([OrderSubmitted(OID, 0), OrderRejected(OID, 0)], OrderAccepted(OID, 0)),
        ([OrderDenied(OID, 0, "x")], OrderSubmitted(OID, 0)),
        ([OrderSubmitted(OID, 0), OrderCancelled(OID, 0)], OrderFilled(OID, 0, fill("1"))),
        ([OrderSubmitted(OID, 0), OrderExpired(OID, 0)], OrderCancelled(OID, 0)),
    ],
)
def test_apply_event_when_transition_not_in_table_then_raises(events, bad):
    o = order()
    for e in events:
        o.apply(e)
    status = o.status
    with pytest.raises(InvalidTransition):
        o.apply(bad)
    assert o.status is status  # unchanged


def test_overfill_is_refused():
    o = order("1")
    o.apply(OrderSubmitted(OID, 0))
    with pytest.raises(InvalidTransition):
        o.apply(OrderFilled(OID, 0, fill("1.001")))


def test_every_terminal_state_has_no_way_out():
    terminal = {s for s in OrderStatus if s.is_terminal}
    assert not [k for k in TRANSITIONS if k[0] in terminal]


def test_position_average_price_and_realised_pnl():
    p = Position("SOL/USDT")
    p.apply(fill("1", "10"))
    p.apply(fill("3", "14"))
    assert p.qty == D("4") and p.avg_price == D("13")
    assert p.apply(fill("1", "15", Side.SELL)) == D("2")
    assert p.unrealised_pnl(D("15")) == D("6")
    p.apply(fill("3", "12", Side.SELL))
    assert p.is_flat and p.realised_pnl == D("-1") and p.avg_price == 0
    assert p.fees == D("0.04")


def test_ledger_hold_settle_release_returns_unused_reservation():
    inst = sol_usdt()
    led = Ledger({"USDT": D("100")})
    led.hold("o", "USDT", D("50"))
    assert led.free("USDT") == D("50") and led.balance("USDT").locked == D("50")
    led.settle(fill("4", "10", fee="0.04"), inst, "o")
    assert led.free("SOL") == D("4")
    led.release("o")
    assert led.balance("USDT").locked == 0
    assert led.total("USDT") == D("100") - D("40.04")


def test_ledger_never_goes_negative():
    inst = sol_usdt()
    led = Ledger({"USDT": D("10")})
    with pytest.raises(InsufficientBalance):
        led.hold("o", "USDT", D("10.01"))
    with pytest.raises(InsufficientBalance):
        led.settle(fill("1", "10", fee="0.01"), inst, "o")
    assert led.free("USDT") == D("10")


def test_oco_legs_share_one_hold():
    led = Ledger({"SOL": D("2")})
    led.hold("g", "SOL", D("2"))
    led.hold("g", "SOL", D("0"))
    led.release("g")
    assert led.balance("SOL").locked == D("2")  # one leg still open
    led.release("g")
    assert led.free("SOL") == D("2")


def _fill_in(asset: str, qty: str, price: str, side: Side, fee: str) -> Fill:
    return Fill(
        OID, TradeId("t"), "SOL/USDT", side, D(qty), D(price), D(fee), asset, Liquidity.TAKER, 0
    )


def test_a_fee_charged_in_the_base_asset_reduces_what_was_bought_not_the_quote():
    """Binance without BNB: a buy's commission comes out of the SOL it bought."""
    inst = sol_usdt()
    led = Ledger({"USDT": D("1000")})
    led.hold("o", "USDT", D("210"))
    buy = _fill_in("SOL", "10", "20", Side.BUY, "0.01")
    led.settle(buy, inst, "o")
    led.release("o")
    assert led.total("USDT") == D("800") and led.total("SOL") == D("9.99")
    pos = Position("SOL/USDT")
    pos.apply(buy)
    assert pos.qty == D("9.99") and pos.fees == D("0.2")  # the fee's value at the fill price
    assert buy.fee_in_quote == D("0.2") and buy.base_change == D("9.99")
    # selling what is held (its fee in quote) leaves base and position at exactly zero
    sell = _fill_in("USDT", "9.99", "21", Side.SELL, "0.2098")
    led.settle(sell, inst, "s")
    pos.apply(sell)
    assert led.total("SOL") == 0 and pos.qty == 0
    assert led.total("USDT") == D("800") + D("209.79") - D("0.2098")
    # a base fee on a sale needs the base to pay it
    led2 = Ledger({"SOL": D("1")})
    assert not led2.can_settle(_fill_in("SOL", "1", "20", Side.SELL, "0.001"), inst, "x")


def test_a_fee_in_a_third_asset_is_paid_from_that_asset():
    inst = sol_usdt()
    led = Ledger({"USDT": D("100"), "BNB": D("0.5")})
    buy = _fill_in("BNB", "2", "10", Side.BUY, "0.001")
    led.settle(buy, inst, "o")
    assert (led.total("USDT"), led.total("SOL"), led.total("BNB")) == (D("80"), D("2"), D("0.499"))
    assert not Ledger({"USDT": D("100")}).can_settle(buy, inst, "o")  # no BNB to pay with
