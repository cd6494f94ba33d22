"""Positions with average entry price and realised / unrealised PnL (gross of fees)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from solbot.domain.messages import Fill
from solbot.domain.values import ZERO


@dataclass(slots=True)
class Position:
    symbol: str
    qty: Decimal = ZERO  # signed: > 0 long, < 0 short (only for shortable markets)
    avg_price: Decimal = ZERO
    realised_pnl: Decimal = ZERO  # gross; fees are accounted separately
    fees: Decimal = ZERO

    @property
    def is_flat(self) -> bool:
        return self.qty == ZERO

    def unrealised_pnl(self, mark: Decimal) -> Decimal:
        return (mark - self.avg_price) * self.qty

    def apply(self, fill: Fill) -> Decimal:
        """Apply a fill; return the PnL it realised (gross of fees)."""
        signed = fill.base_change  # net of a fee charged in base
        self.fees += fill.fee_in_quote
        realised = ZERO
        if self.qty == ZERO or (self.qty > ZERO) == (signed > ZERO):
            new_qty = self.qty + signed
            self.avg_price = (self.avg_price * abs(self.qty) + fill.price * abs(signed)) / abs(
                new_qty
            )
            self.qty = new_qty
            return realised
        closing = min(abs(signed), abs(self.qty))
        direction = Decimal(1) if self.qty > ZERO else Decimal(-1)
        realised = (fill.price - self.avg_price) * closing * direction
        self.realised_pnl += realised
        remainder = abs(signed) - closing
        self.qty += signed
        if self.qty == ZERO:
            self.avg_price = ZERO
        elif remainder > ZERO:  # flipped through zero: the rest opens at the fill price
            self.avg_price = fill.price
        return realised
