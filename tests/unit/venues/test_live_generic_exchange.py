"""The live venue on a non-Binance ccxt exchange: capability flags choose the generic paths
(client id via ccxt's ``clientOrderId``, lookup by scanning orders, fills by time, cancel by
exchange id, the dead man's switch kept armed). The exchange here is an in-memory object with
ccxt's method signatures — no network, no sleeps."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any, ClassVar

import ccxt.async_support as ccxt_async
from ccxt.base import errors as cx

from solbot.domain.instruments import instrument_for
from solbot.domain.messages import Event, OrderAccepted, OrderCancelled, OrderFilled
from solbot.domain.orders import Order, OrderStatus
from solbot.domain.values import OrderId, OrderType, Side
from solbot.venues.capabilities import Capabilities
from solbot.venues.live import LiveVenue


class KrakenLike:
    id = "kraken"
    has: ClassVar[dict[str, bool]] = {
        "cancelAllOrders": True,
        "cancelAllOrdersAfter": True,
        "fetchClosedOrders": True,
    }

    def __init__(self) -> None:
        self.orders: list[dict[str, Any]] = []
        self.trades: list[dict[str, Any]] = []
        self.dead_man: list[int] = []
        self.time_out_next_create = False
        self.created = 0

    async def create_order(self, symbol, otype, side, amount, price, params):  # type: ignore[no-untyped-def]
        self.created += 1
        o = {
            "id": f"K{len(self.orders) + 1}",
            "clientOrderId": params["clientOrderId"],
            "status": "open",
            "filled": 0.0,
            "info": {},
        }
        self.orders.append(o)
        if self.time_out_next_create:  # accepted, but the answer is lost
            self.time_out_next_create = False
            raise cx.RequestTimeout("kraken POST AddOrder timed out")
        return o

    async def fetch_open_orders(self, symbol, since=None, limit=None, params=None):  # type: ignore[no-untyped-def]
        return [o for o in self.orders if o["status"] == "open"]

    async def fetch_closed_orders(self, symbol, since=None, limit=None, params=None):  # type: ignore[no-untyped-def]
        return [o for o in self.orders if o["status"] != "open"]

    async def fetch_my_trades(self, symbol, since=None, limit=None, params=None):  # type: ignore[no-untyped-def]
        return [t for t in self.trades if since is None or t["timestamp"] >= since]

    async def cancel_order(self, order_id, symbol, params=None):  # type: ignore[no-untyped-def]
        for o in self.orders:
            if o["id"] == order_id and o["status"] == "open":
                o["status"] = "canceled"
                return o
        raise cx.OrderNotFound(order_id)

    async def cancel_all_orders_after(self, timeout, params=None):  # type: ignore[no-untyped-def]
        self.dead_man.append(timeout)

    async def close(self) -> None:
        return None

    def fill(self, venue_id: str, tid: str, qty: float, price: float, ts: int) -> None:
        o = next(o for o in self.orders if o["id"] == venue_id)
        o["status"], o["filled"] = "closed", qty
        self.trades.append(
            {
                "id": tid,
                "order": venue_id,
                "timestamp": ts,
                "side": "buy",
                "amount": qty,
                "price": price,
                "fee": {"cost": 0.01, "currency": "USDT"},
                "takerOrMaker": "maker",
                "info": {"qty": "999"},  # not Binance: never read as the exact quantity
            }
        )


def _order(n: int) -> Order:
    return Order(
        OrderId(f"o{n}"),
        "SOL/USDT",
        Side.BUY,
        OrderType.LIMIT,
        Decimal("1.5"),
        price=Decimal("20"),
        status=OrderStatus.SUBMITTED,
    )


def test_capabilities_from_real_ccxt_classes() -> None:
    b = Capabilities.of(ccxt_async.binance())
    assert (b.lookup_param, b.trades_from_id, b.dead_mans_switch) == (
        "origClientOrderId",
        "fromId",
        False,
    )
    k = Capabilities.of(ccxt_async.kraken())
    assert (k.client_id_param, k.lookup_param, k.trades_from_id) == ("clientOrderId", None, None)
    assert k.dead_mans_switch and k.cancel_all
    okx = Capabilities.of(ccxt_async.okx())
    assert okx.dead_mans_switch and not okx.cancel_all
    assert "dead man's switch" in k.describe() and "cancel one by one" in okx.describe()


def test_generic_exchange_unknown_outcome_fills_by_time_cancel_and_dead_mans_switch() -> None:
    async def scenario() -> tuple[KrakenLike, list[Event], LiveVenue]:
        ex = KrakenLike()
        venue = LiveVenue(ex, instrument_for("SOL/USDT"), dead_man_seconds=60)
        events: list[Event] = []
        venue.bind(events.append)
        # the dead man's switch is armed once per quarter of its timeout
        await venue.keep_dead_man()
        await venue.keep_dead_man()
        assert ex.dead_man == [60_000]
        # accepted but the answer was lost: found by scanning, never sent twice
        ex.time_out_next_create = True
        o1 = _order(1)
        venue.submit(o1)
        await asyncio.gather(*venue._tasks)
        assert ex.created == 1 and venue.health.lookups_found == 1
        assert isinstance(events[-1], OrderAccepted) and events[-1].venue_order_id == "K1"
        o1.apply(events[-1])
        # a fill arrives: polled by time, applied once even when read twice
        ex.fill("K1", "T-a", 1.5, 19.99, 1_700_000_000_000)
        await venue.sync()
        await venue.sync()
        fills = [e for e in events if isinstance(e, OrderFilled)]
        assert len(fills) == 1 and fills[0].fill.quantity == Decimal("1.5")
        assert fills[0].fill.trade_id == "T-a" and venue.trades_since == 1_700_000_000_000
        # cancel by the exchange's order id (no client-id cancel on this exchange)
        o2 = _order(2)
        venue.submit(o2)
        await asyncio.gather(*venue._tasks)
        o2.apply(events[-1])
        venue.cancel(o2.order_id)
        await asyncio.gather(*venue._tasks)
        await venue.sync()
        assert ex.orders[1]["status"] == "canceled"
        assert isinstance(events[-1], OrderCancelled)
        await venue.disarm_dead_man()
        await venue.close()
        return ex, events, venue

    ex, _events, venue = asyncio.run(scenario())
    assert ex.dead_man == [60_000, 0] and not venue.dead_man_armed


class BinanceLike:
    """Binance's shape (lookup by ``origClientOrderId``, trades by ``fromId``); the lookup
    can be held open to let a trade poll run while an order's outcome is still unknown."""

    id = "binance"
    has: ClassVar[dict[str, bool]] = {}

    def __init__(self) -> None:
        self.orders: list[dict[str, Any]] = []
        self.trades: list[dict[str, Any]] = []
        self.lookup_gate = asyncio.Event()

    async def create_order(self, symbol, otype, side, amount, price, params):  # type: ignore[no-untyped-def]
        venue_id = str(1000 + len(self.orders))
        cid = params["newClientOrderId"]
        self.orders.append({"id": venue_id, "clientOrderId": cid, "status": "closed", "info": {}})
        self.trades.append(  # filled at once, but the answer is lost
            {
                "id": str(5000 + len(self.trades)),
                "order": venue_id,
                "timestamp": 1_700_000_000_000,
                "side": "buy",
                "amount": float(amount),
                "price": float(price),
                "fee": {"cost": 0.0, "currency": "USDT"},
                "info": {"qty": f"{amount}", "price": f"{price}", "commission": "0"},
            }
        )
        raise cx.RequestTimeout("binance POST /api/v3/order timed out")

    async def fetch_order(self, order_id, symbol, params):  # type: ignore[no-untyped-def]
        await self.lookup_gate.wait()
        for o in self.orders:
            if o["clientOrderId"] == params["origClientOrderId"]:
                return {**o, "filled": 1.5, "info": {"executedQty": "1.5"}}
        raise cx.OrderNotFound(params["origClientOrderId"])

    async def fetch_my_trades(self, symbol, since, limit, params):  # type: ignore[no-untyped-def]
        return [t for t in self.trades if int(t["id"]) >= params["fromId"]]

    async def fetch_open_orders(self, symbol, since=None, limit=None, params=None):  # type: ignore[no-untyped-def]
        return []

    async def close(self) -> None:
        return None


