"""Replay tests through ccxt's real Binance class: ``ccxt.async_support.binance`` (the bot's
own client, ``trading_client``) with only its transport answered in this process by the
emulator, which follows Binance's documents (its behaviour modes name their sections), driving
the real engine, portfolio and live venue. One scenario for each way the emulator used to be
kinder than Binance (issue "Live trading that holds up against the real Binance", items 1-9).
No sockets; the emulator's market is stepped by hand."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal as D
from typing import Any

import pytest
from ccxt.base import errors as cx

from solbot.domain.instruments import sol_usdt
from solbot.domain.ledger import Ledger
from solbot.domain.messages import (
    Bar,
    CancelAll,
    Command,
    OrderDenied,
    SubmitBracket,
    SubmitOrder,
)
from solbot.domain.values import ZERO, OrderType, Side
from solbot.emulator.binance import Behaviour, BinanceEmulator
from solbot.engine.core import Engine
from solbot.engine.portfolio import Portfolio
from solbot.engine.ports import SimClock
from solbot.venues.clients import trading_client
from solbot.venues.live import LiveVenue, VenueHealth
from tests.asgi_ccxt import answer_with
from tests.conftest import Scripted

BUY, SELL = Side.BUY, Side.SELL
KEY, SECRET = "replay-key-0123456789", "replay-secret-abcdefghijklmnop"


class Rig:
    """Emulator + the bot's ccxt client + live venue + engine, in one event loop."""

    def __init__(
        self,
        behaviour: Behaviour | None = None,
        balances: dict[str, D] | None = None,
        timeout: float = 0.5,
        recv_window_ms: int = 1000,
    ) -> None:
        self.emu = BinanceEmulator(
            KEY, SECRET, balances or {"USDT": D("10000"), "SOL": D("0")},
            behaviour=behaviour, speed=1000, timeframe="1m", history=60,
        )  # fmt: skip
        self.ex = trading_client("binance", None, KEY, SECRET)
        self.ex.options["recvWindow"] = recv_window_ms  # a short lookup window: fast tests
        self.ex.enableRateLimit = False  # ccxt's own pacing off: our traffic gate stays on
        self.sent = answer_with(self.ex, self.emu.app(), timeout=timeout)
        self.health = VenueHealth()
        self.health.traffic.install(self.ex)
        self.alarms: list[tuple[str, str]] = []
        self.inst = sol_usdt()
        self.venue = LiveVenue(
            self.ex, self.inst, poll=0.05, health=self.health,
            on_alarm=lambda sev, text: self.alarms.append((sev, text)),
        )  # fmt: skip
        self.venue.lookup_margin = 0.5
        self.strategy = Scripted()
        books = {a: f + lk for a, (f, lk) in self.emu.sim.books.snapshot().items()}
        self.engine = Engine(
            self.strategy, Portfolio(self.inst, Ledger(books)), self.venue, SimClock(),
            stop_limit_offset=D("0.005"),
        )  # fmt: skip
        self.venue.after = self.engine.on_venue_event_drain
        self.events: list[Any] = []
        self.engine.listeners.append(self.events.append)

    async def start(self) -> None:
        await self.ex.load_markets()
        self.engine.start()

    @property
    def last(self) -> D:
        return D(repr(self.emu.last_price))

    def market_bar(self) -> Bar:
        m = self.emu.markets["SOLUSDT"]
        return m.bars[m.closed - 1]

    async def settle(self, rounds: int = 3) -> None:
        for _ in range(rounds):
            while self.venue._tasks:
                await asyncio.gather(*list(self.venue._tasks))
            await self.venue.sync()

    async def bar(self, commands: list[Command] | None = None) -> None:
        """The exchange's market moves one bar; the engine sees it (and sends ``commands``)."""
        self.emu._advance()
        if commands:
            self.strategy.script[self.strategy.i + 1] = list(commands)
        self.engine.on_bar(self.market_bar())
        await self.settle()

    def exchange(self) -> dict[str, Any]:
        return dict(self.emu.state({}))

    def exchange_totals(self) -> dict[str, D]:
        return {a: D(f) + D(lk) for a, (f, lk) in self.exchange()["balances"].items()}

    def posts(self, path: str) -> int:
        return sum(1 for m, u in self.sent if m == "POST" and u.split("?")[0].endswith(path))

    async def close(self) -> None:
        await self.venue.close()


