"""Strategy base class: callbacks return commands; a strategy never touches the venue."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from solbot.domain.instruments import Instrument
from solbot.domain.messages import Bar, Command, Event, Fill
from solbot.domain.orders import Order
from solbot.domain.values import OrderId, TradingState
from solbot.engine.params import Param
from solbot.indicators.feed import IndicatorFeed, IndicatorSpec, Series

if TYPE_CHECKING:
    from solbot.engine.portfolio import Portfolio
    from solbot.engine.ports import Clock
    from solbot.engine.risk import RiskEngine

NO_COMMANDS: tuple[Command, ...] = ()


class StrategyContext:
    """Read-only view for a strategy of what the engine trades with: its portfolio, its
    trading state, its clock and its indicators."""

    __slots__ = ("_clock", "_feed", "_portfolio", "_risk")

    def __init__(
        self, portfolio: Portfolio, risk: RiskEngine, clock: Clock, feed: IndicatorFeed
    ) -> None:
        self._portfolio, self._risk, self._clock, self._feed = portfolio, risk, clock, feed

    @property
    def instrument(self) -> Instrument:
        return self._portfolio.instrument

    @property
    def position_qty(self) -> Decimal:
        return self._portfolio.position.qty

    @property
    def position_avg_price(self) -> Decimal:
        return self._portfolio.position.avg_price

    @property
    def trading_state(self) -> TradingState:
        return self._risk.state

    def free(self, asset: str) -> Decimal:
        return self._portfolio.ledger.free(asset)

    def equity(self, mark: Decimal) -> Decimal:
        return self._portfolio.equity(mark)

    def open_orders(self) -> list[Order]:
        return self._portfolio.open_orders()

    def order(self, order_id: str) -> Order | None:
        return self._portfolio.orders.get(OrderId(order_id))

    def timestamp_ms(self) -> int:
        return self._clock.timestamp_ms()

    def indicator(self, spec: IndicatorSpec) -> Series:
        return self._feed.register(spec)


ORDER_KINDS = frozenset({"market", "limit", "post_only", "bracket", "quote_market_buy"})


class Strategy:
    """Subclass and override the callbacks. Parameters come in as keyword arguments.

    ``needs``: the kinds of order the strategy sends (``ORDER_KINDS``: market orders, limits,
    post-only limits, brackets with an exchange-side OCO, quote-sized market buys); a live
    market that lacks one of them refuses to start rather than reject them one by one."""

    name: ClassVar[str] = "base"
    needs: ClassVar[frozenset[str]] = ORDER_KINDS
    # what it can be tuned by (``engine.params``): checked when it is built, searched by
    # ``solbot optimize``
    parameters: ClassVar[dict[str, Param]] = {}
    ctx: StrategyContext

    def __init__(self, **params: Any) -> None:
        if params:
            raise ValueError(f"{self.name}: unknown parameters {sorted(params)}")

    def warmup_bars(self, bar_ms: int) -> int:
        """Bars of history the strategy needs before its first decision (research runs
        start a test or train window this many bars early, so a window's first days are
        traded with its indicators warm). Override when a lookback is longer than 200 bars
        (daily signals under 1h bars, say)."""
        return 200

    def on_start(self, ctx: StrategyContext) -> None:
        self.ctx = ctx

    def on_resume(self, last: Bar) -> None:
        """After a restart, once the indicators are warm over the bars up to ``last``: the
        last bar the stopped run processed (its ``on_bar`` was called). Set what the strategy
        keeps besides its indicators (a decision already made that day, say); no commands —
        the next ``on_bar`` trades. Added in SDK 1.1.0."""

    def on_bar(self, bar: Bar) -> Sequence[Command]:
        return NO_COMMANDS

    def on_fill(self, fill: Fill) -> Sequence[Command]:
        return NO_COMMANDS

    def on_order_event(self, event: Event) -> Sequence[Command]:
        return NO_COMMANDS

    def on_stop(self) -> Sequence[Command]:
        return NO_COMMANDS
