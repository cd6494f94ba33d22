"""Resting bracket entries as Binance OTOCOs (``rest-api.md`` "New Order list - OTOCO
(TRADE)"), through ccxt's real Binance class against the emulator in-process (the replay rig
of ``test_binance_replay``): the entry rests as the working order, its stop and take-profit
as the pending pair, on the book from the instant the entry has fully filled — no request
of ours after the fill, no moment without a stop."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from solbot.domain.instruments import sol_usdt
from solbot.domain.messages import CancelAll, SubmitBracket, SubmitOrder
from solbot.domain.orders import Order
from solbot.domain.values import OrderId, OrderType, Side
from solbot.emulator.binance import Behaviour
from solbot.venues.otoco import pending_quantity
from tests.unit.venues.test_binance_replay import BUY, Rig, books_equal, run

DOCUMENTED = {  # rest-api.md, "New Order list - OTOCO (TRADE)", Parameters
    "symbol", "listClientOrderId", "newOrderRespType", "selfTradePreventionMode",
    "workingType", "workingSide", "workingClientOrderId", "workingPrice", "workingQuantity",
    "workingTimeInForce", "pendingSide", "pendingQuantity", "pendingAboveType",
    "pendingAboveClientOrderId", "pendingAbovePrice", "pendingAboveStopPrice",
    "pendingAboveTrailingDelta", "pendingAboveTimeInForce", "pendingBelowType",
    "pendingBelowClientOrderId", "pendingBelowPrice", "pendingBelowStopPrice",
    "pendingBelowTrailingDelta", "pendingBelowTimeInForce", "recvWindow", "timestamp",
    "signature",
}  # fmt: skip


def resting_bracket(rig: Rig, below: str = "0.999", qty: str = "20") -> SubmitBracket:
    inst, last = rig.inst, rig.last
    return SubmitBracket(
        SubmitOrder(BUY, OrderType.LIMIT, D(qty), price=inst.price_down(last * D(below))),
        take_profit=inst.price_up(last * D("1.05")),
        stop_loss=inst.price_down(last * D("0.95")),
        tag="t",
    )


def orders(rig: Rig) -> list[dict[str, Any]]:
    return list(rig.exchange()["orders"])


async def until_filled(rig: Rig, bars: int = 400) -> None:
    """Move the market until the exchange has filled our resting entry, then let the bot
    catch up (polling every bar would spend the request weight the gate budgets)."""
    for _ in range(bars):
        if any(r.type == "LIMIT" and r.status == "FILLED" for r in rig.emu.trading.orders.values()):
            await rig.settle()
            return
        rig.emu._advance()
        rig.engine.on_bar(rig.market_bar())
    pytest.fail("the resting entry never filled")


def record_bodies(rig: Rig) -> list[tuple[str, str, Any]]:
    """Every request's (method, url, body) from now on (ccxt signs a POST in its body)."""
    inner, bodies = rig.ex.fetch, []

    async def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        bodies.append((method, url, body))
        return await inner(url, method, headers, body)

    rig.ex.fetch = fetch
    return bodies


def form_of(bodies: list[tuple[str, str, Any]], path: str) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlsplit

    body = next(b for m, u, b in bodies if m == "POST" and urlsplit(u).path.endswith(path))
    return dict(parse_qsl(body))


def test_a_resting_bracket_entry_is_one_otoco_with_the_documented_parameters() -> None:
    async def scenario(rig: Rig) -> None:
        bodies = record_bodies(rig)
        await rig.bar([resting_bracket(rig)])
        assert rig.posts("/api/v3/orderList/otoco") == 1 and rig.posts("/api/v3/order") == 0
        form = form_of(bodies, "/api/v3/orderList/otoco")
        assert set(form) <= DOCUMENTED, set(form) - DOCUMENTED
        assert form["workingType"] == "LIMIT" and form["workingTimeInForce"] == "GTC"
        assert form["pendingAboveType"] == "LIMIT_MAKER"
        assert form["pendingBelowType"] == "STOP_LOSS_LIMIT"
        assert form["pendingBelowTimeInForce"] == "GTC"
        # the pair sells what the buy leaves after a commission in SOL (0.1 %): 19.98
        assert D(form["pendingQuantity"]) == D("19.98") and D(form["workingQuantity"]) == 20
        by_type = {o["type"]: o for o in orders(rig)}
        assert by_type["LIMIT"]["status"] == "NEW"
        assert by_type["LIMIT_MAKER"]["status"] == "PENDING_NEW"
        assert by_type["STOP_LOSS_LIMIT"]["status"] == "PENDING_NEW"
        assert len({o["orderListId"] for o in orders(rig)}) == 1

    run(scenario)


