"""The engine's exits, the same for every venue: brackets as one order list sized at what the
entry left, stop-limits as Binance spot has them, stops that cannot rest exiting at market,
and orders that wait for the cancels before them. Hand-built bars, no I/O."""

from __future__ import annotations

from decimal import Decimal as D

from solbot.domain.instruments import sol_usdt
from solbot.domain.ledger import Ledger
from solbot.domain.messages import (
    CancelAll,
    Fill,
    OrderFilled,
    OrderRejected,
    SubmitBracket,
    SubmitOrder,
)
from solbot.domain.orders import Order, OrderStatus
from solbot.domain.values import Liquidity, OrderId, OrderType, Side, TradeId
from solbot.engine.core import Engine
from solbot.engine.portfolio import Portfolio
from solbot.engine.ports import ExitPlan, PendingExits, SimClock
from solbot.venues.sim import SimConfig, SimulatedExchange
from tests.conftest import Scripted, bar

BUY, SELL = Side.BUY, Side.SELL
OFFSET = D("0.005")


def engine_with(
    script: dict[int, list[object]],
    config: SimConfig | None = None,
    balances: dict[str, D] | None = None,
    venue: object | None = None,
) -> tuple[Engine, SimulatedExchange, Scripted]:
    inst = sol_usdt()
    books = balances or {"USDT": D("10000"), "SOL": D("0")}
    sim = SimulatedExchange(inst, dict(books), config)
    strat = Scripted(script)
    engine = Engine(
        strat,
        Portfolio(inst, Ledger(dict(books))),
        venue or sim,  # type: ignore[arg-type]
        SimClock(),
        stop_limit_offset=OFFSET,
    )
    engine.start()
    return engine, sim, strat


def legs(engine: Engine) -> list[Order]:
    return [o for o in engine.portfolio.orders.values() if o.oco_group]


def bracket(qty: str = "10", tp: str = "12.00", sl: str = "9.00") -> SubmitBracket:
    return SubmitBracket(SubmitOrder(BUY, OrderType.MARKET, D(qty)), D(tp), D(sl))


def test_bracket_exits_are_sized_at_what_the_entry_left_when_the_fee_is_taken_in_base():
    # Binance takes a buy's fee from the SOL bought: 10 SOL bought leave 9.99 to sell
    engine, sim, _ = engine_with({0: [bracket()]}, SimConfig(fee_in_received=True))
    for i in range(3):
        engine.on_bar(bar(i, 10, 10.1, 9.9, 10))
    stop, tp = sorted(legs(engine), key=lambda o: o.type is OrderType.LIMIT)
    assert stop.status is OrderStatus.ACCEPTED and tp.status is OrderStatus.ACCEPTED
    assert stop.quantity == tp.quantity == D("9.99")
    assert stop.type is OrderType.STOP_LIMIT and stop.price == D("8.95")  # 9.00 less 0.5 %
    assert tp.post_only  # Binance's OCO: a LIMIT_MAKER above, a STOP_LOSS_LIMIT below
    assert engine.portfolio.ledger.balance("SOL").locked == D("9.99")  # one hold for both
    assert sim.books.snapshot() == engine.portfolio.ledger.snapshot()


def test_stop_limit_triggered_inside_the_bar_fills_at_the_trigger_less_slippage_not_below_limit():
    engine, sim, strat = engine_with({0: [bracket()]})
    engine.on_bar(bar(0, 10, 10, 10, 10))
    engine.on_bar(bar(1, 10, 10, 10, 10))
    engine.on_bar(bar(2, 9.5, 9.6, 8.0, 8.5))  # through 9.00 and on below the 8.95 limit
    exit_ = strat.fills[-1]
    assert exit_.side is SELL and exit_.price == D("8.99")  # 9.00 * 0.9995, above 8.95
    assert engine.portfolio.position.is_flat
    tp = next(o for o in legs(engine) if o.type is OrderType.LIMIT)
    assert tp.status is OrderStatus.CANCELLED
    assert not sim.open_order_ids()