def run(scenario: Any, **kw: Any) -> Rig:
    rig = Rig(**kw)

    async def go() -> None:
        await rig.start()
        try:
            await scenario(rig)
        finally:
            await rig.close()

    asyncio.run(go())
    return rig


def bracket(
    rig: Rig, qty: str = "20", stop_pct: str = "0.97", tp_pct: str = "1.05"
) -> SubmitBracket:
    inst = rig.inst
    return SubmitBracket(
        SubmitOrder(BUY, OrderType.MARKET, D(qty), tag="entry"),
        take_profit=inst.price_up(rig.last * D(tp_pct)),
        stop_loss=inst.price_down(rig.last * D(stop_pct)),
        tag="t",
    )


def open_at_exchange(rig: Rig) -> list[dict[str, Any]]:
    return [o for o in rig.exchange()["orders"] if o["status"] in ("NEW", "PARTIALLY_FILLED")]


def books_equal(rig: Rig) -> None:
    theirs = rig.exchange_totals()
    ours = rig.engine.portfolio.ledger
    for asset in ("USDT", "SOL", "BNB"):
        assert ours.total(asset) == theirs.get(asset, ZERO), asset


# ------------------------------------------------------------------ 1. stops
def test_item1_stops_rest_as_stop_loss_limit_in_an_oco_where_ccxt_refuses_a_stop_market() -> None:
    async def scenario(rig: Rig) -> None:
        before = len(rig.sent)
        with pytest.raises(cx.InvalidOrder, match="triggerPrice parameter is not allowed"):
            await rig.ex.create_order(
                "SOL/USDT", "market", "sell", 1, None, {"stopLossPrice": float(rig.last * D("0.9"))}
            )
        assert len(rig.sent) == before  # refused by ccxt before sending: Binance lists no STOP_LOSS
        await rig.bar([bracket(rig)])
        resting = open_at_exchange(rig)
        assert sorted(o["type"] for o in resting) == ["LIMIT_MAKER", "STOP_LOSS_LIMIT"]
        assert len({o["orderListId"] for o in resting}) == 1 and resting[0]["orderListId"] != -1
        assert rig.posts("/api/v3/orderList/oco") == 1

    run(scenario)


# ------------------------------------------------------------------ 2. one lock, net size
def test_item2_the_bracket_is_one_order_list_sized_at_the_base_left_after_binances_fee() -> None:
    async def scenario(rig: Rig) -> None:
        await rig.bar([bracket(rig)])
        await rig.settle()
        assert not [e for e in rig.events if isinstance(e, OrderDenied)]
        sol = rig.exchange()["balances"]["SOL"]
        assert D(sol[0]) == 0 and D(sol[1]) == D("19.98")  # 20 bought, 0.02 fee in SOL: all locked
        for o in open_at_exchange(rig):
            assert D(o["origQty"]) == D("19.98")
        assert rig.engine.portfolio.position.qty == D("19.98")
        books_equal(rig)

    run(scenario)


