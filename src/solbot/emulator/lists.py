"""The emulator's order lists (binance/binance-spot-api-docs ``rest-api.md``):

* **OCO** ("New Order list - OCO (TRADE)"): an above and a below order under one balance
  lock; a leg that fills or triggers expires the other; cancelling one leg cancels the list.
  For a sell the above order is the take-profit (LIMIT_MAKER or TAKE_PROFIT_LIMIT) and the
  below order the stop; the prices must straddle the last price ("The relationship of the
  prices for the orders is not correct.", ``errors.md``).
* **OTOCO** ("New Order list - OTOCO (TRADE)"): a *working* order (LIMIT or LIMIT_MAKER) and
  two *pending* orders forming an OCO. "Initially, only the working order goes on the order
  book"; the pending orders are ``PENDING_NEW`` ("The order is in a pending phase until the
  working order of an order list has been fully filled", ``enums.md``) and are placed on the
  book when the working order is **fully filled**, with the quantity given as
  ``pendingQuantity``. "If either the working order or the pending order is cancelled
  individually, the other order in the order list will also be canceled or expired" (the
  OTO section): cancelling the working order, alone or with its list, cancels it and
  expires the pending ones here. An OTOCO adds 3 orders to MAX_NUM_ORDERS. Its answer's
  ``contingencyType`` is ``OTO`` (the documented example).

Where the documents are silent we are the stricter: the pending pair's price relationship is
checked against the last price when the list is placed (as an OCO's is), and pending orders
are listed by ``openOrders`` (the documents do not say; a client must cope with both).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from solbot.domain.orders import Order
from solbot.domain.values import OrderId
from solbot.emulator.markets import Market
from solbot.emulator.rules import (
    BAD_PRICES,
    check_filters,
    check_shape,
    check_trading,
    check_trailing,
    check_type,
    decimal,
    mandatory,
)
from solbot.emulator.wire import BinanceError, OrderRec, created_json, list_json


class Trading(Protocol):
    """What the order lists use of the emulator's order book keeper (``trading.Trading``)."""

    emu: Any  # the emulator (``binance.BinanceEmulator``)
    orders: dict[int, OrderRec]
    lists: dict[int, tuple[str, str, list[int]]]  # id -> (client id, symbol, legs)
    _next_list: int
    _next_order: int
    _pending_reject: str | None
    _expire_as: dict[int, str]

    @property
    def now(self) -> int: ...

    def _report(
        self,
        rec: OrderRec,
        kind: str,
        fill: tuple[int, Decimal, Decimal, Decimal, str, bool] | None = None,
    ) -> None: ...

    def _check_counts(self, wire: str, new: int, algo: int) -> None: ...

    def _check_client_id(self, cid: str) -> None: ...

    @staticmethod
    def _stp(params: dict[str, str]) -> str: ...

    def _rec(
        self, m: Market, cid: str, side: str, otype: str, qty: Decimal | None,
        price: Decimal | None, stop: Decimal | None, quote: Decimal | None, stp: str,
        list_id: int = -1,
    ) -> OrderRec: ...  # fmt: skip

    def _sim_order(self, rec: OrderRec, m: Market, group: str | None = None) -> Order: ...

    def _refused(self, rec: OrderRec) -> BinanceError: ...

    def _list_open(self, list_id: int) -> bool: ...


STOPS = {"STOP_LOSS", "STOP_LOSS_LIMIT"}


