"""A local Binance-spot-compatible exchange for tests and demos, no kinder than Binance.

The REST subset real ccxt needs to trade spot — ``time``, ``exchangeInfo``, ``klines``,
``ticker/price``, ``account``, ``order`` (POST/GET/DELETE), ``openOrders`` (GET/DELETE),
``allOrders``, ``myTrades``, and order lists (``orderList/oco``, ``orderList`` GET/DELETE,
``openOrderList``) — on 127.0.0.1, behind the front door of ``gate.py`` (keys, signatures,
timestamps by the exchange's clock, request weight, 429 and 418). The order rules are in
``trading.py``; matching is the simulated exchange's (``solbot.venues.sim``): its own books,
fees and intrabar rules. The market is the built-in synthetic one, one bar every ``1/speed``
seconds, its bars stamped in market time (ahead of the wall clock when ``speed`` is above
real time); ``/api/v3/time`` answers the exchange's wall clock, as Binance's does, and
``klines`` ends with the bar still forming, as Binance's does.

Behaviour modes (``Behaviour``: clock offset, lookup lag, BNB fees, weight limit, websocket
lifetime and pings, in-bar kline updates) make it behave as documented where a test double
would be kind. Faults are injected by configuration (``FaultSpec.parse``) on signed endpoints
and klines: ``429`` (with ``Retry-After``), ``418`` (an IP ban for ``ban`` seconds), ``500``,
``timeout`` (carried out, then the answer is held past the client's timeout), ``drop``
(carried out, then answered with -1007 "execution status unknown"), ``latency``, ``partial``.

Not Binance: ``GET /emulator/state`` returns every order, trade and balance, and ``POST
/emulator/ban``, ``/emulator/status`` and ``/emulator/freeze`` start a ban, set a symbol's
status or stop the market, for tests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

from solbot.data.bars import timeframe_ms
from solbot.domain.messages import Bar
from solbot.domain.values import ZERO
from solbot.emulator.behaviour import Behaviour, BehaviourError
from solbot.emulator.faults import FaultSpec, FaultSpecError
from solbot.emulator.gate import Gate
from solbot.emulator.markets import Market, market_instrument
from solbot.emulator.streams import KlineStreams, MultiStreams
from solbot.emulator.trading import Trading
from solbot.emulator.userstream import UserStreams
from solbot.emulator.wire import RATE_LIMITS, BinanceError, order_json
from solbot.emulator.wire import d as _d
from solbot.emulator.wire import symbol_info as _symbol_info
from solbot.runtime.feeds import SYNTHETIC_START, SyntheticFeed
from solbot.venues.sim import SimConfig, SimulatedExchange

__all__ = [
    "Behaviour",
    "BehaviourError",
    "BinanceEmulator",
    "FaultSpec",
    "FaultSpecError",
    "serve_emulator",
]

log = logging.getLogger(__name__)


class BinanceEmulator:
    def __init__(
        self,
        api_key: str,
        api_secret: str,
        balances: dict[str, Decimal] | None = None,
        faults: FaultSpec | None = None,
        speed: float = 4.0,
        timeframe: str = "1m",
        seed: int = 8,
        history: int = 300,
        start_ms: int | None = None,
        fee_in_received: bool = True,
        symbols: list[str] | None = None,
        behaviour: Behaviour | None = None,
    ) -> None:
        self.faults = faults or FaultSpec()
        self.behaviour = behaviour or Behaviour()
        self.gate = Gate(api_key, api_secret, self.faults, self.behaviour)
        self.trading = Trading(self)
        self.user_streams = UserStreams(self.gate, lifetime=self.behaviour.ws_lifetime)
        self.frozen = False  # test control: the market stands still
        self.speed, self.timeframe = speed, timeframe
        self.step = timeframe_ms(timeframe)
        now = time.time_ns() // 1_000_000 if start_ms is None else start_ms
        start = (now // self.step - history) * self.step
        self.markets: dict[str, Market] = {}
        account = None
        for i, sym in enumerate(symbols or ["SOL/USDT"]):
            inst = market_instrument(sym)
            sim = SimulatedExchange(
                inst,
                balances or {"USDT": Decimal("10000"), inst.base: ZERO},
                SimConfig(
                    max_volume_fraction=self.faults.partial,
                    fee_in_received=fee_in_received,
                    bnb_price=self.behaviour.bnb,
                ),
            )
            if account is None:
                account = sim.books
            sim.books = account  # one account: every market trades the same balances
            sim.bind(self.trading.on_event)
            feed = SyntheticFeed(seed + 7919 * i, timeframe, speed)
            m = Market(inst, sim, feed, KlineStreams(inst.base + inst.quote, timeframe, self.step))
            m.extend(SYNTHETIC_START.get(inst.base, 100.0), start)
            self.markets[m.wire] = m
        first = next(iter(self.markets.values()))
        self.inst, self.sim, self.symbol = first.inst, first.sim, first.wire
        self.streams = MultiStreams(
            [m.streams for m in self.markets.values()], lifetime=self.behaviour.ws_lifetime
        )
        for _ in range(history):
            self._advance()

    # ---------------------------------------------------------------- market
    def _advance(self) -> None:
        for m in self.markets.values():
            if m.closed >= len(m.bars):
                last = m.bars[-1]
                m.extend(last.close, last.ts + self.step)
            bar = m.bars[m.closed]
            m.closed += 1
            m.sim.on_bar(bar)
            self.trading.settle_statuses()
            if m.closed >= len(m.bars):
                m.extend(bar.close, bar.ts + self.step)
            m.streams.publish(bar, m.bars[m.closed])

    @property
    def server_ms(self) -> int:
        """The market clock: the close of the last closed bar."""
        first = next(iter(self.markets.values()))
        return first.bars[first.closed - 1].ts + self.step

    @property
    def last_price(self) -> float:
        return next(iter(self.markets.values())).last_price

    async def run_market(self) -> None:
        """One bar every ``1/speed`` s; in between, ``kline_updates - 1`` updates of the bar
        still forming go out on the stream (the first one with the close of the last)."""
        interval = 1.0 / self.speed
        updates = self.behaviour.kline_updates
        nxt = time.monotonic()
        while True:
            for k in range(1, updates):
                await asyncio.sleep(max(0.0, nxt + interval * k / updates - time.monotonic()))
                for m in self.markets.values():
                    m.streams.publish_forming(m.bars[m.closed], k / updates)
            nxt += interval
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))
            if not self.frozen:
                self._advance()

    # ---------------------------------------------------------------- endpoints
    def market(self, params: dict[str, str]) -> Market:
        m = self.markets.get(params.get("symbol", ""))
        if m is None:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return m

    def time(self, _: dict[str, str]) -> Any:
        return {"serverTime": self.gate.now_ms()}

    def exchange_info(self, _: dict[str, str]) -> Any:
        limits = [dict(r) for r in RATE_LIMITS]
        limits[0]["limit"] = self.behaviour.weight_limit
        return {
            "timezone": "UTC",
            "serverTime": self.gate.now_ms(),
            "rateLimits": limits,
            "exchangeFilters": [],
            "symbols": [_symbol_info(m.inst, m.status) for m in self.markets.values()],
        }

    def klines(self, params: dict[str, str]) -> Any:
        m = self.market(params)
        if params.get("interval") != self.timeframe:
            raise BinanceError(400, -1120, f"Invalid interval (this emulator: {self.timeframe}).")
        limit = min(int(params.get("limit", "500")), 1000)
        start = int(params.get("startTime", "0"))
        end = int(params.get("endTime", str(2**62)))
        forming = m.bars[m.closed]
        opening = Bar(forming.ts, forming.open, forming.open, forming.open, forming.open, 0.0)
        closed = [*m.bars[: m.closed], opening]  # Binance's answer ends with the forming bar
        rows = [b for b in closed if start <= b.ts <= end]
        rows = rows[:limit] if "startTime" in params else rows[-limit:]

        def f8(x: float) -> str:  # as recorded: "43519.34000000"
            return f"{x:.8f}"

        zero = f8(0.0)
        return [
            [b.ts, f8(b.open), f8(b.high), f8(b.low), f8(b.close), f8(b.volume),
             b.ts + self.step - 1, zero, 0, zero, zero, "0"]
            for b in rows
        ]  # fmt: skip

    def ticker_price(self, params: dict[str, str]) -> Any:
        m = self.market(params)
        return {"symbol": m.wire, "price": f"{m.last_price:.8f}"}

    def account(self, _: dict[str, str]) -> Any:
        """``GET /api/v3/account`` as recorded (``responses_spot.json``, fetchBalance)."""
        rate = _d(self.inst.taker_fee)
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": rate,
                "taker": rate,
                "buyer": _d(ZERO),
                "seller": _d(ZERO),
            },
            "canTrade": True,
            "canWithdraw": False,
            "canDeposit": False,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self.gate.now_ms(),
            "accountType": "SPOT",
            "balances": [
                {"asset": a, "free": _d(free), "locked": _d(locked)}
                for a, (free, locked) in self.sim.books.snapshot().items()
            ],
            "permissions": ["SPOT"],
            "uid": 100000001,
        }

    def ban_now(self, params: dict[str, str]) -> Any:
        """Test control: start a 418 ban of ``seconds`` now (``POST /emulator/ban?seconds=N``)."""
        try:
            seconds = float(params.get("seconds", str(self.faults.ban)))
        except ValueError:
            raise BinanceError(
                400, -1100, "Illegal characters found in parameter 'seconds'."
            ) from None
        self.gate.ban(seconds)
        return {"banned_for": seconds}

    def freeze(self, params: dict[str, str]) -> Any:
        """Test control: ``POST /emulator/freeze?on=1`` stops the market (``on=0`` goes on)."""
        self.frozen = params.get("on", "1") != "0"
        return {"frozen": self.frozen}

    def set_status(self, params: dict[str, str]) -> Any:
        """Test control: ``POST /emulator/status?symbol=SOLUSDT&status=BREAK``."""
        m = self.market(params)
        m.status = params.get("status", "TRADING")
        return {"symbol": m.wire, "status": m.status}

    def state(self, _: dict[str, str]) -> Any:
        return {
            "orders": [order_json(r) for r in self.trading.orders.values()],
            "trades": self.trading.trades,
            "lists": len(self.trading.lists),
            "balances": {a: [_d(f), _d(lk)] for a, (f, lk) in self.sim.books.snapshot().items()},
            "faults": self.gate.fault_counts,
            "requests": self.gate.requests,
            "faulty_requests": self.gate.faulty_requests,
            "banned_requests": self.gate.banned_requests,
            "in_window_requests": self.gate.in_window_requests,
            "weight_429s": self.gate.weight_429s,
            "weight_minutes": {str(m): w for m, w in self.gate.weight_minutes.items()},
            "weight_paths": {str(m): p for m, p in self.gate.weight_paths.items()},
            "fault_log": self.gate.fault_log,
            "bans_served": self.gate.bans_served,
            "ban_log": self.gate.ban_log,
            "ws_connections": self.streams.opened,
            "user_stream": {
                "connections": self.user_streams.opened,
                "subscriptions": self.user_streams.subscribed,
                "events": self.user_streams.events,
            },
            "server_ms": self.server_ms,
            "last_price": repr(self.last_price),
        }

    # ---------------------------------------------------------------- app
    def app(self) -> Starlette:
        def route(path: str, methods: dict[str, tuple[Any, bool, bool]]) -> Route:
            async def endpoint(request: Request) -> Response:
                fn, signed, faulty = methods[request.method]
                return await self.gate.handle(request, fn, signed, faulty)

            return Route(path, endpoint, methods=list(methods))

        return Starlette(
            routes=[
                route("/api/v3/ping", {"GET": (lambda _: {}, False, False)}),
                route("/api/v3/time", {"GET": (self.time, False, False)}),
                route("/api/v3/exchangeInfo", {"GET": (self.exchange_info, False, False)}),
                route("/api/v3/klines", {"GET": (self.klines, False, True)}),
                route("/api/v3/ticker/price", {"GET": (self.ticker_price, False, True)}),
                route("/api/v3/account", {"GET": (self.account, True, True)}),
                *(route(path, methods) for path, methods in self.trading.routes().items()),
                route("/emulator/state", {"GET": (self.state, False, False)}),
                route("/emulator/ban", {"POST": (self.ban_now, False, False)}),
                route("/emulator/status", {"POST": (self.set_status, False, False)}),
                route("/emulator/freeze", {"POST": (self.freeze, False, False)}),
                WebSocketRoute("/ws-api/v3", self.user_streams.endpoint),
                WebSocketRoute("/stream/ws", self.streams.endpoint),
                WebSocketRoute("/stream/ws/{stream:path}", self.streams.endpoint),
            ]
        )


async def serve_emulator(emu: BinanceEmulator, host: str, port: int) -> None:
    import uvicorn

    config = uvicorn.Config(
        emu.app(),
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        ws_ping_interval=emu.behaviour.ws_ping,  # web-socket-streams.md: a ping every 20 s
        ws_ping_timeout=60.0,  # "… within a minute the connection will be disconnected"
    )
    server = uvicorn.Server(config)
    market = asyncio.create_task(emu.run_market(), name="emulator-market")
    try:
        await server.serve()
    finally:
        market.cancel()


def dumps_state(emu: BinanceEmulator) -> str:
    return json.dumps(emu.state({}), indent=2)
