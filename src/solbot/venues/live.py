"""The live venue: orders through async ccxt to a real exchange (or the local emulator).

* **Idempotent orders.** Every order is sent with a client order id derived from its intent
  (``<prefix><order id>``; order ids come from the persisted sequence, and the intent is on
  disk before ``submit`` is called). When the outcome of a send is unknown (timeout, 5xx,
  Binance -1007) the order is looked up by that client id before anything is resent, so one
  intent never becomes two orders. (Binance only refuses a duplicate client id among *open*
  orders, so the lookup — which also finds filled and cancelled orders — is what makes this
  safe.)
* **Errors by what must happen next.** Temporary (network, 5xx): retry with backoff.
  429: wait ``Retry-After``; new orders wait while degraded, cancels keep flowing. 418: stop
  sending anything until the ban ends and tell the service (it halts new orders and alerts
  P1). Authentication/permission: tell the service (it halts and alerts P0). An exchange
  rejection becomes ``OrderRejected`` with the exchange's reason.
* **Fills and endings** come from polling ``myTrades`` (by trade id) and order status, so
  the same code path serves normal running and catching up after a restart.

Reports go to the engine through the bound sink; ``after`` is then called so the engine
applies them (it persists each event through its listeners).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ccxt.base import errors as cx

from solbot.domain.instruments import Instrument
from solbot.domain.messages import (
    Bar,
    Fill,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
)
from solbot.domain.orders import Order, OrderStatus
from solbot.domain.values import ZERO, Liquidity, OrderId, OrderType, Side, TradeId
from solbot.engine.ports import EventSink
from solbot.venues.capabilities import Capabilities
from solbot.venues.exchange import classify, retry_after

log = logging.getLogger(__name__)

OPEN_STATUSES = ("open",)


@dataclass(slots=True)
class VenueHealth:
    errors: dict[str, int] = field(default_factory=dict)
    degraded_until: float = 0.0  # 429: new orders wait
    banned_until: float = 0.0  # 418: nothing is sent
    unknown_outcomes: int = 0
    resends: int = 0
    lookups_found: int = 0


class LiveVenue:
    def __init__(
        self,
        exchange: Any,
        instrument: Instrument,
        client_prefix: str = "solbot-",
        poll: float = 0.5,
        on_error: Callable[[str], None] | None = None,
        on_alarm: Callable[[str, str], None] | None = None,
        on_recovered: Callable[[str], None] | None = None,
        max_backoff: float = 5.0,
        dead_man_seconds: float = 60.0,
        health: VenueHealth | None = None,
    ) -> None:
        """``health``: shared by the venues of several symbols on one client, so a ban
        (one IP) or a rate-limit window seen by one holds them all."""
        self.ex = exchange
        self.caps = Capabilities.of(exchange)
        self.dead_man_seconds = dead_man_seconds
        self._dead_man_next = 0.0
        self.dead_man_armed = False
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.prefix = client_prefix
        self.poll = poll
        self.health = health or VenueHealth()
        self._sink: EventSink | None = None
        self.after: Callable[[], None] = lambda: None
        self._on_error = on_error or (lambda kind: None)
        self._on_alarm = on_alarm or (lambda sev, text: None)
        self._on_recovered = on_recovered or (lambda what: None)
        self._ban_reported = False
        self._max_backoff = max_backoff
        self.orders: dict[OrderId, Order] = {}  # ours, by our id
        self.by_venue_id: dict[str, OrderId] = {}
        self.seen_trades: set[str] = set()
        self.next_trade_id = 0  # fills by trade id (Binance ``fromId``)
        self.trades_since: int | None = None  # fills by time (other exchanges), ms
        self._quote_trades: dict[OrderId, list[dict[str, Any]]] = {}
        self._cancel_wanted: set[OrderId] = set()
        self._sending: set[OrderId] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._kick = asyncio.Event()
        self._closed = False

    # ---------------------------------------------------------------- Venue port
    def bind(self, sink: EventSink) -> None:
        self._sink = sink

    def client_id(self, order_id: OrderId) -> str:
        return f"{self.prefix}{order_id}"

    def submit(self, order: Order) -> None:
        self.orders[order.order_id] = order
        self._sending.add(order.order_id)
        self._spawn(self._send(order))

    def cancel(self, order_id: OrderId) -> None:
        self._cancel_wanted.add(order_id)
        if order_id not in self._sending:
            self._spawn(self._cancel(order_id))

    def on_bar(self, bar: Bar) -> None:
        return None  # the exchange matches; fills arrive by polling

    # ---------------------------------------------------------------- plumbing
    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            log.error("venue task failed: %s", _short(exc), exc_info=exc)
            self._on_alarm("P1", f"venue task failed: {_short(exc)}")

    def _emit(self, *events: Any) -> None:
        if self._sink is None:
            raise RuntimeError("venue is not bound to an engine")
        for e in events:
            self._sink(e)
        self.after()

    def _error(self, kind: str) -> None:
        self.health.errors[kind] = self.health.errors.get(kind, 0) + 1
        self._on_error(kind)

    def _retry_after(self) -> float:
        return retry_after(self.ex)

    def ban_left(self) -> float:
        """Seconds until the exchange's ban (418) ends; 0 when not banned."""
        return max(0.0, self.health.banned_until - time.monotonic())

    async def _gate(self, entry: bool) -> None:
        """Wait out a ban (everything) or a rate-limit window (new orders only)."""
        while True:
            now = time.monotonic()
            until = self.health.banned_until
            if entry:
                until = max(until, self.health.degraded_until)
            if now >= until:
                return
            await asyncio.sleep(min(until - now, 1.0))

    def _handle_limits(self, kind: str) -> None:
        if kind == "rate_limited":
            self.health.degraded_until = time.monotonic() + self._retry_after()
        elif kind == "banned":
            ban = max(self._retry_after(), 5.0)
            first = time.monotonic() >= self.health.banned_until
            self.health.banned_until = time.monotonic() + ban
            if first:
                self._ban_reported = True
                self._on_alarm(
                    "P1", f"exchange banned this IP (HTTP 418); nothing sent for {ban:.0f}s"
                )
        elif kind == "auth":
            self._on_alarm("P0", "exchange refused our API key (authentication/permission)")

    def _check_ban_over(self) -> None:
        if self._ban_reported and time.monotonic() >= self.health.banned_until:
            self._ban_reported = False
            self._on_recovered("the exchange's ban (HTTP 418) is over")

    def busy(self) -> bool:
        """Orders in flight (sent, outcome not yet known: a fill of theirs is not applied
        yet) or trades seen but not yet applied (a quote-sized order's trades are merged at
        its end). A resting order waiting for its cancel moves no balance total."""
        return bool(self._sending or self._quote_trades)

    def _backoff(self, attempt: int) -> float:
        base: float = min(self._max_backoff, 0.1 * 2.0**attempt)
        return base * (0.5 + random.random() / 2)

    async def call(self, fn: Callable[..., Any], *args: Any, entry: bool = False, **kw: Any) -> Any:
        """An idempotent read or a cancel, retried through temporary errors."""
        attempt = 0
        while True:
            await self._gate(entry)
            try:
                return await fn(*args, **kw)
            except Exception as exc:
                kind = classify(exc)
                self._error(kind)
                self._handle_limits(kind)
                if kind in ("not_found", "rejected", "auth", "error"):
                    raise
                attempt += 1
                await asyncio.sleep(self._backoff(attempt))

    # ---------------------------------------------------------------- orders
    def _request(self, order: Order) -> tuple[str, str, float | None, float | None, dict[str, Any]]:
        params: dict[str, Any] = {self.caps.client_id_param: self.client_id(order.order_id)}
        side = order.side.value
        amount: float | None = float(order.quantity) if order.quantity > ZERO else None
        price: float | None = None
        if order.type is OrderType.MARKET:
            otype = "market"
            if order.quote_quantity is not None:
                params["quoteOrderQty"] = f"{order.quote_quantity:f}"
                amount = None
        elif order.type is OrderType.STOP_MARKET:
            otype = "market"
            params["stopPrice"] = f"{order.trigger_price:f}"
        else:
            otype = "limit"
            price = float(order.price) if order.price is not None else None
            if order.post_only:
                params["postOnly"] = True
        return otype, side, amount, price, params

    async def _send(self, order: Order) -> None:
        oid = order.order_id
        cid = self.client_id(oid)
        otype, side, amount, price, params = self._request(order)
        attempt = 0
        try:
            while not self._closed:
                await self._gate(entry=True)
                try:
                    resp = await self.ex.create_order(
                        self.symbol, otype, side, amount, price, params
                    )
                except Exception as exc:
                    kind = classify(exc)
                    self._error(kind)
                    self._handle_limits(kind)
                    if kind == "unknown":
                        self.health.unknown_outcomes += 1
                        found = await self.lookup(cid)
                        if found is not None:
                            self.health.lookups_found += 1
                            self._accepted(oid, found)
                            return
                        self.health.resends += 1  # definitely absent: the same intent again
                    elif kind in ("rate_limited", "banned"):
                        pass  # not processed by the exchange: wait, then send again
                    else:
                        self._emit(OrderRejected(oid, self._now(), f"{kind}: {_short(exc)}"))
                        return
                    attempt += 1
                    await asyncio.sleep(self._backoff(attempt))
                    continue
                self._accepted(oid, resp)
                return
        finally:
            self._sending.discard(oid)
            if oid in self._cancel_wanted and order.status.is_open:
                self._spawn(self._cancel(oid))

    async def lookup(self, cid: str) -> dict[str, Any] | None:
        """The exchange's order for a client id, or None when it definitely does not exist
        (Binance: by ``origClientOrderId``; elsewhere: open orders, then recent closed ones)."""
        if self.caps.lookup_param is not None:
            try:
                params = {self.caps.lookup_param: cid}
                return dict(await self.call(self.ex.fetch_order, None, self.symbol, params))
            except cx.OrderNotFound:
                return None
        candidates = list(await self.call(self.ex.fetch_open_orders, self.symbol))
        if self.caps.fetch_closed_orders:
            candidates += await self.call(self.ex.fetch_closed_orders, self.symbol, None, 500)
        for o in candidates:
            if o.get("clientOrderId") == cid:
                return dict(o)
        return None

    def _accepted(self, oid: OrderId, resp: dict[str, Any]) -> None:
        venue_id = str(resp.get("id") or "")
        self.by_venue_id[venue_id] = oid
        order = self.orders.get(oid)
        if order is not None and order.status is OrderStatus.SUBMITTED:
            self._emit(OrderAccepted(oid, self._now(), venue_id))
        self._kick.set()

    async def _cancel(self, oid: OrderId) -> None:
        try:
            if self.caps.cancel_param is not None:
                params = {self.caps.cancel_param: self.client_id(oid)}
                await self.call(self.ex.cancel_order, None, self.symbol, params)
            else:
                order = self.orders.get(oid)
                venue_id = order.venue_order_id if order is not None else None
                if not venue_id:
                    found = await self.lookup(self.client_id(oid))
                    venue_id = str(found["id"]) if found else None
                if venue_id:
                    await self.call(self.ex.cancel_order, venue_id, self.symbol)
        except (cx.OrderNotFound, cx.OperationRejected, cx.InvalidOrder):
            pass  # already ended (or never arrived): the next sync settles it
        except Exception as exc:
            log.warning("cancel %s failed: %s", oid, _short(exc))
        self._kick.set()

    async def cancel_all(self) -> int:
        """Kill switch: cancel every open order of the symbol on the exchange, then verify."""
        if self.caps.cancel_all:
            with contextlib.suppress(cx.OrderNotFound):
                await self.call(self.ex.cancel_all_orders, self.symbol)
        left = await self.call(self.ex.fetch_open_orders, self.symbol)
        for o in left:  # anything that slipped in: one by one
            await self.call(self.ex.cancel_order, o["id"], self.symbol)
        left = await self.call(self.ex.fetch_open_orders, self.symbol)
        await self.sync()
        return len(left)

    # ---------------------------------------------------------------- fills and endings
    def _now(self) -> int:
        return time.time_ns() // 1_000_000

    def _fill(self, oid: OrderId, t: dict[str, Any]) -> Fill:
        # Binance's own strings are exact; ccxt's unified numbers are floats
        info = (t.get("info") or {}) if self.caps.trades_from_id == "fromId" else {}
        inst = self.instrument
        qty = Decimal(str(info.get("qty", t["amount"])))
        price = Decimal(str(info.get("price", t["price"])))
        fee = t.get("fee") or {}
        return Fill(
            order_id=oid,
            trade_id=TradeId(str(t["id"])),
            symbol=inst.symbol,
            side=Side.BUY if t["side"] == "buy" else Side.SELL,
            quantity=qty,
            price=price,
            fee=Decimal(str(info.get("commission", fee.get("cost") or 0))),
            fee_asset=str(info.get("commissionAsset", fee.get("currency") or inst.quote)),
            liquidity=Liquidity.MAKER if t.get("takerOrMaker") == "maker" else Liquidity.TAKER,
            ts=int(t.get("timestamp") or self._now()),
        )

    async def run(self) -> None:
        """Poll trades and order states until closed."""
        while not self._closed:
            try:
                await self.keep_dead_man()
                await self.sync()
                self._check_ban_over()
            except Exception as exc:  # a failed poll is retried at the next one
                kind = classify(exc)
                self._error(kind)
                self._handle_limits(kind)
                log.warning("venue sync failed (%s): %s", kind, _short(exc))
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.poll)

    async def keep_dead_man(self) -> None:
        """Where the exchange has one, keep its dead man's switch armed: if we stop renewing
        it (crash, network loss), the exchange cancels our open orders."""
        if not self.caps.dead_mans_switch or time.monotonic() < self._dead_man_next:
            return
        await self.call(self.ex.cancel_all_orders_after, int(self.dead_man_seconds * 1000))
        self.dead_man_armed = True
        self._dead_man_next = time.monotonic() + self.dead_man_seconds / 4

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

    async def sync(self) -> None:
        # 1. new trades, in order. A trade of an order we cannot place yet stops the cursor
        # while any send is in flight: it may be ours, accepted but not yet answered (a
        # timeout, a lookup in progress); it is read again at the next poll. With nothing in
        # flight it is someone else's, and reconciliation reports it.
        while True:
            before = (self.next_trade_id, self.trades_since)
            trades = await self._my_trades()
            fills = []
            held = False
            for t in trades:
                tid = str(t["id"])
                oid = self.by_venue_id.get(str(t.get("order")))
                if oid is None and tid not in self.seen_trades and self._sending:
                    held = True
                    break
                self._advance_cursor(t)
                if tid in self.seen_trades or oid is None:
                    continue
                self.seen_trades.add(tid)
                order = self.orders.get(oid)
                if order is not None and order.quote_quantity is not None:
                    self._quote_trades.setdefault(oid, []).append(t)
                else:
                    fills.append(OrderFilled(oid, int(t["timestamp"]), self._fill(oid, t)))
            if fills:
                self._emit(*fills)
            if held or len(trades) < 1000 or (self.next_trade_id, self.trades_since) == before:
                break
        # 2. orders of ours that are no longer open on the exchange
        open_ids = {str(o["id"]) for o in await self.call(self.ex.fetch_open_orders, self.symbol)}
        for oid, order in list(self.orders.items()):
            if not order.status.is_open or oid in self._sending or not order.venue_order_id:
                if not order.status.is_open:
                    self.orders.pop(oid, None)
                continue
            if order.venue_order_id in open_ids:
                if oid in self._cancel_wanted:
                    self._spawn(self._cancel(oid))
                continue
            final = await self.lookup(self.client_id(oid))
            if final is None or final["status"] in OPEN_STATUSES:
                continue
            self._finish(oid, order, final)

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
                self._emit(OrderFilled(oid, int(trades[-1]["timestamp"]), self._merge(oid, trades)))
        elif order.filled_qty < filled:
            return  # fills still to come
        if order.status.is_open:
            status = final["status"]
            if status == "canceled":
                self._emit(OrderCancelled(oid, self._now(), "cancelled on the exchange"))
            elif status in ("expired", "rejected"):
                self._emit(OrderExpired(oid, self._now()))
        self._cancel_wanted.discard(oid)
        self.orders.pop(oid, None)

    def _merge(self, oid: OrderId, trades: list[dict[str, Any]]) -> Fill:
        """A quote-sized market order's trades as one fill (the domain applies one report)."""
        fills = [self._fill(oid, t) for t in trades]
        qty = sum((f.quantity for f in fills), ZERO)
        notional = sum((f.quantity * f.price for f in fills), ZERO)
        first = fills[0]
        return Fill(
            order_id=oid,
            trade_id=TradeId("+".join(f.trade_id for f in fills)),
            symbol=first.symbol,
            side=first.side,
            quantity=qty,
            price=notional / qty,
            fee=sum((f.fee for f in fills), ZERO),
            fee_asset=first.fee_asset,
            liquidity=first.liquidity,
            ts=fills[-1].ts,
        )

    async def disarm_dead_man(self) -> None:
        """A deliberate stop that leaves orders resting must not have them cancelled later."""
        if self.dead_man_armed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ex.cancel_all_orders_after(0), timeout=5.0)
            self.dead_man_armed = False

    async def close(self, client: bool = True) -> None:
        """Stop this venue's tasks; ``client``: close the exchange client too (the last of
        several venues sharing it)."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if client:
            await self.ex.close()


def _short(exc: BaseException) -> str:
    text = str(exc).replace("\n", " ")
    return f"{type(exc).__name__}: {text[:200]}"
