"""Ladder: a small maker strategy that always keeps orders resting on the book.

When flat with nothing resting, it bids ``offset`` below the close (post-only) for a fixed
``stake``; once filled it offers the position ``target`` above its entry (post-only; at least
``offset`` above the close when the market has already passed the target). A bid
that rests longer than ``patience`` bars is cancelled and placed again near the market; with
``offer_patience`` > 0 an offer resting that long is requoted just above the market, giving
up its target (else it waits for its price). It
exists to exercise resting orders (cancel on stop, kill switch) in paper trading; it has no
claimed edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from solbot.sdk import (
    NO_COMMANDS,
    ZERO,
    Bar,
    CancelOrder,
    Command,
    Event,
    Fill,
    OrderType,
    Side,
    Strategy,
    SubmitOrder,
)


class Ladder(Strategy):
    name = "ladder"
    needs = frozenset({"limit", "post_only"})

    def __init__(
        self,
        offset: float = 0.004,
        target: float = 0.006,
        stake: float = 1000,
        patience: int = 6,
        offer_patience: int = 0,
        **rest: Any,
    ) -> None:
        super().__init__(**rest)
        if not 0 < offset < 0.5 or not 0 < target < 1:
            raise ValueError("ladder: offset must be in (0, 0.5) and target in (0, 1)")
        if stake <= 0 or patience < 1 or offer_patience < 0:
            raise ValueError(
                "ladder: stake must be positive, patience >= 1 and offer_patience >= 0"
            )
        self.offer_patience = int(offer_patience)
        self._requote = False
        self.offset, self.target = Decimal(str(offset)), Decimal(str(target))
        self.stake, self.patience = Decimal(str(stake)), int(patience)
        self._age = 0

    def on_bar(self, bar: Bar) -> Sequence[Command]:
        ctx = self.ctx
        inst = ctx.instrument
        resting = ctx.open_orders()
        if resting:
            self._age += 1
            bids = [o for o in resting if o.side is Side.BUY]
            if bids and self._age >= self.patience:
                return [CancelOrder(o.order_id) for o in bids]
            offers = [o for o in resting if o.side is Side.SELL]
            if offers and self.offer_patience and self._age >= self.offer_patience:
                self._requote = True  # the next offer gives up the target: just above market
                return [CancelOrder(o.order_id) for o in offers]
            return NO_COMMANDS
        self._age = 0
        held = inst.qty(ctx.free(inst.base))  # whole lots: a fee in base leaves dust
        if held >= inst.min_qty and held * inst.price(bar.close) >= inst.min_notional:
            entry = self._entry_price(bar)
            # a maker offer: the target above entry, but never at or below the market (a
            # post-only order there would be refused as immediately fillable)
            above_market = Decimal(repr(bar.close)) * (1 + self.offset)
            target = above_market if self._requote else entry * (1 + self.target)
            price = inst.price_up(max(target, above_market))
            return (
                SubmitOrder(
                    Side.SELL, OrderType.LIMIT, held, price=price, post_only=True, tag="take-profit"
                ),
            )
        self._requote = False  # flat: the next position gets its target again
        price = inst.price_down(Decimal(repr(bar.close)) * (1 - self.offset))
        budget = min(self.stake, ctx.free(inst.quote) * Decimal("0.99"))
        qty = inst.qty(budget / price) if price > ZERO else ZERO
        if qty < inst.min_qty or qty * price < inst.min_notional:
            return NO_COMMANDS
        return (
            SubmitOrder(Side.BUY, OrderType.LIMIT, qty, price=price, post_only=True, tag="bid"),
        )

    def _entry_price(self, bar: Bar) -> Decimal:
        pos = self.ctx.position_avg_price
        return pos if pos > ZERO else Decimal(repr(bar.close))

    def on_fill(self, fill: Fill) -> Sequence[Command]:
        self._age = 0
        return NO_COMMANDS

    def on_order_event(self, event: Event) -> Sequence[Command]:
        return NO_COMMANDS
