"""The live dashboard at ``/``: a page, its static files, one JSON view and a server-sent
event stream.

``GET /`` and ``/static/*`` serve ``api/static`` (and plotly.js from the installed plotly
package: no CDN, works offline). ``GET /api/dashboard`` is everything the page shows;
``GET /api/dashboard/stream`` sends the same view again whenever a bar has been processed
(at least every 5 s), with only the bars, equity points and fills newer than the client's
cursor. The stream ends as soon as the bot stops, so an open page never delays a kill.

Streams cost the bot nothing it needs: at most ``MAX_STREAMS`` are open (more are answered
503 with Retry-After); each update is rendered once per change (and at most once a second
without one) for every stream at the same cursor, not once per stream — 200 streams each
rendering their own cut bar throughput by 74 %; a reader that does not take an update within
``SLOW_READER`` seconds is dropped (its connection closed), so it holds no buffers.

With ``SOLBOT_API_TOKEN`` set, a stream opens only with a ticket: the page trades the token
for one (``POST /api/dashboard/ticket``, ``api.guard.Tickets``: good for a minute) because an
``EventSource`` cannot send the token itself. Without the token the page polls
``/api/dashboard`` every 5 s; no client without it can hold a stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from starlette.requests import ClientDisconnect

from solbot import __version__
from solbot.api.guard import TICKET_SECONDS, Tickets, token_refusal

if TYPE_CHECKING:
    from solbot.runtime.service import BotService
    from solbot.runtime.sleeve import Sleeve

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
BARS = 300  # bars on the price chart
FILLS = 200
MIN_INTERVAL = 0.25  # seconds between two stream updates
MAX_STREAMS = 32
SLOW_READER = 10.0  # s: an update not taken by then drops its stream


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _dec(v: Decimal) -> str:
    return "0" if v == 0 else format(v, "f")


_regime_cache: dict[tuple[int, int, int], list[str]] = {}


def _regimes(sleeve: Sleeve, bars: list[Any]) -> list[str]:
    """The regime of each bar; computed once per new bar, however many pages watch."""
    if len(bars) < 2:
        return ["MIXED"] * len(bars)
    key = (id(sleeve), bars[0].ts, bars[-1].ts)
    hit = _regime_cache.get(key)
    if hit is not None and len(hit) == len(bars):
        return hit
    from solbot.data.bars import BarArrays
    from solbot.indicators.regime import Regime, classify_arrays

    a = BarArrays.from_rows(bars, sleeve.symbol, sleeve.service.settings.timeframe)
    names = [Regime(int(r)).name for r in classify_arrays(a)]
    if len(_regime_cache) >= 16:  # the latest bars of each symbol a page is watching
        _regime_cache.clear()
    _regime_cache[key] = names
    return names


def view(service: BotService, since: int = -1, symbol: str | None = None) -> dict[str, Any]:
    """Everything on the page; series only past ``since`` (a bar open time, ms). The
    account is the whole account; price, position, orders and fills are ``symbol``'s (by
    default the first traded symbol)."""
    s = service
    sl = s.primary if symbol is None else s.sleeve(symbol)
    if sl is None:
        raise HTTPException(404, f"unknown symbol {symbol!r}")
    inst = sl.instrument
    pf = sl.engine.portfolio
    equity, daily, total = s.pnl_snapshot()
    start = s.day.start_equity if s.day is not None else equity
    limit = start * s.settings.daily_loss_limit
    recent = list(sl.recent_bars)[-BARS:]
    regimes = _regimes(sl, recent)
    bars = [(b, r) for b, r in zip(recent, regimes, strict=True) if b.ts > since]
    fills = [
        {
            "ts": f.ts,
            "side": f.side,
            "price": _dec(f.price),
            "qty": _dec(f.quantity),
            "fee": f"{_dec(f.fee)} {f.fee_asset}",
            "pnl": _dec(f.realised_pnl),
        }
        for f in s.store.fills(limit=FILLS, symbol=sl.symbol)
        if f.ts > since
    ]
    pos = pf.position
    mark = sl.mark()
    healthy, problems = s.health()
    kill_engaged = s.kill_reason is not None or s.settings.kill_flag.exists()
    state, reason = s.trading_state()
    return {
        "version": __version__,
        "symbol": sl.symbol,
        "symbols": [
            {
                "symbol": x.symbol,
                "weight": _dec(s.weight(x.symbol)),
                "equity": _dec(x.equity()),
                "position": _dec(x.engine.portfolio.position.qty),
                "base": x.instrument.base,
                "trading_state": x.engine.risk.state.value,
                "last_data": x.last_bar.ts if x.last_bar else None,
            }
            for x in s.sleeves
        ],
        "timeframe": s.settings.timeframe,
        "mode": s.mode,
        "market": s.settings.market.value,
        "now": time.time(),
        "status": {
            "healthy": healthy,
            "problems": problems,
            "trading_state": state.value,
            "reason": reason,
            "paused": s.paused,
            "kill_switch": kill_engaged,
            "kill_reason": s.kill_reason,
            "uptime": round(s.uptime, 1),
            "last_data": sl.last_bar.ts if sl.last_bar else None,
            "bars_processed": s.bars_seen,
            "token_configured": s.settings.api_token is not None,
        },
        "account": {
            "quote": inst.quote,
            "base": inst.base,
            "equity": _dec(equity),
            "daily_pnl": _dec(daily),
            "total_pnl": _dec(total),
            "day_start_equity": _dec(start),
            "daily_loss_limit": _dec(inst.money(limit)),
            "daily_loss_limit_ratio": _dec(s.settings.daily_loss_limit),
            "balances": {a: _dec(f + lk) for a, (f, lk) in pf.ledger.snapshot().items()},
            "exposure": _dec(s.exposure()),
            "exposure_cap": _dec(s.settings.exposure_cap),
        },
        "position": {
            "qty": _dec(pos.qty),
            "avg_price": _dec(inst.money(pos.avg_price)) if not pos.is_flat else None,
            "unrealised": _dec(inst.money(pos.unrealised_pnl(mark))),
            "realised": _dec(inst.money(pos.realised_pnl)),
        },
        "orders": [
            {
                "id": o.order_id,
                "side": o.side.value,
                "type": o.type.value,
                "qty": _dec(o.quantity),
                "price": _dec(o.price) if o.price is not None else None,
                "status": o.status.value,
            }
            for o in pf.open_orders()
        ],
        "bars": [[b.ts, b.open, b.high, b.low, b.close] for b, _ in bars],
        "regimes": [r for _, r in bars],
        "equity": [[ts, v] for ts, v in s.equity_points if ts > since],
        "fills": fills,
    }


def install(app: FastAPI, service: BotService) -> None:
    plotly_js = _plotly_js()
    problem = {"content": {"application/json": {"example": {"detail": "..."}}}}

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text())

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        if name == "plotly.min.js":
            return FileResponse(plotly_js, media_type="text/javascript")
        path = STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise HTTPException(404, "not found")
        return FileResponse(path)

    @app.get("/api/dashboard", responses={404: {"description": "unknown symbol", **problem}})
    async def dashboard(since: int = -1, symbol: str | None = None) -> dict[str, Any]:
        return view(service, since, symbol)

    streams = _Streams(service)
    tickets = Tickets()

    @app.post(
        "/api/dashboard/ticket",
        responses={
            401: {"description": "missing or wrong bearer token", **problem},
            403: {"description": "no SOLBOT_API_TOKEN: streams need no ticket", **problem},
        },
    )
    async def ticket(authorization: str | None = Header(None)) -> dict[str, Any]:
        """A ticket that opens dashboard streams for a minute (an EventSource cannot send
        the bearer token itself)."""
        refused = token_refusal(service.settings.api_token, authorization)
        if refused is not None:
            status, detail, headers = refused
            raise HTTPException(status, detail, headers=headers or None)
        return {"ticket": tickets.issue(), "expires_in": TICKET_SECONDS}

    @app.get(
        "/api/dashboard/stream",
        responses={
            401: {"description": "a token is configured: a valid ticket is needed", **problem},
            404: {"description": "unknown symbol", **problem},
            503: {"description": "too many dashboard streams open", **problem},
        },
    )
    async def stream(
        request: Request, since: int = -1, symbol: str | None = None, ticket: str | None = None
    ) -> StreamingResponse:
        """Server-sent events: the dashboard's view after every change. With a token
        configured it opens only with a ticket from ``POST /api/dashboard/ticket``."""
        if service.settings.api_token is not None and not tickets.valid(ticket):
            raise HTTPException(
                401, "the stream needs a ticket: POST /api/dashboard/ticket with the token"
            )
        view(service, since, symbol)  # an unknown symbol: 404 now, not a broken stream
        if streams.open >= MAX_STREAMS:
            raise HTTPException(
                503, f"{MAX_STREAMS} dashboard streams are open", headers={"Retry-After": "5"}
            )
        return _SlowReaderDropped(
            streams.events(request, since, symbol),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )


class _Streams:
    """The open streams' count and their shared renderings."""

    def __init__(self, service: BotService) -> None:
        self.service = service
        self.open = 0
        self.renders = 0  # views computed for streams (for tests)
        self._cache: dict[tuple[int, int, str | None, int], tuple[str, int]] = {}

    def update(self, cursor: int, symbol: str | None) -> tuple[str, int]:
        """The event for a stream at ``cursor`` and its next cursor: rendered once per
        change (and once a second without one) for all the streams at that cursor."""
        s = self.service
        key = (s.changes, int(time.monotonic()), symbol, cursor)
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) > 4 * MAX_STREAMS:
                self._cache.clear()
            body = view(s, cursor, symbol)
            self.renders += 1
            nxt = body["bars"][-1][0] if body["bars"] else cursor
            hit = self._cache[key] = (
                f"event: update\ndata: {json.dumps(body, separators=(',', ':'))}\n\n",
                nxt,
            )
        return hit

    async def events(self, request: Request, since: int, symbol: str | None) -> AsyncIterator[str]:
        s = self.service
        self.open += 1
        try:
            cursor = since
            while not s.stopping:
                event, cursor = self.update(cursor, symbol)
                yield event
                if await request.is_disconnected():
                    return
                await s.wait_change(5.0)
                await s.wait_stop(MIN_INTERVAL)  # at most 4 updates a second; never delays a stop
            # the last word: the page shows why the stream ended (kill switch, stop)
            last = view(s, cursor, symbol)
            yield f"event: update\ndata: {json.dumps(last, separators=(',', ':'))}\n\n"
        finally:
            self.open -= 1


class _SlowReaderDropped(StreamingResponse):
    """A stream whose reader does not take an update within ``SLOW_READER`` seconds ends
    there (the connection is closed): it holds no buffers and no task."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        slow = False

        async def timed(message: Any) -> None:
            nonlocal slow
            try:
                await asyncio.wait_for(send(message), SLOW_READER)
            except TimeoutError:
                slow = True
                raise

        try:
            await super().__call__(scope, receive, timed)
        except* (TimeoutError, ClientDisconnect):  # Starlette makes an OSError a disconnect
            if not slow:
                raise
            log.warning("dashboard stream dropped: no update taken in %.0f s", SLOW_READER)
            closing = getattr(self.body_iterator, "aclose", None)
            if closing is not None:
                await closing()  # its count of open streams goes down now, not at collection
