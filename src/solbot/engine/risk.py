"""Pre-trade risk checks. A failed check is a reason string (-> OrderDenied), never an
exception. Trading states: ACTIVE, REDUCING (only exposure-reducing orders), HALTED."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from solbot.domain.orders import Order
from solbot.domain.values import ZERO, OrderType, Side, TradingState
from solbot.engine.portfolio import Portfolio


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_order_value: Decimal | None = None  # quote currency
    max_open_orders: int = 50


ExtraCheck = Callable[[Order, Portfolio, Decimal], str | None]


class RiskEngine:
    """``extra_checks`` run after the built-in ones (e.g. a portfolio-wide exposure cap
    shared by the engines of several symbols)."""

    __slots__ = ("extra_checks", "limits", "reason", "state")

    def __init__(
        self, limits: RiskLimits | None = None, extra_checks: list[ExtraCheck] | None = None
    ) -> None:
        self.limits = limits or RiskLimits()
        self.state = TradingState.ACTIVE
        self.reason = ""
        self.extra_checks = extra_checks or []

    def set_state(self, state: TradingState, reason: str) -> bool:
        changed = state is not self.state
        self.state = state
        self.reason = reason
        return changed

    def check(
        self,
        order: Order,
        portfolio: Portfolio,
        reference_price: Decimal,
        protective: bool = False,
    ) -> str | None:
        """Return why ``order`` must not be sent, or None when it may go. ``protective``:
        the engine's exit at market for a stop that could not rest or was passed."""
        inst = portfolio.instrument
        position = portfolio.position.qty
        reduces = (order.side is Side.SELL and position > ZERO) or (
            order.side is Side.BUY and position < ZERO
        )
        # a halt stops new exposure, not the protection of a position already held: a
        # bracket's exits (reduce-only legs of an order list) still go out — an entry that
        # fills as the daily loss limit halts trading must not be left without its stop —
        # nor without the exit at market that replaces a stop the price is already past.
        # (The kill switch cancels everything; its venue sends nothing more.)
        protective = order.reduce_only and reduces and (order.oco_group is not None or protective)
        if self.state is TradingState.HALTED and not protective:
            return f"trading halted: {self.reason}" if self.reason else "trading halted"
        if self.state is TradingState.REDUCING and not reduces:
            return "trading state REDUCING: only orders that reduce exposure are allowed"
        if order.reduce_only and not reduces:
            return "reduce-only order would increase exposure"
        if portfolio.open_order_count() >= self.limits.max_open_orders:
            return f"open order limit reached ({self.limits.max_open_orders})"

        if order.type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and (
            order.price is None or not inst.price_ok(order.price)
        ):
            return f"limit price {order.price} is not a positive multiple of {inst.tick_size}"
        if order.type.is_stop and (
            order.trigger_price is None or not inst.price_ok(order.trigger_price)
        ):
            return (
                f"trigger price {order.trigger_price} is not a positive multiple "
                f"of {inst.tick_size}"
            )
        if order.post_only and order.type is not OrderType.LIMIT:
            return "post-only applies to limit orders only"

        if order.quote_quantity is not None:
            if order.side is not Side.BUY or order.type is not OrderType.MARKET:
                return "quote quantity is only for market buys"
            notional = order.quote_quantity
            if notional <= ZERO:
                return "quote quantity must be positive"
        else:
            if not inst.qty_ok(order.quantity):
                return (
                    f"quantity {order.quantity} is not a multiple of {inst.lot_size} "
                    f"or below minimum {inst.min_qty}"
                )
            px = order.price or order.trigger_price or reference_price
            notional = order.quantity * px
        if notional < inst.min_notional:
            return f"notional {inst.money(notional)} below minimum {inst.min_notional}"
        max_value = self.limits.max_order_value
        if max_value is not None and notional > max_value:
            return f"order value {inst.money(notional)} above maximum {max_value}"

        if order.side is Side.SELL and inst.shortable and position > ZERO:
            # with what resting sells already hold, this sell must not take the long past zero
            unheld = portfolio.ledger.free(inst.base) + portfolio.group_reserved(order.oco_group)
            if order.quantity > unheld:
                return (
                    f"close the long ({position} {inst.base}, {unheld} not already offered) "
                    f"before opening a short"
                )
        if order.side is Side.SELL and not inst.shortable:
            # Spot is long-only: a sell may not exceed the base we hold (free, or an OCO's lock).
            available = portfolio.ledger.free(inst.base) + (
                portfolio.group_reserved(order.oco_group)
            )
            if order.quantity > available:
                return (
                    f"spot is long-only: sell {order.quantity} > available {available} {inst.base}"
                )
        asset, amount = portfolio.reservation_needed(order, reference_price)
        free = portfolio.ledger.free(asset)
        if amount > free:
            return f"insufficient {asset}: need {amount}, free {free}"
        for extra in self.extra_checks:
            reason = extra(order, portfolio, reference_price)
            if reason is not None:
                return reason
        return None


class ExposureCap:
    """A pre-trade check that sees every engine of one account: it denies a buy that would
    take the value of all positions above ``cap`` x total equity. ``books`` yields each
    engine's portfolio with its symbol's current mark."""

    def __init__(
        self, cap: Decimal, books: Callable[[], Iterable[tuple[Portfolio, Decimal]]]
    ) -> None:
        self.cap, self.books = cap, books
        self.denied = 0

    def __call__(self, order: Order, pf: Portfolio, ref: Decimal) -> str | None:
        if order.side is not Side.BUY:
            return None
        total_equity = ZERO
        exposure = ZERO
        for p, mark in self.books():
            total_equity += p.equity(mark)
            exposure += p.ledger.total(p.instrument.base) * mark
        price = order.price or order.trigger_price or ref
        adding = (
            order.quote_quantity if order.quote_quantity is not None else order.quantity * price
        )
        if exposure + adding > self.cap * total_equity:
            self.denied += 1
            return (
                f"portfolio exposure cap: {exposure + adding:.2f} > "
                f"{float(self.cap):.0%} of equity {total_equity:.2f}"
            )
        return None
