"""The user data stream (``venues.userstream``) against the emulator's WebSocket API, served
by uvicorn on loopback in this process, with ccxt.pro's real Binance client parsing the
``executionReport`` events and ccxt's REST client sending the orders: the live venue and the
real engine drive a bracket whose entry's answer is lost (-1007) while the order query lags
3 s ("Memory => Database"). The stream's report (data source Memory) books the fill at once
and the OCO follows within a second; without the stream it waits for the lagging query."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal as D
from typing import Any

import pytest
import uvicorn

from solbot.domain.instruments import sol_usdt
from solbot.domain.ledger import Ledger
from solbot.domain.messages import SubmitBracket, SubmitOrder
from solbot.domain.values import OrderType, Side
from solbot.emulator.binance import Behaviour, BinanceEmulator
from solbot.engine.core import Engine
from solbot.engine.portfolio import Portfolio
from solbot.engine.ports import SimClock
from solbot.venues.clients import trading_client, user_stream_client
from solbot.venues.live import LiveVenue, VenueHealth
from solbot.venues.userstream import UserStream
from tests.conftest import Scripted
from tests.integration.botproc import free_port

pytestmark = pytest.mark.integration
KEY, SECRET = "stream-key-0123456789", "stream-secret-abcdefghijklmnop"
LAG = 3.0


async def _until(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _lost_entry_answer(with_stream: bool) -> dict[str, Any]:
    emu = BinanceEmulator(
        KEY, SECRET, {"USDT": D("10000"), "SOL": D("0")}, behaviour=Behaviour(lookup_lag=LAG),
        speed=1000, timeframe="1m", history=60,
    )  # fmt: skip
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            emu.app(),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
    )
    serving = asyncio.create_task(server.serve())
    url = f"http://127.0.0.1:{port}"
    ex = trading_client("binance", url, KEY, SECRET, timeout_ms=1000)
    ex.options["recvWindow"] = 1000
    health = VenueHealth()
    health.traffic.install(ex)
    inst = sol_usdt()
    venue = LiveVenue(ex, inst, poll=0.05, health=health)
    venue.lookup_margin = LAG + 1.0  # the lookup window must outlast the lag here
    strategy = Scripted()
    books = {a: f + lk for a, (f, lk) in emu.sim.books.snapshot().items()}
    engine = Engine(
        strategy, Portfolio(inst, Ledger(books)), venue, SimClock(), stop_limit_offset=D("0.005")
    )
    venue.after = engine.on_venue_event_drain
    stream = None
    tasks: list[asyncio.Task[Any]] = []
    try:
        await _until(lambda: server.started, 10, "the emulator's server")
        await ex.load_markets()
        engine.start()
        if with_stream:
            client = user_stream_client("binance", url, KEY, SECRET)
            assert client is not None
            stream = UserStream(client, ex, {"SOL/USDT": venue}, health.traffic)
            tasks.append(asyncio.create_task(stream.run()))
            await _until(lambda: emu.user_streams.subscribed >= 1, 10, "the subscription")
        tasks.append(asyncio.create_task(venue.run()))
        last = D(repr(emu.last_price))
        emu.gate.script.append(("POST", "/api/v3/order", "drop"))  # done, answered -1007
        emu._advance()
        m = emu.markets["SOLUSDT"]
        strategy.script[strategy.i + 1] = [
            SubmitBracket(
                SubmitOrder(Side.BUY, OrderType.MARKET, D("10"), tag="entry"),
                take_profit=inst.price_up(last * D("1.05")),
                stop_loss=inst.price_down(last * D("0.97")),
            )
        ]
        engine.on_bar(m.bars[m.closed - 1])
        await _until(lambda: emu.trading.lists, LAG + 5, "the OCO at the exchange")
        await _until(lambda: not venue.busy(), LAG + 5, "the entry's outcome")
        entry = next(o for o in engine.portfolio.orders.values() if o.tag == "entry")
        oco = [r for r in emu.trading.orders.values() if r.list_id != -1]
        return {
            "delay_ms": min(r.time for r in oco) - emu.trading.trades[0]["time"],
            "entry": entry,
            "market_orders": [r for r in emu.trading.orders.values() if r.type == "MARKET"],
            "unknown": health.unknown_outcomes,
            "stream_trades": health.stream_trades,
        }
    finally:
        if stream is not None:
            await stream.close()
        # closed first: Python 3.11's wait_for can swallow a cancel that meets a wake-up, and
        # the poll loop then ends at its next turn (as the bot's shutdown closes it)
        await venue.close(client=False)
        for t in tasks:
            t.cancel()
        _done, pending = await asyncio.wait(tasks, timeout=10) if tasks else (set(), set())
        assert not pending, f"tasks that would not stop: {pending}"
        await ex.close()
        server.should_exit = True
        await asyncio.wait_for(serving, 10)


def test_a_lost_entry_answer_is_protected_within_a_second_by_the_user_data_stream() -> None:
    got = asyncio.run(_lost_entry_answer(with_stream=True))
    assert got["unknown"] == 1 and len(got["market_orders"]) == 1  # lost, and never resent
    assert got["stream_trades"] == 1  # booked from the stream, not the poll
    assert got["entry"].status.value == "filled" and got["entry"].venue_order_id
    assert got["delay_ms"] < 1000, got["delay_ms"]


def test_without_the_stream_the_same_entry_waits_for_the_lagging_order_query() -> None:
    got = asyncio.run(_lost_entry_answer(with_stream=False))
    assert got["unknown"] == 1 and len(got["market_orders"]) == 1
    assert got["stream_trades"] == 0
    assert got["delay_ms"] >= LAG * 1000 * 0.9, got["delay_ms"]
