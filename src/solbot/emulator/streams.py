"""Binance-style market streams for the emulator (``/stream/ws``): what ccxt.pro's
``watch_ohlcv`` speaks. A client sends ``{"method": "SUBSCRIBE", "params":
["solusdt@kline_1m"], "id": n}`` and gets ``{"result": null, "id": n}``; then, each time a
bar closes, the final kline of that bar (``"x": true``) and the first update of the next one
(``"x": false``), as Binance sends them. Faults do not apply here (the REST API has them);
a ban closes nothing — a real IP ban would, and the bot falls back to REST either way."""

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

    def __init__(self, streams: list[KlineStreams]) -> None:
        self.by_name = {k.stream: k for k in streams}
        self._next = 0
        self.connections = 0

    async def endpoint(self, ws: WebSocket) -> None:
        await ws.accept()
        key = self._next
        self._next += 1
        queue: asyncio.Queue[str] = asyncio.Queue()
        self.connections += 1
        sender = asyncio.create_task(self._send(ws, queue))
        try:
            while True:
                msg: Any = json.loads(await ws.receive_text())
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
