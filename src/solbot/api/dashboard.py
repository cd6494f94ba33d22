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
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from starlette.requests import ClientDisconnect

from solbot.api.guard import TICKET_SECONDS, Tickets, token_refusal
from solbot.runtime.view import BotView

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
MIN_INTERVAL = 0.25  # seconds between two stream updates
MAX_STREAMS = 32
SLOW_READER = 10.0  # s: an update not taken by then drops its stream


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def view(v: BotView, since: int, symbol: str | None) -> dict[str, Any]:
    """The page's view of ``symbol`` (default: the first traded), or 404."""
    traded = v.status().symbol if symbol is None else v.symbol(symbol)
    if traded is None:
        raise HTTPException(404, f"unknown symbol {symbol!r}")
    return v.dashboard(since, traded)


def install(app: FastAPI, service: BotView, tickets: Tickets | None = None) -> None:
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
    tickets = tickets or Tickets()

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
        refused = token_refusal(service.api_token, authorization)
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
        if service.api_token is not None and not tickets.valid(ticket):
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

    def __init__(self, service: BotView) -> None:
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
