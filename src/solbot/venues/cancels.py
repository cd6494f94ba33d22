"""The live venue's cancels: one order, an order list as one (``DELETE orderList``: both
legs at once), every order of the symbol for the kill switch (``DELETE openOrders``, which
cancels order lists too: ``rest-api.md`` "Cancel all Open Orders on a Symbol"), each answer
taken as the confirmation — it reports each order's status and executed quantity ("Cancel
order", "Cancel Order list") — and, after the kill's cancels, the wait for orders still in
flight (``settle``). ``LiveVenue`` holds the state they read and write."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ccxt.base import errors as cx

from solbot.domain.orders import Order
from solbot.domain.values import OrderId
from solbot.venues.capabilities import Capabilities
from solbot.venues.clients import ExchangeClient
from solbot.venues.exchange import short
from solbot.venues.traffic import urgent

log = logging.getLogger(__name__)

SETTLE_POLL = 0.5  # s between looks at orders whose end the order query does not tell yet


class ExchangeCancels:
    if TYPE_CHECKING:
        ex: ExchangeClient
        caps: Capabilities
        symbol: str
        orders: dict[OrderId, Order]
        client_ids: dict[OrderId, str]
        _sending: set[OrderId]
        unsettled: set[OrderId]
        _stopping: bool
        _kick: asyncio.Event

        async def call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any: ...
        async def lookup(self, cid: str) -> dict[str, Any] | None: ...
        async def sync(self) -> None: ...
        def client_id(self, order_id: OrderId) -> str: ...
        def _finish(self, oid: OrderId, order: Order, final: dict[str, Any]) -> None: ...
        def _spawn(self, coro: Coroutine[Any, Any, None]) -> None: ...

    async def _cancel(self, oid: OrderId) -> None:
        with urgent():
            await self._cancel_now(oid)

    async def _cancel_now(self, oid: OrderId) -> None:
        """Cancel one order — or, for an OCO's leg, its order list (``DELETE orderList``:
        both legs go at once) — and take the answer as the confirmation: it reports each
        order's status and executed quantity ("Cancel order", "Cancel Order list"). What the
        answer does not settle (a fill we have not seen yet) the next sync does."""
        order = self.orders.get(oid)
        try:
            stop = self._list_stop(order)
            if stop is not None:
                params = {"symbol": self.ex.market(self.symbol)["id"]}
                params["listClientOrderId"] = f"{stop.client_id}L"
                resp = await self.call(self.ex.private_delete_orderlist, params)
                for r in resp.get("orderReports") or []:
                    self._confirmed(r.get("origClientOrderId") or r.get("clientOrderId"), r)
            elif self.caps.cancel_param is not None:
                params = {self.caps.cancel_param: self.client_id(oid)}
                resp = await self.call(self.ex.cancel_order, None, self.symbol, params)
                if isinstance(resp, dict) and isinstance(resp.get("info"), dict):
                    self._confirmed(self.client_id(oid), resp["info"])
            else:
                venue_id = order.venue_order_id if order is not None else None
                if not venue_id:
                    found = await self.lookup(self.client_id(oid))
                    venue_id = str(found["id"]) if found else None
                if venue_id:
                    await self.call(self.ex.cancel_order, venue_id, self.symbol)
        except (cx.OrderNotFound, cx.OperationRejected, cx.InvalidOrder):
            pass  # already ended (or never arrived): the next sync settles it
        except Exception as exc:
            log.warning("cancel %s failed: %s", oid, short(exc))
        self._kick.set()

    def _list_stop(self, order: Order | None) -> Order | None:
        """The stop leg of the order list ``order`` belongs to (it names the list)."""
        if order is None or order.oco_group is None or not self.caps.order_lists:
            return None
        legs = [o for o in self.orders.values() if o.oco_group == order.oco_group]
        return next((o for o in legs if o.type.is_stop), None) if len(legs) == 2 else None

    def _confirmed(self, cid: Any, report: dict[str, Any]) -> None:
        """A Binance order report from a cancel's answer: end our order if it is settled."""
        oid = next((o for o, c in self.client_ids.items() if c == cid), None)
        order = self.orders.get(oid) if oid is not None else None
        status = str(report.get("status", "")).lower()
        if order is None or oid is None or not order.status.is_open or oid in self._sending:
            return
        final = {"status": "canceled" if status == "canceled" else status, "info": report}
        if final["status"] in ("canceled", "expired", "rejected"):
            self._finish(oid, order, final)

    async def cancel_all(self) -> int:
        """Kill switch: cancel every open order of the symbol on the exchange (Binance's
        ``DELETE openOrders`` cancels order lists too), then verify."""
        with urgent():
            return await self._cancel_all()

    async def settle(self, seconds: float) -> int:
        """After the kill's cancels: wait (at most ``seconds``) for the outcome of orders
        still in flight — a lost answer is looked up for up to ``recvWindow`` plus the lookup
        lag — and for the end of orders that ended at the exchange before the cancel reached
        them (an OCO leg that expired as its sibling filled: the order query lags), so our
        books hold what the exchange did with them; none is sent again. Returns how many
        stay in flight (the next start resolves them, and any end still untold)."""
        deadline = time.monotonic() + seconds
        synced = time.monotonic()
        while (self._sending or self.unsettled) and time.monotonic() < deadline:
            if self.unsettled and time.monotonic() - synced >= SETTLE_POLL:
                with contextlib.suppress(Exception):  # a failed look: the next one
                    await self.sync()
                synced = time.monotonic()
                continue
            self._kick.clear()
            with contextlib.suppress(TimeoutError):  # not wait_for: it can swallow a cancel
                async with asyncio.timeout(max(0.0, min(0.2, deadline - time.monotonic()))):
                    await self._kick.wait()
        return len(self._sending)

    def needs_settling(self) -> bool:
        """Orders in flight, or ended at the exchange with their end not yet known."""
        return bool(self._sending or self.unsettled)

    async def _cancel_all(self) -> int:
        self._stopping = True
        if self.caps.order_lists:  # Binance: the answer reports every order it cancelled
            with contextlib.suppress(cx.OrderNotFound):
                params = {"symbol": self.ex.market(self.symbol)["id"]}
                for item in await self.call(self.ex.private_delete_openorders, params) or []:
                    for r in item.get("orderReports") or [item]:  # an order list, or an order
                        self._confirmed(r.get("origClientOrderId") or r.get("clientOrderId"), r)
        elif self.caps.cancel_all:
            with contextlib.suppress(cx.OrderNotFound):
                await self.call(self.ex.cancel_all_orders, self.symbol)
        left = await self.call(self.ex.fetch_open_orders, self.symbol)
        for o in left:  # anything that slipped in: one by one
            with contextlib.suppress(cx.OrderNotFound, cx.OperationRejected):
                await self.call(self.ex.cancel_order, o["id"], self.symbol)
        left = await self.call(self.ex.fetch_open_orders, self.symbol)
        await self.sync()
        return len(left)