# ------------------------------------------------------------------ 3. lost answers
def test_item3_a_lost_answer_with_a_lagging_order_query_never_becomes_a_second_order() -> None:
    async def scenario(rig: Rig) -> None:
        rig.emu.gate.script.append(("POST", "/api/v3/order", "drop"))  # done, answered -1007
        await rig.bar([SubmitOrder(BUY, OrderType.MARKET, D("10"))])
        await rig.settle()
        markets = [o for o in rig.exchange()["orders"] if o["type"] == "MARKET"]
        assert len(markets) == 1 and rig.posts("/api/v3/order") == 1
        assert rig.health.unknown_outcomes == 1 and rig.health.lookups_found == 1
        assert rig.engine.portfolio.position.qty == D("9.99")  # fee in SOL
        # a resting limit whose answer times out (carried out, held past our timeout)
        rig.emu.gate.script.append(("POST", "/api/v3/order", "timeout"))
        price = rig.inst.price_down(rig.last * D("0.9"))
        await rig.bar([SubmitOrder(BUY, OrderType.LIMIT, D("1"), price=price)])
        await rig.settle()
        limit = next(o for o in rig.engine.portfolio.orders.values() if o.type is OrderType.LIMIT)
        assert limit.status.value == "accepted"  # found resting, not marked rejected
        assert len([o for o in rig.exchange()["orders"] if o["type"] == "LIMIT"]) == 1
        books_equal(rig)

    run(scenario, behaviour=Behaviour(lookup_lag=0.6))


def test_item3_a_market_order_that_never_arrived_is_not_resent_and_says_so() -> None:
    async def scenario(rig: Rig) -> None:
        rig.emu.gate.script.append(("POST", "/api/v3/order", "500"))  # refused before the work
        t0 = time.monotonic()
        await rig.bar([SubmitOrder(BUY, OrderType.MARKET, D("10"))])
        await rig.settle()
        waited = time.monotonic() - t0
        assert rig.posts("/api/v3/order") == 1 and not rig.exchange()["orders"]
        order = next(iter(rig.engine.portfolio.orders.values()))
        assert order.status.value == "rejected" and "never resent" in order.reason
        assert waited >= 1.0 + 0.5  # recvWindow plus the margin went by first
        assert rig.alarms and rig.alarms[-1][0] == "P2" and rig.health.not_resent == 1

    run(scenario)


# ------------------------------------------------------------------ 4. fees in BNB
def test_item4_a_fee_paid_in_bnb_is_booked_with_its_fill() -> None:
    async def scenario(rig: Rig) -> None:
        await rig.bar([SubmitOrder(BUY, OrderType.MARKET, D("10"))])
        (trade,) = rig.exchange()["trades"]
        assert trade["commissionAsset"] == "BNB"
        pf = rig.engine.portfolio
        assert pf.position.qty == D("10") and pf.ledger.total("SOL") == D("10")
        fee = D(trade["commission"])
        assert pf.ledger.total("BNB") == D("0.5") - fee
        assert rig.exchange_totals()["BNB"] == D("0.5") - fee
        books_equal(rig)

    run(
        scenario,
        behaviour=Behaviour(bnb=D("600")),
        balances={"USDT": D("10000"), "SOL": D("0"), "BNB": D("0.5")},
    )


# ------------------------------------------------------------------ 5. clock
def test_item5_a_clock_ahead_of_binances_is_resynced_and_a_persisting_one_halts() -> None:
    async def scenario(rig: Rig) -> None:
        await rig.bar([SubmitOrder(BUY, OrderType.MARKET, D("1"))])  # -1021, resync, again
        assert rig.health.errors.get("clock", 0) >= 1
        assert abs(rig.health.clock_offset_ms + 2500) < 300
        assert [o["type"] for o in rig.exchange()["orders"]] == ["MARKET"]
        # our clock jumps 3 s ahead and the resync fails: three strikes halt (P1)
        rig.emu.gate.clock_offset = -5.5

        async def broken() -> float:
            raise cx.RequestTimeout("time endpoint unreachable")

        rig.venue.sync_clock = broken  # type: ignore[method-assign]
        rig.engine.execute([SubmitOrder(BUY, OrderType.MARKET, D("1"))])
        await asyncio.gather(*list(rig.venue._tasks))
        with pytest.raises(cx.InvalidNonce):  # reads fail too: the poll loop logs and retries
            await rig.venue.sync()
        assert rig.health.clock_problem is not None
        assert any(sev == "P1" and text.startswith("clock:") for sev, text in rig.alarms)
        last = list(rig.engine.portfolio.orders.values())[-1]
        assert last.status.value == "rejected" and "clock" in last.reason
        assert len(rig.exchange()["orders"]) == 1

    run(scenario, behaviour=Behaviour(clock=-2.5))