def test_stop_limit_gapped_past_its_limit_rests_its_oco_goes_and_the_engine_exits_at_market():
    engine, sim, strat = engine_with({0: [bracket()]})
    engine.on_bar(bar(0, 10, 10, 10, 10))
    engine.on_bar(bar(1, 10, 10, 10, 10))
    engine.on_bar(bar(2, 8.5, 8.8, 8.2, 8.4))  # opens below the limit: no fill
    stop = next(o for o in legs(engine) if o.type is OrderType.STOP_LIMIT)
    tp = next(o for o in legs(engine) if o.type is OrderType.LIMIT)
    assert tp.status is OrderStatus.CANCELLED and "triggered" in tp.reason
    assert stop.status is OrderStatus.CANCELLED  # the engine gave up on it at the close ...
    market_exit = [o for o in engine.portfolio.orders.values() if o.tag.startswith("stop-limit")]
    assert market_exit and market_exit[0].type is OrderType.MARKET  # ... and sells at market
    engine.on_bar(bar(3, 8.3, 8.4, 8.1, 8.2))
    assert engine.portfolio.position.is_flat and strat.fills[-1].price == D("8.29")
    assert sim.books.snapshot() == engine.portfolio.ledger.snapshot()


def test_a_stop_the_market_is_already_past_is_not_sent_the_position_exits_at_market():
    # the entry fills at 10.01 on bar 1, whose close (8.90) is already below the 9.00 stop
    engine, sim, strat = engine_with({0: [bracket()]})
    engine.on_bar(bar(0, 10, 10, 10, 10))
    engine.on_bar(bar(1, 10, 10, 8.8, 8.9))
    rejected = [o for o in legs(engine) if o.status is OrderStatus.REJECTED]
    assert rejected and "would trigger immediately" in rejected[0].reason.lower()
    engine.on_bar(bar(2, 8.8, 8.9, 8.7, 8.8))
    assert engine.portfolio.position.is_flat
    assert strat.fills[-1].side is SELL and not sim.open_order_ids()


class SlowCancels:
    """A venue that confirms cancels later, as an exchange does (the sim behind it)."""

    def __init__(self, sim: SimulatedExchange) -> None:
        self.sim = sim
        self.pending: list[OrderId] = []
        self.submitted: list[Order] = []

    def bind(self, sink):  # type: ignore[no-untyped-def]
        self.sim.bind(sink)

    def submit(self, order: Order) -> None:
        self.submitted.append(order)
        self.sim.submit(order)

    def submit_list(self, orders: list[Order]) -> None:
        for o in orders:
            self.submit(o)

    def submit_bracket(self, entry: Order, exits: ExitPlan) -> None:
        self.submit(entry)

    def pending_exits(self, group: str) -> PendingExits | None:
        return None

    def client_id(self, order_id: OrderId) -> str:
        return order_id

    def cancel(self, order_id: OrderId) -> None:
        self.pending.append(order_id)

    def confirm(self) -> None:
        for oid in self.pending:
            self.sim.cancel(oid)
        self.pending.clear()

    def on_bar(self, b):  # type: ignore[no-untyped-def]
        self.sim.on_bar(b)


EXIT_ALL = [CancelAll(), SubmitOrder(SELL, OrderType.MARKET, D("10"), reduce_only=True)]


def slow_cancels(script: dict[int, list[object]]) -> tuple[Engine, SlowCancels]:
    """An engine on a venue that confirms cancels only when told (``confirm``)."""
    books = {"USDT": D("10000"), "SOL": D("0")}
    sim = SimulatedExchange(sol_usdt(), dict(books))
    slow = SlowCancels(sim)
    engine, _, _ = engine_with(script, balances=books, venue=slow)
    sim.bind(engine._queue.append)
    return engine, slow


