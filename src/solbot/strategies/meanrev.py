"""Mean reversion: buy a close below the lower Bollinger band when RSI is oversold; take
profit at the middle band, stop ``stop_atr`` ATRs under the entry (a bracket), and leave
after ``max_bars`` bars if neither happened.

``entry_bps`` > 0: instead of buying at market, bid that many basis points under the close
with a resting limit (a maker entry: no taker fee, no slippage; on Binance an OTOCO whose
pending stop and take-profit rest the moment it fills); a bid still unfilled at the next bar
is withdrawn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from solbot.sdk import (
    NO_COMMANDS,
    ZERO,
    Bar,
    CancelAll,
    Command,
    Float,
    IndicatorSpec,
    Int,
    OrderType,
    Param,
    Side,
    StrategyContext,
    SubmitBracket,
    SubmitOrder,
)
from solbot.strategies.managed import ManagedStrategy


class MeanReversion(ManagedStrategy):
    name = "meanrev"
    needs = frozenset({"market", "bracket"})
    parameters: ClassVar[dict[str, Param]] = {
        "period": Int(20, 2, 1000, search=(10, 40), help="Bollinger lookback (bars)"),
        "k": Float(2.0, 0.1, 10.0, search=(1.5, 3.0), help="band width (std devs)"),
        "rsi_max": Float(35.0, 1.0, 99.0, search=(20, 45), help="oversold below"),
        "stop_atr": Float(1.5, 0.05, 50.0, search=(1.0, 3.0), help="stop distance (ATRs)"),
        "max_bars": Int(48, 1, 100_000, optimize=False, help="leave after this many bars"),
        "entry_bps": Float(0.0, 0.0, 999.0, optimize=False, help="bid under the close (bps)"),
    }

    def __init__(
        self,
        period: int = 20,
        k: float = 2.0,
        rsi_max: float = 35.0,
        stop_atr: float = 1.5,
        max_bars: int = 48,
        entry_bps: float = 0.0,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.period, self.k, self.rsi_max = int(period), float(k), float(rsi_max)
        self.stop_atr, self.max_bars = float(stop_atr), int(max_bars)
        self.entry_bps = float(entry_bps)
        if not 0 <= self.entry_bps < 1000:
            raise ValueError(f"entry_bps must be in [0, 1000), got {entry_bps}")
        self.bars_held = 0

    def setup(self, ctx: StrategyContext) -> None:
        self.lower = ctx.indicator(
            IndicatorSpec("bollinger", self.period, output="lower", k=self.k)
        )
        self.middle = ctx.indicator(
            IndicatorSpec("bollinger", self.period, output="middle", k=self.k)
        )
        self.rsi = ctx.indicator(IndicatorSpec("rsi", 14))

    def wants_entry(self, bar: Bar) -> bool:
        return (
            bar.close < self.lower.value
            and self.rsi.value < self.rsi_max
            and self.middle.value > bar.close
        )

    def decide(self, bar: Bar) -> Sequence[Command]:
        if self.entry_bps > 0 and self.held() == ZERO and self._bidding():
            return (CancelAll(),)  # last bar's bid went unfilled: withdrawn, decided anew next
        return super().decide(bar)

    def _bidding(self) -> bool:
        return any(
            o.type is OrderType.LIMIT and o.side is Side.BUY and not o.reduce_only
            for o in self.ctx.open_orders()
        )

    def enter(self, bar: Bar) -> Sequence[Command]:
        inst = self.ctx.instrument
        stop = float(inst.price_down(max(bar.close - self.stop_atr * self.atr.value, 0.0)))
        qty = self.sized_entry(bar, stop)
        if qty <= 0 or stop <= 0:
            return NO_COMMANDS
        entry = SubmitOrder(Side.BUY, OrderType.MARKET, qty, tag="mr-entry")
        if self.entry_bps > 0:
            bid = inst.price_down(bar.close * (1 - self.entry_bps / 10_000))
            if float(bid) <= stop:
                return NO_COMMANDS  # the bid would rest at or under its own stop
            entry = SubmitOrder(Side.BUY, OrderType.LIMIT, qty, price=bid, tag="mr-entry")
        self.bars_held = 0
        self.r_unit = bar.close - stop
        return (
            SubmitBracket(
                entry,
                take_profit=inst.price_up(self.middle.value),
                stop_loss=inst.price_down(stop),
                tag="meanrev",
            ),
        )

    def manage(self, bar: Bar) -> Sequence[Command]:
        self.bars_held += 1
        if bar.close >= self.middle.value or self.bars_held >= self.max_bars:
            return self.exit_all("mr-exit")
        return NO_COMMANDS

    def on_fill(self, fill: Any) -> Sequence[Command]:
        return NO_COMMANDS
