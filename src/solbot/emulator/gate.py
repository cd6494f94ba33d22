"""The emulator's front door, as Binance's: API key and HMAC-SHA256 signature checks
(``X-MBX-APIKEY``; ``signature`` over the query string or form body), the timestamp judged by
the exchange's clock (``rest-api.md`` "Timing security": refused with -1021 when 1 s or more
ahead of the server's time or more than ``recvWindow`` behind; the clock may be set off ours,
``Behaviour.clock``), request weight per minute with ``X-MBX-USED-WEIGHT-1M`` on every answer,
429 with ``Retry-After`` past the limit and 418 bans, doubling, for clients that keep sending
inside a 429's Retry-After ("IP Limits"), injected faults (429, 418 bans, 500, answers held
past the client's timeout, -1007 drops, latency) and the request counters the soak reads.
Behind it the endpoints (``binance.py``) only see checked parameters."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import random
import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from solbot.emulator.behaviour import Behaviour
from solbot.emulator.faults import FAULT_KINDS, FaultSpec
from solbot.emulator.wire import BinanceError
from solbot.emulator.wire import err as _err
from solbot.venues.traffic import request_weight

log = logging.getLogger(__name__)
FAULT_LOG = 2000  # faults kept in ``fault_log``
GRACE = 0.25  # s: a request this soon after a 429 was already on its way, not a violation


class Gate:
    def __init__(
        self, api_key: str, api_secret: str, faults: FaultSpec, behaviour: Behaviour | None = None
    ) -> None:
        self._api_key, self._secret = api_key, api_secret.encode()
        self.faults = faults
        self.behaviour = behaviour or Behaviour()
        self.clock_offset = self.behaviour.clock  # seconds; tests may move it
        # faults for the next matching requests, in order: (method, path, fault kind)
        self.script: list[tuple[str, str, str]] = []
        self._rng = random.Random(faults.seed)
        self._banned_until = 0.0
        self._window_until = 0.0  # the Retry-After of the last 429 (monotonic)
        self._window_from = 0.0
        self._bans = 0
        self._violations = 0  # requests inside 429 windows since the last ban
        self.minute = -1
        self.weight = 0  # used this minute (the exchange's clock)
        self.fault_counts: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)
        self.requests = 0
        self.faulty_requests = 0  # requests that could draw a fault (the fault rate's base)
        self.banned_requests = 0  # answered 418 because a ban was running
        self.in_window_requests = 0  # arrived inside a 429's Retry-After (a client that ignores it)
        self.weight_429s = 0  # answered 429 because the minute's weight was used up
        self.bans_served = 0
        # each minute's weight, and by endpoint ("GET /api/v3/myTrades"): where a client's
        # traffic goes (the newest 30 minutes)
        self.weight_minutes: dict[int, int] = {}
        self.weight_paths: dict[int, dict[str, int]] = {}
        # [exchange ms, method, path, fault, client id]: the newest FAULT_LOG faults
        self.fault_log: list[list[Any]] = []
        self.ban_log: list[list[Any]] = []  # [exchange ms, seconds, requests answered 418]

    def now_ms(self) -> int:
        """The exchange's clock (ms): the wall clock plus the behaviour's offset."""
        return int(time.time() * 1000 + self.clock_offset * 1000)

    async def params(self, request: Request, signed: bool) -> dict[str, str]:
        raw_query = request.url.query
        body = (await request.body()).decode() if request.method == "POST" else ""
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        if not signed:
            return params
        payload = body if request.method == "POST" and body else raw_query
        head, sep, sig = payload.rpartition("&signature=")
        self.verify(request.headers.get("X-MBX-APIKEY"), head, sig if sep else "", params)
        return params

    def verify(
        self, api_key: str | None, payload: str, signature: str, params: dict[str, str]
    ) -> None:
        """A signed request's key, HMAC-SHA256 signature (hex, over ``payload``) and timestamp
        against the exchange's clock (``rest-api.md`` "SIGNED Endpoint security", "Timing
        security"; the WebSocket API signs its sorted params the same way)."""
        if api_key != self._api_key:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        expected = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
        if not signature or not hmac.compare_digest(signature.lower(), expected):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        try:
            ts = int(params["timestamp"])
        except (KeyError, ValueError):
            raise BinanceError(
                400, -1102, "Mandatory parameter 'timestamp' was not sent."
            ) from None
        window = int(float(params.get("recvWindow", "5000")))
        server = self.now_ms()
        if ts >= server + 1000 or server - ts > window:
            raise BinanceError(
                400, -1021, "Timestamp for this request is outside of the recvWindow."
            )

    def ban(self, seconds: float) -> None:
        """An IP ban like Binance's after too many 429s: every request gets 418 until it ends."""
        self._banned_until = time.monotonic() + seconds
        self.bans_served += 1
        self.ban_log.append([self.now_ms(), seconds, 0])

    def _too_many(self, seconds: float) -> Response:
        now = time.monotonic()
        self._window_from, self._window_until = now, max(self._window_until, now + seconds)
        return _err(
            429,
            -1003,
            "Too much request weight used; current limit is "
            f"{self.behaviour.weight_limit} request weight per 1 MINUTE.",
            {"Retry-After": str(max(1, math.ceil(seconds)))},
        )

    def _count(self, weight: int, what: str = "") -> bool:
        """Add a request's weight to the minute; False when the limit is passed."""
        minute = self.now_ms() // 60_000
        if minute != self.minute:
            self.minute, self.weight = minute, 0
            for old in [m for m in self.weight_minutes if m < minute - 30]:
                del self.weight_minutes[old], self.weight_paths[old]
        self.weight += weight
        self.weight_minutes[minute] = self.weight
        paths = self.weight_paths.setdefault(minute, {})
        paths[what] = paths.get(what, 0) + weight
        return self.weight <= self.behaviour.weight_limit

    def _headers(self, response: Response) -> Response:
        response.headers["X-MBX-USED-WEIGHT-1M"] = str(self.weight)
        return response

    def _banned(self) -> Response:
        if self.ban_log:
            self.ban_log[-1][2] += 1  # requests the ban met
        left = max(1, math.ceil(self._banned_until - time.monotonic()))
        return _err(418, -1003, "Way too many requests; IP banned.", {"Retry-After": str(left)})

    async def _log_fault(self, request: Request, fault: str) -> None:
        """Which request drew which fault, when (the exchange's ms) — with the client id an
        order or order list carries, so a test can tell what held which order."""
        params = await self.params(request, signed=False)
        cid = next(
            (params[k] for k in ("newClientOrderId", "listClientOrderId") if k in params), ""
        )
        entry = [self.now_ms(), request.method, request.url.path, fault, cid]
        self.fault_log.append(entry)
        del self.fault_log[:-FAULT_LOG]

    def _scripted(self, request: Request) -> str | None:
        for i, (method, path, kind) in enumerate(self.script):
            if request.method == method and request.url.path == path:
                del self.script[i]
                return kind
        return None

    def _draw_fault(self) -> str | None:
        r = self._rng.random()
        acc = 0.0
        for kind in FAULT_KINDS:
            acc += self.faults.rates.get(kind, 0.0)
            if r < acc:
                return kind
        return None

    async def handle(
        self, request: Request, fn: Any, signed: bool = True, faulty: bool = True
    ) -> Response:
        return self._headers(await self._handle(request, fn, signed, faulty))

    async def _handle(self, request: Request, fn: Any, signed: bool, faulty: bool) -> Response:
        self.requests += 1
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        api = request.url.path.startswith("/api/")
        now = time.monotonic()
        if now < self._banned_until and api:
            self.banned_requests += 1
            return self._banned()
        if api and self._window_from + GRACE < now < self._window_until:
            self.in_window_requests += 1  # sent inside a 429's Retry-After
            self._violations += 1
            log.warning(
                "%s %s inside a 429's Retry-After (%.2f s after it, %.2f s left; violation %d)",
                request.method,
                request.url.path,
                now - self._window_from,
                self._window_until - now,
                self._violations,
            )
            if self._violations >= self.behaviour.ban_after:
                self._violations = 0
                self._bans += 1
                self.ban(self.behaviour.ban * 2 ** (self._bans - 1))
                return self._banned()
        what = f"{request.method} {request.url.path}"
        if api and not self._count(request_weight(request.method, str(request.url)), what):
            self.weight_429s += 1
            return self._too_many(60 - (self.now_ms() / 1000) % 60)
        if faulty:
            self.faulty_requests += 1
        fault = self._scripted(request) or (self._draw_fault() if faulty else None)
        if fault is not None:
            self.fault_counts[fault] += 1
            await self._log_fault(request, fault)
        if fault == "429":
            return self._too_many(float(self.faults.retry_after))
        if fault == "418":
            self.ban(self.faults.ban)
            return self._banned()
        if fault == "500":
            return _err(500, -1001, "Internal error; unable to process your request.")
        try:
            params = await self.params(request, signed)
            body = fn(params)
        except BinanceError as exc:
            return _err(exc.status, exc.code, exc.msg)
        if fault == "timeout":
            await asyncio.sleep(self.faults.hang)
        if fault == "drop":
            return _err(
                503,
                -1007,
                "Timeout waiting for response from backend server. Send status unknown; "
                "execution status unknown.",
            )
        return JSONResponse(body)