def test_an_exit_after_cancel_all_waits_for_the_cancels_and_then_sells_what_is_free():
    engine, slow = slow_cancels({0: [bracket()], 3: EXIT_ALL})
    for i in range(4):
        engine.on_bar(bar(i, 10, 10.1, 9.9, 10))
    # the exit is held: the OCO still locks the 10 SOL until the exchange confirms
    assert not [o for o in slow.submitted if o.type is OrderType.MARKET and o.side is SELL]
    assert not [o for o in engine.portfolio.orders.values() if o.status is OrderStatus.DENIED]
    slow.confirm()
    engine.on_venue_event_drain()
    sells = [o for o in slow.submitted if o.type is OrderType.MARKET and o.side is SELL]
    assert len(sells) == 1 and sells[0].quantity == D("10")
    engine.on_bar(bar(4, 10, 10.1, 9.9, 10))
    assert engine.portfolio.position.is_flat


def test_an_exit_asked_again_at_every_bar_while_the_cancels_are_out_is_one_sell_no_denials():
    # meanrev asks for its exit at every bar until the position is gone; the cancels of its
    # OCO took three bars: one sell goes out, not one sell and two denied ones
    engine, slow = slow_cancels({0: [bracket()], 3: EXIT_ALL, 4: EXIT_ALL, 5: EXIT_ALL})
    for i in range(6):
        engine.on_bar(bar(i, 10, 10.1, 9.9, 10))
    slow.confirm()
    engine.on_venue_event_drain()
    sells = [o for o in slow.submitted if o.type is OrderType.MARKET and o.side is SELL]
    assert [o.quantity for o in sells] == [D("10")]
    assert not [o for o in engine.portfolio.orders.values() if o.status is OrderStatus.DENIED]
    engine.on_bar(bar(6, 10, 10.1, 9.9, 10))
    assert engine.portfolio.position.is_flat


def test_a_fee_paid_in_bnb_is_booked_even_where_the_sleeve_holds_no_bnb():
    inst = sol_usdt()
    pf = Portfolio(inst, Ledger({"USDT": D("100"), "SOL": D("0")}))
    order = Order(OrderId("sb-1"), inst.symbol, BUY, OrderType.MARKET, D("1"))
    pf.add(order)
    from solbot.domain.messages import OrderSubmitted

    pf.submitted(order, OrderSubmitted(order.order_id, 0), D("20"))
    fill = Fill(
        OrderId("sb-1"), TradeId("7"), inst.symbol, BUY, D("1"), D("20"),
        D("0.0000375"), "BNB", Liquidity.TAKER, 0,
    )  # fmt: skip
    pf.apply(OrderFilled(order.order_id, 0, fill))
    assert order.status is OrderStatus.FILLED and pf.position.qty == D("1")
    assert pf.ledger.total("SOL") == D("1") and pf.ledger.total("BNB") == D("-0.0000375")
    assert pf.ledger.total("USDT") == D("80")


def test_the_simulated_exchange_charges_bnb_while_the_account_holds_enough():
    config = SimConfig(bnb_price=D("600"), fee_in_received=True)
    books = {"USDT": D("10000"), "SOL": D("0"), "BNB": D("0.001")}
    buy = SubmitOrder(BUY, OrderType.MARKET, D("10"))
    engine, sim, strat = engine_with({0: [buy], 1: [buy]}, config, books)
    for i in range(3):
        engine.on_bar(bar(i, 10, 10, 10, 10))
    first, second = strat.fills
    # 10 SOL at 10.01: 0.1001 USDT of fee, 25 % off, at 600 USDT a BNB
    assert (first.fee_asset, first.fee) == ("BNB", D("0.00012513"))
    assert second.fee_asset == "BNB"  # 0.00087487 BNB left: enough again
    assert sim.books.snapshot() == engine.portfolio.ledger.snapshot()


