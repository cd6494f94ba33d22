"""``solbot new-strategy NAME``: a commented strategy file that backtests as it is."""

from __future__ import annotations

import re
from pathlib import Path

from solbot.domain.errors import ConfigurationError

NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")

TEMPLATE = '''"""{name}: a strategy of your own, written by `solbot new-strategy {name}`.

An EMA crossover with a bracket: buy when the fast EMA crosses above the slow one, with a
stop `stop_atr` ATRs under the entry and a take-profit `take_profit_atr` ATRs above it (on
Binance both rest at the exchange as one order list); leave at market when the fast EMA
falls back under the slow one. Replace the rules with yours; keep to `solbot.sdk`.

From the folder this file is in:

    solbot backtest --data FILE --strategy {name}.py --out runs/{name}
    solbot check-lookahead --data FILE --strategy {name}.py
    solbot optimize --data FILE --strategy {name}.py --walk-forward --out runs/{name}-wf
    SOLBOT_STRATEGY={name}.py solbot run    # paper trading on the synthetic market

See docs/strategies.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import ClassVar

from solbot.sdk import (
    NO_COMMANDS,
    Bar,
    CancelAll,
    Command,
    Float,
    IndicatorSpec,
    Int,
    OrderType,
    Param,
    Side,
    Strategy,
    StrategyContext,
    SubmitBracket,
    SubmitOrder,
)


class {cls}(Strategy):
    name = "{name}"
    # the kinds of order it sends: a live market that lacks one refuses to start
    needs = frozenset({{"market", "bracket"}})
    # what it can be tuned by: checked at --param / SOLBOT_STRATEGY_PARAMS, searched by
    # `solbot optimize` (within `search`, else the whole range; optimize=False: never)
    parameters: ClassVar[dict[str, Param]] = {{
        "fast": Int(12, 2, 200, search=(5, 30), help="fast EMA (bars)"),
        "slow": Int(48, 5, 500, search=(30, 120), help="slow EMA (bars)"),
        "stop_atr": Float(2.0, 0.5, 10.0, search=(1.0, 4.0), help="stop distance (ATRs)"),
        "take_profit_atr": Float(4.0, 0.5, 20.0, search=(2.0, 8.0), help="target (ATRs)"),
        "risk": Float(0.01, 0.001, 0.01, optimize=False, help="equity lost at the stop"),
    }}

    def __init__(
        self,
        fast: int = 12,
        slow: int = 48,
        stop_atr: float = 2.0,
        take_profit_atr: float = 4.0,
        risk: float = 0.01,
    ) -> None:
        super().__init__()
        if fast >= slow:
            raise ValueError("{name}: fast must be shorter than slow")
        self.fast, self.slow = fast, slow
        self.stop_atr, self.take_profit_atr, self.risk = stop_atr, take_profit_atr, risk
        self.was_above: bool | None = None

    def on_start(self, ctx: StrategyContext) -> None:
        super().on_start(ctx)
        # indicators are registered once; `.value` is the value at the bar being decided
        # (computed from closed bars only: the same in backtests, paper and live)
        self.fast_ema = ctx.indicator(IndicatorSpec("ema", self.fast))
        self.slow_ema = ctx.indicator(IndicatorSpec("ema", self.slow))
        self.atr = ctx.indicator(IndicatorSpec("atr", 14))

    def on_bar(self, bar: Bar) -> Sequence[Command]:
        fast, slow, atr = self.fast_ema.value, self.slow_ema.value, self.atr.value
        if math.isnan(fast) or math.isnan(slow) or math.isnan(atr):
            return NO_COMMANDS  # still warming up
        above, crossed = fast > slow, self.was_above is False and fast > slow
        self.was_above = above
        inst = self.ctx.instrument
        held = inst.qty(self.ctx.position_qty)
        if held >= inst.min_qty:
            if not above:  # the trend is over: cancel the bracket's exits, sell at market
                sell = SubmitOrder(Side.SELL, OrderType.MARKET, held, reduce_only=True)
                return (CancelAll(), sell)
            return NO_COMMANDS
        if not crossed or self.ctx.open_orders():
            return NO_COMMANDS
        close = Decimal(repr(bar.close))
        stop = inst.price_down(close - Decimal(repr(self.stop_atr * atr)))
        target = inst.price_up(close + Decimal(repr(self.take_profit_atr * atr)))
        if stop <= 0:
            return NO_COMMANDS
        # size: lose `risk` of equity at the stop, and never more than the free cash buys
        equity = self.ctx.equity(inst.price(bar.close))
        by_risk = equity * Decimal(repr(self.risk)) / (close - stop)
        by_cash = self.ctx.free(inst.quote) * Decimal("0.98") / close
        qty = inst.qty(min(by_risk, by_cash))
        if qty < inst.min_qty or qty * close < inst.min_notional:
            return NO_COMMANDS
        entry = SubmitOrder(Side.BUY, OrderType.MARKET, qty, tag="{name}-entry")
        return (SubmitBracket(entry, take_profit=target, stop_loss=stop, tag="{name}"),)
'''


def class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_") if part) or "MyStrategy"


def write_template(name: str, out_dir: Path, force: bool = False) -> Path:
    """Write ``out_dir/name.py``; ``ConfigurationError`` for a bad name or an existing file."""
    if not NAME.match(name):
        raise ConfigurationError(
            f"new-strategy: {name!r} is not a valid name (lower case letters, digits and _, "
            "starting with a letter)"
        )
    path = out_dir / f"{name}.py"
    if path.exists() and not force:
        raise ConfigurationError(f"new-strategy: {path} exists (use --force to overwrite it)")
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(TEMPLATE.format(name=name, cls=class_name(name)))
    return path
