"""The risk layer every strategy uses: size from stop distance, daily drawdown stop,
black-swan response, caps.

* ``size``: the quantity whose loss at the stop is ``risk_per_trade`` of equity (1 %),
  capped by ``max_position_pct`` of equity and by the free quote balance (fees included),
  rounded down to the lot; 0 when the exchange minimums cannot be met.
* daily drawdown: once equity falls ``daily_drawdown`` (5 %) below the day's starting
  equity, entries stop for ``halt_hours`` (24 h).
* black swan: a close ``black_swan_drop`` (15 %) below the highest close of the last
  ``black_swan_hours`` hours halves the position and tightens stops (``stop_tightening``).
* ``max_entries_per_day`` caps how many entries a day may open.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from solbot.domain.ledger import MARKET_BUY_LOCK_BUFFER
from solbot.sdk import ZERO, Instrument

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class RiskParams:
    risk_per_trade: float = 0.01
    max_position_pct: float = 1.0  # spot: never more than the equity
    daily_drawdown: float = 0.05
    halt_hours: float = 24.0
    black_swan_drop: float = 0.15
    black_swan_hours: float = 24.0
    stop_tightening: float = 0.5
    max_entries_per_day: int = 20


class RiskManager:
    def __init__(self, params: RiskParams | None = None) -> None:
        self.p = params or RiskParams()
        self.day = -1
        self.day_start_equity = 0.0
        self.halted_until = -1
        self.entries_today = 0
        self._closes: deque[tuple[int, float]] = deque()
        self._swan_active = False

    # ------------------------------------------------------------- per bar
    def on_bar(self, ts: int, close: float, equity: float) -> bool:
        """Update the day and the black-swan window; True when a black swan just began."""
        day = ts // DAY_MS
        if day != self.day:
            self.day, self.day_start_equity, self.entries_today = day, equity, 0
        if (
            self.day_start_equity > 0
            and equity <= self.day_start_equity * (1 - self.p.daily_drawdown)
            and ts >= self.halted_until
        ):
            self.halted_until = ts + int(self.p.halt_hours * HOUR_MS)
        window = int(self.p.black_swan_hours * HOUR_MS)
        q = self._closes
        while q and q[0][0] <= ts - window:
            q.popleft()
        while q and q[-1][1] <= close:
            q.pop()  # monotonic: the front is the window's highest close
        q.append((ts, close))
        crashed = close <= q[0][1] * (1 - self.p.black_swan_drop)
        began = crashed and not self._swan_active
        self._swan_active = crashed
        return began

    @property
    def black_swan(self) -> bool:
        return self._swan_active

    def can_enter(self, ts: int) -> bool:
        return ts >= self.halted_until and self.entries_today < self.p.max_entries_per_day

    def entered(self) -> None:
        self.entries_today += 1

    def stop_multiplier(self) -> float:
        return self.p.stop_tightening if self._swan_active else 1.0

    # ------------------------------------------------------------- sizing
    def size(
        self,
        inst: Instrument,
        equity: Decimal,
        free_quote: Decimal,
        entry: Decimal,
        stop: Decimal,
        scale: Decimal = Decimal(1),
    ) -> Decimal:
        """Quantity for a long (stop below entry) or a short (stop above entry, shortable
        markets: the short's full value is held as quote collateral)."""
        if entry <= ZERO or stop <= ZERO or stop == entry:
            return ZERO
        if stop > entry and not inst.shortable:
            return ZERO
        risk_amount = equity * Decimal(str(self.p.risk_per_trade)) * scale
        qty = risk_amount / abs(entry - stop)
        cap_value = equity * Decimal(str(self.p.max_position_pct))
        # what a market buy of qty holds until it fills (the engine's reservation: the price
        # plus MARKET_BUY_LOCK_BUFFER, and the fee): sized above it, the entry is denied
        lock = entry * (1 + MARKET_BUY_LOCK_BUFFER) * (1 + max(inst.taker_fee, inst.maker_fee))
        affordable = free_quote / lock * Decimal("0.999")
        qty = inst.qty(min(qty, cap_value / entry, affordable))
        if qty < inst.min_qty or qty * entry < inst.min_notional:
            return ZERO
        return qty
