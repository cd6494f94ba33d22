"""The engine: routes bars to the venue and strategy, commands through risk to the venue,
and venue events through the portfolio back to the strategy.

Synchronous and deterministic. Backtests drive it bar by bar from arrays; the live runner
(an asyncio shell) drives the same object from exchange data and reports. The engine never
reads the time except through its clock.

Exits are the engine's, the same for every venue (``engine.exits``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
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
    OrderRejected,
    OrderSubmitted,
    SubmitBracket,
    SubmitOrder,
    TradingStateChanged,
)
from solbot.domain.orders import Order
from solbot.domain.values import ZERO, OrderId, Side, TradingState
from solbot.engine.exits import BracketExits
from solbot.engine.portfolio import Portfolio
from solbot.engine.ports import Clock, Venue
from solbot.engine.risk import RiskEngine
from solbot.engine.strategy import Strategy, StrategyContext
from solbot.indicators.feed import IndicatorFeed

log = logging.getLogger(__name__)

Listener = Callable[[Event | TradingStateChanged], None]

# how venues say a stop could not rest because the market is already past it
_AT_ONCE = ("would trigger immediately", "relationship of the prices")
# orders held for cancels this many bars go ahead: a venue that lost a confirmation (it settles
# every order by its sync; this only keeps a lost one from blocking trading for good)
WAIT_BARS = 30


class Engine(BracketExits):
    def __init__(
        self,
        strategy: Strategy,
        portfolio: Portfolio,
        venue: Venue,
        clock: Clock,
        risk: RiskEngine | None = None,
        id_prefix: str = "sb",
        first_seq: int = 1,
        stop_limit_offset: Decimal | None = None,
    ) -> None:
        """``stop_limit_offset``: protective stops are stop-limits this fraction beyond their
        trigger (Binance spot has no stop-market); None: stop-market orders."""
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
        self.stop_limit_offset = stop_limit_offset
        # told of every bracket whose entry went out (a live run records it: a restart that
        # finds the entry still open, or filled without its exits, protects it the same way)
        self.on_bracket: Callable[[OrderId, SubmitBracket], None] = lambda oid, cmd: None
        self._cancelling: set[OrderId] = set()  # cancels asked for, not yet confirmed
        self._waiting: list[Command] = []  # commands held until those are confirmed
        self._waiting_since = -1  # the bar index the first of them waits since
        self._unprotected: deque[Order] = deque()  # stops the venue refused as at once
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
        self.strategy.on_start(StrategyContext(self.portfolio, self.risk, self.clock, self.feed))
        self._strategy_on_bar = self.strategy.on_bar

    def stop(self) -> None:
        self._run_strategy(self.strategy.on_stop)

    # ---------------------------------------------------------------- market data
    def on_bar(self, bar: Bar) -> None:
        """One closed bar: the venue matches what was resting, then the strategy decides."""
        self.warm_up(bar)
        if self._cancelling or self._waiting:
            self._check_waiting()
        if self.stop_limit_offset is not None and self.portfolio.open_order_count():
            self._stops_passed(bar)
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

    def warm_indicators(self, bar: Bar) -> None:
        """A bar from before the last one processed (a restart's warm-up): it advances the
        indicators only — the clock, the venue and the books are already past it."""
        self._feed_advance(bar)

    def resume(self, last: Bar) -> None:
        """The restart's warm-up is done: the strategy is told the last bar processed."""
        try:
            self.strategy.on_resume(last)
        except Exception as exc:
            self._strategy_failed(exc)

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
            if self._cancelling and self._queue:  # confirmations already in hand
                self._drain()
            if self._cancelling and isinstance(cmd, SubmitOrder | SubmitBracket):
                if not self._waiting:
                    self._waiting_since = self._bar_index
                self._waiting.append(cmd)  # sent once the cancels before it are confirmed
                continue
            if isinstance(cmd, SubmitOrder):
                self._submit(cmd)
            elif isinstance(cmd, SubmitBracket):
                entry = self._prepare(cmd.entry)
                if entry is not None:
                    self._brackets[entry.order_id] = cmd
                    self.on_bracket(entry.order_id, cmd)
                    plan = self.exit_plan(entry, cmd)
                    if plan is None:
                        self.venue.submit(entry)
                    else:  # a resting entry: the venue may rest its exits with it (OTOCO)
                        self.venue.submit_bracket(entry, plan)
            elif isinstance(cmd, CancelOrder):
                self._cancel(cmd.order_id)
            elif isinstance(cmd, CancelAll):
                for order in self.portfolio.open_orders():
                    if cmd.keep_protection and order.reduce_only and order.oco_group:
                        continue
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
        order = self._prepare(cmd, oco_group)
        if order is not None:
            self.venue.submit(order)
        return order

    def _prepare(
        self, cmd: SubmitOrder, oco_group: str | None = None, client_id: str | None = None
    ) -> Order | None:
        """The order for ``cmd``: denied (None) or reserved and recorded as submitted (its
        intent durable before the caller hands it to the venue); ``client_id``: the one the
        venue already knows it by (an exit it placed with its entry)."""
        ts = self.clock.timestamp_ms()
        order = Order(
            order_id=self._next_id(),
            symbol=self.portfolio.instrument.symbol,
            side=cmd.side,
            type=cmd.type,
            quantity=cmd.quantity if cmd.quantity is not None else ZERO,
            price=cmd.price,
            trigger_price=cmd.trigger_price,
            trailing_bps=cmd.trailing_bps,
            quote_quantity=cmd.quote_quantity,
            post_only=cmd.post_only,
            reduce_only=cmd.reduce_only,
            tag=cmd.tag,
            created_ts=ts,
            oco_group=oco_group,
        )
        order.client_id = client_id or self.venue.client_id(order.order_id)
        self.portfolio.add(order)
        ref = self.reference_price()
        reason = self._shape_error(cmd) or self.risk.check(
            order, self.portfolio, ref, cmd.protective
        )
        if reason is not None:
            denied = OrderDenied(order.order_id, ts, reason)
            self.portfolio.deny(order, denied)
            self._notify(denied)
            self._run_strategy(lambda: self.strategy.on_order_event(denied))
            return None
        submitted = OrderSubmitted(order.order_id, ts)
        self.portfolio.submitted(order, submitted, ref)
        self._notify(submitted)
        return order

    @staticmethod
    def _shape_error(cmd: SubmitOrder) -> str | None:
        if (cmd.quantity is None) == (cmd.quote_quantity is None):
            return "give exactly one of quantity and quote_quantity"
        return None

    def _cancel(self, order_id: OrderId) -> None:
        order = self.portfolio.orders.get(order_id)
        if order is not None and order.status.is_open:
            self._cancelling.add(order_id)
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
                # Exits are armed once every report already in hand is applied, so they are
                # judged against the same position and balances the venue has.
                if self._to_arm:
                    entry_id, bracket = self._to_arm.popleft()
                    self._arm_bracket(entry_id, bracket)
                elif self._unprotected:
                    self._exit_now(self._unprotected.popleft(), "stop at market")
                elif self._waiting and not self._cancelling:
                    self._release_waiting()
                else:
                    break
        finally:
            self._draining = False

    def _handle(self, event: Event) -> None:
        order = self.portfolio.apply(event)
        self._notify(event)
        if order.status.is_terminal:
            self._cancelling.discard(order.order_id)
            if (
                isinstance(event, OrderRejected)
                and order.oco_group is not None
                and order.type.is_stop
                and order.reduce_only
                and "stopping" not in event.reason.lower()
            ):
                # a bracket's stop the venue refused — the price already past it (Binance:
                # "Order would trigger immediately", an OCO's "relationship of the prices"),
                # or for any other final reason (a filter such as TRAILING_DELTA or
                # MAX_NUM_ALGO_ORDERS, the balance): the position it was to protect has no
                # stop at the exchange, so it leaves at market (as freqtrade's emergency exit
                # when its stop on the exchange cannot be placed). Not when the bot is
                # stopping: the kill switch cancels everything and sends nothing more.
                if not any(s in event.reason.lower() for s in _AT_ONCE):
                    log.warning(
                        "%s: the exchange refused the stop (%s): leaving at market",
                        order.order_id, event.reason,
                    )  # fmt: skip
                self._unprotected.append(order)
        if isinstance(event, OrderFilled):
            self._run_strategy(lambda: self.strategy.on_fill(event.fill))
            bracket = self._brackets.get(event.order_id)
            if bracket is not None and self.portfolio.orders[event.order_id].status.is_terminal:
                del self._brackets[event.order_id]
                self._to_arm.append((event.order_id, bracket))
            elif bracket is None and order.status.is_terminal:
                self._cover_add(order)
        elif not isinstance(event, OrderAccepted):
            bracket = self._brackets.pop(event.order_id, None)
            if bracket is not None:  # a partly filled entry that ended: protect what filled
                self._to_arm.append((event.order_id, bracket))
            self._run_strategy(lambda: self.strategy.on_order_event(event))

    def exits_pending(self) -> bool:
        """Cancels of ours not yet confirmed, or orders waiting for them (an exit)."""
        return bool(self._cancelling or self._waiting)

    def cancel_requested(self, order_id: OrderId) -> bool:
        return order_id in self._cancelling

    def _release_waiting(self) -> None:
        """The cancels are confirmed: send what waited, a sell resized to what it may sell."""
        cmds, self._waiting = self._waiting, []
        inst = self.portfolio.instrument
        out: list[Command] = []
        free = self.portfolio.ledger.free(inst.base)  # what the sells below may share
        for cmd in cmds:
            if (
                isinstance(cmd, SubmitOrder)
                and cmd.side is Side.SELL
                and cmd.reduce_only
                and cmd.quantity is not None
                and not inst.shortable
            ):
                # a strategy that asked for its exit again at every tick while the cancels
                # were out gets one sell, not one sell and N denials
                qty = inst.qty(min(cmd.quantity, free))
                if qty >= inst.min_qty:  # else an exit filled meanwhile: nothing left to sell
                    out.append(replace(cmd, quantity=qty))
                    free -= qty
            else:
                out.append(cmd)
        self.execute(out)

    def _check_waiting(self) -> None:
        if self._waiting and self._bar_index - self._waiting_since >= WAIT_BARS:
            log.warning("cancels unconfirmed for %d bars: %s", WAIT_BARS, sorted(self._cancelling))
            self._cancelling.clear()
            self._release_waiting()

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
