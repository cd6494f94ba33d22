"""What the exchange reports about our orders, for the live venue: trades (``myTrades`` by
trade id on Binance, by time elsewhere) and orders that are no longer open, turned into the
engine's fills and endings. The same path serves normal running and catching up after a
restart. A trade is marked seen only once the engine has applied it (and its listeners stored
it); one that cannot be booked stops the cursor and raises a P0 alarm instead of being
skipped. A trade of an order we cannot place yet stops the cursor while a send is in flight:
it may be ours, accepted but not yet answered; with nothing in flight it is someone else's,
and reconciliation reports it. Here too: looking an order up by its client id, and over the
lookup window after an unknown outcome (``resolve``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ccxt.base import errors as cx

from solbot.domain.instruments import Instrument
from solbot.domain.messages import OrderCancelled, OrderExpired, OrderFilled
from solbot.domain.orders import Order
from solbot.domain.values import ZERO, OrderId
from solbot.venues.capabilities import Capabilities
from solbot.venues.clients import ExchangeClient
from solbot.venues.exchange import short
from solbot.venues.fills import fill_of
from solbot.venues.traffic import urgent

if TYPE_CHECKING:
    from solbot.venues.health import VenueHealth

log = logging.getLogger(__name__)

OPEN_STATUSES = ("open", "PENDING_NEW")  # ccxt passes PENDING_NEW (enums.md) through


class ExchangeReports:
    """The live venue's half that reads; ``LiveVenue`` holds the state it reads into."""

    if TYPE_CHECKING:
        ex: ExchangeClient
        caps: Capabilities
        symbol: str
        instrument: Instrument
        orders: dict[OrderId, Order]
        by_venue_id: dict[str, OrderId]
        client_ids: dict[OrderId, str]
        seen_trades: set[str]
        next_trade_id: int
        trades_since: int | None
        _quote_trades: dict[OrderId, list[dict[str, Any]]]
        _cancel_wanted: set[OrderId]
        _lists_cancelled: set[str]
        _sending: set[OrderId]
        _unbookable: set[str]
        unsettled: set[OrderId]
        touched_lists: set[str]
        _on_alarm: Callable[[str, str], None]

        health: VenueHealth
        lookup_margin: float
        _closed: bool

        async def call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any: ...
        def recv_window(self) -> float: ...
        async def _cancel(self, oid: OrderId) -> None: ...
        def _emit(self, *events: Any) -> None: ...
        def _spawn(self, coro: Coroutine[Any, Any, None]) -> None: ...
        def client_id(self, order_id: OrderId) -> str: ...
        def _now(self) -> int: ...
        def _accepted(self, oid: OrderId, resp: dict[str, Any]) -> None: ...

    async def lookup(self, cid: str) -> dict[str, Any] | None:
        """The exchange's order for a client id, or None when it does not know it (Binance:
        the order query by ``origClientOrderId``, then open orders; elsewhere: open orders,
        then recent closed ones)."""
        if self.caps.lookup_param is not None:
            try:
                params = {self.caps.lookup_param: cid}
                return dict(await self.call(self.ex.fetch_order, None, self.symbol, params))
            except cx.OrderNotFound:
                pass
            candidates = list(await self.call(self.ex.fetch_open_orders, self.symbol))
        else:
            candidates = list(await self.call(self.ex.fetch_open_orders, self.symbol))
            if self.caps.fetch_closed_orders:
                candidates += await self.call(self.ex.fetch_closed_orders, self.symbol, None, 500)
        for o in candidates:
            if o.get("clientOrderId") == cid:
                return dict(o)
        return None

    async def resolve(
        self, orders: list[Order], since: float, every: bool = False
    ) -> dict[OrderId, dict[str, Any]]:
        """After an unknown outcome: the exchange's record of each of ``orders`` found, or
        nothing once ``recvWindow`` plus a margin has passed since ``since`` without a trace
        (the order query lags: -2013 is "not yet known" until then). ``orders`` are the legs
        of one request (one found: the request arrived) unless ``every``: independent orders
        (a restart's), each looked for until found or the deadline — one found early says
        nothing of another that the order query does not know yet."""
        deadline = since + self.recv_window() + self.lookup_margin
        attempt = 0
        found: dict[OrderId, dict[str, Any]] = {}
        while True:
            for o in orders:
                if o.order_id in found:
                    continue
                with urgent():
                    rec = await self.lookup(o.client_id)
                if rec is not None:
                    found[o.order_id] = rec
            done = len(found) == len(orders) if every else bool(found)
            if done or time.monotonic() >= deadline or self._closed:
                if found:
                    self.health.lookups_found += 1
                return found
            attempt += 1
            await asyncio.sleep(min(1.0, 0.2 * attempt))

    def on_stream_trade(self, t: dict[str, Any]) -> None:
        """A trade pushed by the user data stream (``venues.userstream``; ccxt.pro's parse of
        an ``executionReport``): booked now if it is one of our open orders' — found by its
        order id, or by its client id (``c``) when the order's answer was lost and the order
        query does not know it yet. An order not yet known accepted is accepted first. The
        poll skips it later by trade id; the cursor is not moved (other trades may lie
        below this id). Quote-sized orders' trades are left to the poll (applied at their
        end)."""
        tid = str(t.get("id"))
        info = t.get("info") or {}
        if tid in self.seen_trades or info.get("x", "TRADE") != "TRADE":
            return
        venue_id = str(info.get("i") or t.get("order") or "")
        oid = self.by_venue_id.get(venue_id)
        if oid is None:
            cid = info.get("c")
            oid = next((o for o, c in self.client_ids.items() if c == cid), None)
        order = self.orders.get(oid) if oid is not None else None
        if oid is None or order is None or not order.status.is_open:
            return  # not ours, or ended: the poll and reconciliation see it
        if order.quote_quantity is not None or not all(k in info for k in "lLnN"):
            return
        if not order.venue_order_id:
            self._accepted(oid, {"id": venue_id})
        trade = {
            "id": tid,
            "order": venue_id,
            "timestamp": int(t.get("timestamp") or info.get("T") or self._now()),
            "side": t.get("side") or str(info.get("S", "")).lower(),
            "amount": t.get("amount"),
            "price": t.get("price"),
            "takerOrMaker": "maker" if info.get("m") else "taker",
            "info": {
                "qty": info["l"],
                "price": info["L"],
                "commission": info["n"],
                "commissionAsset": info["N"],
            },
        }
        if self._book(oid, trade):
            self.seen_trades.add(tid)
            self.health.stream_trades += 1

    def restore_cursor(self, trade_ids: list[str], last_fill_ts: int | None) -> None:
        """Trades a previous run already booked: never again, and read on from after them
        (a quote-sized order's merged id ``a+b`` counts each of its trades)."""
        self.trades_since = last_fill_ts
        for tid in trade_ids:
            self.seen_trades.add(tid)
            for part in tid.split("+"):
                if part.isdigit():
                    self.next_trade_id = max(self.next_trade_id, int(part) + 1)

    async def _my_trades(self) -> list[dict[str, Any]]:
        if self.caps.trades_from_id is not None:
            params = {self.caps.trades_from_id: self.next_trade_id}
            return list(await self.call(self.ex.fetch_my_trades, self.symbol, None, 1000, params))
        trades = list(
            await self.call(self.ex.fetch_my_trades, self.symbol, self.trades_since, 1000)
        )
        trades.sort(key=lambda t: int(t.get("timestamp") or 0))
        return trades

    def _advance_cursor(self, t: dict[str, Any]) -> None:
        if self.caps.trades_from_id is not None:
            self.next_trade_id = max(self.next_trade_id, int(t["id"]) + 1)
        else:  # the same millisecond may hold more trades: re-read it, de-duplicate by id
            self.trades_since = max(self.trades_since or 0, int(t.get("timestamp") or 0))

    def _book(self, oid: OrderId, t: dict[str, Any]) -> bool:
        """Apply one trade of ours; False (and a P0 alarm, once) when it cannot be booked."""
        order = self.orders.get(oid)
        tid = str(t["id"])
        if order is not None and any(f.trade_id == tid for f in order.fills):
            return True  # applied already (its record failed after): never twice
        if order is not None and order.quote_quantity is not None:
            self._quote_trades.setdefault(oid, []).append(t)
            return True
        fill = fill_of(oid, t, self.instrument, self.caps.trades_from_id == "fromId")
        try:
            self._emit(OrderFilled(oid, int(t["timestamp"]), fill))
        except Exception as exc:
            if tid not in self._unbookable:
                self._unbookable.add(tid)
                log.error("cannot book trade %s of %s: %s", tid, oid, short(exc))
                self._on_alarm("P0", f"cannot book exchange trade {tid} of {oid}: {short(exc)}")
            return False
        return True

    async def sync(self) -> None:
        # 1. new trades, in order (the module docstring: when the cursor stops)
        while True:
            before = (self.next_trade_id, self.trades_since)
            trades = await self._my_trades()
            stopped = False
            for t in trades:
                tid = str(t["id"])
                oid = self.by_venue_id.get(str(t.get("order")))
                if oid is None and tid not in self.seen_trades and self._sending:
                    stopped = True
                    break
                if tid not in self.seen_trades and oid is not None:
                    if not self._book(oid, t):
                        stopped = True
                        break
                    self.seen_trades.add(tid)
                self._advance_cursor(t)
            if stopped or len(trades) < 1000 or (self.next_trade_id, self.trades_since) == before:
                break
        # 2. orders of ours that are no longer open on the exchange
        open_ids = {str(o["id"]) for o in await self.call(self.ex.fetch_open_orders, self.symbol)}
        recancelled: set[str] = set()  # one cancel per order list (it cancels the list)
        self.unsettled.clear()
        for oid, order in list(self.orders.items()):
            if order.status.is_open and oid not in self._sending and not order.venue_order_id:
                # its send ended without its exchange id: an OCO leg whose list was found by
                # the other leg after a lost answer (the order query lagged for this one) —
                # the list is at the exchange whole, so this leg is too: look it up
                found = await self.lookup(self.client_id(oid))
                if found is None:
                    continue
                self._accepted(oid, found)
            if not order.status.is_open or oid in self._sending or not order.venue_order_id:
                if not order.status.is_open:
                    self._forget(oid, order)
                continue
            if order.venue_order_id in open_ids:
                key = order.oco_group or oid
                if oid in self._cancel_wanted and key not in recancelled:
                    recancelled.add(key)
                    self._spawn(self._cancel(oid))
                continue
            if order.oco_group in self.touched_lists and order.filled_qty == 0:
                # its list's other leg filled: "activation of one order immediately cancels
                # the other" (rest-api.md, New order list - OCO): it expired — no need to wait
                # for the lagging order query to say so (a kill waited 3 s for it)
                self._emit(OrderExpired(oid, self._now()))
                self._forget(oid, order)
                continue
            final = await self.lookup(self.client_id(oid))
            if final is None or final["status"] in OPEN_STATUSES:
                # ended at the exchange (no longer open there), the lagging order query does
                # not say how yet — e.g. an OCO leg expired as its sibling filled
                self.unsettled.add(oid)
                continue
            self._finish(oid, order, final)

    def _forget(self, oid: OrderId, order: Order) -> None:
        self.orders.pop(oid, None)
        self._cancel_wanted.discard(oid)
        group = order.oco_group
        if group is not None and not any(o.oco_group == group for o in self.orders.values()):
            self._lists_cancelled.discard(group)
            self.touched_lists.discard(group)

    def _finish(self, oid: OrderId, order: Order, final: dict[str, Any]) -> None:
        info = final.get("info") or {}
        filled = Decimal(str(info.get("executedQty", final.get("filled") or 0)))
        if order.quote_quantity is not None:
            trades = self._quote_trades.get(oid, [])
            got = sum((Decimal(str(t["info"].get("qty", t["amount"]))) for t in trades), ZERO)
            if got < filled:
                return  # the trades have not all arrived yet
            if trades:
                self._quote_trades.pop(oid, None)
                exact = self.caps.trades_from_id == "fromId"
                fills = [fill_of(oid, t, self.instrument, exact) for t in trades]
                self._emit(
                    *(
                        OrderFilled(oid, f.ts, f, last=i == len(fills) - 1)
                        for i, f in enumerate(fills)
                    )
                )
        elif order.filled_qty < filled:
            return  # fills still to come
        if order.status.is_open:
            status = final["status"]
            if status == "canceled":
                self._emit(OrderCancelled(oid, self._now(), "cancelled on the exchange"))
            elif status in ("expired", "rejected"):
                self._emit(OrderExpired(oid, self._now()))
        self._forget(oid, order)
