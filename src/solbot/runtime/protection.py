"""Protection that rests at the exchange, after a restart and while running: a position must
carry a stop at the exchange. A restart keeps the order lists (OCOs) protecting it; the
part of a position above the minimum that no resting stop covers — its OCO ended while we
were away, or we died between an entry's (or an add's) fill and its OCO — gets its protection
back, at the prices of the list still resting, else the newest bracket's plan (recorded before
its entry was sent), else the newest OCO's prices on record — at start, at every
reconciliation cycle and as soon as a protecting leg ends without our asking. Only for
strategies that protect with brackets; never after a kill, nor while an exit waits."""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from typing import TYPE_CHECKING

from solbot.domain.messages import (
    Event,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
)
from solbot.domain.orders import Order
from solbot.domain.values import ZERO, OrderType, Side
from solbot.runtime.sleeve import bracket_plan
from solbot.venues.live import NOT_RESENT

if TYPE_CHECKING:
    from solbot.runtime.account import Account
    from solbot.runtime.sleeve import Sleeve

log = logging.getLogger(__name__)


Prices = tuple[Decimal, Decimal, str, int | None]  # stop, take-profit, tag, trailing bps


def protection_legs(sleeve: Sleeve) -> list[Order]:
    """The resting stop legs of order lists that reduce the sleeve's position."""
    pf = sleeve.engine.portfolio
    return [
        o for o in pf.open_orders() if o.oco_group is not None and o.reduce_only and o.type.is_stop
    ]


def protected_groups(sleeve: Sleeve) -> set[str | None]:
    """The order lists resting for the sleeve's position (a stop leg that reduces it)."""
    pf = sleeve.engine.portfolio
    if sleeve.instrument.qty(pf.position.qty) < sleeve.instrument.min_qty:
        return set()
    return {
        o.oco_group
        for o in pf.open_orders()
        if o.oco_group is not None and o.reduce_only and o.type.is_stop
    }


class Protector:
    def __init__(self, account: Account) -> None:
        self.s = account
        self._unprotected_alerted: tuple[str, Decimal] | None = None

    def protect_positions(self) -> None:
        """A long above the minimum with no resting stop (a strategy that protects with
        brackets) gets its protection back: the newest bracket's plan, else the newest OCO's
        prices on record."""
        for sl in self.s.sleeves:
            engine = sl.engine
            inst = sl.instrument
            pf = engine.portfolio
            legs = protection_legs(sl)
            covered = sum((o.quantity - o.filled_qty for o in legs), ZERO)
            qty = inst.qty(min(pf.position.qty - covered, pf.ledger.free(inst.base)))
            groups = {o.oco_group for o in legs}
            if (
                "bracket" not in engine.strategy.needs
                or qty < inst.min_qty
                or qty * sl.mark() < inst.min_notional  # dust: no order could sell it
                or self.s.kill_reason is not None  # a halt keeps protection; a kill does not
                or engine.exits_pending()  # an exit waits for its cancels: it sells the lot
                or any(  # an exit on its way
                    o.status.is_open and o.side is Side.SELL and o.oco_group not in groups
                    for o in pf.open_orders()
                )
            ):
                continue
            prices = self._resting_prices(sl, legs) or self._last_prices(sl)
            if prices is None:
                if self._unprotected_alerted != (sl.symbol, qty):
                    self._unprotected_alerted = (sl.symbol, qty)
                    log.error("%s: a position of %s with no stop on record", sl.symbol, qty)
                    self.s.alerts.send(
                        "P1", "Position unprotected", f"{sl.symbol}: {qty} with no stop on record"
                    )
                continue
            stop, tp, tag, trail = prices
            group = f"oco-r{int(time.time() * 1000)}"
            log.warning(
                "%s: re-protecting %s %s (stop %s, take-profit %s)", sl.symbol, qty, inst.base,
                stop, tp,
            )  # fmt: skip
            self.s.store.audit(
                "re-protected",
                {"symbol": sl.symbol, "qty": str(qty), "stop": str(stop), "take_profit": str(tp)},
            )
            engine.protect(qty, Side.SELL, stop, tp, tag, group, trail)

    def leg_ended(self, sleeve: Sleeve, event: Event) -> None:
        """An engine listener: a leg of an order list protecting the position ended without
        our asking (cancelled at the exchange, expired) — re-protect now, not at the next
        reconciliation cycle (soon after, once the list's last leg has released its base).
        Likewise an exit at market whose outcome stayed unknown and that is not on the
        exchange (a market order is never resent): the position is left as it was, with no
        stop — protecting it again sells it at market again if it is past its stop."""
        if not isinstance(event, OrderRejected | OrderCancelled | OrderExpired):
            return  # not an order's event (a trading state change, …)
        order = sleeve.engine.portfolio.orders.get(event.order_id)
        if (
            isinstance(event, OrderRejected)
            and order is not None
            and order.reduce_only
            and order.oco_group is None
            and NOT_RESENT in event.reason
        ):
            asyncio.get_running_loop().call_soon(self.protect_positions)
            return
        if not isinstance(event, OrderCancelled | OrderExpired):
            return
        if (
            order is not None
            and order.oco_group is not None
            and order.reduce_only
            and not sleeve.engine.cancel_requested(order.order_id)
        ):
            asyncio.get_running_loop().call_soon(self.protect_positions)

    @staticmethod
    def _resting_prices(sleeve: Sleeve, legs: list[Order]) -> Prices | None:
        """The prices of the order list protecting the rest of the position, if one rests."""
        for stop in legs:
            tp = next(
                (
                    o
                    for o in sleeve.engine.portfolio.open_orders()
                    if o.oco_group == stop.oco_group and o.type is OrderType.LIMIT
                ),
                None,
            )
            if tp is not None and tp.price is not None and stop.trigger_price is not None:
                return stop.trigger_price, tp.price, stop.tag, stop.trailing_bps
        return None

    def _last_prices(self, sleeve: Sleeve) -> Prices | None:
        plan = bracket_plan(self.s.store.restore(sleeve.symbol).kv)
        if plan is not None:
            b = plan[1]
            return b.stop_loss, b.take_profit, b.tag, b.trail_bps
        stop = self.s.store.last_protection(sleeve.symbol)
        if stop is None or stop.trigger_price is None:
            return None
        legs = self.s.store.order_rows(stop.oco_group or "")
        tp = next((r.price for r in legs if r.type == OrderType.LIMIT.value), None)
        trail = stop.trailing_bps
        return None if tp is None else (stop.trigger_price, tp, stop.tag, trail)