def test_a_quote_sized_order_reported_in_several_trades_is_complete_with_its_last():
    inst = sol_usdt()
    pf = Portfolio(inst, Ledger({"USDT": D("100"), "SOL": D("0")}))
    order = Order(
        OrderId("sb-1"), inst.symbol, BUY, OrderType.MARKET, D("0"), quote_quantity=D("50")
    )
    from solbot.domain.messages import OrderSubmitted

    pf.add(order)
    pf.submitted(order, OrderSubmitted(order.order_id, 0), D("20"))

    def fill(tid: str, qty: str, fee_asset: str) -> Fill:
        return Fill(
            OrderId("sb-1"), TradeId(tid), inst.symbol, BUY, D(qty), D("20"), D("0.001"),
            fee_asset, Liquidity.TAKER, 0,
        )  # fmt: skip

    pf.apply(OrderFilled(order.order_id, 0, fill("1", "1.5", "BNB"), last=False))
    assert order.status is OrderStatus.PARTIALLY_FILLED
    pf.apply(OrderFilled(order.order_id, 0, fill("2", "0.9", "SOL")))  # BNB ran out
    assert order.status is OrderStatus.FILLED and order.filled_qty == D("2.4")
    assert pf.ledger.total("SOL") == D("2.399") and pf.ledger.total("BNB") == D("-0.001")
    assert not pf.open_orders() and pf.ledger.balance("USDT").locked == 0


def test_an_order_that_follows_a_cancel_on_a_venue_that_confirms_at_once_is_not_delayed():
    buy = SubmitOrder(BUY, OrderType.LIMIT, D("1"), price=D("9.00"))
    engine, sim, _ = engine_with({0: [buy], 1: [CancelAll(), buy]})
    engine.on_bar(bar(0, 10, 10, 10, 10))
    engine.on_bar(bar(1, 10, 10, 10, 10))
    statuses = [o.status for o in engine.portfolio.orders.values()]
    assert statuses == [OrderStatus.CANCELLED, OrderStatus.ACCEPTED]
    assert len(sim.open_order_ids()) == 1


def test_bracket_exits_cover_only_what_the_entry_bought_net_of_its_fee_not_older_holdings():
    # 5 SOL held before: the bracket protects the 9.99 its entry left, not 10 or 14.99
    books = {"USDT": D("10000"), "SOL": D("5")}
    engine, sim, _ = engine_with({0: [bracket()]}, SimConfig(fee_in_received=True), books)
    for i in range(3):
        engine.on_bar(bar(i, 10, 10.1, 9.9, 10))
    assert {o.quantity for o in legs(engine)} == {D("9.99")}
    assert engine.portfolio.ledger.free("SOL") == D("5")
    assert sim.books.snapshot() == engine.portfolio.ledger.snapshot()


def test_a_halt_that_keeps_protection_cancels_the_bid_but_not_the_positions_oco():
    bid = SubmitOrder(BUY, OrderType.LIMIT, D("1"), price=D("9.00"))
    engine, sim, _ = engine_with({0: [bracket()], 1: [bid]})
    for i in range(3):
        engine.on_bar(bar(i, 10, 10.1, 9.9, 10))
    engine.execute([CancelAll(keep_protection=True)])  # the daily loss limit's halt
    open_ = engine.portfolio.open_orders()
    assert {o.oco_group for o in open_} == {legs(engine)[0].oco_group} and len(open_) == 2
    assert len(sim.open_order_ids()) == 2
    engine.execute([CancelAll()])  # the kill switch: everything
    assert not engine.portfolio.open_orders() and not sim.open_order_ids()


