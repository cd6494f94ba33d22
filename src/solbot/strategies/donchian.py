"""Donchian breakout, long only.

Enter (market, so at the next bar's open) when the close is above the highest high of the
previous ``entry_period`` bars; exit when the close is below the lowest low of the previous
``exit_period`` bars. Spends ``fraction`` of the free quote balance per entry (fee included).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

from solbot.domain.values import quantize_down
from solbot.sdk import (
    NO_COMMANDS,
    ZERO,
    Bar,
    Command,
    Event,
    Fill,
    Float,
    IndicatorSpec,
    Int,
    OrderDenied,
    OrderType,
    Param,
    Series,
    Side,
    Strategy,
    StrategyContext,
    SubmitOrder,
)


class DonchianBreakout(Strategy):
    name = "donchian"
    needs = frozenset({"market", "quote_market_buy"})
    parameters: ClassVar[dict[str, Param]] = {
        "entry_period": Int(20, 1, 1000, search=(10, 60), help="breakout lookback (bars)"),
        "exit_period": Int(10, 1, 1000, search=(5, 30), help="exit channel lookback (bars)"),
        "fraction": Float(1.0, 0.0001, 1.0, optimize=False, help="share of cash per entry"),
    }

    def __init__(
        self,
        entry_period: int = 20,
        exit_period: int = 10,
        fraction: float = 1.0,
        stake: float | str | None = None,
        **rest: Any,
    ) -> None:
        super().__init__(**rest)
        if int(entry_period) < 1 or int(exit_period) < 1:
            raise ValueError("donchian: periods must be >= 1")
        if not 0 < float(fraction) <= 1:
            raise ValueError("donchian: fraction must be in (0, 1]")
        self.entry_period = int(entry_period)
        self.exit_period = int(exit_period)
        self.fraction = Decimal(str(fraction))
        self.stake = Decimal(str(stake)) if stake is not None else None
        if self.stake is not None and self.stake <= ZERO:
            raise ValueError("donchian: stake must be positive")
        self._long = False
        self._pending = False
        self.upper: Series
        self.lower: Series

    def on_start(self, ctx: StrategyContext) -> None:
        super().on_start(ctx)
        self.upper = ctx.indicator(
            IndicatorSpec("highest", self.entry_period, source="high", shift=1)
        )
        self.lower = ctx.indicator(IndicatorSpec("lowest", self.exit_period, source="low", shift=1))
        self._long = ctx.position_qty > ZERO

    def on_bar(self, bar: Bar) -> Sequence[Command]:
        if self._pending:
            return NO_COMMANDS
        if self._long:
            if bar.close < self.lower.value:
                return self._exit()
        elif bar.close > self.upper.value:
            return self._enter()
        return NO_COMMANDS

    def _enter(self) -> Sequence[Command]:
        inst = self.ctx.instrument
        free = self.ctx.free(inst.quote)
        budget = free * self.fraction if self.stake is None else min(self.stake, free)
        spend = quantize_down(budget, inst.money_step)
        if spend < inst.min_notional:
            return NO_COMMANDS
        self._pending = True
        return (SubmitOrder(Side.BUY, OrderType.MARKET, quote_quantity=spend, tag="entry"),)

    def _exit(self) -> Sequence[Command]:
        qty = self.ctx.instrument.qty(self.ctx.free(self.ctx.instrument.base))  # lots only
        if qty <= ZERO:
            self._long = False
            return NO_COMMANDS
        self._pending = True
        return (SubmitOrder(Side.SELL, OrderType.MARKET, quantity=qty, tag="exit"),)

    def on_fill(self, fill: Fill) -> Sequence[Command]:
        self._long = self.ctx.position_qty > ZERO
        self._pending = any(o.status.is_open for o in self.ctx.open_orders())
        return NO_COMMANDS

    def on_order_event(self, event: Event) -> Sequence[Command]:
        self._pending = any(o.status.is_open for o in self.ctx.open_orders())
        if isinstance(event, OrderDenied):
            self._long = self.ctx.position_qty > ZERO
        return NO_COMMANDS
