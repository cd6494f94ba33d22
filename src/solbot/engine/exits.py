"""The engine's exits, the same for every venue (a part of ``Engine``, kept apart):

* A bracket's exits are one order list (``Venue.submit_list``: an OCO on Binance, one shared
  hold in the simulated exchange), armed once the entry has filled, sized at what the entry
  left in the account (a buy's fee taken in the base is not there to sell). A resting (limit)
  entry goes with its exit plan (``Venue.submit_bracket``): a venue that can rests the exits
  with it (Binance: an OTOCO, placed by the exchange the moment the entry fully fills) and
  the engine then records those (``Venue.pending_exits``) instead of sending new ones. The
  stop is a stop-limit ``stop_limit_offset`` beyond its trigger where the venue has no
  stop-market (Binance spot), else a stop-market; the take-profit is a maker-only limit.
* A protective stop that cannot rest because the market is already past it (Binance: "Order
  would trigger immediately") becomes a market exit; so does one the exchange refuses for
  any other final reason (a filter, the balance: nothing would protect the position), and a
  stop-limit the market has gapped through without filling it (it rests below the market as
  a plain limit).
* Orders that follow a cancel wait for the cancel's confirmation ("cancel the resting exits,
  then sell"): on a remote venue the base an exit holds is only free again once the exchange
  has cancelled it. A simulated venue confirms at once, so backtests see no delay.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

from solbot.domain.messages import Bar, Command, SubmitBracket, SubmitOrder
from solbot.domain.orders import Order
from solbot.domain.values import ZERO, OrderId, OrderType, Side
from solbot.engine.ports import ExitPlan, PendingExits

if TYPE_CHECKING:
    from solbot.engine.portfolio import Portfolio
    from solbot.engine.ports import Venue

log = logging.getLogger(__name__)


class BracketExits:
    """Arming, adopting and leaving a bracket's exits; ``Engine`` holds the state."""

    if TYPE_CHECKING:
        portfolio: Portfolio
        venue: Venue
        stop_limit_offset: Decimal | None
        _brackets: dict[OrderId, SubmitBracket]
        _to_arm: deque[tuple[OrderId, SubmitBracket]]
        _cancelling: set[OrderId]

        def execute(self, commands: Iterable[Command]) -> None: ...
        def reference_price(self) -> Decimal: ...
        def _prepare(
            self, cmd: SubmitOrder, oco_group: str | None = None, client_id: str | None = None
        ) -> Order | None: ...
        def _cancel(self, order_id: OrderId) -> None: ...

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
            exit_ = SubmitOrder(
                side, OrderType.MARKET, qty, reduce_only=True, tag="exit at once", protective=True
            )
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
            cmd = SubmitOrder(
                stop.side, OrderType.MARKET, qty, reduce_only=True, tag=tag, protective=True
            )
            self.execute([cmd])

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
