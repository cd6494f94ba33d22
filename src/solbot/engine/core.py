"""The engine: routes bars to the venue and strategy, commands through risk to the venue,
and venue events through the portfolio back to the strategy.

Synchronous and deterministic. Backtests drive it bar by bar from arrays; the live runner
(an asyncio shell) drives the same object from exchange data and reports. The engine never
reads the time except through its clock.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from itertools import count

from solbot.data.bars import BarArrays
from solbot.domain.messages import (
    Bar,
    CancelAll,
    CancelOrder,
    Command,
    Event,
    OrderAccepted,
    OrderDenied,
    OrderFilled,
    OrderSubmitted,
    SubmitBracket,
    SubmitOrder,
    TradingStateChanged,
)
from solbot.domain.orders import Order
from solbot.domain.values import ZERO, OrderId, OrderType, TradingState
from solbot.engine.portfolio import Portfolio
from solbot.engine.ports import Clock, Venue
from solbot.engine.risk import RiskEngine
from solbot.engine.strategy import Strategy, StrategyContext
from solbot.indicators.feed import IndicatorFeed

log = logging.getLogger(__name__)

Listener = Callable[[Event | TradingStateChanged], None]


class Engine:
    def __init__(
        self,
        strategy: Strategy,
        portfolio: Portfolio,
        venue: Venue,
        clock: Clock,
        risk: RiskEngine | None = None,
        id_prefix: str = "sb",
        first_seq: int = 1,
    ) -> None:
        self.strategy = strategy
        self.portfolio = portfolio
        self.venue = venue
        self.clock = clock
        self.risk = risk or RiskEngine()
        self.feed = IndicatorFeed()
        self.last_bar: Bar | None = None
        self.listeners: list[Listener] = []
        self._queue: deque[Event] = deque()
        self._seq = count(first_seq)
        self._prefix = id_prefix
        self._brackets: dict[OrderId, SubmitBracket] = {}
        self._to_arm: deque[tuple[OrderId, SubmitBracket]] = deque()
        self._draining = False
        self._bar_index = -1
        venue.bind(self._queue.append)
        # Bound once: on_bar runs millions of times in a backtest.
        self._clock_set: Callable[[int], None] = clock.set  # type: ignore[attr-defined]
        self._venue_on_bar = venue.on_bar
        self._feed_advance = self.feed.advance

    # ---------------------------------------------------------------- lifecycle
    def start(self, history: BarArrays | None = None) -> None:
        """``history``: the bars a backtest will feed, so indicators are vectorised once."""
        if history is not None:
            self.feed.preload(history)
        self.strategy.on_start(StrategyContext(self))
        self._strategy_on_bar = self.strategy.on_bar

    def stop(self) -> None:
        self._run_strategy(self.strategy.on_stop)

    # ---------------------------------------------------------------- market data
    def on_bar(self, bar: Bar) -> None:
        """One closed bar: the venue matches what was resting, then the strategy decides."""
        self.warm_up(bar)
        try:  # zero-cost in CPython 3.11+ when nothing raises
            cmds = self._strategy_on_bar(bar)
        except Exception as exc:
            self._strategy_failed(exc)
            return
        if cmds:
            self.execute(cmds)

    def warm_up(self, bar: Bar) -> None:
        """A bar that only advances time, the venue and the indicators (no strategy)."""
        self._clock_set(bar.ts)
        self._bar_index += 1
        self._venue_on_bar(bar)
        if self._queue:
            self._drain()
        self.last_bar = bar
        self._feed_advance(bar)

    # ---------------------------------------------------------------- control
    def set_trading_state(self, state: TradingState, reason: str) -> None:
        if self.risk.set_state(state, reason):
            ev = TradingStateChanged(state.value, reason, self.clock.timestamp_ms())
            log.warning("trading state -> %s: %s", state.value, reason)
            for fn in self.listeners:
                fn(ev)

    def on_venue_event_drain(self) -> None:
        """Apply whatever the venue reported outside ``on_bar`` (e.g. an immediate fill)."""
        if self._queue:
            self._drain()

    def on_venue_event(self, event: Event) -> None:
        """Entry point for a live venue's reports (the sim venue uses the bound queue)."""
        self._queue.append(event)
        self._drain()

    # ---------------------------------------------------------------- commands
    def execute(self, commands: Iterable[Command]) -> None:
        for cmd in commands:
            if isinstance(cmd, SubmitOrder):
                self._submit(cmd)
            elif isinstance(cmd, SubmitBracket):
                entry = self._submit(cmd.entry)
                if entry is not None:
                    self._brackets[entry.order_id] = cmd
            elif isinstance(cmd, CancelOrder):
                self._cancel(cmd.order_id)
            elif isinstance(cmd, CancelAll):
                for order in self.portfolio.open_orders():
                    self._cancel(order.order_id)
            if self._queue:  # apply what the venue reported before the next command
                self._drain()

    def reference_price(self) -> Decimal:
        bar = self.last_bar
        if bar is None:
            return ZERO
        return self.portfolio.instrument.price(bar.close)

    def _next_id(self) -> OrderId:
        return OrderId(f"{self._prefix}-{next(self._seq)}")

    def _submit(self, cmd: SubmitOrder, oco_group: str | None = None) -> Order | None:
        ts = self.clock.timestamp_ms()
        order = Order(
            order_id=self._next_id(),
            symbol=self.portfolio.instrument.symbol,
            side=cmd.side,
            type=cmd.type,
            quantity=cmd.quantity if cmd.quantity is not None else ZERO,
            price=cmd.price,
            trigger_price=cmd.trigger_price,
            quote_quantity=cmd.quote_quantity,
            post_only=cmd.post_only,
            reduce_only=cmd.reduce_only,
            tag=cmd.tag,
            created_ts=ts,
            oco_group=oco_group,
        )
        self.portfolio.add(order)
        ref = self.reference_price()
        reason = self._shape_error(cmd) or self.risk.check(order, self.portfolio, ref)
        if reason is not None:
            denied = OrderDenied(order.order_id, ts, reason)
            self.portfolio.deny(order, denied)
            self._notify(denied)
            self._run_strategy(lambda: self.strategy.on_order_event(denied))
            return None
        submitted = OrderSubmitted(order.order_id, ts)
        self.portfolio.submitted(order, submitted, ref)
        self._notify(submitted)
        self.venue.submit(order)
        return order

    @staticmethod
    def _shape_error(cmd: SubmitOrder) -> str | None:
        if (cmd.quantity is None) == (cmd.quote_quantity is None):
            return "give exactly one of quantity and quote_quantity"
        return None

    def _cancel(self, order_id: OrderId) -> None:
        order = self.portfolio.orders.get(order_id)
        if order is not None and order.status.is_open:
            self.venue.cancel(order_id)

    # ---------------------------------------------------------------- events
    def _drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        self.portfolio.bar_index = self._bar_index  # fills are stamped with their bar
        try:
            queue = self._queue
            while True:
                while queue:
                    self._handle(queue.popleft())
                if not self._to_arm:
                    break
                # Exits are armed once every report already in hand is applied, so they are
                # judged against the same position and balances the venue has.
                entry_id, bracket = self._to_arm.popleft()
                self._arm_bracket(entry_id, bracket)
        finally:
            self._draining = False

    def _handle(self, event: Event) -> None:
        self.portfolio.apply(event)
        self._notify(event)
        if isinstance(event, OrderFilled):
            self._run_strategy(lambda: self.strategy.on_fill(event.fill))
            bracket = self._brackets.get(event.order_id)
            if bracket is not None and self.portfolio.orders[event.order_id].status.is_terminal:
                del self._brackets[event.order_id]
                self._to_arm.append((event.order_id, bracket))
        elif not isinstance(event, OrderAccepted):
            bracket = self._brackets.pop(event.order_id, None)
            if bracket is not None:  # a partly filled entry that ended: protect what filled
                self._to_arm.append((event.order_id, bracket))
            self._run_strategy(lambda: self.strategy.on_order_event(event))

    def _arm_bracket(self, entry_id: OrderId, bracket: SubmitBracket) -> None:
        entry = self.portfolio.orders[entry_id]
        qty = entry.filled_qty
        if qty <= ZERO:
            return
        exit_side = entry.side.opposite()
        group = f"oco-{entry_id}"
        tp = SubmitOrder(
            exit_side,
            OrderType.LIMIT,
            qty,
            price=bracket.take_profit,
            reduce_only=True,
            tag=bracket.tag or "take-profit",
        )
        sl = SubmitOrder(
            exit_side,
            OrderType.STOP_MARKET,
            qty,
            trigger_price=bracket.stop_loss,
            reduce_only=True,
            tag=bracket.tag or "stop-loss",
        )
        if self._submit(sl, oco_group=group) is not None:
            self._submit(tp, oco_group=group)

    def _notify(self, event: Event) -> None:
        for fn in self.listeners:
            fn(event)

    def _run_strategy(self, call: Callable[[], Sequence[Command]]) -> None:
        """Strategy code is fenced: an exception halts trading rather than the process."""
        try:
            cmds = call()
        except Exception as exc:
            self._strategy_failed(exc)
            return
        if cmds:
            self.execute(cmds)

    def _strategy_failed(self, exc: Exception) -> None:
        log.error("strategy %s failed: %r", self.strategy.name, exc, exc_info=exc)
        self.set_trading_state(TradingState.HALTED, f"strategy error: {exc!r}")
