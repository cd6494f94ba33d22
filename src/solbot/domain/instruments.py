"""Tradable instruments with exchange precision, limits and fees."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from solbot.domain.values import (
    ZERO,
    is_multiple,
    quantize_down,
    quantize_nearest,
    quantize_up,
    to_decimal,
)


@dataclass(frozen=True, slots=True)
class Instrument:
    """A spot pair. Prices are multiples of ``tick_size``, quantities of ``lot_size``."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    lot_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    money_step: Decimal = Decimal("0.00000001")
    shortable: bool = False

    def __post_init__(self) -> None:
        for name in ("tick_size", "lot_size", "money_step"):
            if getattr(self, name) <= ZERO:
                raise ValueError(f"{self.symbol}: {name} must be positive")
        for name in ("min_qty", "min_notional", "maker_fee", "taker_fee"):
            if getattr(self, name) < ZERO:
                raise ValueError(f"{self.symbol}: {name} must not be negative")

    # -- rounding -------------------------------------------------------------------------
    def price(self, value: float | str | Decimal) -> Decimal:
        return quantize_nearest(to_decimal(value), self.tick_size)

    def price_up(self, value: float | str | Decimal) -> Decimal:
        return quantize_up(to_decimal(value), self.tick_size)

    def price_down(self, value: float | str | Decimal) -> Decimal:
        return quantize_down(to_decimal(value), self.tick_size)

    def qty(self, value: float | str | Decimal) -> Decimal:
        """Quantities round down: never trade more than asked for."""
        return quantize_down(to_decimal(value), self.lot_size)

    def money(self, value: Decimal) -> Decimal:
        return quantize_nearest(value, self.money_step)

    def fee(self, notional: Decimal, rate: Decimal) -> Decimal:
        """Fees round up to the money step: never under-charged, never negative."""
        return quantize_up(notional * rate, self.money_step) if rate > ZERO else ZERO

    # -- checks ---------------------------------------------------------------------------
    def price_ok(self, price: Decimal) -> bool:
        return price > ZERO and is_multiple(price, self.tick_size)

    def qty_ok(self, qty: Decimal) -> bool:
        return qty >= self.min_qty and qty > ZERO and is_multiple(qty, self.lot_size)


def sol_usdt() -> Instrument:
    """Binance spot SOL/USDT filters (PRICE_FILTER 0.01, LOT_SIZE 0.001, NOTIONAL 5)."""
    return Instrument(
        symbol="SOL/USDT",
        base="SOL",
        quote="USDT",
        tick_size=Decimal("0.01"),
        lot_size=Decimal("0.001"),
        min_qty=Decimal("0.001"),
        min_notional=Decimal("5"),
    )


def generic_spot(symbol: str, tick: str = "0.01", lot: str = "0.0001") -> Instrument:
    base, _, quote = symbol.partition("/")
    if not base or not quote:
        raise ValueError(f"symbol must look like BASE/QUOTE, got {symbol!r}")
    return Instrument(
        symbol=symbol,
        base=base,
        quote=quote,
        tick_size=Decimal(tick),
        lot_size=Decimal(lot),
        min_qty=Decimal(lot),
        min_notional=Decimal("5"),
    )


def instrument_for(symbol: str) -> Instrument:
    """The built-in rules of ``symbol`` (SOL/USDT's own; any other pair: generic spot rules),
    until an exchange's filters replace them."""
    return sol_usdt() if symbol == "SOL/USDT" else generic_spot(symbol)
