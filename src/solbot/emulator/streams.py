"""Binance-style market streams for the emulator (``/stream/ws``): what ccxt.pro's
``watch_ohlcv`` speaks. A client sends ``{"method": "SUBSCRIBE", "params":
["solusdt@kline_1m"], "id": n}`` and gets ``{"result": null, "id": n}``; then, each time a
bar closes, the final kline of that bar (``"x": true``) and the first update of the next one
(``"x": false``), as Binance sends them, and with ``Behaviour.kline_updates`` more updates of
the forming bar in between ("push updates to the current klines/candlestick every second").
A connection is cut after ``lifetime`` seconds (``web-socket-streams.md``: "A single
connection … is only valid for 24 hours") and pinged by the server (uvicorn's
``ws_ping_interval``: "a ping frame every 20 seconds"). Faults do not apply here (the REST API
has them); a ban closes nothing — a real IP ban would, and the bot falls back to REST either
way."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from solbot.domain.messages import Bar

log = logging.getLogger(__name__)


class KlineStreams:
    def __init__(self, symbol: str, timeframe: str, step: int) -> None:
        self.symbol, self.timeframe, self.step = symbol, timeframe, step
        self.stream = f"{symbol.lower()}@kline_{timeframe}"
        self._queues: dict[int, asyncio.Queue[str]] = {}  # connection -> its send queue

    def _kline(self, bar: Bar, closed: bool, event_ms: int) -> str:
        return json.dumps(
            {
                "e": "kline",
                "E": event_ms,
                "s": self.symbol,
                "k": {
                    "t": bar.ts,
                    "T": bar.ts + self.step - 1,
                    "s": self.symbol,
                    "i": self.timeframe,
                    "o": repr(bar.open),
                    "c": repr(bar.close),
                    "h": repr(bar.high),
                    "l": repr(bar.low),
                    "v": repr(bar.volume),
                    "n": 0,
                    "x": closed,
                    "q": "0",
                    "V": "0",
                    "Q": "0",
                    "B": "0",
                },
            }
        )

    def publish_forming(self, forming: Bar, fraction: float) -> None:
        """An update of the bar still forming, ``fraction`` of the way through it: open to
        a close moved that share of the way to the final one (no extreme beyond those)."""
        if not self._queues:
            return
        close = forming.open + (forming.close - forming.open) * fraction
        part = Bar(
            forming.ts, forming.open, max(forming.open, close), min(forming.open, close), close,
            forming.volume * fraction,
        )  # fmt: skip
        message = self._kline(part, False, part.ts + int(self.step * fraction))
        for q in self._queues.values():
            if q.qsize() < 10_000:
                q.put_nowait(message)

    def publish(self, closed: Bar, following: Bar) -> None:
        """A bar closed: its final kline, then the next bar's opening update."""
        if not self._queues:
            return
        at = closed.ts + self.step
        opening = Bar(
            following.ts, following.open, following.open, following.open, following.open, 0.0
        )
        messages = (self._kline(closed, True, at), self._kline(opening, False, at))
        for q in self._queues.values():
            for m in messages:
                if q.qsize() < 10_000:  # a stalled client loses updates, not our memory
                    q.put_nowait(m)


class MultiStreams:
    """The websocket endpoint for every market's kline stream: a connection may subscribe
    to any of them (ccxt.pro puts several symbols' subscriptions on one connection)."""

    def __init__(self, streams: list[KlineStreams], lifetime: float = 86_400.0) -> None:
        self.by_name = {k.stream: k for k in streams}
        self.lifetime = lifetime
        self._next = 0
        self.connections = 0
        self.opened = 0  # connections ever accepted (reconnects show here)

    async def endpoint(self, ws: WebSocket) -> None:
        await ws.accept()
        key = self._next
        self._next += 1
        queue: asyncio.Queue[str] = asyncio.Queue()
        self.connections += 1
        self.opened += 1
        sender = asyncio.create_task(self._send(ws, queue))
        cut = asyncio.get_running_loop().time() + self.lifetime
        try:
            while True:
                left = cut - asyncio.get_running_loop().time()
                try:
                    text = await asyncio.wait_for(ws.receive_text(), max(0.0, left))
                except TimeoutError:
                    await ws.close(1000)  # the connection's lifetime is over
                    break
                msg: Any = json.loads(text)
                method, names = msg.get("method"), msg.get("params", [])
                if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
                    for name in names:
                        k = self.by_name.get(name)
                        if k is None:
                            continue
                        if method == "SUBSCRIBE":
                            k._queues[key] = queue
                        else:
                            k._queues.pop(key, None)
                    await ws.send_text(json.dumps({"result": None, "id": msg.get("id")}))
        except (WebSocketDisconnect, json.JSONDecodeError, RuntimeError):
            pass
        finally:
            for k in self.by_name.values():
                k._queues.pop(key, None)
            self.connections -= 1
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    async def _send(self, ws: WebSocket, queue: asyncio.Queue[str]) -> None:
        while True:
            await ws.send_text(await queue.get())
