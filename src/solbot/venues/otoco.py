"""The live venue's resting bracket entries: an OTOCO (binance/binance-spot-api-docs,
``rest-api.md`` "New Order list - OTOCO (TRADE)") — the entry is the *working* order, the
bracket's stop and take-profit its *pending* pair, which the exchange places on the book the
moment the entry has fully filled. No moment passes with the position unprotected, and the
exits need no request of ours after the fill.

* **Sizing.** ``pendingQuantity`` is fixed when the list is placed, before anyone knows the
  commission: a buy's commission is taken in the base unless it is paid in BNB
  (``faqs/commission_faq.md``), so the pair sells the entry's quantity less the larger of
  the maker and taker rates, rounded down to the lot. What that leaves (a fee paid in BNB:
  0.1 % of the position) is dust below the minimum notional for any position we size.
* **Client ids** follow from the entry's: ``<entry>S`` (stop), ``<entry>T`` (take-profit),
  the list ``<entry>SL`` (``<stop>L``, as an OCO's, so one cancel path names both). When the
  entry fills, the engine arms the bracket as always and the venue *adopts* the pair under
  those ids (``pending_exits``) instead of sending an OCO: their exchange ids come from the
  list's answer — or, after a restart or a lost answer, from the order query over the lookup
  window; absent there (the list was refused and the entry went alone), an OCO is sent
  under the same ids.
* **Not a list.** An entry that is not a plain limit buy, a pair below the minimum, or a
  symbol without ``otoAllowed`` goes as a plain order; so does the entry of a list the
  exchange refused (e.g. its prices do not straddle the last price, ``errors.md`` "The
  relationship of the prices for the orders is not correct."): its exits are then armed
  after the fill, as for a market entry.
* **Endings.** "If either the working order or the pending order is cancelled individually,
  the other order in the order list will also be canceled or expired" (the OTO section):
  cancelling the entry cancels the pair. A partly filled entry that ends has no pair (it is
  placed only on a full fill): the engine protects what filled with an OCO of its own.
* **Pending orders are ours.** Until the entry fills they are ``PENDING_NEW`` ("The order is
  in a pending phase until the working order of an order list has been fully filled",
  ``enums.md``); the documents do not say whether ``openOrders`` lists them, so
  reconciliation counts them as ours by their client ids (``pending_client_ids``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from solbot.domain.instruments import Instrument
from solbot.domain.orders import Order
from solbot.domain.values import ZERO, OrderId, OrderType, Side
from solbot.engine.ports import ExitPlan, PendingExits
from solbot.venues.capabilities import Capabilities
from solbot.venues.clients import ExchangeClient
from solbot.venues.requests import otoco_params


@dataclass(slots=True)
class Resting:
    """A bracket entry sent (or restored) as an OTOCO, and its pending pair."""

    entry: Order
    quantity: Decimal
    stop_cid: str
    tp_cid: str
    ids: dict[str, str] = field(default_factory=dict)  # client id -> exchange id, if known

    @property
    def list_cid(self) -> str:
        return f"{self.stop_cid}L"


def pending_quantity(inst: Instrument, entry: Order) -> Decimal:
    """What the pending pair sells: the entry less the commission it may take in the base."""
    rate = max(inst.maker_fee, inst.taker_fee, ZERO)
    return inst.qty(entry.quantity * (1 - rate))


class ExchangeOtoco:
    if TYPE_CHECKING:
        ex: ExchangeClient
        caps: Capabilities
        symbol: str
        instrument: Instrument
        orders: dict[OrderId, Order]
        _sending: set[OrderId]
        _stopping: bool
        _cancel_wanted: set[OrderId]

        def remember(self, order: Order) -> None: ...
        def submit(self, order: Order) -> None: ...
        def _spawn(self, coro: Coroutine[Any, Any, None]) -> None: ...
        def _accepted(self, oid: OrderId, resp: dict[str, Any]) -> None: ...
        async def _send(self, order: Order) -> None: ...
        async def _send_oco(self, stop: Order, tp: Order, look_first: bool = False) -> None: ...
        async def _send_legs(
            self,
            legs: list[Order],
            request: Callable[[], Awaitable[Any]],
            answered: Callable[[dict[str, Any]], None],
            on_refused: Callable[[str], bool] | None = None,
            look_first: bool = False,
        ) -> None: ...

    resting: dict[str, Resting]

    def _otoco_allowed(self) -> bool:
        if not self.caps.order_lists:
            return False
        try:
            info = self.ex.market(self.symbol).get("info") or {}
        except Exception:  # markets not loaded: no list
            return False
        return bool(info.get("otoAllowed")) and bool(info.get("ocoAllowed", True))

    def _resting_of(self, entry: Order) -> Resting | None:
        inst = self.instrument
        if (
            entry.type is not OrderType.LIMIT
            or entry.side is not Side.BUY
            or entry.reduce_only
            or entry.price is None
            or not self._otoco_allowed()
        ):
            return None
        qty = pending_quantity(inst, entry)
        if qty < inst.min_qty or qty * entry.price < inst.min_notional:
            return None
        cid = entry.client_id
        return Resting(entry, qty, f"{cid}S", f"{cid}T")

    # ---------------------------------------------------------------- Venue port
    def submit_bracket(self, entry: Order, exits: ExitPlan) -> None:
        self.remember(entry)
        rest = self._resting_of(entry)
        if rest is None:
            self.submit(entry)
            return
        self.resting[exits.group] = rest
        self._sending.add(entry.order_id)
        self._spawn(self._send_otoco(rest, exits))

    def pending_exits(self, group: str) -> PendingExits | None:
        rest = self.resting.get(group)
        if rest is None or rest.entry.filled_qty < rest.entry.quantity:
            return None  # never sent as a list, or not fully filled: no pair was placed
        return PendingExits(rest.quantity, rest.stop_cid, rest.tp_cid)

    def restore_resting(self, entry: Order, exits: ExitPlan) -> None:
        """A restart: an open bracket entry of a previous run, sent as an OTOCO if it could
        be (its pair's exchange ids are looked up when it fills)."""
        self.remember(entry)
        rest = self._resting_of(entry)
        if rest is not None:
            self.resting[exits.group] = rest

    def pending_client_ids(self) -> set[str]:
        return {c for r in self.resting.values() for c in (r.stop_cid, r.tp_cid)}

    def adopt(self, stop: Order, tp: Order) -> bool:
        """The engine arms exits the exchange placed with their entry: record them under
        their exchange ids (from the list's answer), or look them up (else send an OCO)."""
        group = stop.oco_group or ""
        rest = self.resting.get(group)
        if rest is None or stop.client_id != rest.stop_cid or tp.client_id != rest.tp_cid:
            return False
        del self.resting[group]
        for o in (stop, tp):
            self.remember(o)
        if rest.stop_cid in rest.ids and rest.tp_cid in rest.ids:
            self._accepted(stop.order_id, {"id": rest.ids[rest.stop_cid]})
            self._accepted(tp.order_id, {"id": rest.ids[rest.tp_cid]})
            return True
        for o in (stop, tp):
            self._sending.add(o.order_id)
        # looked up under their client ids; absent (the list was refused), sent as an OCO
        # under the same ids (its list id ``<stop>L`` is the OTOCO's)
        self._spawn(self._send_oco(stop, tp, look_first=True))
        return True

    def forget_resting(self, entry_id: OrderId) -> None:
        """The entry ended unfilled (or partly): its pair is gone with it."""
        self.resting.pop(f"oco-{entry_id}", None)

    # ---------------------------------------------------------------- sending
    async def _send_otoco(self, rest: Resting, exits: ExitPlan) -> None:
        entry = rest.entry
        stop = _leg(entry, exits.stop, rest.quantity, rest.stop_cid, exits.group)
        tp = _leg(entry, exits.take_profit, rest.quantity, rest.tp_cid, exits.group)
        params = otoco_params(self.ex, entry, stop, tp, rest.quantity, rest.list_cid)
        refused: list[str] = []

        def answered(resp: dict[str, Any]) -> None:
            reports = resp.get("orderReports") or resp.get("orders") or []
            rest.ids.update({str(r.get("clientOrderId")): str(r.get("orderId")) for r in reports})
            self._accepted(entry.order_id, {"id": rest.ids.get(entry.client_id, "")})

        def on_refused(reason: str) -> bool:
            if entry.order_id in self._cancel_wanted or self._stopping:
                return False  # it ends here either way
            refused.append(reason)
            return True

        await self._send_legs(
            [entry], lambda: self.ex.private_post_orderlist_otoco(params), answered, on_refused
        )
        if refused:  # the list was refused: the entry goes alone, its exits after the fill
            self.resting.pop(exits.group, None)
            self._sending.add(entry.order_id)
            await self._send(entry)


def _leg(entry: Order, cmd: Any, qty: Decimal, cid: str, group: str) -> Order:
    """A pending leg as an order (for its request's parameters only)."""
    return Order(
        order_id=OrderId(cid),
        symbol=entry.symbol,
        side=cmd.side,
        type=cmd.type,
        quantity=qty,
        price=cmd.price,
        trigger_price=cmd.trigger_price,
        trailing_bps=cmd.trailing_bps,
        post_only=cmd.post_only,
        reduce_only=True,
        oco_group=group,
        client_id=cid,
    )
