"""Trend-follow: Donchian breakout confirmed by ADX; R-multiple brackets, trailing stop,
pyramiding.

Entry: the close breaks the highest high of the previous ``entry_period`` bars while
ADX >= ``adx_min``. 1 R = ``trail_atr`` × ATR. The entry goes out as a bracket: take-profit
at ``tp_r`` R, stop at 1 R, sized so the stop loses ``risk_per_trade`` of equity. While
long: a trailing stop ``trail_atr`` × ATR under the close (tightened after a black swan),
exit at the close when it is broken, when Parabolic SAR flips above price, or when the
close falls below EMA(fast). For each full R of progress add ``pyramid_size`` of the first
size, at most ``max_adds`` times.

``exchange_trail``: the bracket's stop trails at the exchange too (Binance ``trailingDelta``,
``faqs/trailing-stop-faq.md``): a stop that follows the highest trade since the entry by the
entry's 1 R (as basis points of the entry price, within the exchange's 10-2,000), so that a
bot that stops running leaves a position protected at its trail, not at its first stop. Off
by default: it exits on the exchange's intrabar high, which the close-based trail does not
(``docs/strategy.md`` has both in a backtest).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

from solbot.sdk import (
    NO_COMMANDS,
    Bar,
    Choice,
    Command,
    Flag,
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

TRAIL_MIN_BPS, TRAIL_MAX_BPS = 10, 2000  # Binance's TRAILING_DELTA filter (as recorded)


class TrendFollow(ManagedStrategy):
    name = "trend"
    needs = frozenset({"market", "bracket"})
    parameters: ClassVar[dict[str, Param]] = {
        "entry_period": Int(20, 2, 1000, search=(10, 60), help="breakout lookback (bars)"),
        "adx_min": Float(25.0, 0.0, 100.0, search=(15, 35), help="trend strength to enter"),
        "trail_atr": Float(1.2, 0.05, 50.0, search=(0.8, 4.0), help="stop distance (ATRs)"),
        "tp_r": Float(2.5, 0.1, 100.0, search=(1.5, 5.0), help="take-profit (R multiples)"),
        "pyramid_size": Float(0.5, 0.0, 1.0, optimize=False, help="each add's size"),
        "max_adds": Int(2, 0, 20, optimize=False, help="adds to a winning position"),
        "direction": Choice("long", ("long", "short"), optimize=False),
        "exchange_trail": Flag(False, help="trail the stop at the exchange"),
    }

    def __init__(
        self,
        entry_period: int = 20,
        adx_min: float = 25.0,
        trail_atr: float = 1.2,
        tp_r: float = 2.5,
        pyramid_size: float = 0.5,
        max_adds: int = 2,
        direction: str = "long",
        exchange_trail: bool = False,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.trails_at_exchange = bool(exchange_trail)
        if direction not in ("long", "short"):
            raise ValueError("trend: direction must be 'long' or 'short'")
        self.short = direction == "short"  # the mirror image; needs a shortable market
        self.entry_period, self.adx_min, self.trail_atr = int(entry_period), adx_min, trail_atr
        self.tp_r, self.pyramid_size, self.max_adds = tp_r, pyramid_size, int(max_adds)
        self.trail = 0.0
        self.adds = 0

    def setup(self, ctx: StrategyContext) -> None:
        self.upper = ctx.indicator(
            IndicatorSpec("highest", self.entry_period, source="high", shift=1)
        )
        self.lower = ctx.indicator(
            IndicatorSpec("lowest", self.entry_period, source="low", shift=1)
        )
        self.sar = ctx.indicator(IndicatorSpec("sar"))

    def wants_entry(self, bar: Bar) -> bool:
        broke = bar.close < self.lower.value if self.short else bar.close > self.upper.value
        return broke and self.adx.value >= self.adx_min and self.atr.value > 0

    def enter(self, bar: Bar) -> Sequence[Command]:
        if self.short:
            return self._enter_short(bar)
        inst = self.ctx.instrument
        stop = float(inst.price_down(max(bar.close - self.trail_atr * self.atr.value, 0.0)))
        r = bar.close - stop  # 1 R, measured to the stop as the exchange will hold it
        qty = self.sized_entry(bar, stop)
        if qty <= 0 or stop <= 0:
            return NO_COMMANDS
        self.r_unit, self.entry_price, self.adds = r, bar.close, 0
        self.trail = stop
        self.first_qty = qty
        return (
            SubmitBracket(
                SubmitOrder(Side.BUY, OrderType.MARKET, qty, tag="trend-entry"),
                take_profit=inst.price_up(bar.close + self.tp_r * r),
                stop_loss=inst.price_down(stop),
                tag="trend",
                trail_bps=self._trail_bps(r, bar.close),
            ),
        )

    def _trail_bps(self, r: float, close: float) -> int | None:
        """1 R as the exchange's trailing delta (basis points), or None when off."""
        if not self.trails_at_exchange or close <= 0:
            return None
        return min(TRAIL_MAX_BPS, max(TRAIL_MIN_BPS, round(r / close * 10_000)))

    def _enter_short(self, bar: Bar) -> Sequence[Command]:
        inst = self.ctx.instrument
        if not inst.shortable:
            return NO_COMMANDS
        stop = float(inst.price_up(bar.close + self.trail_atr * self.atr.value))
        r = stop - bar.close
        qty = self.sized_entry(bar, stop)
        if qty <= 0 or bar.close - self.tp_r * r <= 0:
            return NO_COMMANDS
        self.r_unit, self.entry_price, self.adds, self.trail = r, bar.close, 0, stop
        self.first_qty = qty
        return (
            SubmitBracket(
                SubmitOrder(Side.SELL, OrderType.MARKET, qty, tag="trend-short-entry"),
                take_profit=inst.price_down(bar.close - self.tp_r * r),
                stop_loss=inst.price(stop),
                tag="trend-short",
            ),
        )

    def _manage_short(self, bar: Bar) -> Sequence[Command]:
        tighten = self.risk.stop_multiplier()
        self.trail = min(self.trail, bar.close + self.trail_atr * self.atr.value * tighten)
        if bar.close > self.trail or self.sar.value < bar.close or bar.close > self.ema_fast.value:
            return self.exit_all("trend-short-exit")
        if (
            self.adds < self.max_adds
            and self.r_unit > 0
            and bar.close <= self.entry_price - (self.adds + 1) * self.r_unit
        ):
            scale = Decimal(str(self.pyramid_size))
            qty = min(
                self.ctx.instrument.qty(self.first_qty * scale),
                self.sized_entry(bar, bar.close + self.r_unit, scale),
            )
            if qty > 0:
                self.adds += 1
                return (SubmitOrder(Side.SELL, OrderType.MARKET, qty, tag="trend-short-add"),)
        return NO_COMMANDS

    def manage(self, bar: Bar) -> Sequence[Command]:
        if self.short:
            return self._manage_short(bar)
        atr = self.atr.value
        tighten = self.risk.stop_multiplier()
        self.trail = max(self.trail, bar.close - self.trail_atr * atr * tighten)
        if bar.close < self.trail or self.sar.value > bar.close or bar.close < self.ema_fast.value:
            return self.exit_all("trend-exit")
        if (
            self.adds < self.max_adds
            and self.r_unit > 0
            and bar.close >= self.entry_price + (self.adds + 1) * self.r_unit
        ):
            qty = self.ctx.instrument.qty(self.first_qty * Decimal(str(self.pyramid_size)))
            affordable = self.sized_entry(
                bar, bar.close - self.r_unit, Decimal(str(self.pyramid_size))
            )
            qty = min(qty, affordable)
            if qty > 0:
                self.adds += 1
                return (SubmitOrder(Side.BUY, OrderType.MARKET, qty, tag="trend-add"),)
        return NO_COMMANDS

    def on_fill(self, fill: Any) -> Sequence[Command]:
        return NO_COMMANDS  # R is measured from the first signal, not the averaged entry
