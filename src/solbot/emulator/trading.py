"""The emulator's order endpoints: new orders and order lists, queries, cancels and trades,
with the rules Binance enforces (binance/binance-spot-api-docs; each rule names its source).

* Order types only as the symbol's ``orderTypes`` list them (``enums.md`` "Order types";
  ``errors.md``: "Stop loss orders are not supported for this symbol.").
* Mandatory parameters per type (``rest-api.md`` "New order": LIMIT and *_LIMIT need
  ``timeInForce``, ``quantity``, ``price``; stops need ``stopPrice``).
* Filters (``filters.md``): PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE, PERCENT_PRICE_BY_SIDE
  (against the 5-minute average price), NOTIONAL (the minimum also for market orders),
  MAX_NUM_ORDERS and MAX_NUM_ALGO_ORDERS (open stop and take-profit orders).
* "Order would trigger immediately." for a stop its trigger the last price has reached, and
  an OCO's "The relationship of the prices for the orders is not correct." (``errors.md``).
* A client id is refused only while an order with it is open ("Duplicate order sent."); the
  order query finds the newest order with it.
* Self-trade prevention, the symbols' default EXPIRE_MAKER (``faqs/stp_faq.md``): a taker order
  that would trade with one of our own resting orders expires that order
  (``EXPIRED_IN_MATCH``) instead.
* Order lists (``rest-api.md`` "New Order list - OCO", "- OTOCO", "Cancel Order list", "Query
  Open Order lists"; ``lists.py``): both legs under one balance lock; a leg that fills or
  triggers expires the other; cancelling one leg cancels the list; an OTOCO's pending pair
  goes on the book once its working order has fully filled.
* Every change of an order is pushed on the user data stream (``userstream.py``).
* Lookup lag (``Behaviour.lookup_lag``): the order query and ``allOrders`` do not know an order
  younger than the lag ("Data Sources": Memory => Database) and answer -2013.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from solbot.domain.messages import (
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
)
from solbot.domain.orders import Order
from solbot.domain.values import ZERO, OrderId, Side
from solbot.emulator.behaviour import Behaviour
from solbot.emulator.gate import Gate
from solbot.emulator.lists import OrderLists
from solbot.emulator.markets import Market
from solbot.emulator.rules import (
    NEEDS_PRICE,
    NEEDS_STOP,
    SIM_TYPE,
    check_filters,
    check_shape,
    check_trading,
    check_trailing,
    check_type,
    decimal,
    mandatory,
)
from solbot.emulator.userstream import UserStreams
from solbot.emulator.wire import (
    MAX_NUM_ALGO_ORDERS,
    MAX_NUM_ORDERS,
    STP_ALLOWED,
    STP_DEFAULT,
    BinanceError,
    OrderRec,
    cancelled_json,
    created_json,
    d,
    execution_report,
    list_json,
    order_json,
)


class BinanceEmulator(Protocol):
    """What order handling uses of the emulator (``binance.BinanceEmulator``)."""

    behaviour: Behaviour
    gate: Gate
    markets: dict[str, Market]
    user_streams: UserStreams

    def market(self, params: dict[str, str]) -> Market: ...


class Trading:
    def __init__(self, emu: BinanceEmulator) -> None:
        self.emu = emu
        self.orders: dict[int, OrderRec] = {}
        self.trades: list[dict[str, Any]] = []
        self.lists: dict[int, tuple[str, str, list[int]]] = {}  # id -> (client id, symbol, legs)
        self._next_order = 1000
        self._next_trade = 5000
        self._next_list = 100
        self._pending_reject: str | None = None
        self._expire_as: dict[int, str] = {}  # order id -> the status its removal reports
        self.lists_ops = OrderLists(self)
        self._filled_working: list[OrderRec] = []  # OTOCO working orders to activate

    @property
    def now(self) -> int:
        return self.emu.gate.now_ms()

    # ---------------------------------------------------------------- sim events
    def on_event(self, event: Event) -> None:
        rec = self.orders.get(int(event.order_id))
        if rec is None:
            return
        rec.update_time = self.now
        if isinstance(event, OrderAccepted):
            rec.status = "NEW"
            self._report(rec, "NEW")
        elif isinstance(event, OrderRejected):
            if rec.order_id in self.lists_ops.activating:  # accepted with its list earlier
                rec.status, rec.expiry = "EXPIRED", "REJECTED"
                self._report(rec, "EXPIRED")
                return
            rec.status = "REJECTED"
            self._pending_reject = event.reason
        elif isinstance(event, OrderCancelled):
            forced = self._expire_as.pop(rec.order_id, None)
            if forced is not None:
                rec.status = forced
            elif "cancelled by request" in event.reason:
                rec.status = "CANCELED"
            else:
                rec.status = "EXPIRED"
                rec.expiry = "OCO_TRIGGER" if "OCO" in event.reason else "EXCHANGE_CANCELED"
            kinds = {"CANCELED": "CANCELED", "EXPIRED_IN_MATCH": "TRADE_PREVENTION"}
            self._report(rec, kinds.get(rec.status, "EXPIRED"))
            self.lists_ops.working_ended(rec)
        elif isinstance(event, OrderFilled):
            f = event.fill
            rec.executed += f.quantity
            rec.cum_quote += f.quantity * f.price
            rec.status = "PARTIALLY_FILLED"
            if rec.working_time == -1:
                rec.working_time = self.now
            self._next_trade += 1
            self.trades.append(
                {
                    "symbol": rec.symbol,
                    "id": self._next_trade,
                    "orderId": rec.order_id,
                    "orderListId": rec.list_id,
                    "price": d(f.price),
                    "qty": d(f.quantity),
                    "quoteQty": d(f.quantity * f.price),
                    "commission": d(f.fee),
                    "commissionAsset": f.fee_asset,
                    "time": self.now,
                    "isBuyer": f.side is Side.BUY,
                    "isMaker": f.liquidity.value == "maker",
                    "isBestMatch": True,
                }
            )
            maker = f.liquidity.value == "maker"
            fill = (self._next_trade, f.quantity, f.price, f.fee, f.fee_asset, maker)
            self._report(rec, "TRADE", fill)
            if rec.executed >= rec.orig_qty and rec.order_id in self.lists_ops.pending:
                self._filled_working.append(rec)  # placed after this match (settle_statuses)

    def _report(
        self,
        rec: OrderRec,
        kind: str,
        fill: tuple[int, Decimal, Decimal, Decimal, str, bool] | None = None,
    ) -> None:
        """The user data stream's ``executionReport`` of this change (``userstream.py``); a
        cancel's report names a client id of its own in ``c`` and the order's in ``C``."""
        event = execution_report(rec, kind, self.now, fill)
        if kind == "CANCELED":
            event["c"] = f"cancel{rec.order_id}"
        self.emu.user_streams.publish(event)

    def settle_statuses(self) -> None:
        working = {oid for m in self.emu.markets.values() for oid in m.sim.open_order_ids()}
        for rec in self.orders.values():
            on_book = rec.is_open and rec.status != "PENDING_NEW"
            if on_book and OrderId(str(rec.order_id)) not in working:
                rec.status = "FILLED"
                rec.update_time = self.now
        while self._filled_working:  # their pending pairs go on the book after the match
            self.lists_ops.activate(self._filled_working.pop(0))

    # ---------------------------------------------------------------- checks
    def _open_recs(self, wire: str) -> list[OrderRec]:
        return [r for r in self.orders.values() if r.is_open and r.symbol == wire]

    def _check_counts(self, wire: str, new: int, algo: int) -> None:
        mine = self._open_recs(wire)
        if len(mine) + new > MAX_NUM_ORDERS:
            raise BinanceError(400, -1013, "Filter failure: MAX_NUM_ORDERS")
        if sum(r.is_algo for r in mine) + algo > MAX_NUM_ALGO_ORDERS:
            raise BinanceError(400, -1013, "Filter failure: MAX_NUM_ALGO_ORDERS")

    def _check_client_id(self, cid: str) -> None:
        if any(r.client_id == cid and r.is_open for r in self.orders.values()):
            raise BinanceError(400, -2010, "Duplicate order sent.")

    @staticmethod
    def _stp(params: dict[str, str]) -> str:
        mode = params.get("selfTradePreventionMode") or STP_DEFAULT
        if mode not in [*STP_ALLOWED, "NONE"]:
            raise BinanceError(400, -1013, "This symbol does not allow the specified STP mode.")
        return mode

    # ---------------------------------------------------------------- new orders
    def _rec(
        self, m: Market, cid: str, side: str, otype: str, qty: Decimal | None,
        price: Decimal | None, stop: Decimal | None, quote: Decimal | None, stp: str,
        list_id: int = -1,
    ) -> OrderRec:  # fmt: skip
        self._next_order += 1
        rec = OrderRec(
            self._next_order, cid, side, otype, qty or ZERO, price or ZERO, stop or ZERO,
            quote or ZERO, self.now, symbol=m.wire, list_id=list_id, stp=stp,
            working_time=-1 if otype in NEEDS_STOP else self.now,
            created_wall=time.monotonic(),
        )  # fmt: skip
        self.orders[rec.order_id] = rec
        return rec

    def _sim_order(self, rec: OrderRec, m: Market, group: str | None = None) -> Order:
        return Order(
            order_id=OrderId(str(rec.order_id)),
            symbol=m.inst.symbol,
            side=Side.BUY if rec.side == "BUY" else Side.SELL,
            type=SIM_TYPE[rec.type],
            quantity=rec.orig_qty,
            price=rec.price if rec.type in NEEDS_PRICE else None,
            trigger_price=rec.stop_price if rec.type in ("STOP_LOSS", "STOP_LOSS_LIMIT") else None,
            quote_quantity=rec.quote_qty if rec.quote_qty > ZERO else None,
            post_only=rec.type == "LIMIT_MAKER",
            oco_group=group,
            trailing_bps=rec.trailing_delta or None,
        )

    def _refused(self, rec: OrderRec) -> BinanceError:
        del self.orders[rec.order_id]
        reason = (self._pending_reject or "rejected").lower()
        if "post-only" in reason:
            return BinanceError(400, -2010, "Order would immediately match and take.")
        if "trigger immediately" in reason:
            return BinanceError(400, -2010, "Order would trigger immediately.")
        return BinanceError(400, -2010, "Account has insufficient balance for requested action.")

    def _prevent_self_trade(self, m: Market, rec: OrderRec) -> None:
        """EXPIRE_MAKER (the taker's mode decides, ``stp_faq.md``): our resting orders on the
        other side at or through the price this order takes expire instead of trading."""
        if rec.stp == "NONE":
            return
        last = m.last_dec()
        limit = rec.price if rec.type == "LIMIT" else None
        for other in self._open_recs(m.wire):
            if other is rec or other.side == rec.side or other.type not in ("LIMIT", "LIMIT_MAKER"):
                continue
            if other.status == "PENDING_NEW":  # not on the book
                continue
            if rec.side == "SELL":
                crosses = other.price >= (limit if limit is not None else last)
            else:
                crosses = other.price <= (limit if limit is not None else last)
            if crosses and rec.stp in ("EXPIRE_MAKER", "EXPIRE_BOTH"):
                self._expire_as[other.order_id] = "EXPIRED_IN_MATCH"
                m.sim.cancel(OrderId(str(other.order_id)))

    def new_order(self, params: dict[str, str]) -> Any:
        m = self.emu.market(params)
        side, otype = params.get("side", ""), params.get("type", "")
        if side not in ("BUY", "SELL"):
            raise BinanceError(400, -1100, "Invalid side.")
        check_type(m, otype)
        check_trading(m)
        qty, quote = decimal(params, "quantity"), decimal(params, "quoteOrderQty")
        price, stop = check_shape(params, otype)
        trail = check_trailing(params, otype, side)
        if otype == "MARKET" and (qty is None) == (quote is None):
            raise mandatory("quantity")
        if otype != "MARKET" and qty is None:
            raise mandatory("quantity")
        check_filters(m, otype, qty, price, stop, quote)
        self._check_counts(m.wire, 1, 1 if otype in NEEDS_STOP else 0)
        cid = params.get("newClientOrderId") or f"emu{self._next_order + 1}"
        self._check_client_id(cid)
        rec = self._rec(m, cid, side, otype, qty, price, stop, quote, self._stp(params))
        rec.trailing_delta = trail
        self._pending_reject = None
        if otype == "MARKET" or (
            otype == "LIMIT"
            and price is not None
            and (price >= m.last_dec() if side == "BUY" else price <= m.last_dec())
        ):
            self._prevent_self_trade(m, rec)
        m.sim.submit(self._sim_order(rec, m))
        if rec.status == "REJECTED":
            raise self._refused(rec)
        if otype == "MARKET":
            m.sim.match_market_now(m.last_price)
            self.settle_statuses()
        return created_json(rec, self.now, self._fills_of(rec))

    def _fills_of(self, rec: OrderRec) -> list[dict[str, Any]]:
        return [
            {
                "price": t["price"],
                "qty": t["qty"],
                "commission": t["commission"],
                "commissionAsset": t["commissionAsset"],
                "tradeId": t["id"],
            }
            for t in self.trades
            if t["orderId"] == rec.order_id
        ]

    def _list_open(self, list_id: int) -> bool:
        return any(self.orders[o].is_open for o in self.lists[list_id][2] if o in self.orders)

    # ---------------------------------------------------------------- queries and cancels
    def _find(self, params: dict[str, str], lagged: bool = False) -> tuple[Market, OrderRec]:
        m = self.emu.market(params)
        if "orderId" in params:
            rec = self.orders.get(int(params["orderId"]))
        elif "origClientOrderId" in params:
            cid = params["origClientOrderId"]
            found = [r for r in self.orders.values() if r.client_id == cid and r.symbol == m.wire]
            rec = found[-1] if found else None
        else:
            raise BinanceError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent.")
        lag = self.emu.behaviour.lookup_lag
        young = rec is not None and lagged and time.monotonic() - rec.created_wall < lag
        if rec is None or rec.symbol != m.wire or young:
            raise BinanceError(400, -2013, "Order does not exist.")
        return m, rec

    def get_order(self, params: dict[str, str]) -> Any:
        return order_json(self._find(params, lagged=True)[1])

    def all_orders(self, params: dict[str, str]) -> Any:
        m = self.emu.market(params)
        lag = self.emu.behaviour.lookup_lag
        now = time.monotonic()
        rows = [
            r for r in self.orders.values() if r.symbol == m.wire and now - r.created_wall >= lag
        ]
        limit = min(int(params.get("limit", "500")), 1000)
        return [order_json(r) for r in rows[-limit:]]

    def _cancel_rec(self, m: Market, rec: OrderRec) -> list[OrderRec]:
        """Cancel an order, or the whole list it is a leg of; the records cancelled."""
        ids = self.lists[rec.list_id][2] if rec.list_id != -1 else [rec.order_id]
        out = []
        for oid in ids:
            r = self.orders[oid]
            if r.status == "PENDING_NEW":
                self.lists_ops.cancel_pending(r)
                out.append(r)
            elif r.is_open:
                m.sim.cancel(OrderId(str(oid)))
                out.append(r)
        return out

    def cancel_order(self, params: dict[str, str]) -> Any:
        m, rec = self._find(params)
        if not rec.is_open:
            raise BinanceError(400, -2011, "Unknown order sent.")
        self._cancel_rec(m, rec)
        return cancelled_json(rec)

    def open_orders(self, params: dict[str, str]) -> Any:
        wire = self.emu.market(params).wire if "symbol" in params else None
        return [
            order_json(r) for r in self.orders.values() if r.is_open and wire in (None, r.symbol)
        ]

    def cancel_open_orders(self, params: dict[str, str]) -> Any:
        """Every open order of the symbol, order lists included (``rest-api.md``: "This
        includes orders that are part of an order list")."""
        m = self.emu.market(params)
        out: list[dict[str, Any]] = []
        done_lists: set[int] = set()
        for r in list(self._open_recs(m.wire)):
            if not r.is_open or r.list_id in done_lists:
                continue
            cancelled = self._cancel_rec(m, r)
            if r.list_id != -1:
                done_lists.add(r.list_id)
                cid, wire, ids = self.lists[r.list_id]
                legs = [self.orders[i] for i in ids]
                reports = [cancelled_json(x) for x in cancelled]
                out.append(list_json(r.list_id, cid, wire, legs, self.now, reports))
            else:
                out.append(cancelled_json(r))
        if not out:
            raise BinanceError(400, -2011, "Unknown order sent.")
        return out

    def _find_list(self, params: dict[str, str], key: str = "listClientOrderId") -> int:
        if "orderListId" in params:
            list_id = int(params["orderListId"])
        else:
            cid = params.get(key) or params.get("origClientOrderId")
            matches = [i for i, (c, _, _) in self.lists.items() if c == cid]
            list_id = matches[-1] if matches else -1
        if list_id not in self.lists:
            raise BinanceError(400, -2011, "Order list does not exist.")
        return list_id

    def cancel_list(self, params: dict[str, str]) -> Any:
        m = self.emu.market(params)
        list_id = self._find_list(params)
        cid, wire, ids = self.lists[list_id]
        if not self._list_open(list_id):
            raise BinanceError(400, -2011, "Unknown order sent.")
        cancelled = self._cancel_rec(m, self.orders[ids[0]])
        legs = [self.orders[i] for i in ids]
        reports = [cancelled_json(r) for r in cancelled]
        return list_json(list_id, cid, wire, legs, self.now, reports)

    def get_list(self, params: dict[str, str]) -> Any:
        list_id = self._find_list(params, "origClientOrderId")
        cid, wire, ids = self.lists[list_id]
        return list_json(list_id, cid, wire, [self.orders[i] for i in ids], self.now)

    def open_lists(self, _: dict[str, str]) -> Any:
        return [
            list_json(i, cid, wire, [self.orders[o] for o in ids], self.now)
            for i, (cid, wire, ids) in self.lists.items()
            if self._list_open(i)
        ]

    def my_trades(self, params: dict[str, str]) -> Any:
        m = self.emu.market(params)
        limit = min(int(params.get("limit", "500")), 1000)
        rows = [t for t in self.trades if t["symbol"] == m.wire]
        if "orderId" in params:
            rows = [t for t in rows if t["orderId"] == int(params["orderId"])]
        if "fromId" in params:
            rows = [t for t in rows if t["id"] >= int(params["fromId"])]
        elif "startTime" in params:
            rows = [t for t in rows if t["time"] >= int(params["startTime"])]
        return rows[:limit] if "fromId" in params or "startTime" in params else rows[-limit:]

    def routes(self) -> dict[str, dict[str, tuple[Callable[[dict[str, str]], Any], bool, bool]]]:
        """path -> method -> (endpoint, signed, may draw a fault)."""
        return {
            "/api/v3/order": {
                "POST": (self.new_order, True, True),
                "GET": (self.get_order, True, True),
                "DELETE": (self.cancel_order, True, True),
            },
            "/api/v3/openOrders": {
                "GET": (self.open_orders, True, True),
                "DELETE": (self.cancel_open_orders, True, True),
            },
            "/api/v3/allOrders": {"GET": (self.all_orders, True, True)},
            "/api/v3/orderList/oco": {"POST": (self.lists_ops.new_oco, True, True)},
            "/api/v3/orderList/otoco": {"POST": (self.lists_ops.new_otoco, True, True)},
            "/api/v3/orderList": {
                "DELETE": (self.cancel_list, True, True),
                "GET": (self.get_list, True, True),
            },
            "/api/v3/openOrderList": {"GET": (self.open_lists, True, True)},
            "/api/v3/myTrades": {"GET": (self.my_trades, True, True)},
        }
