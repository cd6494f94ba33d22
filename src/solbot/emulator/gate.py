"""The emulator's front door, as Binance's: API key and HMAC-SHA256 signature checks
(``X-MBX-APIKEY``; ``signature`` over the query string or form body; ``timestamp`` within
``recvWindow``), injected faults (429, 418 bans, 500, answers held past the client's timeout,
-1007 drops, latency) and the request counters the fault soak reads. Behind it the
endpoints (``binance.py``) only see checked parameters."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import random
import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from solbot.emulator.faults import FAULT_KINDS, FaultSpec
from solbot.emulator.wire import BinanceError
from solbot.emulator.wire import err as _err


class Gate:
    def __init__(self, api_key: str, api_secret: str, faults: FaultSpec) -> None:
        self._api_key, self._secret = api_key, api_secret.encode()
        self.faults = faults
        self._rng = random.Random(faults.seed)
        self._banned_until = 0.0
        self.fault_counts: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)
        self.requests = 0
        self.faulty_requests = 0  # requests that could draw a fault (the fault rate's base)
        self.banned_requests = 0  # answered 418 because a ban was running

    async def params(self, request: Request, signed: bool) -> dict[str, str]:
        raw_query = request.url.query
        body = (await request.body()).decode() if request.method == "POST" else ""
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        if not signed:
            return params
        if request.headers.get("X-MBX-APIKEY") != self._api_key:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        payload = body if request.method == "POST" and body else raw_query
        head, sep, sig = payload.rpartition("&signature=")
        expected = hmac.new(self._secret, head.encode(), hashlib.sha256).hexdigest()
        if not sep or not hmac.compare_digest(sig, expected):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        try:
            ts = int(params["timestamp"])
        except (KeyError, ValueError):
            raise BinanceError(
                400, -1102, "Mandatory parameter 'timestamp' was not sent."
            ) from None
        window = int(params.get("recvWindow", "5000"))
        wall = time.time_ns() // 1_000_000
        if ts > wall + 1000 or wall - ts > window:
            raise BinanceError(
                400, -1021, "Timestamp for this request is outside of the recvWindow."
            )
        return params

    def ban(self, seconds: float) -> None:
        """An IP ban like Binance's after too many 429s: every request gets 418 until it ends."""
        self._banned_until = time.monotonic() + seconds

    def _banned(self) -> Response:
        left = max(1, math.ceil(self._banned_until - time.monotonic()))
        return _err(418, -1003, "Way too many requests; IP banned.", {"Retry-After": str(left)})

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
        self.requests += 1
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        if time.monotonic() < self._banned_until and request.url.path.startswith("/api/"):
            self.banned_requests += 1
            return self._banned()
        if faulty:
            self.faulty_requests += 1
        fault = self._draw_fault() if faulty else None
        if fault is not None:
            self.fault_counts[fault] += 1
        if fault == "429":
            return _err(
                429,
                -1003,
                "Too many requests; current limit is exceeded.",
                {"Retry-After": str(self.faults.retry_after)},
            )
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
