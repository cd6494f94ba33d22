"""The emulator's user data stream, as Binance serves it on the WebSocket API
(``/ws-api/v3``; ``web-socket-api.md`` "Subscribe to User Data Stream through signature
subscription", ``user-data-stream.md``).

* A client sends ``{"id", "method": "userDataStream.subscribe.signature", "params": {apiKey,
  timestamp, [recvWindow], signature}}``: the signature is HMAC-SHA256 (hex) over every other
  param sorted by name as ``k=v&…`` ("Step 1: Construct the signature payload"), the timestamp
  judged as a REST request's. The answer is ``{"id", "status": 200, "result":
  {"subscriptionId": n}}``; a refusal ``{"id", "status", "error": {"code", "msg"}}``.
* Then every change of one of the account's orders comes as ``{"subscriptionId": n, "event":
  executionReport}`` ("Order Update": NEW, TRADE, CANCELED, EXPIRED, with the trade's id,
  quantity, price and commission), pushed as the matching engine acts — the data source is
  Memory, so the lookup lag of the order query does not apply, and a REST answer lost on the
  way (a fault) does not lose the event.
* ``userDataStream.unsubscribe`` ends a subscription; a connection is cut after ``lifetime``
  seconds ("A single connection … is only valid for 24 hours").
Faults do not apply here (the REST API has them)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from solbot.emulator.gate import Gate
from solbot.emulator.wire import BinanceError

log = logging.getLogger(__name__)


class UserStreams:
    def __init__(self, gate: Gate, lifetime: float = 86_400.0) -> None:
        self.gate, self.lifetime = gate, lifetime
        self._subs: dict[int, asyncio.Queue[str]] = {}  # subscription id -> its connection's
        self._next = 0
        self.opened = 0  # connections ever accepted
        self.subscribed = 0  # subscriptions ever started
        self.events = 0  # events pushed

    def publish(self, event: dict[str, Any]) -> None:
        """One user data event for every subscription (one account here)."""
        for sub, queue in self._subs.items():
            if queue.qsize() < 10_000:  # a stalled client loses events, not our memory
                queue.put_nowait(json.dumps({"subscriptionId": sub, "event": event}))
                self.events += 1

    def _subscribe(self, params: dict[str, Any]) -> None:
        signed = {k: str(v) for k, v in params.items() if k != "signature"}
        payload = "&".join(f"{k}={signed[k]}" for k in sorted(signed))
        self.gate.verify(signed.get("apiKey"), payload, str(params.get("signature") or ""), signed)

    async def endpoint(self, ws: WebSocket) -> None:
        await ws.accept()
        self.opened += 1
        queue: asyncio.Queue[str] = asyncio.Queue()
        mine: list[int] = []
        sender = asyncio.create_task(self._send(ws, queue))
        loop = asyncio.get_running_loop()
        cut = loop.time() + self.lifetime
        try:
            while True:
                try:
                    text = await asyncio.wait_for(ws.receive_text(), max(0.0, cut - loop.time()))
                except TimeoutError:
                    await ws.close(1000)  # the connection's lifetime is over
                    break
                msg: Any = json.loads(text)
                rid, method = msg.get("id"), msg.get("method")
                params = msg.get("params") or {}
                if method == "userDataStream.subscribe.signature":
                    try:
                        self._subscribe(params)
                    except BinanceError as e:
                        queue.put_nowait(_refused(rid, e))
                        continue
                    sub = self._next
                    self._next += 1
                    self._subs[sub] = queue
                    mine.append(sub)
                    self.subscribed += 1
                    queue.put_nowait(
                        json.dumps({"id": rid, "status": 200, "result": {"subscriptionId": sub}})
                    )
                elif method == "userDataStream.unsubscribe":
                    which = params.get("subscriptionId")
                    for s in [s for s in mine if which is None or s == which]:
                        mine.remove(s)
                        self._subs.pop(s, None)
                    queue.put_nowait(json.dumps({"id": rid, "status": 200, "result": {}}))
                else:
                    err = BinanceError(400, -1020, "This operation is not supported.")
                    queue.put_nowait(_refused(rid, err))
        except (WebSocketDisconnect, json.JSONDecodeError, RuntimeError):
            pass
        finally:
            for s in mine:
                self._subs.pop(s, None)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    @staticmethod
    async def _send(ws: WebSocket, queue: asyncio.Queue[str]) -> None:
        with contextlib.suppress(Exception):
            while True:
                await ws.send_text(await queue.get())


def _refused(rid: Any, e: BinanceError) -> str:
    return json.dumps({"id": rid, "status": e.status, "error": {"code": e.code, "msg": e.msg}})