# ------------------------------------------------------------------ 6. 429 windows
def test_item6_nothing_is_sent_inside_a_429_window_reads_included() -> None:
    async def scenario(rig: Rig) -> None:
        await rig.bar()
        rig.emu.gate.script.append(("GET", "/api/v3/openOrders", "429"))
        t0 = time.monotonic()
        await rig.venue.sync()  # the 429 comes back; the retry waits out Retry-After
        took = time.monotonic() - t0
        assert took >= 0.95
        await rig.bar([SubmitOrder(BUY, OrderType.MARKET, D("1"))])
        assert rig.exchange()["in_window_requests"] == 0
        assert rig.health.traffic.counts.get("rate_limited") == 1
        # the weight the exchange reports is the gate's count for this minute
        assert rig.health.traffic.used >= rig.emu.gate.weight > 0

    run(scenario)


def test_item3_an_oco_cancelled_while_its_lost_answer_is_looked_up_is_not_sent_again() -> None:
    # the OCO after an entry was answered 500 (refused before the work: absent); before the
    # lookup window ended the price passed its stop and the engine asked to cancel it and sell
    # at market. Sending the list again would only put off that exit (a cancel waits for the
    # outcome): the legs end cancelled, the OCO was posted once, the sell follows.
    async def scenario(rig: Rig) -> None:
        cmd = bracket(rig)
        await rig.bar([cmd.entry])
        qty = rig.inst.qty(rig.engine.portfolio.position.qty)
        rig.emu.gate.script.append(("POST", "/api/v3/orderList/oco", "500"))
        rig.engine.protect(qty, SELL, cmd.stop_loss, cmd.take_profit, "t", "oco-x")
        await asyncio.sleep(0.05)  # answered 500: looked up until the window ends
        rig.engine.execute(
            [CancelAll(), SubmitOrder(SELL, OrderType.MARKET, qty, reduce_only=True)]
        )
        await rig.settle()
        assert rig.posts("/api/v3/orderList/oco") == 1 and rig.health.resends == 0
        assert {o.status.value for o in rig.engine.portfolio.orders.values() if o.oco_group} == {
            "cancelled"
        }
        assert rig.engine.portfolio.position.qty < rig.inst.min_qty and not open_at_exchange(rig)
        assert not [e for e in rig.events if isinstance(e, OrderDenied)]
        books_equal(rig)

    run(scenario)


def test_item3_signed_requests_carry_the_recv_window_of_the_setting_and_lookups_follow_it() -> None:
    # rest-api.md "Timing security": recvWindow defaults to 5000 and 5000 or less is
    # recommended; ccxt sends 10000 of its own. The setting's 5000 reaches the wire, and the
    # venue's lookup window after a lost answer is measured from it.
    from solbot.runtime.config import Settings

    ms = Settings().exchange_recv_window_ms
    assert ms == 5000
    emu = BinanceEmulator(KEY, SECRET, {"USDT": D("100")}, speed=1000, timeframe="1m")
    ex = trading_client("binance", None, KEY, SECRET, recv_window_ms=ms)
    sent = answer_with(ex, emu.app())
    venue = LiveVenue(ex, sol_usdt())

    async def go() -> None:
        try:
            await ex.load_markets()
            await ex.fetch_balance()
        finally:
            await ex.close()

    asyncio.run(go())
    signed = [u for m, u in sent if "signature=" in u]
    assert signed and all("recvWindow=5000&" in u or u.endswith("recvWindow=5000") for u in signed)
    assert venue.recv_window() == 5.0


