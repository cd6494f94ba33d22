"""Round-trip trades built from the portfolio's fill records."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from solbot.domain.messages import ms_to_datetime
from solbot.domain.values import ZERO, Side
from solbot.engine.portfolio import FillRecord


@dataclass(slots=True)
class Trade:
    side: str
    entry_ts: int
    exit_ts: int | None
    entry_bar: int
    exit_bar: int | None
    quantity: Decimal  # largest size held during the trade
    entry_price: Decimal  # average
    exit_price: Decimal | None  # average
    fees: Decimal
    pnl: Decimal  # realised, net of all fees of the trade
    fills: int

    @property
    def is_open(self) -> bool:
        return self.exit_ts is None

    @property
    def return_pct(self) -> float:
        cost = self.entry_price * self.quantity
        return float(self.pnl / cost) if cost > ZERO else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "side": self.side,
            "entry_time": ms_to_datetime(self.entry_ts).isoformat(),
            "exit_time": ms_to_datetime(self.exit_ts).isoformat() if self.exit_ts else None,
            "entry_bar": self.entry_bar,
            "exit_bar": self.exit_bar,
            "quantity": str(self.quantity),
            "entry_price": str(self.entry_price),
            "exit_price": str(self.exit_price) if self.exit_price is not None else None,
            "fees": str(self.fees),
            "pnl": str(self.pnl),
            "return_pct": round(self.return_pct * 100, 4),
            "open": self.is_open,
        }


def build_trades(records: list[FillRecord]) -> list[Trade]:
    """A trade opens when the position leaves zero and closes when it returns to zero."""
    trades: list[Trade] = []
    cur: Trade | None = None
    in_qty = in_cost = out_qty = out_value = realised = ZERO
    prev_qty = ZERO
    for r in records:
        f = r.fill
        if cur is None:
            cur = Trade(
                side="long" if f.side is Side.BUY else "short",
                entry_ts=f.ts,
                exit_ts=None,
                entry_bar=r.bar_index,
                exit_bar=None,
                quantity=ZERO,
                entry_price=ZERO,
                exit_price=None,
                fees=ZERO,
                pnl=ZERO,
                fills=0,
            )
            in_qty = in_cost = out_qty = out_value = realised = ZERO
        opening = (f.side is Side.BUY) == (cur.side == "long")
        if opening:
            in_qty += f.quantity
            in_cost += f.quantity * f.price
        else:
            out_qty += f.quantity
            out_value += f.quantity * f.price
        realised += r.realised_pnl
        cur.fees += f.fee_in_quote
        cur.fills += 1
        cur.quantity = max(cur.quantity, abs(r.position_qty))
        cur.entry_price = in_cost / in_qty if in_qty > ZERO else ZERO
        cur.exit_price = out_value / out_qty if out_qty > ZERO else None
        cur.pnl = realised - cur.fees
        if r.position_qty == ZERO and prev_qty != ZERO:
            cur.exit_ts = f.ts
            cur.exit_bar = r.bar_index
            trades.append(cur)
            cur = None
        prev_qty = r.position_qty
    if cur is not None:
        trades.append(cur)
    return trades
