"""Immutable messages: market data (bars), commands from strategies, events from venues."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple

from solbot.domain.values import Liquidity, OrderId, OrderType, Side, TradeId


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class Bar(NamedTuple):
    """One OHLCV bar. ``ts`` is the bar's open time in epoch milliseconds (UTC).

    Prices are floats: they are market data, used by indicators. Accounting converts
    them to instrument-rounded ``Decimal`` at the moment a fill happens. A NamedTuple,
    not a dataclass: a backtest makes millions of these and tuples are cheapest.
    """

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    @property
    def time(self) -> datetime:
        return ms_to_datetime(self.ts)


# --------------------------------------------------------------------------- commands
@dataclass(frozen=True, slots=True)
class SubmitOrder:
    """Ask the engine to send one order. Exactly one of ``quantity``/``quote_quantity``.

    ``quote_quantity`` (market buys only) spends that much quote currency including the
    fee, like Binance's ``quoteOrderQty``.
    """

    side: Side
    type: OrderType
    quantity: Decimal | None = None
    quote_quantity: Decimal | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    post_only: bool = False
    reduce_only: bool = False
    tag: str = ""
    # a stop that trails (Binance ``trailingDelta``, ``faqs/trailing-stop-faq.md``): it
    # triggers after the price moved this many basis points against the position from the
    # best price since it was placed; ``trigger_price`` is its level at placement
    trailing_bps: int | None = None
    # set by the engine on its own exit at market for a stop that could not rest or was
    # passed: it protects a position as the bracket's legs do, so a halt lets it out too
    # (still only reduce-only, and only while it reduces the position)
    protective: bool = False


@dataclass(frozen=True, slots=True)
class SubmitBracket:
    """An entry order with an OCO pair (take-profit limit + stop-market) armed on its fill.
    ``trail_bps``: the stop trails at the exchange by that many basis points (its level at
    placement is ``stop_loss``'s distance from the entry; see ``SubmitOrder.trailing_bps``)."""

    entry: SubmitOrder
    take_profit: Decimal
    stop_loss: Decimal
    tag: str = ""
    trail_bps: int | None = None


@dataclass(frozen=True, slots=True)
class CancelOrder:
    order_id: OrderId


@dataclass(frozen=True, slots=True)
class CancelAll:
    """Cancel every open order; ``keep_protection``: except the exits of an order list
    protecting a position (reduce-only OCO legs: they can only reduce exposure)."""

    keep_protection: bool = False


Command = SubmitOrder | SubmitBracket | CancelOrder | CancelAll


# --------------------------------------------------------------------------- events
@dataclass(frozen=True, slots=True)
class Fill:
    order_id: OrderId
    trade_id: TradeId
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    liquidity: Liquidity
    ts: int

    @property
    def notional(self) -> Decimal:
        return self.quantity * self.price

    @property
    def base_asset(self) -> str:
        return self.symbol.partition("/")[0]

    @property
    def quote_asset(self) -> str:
        return self.symbol.partition("/")[2]

    @property
    def fee_in_base(self) -> Decimal:
        """The fee when charged in the base asset (Binance takes a buy's fee from what it
        bought), else 0."""
        return self.fee if self.fee_asset == self.base_asset else Decimal(0)

    @property
    def fee_in_quote(self) -> Decimal:
        """The fee's value in the quote asset: as charged, or a base fee at the fill price.
        A fee in a third asset (e.g. BNB) has no price here and counts as 0."""
        if self.fee_asset == self.quote_asset:
            return self.fee
        return self.fee * self.price if self.fee_asset == self.base_asset else Decimal(0)

    @property
    def base_change(self) -> Decimal:
        """Signed change of base holdings, net of a fee charged in base."""
        if self.side is Side.BUY:
            return self.quantity - self.fee_in_base
        return -(self.quantity + self.fee_in_base)


@dataclass(frozen=True, slots=True)
class OrderEvent:
    order_id: OrderId
    ts: int


@dataclass(frozen=True, slots=True)
class OrderDenied(OrderEvent):
    """Pre-trade risk refused the order; it never reached a venue."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderSubmitted(OrderEvent):
    pass


@dataclass(frozen=True, slots=True)
class OrderAccepted(OrderEvent):
    venue_order_id: str = ""


@dataclass(frozen=True, slots=True)
class OrderRejected(OrderEvent):
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderFilled(OrderEvent):
    """A fill; the order is partially or completely filled depending on its leaves. A
    quote-sized market order has no leaves to go by: ``last`` marks its final fill."""

    fill: Fill = field(default=None)  # type: ignore[assignment]
    last: bool = True


@dataclass(frozen=True, slots=True)
class OrderCancelled(OrderEvent):
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderExpired(OrderEvent):
    pass


@dataclass(frozen=True, slots=True)
class TradingStateChanged:
    state: str
    reason: str
    ts: int


Event = (
    OrderDenied
    | OrderSubmitted
    | OrderAccepted
    | OrderRejected
    | OrderFilled
    | OrderCancelled
    | OrderExpired
)