def test_the_pair_is_on_the_book_from_the_fill_and_the_bot_records_it_without_a_request() -> None:
    async def scenario(rig: Rig) -> None:
        await rig.bar([resting_bracket(rig)])
        await until_filled(rig)
        await rig.settle()
        ex = {o["type"]: o for o in orders(rig)}
        assert ex["LIMIT"]["status"] == "FILLED"
        assert ex["LIMIT_MAKER"]["status"] == "NEW" and ex["STOP_LOSS_LIMIT"]["status"] == "NEW"
        assert rig.posts("/api/v3/orderList/oco") == 0  # nothing sent after the fill
        ours = {o.type: o for o in rig.engine.portfolio.orders.values() if o.oco_group is not None}
        stop, tp = ours[OrderType.STOP_LIMIT], ours[OrderType.LIMIT]
        assert stop.status.value == tp.status.value == "accepted"
        assert stop.venue_order_id == str(ex["STOP_LOSS_LIMIT"]["orderId"])
        assert tp.venue_order_id == str(ex["LIMIT_MAKER"]["orderId"])
        assert stop.quantity == tp.quantity == D("19.98")
        assert D(ex["STOP_LOSS_LIMIT"]["stopPrice"]) == stop.trigger_price
        assert D(ex["STOP_LOSS_LIMIT"]["price"]) == stop.price  # the same stop-limit offset
        assert rig.engine.portfolio.position.qty == D("19.98")
        books_equal(rig)
        await rig.bar([CancelAll()])  # the pair is ours: cancelled as one list
        await rig.settle()
        assert not [o for o in orders(rig) if o["status"] in ("NEW", "PENDING_NEW")]
        assert not rig.engine.portfolio.open_orders()
        books_equal(rig)

    run(scenario)


def test_cancelling_the_resting_entry_cancels_its_pending_pair() -> None:
    async def scenario(rig: Rig) -> None:
        await rig.bar([resting_bracket(rig, below="0.9")])  # far below: stays resting
        await rig.bar([CancelAll()])
        await rig.settle()
        by_type = {o["type"]: o["status"] for o in orders(rig)}
        assert by_type.pop("LIMIT") == "CANCELED"  # "the other order in the order list will
        assert set(by_type.values()) <= {"CANCELED", "EXPIRED"}  # also be canceled or expired"
        assert not rig.engine.portfolio.open_orders() and not rig.venue.resting
        books_equal(rig)

    run(scenario)


def test_a_refused_list_sends_the_entry_alone_and_arms_an_oco_after_the_fill() -> None:
    async def scenario(rig: Rig) -> None:
        cmd = resting_bracket(rig)
        # a take-profit under the last price: Binance refuses the pair at placement
        cmd = SubmitBracket(cmd.entry, rig.inst.price_down(rig.last * D("0.9995")), cmd.stop_loss)
        await rig.bar([cmd])
        assert rig.posts("/api/v3/orderList/otoco") == 1 and rig.posts("/api/v3/order") == 1
        entry = next(iter(rig.engine.portfolio.orders.values()))
        assert entry.status.value == "accepted"  # resting alone, not rejected
        await until_filled(rig)
        await rig.settle()
        # armed after the fill: the take-profit is past by then, so the engine exits at market
        # or rests an OCO — either way nothing is left unprotected or unknown
        assert not rig.venue.resting
        books_equal(rig)

    run(scenario)


def test_a_pair_whose_ids_are_unknown_is_looked_up_not_sent_again() -> None:
    """A restart (or a lost answer): the list is at the exchange but its pending ids are not
    known here; the adoption finds them by client id instead of sending an OCO."""

    async def scenario(rig: Rig) -> None:
        await rig.bar([resting_bracket(rig)])
        for rest in rig.venue.resting.values():
            rest.ids.clear()  # as after a restart: only the client ids are known
        await until_filled(rig)
        await rig.settle(rounds=6)
        assert rig.posts("/api/v3/orderList/oco") == 0
        legs = [o for o in rig.engine.portfolio.orders.values() if o.oco_group is not None]
        assert len(legs) == 2 and all(o.status.value == "accepted" for o in legs)
        assert len([o for o in orders(rig) if o["status"] == "NEW"]) == 2
        books_equal(rig)

    run(scenario, behaviour=Behaviour(lookup_lag=0.3))


def test_reconciliation_counts_a_resting_entrys_pending_pair_as_ours() -> None:
    async def scenario(rig: Rig) -> None:
        await rig.bar([resting_bracket(rig, below="0.9")])
        listed = await rig.ex.fetch_open_orders("SOL/USDT")
        theirs = {str(o["clientOrderId"]) for o in listed if o["id"] not in rig.venue.by_venue_id}
        assert theirs and theirs <= rig.venue.pending_client_ids()

    run(scenario)


def test_the_pending_quantity_leaves_room_for_a_commission_in_the_base() -> None:
    inst = sol_usdt()  # maker and taker 0.1 %, lot 0.001
    order = Order(OrderId("e"), "SOL/USDT", Side.BUY, OrderType.LIMIT, D("3.337"), price=D("20"))
    assert pending_quantity(inst, order) == D("3.333")  # 3.337 * 0.999 = 3.333663, floored