def test_the_emulator_logs_each_fault_with_the_client_id_it_held_and_each_minutes_weight() -> None:
    # what the live strategies test explains a late OCO by: the faults on its way
    async def scenario(rig: Rig) -> None:
        rig.emu.gate.script.append(("POST", "/api/v3/order", "drop"))
        await rig.bar([SubmitOrder(BUY, OrderType.MARKET, D("1"))])
        await rig.settle()
        order = next(iter(rig.engine.portfolio.orders.values()))
        state = rig.exchange()
        logged = [f for f in state["fault_log"] if f[3] == "drop"]
        assert [f[1:] for f in logged] == [["POST", "/api/v3/order", "drop", order.client_id]]
        assert abs(logged[0][0] - rig.emu.gate.now_ms()) < 10_000
        minutes = state["weight_minutes"]
        paths = state["weight_paths"]
        assert minutes and all(sum(paths[m].values()) == w for m, w in minutes.items())
        assert any("POST /api/v3/order" in p for p in paths.values())

    run(scenario, behaviour=Behaviour(lookup_lag=0.3))


def test_item4_a_trailing_stop_rests_at_the_exchange_as_an_oco_with_below_trailing_delta() -> None:
    # the bracket's stop trails 3 % under the highest price since the OCO rests (Binance
    # trailingDelta, faqs/trailing-stop-faq.md): the market rises 8 % and falls back 4 %: the
    # exchange sells there, far above the stop the bracket started with
    async def scenario(rig: Rig) -> None:
        base = bracket(rig, stop_pct="0.97", tp_pct="1.20")
        cmd = SubmitBracket(base.entry, base.take_profit, base.stop_loss, "t", trail_bps=300)
        await rig.bar([cmd])
        resting = open_at_exchange(rig)
        stop = next(o for o in resting if o["type"] == "STOP_LOSS_LIMIT")
        assert stop["trailingDelta"] == 300 and D(stop["stopPrice"]) == 0
        m = rig.emu.markets["SOLUSDT"]
        start = float(rig.last)
        for k in (1.03, 1.06, 1.08):  # up: the trigger follows the highs
            nxt = m.bars[m.closed]
            m.bars[m.closed] = nxt._replace(
                open=start * (k - 0.02), high=start * k, low=start * (k - 0.025), close=start * k
            )
            await rig.bar()
        assert len(open_at_exchange(rig)) == 2  # the pullbacks stayed inside 3 %
        nxt = m.bars[m.closed]
        down = start * 1.08 * 0.96
        m.bars[m.closed] = nxt._replace(
            open=start * 1.075, high=start * 1.075, low=down, close=down
        )  # fmt: skip
        await rig.bar()
        await rig.settle()
        assert not open_at_exchange(rig)
        ours = next(o for o in rig.engine.portfolio.orders.values() if o.type.is_stop)
        assert ours.status.value == "filled" and ours.trailing_bps == 300
        floor = D(repr(start * 1.08 * 0.97)) * D("0.99")  # the trigger, less slippage
        assert ours.avg_price is not None and ours.avg_price > floor > base.stop_loss
        assert rig.engine.portfolio.position.qty < rig.inst.min_qty
        books_equal(rig)

    run(scenario)


def test_item3_an_order_cancelled_before_its_first_send_still_goes_out_then_is_cancelled() -> None:
    # a strategy that quotes and requotes faster than the event loop starts the sends (the
    # ladder at 20 bars/s on three symbols) must still quote: the first send goes out and
    # its cancel follows the answer; only a resend is dropped once the cancel is wanted
    async def scenario(rig: Rig) -> None:
        low = rig.inst.price_down(rig.last * D("0.9"))
        rig.engine.execute([SubmitOrder(BUY, OrderType.LIMIT, D("1"), price=low)])
        order = next(iter(rig.engine.portfolio.orders.values()))
        rig.engine.execute([CancelAll()])  # before the send task has run at all
        await rig.settle()
        assert rig.posts("/api/v3/order") == 1
        assert order.status.value == "cancelled" and order.venue_order_id
        assert not open_at_exchange(rig)
        books_equal(rig)

    run(scenario)
