"""The default strategy ``solbot``: route by market regime.

UPTREND -> trend-follow entries; RANGE -> mean-reversion entries; MIXED -> no new entries;
DOWNTREND -> flat on a spot (long-only) market; EMERGENCY -> flat and nothing new. An open
trade is managed by the strategy that opened it until it ends. All share one risk layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from solbot.domain.messages import Bar, Command, Fill
from solbot.engine.strategy import NO_COMMANDS, StrategyContext
from solbot.indicators.regime import Regime
from solbot.strategies.managed import ManagedStrategy, split_params
from solbot.strategies.meanrev import MeanReversion
from solbot.strategies.risk import RiskManager
from solbot.strategies.trend import TrendFollow


class RegimeSwitcher(ManagedStrategy):
    name = "solbot"

    def __init__(self, **params: Any) -> None:
        risk, regime, rest = split_params(params)
        trend_p = {k[6:]: v for k, v in rest.items() if k.startswith("trend_")}
        mr_p = {k[3:]: v for k, v in rest.items() if k.startswith("mr_")}
        unknown = [k for k in rest if not k.startswith(("trend_", "mr_"))]
        if unknown:
            raise ValueError(f"solbot: unknown parameters {sorted(unknown)}")
        super().__init__(risk=RiskManager(risk), regime=regime)
        self.trend = TrendFollow(risk=self.risk, regime=regime, **trend_p)
        self.meanrev = MeanReversion(risk=self.risk, regime=regime, **mr_p)
        self.owner: ManagedStrategy | None = None

    def setup(self, ctx: StrategyContext) -> None:
        self.trend.on_start(ctx)
        self.meanrev.on_start(ctx)

    def decide(self, bar: Bar) -> Sequence[Command]:
        regime = self.regime
        long = self.held() > 0
        if regime is Regime.EMERGENCY or (
            regime is Regime.DOWNTREND and not self.ctx.instrument.shortable
        ):
            self.owner = None
            return self.exit_all(f"flat: {regime.name}") if long else NO_COMMANDS
        if long:
            owner = self.owner or self.trend
            return owner.manage(bar)
        self.owner = None
        if not self.risk.can_enter(bar.ts):
            return NO_COMMANDS
        pick = (
            self.trend
            if regime is Regime.UPTREND
            else self.meanrev
            if regime is Regime.RANGE
            else None
        )
        if pick is None or not pick.wants_entry(bar):
            return NO_COMMANDS
        cmds = pick.enter(bar)
        if cmds:
            self.owner = pick
            self.risk.entered()
        return cmds

    def on_fill(self, fill: Fill) -> Sequence[Command]:
        return self.owner.on_fill(fill) if self.owner is not None else NO_COMMANDS
