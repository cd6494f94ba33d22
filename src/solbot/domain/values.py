"""Value types and Decimal helpers shared by the domain."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import NewType

OrderId = NewType("OrderId", str)
TradeId = NewType("TradeId", str)

ZERO = Decimal(0)


class Side(StrEnum):
    __hash__ = str.__hash__  # C-level hash (hot path)

    BUY = "buy"
    SELL = "sell"

    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    __hash__ = str.__hash__  # C-level hash (hot path)

    MARKET = "market"
    LIMIT = "limit"
    STOP_MARKET = "stop_market"  # a market order once the trigger is reached
    STOP_LIMIT = "stop_limit"  # a limit order at ``price`` once the trigger is reached

    @property
    def is_stop(self) -> bool:
        return self in _STOPS


_STOPS = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT})


class Liquidity(StrEnum):
    __hash__ = str.__hash__  # C-level hash (hot path)

    MAKER = "maker"
    TAKER = "taker"


class TradingState(StrEnum):
    __hash__ = str.__hash__  # C-level hash (hot path)

    """ACTIVE trades normally, REDUCING only lets exposure shrink, HALTED sends no new order."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


def to_decimal(value: float | int | str | Decimal) -> Decimal:
    """Exact-as-written conversion: floats go through their shortest repr, not binary expansion."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def quantize_down(value: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` that is <= value."""
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def quantize_up(value: Decimal, step: Decimal) -> Decimal:
    """Smallest multiple of ``step`` that is >= value."""
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def quantize_nearest(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_HALF_EVEN) * step


def is_multiple(value: Decimal, step: Decimal) -> bool:
    return (value % step) == 0