def test_an_add_to_a_protected_position_rests_under_an_oco_of_its_own_at_the_brackets_prices():
    # trend pyramids: the first entry's OCO locks only its own quantity; the add was left
    # with no stop at the exchange. Now it gets its own order list, and every SOL is covered.
    add = SubmitOrder(BUY, OrderType.MARKET, D("5"), tag="trend-add")
    engine, sim, _ = engine_with({0: [bracket()], 2: [add]}, SimConfig(fee_in_received=True))
    for i in range(5):
        engine.on_bar(bar(i, 10, 10.1, 9.9, 10))
    resting = [o for o in legs(engine) if o.status is OrderStatus.ACCEPTED]
    groups = {o.oco_group for o in resting}
    assert len(groups) == 2
    stops = [o for o in resting if o.type is OrderType.STOP_LIMIT]
    assert {o.trigger_price for o in stops} == {D("9.00")}
    assert {o.price for o in resting if o.type is OrderType.LIMIT} == {D("12.00")}
    assert sum(o.quantity for o in stops) == engine.portfolio.position.qty == D("14.985")
    assert engine.portfolio.ledger.balance("SOL").free == 0
    assert sim.books.snapshot() == engine.portfolio.ledger.snapshot()


def test_an_add_with_no_bracket_resting_gets_no_order_list():
    add = SubmitOrder(BUY, OrderType.MARKET, D("5"))
    engine, _, _ = engine_with({0: [add]})
    for i in range(3):
        engine.on_bar(bar(i, 10, 10.1, 9.9, 10))
    assert not legs(engine) and engine.portfolio.position.qty == D("5")


def test_an_entry_that_fills_after_a_halt_still_gets_its_stop_but_nothing_new_goes_out():
    # the daily loss limit halts trading while a bracket's entry is on its way: the fill
    # must still be protected (the OCO is reduce-only), while a new entry is denied
    from solbot.domain.values import TradingState

    engine, _, _ = engine_with({0: [bracket()]})
    engine.on_bar(bar(0, 10, 10.1, 9.9, 10))
    engine.set_trading_state(TradingState.HALTED, "daily loss limit")
    engine.on_bar(bar(1, 10, 10.1, 9.9, 10))  # the entry fills at this open
    engine.on_bar(bar(2, 10, 10.1, 9.9, 10))
    resting = [o for o in legs(engine) if o.status is OrderStatus.ACCEPTED]
    assert {o.type for o in resting} == {OrderType.STOP_LIMIT, OrderType.LIMIT}
    assert engine.portfolio.position.qty == D("10")
    engine.execute([SubmitOrder(BUY, OrderType.MARKET, D("1"))])
    assert engine.portfolio.position.qty == D("10")
    assert [o for o in engine.portfolio.orders.values() if o.status is OrderStatus.DENIED]


def test_a_trailing_stop_follows_the_highest_price_since_it_rests_and_sells_5_pct_under_it():
    # faqs/trailing-stop-faq.md: a sell "will trigger after a price decrease of the supplied
    # delta, relative to the highest trade price since submission"; with no stopPrice it
    # tracks from the next trade. trailingDelta 500 = 5 %.
    trailing = SubmitBracket(SubmitOrder(BUY, OrderType.MARKET, D("10")), D("20"), D("9.50"),
                             trail_bps=500)  # fmt: skip
    fixed = SubmitBracket(SubmitOrder(BUY, OrderType.MARKET, D("10")), D("20"), D("9.50"))
    bars = [
        bar(0, 10, 10.1, 9.9, 10),  # the entry is sent at this close
        bar(1, 10, 10.1, 9.9, 10),  # it fills at the open; the OCO rests from this close
        bar(2, 10, 11.0, 9.9, 10.9),  # best 11.0 → trigger 10.45
        bar(3, 10.9, 12.0, 10.8, 11.9),  # best 12.0 → trigger 11.40
        bar(4, 11.9, 11.95, 11.3, 11.5),  # down to 11.3: under 11.40
    ]
    exits = {}
    for name, cmd in (("trailing", trailing), ("fixed", fixed)):
        engine, sim, _ = engine_with({0: [cmd]})
        for b in bars:
            engine.on_bar(b)
        stop = next(o for o in legs(engine) if o.type is OrderType.STOP_LIMIT)
        assert stop.trailing_bps == cmd.trail_bps
        exits[name] = (stop.status, stop.avg_price, engine.portfolio.position.qty)
        assert sim.books.snapshot() == engine.portfolio.ledger.snapshot()
    status, price, left = exits["trailing"]
    assert status is OrderStatus.FILLED and left < D("0.01")
    assert D("11.30") <= price <= D("11.40")  # at the trigger, less slippage
    assert exits["fixed"][0] is OrderStatus.ACCEPTED  # a fixed stop at 9.50 still rests


