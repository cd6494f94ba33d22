"""Base for risk-managed strategies: regime per bar, the shared risk layer, exits.

Subclasses implement ``wants_entry``, ``enter`` and ``manage``; ``decide`` wires them for a
standalone strategy and the regime switcher calls them directly. Everything reads indicator
series from the engine's feed, so the code is the same in backtests and live.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from solbot.indicators.regime import Regime, RegimeParams, classify
from solbot.sdk import (
    NO_COMMANDS,
    ZERO,
    Bar,
    CancelAll,
    Command,
    Fill,
    IndicatorSpec,
    OrderType,
    Side,
    Strategy,
    StrategyContext,
    SubmitOrder,
)
from solbot.strategies.risk import RiskManager, RiskParams

_RISK_KEYS = set(RiskParams.__dataclass_fields__)
_REGIME_KEYS = set(RegimeParams.__dataclass_fields__)


def split_params(params: dict[str, Any]) -> tuple[RiskParams, RegimeParams, dict[str, Any]]:
    risk = {k: v for k, v in params.items() if k in _RISK_KEYS}
    regime = {k: v for k, v in params.items() if k in _REGIME_KEYS}
    rest = {k: v for k, v in params.items() if k not in _RISK_KEYS | _REGIME_KEYS}
    return RiskParams(**risk), RegimeParams(**regime), rest


class ManagedStrategy(Strategy):
    """Shared state: the regime of the current bar, the risk manager, the open trade."""

    def __init__(
        self, risk: RiskManager | None = None, regime: RegimeParams | None = None, **params: Any
    ) -> None:
        rp, gp, rest = split_params(params)
        super().__init__(**rest)
        self.risk = risk or RiskManager(rp)
        self.regime_params = regime or gp
        self.regime = Regime.MIXED
        self.entry_price = 0.0
        self.r_unit = 0.0  # the trade's initial stop distance (1 R), in price
        self._prev_close = math.nan

    # ------------------------------------------------------------- setup
    def on_start(self, ctx: StrategyContext) -> None:
        super().on_start(ctx)
        g = self.regime_params
        self.ema_fast = ctx.indicator(IndicatorSpec("ema", g.ema_fast))
        self.ema_fast_ago = ctx.indicator(IndicatorSpec("ema", g.ema_fast, shift=g.slope_bars))
        self.ema_slow = ctx.indicator(IndicatorSpec("ema", g.ema_slow))
        self.adx = ctx.indicator(IndicatorSpec("adx", g.adx_period))
        self.atr = ctx.indicator(IndicatorSpec("atr", g.atr_period))
        self.atr_prev = ctx.indicator(IndicatorSpec("atr", g.atr_period, shift=1))
        self.setup(ctx)

    def setup(self, ctx: StrategyContext) -> None:
        """Register the strategy's own indicators."""

    # ------------------------------------------------------------- per bar
    def on_bar(self, bar: Bar) -> Sequence[Command]:
        cmds = list(self.update_common(bar))
        if self.busy():
            return cmds
        return [*cmds, *self.decide(bar)]

    def update_common(self, bar: Bar) -> Sequence[Command]:
        """Regime and risk bookkeeping; halves the position when a black swan begins."""
        prev = self._prev_close if not math.isnan(self._prev_close) else bar.open
        tr = max(bar.high - bar.low, abs(bar.high - prev), abs(bar.low - prev))
        self.regime = classify(
            self.regime_params,
            bar.close,
            prev,
            tr,
            self.ema_fast.value,
            self.ema_fast_ago.value,
            self.ema_slow.value,
            self.adx.value,
            self.atr_prev.value,
        )
        self._prev_close = bar.close
        equity = float(self.equity(bar))
        if self.risk.on_bar(bar.ts, bar.close, equity) and self.held() > ZERO:
            return self.reduce(Decimal("0.5"), "black swan: halve exposure")
        return NO_COMMANDS

    def decide(self, bar: Bar) -> Sequence[Command]:
        if self.held() > ZERO or self.short_held() > ZERO:
            return self.manage(bar)
        if self.risk.can_enter(bar.ts) and self.wants_entry(bar):
            cmds = self.enter(bar)
            if cmds:
                self.risk.entered()
            return cmds
        return NO_COMMANDS

    def wants_entry(self, bar: Bar) -> bool:
        return False

    def enter(self, bar: Bar) -> Sequence[Command]:
        return NO_COMMANDS

    def manage(self, bar: Bar) -> Sequence[Command]:
        return NO_COMMANDS

    # ------------------------------------------------------------- helpers
    def busy(self) -> bool:
        """A market order is in flight: wait for its fill before deciding again."""
        return any(o.type is OrderType.MARKET for o in self.ctx.open_orders())

    def held(self) -> Decimal:
        """The position (free and locked base alike) in whole lots (a fee taken in base can
        leave dust below the lot step), or zero below the exchange minimum — in quantity, or
        in value at the last close (dust no order could sell must not block new entries)."""
        inst = self.ctx.instrument
        qty = inst.qty(self.ctx.position_qty)
        if qty < inst.min_qty:
            return ZERO
        if not math.isnan(self._prev_close) and qty * Decimal(repr(self._prev_close)) < (
            inst.min_notional
        ):
            return ZERO
        return qty

    def short_held(self) -> Decimal:
        """The size of a short position (shortable markets), or zero."""
        qty = self.ctx.instrument.qty(-self.ctx.position_qty)
        return qty if qty >= self.ctx.instrument.min_qty else ZERO

    def equity(self, bar: Bar) -> Decimal:
        return self.ctx.equity(self.ctx.instrument.price(bar.close))

    def exit_all(self, tag: str) -> Sequence[Command]:
        qty = self.held()
        short = self.short_held()
        if short > ZERO:
            return (
                CancelAll(),
                SubmitOrder(Side.BUY, OrderType.MARKET, short, reduce_only=True, tag=tag),
            )
        if qty <= ZERO:
            return NO_COMMANDS
        return (
            CancelAll(),
            SubmitOrder(Side.SELL, OrderType.MARKET, qty, reduce_only=True, tag=tag),
        )

    def reduce(self, fraction: Decimal, tag: str) -> Sequence[Command]:
        inst = self.ctx.instrument
        qty = inst.qty(self.held() * fraction)
        if qty < inst.min_qty:
            return NO_COMMANDS
        return (
            CancelAll(),
            SubmitOrder(Side.SELL, OrderType.MARKET, qty, reduce_only=True, tag=tag),
        )

    def sized_entry(self, bar: Bar, stop: float, scale: Decimal = Decimal(1)) -> Decimal:
        inst = self.ctx.instrument
        entry = Decimal(repr(bar.close))
        return self.risk.size(
            inst, self.equity(bar), self.ctx.free(inst.quote), entry, Decimal(repr(stop)), scale
        )

    def on_fill(self, fill: Fill) -> Sequence[Command]:
        if fill.side is Side.BUY:
            self.entry_price = float(self.ctx.position_avg_price)
        return NO_COMMANDS
