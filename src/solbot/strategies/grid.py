"""Range grid: maker-only limit orders on levels inside the Donchian range.

When started (standalone: whenever flat in a RANGE regime; in the switcher: on RANGE), the
grid spans the Donchian(``period``) channel with ``ceil(range / (0.6 × ATR))`` levels (at
most ``max_levels``). Each level below the price rests a post-only buy; a filled buy rests a
post-only sell one level up; a filled sell re-arms the buy below it. Inventory is capped at
``cap`` (35 %) of equity: no buy is placed that could take position cost plus resting buys
above the cap. Everything is closed when the price leaves the range by ``breakout`` (2 %).
When the position drifts more than ``rebalance`` (15 % of the cap) from what the grid should
hold at the current price, the difference is traded at market.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

from solbot.indicators.regime import Regime
from solbot.sdk import (
    NO_COMMANDS,
    ZERO,
    Bar,
    CancelAll,
    Command,
    Event,
    Fill,
    Float,
    IndicatorSpec,
    Int,
    OrderType,
    Param,
    Side,
    StrategyContext,
    SubmitOrder,
)
from solbot.strategies.managed import ManagedStrategy


class RangeGrid(ManagedStrategy):
    name = "grid"
    needs = frozenset({"limit", "post_only", "market"})
    parameters: ClassVar[dict[str, Param]] = {
        "period": Int(20, 2, 1000, search=(10, 60), help="range lookback (bars)"),
        "atr_factor": Float(0.6, 0.01, 20.0, search=(0.4, 1.5), help="level spacing (ATRs)"),
        "breakout": Float(0.02, 0.0001, 1.0, search=(0.01, 0.05), help="range exit share"),
        "cap": Float(0.35, 0.0001, 1.0, optimize=False, help="most of equity in the grid"),
    }

    def __init__(
        self,
        period: int = 20,
        atr_factor: float = 0.6,
        cap: float = 0.35,
        breakout: float = 0.02,
        rebalance: float = 0.15,
        max_levels: int = 20,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        if not 0 < cap <= 1 or max_levels < 2:
            raise ValueError("grid: cap must be in (0, 1] and max_levels >= 2")
        self.period, self.atr_factor, self.cap = int(period), float(atr_factor), float(cap)
        self.breakout, self.rebalance, self.max_levels = breakout, rebalance, int(max_levels)
        self.levels: list[Decimal] = []
        self.level_qty = ZERO
        self.active = False
        self.filled: set[int] = set()  # levels whose buy has filled (inventory held)

    def setup(self, ctx: StrategyContext) -> None:
        self.upper = ctx.indicator(IndicatorSpec("highest", self.period, source="high"))
        self.lower = ctx.indicator(IndicatorSpec("lowest", self.period, source="low"))

    # ------------------------------------------------------------- lifecycle
    def wants_entry(self, bar: Bar) -> bool:
        return (
            not self.active
            and self.regime is Regime.RANGE
            and self.atr.value > 0
            and self.upper.value > self.lower.value
        )

    def enter(self, bar: Bar) -> Sequence[Command]:
        inst = self.ctx.instrument
        lo, hi = self.lower.value, self.upper.value
        spacing = self.atr_factor * self.atr.value
        count = min(self.max_levels, max(2, math.ceil((hi - lo) / spacing)))
        step = (hi - lo) / count
        self.levels = [inst.price(lo + i * step) for i in range(count + 1)]
        equity = self.equity(bar)
        self.level_qty = inst.qty(equity * Decimal(str(self.cap)) / count / self.levels[-1])
        if self.level_qty < inst.min_qty or self.level_qty * self.levels[0] < inst.min_notional:
            self.levels = []
            return NO_COMMANDS
        self.active = True
        self.filled.clear()
        return self._place(bar)

    def stop_grid(self, reason: str) -> Sequence[Command]:
        self.active = False
        self.levels = []
        self.filled.clear()
        # resting buys must go even when nothing is held yet
        return self.exit_all(reason) or (CancelAll(),)

    # ------------------------------------------------------------- per bar
    def decide(self, bar: Bar) -> Sequence[Command]:
        if self.active:
            return self.manage(bar)
        if self.risk.can_enter(bar.ts) and self.wants_entry(bar):
            self.risk.entered()
            return self.enter(bar)
        return NO_COMMANDS

    def manage(self, bar: Bar) -> Sequence[Command]:
        if not self.active or not self.levels:
            return self.exit_all("grid: no grid") if self.held() > 0 else NO_COMMANDS
        lo, hi = float(self.levels[0]), float(self.levels[-1])
        if bar.close > hi * (1 + self.breakout) or bar.close < lo * (1 - self.breakout):
            return self.stop_grid("grid: price left the range")
        drift = self._rebalance(bar)
        if drift:
            return drift
        return self._place(bar)

    def _place(self, bar: Bar) -> list[Command]:
        """Rest the orders the grid wants and the venue does not have yet."""
        cmds: list[Command] = []
        close = Decimal(repr(bar.close))
        resting = {o.tag for o in self.ctx.open_orders()}
        budget = self._buy_budget(bar)
        free_base = self.ctx.instrument.qty(self.ctx.free(self.ctx.instrument.base))
        for i, level in enumerate(self.levels[:-1]):
            if i in self.filled:
                qty = min(self.level_qty, free_base)
                if (
                    f"grid-sell-{i}" not in resting
                    and self.levels[i + 1] > close
                    and qty >= self.ctx.instrument.min_qty
                ):
                    free_base -= qty
                    cmds.append(
                        SubmitOrder(
                            Side.SELL,
                            OrderType.LIMIT,
                            qty,
                            price=self.levels[i + 1],
                            post_only=True,
                            tag=f"grid-sell-{i}",
                        )
                    )
            elif f"grid-buy-{i}" not in resting and level < close:
                cost = self.level_qty * level
                if cost <= budget:
                    budget -= cost
                    cmds.append(
                        SubmitOrder(
                            Side.BUY,
                            OrderType.LIMIT,
                            self.level_qty,
                            price=level,
                            post_only=True,
                            tag=f"grid-buy-{i}",
                        )
                    )
        return cmds

    def _buy_budget(self, bar: Bar) -> Decimal:
        """What more may be bought: the cap minus the position's cost and resting buys."""
        pos = self.ctx.position_qty * self.ctx.position_avg_price
        resting = sum(
            (
                o.leaves_qty * (o.price or ZERO)
                for o in self.ctx.open_orders()
                if o.side is Side.BUY
            ),
            ZERO,
        )
        return self.equity(bar) * Decimal(str(self.cap)) - pos - resting

    def _rebalance(self, bar: Bar) -> Sequence[Command]:
        inst = self.ctx.instrument
        cap_qty = self.level_qty * (len(self.levels) - 1)
        held = self.ctx.position_qty
        # the grid should hold one level's quantity per filled level; anything beyond that
        # by more than ``rebalance`` of the cap (e.g. fills it lost track of) is sold
        expected = self.level_qty * len(self.filled)
        if abs(held - expected) <= cap_qty * Decimal(str(self.rebalance)):
            return NO_COMMANDS
        if held > expected:
            qty = inst.qty(held - expected)
            if qty >= inst.min_qty:
                return (
                    SubmitOrder(
                        Side.SELL, OrderType.MARKET, qty, reduce_only=True, tag="grid-rebalance"
                    ),
                )
        return NO_COMMANDS

    # ------------------------------------------------------------- fills
    def on_fill(self, fill: Fill) -> Sequence[Command]:
        order = self.ctx.order(fill.order_id)
        tag = order.tag if order is not None else ""
        if tag.startswith("grid-buy-"):
            self.filled.add(int(tag.rsplit("-", 1)[1]))
        elif tag.startswith("grid-sell-") and order is not None and order.status.is_terminal:
            self.filled.discard(int(tag.rsplit("-", 1)[1]))
        return NO_COMMANDS

    def on_order_event(self, event: Event) -> Sequence[Command]:
        return NO_COMMANDS