def test_in_a_halt_a_stop_the_price_gapped_past_still_exits_at_market():
    # the daily loss limit halts trading as a bracket's entry fills and the price gaps under
    # its stop: the stop cannot rest (or rests past its limit), and the engine's exit at
    # market is as protective as the OCO it replaces — denied as "new exposure" it left the
    # position with no stop and no exit (the live strategies test, under the kill switch)
    from solbot.domain.values import TradingState

    engine, sim, _ = engine_with({0: [bracket()]})
    engine.on_bar(bar(0, 10, 10.1, 9.9, 10))
    engine.set_trading_state(TradingState.HALTED, "daily loss limit")
    engine.on_bar(bar(1, 8.5, 8.6, 8.4, 8.5))  # fills at 8.5: under the 9.00 stop at once
    engine.on_bar(bar(2, 8.5, 8.6, 8.4, 8.5))
    assert not [o for o in engine.portfolio.orders.values() if o.status is OrderStatus.DENIED]
    assert engine.portfolio.position.qty == 0
    assert sim.books.snapshot() == engine.portfolio.ledger.snapshot()
    engine.execute([SubmitOrder(BUY, OrderType.MARKET, D("1"))])  # still no new exposure
    assert engine.portfolio.position.qty == 0


class RefusingLists(SlowCancels):
    """A venue that refuses every order list as an exchange's filter would (the sim behind
    it takes the rest)."""

    def __init__(self, sim: SimulatedExchange, reason: str) -> None:
        super().__init__(sim)
        self.reason = reason
        self.sink: object = None

    def bind(self, sink):  # type: ignore[no-untyped-def]
        self.sink = sink
        self.sim.bind(sink)

    def submit_list(self, orders: list[Order]) -> None:
        for o in orders:
            self.sink(OrderRejected(o.order_id, 0, self.reason))  # type: ignore[operator]

    def cancel(self, order_id: OrderId) -> None:
        self.sim.cancel(order_id)


def _refused(reason: str) -> tuple[Engine, list[Order]]:
    books = {"USDT": D("10000"), "SOL": D("0")}
    sim = SimulatedExchange(sol_usdt(), dict(books))
    venue = RefusingLists(sim, reason)
    engine, _, _ = engine_with({0: [bracket()]}, balances=books, venue=venue)
    venue.bind(engine._queue.append)
    for i in range(3):
        engine.on_bar(bar(i, 10, 10.1, 9.9, 10))
    return engine, venue.submitted


def test_a_stop_the_exchange_refuses_for_any_final_reason_leaves_the_position_at_market():
    # the price is nowhere near the stop: a filter refused the OCO (a trailing delta out of
    # the TRAILING_DELTA filter's range, MAX_NUM_ALGO_ORDERS) — no stop rests, so it exits
    engine, sent = _refused("rejected: binance Filter failure: TRAILING_DELTA")
    assert all(o.status is OrderStatus.REJECTED for o in legs(engine))
    exits = [o for o in sent if o.side is SELL and o.type is OrderType.MARKET]
    assert [o.tag for o in exits] == ["stop at market"]
    assert engine.portfolio.position.is_flat


def test_a_stop_not_sent_because_the_bot_is_stopping_does_not_sell():
    engine, sent = _refused("not sent: the bot is stopping (kill switch or cancel on stop)")
    assert not [o for o in sent if o.side is SELL]
    assert engine.portfolio.position.qty == D("10")
