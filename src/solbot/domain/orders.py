"""Orders as state machines: an explicit transition table; state changes only via events."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from solbot.domain.messages import (
    Event,
    Fill,
    OrderAccepted,
    OrderCancelled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
)
from solbot.domain.values import ZERO, OrderId, OrderType, Side


class OrderStatus(StrEnum):
    __hash__ = str.__hash__  # C-level hash: statuses key the transition table (hot path)

    INITIALIZED = "initialized"
    DENIED = "denied"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_open(self) -> bool:
        return self in _OPEN


_OPEN = frozenset({OrderStatus.SUBMITTED, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED})
_TERMINAL = frozenset(
    {
        OrderStatus.DENIED,
        OrderStatus.REJECTED,
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
        OrderStatus.EXPIRED,
    }
)

S = OrderStatus
# (from status, event type) -> to status. A fill's target (partial/complete) depends on the
# remaining quantity, so fills map to PARTIALLY_FILLED here and are promoted when complete.
TRANSITIONS: dict[tuple[OrderStatus, type[Event]], OrderStatus] = {
    (S.INITIALIZED, OrderDenied): S.DENIED,
    (S.INITIALIZED, OrderSubmitted): S.SUBMITTED,
    (S.SUBMITTED, OrderAccepted): S.ACCEPTED,
    (S.SUBMITTED, OrderRejected): S.REJECTED,
    # Exchanges may report a fill or a cancel before the acknowledgement arrives.
    (S.SUBMITTED, OrderFilled): S.PARTIALLY_FILLED,
    (S.SUBMITTED, OrderCancelled): S.CANCELLED,
    (S.SUBMITTED, OrderExpired): S.EXPIRED,
    (S.ACCEPTED, OrderFilled): S.PARTIALLY_FILLED,
    (S.ACCEPTED, OrderCancelled): S.CANCELLED,
    (S.ACCEPTED, OrderExpired): S.EXPIRED,
    (S.PARTIALLY_FILLED, OrderFilled): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, OrderCancelled): S.CANCELLED,
    (S.PARTIALLY_FILLED, OrderExpired): S.EXPIRED,
}


_WITH_REASON = (OrderDenied, OrderRejected, OrderCancelled)


class InvalidTransition(Exception):
    """An event that the order's current state does not allow (a venue or wiring bug)."""


@dataclass(slots=True)
class Order:
    order_id: OrderId
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    quote_quantity: Decimal | None = None
    post_only: bool = False
    reduce_only: bool = False
    tag: str = ""
    created_ts: int = 0
    oco_group: str | None = None
    client_id: str = ""  # the id the venue knows it by (given by the venue at submission)
    trailing_bps: int | None = None  # a trailing stop (``SubmitOrder.trailing_bps``)
    status: OrderStatus = OrderStatus.INITIALIZED
    filled_qty: Decimal = ZERO
    filled_notional: Decimal = ZERO
    fees: Decimal = ZERO
    venue_order_id: str = ""
    reason: str = ""
    fills: list[Fill] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    @property
    def leaves_qty(self) -> Decimal:
        return self.quantity - self.filled_qty

    @property
    def avg_price(self) -> Decimal | None:
        if self.filled_qty == ZERO:
            return None
        return self.filled_notional / self.filled_qty

    def apply(self, event: Event) -> OrderStatus:
        """Apply one event; raise ``InvalidTransition`` when the table forbids it."""
        target = TRANSITIONS.get((self.status, type(event)))
        if target is None:
            raise InvalidTransition(
                f"order {self.order_id}: {type(event).__name__} not allowed in {self.status.value}"
            )
        if isinstance(event, OrderFilled):
            fill = event.fill
            if fill.quantity <= ZERO:
                raise InvalidTransition(f"order {self.order_id}: fill quantity must be positive")
            if fill.quantity > self.leaves_qty and self.quote_quantity is None:
                raise InvalidTransition(
                    f"order {self.order_id}: overfill {fill.quantity} > leaves {self.leaves_qty}"
                )
            self.filled_qty += fill.quantity
            self.filled_notional += fill.quantity * fill.price
            self.fees += fill.fee
            self.fills.append(fill)
            if self.quote_quantity is not None:
                # A quote-sized market order's size is known only from its fills; the last
                # execution report completes it.
                self.quantity = self.filled_qty
                if event.last:
                    target = OrderStatus.FILLED
            elif self.filled_qty >= self.quantity:
                target = OrderStatus.FILLED
        elif isinstance(event, OrderAccepted):
            self.venue_order_id = event.venue_order_id
        elif isinstance(event, _WITH_REASON):
            self.reason = event.reason
        self.status = target
        self.events.append(event)
        return target
