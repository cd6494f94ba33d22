"""The HTTP API. Routes are thin: they read the bot's view (``runtime.view.BotView``: frozen
snapshots and a few commands) and shape typed answers; nothing here reaches into the bot.

Control routes (kill, pause, resume) need ``Authorization: Bearer <SOLBOT_API_TOKEN>``,
compared in constant time; without a configured token they are disabled (403).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import weakref
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import numpy as np
import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from solbot import __version__
from solbot.api import dashboard
from solbot.api.guard import BodyGuard, Hardened, Pacer, Tickets, token_refusal
from solbot.control.commands import Caller, Commands
from solbot.control.discord import DiscordControl
from solbot.domain.messages import ms_to_datetime
from solbot.runtime.view import BotView


class KillSwitch(BaseModel):
    engaged: bool
    flag: str
    reason: str | None = None


class SymbolStatus(BaseModel):
    symbol: str
    weight: str  # share of the initial capital
    trading_state: str
    trading_state_reason: str
    last_market_data_time: datetime | None
    bars_processed: int


class Status(BaseModel):
    status: str
    problems: list[str]
    mode: str  # paper, live, or live (testnet)
    testnet: bool
    market: str
    symbol: str
    version: str
    uptime_seconds: float
    started_at: datetime
    last_market_data_time: datetime | None
    bars_processed: int
    trading_state: str
    trading_state_reason: str
    paused: bool
    kill_switch: KillSwitch
    symbols: list[SymbolStatus]


class Position(BaseModel):
    symbol: str
    qty: str
    avgPrice: str  # noqa: N815  (the runbook's camelCase API)
    unrealisedPnL: str  # noqa: N815
    realisedPnL: str  # noqa: N815


class SymbolAccount(BaseModel):
    symbol: str
    weight: str
    equity: str
    totalPnL: str  # noqa: N815
    balances: dict[str, dict[str, str]]


class Account(BaseModel):
    asset: str
    balance: str
    balances: dict[str, dict[str, str]]
    equity: str
    dailyPnL: str  # noqa: N815
    totalPnL: str  # noqa: N815
    fees: str
    positions: list[Position]
    exposure: str  # value of all positions (quote)
    exposureCap: str  # noqa: N815  (fraction of equity)
    symbols: list[SymbolAccount]


class Problem(BaseModel):
    detail: str


UNKNOWN_SYMBOL: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "unknown symbol"}
}
CONTROL_ANSWERS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "missing or wrong bearer token"},
    403: {"model": Problem, "description": "control API disabled (no SOLBOT_API_TOKEN)"},
    408: {"model": Problem, "description": "request body not received in time"},
    413: {"model": Problem, "description": "request body over 4 KB"},
}


# what any route may answer before it runs (``api.guard``): a foreign Host, and a request
# without the token beyond the unauthenticated budget
EVERY_ROUTE: dict[int | str, dict[str, Any]] = {
    421: {"model": Problem, "description": "Host not one of the bot's names"},
    429: {"model": Problem, "description": "over the budget of requests without the token"},
}


class KillRequest(BaseModel):
    reason: str = Field("kill requested through the API", max_length=500)


API = Caller("api", "token holder")  # who a control route's command is recorded as


def create_app(view: BotView, discord: DiscordControl | None = None) -> FastAPI:
    v = view
    commands = Commands(v)  # the control verbs, shared with the chat transports
    app = FastAPI(
        title="SOL-Bot",
        version=__version__,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        responses=EVERY_ROUTE,
    )

    tickets = Tickets()  # the dashboard's stream tickets (``api.guard.Tickets``)
    app.add_middleware(BodyGuard, token=lambda: v.api_token)  # before any body read
    app.add_middleware(Hardened, allowed=v.allowed_hosts())  # Host check
    rate = v.unauthenticated_rate()
    app.add_middleware(  # outermost: a flood without the token waits its turn
        Pacer,
        token=lambda: v.api_token,
        tickets=tickets.valid,
        rate=rate,
        burst=max(1, round(rate)),
    )

    def authorised(authorization: Annotated[str | None, Header()] = None) -> None:
        refused = token_refusal(v.api_token, authorization)
        if refused is not None:
            status, detail, headers = refused
            raise HTTPException(status, detail, headers=headers or None)

    def known(symbol: str) -> str:
        traded = v.symbol(symbol)
        if traded is None:
            raise HTTPException(404, f"unknown symbol {symbol!r}")
        return traded

    def chosen(symbol: str | None) -> str | None:
        return None if symbol is None else known(symbol)

    @app.get("/api/status", response_model=Status, responses={503: {"model": Status}})
    async def status() -> Any:
        st = v.status()
        body = Status(
            status="ok" if st.healthy else "unhealthy",
            problems=list(st.problems),
            mode=st.mode,
            testnet=st.testnet,
            market=st.market,
            symbol=st.symbol,
            version=st.version,
            uptime_seconds=round(st.uptime_seconds, 3),
            started_at=st.started_at,
            last_market_data_time=_when(st.last_bar_ts),
            bars_processed=st.bars_processed,
            trading_state=st.trading_state.value,
            trading_state_reason=st.trading_state_reason,
            paused=st.paused,
            kill_switch=KillSwitch(
                engaged=st.kill_engaged, flag=st.kill_flag, reason=st.kill_reason
            ),
            symbols=[
                SymbolStatus(
                    symbol=x.symbol,
                    weight=_dec(x.weight),
                    trading_state=x.trading_state.value,
                    trading_state_reason=x.trading_state_reason,
                    last_market_data_time=_when(x.last_bar_ts),
                    bars_processed=x.bars_processed,
                )
                for x in st.symbols
            ],
        )
        return JSONResponse(body.model_dump(mode="json"), status_code=200 if st.healthy else 503)

    @app.get("/api/account", response_model=Account)
    async def account() -> Account:
        """The whole account: balances summed over the symbols' sleeves, every position,
        equity and PnL of the sum; ``symbols`` has each sleeve's own books."""
        a = v.account()
        return Account(
            asset=a.asset,
            balance=_dec(a.quote_balance()),
            balances=_balances(a.balances),
            equity=_dec(a.equity),
            dailyPnL=_dec(a.daily_pnl),
            totalPnL=_dec(a.total_pnl),
            fees=_dec(a.fees),
            positions=[
                Position(
                    symbol=p.symbol,
                    qty=_dec(p.qty),
                    avgPrice=_dec(p.avg_price),
                    unrealisedPnL=_dec(p.unrealised_pnl),
                    realisedPnL=_dec(p.realised_pnl),
                )
                for p in a.positions()
            ],
            exposure=_dec(a.exposure),
            exposureCap=_dec(a.exposure_cap),
            symbols=[
                SymbolAccount(
                    symbol=b.symbol,
                    weight=_dec(b.weight),
                    equity=_dec(b.equity),
                    totalPnL=_dec(b.total_pnl),
                    balances=_balances(b.balances),
                )
                for b in a.sleeves
            ],
        )

    @app.get(
        "/metrics",
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition format 0.0.4",
                "content": {"text/plain; version=0.0.4; charset=utf-8": {}},
            }
        },
    )
    async def metrics() -> Response:
        return Response(v.metrics_text(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/api/perf")
    async def perf(last: int = 1000) -> dict[str, Any]:
        """Bar processing time (engine + persistence) over the last ``last`` bars, in ms."""
        p = v.perf()
        n = min(max(last, 1), len(p.bar_seconds)) if p.bar_seconds else 0
        xs = np.array(p.bar_seconds[-n:]) * 1000 if n else np.array([0.0])
        return {
            "bars": n,
            "p50_ms": float(np.percentile(xs, 50)),
            "p90_ms": float(np.percentile(xs, 90)),
            "p99_ms": float(np.percentile(xs, 99)),
            "max_ms": float(xs.max()),
            "event_loop_lag_ms": p.loop_lag_seconds * 1000,
        }

    @app.get("/api/orders", responses=UNKNOWN_SYMBOL)
    def orders(
        open_only: bool = False, limit: int = 100, symbol: str | None = None
    ) -> list[dict[str, Any]]:
        rows = v.orders(min(max(limit, 1), 1000), open_only, chosen(symbol))
        return [{k: _json(x) for k, x in row.items()} for row in rows]

    @app.get("/api/trades", responses=UNKNOWN_SYMBOL)
    def trades(limit: int = 100, symbol: str | None = None) -> list[dict[str, Any]]:
        rows = v.fills(min(max(limit, 1), 1000), chosen(symbol))
        return [{k: _json(x) for k, x in row.items()} for row in rows]

    @app.get("/api/market/{symbol}", responses=UNKNOWN_SYMBOL)
    async def market(symbol: str, limit: int = 200) -> dict[str, Any]:
        m = v.market(known(symbol))
        bars = m.bars[-min(max(limit, 1), len(m.bars) or 1) :]
        return {
            "symbol": m.symbol,
            "timeframe": m.timeframe,
            "last": m.bars[-1]._asdict() if m.bars else None,
            "bars": [list(b) for b in bars],
        }

    @app.get("/api/analysis/{symbol}", responses=UNKNOWN_SYMBOL)
    async def analysis(symbol: str) -> dict[str, Any]:
        return v.analysis(known(symbol))

    @app.get("/api/strategy/{symbol}", responses=UNKNOWN_SYMBOL)
    async def strategy(symbol: str) -> dict[str, Any]:
        st = v.strategy(known(symbol))
        return {
            "symbol": st.symbol,
            "strategy": st.name,
            "spec": st.spec,
            "source_sha256": st.source_sha256,
            "params": {k: _json(x) for k, x in st.params.items()},
            "trading_state": st.trading_state.value,
            "paused": st.paused,
            "position": str(st.position),
            "open_orders": list(st.open_orders),
        }

    @app.post(
        "/api/kill", status_code=202, dependencies=[Depends(authorised)], responses=CONTROL_ANSWERS
    )
    async def kill(req: KillRequest | None = None) -> dict[str, str]:
        reason = commands.kill(req.reason if req else "", API)
        return {"status": "kill switch engaged", "reason": reason}

    @app.post("/api/pause", dependencies=[Depends(authorised)], responses=CONTROL_ANSWERS)
    async def pause() -> dict[str, bool]:
        commands.pause(API)
        return {"paused": True}

    @app.post("/api/resume", dependencies=[Depends(authorised)], responses=CONTROL_ANSWERS)
    async def resume() -> dict[str, bool]:
        commands.resume(API)
        return {"paused": False}

    @app.post(
        "/api/discord/interactions",
        responses={
            400: {"description": "not an interaction"},
            401: {"description": "invalid request signature"},
            404: {"description": "Discord control is off (SOLBOT_DISCORD_PUBLIC_KEY)"},
        },
    )
    async def discord_interactions(request: Request) -> JSONResponse:
        """Discord's interactions endpoint (slash commands, buttons): signed by Discord."""
        if discord is None:
            raise HTTPException(404, "Discord control is off")
        status, answer = discord.handle(
            {k.lower(): val for k, val in request.headers.items()}, await request.body()
        )
        return JSONResponse(answer, status_code=status)

    dashboard.install(app, v, tickets)
    return app


def _when(ms: int | None) -> datetime | None:
    return ms_to_datetime(ms) if ms is not None else None


def _balances(b: Mapping[str, tuple[Decimal, Decimal]]) -> dict[str, dict[str, str]]:
    return {a: {"free": _dec(f), "locked": _dec(lk)} for a, (f, lk) in b.items()}


def _dec(v: Decimal) -> str:
    """Decimals as plain strings: "0" rather than "0E-8"."""
    return "0" if v == 0 else format(v, "f")


def _json(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return v if np.isfinite(v) else None
    if isinstance(v, Decimal):
        return _dec(v)
    return str(v)


class _Protocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol, knowing when its connection was made (the oldest idle
    connection is closed first)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.made_at = time.monotonic()
        super().connection_made(transport)


IDLE_LIMIT = 10.0  # s: a connection with no request in progress (or headers never finished)
MAX_CONNECTIONS = 256  # beyond: the longest-idle connections are closed first


class ApiServer(uvicorn.Server):
    """uvicorn inside our loop: the service owns SIGTERM/SIGINT, not uvicorn.

    uvicorn has no timeout for a connection that never finishes its request headers and no
    cap on connections: 1,100 half-open connections took the API down for 30 s. Twice a
    second, connections with no request in progress that have been so for ``IDLE_LIMIT`` are
    closed, and beyond ``MAX_CONNECTIONS`` the longest-idle go first (a client with the token
    asking ``/api/status`` is the newest, so it is kept). uvicorn's own keep-alive timeout
    (5 s) still closes idle connections after a response."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._idle: weakref.WeakKeyDictionary[Any, tuple[int, float]] = weakref.WeakKeyDictionary()
        self.dropped = 0  # connections closed by the idle limit or the cap

    async def on_tick(self, counter: int) -> bool:
        if counter % 5 == 0:
            self.prune_connections(time.monotonic())
        return bool(await super().on_tick(counter))

    def prune_connections(self, now: float) -> int:
        conns = list(self.server_state.connections)
        idle: list[tuple[float, Any]] = []
        for conn in conns:
            cycle = getattr(conn, "cycle", None)
            if cycle is not None and not cycle.response_complete:
                self._idle.pop(conn, None)  # a request in progress (a stream, a slow body)
                continue
            seen = self._idle.get(conn)
            if seen is None or seen[0] != id(cycle):  # idle since it was made, or its answer
                made = getattr(conn, "made_at", now) if cycle is None else now
                seen = self._idle[conn] = (id(cycle), made)
            idle.append((seen[1], conn))
        idle.sort(key=lambda pair: pair[0])
        over = len(conns) - MAX_CONNECTIONS
        drop = [c for i, (since, c) in enumerate(idle) if i < over or now - since >= IDLE_LIMIT]
        for conn in drop:
            transport = getattr(conn, "transport", None)
            if transport is not None:
                transport.close()
            self._idle.pop(conn, None)
        self.dropped += len(drop)
        return len(drop)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def stop_fast(self, grace: float = 1.0) -> None:
        """Stop listening, let in-flight requests finish (polled every 10 ms, at most
        ``grace`` seconds), then cancel what is left. uvicorn's own path sleeps in 100 ms
        ticks, which would dominate a sub-second kill switch."""
        loop = asyncio.get_running_loop()
        for srv in self.servers:
            srv.close()
        for conn in list(self.server_state.connections):
            conn.shutdown()
        deadline = loop.time() + grace
        while (self.server_state.connections or self.server_state.tasks) and (
            loop.time() < deadline
        ):
            await asyncio.sleep(0.01)
        for task in list(self.server_state.tasks):
            task.cancel()


async def serve(
    view: BotView, host: str, port: int, discord: DiscordControl | None = None
) -> tuple[ApiServer, asyncio.Task[None]]:
    cfg = uvicorn.Config(
        create_app(view, discord),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        http=_Protocol,
    )
    server = ApiServer(cfg)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(False)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="http")
    for _ in range(500):  # bounded: 5 s
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if task.done():
        problem = task.exception()
        raise OSError(f"HTTP server on {host}:{port} stopped at start ({problem or 'exited'})")
    return server, task
