"""The look-ahead check passes for every strategy and catches a strategy that peeks."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest

from solbot.data.synthetic import synthetic_market
from solbot.domain.messages import Bar, Command, SubmitOrder
from solbot.domain.values import OrderType, Side
from solbot.engine.strategy import NO_COMMANDS, Strategy, StrategyContext
from solbot.indicators.feed import IndicatorSpec
from solbot.research.lookahead import check_lookahead
from solbot.strategies import REGISTRY

MARKET, _ = synthetic_market(bars=2500, seed=21)


@pytest.mark.parametrize("name", ["donchian", "trend", "meanrev", "solbot", "ladder", "tsmom"])
def test_strategies_make_the_same_decisions_on_truncated_data(name):
    report = check_lookahead(MARKET, REGISTRY[name], checkpoints=8, seed=1)
    assert report.ok, report.detail
    assert report.decisions > 5


class Peeking(Strategy):
    """Buys when the *next* close will be higher: the feed hands it the future."""

    name = "peeking"

    def on_start(self, ctx: StrategyContext) -> None:
        super().on_start(ctx)
        self.next_close = ctx.indicator(IndicatorSpec("sma", 1, shift=-1))

    def on_bar(self, bar: Bar) -> Sequence[Command]:
        if self.ctx.position_qty == 0 and self.next_close.value > bar.close * 1.01:
            return (SubmitOrder(Side.BUY, OrderType.MARKET, quote_quantity=Decimal(1000)),)
        if self.ctx.position_qty > 0 and self.next_close.value < bar.close:
            return (SubmitOrder(Side.SELL, OrderType.MARKET, self.ctx.position_qty),)
        return NO_COMMANDS


def test_a_peeking_strategy_is_caught():
    report = check_lookahead(MARKET, Peeking, checkpoints=8, seed=1)
    assert not report.ok and report.mismatch_at is not None


def test_the_switcher_on_a_shortable_market_does_not_look_ahead():
    from dataclasses import replace

    from solbot.domain.instruments import sol_usdt
    from solbot.runtime.backtest import BacktestConfig

    config = BacktestConfig(instrument=replace(sol_usdt(), shortable=True))
    report = check_lookahead(MARKET, REGISTRY["solbot"], checkpoints=8, seed=2, config=config)
    assert report.ok, report.detail
