"""The live venue: orders through async ccxt to a real exchange (or the local emulator).

What it relies on from Binance (binance/binance-spot-api-docs, ``rest-api.md``) and how:

* **Idempotent orders.** Every order carries a client order id recorded with its intent
  before it is sent: ``<prefix><run salt>-<order id>``. The salt is new at every start, so a
  database restored from a backup (its order numbers run again) cannot meet the orders an
  earlier run sent ("newClientOrderId … Orders with the same ``newClientOrderID`` can be
  accepted only when the previous one is filled": Binance refuses a client id in use among
  *open* orders only).
* **An unknown outcome never becomes a duplicate.** A timeout, a 5xx ("the execution status
  is UNKNOWN and could have been a success") or -1007 leaves the order in flight. The order
  query reads "Memory => Database" ("Data Sources") and may answer -2013 for an order placed
  seconds ago, so -2013 means "not yet known": the order is looked up (order query, then open
  orders) until ``recvWindow`` plus a margin has passed since the send — a request older than
  its ``recvWindow`` is refused by the matching engine ("Timing security") — and only then is
  it taken as absent. An absent limit or stop is sent again under the same client id; an
  absent market order is never resent (P2 alert; reconciliation judges).
* **Errors by what must happen next.** Temporary (network, 5xx): retried with backoff. 429
  and 418: the traffic gate (``venues.traffic``) holds every request until Retry-After has
  passed; a 418 also halts trading (P1) until the ban is over. -1021 (timestamp outside
  ``recvWindow``): the clock is synced with ``/api/v3/time`` and the request sent again; three
  in a row after resyncing halt new orders (P1, the reason in ``/api/status``).
  Authentication/permission: P0 halt. A rejection becomes ``OrderRejected`` with its reason.
* **Order lists.** An OCO goes out as one ``POST /api/v3/orderList/oco`` (its legs share one
  balance lock at the exchange, as in our books) and is cancelled as one, ``DELETE
  orderList`` ("Cancel Order list"), whose answer reports both legs. A resting bracket
  entry goes as an OTOCO with its exits (``venues.otoco``).
* **Confirmations from answers.** A FULL order answer carries its fills ("Response - FULL"),
  a cancel's answer the order's status and executed quantity: both are booked at once. The
  rest — fills and endings — comes from polling (``venues.reports``), the same path in normal
  running and when catching up after a restart.

Reports go to the engine through the bound sink; ``after`` is then called so the engine
applies them (it persists each event through its listeners).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ccxt.base import errors as cx

from solbot import failpoints
from solbot.domain.instruments import Instrument
from solbot.domain.messages import (
    Bar,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
)
from solbot.domain.orders import Order, OrderStatus
from solbot.domain.values import OrderId, OrderType
from solbot.engine.ports import EventSink
from solbot.venues.cancels import ExchangeCancels
from solbot.venues.capabilities import Capabilities
from solbot.venues.clients import ExchangeClient
from solbot.venues.clock import ExchangeClock
from solbot.venues.exchange import classify, short
from solbot.venues.fills import answer_trades
from solbot.venues.health import VenueHealth
from solbot.venues.otoco import ExchangeOtoco, Resting
from solbot.venues.reports import ExchangeReports
from solbot.venues.requests import oco_params, order_call

log = logging.getLogger(__name__)

LOOKUP_MARGIN = 5.0  # seconds beyond recvWindow before an unseen order is taken as absent
NOT_RESENT = "a market order is never resent"  # the reason's words (the protector reads them)


class LiveVenue(ExchangeClock, ExchangeReports, ExchangeCancels, ExchangeOtoco):
    def __init__(
        self,
        exchange: ExchangeClient,
        instrument: Instrument,
        client_prefix: str = "solbot-",
        poll: float = 0.5,
        on_error: Callable[[str], None] | None = None,
        on_alarm: Callable[[str, str], None] | None = None,
        on_recovered: Callable[[str], None] | None = None,
        max_backoff: float = 5.0,
        dead_man_seconds: float = 60.0,
        health: VenueHealth | None = None,
        run_salt: str | None = None,
    ) -> None:
        """``health``: shared by the venues of several symbols on one client, so a ban
        (one IP) or a clock problem seen by one holds them all. ``run_salt``: this run's
        part of every new client order id (random when not given)."""
        self.ex = exchange
        self.caps = Capabilities.of(exchange)
        self.dead_man_seconds = dead_man_seconds
        self._dead_man_next = 0.0
        self.dead_man_armed = False
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.prefix = client_prefix
        self.salt = run_salt or secrets.token_hex(3)
        self.poll = poll
        self.health = health or VenueHealth()
        self._sink: EventSink | None = None
        self.after: Callable[[], None] = lambda: None
        self._on_error = on_error or (lambda kind: None)
        self._on_alarm = on_alarm or (lambda sev, text: None)
        self._on_recovered = on_recovered or (lambda what: None)
        self._max_backoff = max_backoff
        self.orders: dict[OrderId, Order] = {}  # ours, by our id
        self.by_venue_id: dict[str, OrderId] = {}
        self.client_ids: dict[OrderId, str] = {}
        self.seen_trades: set[str] = set()
        self.next_trade_id = 0  # fills by trade id (Binance ``fromId``)
        self.trades_since: int | None = None  # fills by time (other exchanges), ms
        self._quote_trades: dict[OrderId, list[dict[str, Any]]] = {}
        self._cancel_wanted: set[OrderId] = set()
        self._lists_cancelled: set[str] = set()  # OCO groups whose one cancel is sent
        self._sending: set[OrderId] = set()
        # open in our books, no longer open at the exchange, its end not yet told by the order
        # query (it lags): as of the last sync
        self.unsettled: set[OrderId] = set()
        self.touched_lists: set[str] = set()  # OCO groups with a fill: the other leg is done
        self.resting: dict[str, Resting] = {}  # bracket entries sent as OTOCOs, by group
        self._unbookable: set[str] = set()  # trades reported P0 as impossible to book
        self._tasks: set[asyncio.Task[Any]] = set()
        self._kick = asyncio.Event()
        self._closed = False
        self._stopping = False  # kill switch / cancel on stop: nothing new is sent, or resent
        self.lookup_margin = LOOKUP_MARGIN

    # ---------------------------------------------------------------- Venue port
    def bind(self, sink: EventSink) -> None:
        self._sink = sink

    def client_id(self, order_id: OrderId) -> str:
        return self.client_ids.get(order_id) or f"{self.prefix}{self.salt}-{order_id}"

    def remember(self, order: Order) -> None:
        """Track ``order`` (its client id recorded with it, or derived now)."""
        if not order.client_id:
            order.client_id = self.client_id(order.order_id)
        self.client_ids[order.order_id] = order.client_id
        self.orders[order.order_id] = order

    def known_as(self, oid: OrderId, venue_order_id: str) -> None:
        """The exchange's id of our order ``oid`` (restored from the books, or looked up)."""
        self.by_venue_id[venue_order_id] = oid

    def forget(self, oid: OrderId) -> None:
        """Stop tracking ``oid`` (an intent that never reached the exchange)."""
        self.orders.pop(oid, None)

    def submit(self, order: Order) -> None:
        self.remember(order)
        self._sending.add(order.order_id)
        self._spawn(self._send(order))

    def submit_list(self, orders: list[Order]) -> None:
        if len(orders) != 2 or not self.caps.order_lists:
            for o in orders:  # no order lists here: the legs rest on their own
                self.submit(o)
            return
        stop, tp = sorted(orders, key=lambda o: 0 if o.type.is_stop else 1)
        if self.adopt(stop, tp):  # placed by the exchange with their entry (an OTOCO)
            return
        for o in orders:
            self.remember(o)
            self._sending.add(o.order_id)
        self._spawn(self._send_oco(stop, tp))

    def cancel(self, order_id: OrderId) -> None:
        self._cancel_wanted.add(order_id)
        order = self.orders.get(order_id)
        group = order.oco_group if order is not None else None
        if group is not None and self.caps.order_lists:
            if group in self._lists_cancelled:
                return  # the list's one cancel is on its way
            self._lists_cancelled.add(group)
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
            log.error("venue task failed: %s", short(exc), exc_info=exc)
            self._on_alarm("P1", f"venue task failed: {short(exc)}")

    def _emit(self, *events: Any) -> None:
        if self._sink is None:
            raise RuntimeError("venue is not bound to an engine")
        for e in events:
            if isinstance(e, OrderFilled):
                order = self.orders.get(e.order_id)
                if order is not None and order.oco_group is not None:
                    self.touched_lists.add(order.oco_group)
            elif not isinstance(e, OrderAccepted) and self.resting:
                self.forget_resting(e.order_id)  # an entry that ended: no pair will follow
            self._sink(e)
        self.after()

    def _error(self, kind: str) -> None:
        self.health.errors[kind] = self.health.errors.get(kind, 0) + 1
        self._on_error(kind)

    def ban_left(self) -> float:
        """Seconds until the exchange's ban (418) ends; 0 when not banned."""
        return self.health.traffic.ban_left()

    def check_ban_over(self) -> None:
        if self.health.ban_reported and self.ban_left() <= 0:
            self.health.ban_reported = False
            self._on_recovered("the exchange's ban (HTTP 418) is over")

    def busy(self) -> bool:
        """Orders in flight (sent, outcome not yet known: a fill of theirs is not applied
        yet) or trades seen but not yet applied (a quote-sized order's trades are applied at
        its end). A resting order waiting for its cancel moves no balance total."""
        return bool(self._sending or self._quote_trades)

    def _backoff(self, attempt: int) -> float:
        base: float = min(self._max_backoff, 0.1 * 2.0**attempt)
        return base * (0.5 + random.random() / 2)

    async def _failed(self, exc: BaseException) -> str:
        """Count a failed call and do what its kind needs now (alarm, clock resync)."""
        kind = classify(exc)
        self._error(kind)
        if kind == "auth":
            self._on_alarm("P0", "exchange refused our API key (authentication/permission)")
        elif kind == "clock":
            await self._clock_refused()
        return kind

    async def call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """An idempotent read or a cancel, retried through temporary errors (the traffic
        gate holds it through a 429 window or a ban)."""
        attempt = 0
        while True:
            try:
                out = await fn(*args, **kw)
            except Exception as exc:
                kind = await self._failed(exc)
                if kind in ("not_found", "rejected", "auth", "error"):
                    raise
                if kind == "clock" and self.health.clock_problem is not None:
                    raise
                attempt += 1
                await asyncio.sleep(self._backoff(attempt))
                continue
            self._clock_ok()
            return out

    # ---------------------------------------------------------------- orders
    async def _send(self, order: Order) -> None:
        otype, side, amount, price, params = order_call(order, self.caps)

        def answered(resp: dict[str, Any]) -> None:
            self._accepted(order.order_id, resp)
            self._book_answer(order, resp)

        await self._send_legs(
            [order],
            lambda: self.ex.create_order(self.symbol, otype, side, amount, price, params),
            answered,
        )

    async def _send_oco(self, stop: Order, tp: Order, look_first: bool = False) -> None:
        """The two legs as one Binance order list; its outcome resolved like an order's.
        ``look_first``: it may be at the exchange already (``_send_legs``)."""
        params = oco_params(self.ex, stop, tp, f"{stop.client_id}L")

        def answered(resp: dict[str, Any]) -> None:
            reports = resp.get("orderReports") or resp.get("orders") or []
            by_cid = {str(r.get("clientOrderId")): str(r.get("orderId")) for r in reports}
            for o in (stop, tp):
                self._accepted(o.order_id, {"id": by_cid.get(o.client_id, "")})

        await self._send_legs(
            [stop, tp],
            lambda: self.ex.private_post_orderlist_oco(params),
            answered,
            look_first=look_first,
        )

    async def _send_legs(
        self,
        legs: list[Order],
        request: Callable[[], Awaitable[Any]],
        answered: Callable[[dict[str, Any]], None],
        on_refused: Callable[[str], bool] | None = None,
        look_first: bool = False,
    ) -> None:
        """Send one order or one order list until its outcome is known: answered; found
        after an unknown outcome; refused (``OrderRejected``, unless ``on_refused`` takes
        it); or absent after the lookup window — then sent again under the same client ids,
        unless it holds a market order. ``look_first``: it may be at the exchange already
        (an OTOCO's pending pair): looked up first, sent only if absent."""
        attempt = 0
        since = time.monotonic()
        again = tried = False
        try:
            if look_first:
                found = await self.resolve(legs, since)
                for o in legs:
                    if o.order_id in found:
                        self._accepted(o.order_id, found[o.order_id])
                if found:
                    return
                tried = True
            while not self._closed:
                if self._stopping:  # never sent, refused unprocessed, or absent: not again
                    reason = "not sent: the bot is stopping (kill switch or cancel on stop)"
                    self._emit(*(OrderRejected(o.order_id, self._now(), reason) for o in legs))
                    return
                if tried and any(o.order_id in self._cancel_wanted for o in legs):
                    # not at the exchange (refused unprocessed, or absent after the lookup
                    # window) and cancelled meanwhile — e.g. the stop of an OCO whose answer
                    # was lost, passed by the price: the exit at market waits for this
                    # cancel, so it ends here instead of being sent again. (A first send goes
                    # out even so, and its cancel follows the answer: a strategy that quotes
                    # and requotes faster than the loop starts sends would send nothing.)
                    reason = "cancelled before it reached the exchange"
                    self._emit(*(OrderCancelled(o.order_id, self._now(), reason) for o in legs))
                    return
                self.health.resends += again
                again, tried = False, True
                try:
                    failpoints.hit("order-sending")
                    resp = await request()
                    failpoints.hit("order-answered")
                except Exception as exc:
                    kind = await self._failed(exc)
                    if kind == "unknown" or _duplicate(exc):
                        self.health.unknown_outcomes += kind == "unknown"
                        found = await self.resolve(legs, since)
                        for o in legs:
                            if o.order_id in found:
                                self._accepted(o.order_id, found[o.order_id])
                        if found:
                            return
                        if any(o.type is OrderType.MARKET for o in legs):
                            self._not_resent(legs, since)
                            return
                        again = True  # absent: the same intent, same client ids
                        since = time.monotonic()
                    elif kind not in ("rate_limited", "banned") and (
                        kind != "clock" or self.health.clock_problem is not None
                    ):  # a 429/418/-1021 was refused unprocessed: the gate or clock, then again
                        reason = f"{kind}: {short(exc)}"
                        if on_refused is not None and on_refused(reason):
                            return
                        self._emit(*(OrderRejected(o.order_id, self._now(), reason) for o in legs))
                        return
                    attempt += 1
                    await asyncio.sleep(self._backoff(attempt))
                    continue
                self._clock_ok()
                answered(dict(resp))
                return
        finally:
            for o in legs:
                self._sending.discard(o.order_id)
            self._kick.set()  # an outcome is known: sync now (and wake ``settle``)
            wanted = [o for o in legs if o.order_id in self._cancel_wanted and o.status.is_open]
            if wanted:  # one cancel: a leg's cancels its whole list
                self._spawn(self._cancel(wanted[0].order_id))

    def _book_answer(self, order: Order, resp: dict[str, Any]) -> None:
        """Binance's FULL answer carries the order's trades (``fills``, ``rest-api.md`` "New
        order": "Response - FULL"): book them now instead of at the next ``myTrades`` poll,
        so a bracket's OCO follows its entry at once. The poll then skips them by trade id;
        the cursor is not moved (other orders' trades may lie below these ids)."""
        if order.quote_quantity is not None or not self.caps.order_lists:
            return
        for trade in answer_trades(resp.get("info"), order.side.value, self._now()):
            if trade["id"] in self.seen_trades:
                continue
            if not self._book(order.order_id, trade):
                return
            self.seen_trades.add(trade["id"])

    def _not_resent(self, orders: list[Order], since: float) -> None:
        waited = time.monotonic() - since
        self.health.not_resent += 1
        text = (
            f"{self.symbol}: the outcome of market order(s) "
            f"{', '.join(o.order_id for o in orders)} stayed unknown for {waited:.0f} s and "
            "they are not on the exchange; not resent (reconciliation decides)"
        )
        self._on_alarm("P2", text)
        reason = f"outcome unknown; not found on the exchange; {NOT_RESENT}"
        self._emit(*(OrderRejected(o.order_id, self._now(), reason) for o in orders))

    def _accepted(self, oid: OrderId, resp: dict[str, Any]) -> None:
        venue_id = str(resp.get("id") or "")
        self.by_venue_id[venue_id] = oid
        order = self.orders.get(oid)
        if order is not None and order.status is OrderStatus.SUBMITTED:
            self._emit(OrderAccepted(oid, self._now(), venue_id))
        self._kick.set()

    # ---------------------------------------------------------------- fills and endings
    def _now(self) -> int:
        return time.time_ns() // 1_000_000

    async def run(self) -> None:
        """Poll trades and order states until closed."""
        while not self._closed:
            try:
                await self.keep_dead_man()
                await self.sync()
                self.check_ban_over()
            except Exception as exc:  # a failed poll is retried at the next one
                kind = await self._failed(exc)
                log.warning("venue sync failed (%s): %s", kind, short(exc))
            self._kick.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
            # meets the kick (CPython gh-86296) — the kill's shutdown then waited 5 s for this
            # task, which polled on
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll):
                    await self._kick.wait()

    async def keep_dead_man(self) -> None:
        """Where the exchange has one, keep its dead man's switch armed: if we stop renewing
        it (crash, network loss), the exchange cancels our open orders."""
        if not self.caps.dead_mans_switch or time.monotonic() < self._dead_man_next:
            return
        await self.call(self.ex.cancel_all_orders_after, int(self.dead_man_seconds * 1000))
        self.dead_man_armed = True
        self._dead_man_next = time.monotonic() + self.dead_man_seconds / 4

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


def _duplicate(exc: BaseException) -> bool:
    """Binance -2010 "Duplicate order sent.": our client id is in use among open orders —
    the order we could not see is there (``errors.md``, messages for -2010)."""
    return isinstance(exc, cx.InvalidOrder) and "Duplicate order sent" in str(exc)
