"""A second timeframe: indicators on higher-timeframe bars resampled from the strategy's own
(``IndicatorSpec(..., timeframe="4h")`` under 1h bars), each 4h bar visible only from the
1h bar that closes it — the same in backtests (vectorised) and live (incremental), and the
look-ahead check catches a strategy that reads the forming 4h bar."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from solbot.data.bars import BarArrays
from solbot.data.resample import resample
from solbot.data.synthetic import synthetic_market
from solbot.domain.instruments import sol_usdt
from solbot.domain.ledger import Ledger
from solbot.engine.core import Engine
from solbot.engine.portfolio import Portfolio
from solbot.engine.ports import SimClock
from solbot.indicators.feed import IndicatorFeed, IndicatorSpec
from solbot.research.lookahead import check_lookahead
from solbot.runtime.backtest import run_backtest
from solbot.sdk import NO_COMMANDS, OrderType, Side, Strategy, SubmitOrder
from solbot.venues.sim import SimulatedExchange

HOUR = 3_600_000


def live_values(spec: IndicatorSpec, bars: BarArrays) -> list[float]:
    feed = IndicatorFeed(base_ms=HOUR)
    series = feed.register(spec)
    out = []
    for bar in bars.bars():
        feed.advance(bar)
        out.append(series.value)
    return out


def same(a: list[float], b: list[float]) -> bool:
    return all(
        (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y)
        for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("spec", [
    IndicatorSpec("ema", 10, timeframe="4h"),
    IndicatorSpec("atr", 14, timeframe="4h"),
    IndicatorSpec("sma", 5, shift=1, timeframe="1d"),
    IndicatorSpec("bollinger", 20, output="upper", timeframe="4h"),
])  # fmt: skip
def test_backtest_and_live_see_the_same_higher_timeframe_values(spec: IndicatorSpec) -> None:
    bars, _ = synthetic_market(bars=1500, seed=4, start_ms=1_640_995_200_000 + 2 * HOUR)
    # starts inside a 4h bucket, and loses eleven hours in the middle (a gap)
    keep = np.ones(len(bars), bool)
    keep[700:711] = False
    gappy = BarArrays(bars.ts[keep], bars.open[keep], bars.high[keep], bars.low[keep],
                      bars.close[keep], bars.volume[keep], bars.symbol, bars.timeframe)  # fmt: skip
    for b in (bars, gappy):
        backtest = spec.vectorised(b).tolist()
        assert same(backtest, live_values(spec, b))
        assert sum(not math.isnan(x) for x in backtest) > len(b) // 2


def test_a_4h_bar_is_seen_from_the_1h_bar_that_closes_it_never_before() -> None:
    bars, _ = synthetic_market(bars=400, seed=4)  # starts at 00:00, on a 4h boundary
    closes = IndicatorSpec("sma", 1, timeframe="4h").vectorised(bars)
    h4 = resample(bars, "4h")
    for i in range(len(bars)):
        done = int(np.sum(h4.ts + 4 * HOUR <= bars.ts[i] + HOUR))  # 4h bars closed by then
        want = h4.close[done - 1] if done >= 1 else math.nan
        assert (math.isnan(want) and math.isnan(closes[i])) or closes[i] == want, i


class FourHourTrend(Strategy):
    """Long while the 1h close is above the 4h EMA: 4h signal, 1h execution."""

    name = "h4trend"
    needs = frozenset({"market"})

    def on_start(self, ctx):  # type: ignore[no-untyped-def]
        super().on_start(ctx)
        self.ema4h = ctx.indicator(IndicatorSpec("ema", 12, timeframe="4h"))

    def on_bar(self, bar):  # type: ignore[no-untyped-def]
        e = self.ema4h.value
        held = self.ctx.instrument.qty(self.ctx.position_qty)
        if math.isnan(e):
            return NO_COMMANDS
        if bar.close > e and held == 0 and not self.ctx.open_orders():
            return (SubmitOrder(Side.BUY, OrderType.MARKET, Decimal("5")),)
        if bar.close < e and held > 0:
            return (SubmitOrder(Side.SELL, OrderType.MARKET, held, reduce_only=True),)
        return NO_COMMANDS


class PeeksAtTheForming4hBar(FourHourTrend):
    """Reads the 4h bar still forming (its close so far) from the whole history: look-ahead."""

    def on_bar(self, bar):  # type: ignore[no-untyped-def]
        history = self.ctx._feed._history  # what a careless strategy could reach
        h4 = resample(history, "4h", drop_incomplete_last=False)
        k = int(np.searchsorted(h4.ts, bar.ts, side="right")) - 1
        if h4.close[k] > bar.close and self.ctx.position_qty == 0 and not self.ctx.open_orders():
            return (SubmitOrder(Side.BUY, OrderType.MARKET, Decimal("5")),)
        if h4.close[k] < bar.close and self.ctx.position_qty > 0:
            qty = self.ctx.instrument.qty(self.ctx.position_qty)
            return (SubmitOrder(Side.SELL, OrderType.MARKET, qty, reduce_only=True),)
        return NO_COMMANDS


def test_a_4h_informative_strategy_passes_the_lookahead_check_and_a_peek_is_caught() -> None:
    bars, _ = synthetic_market(bars=2000, seed=9)
    ok = check_lookahead(bars, FourHourTrend, checkpoints=15, seed=1)
    assert ok.ok and ok.decisions > 20, ok
    caught = check_lookahead(bars, PeeksAtTheForming4hBar, checkpoints=15, seed=1)
    assert not caught.ok


def test_a_4h_informative_strategy_places_the_same_orders_in_backtest_and_live() -> None:
    bars, _ = synthetic_market(bars=2000, seed=9)
    backtest = run_backtest(bars, FourHourTrend())
    inst = sol_usdt()
    balances = {"USDT": Decimal("10000"), "SOL": Decimal(0)}
    engine = Engine(FourHourTrend(), Portfolio(inst, Ledger(balances)),
                    SimulatedExchange(inst, balances), SimClock())  # fmt: skip
    engine.feed.base_ms = HOUR
    engine.start(history=None)
    for bar in bars.bars():
        engine.on_bar(bar)

    def fills(e: Engine) -> list[tuple[str, str, int]]:
        return [(r.fill.side.value, str(r.fill.price), r.fill.ts) for r in e.portfolio.fills]

    assert len(fills(backtest.engine)) > 20
    assert fills(engine) == fills(backtest.engine)
