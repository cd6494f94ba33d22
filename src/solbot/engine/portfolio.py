"""The portfolio: the only writer of orders, positions and balances.

Everything it knows changes through ``submitted``/``deny``/``apply`` with events; nothing
else mutates an order, a position or the ledger. OCO legs share one hold, like an exchange
OCO. A fill is checked before anything changes, so one that cannot be booked (a wiring bug,
books that disagree with the exchange) raises and leaves order, ledger and position as they
were; a fee the exchange charged in a third asset (BNB) is always booked (``Ledger``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from solbot.domain.instruments import Instrument
from solbot.domain.ledger import InsufficientBalance, Ledger, reservation
from solbot.domain.messages import Event, Fill, OrderDenied, OrderFilled, OrderSubmitted
from solbot.domain.orders import Order
from solbot.domain.positions import Position
from solbot.domain.values import ZERO, OrderId, OrderType


@dataclass(slots=True)
class FillRecord:
    """A fill with the accounting state right after it (for reports and audits)."""

    fill: Fill
    realised_pnl: Decimal
    position_qty: Decimal
    quote_total: Decimal
    base_total: Decimal
    bar_index: int


def hold_key(order: Order) -> str:
    return order.oco_group if order.oco_group is not None else order.order_id


def order_reservation(
    instrument: Instrument, ledger: Ledger, order: Order, reference_price: Decimal
) -> tuple[str, Decimal]:
    """What submitting ``order`` will hold (nothing more for a second OCO leg)."""
    asset, amount = reservation(
        instrument,
        order.side,
        order.type,
        order.quantity,
        order.quote_quantity,
        order.price if order.type is OrderType.LIMIT else order.trigger_price,
        reference_price,
        ledger.free(instrument.base) + ledger.held(order.oco_group),
    )
    if order.oco_group is not None and ledger.holds_key(order.oco_group):
        return asset, ZERO
    return asset, amount


@dataclass(slots=True)
class Portfolio:
    instrument: Instrument
    ledger: Ledger
    initial_quote: Decimal = ZERO
    orders: dict[OrderId, Order] = field(default_factory=dict)
    position: Position = field(init=False)
    fills: list[FillRecord] = field(default_factory=list)
    fees_paid: Decimal = ZERO
    bar_index: int = -1
    _open: dict[OrderId, Order] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.position = Position(self.instrument.symbol)
        if self.initial_quote == ZERO:
            self.initial_quote = self.ledger.total(self.instrument.quote)

    # ---------------------------------------------------------------- queries
    def open_orders(self) -> list[Order]:
        return list(self._open.values())

    def open_order_count(self) -> int:
        return len(self._open)

    def group_reserved(self, group: str | None) -> Decimal:
        return self.ledger.held(group)

    def equity(self, mark: Decimal) -> Decimal:
        inst = self.instrument
        return self.ledger.total(inst.quote) + self.ledger.total(inst.base) * mark

    def reservation_needed(self, order: Order, reference_price: Decimal) -> tuple[str, Decimal]:
        return order_reservation(self.instrument, self.ledger, order, reference_price)

    # ---------------------------------------------------------------- writes
    def add(self, order: Order) -> None:
        if order.order_id in self.orders:
            raise ValueError(f"duplicate order id {order.order_id}")
        self.orders[order.order_id] = order

    def submitted(self, order: Order, event: OrderSubmitted, reference_price: Decimal) -> None:
        asset, amount = self.reservation_needed(order, reference_price)
        order.apply(event)
        self.ledger.hold(hold_key(order), asset, amount)
        self._open[order.order_id] = order

    def restore_open(self, order: Order) -> None:
        """An order a previous run left open that cannot hold what it needs now (the books
        were adopted from the exchange): open, without a hold; the balance check decides."""
        self._open[order.order_id] = order

    def deny(self, order: Order, event: OrderDenied) -> None:
        order.apply(event)

    def apply(self, event: Event) -> Order:
        order = self.orders[event.order_id]
        if isinstance(event, OrderSubmitted):
            raise ValueError("use submitted() so the reservation is taken")
        was_open = order.status.is_open
        key = hold_key(order)
        if isinstance(event, OrderFilled) and not self.ledger.can_settle(
            event.fill, self.instrument, key, fee_debt_ok=True
        ):
            raise InsufficientBalance(
                f"cannot book fill {event.fill.trade_id} of {order.order_id}: "
                f"{event.fill.side.value} {event.fill.quantity} {self.instrument.base}"
            )
        order.apply(event)
        if isinstance(event, OrderFilled):
            fill = event.fill
            self.ledger.settle(fill, self.instrument, key, fee_debt_ok=True)
            realised = self.position.apply(fill)
            self.fees_paid += fill.fee_in_quote
            self.fills.append(
                FillRecord(
                    fill,
                    realised,
                    self.position.qty,
                    self.ledger.total(self.instrument.quote),
                    self.ledger.total(self.instrument.base),
                    self.bar_index,
                )
            )
        if was_open and order.status.is_terminal:
            self._open.pop(order.order_id, None)
            self.ledger.release(key)
        return order
