"""The default strategy ``solbot``: route by market regime.

UPTREND -> trend-follow entries; RANGE -> mean-reversion entries (or the range grid with
``range_mode="grid"``); MIXED -> no new entries;
DOWNTREND -> flat on a spot (long-only) market, trend-follow shorts on a market configured
as shortable; EMERGENCY -> flat and nothing new. An open
trade is managed by the strategy that opened it until it ends. All share one risk layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from solbot.indicators.regime import Regime
from solbot.sdk import (
    NO_COMMANDS,
    Bar,
    Choice,
    Command,
    Fill,
    Flag,
    Float,
    Int,
    Param,
    StrategyContext,
)
from solbot.strategies.grid import RangeGrid
from solbot.strategies.managed import ManagedStrategy, split_params
from solbot.strategies.meanrev import MeanReversion
from solbot.strategies.risk import RiskManager
from solbot.strategies.trend import TrendFollow


class RegimeSwitcher(ManagedStrategy):
    name = "solbot"
    needs = frozenset({"market", "bracket", "limit", "post_only"})
    parameters: ClassVar[dict[str, Param]] = {
        "trend_entry_period": Int(20, 2, 1000, search=(10, 60), help="trend's lookback"),
        "trend_trail_atr": Float(1.2, 0.05, 50.0, search=(0.8, 4.0), help="trend's stop"),
        "adx_trend": Float(25.0, 0.0, 100.0, search=(18, 35), help="ADX of a trend regime"),
        "mr_k": Float(2.0, 0.1, 10.0, search=(1.5, 3.0), help="meanrev's band width"),
        "range_mode": Choice("meanrev", ("meanrev", "grid"), optimize=False),
        "trend_exchange_trail": Flag(False, help="trend's stop trails at the exchange"),
    }

    def __init__(self, range_mode: str = "meanrev", **params: Any) -> None:
        if range_mode not in ("meanrev", "grid"):
            raise ValueError("solbot: range_mode must be 'meanrev' or 'grid'")
        self.range_mode = range_mode
        risk, regime, rest = split_params(params)
        trend_p = {k[6:]: v for k, v in rest.items() if k.startswith("trend_")}
        mr_p = {k[3:]: v for k, v in rest.items() if k.startswith("mr_")}
        grid_p = {k[5:]: v for k, v in rest.items() if k.startswith("grid_")}
        unknown = [k for k in rest if not k.startswith(("trend_", "mr_", "grid_"))]
        if unknown:
            raise ValueError(f"solbot: unknown parameters {sorted(unknown)}")
        super().__init__(risk=RiskManager(risk), regime=regime)
        self.trend = TrendFollow(risk=self.risk, regime=regime, **trend_p)
        self.trend_short = TrendFollow(risk=self.risk, regime=regime, direction="short", **trend_p)
        self.meanrev = MeanReversion(risk=self.risk, regime=regime, **mr_p)
        self.grid = RangeGrid(risk=self.risk, regime=regime, **grid_p)
        self.owner: ManagedStrategy | None = None
        self.trails_at_exchange = self.trend.trails_at_exchange  # ``trend_exchange_trail``

    def setup(self, ctx: StrategyContext) -> None:
        for part in (self.trend, self.trend_short, self.meanrev, self.grid):
            part.on_start(ctx)

    def decide(self, bar: Bar) -> Sequence[Command]:
        regime = self.regime
        for part in (self.trend, self.trend_short, self.meanrev, self.grid):
            part.regime = regime
        long = self.held() > 0
        short = self.short_held() > 0
        shortable = self.ctx.instrument.shortable
        if (
            regime is Regime.EMERGENCY
            or (regime is Regime.DOWNTREND and not shortable)
            or (regime is Regime.DOWNTREND and long)
        ):
            self.owner = None
            if self.grid.active:
                return self.grid.stop_grid(f"flat: {regime.name}")
            return self.exit_all(f"flat: {regime.name}") if long or short else NO_COMMANDS
        if self.owner is self.grid and self.grid.active:
            return self.grid.manage(bar)
        if long:
            return (self.owner or self.trend).manage(bar)
        if short:
            return self.trend_short.manage(bar)
        self.owner = None
        if not self.risk.can_enter(bar.ts):
            return NO_COMMANDS
        ranger: ManagedStrategy = self.grid if self.range_mode == "grid" else self.meanrev
        routes: dict[Regime, ManagedStrategy] = {Regime.UPTREND: self.trend, Regime.RANGE: ranger}
        if shortable:
            routes[Regime.DOWNTREND] = self.trend_short
        pick = routes.get(regime)
        if pick is None or not pick.wants_entry(bar):
            return NO_COMMANDS
        cmds = pick.enter(bar)
        if cmds:
            self.owner = pick
            self.risk.entered()
        return cmds

    def on_fill(self, fill: Fill) -> Sequence[Command]:
        return self.owner.on_fill(fill) if self.owner is not None else NO_COMMANDS