def test_a_fill_that_arrives_before_its_orders_unknown_outcome_is_settled_is_not_lost() -> None:
    async def scenario() -> list[Event]:
        ex = BinanceLike()
        venue = LiveVenue(ex, instrument_for("SOL/USDT"))
        events: list[Event] = []
        venue.bind(events.append)
        order = _order(1)
        venue.submit(order)
        for _ in range(20):  # let the send time out and its lookup start (and wait)
            await asyncio.sleep(0)
        await venue.sync()  # the trade is there, its order not yet known to be ours
        assert not [e for e in events if isinstance(e, OrderFilled)]
        assert venue.next_trade_id == 0  # the cursor waits for the lookup
        ex.lookup_gate.set()
        await asyncio.gather(*venue._tasks)
        assert isinstance(events[-1], OrderAccepted)
        order.apply(events[-1])
        await venue.sync()
        await venue.close()
        return events

    events = asyncio.run(scenario())
    fills = [e for e in events if isinstance(e, OrderFilled)]
    assert len(fills) == 1 and fills[0].fill.quantity == Decimal("1.5")


def test_instrument_from_the_exchanges_market_in_both_precision_modes() -> None:
    from ccxt.base.decimal_to_precision import DECIMAL_PLACES, TICK_SIZE

    from solbot.venues.capabilities import instrument_from_market

    market = {
        "symbol": "SOL/USDT",
        "base": "SOL",
        "quote": "USDT",
        "precision": {"price": 0.01, "amount": 0.001},
        "limits": {"amount": {"min": 0.001}, "cost": {"min": 5.0}},
        "maker": 0.001,
        "taker": 0.001,
    }
    inst = instrument_from_market(market, TICK_SIZE)
    assert inst == instrument_for("SOL/USDT")  # Binance's filters are the built-in ones
    kraken_like = {
        **market,
        "precision": {"price": 2, "amount": 8},
        "limits": {"amount": {"min": 0.02}, "cost": {"min": None}},
        "maker": 0.0025,
        "taker": 0.004,
    }
    k = instrument_from_market(kraken_like, DECIMAL_PLACES)
    assert (k.tick_size, k.lot_size, k.min_qty, k.min_notional) == (
        Decimal("0.01"),
        Decimal("1E-8"),
        Decimal("0.02"),
        Decimal(0),
    )
    assert (k.maker_fee, k.taker_fee) == (Decimal("0.0025"), Decimal("0.004"))