class OrderLists:
    def __init__(self, trading: Trading) -> None:
        self.t = trading
        # working order id -> (the pending orders' ids, their sim group)
        self.pending: dict[int, tuple[list[int], str]] = {}
        self.activating: set[int] = set()  # pending orders being placed on the book now

    # ---------------------------------------------------------------- OCO
    def new_oco(self, params: dict[str, str]) -> Any:
        """``POST /api/v3/orderList/oco``."""
        t = self.t
        m = t.emu.market(params)
        side = params.get("side", "")
        if side not in ("BUY", "SELL"):
            raise BinanceError(400, -1100, "Invalid side.")
        if not m.oco_allowed:
            raise BinanceError(400, -2010, "OCO orders are not supported for this symbol")
        check_trading(m)
        qty = decimal(params, "quantity")
        if qty is None:
            raise mandatory("quantity")
        stop_leg, tp_leg = self._pair(m, params, side, qty, "above", "below")
        t._check_counts(m.wire, 2, 1)
        list_cid = self._list_client_id(params)
        stp = t._stp(params)
        list_id, group = self._new_list_id()
        recs: list[OrderRec] = []
        t._pending_reject = None
        for leg in (stop_leg, tp_leg):  # Binance lists the stop leg first
            rec = t._rec(
                m, leg["cid"], side, leg["type"], qty, leg["price"], leg["stop"], None, stp,
                list_id,
            )  # fmt: skip
            rec.trailing_delta = leg["trail"]
            recs.append(rec)
            m.sim.submit(t._sim_order(rec, m, group))
            if rec.status == "REJECTED":
                err = t._refused(rec)
                for other in recs[:-1]:
                    m.sim.cancel(OrderId(str(other.order_id)))
                    del t.orders[other.order_id]
                t._next_list -= 1
                raise err
        t.lists[list_id] = (list_cid, m.wire, [r.order_id for r in recs])
        reports = [created_json(r, t.now, []) for r in recs]
        return list_json(list_id, list_cid, m.wire, recs, t.now, reports)

    def _pair(
        self, m: Market, params: dict[str, str], side: str, qty: Any, above: str, below: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """An OCO pair's (stop leg, take-profit leg), checked as ``New Order list - OCO``
        says; ``above``/``below``: the parameters' prefixes."""
        t = self.t
        legs: dict[str, dict[str, Any]] = {}
        for pos, prefix in (("above", above), ("below", below)):
            otype = params.get(f"{prefix}Type", "")
            if not otype:
                raise mandatory(f"{prefix}Type")
            check_type(m, otype)
            price, stop = check_shape(params, otype, prefix)
            trail = check_trailing(params, otype, side, prefix)
            check_filters(m, otype, qty, price, stop, None)
            cid = params.get(f"{prefix}ClientOrderId") or f"emu{t._next_order + 1}{pos}"
            t._check_client_id(cid)
            legs[pos] = {"type": otype, "price": price, "stop": stop, "cid": cid, "trail": trail}
        kinds = {legs["above"]["type"], legs["below"]["type"]}
        stops = kinds & STOPS
        if len(stops) != 1 or not kinds - stops <= {"LIMIT_MAKER", "TAKE_PROFIT_LIMIT"}:
            raise BinanceError(400, -1158, "Order type not supported in OCO.")
        stop_pos = "below" if side == "SELL" else "above"
        stop_leg, tp_leg = legs[stop_pos], legs["above" if stop_pos == "below" else "below"]
        if stop_leg["type"] not in STOPS:
            raise BinanceError(400, -2010, BAD_PRICES)
        last = m.last_dec()
        tp_px, stop_px = tp_leg["price"] or tp_leg["stop"], stop_leg["stop"]
        if stop_px is None:  # a trailing stop without stopPrice: it tracks from the next trade
            ok = tp_px > last if side == "SELL" else tp_px < last
        else:
            ok = tp_px > last > stop_px if side == "SELL" else tp_px < last < stop_px
        if not ok:
            raise BinanceError(400, -2010, BAD_PRICES)
        return stop_leg, tp_leg

    def _list_client_id(self, params: dict[str, str]) -> str:
        t = self.t
        list_cid = params.get("listClientOrderId") or f"emulist{t._next_list + 1}"
        if any(c == list_cid and t._list_open(i) for i, (c, _, _) in t.lists.items()):
            raise BinanceError(400, -2010, "Duplicate order sent.")
        return list_cid

    def _new_list_id(self) -> tuple[int, str]:
        self.t._next_list += 1
        return self.t._next_list, f"L{self.t._next_list}"

    # ---------------------------------------------------------------- OTOCO
    def new_otoco(self, params: dict[str, str]) -> Any:
        """``POST /api/v3/orderList/otoco``: the working order rests now, the pending pair
        once it has fully filled (``activate``)."""
        t = self.t
        m = t.emu.market(params)
        if not m.oco_allowed or not m.oto_allowed:
            raise BinanceError(400, -2010, "OTOCO orders are not supported for this symbol")
        check_trading(m)
        w_side, p_side = params.get("workingSide", ""), params.get("pendingSide", "")
        if w_side not in ("BUY", "SELL") or p_side not in ("BUY", "SELL"):
            raise BinanceError(400, -1100, "Invalid side.")
        w_type = params.get("workingType", "")
        if w_type not in ("LIMIT", "LIMIT_MAKER"):
            raise BinanceError(400, -1158, "Order type not supported in OTOCO.")
        check_type(m, w_type)
        w_price, _ = check_shape(params, w_type, "working")
        w_qty, p_qty = decimal(params, "workingQuantity"), decimal(params, "pendingQuantity")
        if w_qty is None:
            raise mandatory("workingQuantity")
        if p_qty is None:
            raise mandatory("pendingQuantity")
        check_filters(m, w_type, w_qty, w_price, None, None)
        w_cid = params.get("workingClientOrderId") or f"emu{t._next_order + 1}working"
        t._check_client_id(w_cid)
        if params.get("pendingBelowType") is None:
            raise mandatory("pendingBelowType")
        stop_leg, tp_leg = self._pair(m, params, p_side, p_qty, "pendingAbove", "pendingBelow")
        t._check_counts(m.wire, 3, 1)
        list_cid = self._list_client_id(params)
        stp = t._stp(params)
        list_id, group = self._new_list_id()
        t._pending_reject = None
        working = t._rec(m, w_cid, w_side, w_type, w_qty, w_price, None, None, stp, list_id)
        pending: list[OrderRec] = []
        for leg in (stop_leg, tp_leg):
            rec = t._rec(
                m, leg["cid"], p_side, leg["type"], p_qty, leg["price"], leg["stop"], None, stp,
                list_id,
            )  # fmt: skip
            rec.trailing_delta = leg["trail"]
            rec.status = "PENDING_NEW"
            rec.working_time = -1
            pending.append(rec)
        self.pending[working.order_id] = ([r.order_id for r in pending], group)
        m.sim.submit(t._sim_order(working, m))
        if working.status == "REJECTED":
            err = t._refused(working)
            for rec in pending:
                del t.orders[rec.order_id]
            del self.pending[working.order_id]
            t._next_list -= 1
            raise err
        recs = [working, *pending]
        t.lists[list_id] = (list_cid, m.wire, [r.order_id for r in recs])
        reports = [created_json(r, t.now, []) for r in recs]
        out = list_json(list_id, list_cid, m.wire, recs, t.now, reports)
        out["contingencyType"] = "OTO"
        return out

    def activate(self, working: OrderRec) -> None:
        """The working order has fully filled: its pending pair goes on the book. A leg the
        book refuses then (the price passed its stop meanwhile) ends ``EXPIRED`` with the
        expiry reason ``REJECTED`` (``enums.md`` "Expiry Reasons": an order accepted with
        its list is not "rejected" later), and its sibling with it."""
        ids, group = self.pending.pop(working.order_id, ([], ""))
        if not ids:
            return
        t = self.t
        m = t.emu.markets[working.symbol]
        placed: list[OrderRec] = []
        for oid in ids:
            rec = t.orders[oid]
            if rec.status != "PENDING_NEW":
                continue
            rec.status = "NEW"  # on the book now; the sim's acceptance reports it
            rec.working_time = -1 if rec.type in STOPS else t.now
            t._pending_reject = None
            self.activating.add(oid)
            m.sim.submit(t._sim_order(rec, m, group))
            self.activating.discard(oid)
            if rec.status != "EXPIRED":
                placed.append(rec)
                continue
            for other in placed:  # the pair stands or falls together
                if other.is_open:
                    t._expire_as[other.order_id] = "EXPIRED"
                    other.expiry = "REJECTED"
                    m.sim.cancel(OrderId(str(other.order_id)))
            for later in ids:
                r = t.orders[later]
                if r.status == "PENDING_NEW":
                    self._expire(r, "REJECTED")
            return

    def _expire(self, rec: OrderRec, reason: str) -> None:
        rec.status, rec.expiry = "EXPIRED", reason
        rec.update_time = self.t.now
        self.t._report(rec, "EXPIRED")

    def working_ended(self, working: OrderRec) -> None:
        """The working order ended unfilled (cancelled or expired): the pending pair
        expires with it."""
        ids, _ = self.pending.pop(working.order_id, ([], ""))
        for oid in ids:
            rec = self.t.orders[oid]
            if rec.status == "PENDING_NEW":
                self._expire(rec, "OTO_PHASE_ONE_EXPIRED")  # enums.md "Expiry Reasons"

    def cancel_pending(self, rec: OrderRec) -> None:
        """A pending order cancelled with its list (it is not on the book)."""
        rec.status = "CANCELED"
        rec.update_time = self.t.now
        for ids, _ in self.pending.values():
            if rec.order_id in ids:
                ids.remove(rec.order_id)
        self.t._report(rec, "CANCELED")
