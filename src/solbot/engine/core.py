"""The engine: routes bars to the venue and strategy, commands through risk to the venue,
and venue events through the portfolio back to the strategy.

Synchronous and deterministic. Backtests drive it bar by bar from arrays; the live runner
(an asyncio shell) drives the same object from exchange data and reports. The engine never
reads the time except through its clock.

Exits are the engine's, the same for every venue:

* A bracket's exits are one order list (``Venue.submit_list``: an OCO on Binance, one shared
  hold in the simulated exchange), armed once the entry has filled, sized at what the entry
  left in the account (a buy's fee taken in the base is not there to sell). A resting (limit)
  entry goes with its exit plan (``Venue.submit_bracket``): a venue that can rests the exits
  with it (Binance: an OTOCO, placed by the exchange the moment the entry fully fills) and
  the engine then records those (``Venue.pending_exits``) instead of sending new ones. The stop is a
  stop-limit ``stop_limit_offset`` beyond its trigger where the venue has no stop-market
  (Binance spot), else a stop-market; the take-profit is a maker-only limit.
* A protective stop that cannot rest because the market is already past it (Binance: "Order
  would trigger immediately") becomes a market exit; so does a stop-limit the market has
  gapped through without filling it (it rests below the market as a plain limit).
* Orders that follow a cancel wait for the cancel's confirmation ("cancel the resting exits,
  then sell"): on a remote venue the base an exit holds is only free again once the exchange
  has cancelled it. A simulated venue confirms at once, so backtests see no delay.
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
from solbot.domain.values import ZERO, OrderId, OrderType, Side, TradingState
from solbot.engine.portfolio import Portfolio
from solbot.engine.ports import Clock, ExitPlan, PendingExits, Venue
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
        self.strategy.on_start(StrategyContext(self))
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
                and any(s in event.reason.lower() for s in _AT_ONCE)
            ):
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

    def _cover_add(self, order: Order) -> None:
        """An add to a position its bracket protects (trend's pyramid) gets an OCO of its
        own at the bracket's prices: the resting list locks only the first entry's quantity
        and cannot grow, and replacing it would leave a moment with no stop at the exchange."""
        if order.reduce_only or order.oco_group is not None or not order.fills:
            return
        legs = [
            o
            for o in self.portfolio.open_orders()
            if o.oco_group is not None and o.reduce_only and o.side is order.side.opposite()
        ]
        stop = next((o for o in legs if o.type.is_stop and o.trigger_price is not None), None)
        if stop is None:
            return
        tp = next(
            (o for o in legs if o.oco_group == stop.oco_group and o.type is OrderType.LIMIT), None
        )
        if tp is None or tp.price is None or stop.trigger_price is None:
            return
        plan = SubmitBracket(
            SubmitOrder(order.side, order.type, order.quantity),
            tp.price,
            stop.trigger_price,
            stop.tag,
            stop.trailing_bps,
        )
        self._to_arm.append((order.order_id, plan))

    def _arm_bracket(self, entry_id: OrderId, bracket: SubmitBracket) -> None:
        entry = self.portfolio.orders[entry_id]
        inst = self.portfolio.instrument
        got = sum((abs(f.base_change) for f in entry.fills), ZERO)  # net of a base fee
        if entry.side is Side.BUY and not inst.shortable:
            got = min(got, self.portfolio.ledger.free(inst.base))
        group = f"oco-{entry_id}"
        held = self.venue.pending_exits(group)
        if held is not None and held.quantity > inst.qty(got):
            log.warning(
                "%s: the exits placed with the entry sell %s, more than it left (%s)",
                group, held.quantity, got,
            )  # fmt: skip
            held = None  # they cannot all rest; ours are sent (and refused): reconciliation
        self.protect(
            held.quantity if held is not None else inst.qty(got),
            entry.side.opposite(),
            bracket.stop_loss,
            bracket.take_profit,
            bracket.tag,
            group,
            bracket.trail_bps,
            held,
        )

    def exit_plan(self, entry: Order, bracket: SubmitBracket) -> ExitPlan | None:
        """The exits of a resting (limit) bracket entry as ``protect`` will arm them, for a
        venue that rests them with the entry; None for other entries."""
        if entry.type is not OrderType.LIMIT or entry.reduce_only or entry.price is None:
            return None
        stop, tp = self._exit_cmds(
            entry.quantity,
            entry.side.opposite(),
            bracket.stop_loss,
            bracket.take_profit,
            bracket.tag,
            bracket.trail_bps,
        )
        return ExitPlan(f"oco-{entry.order_id}", stop, tp)

    def exits_pending(self) -> bool:
        """Cancels of ours not yet confirmed, or orders waiting for them (an exit)."""
        return bool(self._cancelling or self._waiting)

    def cancel_requested(self, order_id: OrderId) -> bool:
        return order_id in self._cancelling

    def expect_bracket(self, entry_id: OrderId, bracket: SubmitBracket) -> None:
        """An entry restored from the database still open: arm its exits when it fills."""
        self._brackets[entry_id] = bracket

    def protect(
        self,
        qty: Decimal,
        side: Side,
        stop: Decimal,
        take_profit: Decimal,
        tag: str,
        group: str,
        trail_bps: int | None = None,
        held: PendingExits | None = None,
    ) -> None:
        """Rest an OCO that exits ``qty`` on ``side``: a stop at ``stop`` and a maker-only
        take-profit at ``take_profit`` (a position already past either exits at market);
        ``trail_bps``: the stop trails the best price since by that many basis points.
        ``held``: the venue already rests them (placed with the entry): they are recorded
        under its client ids — and, if the price is past either, cancelled before the exit."""
        inst = self.portfolio.instrument
        if qty < inst.min_qty:
            return
        ref = self.reference_price()
        sell = side is Side.SELL
        past = (ref <= stop or ref >= take_profit) if sell else (ref >= stop or ref <= take_profit)
        if ref > ZERO and past and held is None:
            exit_ = SubmitOrder(side, OrderType.MARKET, qty, reduce_only=True, tag="exit at once")
            self.execute([exit_])
            return
        stop_cmd, tp_cmd = self._exit_cmds(qty, side, stop, take_profit, tag, trail_bps)
        stop_order = self._prepare(stop_cmd, group, held.stop_client_id if held else None)
        if stop_order is None:
            return
        tp = self._prepare(tp_cmd, group, held.take_profit_client_id if held else None)
        if tp is None:
            self.venue.submit(stop_order)  # the stop alone still protects
        else:
            self.venue.submit_list([stop_order, tp])
        if held is not None and ref > ZERO and past:
            self._exit_now(stop_order, "exit at once")

    def _exit_cmds(
        self,
        qty: Decimal,
        side: Side,
        stop: Decimal,
        take_profit: Decimal,
        tag: str,
        trail_bps: int | None,
    ) -> tuple[SubmitOrder, SubmitOrder]:
        inst = self.portfolio.instrument
        sell = side is Side.SELL
        off = self.stop_limit_offset
        limit: Decimal | None = None
        if off is not None:
            limit = inst.price_down(stop * (1 - off)) if sell else inst.price_up(stop * (1 + off))
        stop_cmd = SubmitOrder(
            side,
            OrderType.STOP_MARKET if limit is None else OrderType.STOP_LIMIT,
            qty,
            price=limit,
            trigger_price=stop,
            reduce_only=True,
            tag=tag or "stop-loss",
            trailing_bps=trail_bps,
        )
        tp_cmd = SubmitOrder(
            side,
            OrderType.LIMIT,
            qty,
            price=take_profit,
            post_only=True,
            reduce_only=True,
            tag=tag or "take-profit",
        )
        return stop_cmd, tp_cmd

    def _exit_now(self, stop: Order, tag: str) -> None:
        """Leave the position a stop was protecting at market (its siblings cancelled)."""
        for o in self.portfolio.open_orders():
            if o.oco_group == stop.oco_group:
                self._cancel(o.order_id)
        inst = self.portfolio.instrument
        qty = inst.qty(min(stop.quantity, abs(self.portfolio.position.qty)))  # what it protected
        if qty >= inst.min_qty:
            log.warning("%s: %s %s %s", tag, stop.side.value, qty, inst.base)
            self.execute([SubmitOrder(stop.side, OrderType.MARKET, qty, reduce_only=True, tag=tag)])

    def _stops_passed(self, bar: Bar) -> None:
        """A stop-limit the close is beyond but that still rests: gapped past its limit."""
        for o in self.portfolio.open_orders():
            t = o.trigger_price
            if (
                o.type is OrderType.STOP_LIMIT
                and o.reduce_only
                and t is not None
                and ((bar.close <= t) if o.side is Side.SELL else (bar.close >= t))
                and o.order_id not in self._cancelling
            ):
                self._exit_now(o, "stop-limit passed: exit at market")

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
