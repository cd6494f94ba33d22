"""Simulated exchange: matching, fees, slippage and its own account books.

Used by backtests and by paper trading. Intrabar rules (conservative, documented in
``docs/simulation.md``):

* An order sent while bar *t* closes is first eligible on bar *t+1*.
* Market orders fill at the next bar's open, worsened by ``slippage`` (taker fee).
* Stop-market: a sell triggers when the low reaches the trigger (a buy: the high). If the
  open has already gapped through, the fill is at the open; otherwise at the trigger.
  Slippage applies to both (taker fee).
* Stop-limit (Binance ``STOP_LOSS_LIMIT``): triggers like a stop-market, then is a limit at
  its price. Triggered inside the bar it fills at the trigger less slippage, never beyond its
  limit (taker). If the open gaps beyond the limit it does not fill: it rests as a limit (a
  sell fills later at its price when the market trades back through it, as a maker).
* A stop whose trigger the last close has already reached is rejected ("Order would trigger
  immediately", as Binance does).
* A trailing stop (``trailing_bps``; Binance ``trailingDelta`` without ``stopPrice``,
  ``faqs/trailing-stop-faq.md``: a sell "will trigger after a price decrease of the supplied
  delta, relative to the highest trade price since submission") tracks the best price from
  the last close at its arrival: on each bar it is first a stop at that best price less the
  delta (the stop is assumed to come before the bar's new high), then the best price moves
  to the bar's high (a buy: low, plus the delta). A stop-limit keeps its limit price.
* Resting limit orders fill at their limit price (maker fee) only when the market trades
  *through* the price (low < limit for a buy), unless ``fill_limit_on_touch``. A limit
  that was marketable on arrival fills at the open as a taker when the open is at or
  better than its price. Post-only limits that would cross on arrival are rejected.
* OCO/bracket: if the open gaps through one leg, that leg fills at the open; if both legs
  lie inside one bar, the stop is assumed to come first. A leg that fills or triggers
  cancels the other (Binance: "activation of one order immediately cancels the other").
* ``max_volume_fraction`` caps each order's fill per bar to that share of the bar's volume
  (partial fills); by default there is no cap.
* The venue keeps its own balances like a real exchange: an order it cannot cover is
  rejected, a fill it cannot settle cancels the order.
* ``bnb_price``: Binance's "pay fees with BNB": while the account holds enough BNB, a fee is
  charged in BNB at 75 % of its value at that price (the 25 % discount of
  ``faqs/commission_faq.md``); otherwise as without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from itertools import count

from solbot.domain.errors import ConfigurationError
from solbot.domain.instruments import Instrument
from solbot.domain.ledger import InsufficientBalance, Ledger
from solbot.domain.messages import (
    Bar,
    Fill,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
)
from solbot.domain.orders import Order
from solbot.domain.values import (
    ZERO,
    Liquidity,
    OrderId,
    OrderType,
    Side,
    TradeId,
    quantize_up,
    to_decimal,
)
from solbot.engine.portfolio import hold_key, order_reservation
from solbot.engine.ports import EventSink, ExitPlan, PendingExits

DEFAULT_SLIPPAGE = Decimal("0.0005")
BASE_FEE_STEP = Decimal("0.00000001")  # Binance commissions have 8 decimals


@dataclass(frozen=True, slots=True)
class SimConfig:
    slippage: Decimal = DEFAULT_SLIPPAGE
    maker_fee: Decimal | None = None  # None: the instrument's
    taker_fee: Decimal | None = None
    fill_limit_on_touch: bool = False
    max_volume_fraction: float | None = None
    # Binance without BNB: a buy's fee is taken from the base it bought (8 decimals), a
    # sell's from the quote it got; False: every fee in quote (the paper default)
    fee_in_received: bool = False
    # Binance with "pay fees with BNB": BNB's price in the quote asset (None: off)
    bnb_price: Decimal | None = None

    def __post_init__(self) -> None:
        if self.slippage < ZERO or self.slippage >= 1:
            raise ConfigurationError("slippage must be in [0, 1)")
        for fee in (self.maker_fee, self.taker_fee):
            if fee is not None and (fee < ZERO or fee >= 1):
                raise ConfigurationError("fees must be in [0, 1)")
        if self.max_volume_fraction is not None and not 0 < self.max_volume_fraction <= 1:
            raise ConfigurationError("max_volume_fraction must be in (0, 1]")


BNB_DISCOUNT = Decimal("0.75")  # faqs/commission_faq.md: fees paid in BNB get 25 % off


def _own_copy(order: Order) -> Order:
    """The venue's own copy of an order: what was sent, not the caller's object."""
    return Order(
        order_id=order.order_id,
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        quantity=order.quantity,
        price=order.price,
        trigger_price=order.trigger_price,
        quote_quantity=order.quote_quantity,
        post_only=order.post_only,
        oco_group=order.oco_group,
        trailing_bps=order.trailing_bps,
    )


@dataclass(slots=True)
class _Working:
    order: Order  # the venue's own copy of what was sent
    leaves: Decimal
    marketable: bool  # a non-post-only limit that crossed the book on arrival
    triggered: bool = False  # a stop-limit whose trigger was reached: now a plain limit
    best: float = 0.0  # a trailing stop's best price since it arrived (sell: highest)


class SimulatedExchange:
    def __init__(
        self,
        instrument: Instrument,
        balances: dict[str, Decimal],
        config: SimConfig | None = None,
        id_prefix: str = "",
    ) -> None:
        self.instrument = instrument
        self.config = config or SimConfig()
        self.maker_fee = (
            self.config.maker_fee if self.config.maker_fee is not None else instrument.maker_fee
        )
        self.taker_fee = (
            self.config.taker_fee if self.config.taker_fee is not None else instrument.taker_fee
        )
        self.books = Ledger(balances)
        self._working: dict[OrderId, _Working] = {}
        self._sink: EventSink | None = None
        self._trade_seq = count(1)
        self._prefix = id_prefix  # keeps trade ids unique across restarts of a paper venue
        self._venue_seq = count(1)
        self._last_close_f = 0.0  # converted to Decimal only when an order arrives
        self._triggered_resting: list[OrderId] = []
        self._ts = 0
        self._one = Decimal(1)
        self._slip_up = self._one + self.config.slippage
        self._slip_down = self._one - self.config.slippage

    # ---------------------------------------------------------------- Venue port
    def bind(self, sink: EventSink) -> None:
        self._sink = sink

    def open_order_ids(self) -> list[OrderId]:
        return list(self._working)

    def submit(self, order: Order) -> None:
        ts = self._ts
        inst = self.instrument
        last_close = inst.price(self._last_close_f) if self._last_close_f > 0 else ZERO
        copy = _own_copy(order)
        marketable = False
        trailing = copy.type.is_stop and copy.trailing_bps is not None
        if trailing and last_close <= ZERO:
            self._emit(OrderRejected(order.order_id, ts, "a trailing stop needs a last price"))
            return
        if trailing:  # it trails from the last trade: nothing to trigger at once
            copy.trigger_price = self._trail_trigger(copy, self._last_close_f)
        elif copy.type.is_stop and copy.trigger_price is not None and last_close > ZERO:
            at_once = (copy.side is Side.SELL and copy.trigger_price >= last_close) or (
                copy.side is Side.BUY and copy.trigger_price <= last_close
            )
            if at_once:
                self._emit(OrderRejected(order.order_id, ts, "Order would trigger immediately."))
                return
        if copy.type is OrderType.LIMIT and copy.price is not None and last_close > ZERO:
            crosses = (copy.side is Side.BUY and copy.price >= last_close) or (
                copy.side is Side.SELL and copy.price <= last_close
            )
            if crosses and copy.post_only:
                self._emit(
                    OrderRejected(order.order_id, ts, "post-only order would take liquidity")
                )
                return
            marketable = crosses
        ref = last_close if last_close > ZERO else (copy.price or copy.trigger_price or ZERO)
        asset, amount = order_reservation(inst, self.books, copy, ref)
        try:
            self.books.hold(hold_key(copy), asset, amount)
        except InsufficientBalance as exc:
            self._emit(OrderRejected(order.order_id, ts, f"insufficient balance: {exc}"))
            return
        leaves = copy.quantity if copy.quote_quantity is None else ZERO
        self._working[order.order_id] = _Working(
            copy, leaves, marketable, best=self._last_close_f if trailing else 0.0
        )
        self._emit(OrderAccepted(order.order_id, ts, f"{self._prefix}SIM-{next(self._venue_seq)}"))

    def restore(self, order: Order, last_close: float) -> None:
        """An order a previous run of this paper venue had working (a restart): back on its
        book as it was, holding what it held, with no event — the books already have it as
        accepted. ``last_close``: the last bar's, as ``on_bar`` would have left it. (A
        trailing stop trails again from there: its best price since it rested is not kept.)"""
        self._last_close_f = last_close
        inst = self.instrument
        copy = _own_copy(order)
        trailing = copy.type.is_stop and copy.trailing_bps is not None
        if trailing:
            copy.trigger_price = self._trail_trigger(copy, last_close)
        ref = inst.price(last_close) if last_close > 0 else (copy.price or copy.trigger_price)
        asset, amount = order_reservation(inst, self.books, copy, ref or ZERO)
        self.books.hold(hold_key(copy), asset, amount)
        leaves = copy.quantity if copy.quote_quantity is None else ZERO
        self._working[order.order_id] = _Working(
            copy, leaves, False, best=last_close if trailing else 0.0
        )

    def submit_list(self, orders: list[Order]) -> None:
        """An order list (the legs of an OCO): submitted together, one shared hold."""
        for order in orders:
            self.submit(order)

    def submit_bracket(self, entry: Order, exits: ExitPlan) -> None:
        """A resting bracket entry: the engine arms its exits once the fill is applied, as
        for any bracket; they match from the next bar. (An OTOCO's pending pair is on the
        book from the fill's instant: within the fill's own bar a backtest lets neither exit
        fill — kinder than Binance for a stop, stricter for a take-profit.)"""
        self.submit(entry)

    def pending_exits(self, group: str) -> PendingExits | None:
        return None

    def client_id(self, order_id: OrderId) -> str:
        return order_id

    def cancel(self, order_id: OrderId) -> None:
        if order_id in self._working:
            self._remove(order_id, "cancelled by request")

    def match_market_now(self, price: float) -> None:
        """Fill every working market order at ``price`` (worsened by the slippage) at once.

        For paper trading only, where the next bar may be minutes away: the kill switch uses
        it to flatten. It treats ``price`` as the open of an instant bar."""
        instant = Bar(self._ts, price, price, price, price, float("inf"))
        for oid, w in list(self._working.items()):
            if w.order.type is OrderType.MARKET and oid in self._working:
                self._execute(
                    w, self._slipped(price, w.order.side is Side.BUY), Liquidity.TAKER, instant
                )

    def on_bar(self, bar: Bar) -> None:
        self._ts = bar.ts
        if self._working:
            self._match(bar)
        self._last_close_f = bar.close

    # ---------------------------------------------------------------- matching
    def _trail_trigger(self, o: Order, best: float) -> Decimal:
        """A trailing stop's trigger now: ``best`` less (a buy: plus) its delta."""
        assert o.trailing_bps is not None
        delta = o.trailing_bps / 10_000
        if o.side is Side.SELL:
            return self.instrument.price_down(to_decimal(best * (1 - delta)))
        return self.instrument.price_up(to_decimal(best * (1 + delta)))

    def _match(self, bar: Bar) -> None:
        plans: list[tuple[int, int, int, OrderId, Decimal, Liquidity]] = []
        for seq, (oid, w) in enumerate(self._working.items()):
            plan = self._plan(w, bar)
            o = w.order
            if plan is None and o.trailing_bps is not None and not w.triggered:
                # not triggered this bar: the best price moves with it, and the trigger
                w.best = max(w.best, bar.high) if o.side is Side.SELL else min(w.best, bar.low)
                o.trigger_price = self._trail_trigger(o, w.best)
            if plan is not None:
                phase, price, liq = plan
                is_stop = 0 if w.order.type.is_stop and not w.triggered else 1
                plans.append((phase, is_stop, seq, oid, price, liq))
        for oid in self._triggered_resting:  # gapped past its limit: the OCO sibling goes
            self._cancel_siblings(oid, self._working[oid].order.oco_group, "OCO sibling triggered")
        self._triggered_resting.clear()
        plans.sort(key=lambda p: (p[0], p[1], p[2]))
        for _, _, _, oid, price, liq in plans:
            live = self._working.get(oid)
            if live is not None:  # an OCO sibling may have removed it
                self._execute(live, price, liq, bar)

    def _plan(self, w: _Working, bar: Bar) -> tuple[int, Decimal, Liquidity] | None:
        """(phase, price, liquidity): phase 0 = at the open, 1 = later within the bar."""
        o = w.order
        inst = self.instrument
        buy = o.side is Side.BUY
        if o.type is OrderType.MARKET:
            return 0, self._slipped(bar.open, buy), Liquidity.TAKER
        if o.type is OrderType.STOP_MARKET:
            trig = o.trigger_price
            assert trig is not None
            t = float(trig)
            if buy:
                if bar.open >= t:
                    return 0, self._slipped(bar.open, True), Liquidity.TAKER
                if bar.high >= t:
                    return 1, self._slipped(t, True), Liquidity.TAKER
            else:
                if bar.open <= t:
                    return 0, self._slipped(bar.open, False), Liquidity.TAKER
                if bar.low <= t:
                    return 1, self._slipped(t, False), Liquidity.TAKER
            return None
        if o.type is OrderType.STOP_LIMIT and not w.triggered:
            return self._plan_stop_limit(w, bar)
        limit = o.price
        assert limit is not None
        lp = float(limit)
        if w.marketable:
            w.marketable = False
            if (buy and bar.open <= lp) or (not buy and bar.open >= lp):
                px = self._slipped(bar.open, buy)
                px = min(px, limit) if buy else max(px, limit)
                return 0, px, Liquidity.TAKER
        touch = self.config.fill_limit_on_touch
        if buy:
            hit = bar.low <= lp if touch else bar.low < lp
            if hit:
                return (0 if bar.open < lp else 1), limit, Liquidity.MAKER
        else:
            hit = bar.high >= lp if touch else bar.high > lp
            if hit:
                return (0 if bar.open > lp else 1), limit, Liquidity.MAKER
        del inst
        return None

    def _plan_stop_limit(self, w: _Working, bar: Bar) -> tuple[int, Decimal, Liquidity] | None:
        o = w.order
        trig, limit = o.trigger_price, o.price
        assert trig is not None and limit is not None
        t, lp = float(trig), float(limit)
        buy = o.side is Side.BUY
        if (bar.open >= t) if buy else (bar.open <= t):  # gapped through the trigger
            if (bar.open <= lp) if buy else (bar.open >= lp):
                px = self._slipped(bar.open, buy)
                return 0, (min(px, limit) if buy else max(px, limit)), Liquidity.TAKER
            w.triggered = True  # and beyond the limit: it rests as a limit from now on
            self._triggered_resting.append(o.order_id)
            return None
        if (bar.high >= t) if buy else (bar.low <= t):
            px = self._slipped(t, buy)
            return 1, (min(px, limit) if buy else max(px, limit)), Liquidity.TAKER
        return None

    def _slipped(self, price: float, buy: bool) -> Decimal:
        p = to_decimal(price)
        if buy:
            return self.instrument.price_up(p * self._slip_up)
        return self.instrument.price_down(p * self._slip_down)

    def _execute(self, w: _Working, price: Decimal, liq: Liquidity, bar: Bar) -> None:
        o = w.order
        inst = self.instrument
        rate = self.maker_fee if liq is Liquidity.MAKER else self.taker_fee
        if o.quote_quantity is not None:
            qty = inst.qty(o.quote_quantity / (price * (self._one + rate)))
        else:
            qty = w.leaves
        cap = self.config.max_volume_fraction
        if cap is not None:
            qty = min(qty, inst.qty(to_decimal(bar.volume * cap)))
            if qty <= ZERO:
                return  # no volume for us this bar; try again next bar
        if qty < inst.min_qty or qty <= ZERO:
            self._remove(o.order_id, "quantity below the minimum at the fill price")
            return
        fee, fee_asset = inst.fee(qty * price, rate), inst.quote
        bnb = self.config.bnb_price
        in_bnb = ZERO
        if bnb is not None and rate > ZERO:
            in_bnb = quantize_up(qty * price * rate * BNB_DISCOUNT / bnb, BASE_FEE_STEP)
        if in_bnb > ZERO and self.books.free("BNB") >= in_bnb:
            fee, fee_asset = in_bnb, "BNB"
        elif self.config.fee_in_received and o.side is Side.BUY:
            fee = quantize_up(qty * rate, BASE_FEE_STEP) if rate > ZERO else ZERO
            fee_asset = inst.base
        fill = Fill(
            order_id=o.order_id,
            trade_id=TradeId(f"{self._prefix}T{next(self._trade_seq)}"),
            symbol=inst.symbol,
            side=o.side,
            quantity=qty,
            price=price,
            fee=fee,
            fee_asset=fee_asset,
            liquidity=liq,
            ts=bar.ts,
        )
        key = hold_key(o)
        if not self.books.can_settle(fill, inst, key):
            self._remove(o.order_id, "insufficient balance at fill")
            return
        self.books.settle(fill, inst, key)
        w.leaves -= qty
        self._emit(OrderFilled(o.order_id, bar.ts, fill))
        done = o.quote_quantity is not None or w.leaves <= ZERO
        if done:
            del self._working[o.order_id]
            self.books.release(key)
        self._cancel_siblings(o.order_id, o.oco_group, "OCO sibling filled")

    def _cancel_siblings(self, order_id: OrderId, group: str | None, reason: str) -> None:
        if group is None:
            return
        for sib_id, sib in list(self._working.items()):
            if sib_id != order_id and sib.order.oco_group == group:
                self._remove(sib_id, reason)

    def _remove(self, order_id: OrderId, reason: str) -> None:
        w = self._working.pop(order_id)
        self.books.release(hold_key(w.order))
        self._emit(OrderCancelled(order_id, self._ts, reason))

    def _emit(self, event: OrderAccepted | OrderRejected | OrderFilled | OrderCancelled) -> None:
        if self._sink is None:
            raise RuntimeError("venue is not bound to an engine")
        self._sink(event)
