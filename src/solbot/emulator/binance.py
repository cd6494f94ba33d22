"""A local Binance-spot-compatible exchange for tests and demos.

The REST subset real ccxt needs to trade spot — ``time``, ``exchangeInfo``, ``klines``,
``ticker/price``, ``account``, ``order`` (POST/GET/DELETE), ``openOrders`` (GET/DELETE),
``myTrades`` — on 127.0.0.1, with API-key and HMAC-SHA256 signature checks as Binance does
them (``X-MBX-APIKEY``; ``signature`` over the query string or form body; ``timestamp``
within ``recvWindow``). Matching is the simulated exchange's (``solbot.venues.sim``): its own
books, fees and intrabar rules. The market is the built-in synthetic one, one bar every
``1/speed`` seconds; its clock (``/api/v3/time``) is the close of the last bar, so it runs
ahead of the wall clock when ``speed`` is above real time.

Faults are injected by configuration (``FaultSpec.parse``), on signed endpoints and klines:
``429`` (with ``Retry-After``), ``418`` (an IP ban for ``ban`` seconds), ``500``,
``timeout`` (the request is carried out, then the answer is held past the client's
timeout: the outcome is unknown to the client), ``drop`` (carried out, then answered with
Binance's -1007 "execution status unknown"), ``latency`` (seconds added to every answer),
``partial`` (each fill takes at most this fraction of a bar's volume).

Not Binance: ``GET /emulator/state`` returns every order, trade and balance, for tests.
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
from solbot.domain.messages import (
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
)
from solbot.domain.orders import Order
from solbot.domain.values import ZERO, OrderId, OrderType, Side
from solbot.emulator.faults import FaultSpec, FaultSpecError
from solbot.emulator.gate import Gate
from solbot.emulator.markets import Market, market_instrument
from solbot.emulator.streams import KlineStreams, MultiStreams
from solbot.emulator.wire import BinanceError, order_json
from solbot.emulator.wire import OrderRec as _OrderRec
from solbot.emulator.wire import d as _d
from solbot.emulator.wire import symbol_info as _symbol_info
from solbot.runtime.feeds import SYNTHETIC_START, SyntheticFeed
from solbot.venues.sim import SimConfig, SimulatedExchange

__all__ = ["BinanceEmulator", "FaultSpec", "FaultSpecError", "serve_emulator"]

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
    ) -> None:
        self.faults = faults or FaultSpec()
        self.gate = Gate(api_key, api_secret, self.faults)
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
                SimConfig(max_volume_fraction=self.faults.partial, fee_in_received=fee_in_received),
            )
            if account is None:
                account = sim.books
            sim.books = account  # one account: every market trades the same balances
            sim.bind(self._on_event)
            feed = SyntheticFeed(seed + 7919 * i, timeframe, speed)
            m = Market(inst, sim, feed, KlineStreams(inst.base + inst.quote, timeframe, self.step))
            m.extend(SYNTHETIC_START.get(inst.base, 100.0), start)
            self.markets[m.wire] = m
        first = next(iter(self.markets.values()))
        self.inst, self.sim, self.symbol = first.inst, first.sim, first.wire
        self.streams = MultiStreams([m.streams for m in self.markets.values()])
        self.orders: dict[int, _OrderRec] = {}
        self.trades: list[dict[str, Any]] = []
        self._next_order = 1000
        self._next_trade = 5000
        self._pending_reject: str | None = None
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
            self._settle_statuses(bar.ts + self.step)
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
        interval = 1.0 / self.speed
        nxt = time.monotonic()
        while True:
            nxt += interval
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))
            self._advance()

    # ---------------------------------------------------------------- venue events
    def _on_event(self, event: Event) -> None:
        rec = self.orders.get(int(event.order_id))
        if rec is None:
            return
        rec.update_time = self.server_ms
        if isinstance(event, OrderAccepted):
            rec.status = "NEW"
        elif isinstance(event, OrderRejected):
            rec.status = "REJECTED"
            self._pending_reject = event.reason
        elif isinstance(event, OrderCancelled):
            rec.status = "EXPIRED" if "cancelled by request" not in event.reason else "CANCELED"
        elif isinstance(event, OrderFilled):
            f = event.fill
            rec.executed += f.quantity
            rec.cum_quote += f.quantity * f.price
            rec.status = "PARTIALLY_FILLED"
            self._next_trade += 1
            self.trades.append(
                {
                    "symbol": rec.symbol,
                    "id": self._next_trade,
                    "orderId": rec.order_id,
                    "orderListId": -1,
                    "price": _d(f.price),
                    "qty": _d(f.quantity),
                    "quoteQty": _d(f.quantity * f.price),
                    "commission": _d(f.fee),
                    "commissionAsset": f.fee_asset,
                    "time": self.server_ms,
                    "isBuyer": f.side is Side.BUY,
                    "isMaker": f.liquidity.value == "maker",
                    "isBestMatch": True,
                }
            )

    def _settle_statuses(self, ts: int) -> None:
        working = {oid for m in self.markets.values() for oid in m.sim.open_order_ids()}
        for rec in self.orders.values():
            if rec.status in ("NEW", "PARTIALLY_FILLED") and OrderId(str(rec.order_id)) not in (
                working
            ):
                rec.status = "FILLED"
                rec.update_time = ts

    # ---------------------------------------------------------------- endpoints
    def _market(self, params: dict[str, str]) -> Market:
        m = self.markets.get(params.get("symbol", ""))
        if m is None:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return m

    def time(self, _: dict[str, str]) -> Any:
        return {"serverTime": self.server_ms}

    def exchange_info(self, _: dict[str, str]) -> Any:
        return {
            "timezone": "UTC",
            "serverTime": self.server_ms,
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": [_symbol_info(m.inst) for m in self.markets.values()],
        }

    def klines(self, params: dict[str, str]) -> Any:
        m = self._market(params)
        if params.get("interval") != self.timeframe:
            raise BinanceError(400, -1120, f"Invalid interval (this emulator: {self.timeframe}).")
        limit = min(int(params.get("limit", "500")), 1000)
        start = int(params.get("startTime", "0"))
        end = int(params.get("endTime", str(2**62)))
        closed = m.bars[: m.closed]
        rows = [b for b in closed if start <= b.ts <= end]
        rows = rows[:limit] if "startTime" in params else rows[-limit:]
        return [
            [
                b.ts,
                repr(b.open),
                repr(b.high),
                repr(b.low),
                repr(b.close),
                repr(b.volume),
                b.ts + self.step - 1,
                "0",
                0,
                "0",
                "0",
                "0",
            ]
            for b in rows
        ]

    def ticker_price(self, params: dict[str, str]) -> Any:
        m = self._market(params)
        return {"symbol": m.wire, "price": repr(m.last_price)}

    def account(self, _: dict[str, str]) -> Any:
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "canTrade": True,
            "canWithdraw": False,
            "canDeposit": False,
            "updateTime": self.server_ms,
            "accountType": "SPOT",
            "balances": [
                {"asset": a, "free": _d(free), "locked": _d(locked)}
                for a, (free, locked) in self.sim.books.snapshot().items()
            ],
            "permissions": ["SPOT"],
        }

    def _order_json(self, rec: _OrderRec) -> dict[str, Any]:
        return order_json(rec, rec.symbol)

    def _decimal(self, params: dict[str, str], key: str) -> Decimal | None:
        if key not in params:
            return None
        try:
            return Decimal(params[key])
        except ArithmeticError:
            raise BinanceError(
                400, -1100, f"Illegal characters found in parameter '{key}'."
            ) from None

    def new_order(self, params: dict[str, str]) -> Any:
        m = self._market(params)
        inst = m.inst
        side = params.get("side", "")
        otype = params.get("type", "")
        if side not in ("BUY", "SELL"):
            raise BinanceError(400, -1100, "Invalid side.")
        if otype not in ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS"):
            raise BinanceError(400, -1116, "Invalid orderType.")
        client_id = params.get("newClientOrderId") or f"emu{self._next_order + 1}"
        for rec in self.orders.values():
            if rec.client_id == client_id and rec.status in ("NEW", "PARTIALLY_FILLED"):
                raise BinanceError(400, -2010, "Duplicate order sent.")
        qty = self._decimal(params, "quantity")
        quote = self._decimal(params, "quoteOrderQty")
        price = self._decimal(params, "price")
        stop = self._decimal(params, "stopPrice")
        if otype in ("LIMIT", "LIMIT_MAKER") and (price is None or qty is None):
            raise BinanceError(
                400, -1102, "Mandatory parameter 'price' or 'quantity' was not sent."
            )
        if otype == "STOP_LOSS" and (stop is None or qty is None):
            raise BinanceError(400, -1102, "Mandatory parameter 'stopPrice' was not sent.")
        if otype == "MARKET" and (qty is None) == (quote is None):
            raise BinanceError(400, -1102, "Send exactly one of 'quantity' and 'quoteOrderQty'.")
        if qty is not None and (qty < inst.min_qty or not inst.qty_ok(qty)):
            raise BinanceError(400, -1013, "Filter failure: LOT_SIZE")
        for p in (price, stop):
            if p is not None and not inst.price_ok(p):
                raise BinanceError(400, -1013, "Filter failure: PRICE_FILTER")
        ref = price or stop or Decimal(repr(m.last_price))
        notional = quote if quote is not None else (qty or ZERO) * ref
        if notional < inst.min_notional:
            raise BinanceError(400, -1013, "Filter failure: NOTIONAL")
        self._next_order += 1
        oid = self._next_order
        rec = _OrderRec(
            oid,
            client_id,
            side,
            otype,
            qty or ZERO,
            price or ZERO,
            stop or ZERO,
            quote or ZERO,
            self.server_ms,
            symbol=m.wire,
        )
        self.orders[oid] = rec
        order = Order(
            order_id=OrderId(str(oid)),
            symbol=inst.symbol,
            side=Side.BUY if side == "BUY" else Side.SELL,
            type={
                "MARKET": OrderType.MARKET,
                "STOP_LOSS": OrderType.STOP_MARKET,
            }.get(otype, OrderType.LIMIT),
            quantity=qty or ZERO,
            price=price,
            trigger_price=stop,
            quote_quantity=quote,
            post_only=otype == "LIMIT_MAKER",
        )
        self._pending_reject = None
        m.sim.submit(order)
        if rec.status == "REJECTED":
            del self.orders[oid]
            reason = self._pending_reject or "rejected"
            if "post-only" in reason:
                raise BinanceError(400, -2010, "Order would immediately match and take.")
            raise BinanceError(400, -2010, "Account has insufficient balance for requested action.")
        if otype == "MARKET":
            m.sim.match_market_now(m.last_price)
            self._settle_statuses(self.server_ms)
        out = self._order_json(rec)
        out["transactTime"] = self.server_ms
        out["fills"] = [
            {
                "price": t["price"],
                "qty": t["qty"],
                "commission": t["commission"],
                "commissionAsset": t["commissionAsset"],
                "tradeId": t["id"],
            }
            for t in self.trades
            if t["orderId"] == oid
        ]
        return out

    def _find(self, params: dict[str, str]) -> tuple[Market, _OrderRec]:
        m = self._market(params)
        if "orderId" in params:
            rec = self.orders.get(int(params["orderId"]))
        elif "origClientOrderId" in params:
            cid = params["origClientOrderId"]
            found = [r for r in self.orders.values() if r.client_id == cid and r.symbol == m.wire]
            rec = found[-1] if found else None
        else:
            raise BinanceError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent.")
        if rec is None or rec.symbol != m.wire:
            raise BinanceError(400, -2013, "Order does not exist.")
        return m, rec

    def get_order(self, params: dict[str, str]) -> Any:
        return self._order_json(self._find(params)[1])

    def cancel_order(self, params: dict[str, str]) -> Any:
        m, rec = self._find(params)
        if rec.status not in ("NEW", "PARTIALLY_FILLED"):
            raise BinanceError(400, -2011, "Unknown order sent.")
        m.sim.cancel(OrderId(str(rec.order_id)))
        return self._order_json(rec)

    def open_orders(self, params: dict[str, str]) -> Any:
        wire = self._market(params).wire if "symbol" in params else None
        return [
            self._order_json(r)
            for r in self.orders.values()
            if r.status in ("NEW", "PARTIALLY_FILLED") and wire in (None, r.symbol)
        ]

    def cancel_open_orders(self, params: dict[str, str]) -> Any:
        m = self._market(params)
        out = []
        for r in list(self.orders.values()):
            if r.status in ("NEW", "PARTIALLY_FILLED") and r.symbol == m.wire:
                m.sim.cancel(OrderId(str(r.order_id)))
                out.append(self._order_json(r))
        return out

    def my_trades(self, params: dict[str, str]) -> Any:
        m = self._market(params)
        limit = min(int(params.get("limit", "500")), 1000)
        rows = [t for t in self.trades if t["symbol"] == m.wire]
        if "orderId" in params:
            rows = [t for t in rows if t["orderId"] == int(params["orderId"])]
        if "fromId" in params:
            rows = [t for t in rows if t["id"] >= int(params["fromId"])]
        elif "startTime" in params:
            rows = [t for t in rows if t["time"] >= int(params["startTime"])]
        return rows[:limit] if "fromId" in params or "startTime" in params else rows[-limit:]

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

    def state(self, _: dict[str, str]) -> Any:
        return {
            "orders": [self._order_json(r) for r in self.orders.values()],
            "trades": self.trades,
            "balances": {a: [_d(f), _d(lk)] for a, (f, lk) in self.sim.books.snapshot().items()},
            "faults": self.gate.fault_counts,
            "requests": self.gate.requests,
            "faulty_requests": self.gate.faulty_requests,
            "banned_requests": self.gate.banned_requests,
            "server_ms": self.server_ms,
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
                route(
                    "/api/v3/order",
                    {
                        "POST": (self.new_order, True, True),
                        "GET": (self.get_order, True, True),
                        "DELETE": (self.cancel_order, True, True),
                    },
                ),
                route(
                    "/api/v3/openOrders",
                    {
                        "GET": (self.open_orders, True, True),
                        "DELETE": (self.cancel_open_orders, True, True),
                    },
                ),
                route("/api/v3/myTrades", {"GET": (self.my_trades, True, True)}),
                route("/emulator/state", {"GET": (self.state, False, False)}),
                route("/emulator/ban", {"POST": (self.ban_now, False, False)}),
                WebSocketRoute("/stream/ws", self.streams.endpoint),
                WebSocketRoute("/stream/ws/{stream:path}", self.streams.endpoint),
            ]
        )


async def serve_emulator(emu: BinanceEmulator, host: str, port: int) -> None:
    import uvicorn

    config = uvicorn.Config(emu.app(), host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    market = asyncio.create_task(emu.run_market(), name="emulator-market")
    try:
        await server.serve()
    finally:
        market.cancel()


def dumps_state(emu: BinanceEmulator) -> str:
    return json.dumps(emu.state({}), indent=2)
