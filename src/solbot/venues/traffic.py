"""One traffic gate per exchange account: every request of the bot to the exchange — the
live venue's orders, cancels, fill polls and reconciliation, and the market feed's klines —
passes through it, so one policy decides what may be sent and when.

What it follows (binance/binance-spot-api-docs, ``rest-api.md``, "LIMITS" → "IP Limits"):

* "A ``Retry-After`` header is sent with a 418 or 429 responses and will give the number of
  seconds required to wait, in the case of a 429, to prevent a ban, or, in the case of a 418,
  until the ban is over." — after a 429 *nothing* is sent until its Retry-After has passed
  (reads and retries included: "Repeatedly violating rate limits and/or failing to back off
  after receiving 429s will result in an automated IP ban"); after a 418 nothing until the
  ban is over.
* "Every request will contain ``X-MBX-USED-WEIGHT-(intervalNum)(intervalLetter)`` in the
  response headers which has the current used weight for the IP" — the weight used this
  minute is read from every answer; what we send is counted with each endpoint's documented
  weight (``BINANCE_WEIGHTS``, from each endpoint's "Weight" in ``rest-api.md``), and polls
  wait for the next minute once the minute's use reaches ``poll_share`` of the limit, orders
  and cancels once it reaches ``order_share``. Polls are paced across the minute (by second
  *s* of it they may have used ``(s + 10 (1 - s/60)) / 60`` of their share), so market data
  and fills keep coming all minute instead of in one burst after each reset, and never stop
  before its end. What decides an order or a stop
  (``urgent()``: the kill switch, a stop's cancels, looking up an order whose outcome is
  unknown) goes by the orders' share. The limit is the ``REQUEST_WEIGHT`` entry of
  ``exchangeInfo``'s ``rateLimits`` (6,000 a minute on Binance spot when recorded).
* "The limits on the API are based on the IPs, not the API keys" — the budget is per host;
  a bot that shares its IP (staging and production on one server) gives each its share
  (``SOLBOT_EXCHANGE_WEIGHT_SHARE``).

The gate sits under ccxt: ``install`` wraps a client's ``fetch`` (async or sync), so no
request can bypass it, and it sees the raw status and headers of every answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ccxt.base import errors as cx

log = logging.getLogger(__name__)

# rest-api.md, each endpoint's "Weight" (single-symbol forms; what the bot sends)
BINANCE_WEIGHTS: dict[tuple[str, str], int] = {
    ("GET", "/api/v3/ping"): 1,
    ("GET", "/api/v3/time"): 1,
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/klines"): 2,
    ("GET", "/api/v3/ticker/price"): 2,
    ("GET", "/api/v3/account"): 20,
    ("POST", "/api/v3/order"): 1,
    ("GET", "/api/v3/order"): 4,
    ("DELETE", "/api/v3/order"): 1,
    ("POST", "/api/v3/order/cancelReplace"): 1,
    ("GET", "/api/v3/openOrders"): 6,
    ("DELETE", "/api/v3/openOrders"): 1,
    ("GET", "/api/v3/allOrders"): 20,
    ("GET", "/api/v3/myTrades"): 20,  # 5 with orderId
    ("POST", "/api/v3/orderList/oco"): 1,
    ("POST", "/api/v3/orderList/oto"): 1,
    ("POST", "/api/v3/orderList/otoco"): 1,
    ("DELETE", "/api/v3/orderList"): 1,
    ("GET", "/api/v3/orderList"): 4,
    ("GET", "/api/v3/openOrderList"): 6,
}
DEFAULT_LIMIT = 6000  # REQUEST_WEIGHT per minute (enums.md "Rate limiters")
MIN_BAN = 5.0  # seconds: a 418 without a readable Retry-After
PACE_SLACK = 10.0  # s: polls may run this far ahead of an even spread over the minute

_URGENT: contextvars.ContextVar[bool] = contextvars.ContextVar("urgent", default=False)
# the exchange's time (s, by our synced estimate) when the request now being answered was
# sent (set around the send)
_SENT_EXCHANGE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "sent_exchange", default=None
)
# an answer to a request sent this early in a minute may carry the minute before's weight:
# our estimate of the exchange's clock is off by up to half a round trip (the 300 s soak: 8
# ms), and a request sent 8 ms "after" the rollover reached the exchange before it — its
# 3,606 taken for the new minute's use held every poll for that whole minute
MINUTE_EDGE = 1.0


# when a request left, by our clock (appended at the send, after any wait at the gate), for
# a caller that times a round trip: the clock sync (``venues.clock``)
SENT_AT: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
    "sent_at", default=None
)


def _mark_sent(wall: Callable[[], float]) -> None:
    box = SENT_AT.get()
    if box is not None:
        box.append(wall())


@contextlib.contextmanager
def urgent() -> Iterator[None]:
    """Requests made inside (in this task and the tasks it starts) go by the orders' share:
    what they decide cannot wait for the next minute."""
    token = _URGENT.set(True)
    try:
        yield
    finally:
        _URGENT.reset(token)


def request_weight(method: str, url: str) -> int:
    """An endpoint's documented weight for one request (1 where the table has none)."""
    parts = urlsplit(url)
    method = method.upper()
    if method == "GET" and parts.path == "/api/v3/myTrades" and "orderId" in parse_qs(parts.query):
        return 5
    if (
        method == "GET"
        and parts.path == "/api/v3/openOrders"
        and "symbol" not in parse_qs(parts.query)
    ):
        return 80
    return BINANCE_WEIGHTS.get((method, parts.path), 1)


def _header(headers: Any, name: str) -> str | None:
    for k, v in (headers or {}).items():
        if str(k).lower() == name:
            return str(v)
    return None


@dataclass
class TrafficGate:
    limit: int = DEFAULT_LIMIT
    share: float = 1.0  # this bot's part of the host's budget
    poll_share: float = 0.6
    order_share: float = 0.9
    # told once when a 429 window or a ban begins; may be called from a worker thread
    on_limit: Callable[[str, float], None] = lambda kind, seconds: None
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time  # our clock; ``offset`` makes it the exchange's
    offset: float = 0.0  # the exchange's clock minus ours (s), from the last clock sync
    hold_until: float = 0.0  # a 429's Retry-After: nothing is sent before (monotonic)
    banned_until: float = 0.0  # a 418's: nothing until the ban is over
    used: int = 0  # the minute's weight by the exchange's last answer, plus ours since
    minute: int = -1
    waited: float = 0.0  # seconds requests spent waiting at the gate
    counts: dict[str, int] = field(default_factory=dict)
    _told: tuple[int, bool] = (-1, False)  # the minute (and kind) a used-up budget was logged
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ---------------------------------------------------------------- policy
    def blocked_for(self) -> float:
        """Seconds until anything may be sent (a 429 window or a ban)."""
        return max(0.0, max(self.hold_until, self.banned_until) - self.clock())

    def ban_left(self) -> float:
        return max(0.0, self.banned_until - self.clock())

    def _budget(self, urgent: bool) -> float:
        return self.limit * self.share * (self.order_share if urgent else self.poll_share)

    def _now(self) -> float:
        return self.wall() + self.offset

    def _roll(self) -> None:
        minute = int(self._now() // 60)
        if minute != self.minute:
            self.minute, self.used = minute, 0

    def delay(self, weight: int, urgent: bool) -> float:
        """How long a request of ``weight`` must wait now (0: it may go, and is counted)."""
        urgent = urgent or _URGENT.get()
        with self._lock:
            blocked = self.blocked_for()
            if blocked > 0:
                return blocked
            self._roll()
            into = self._now() % 60
            budget = self._budget(urgent)
            need = self.used + weight
            if need > budget and self.used > 0:
                if self._told != (self.minute, urgent):  # once a minute: why all is quiet
                    self._told = (self.minute, urgent)
                    log.info(
                        "traffic: %s weight %d of this minute's %d used; they wait %.0f s "
                        "for the exchange's next minute",
                        "orders'" if urgent else "polls'", self.used, int(budget), 60.0 - into,
                    )  # fmt: skip
                return max(0.05, 60.0 - into)  # the exchange's next minute
            if not urgent and self.used > 0:
                # when the pace allows it: by second s of the minute, (s + SLACK (1 - s/60))
                # / 60 of the share — a burst of SLACK seconds' worth after the reset that
                # shrinks to none at the minute's end, so a client asking all the time gets
                # an even stream, not the whole share by second 50 and then 10 s of nothing
                due = (need / budget * 60.0 - PACE_SLACK) / (1.0 - PACE_SLACK / 60.0)
                if due > into:
                    return max(0.05, min(due - into, 60.0 - into))
            self.used += weight
            return 0.0

    async def wait(self, weight: int, urgent: bool) -> None:
        while (d := self.delay(weight, urgent)) > 0:
            self.waited += min(d, 1.0)
            await asyncio.sleep(min(d, 1.0))

    # ---------------------------------------------------------------- answers
    def exchange_minute(self) -> int:
        return int(self._now() // 60)

    def exchange_time(self) -> float:
        """The exchange's clock now (s), by the last sync's offset."""
        return self._now()

    def observe(
        self,
        status: int | None,
        headers: Any,
        sent_minute: int | None = None,
        sent_at: float | None = None,
    ) -> None:
        """What an answer says about our traffic: used weight, 429 / 418 windows.
        ``sent_minute``: the exchange's minute its request was sent in — an answer to a
        request of the minute before, read after the minute rolled over, carries that
        minute's weight, not this one's (taken for this one's, it held every poll a minute).
        ``sent_at``: the exchange's time it was sent at (by our estimate): within
        ``MINUTE_EDGE`` of the minute's start it may have reached the exchange in the minute
        before, so its weight is not taken (our own count of what we sent still is)."""
        used = _header(headers, "x-mbx-used-weight-1m")
        if sent_at is not None:
            sent_minute = int(sent_at // 60)
        with self._lock:
            if used is not None and used.isdigit():
                self._roll()
                early = sent_at is not None and sent_at % 60 < MINUTE_EDGE
                if (sent_minute is None or sent_minute == self.minute) and not early:
                    self.used = max(self.used, int(used))
            if status not in (418, 429):
                return
            try:
                after = float(_header(headers, "retry-after") or "nan")
            except ValueError:
                after = math.nan
            known = math.isfinite(after) and after >= 0
            now = self.clock()
            if status == 429:
                seconds = after if known else 1.0
                began = now >= self.hold_until
                self.hold_until = max(self.hold_until, now + seconds)
                kind = "rate_limited"
            else:
                seconds = max(MIN_BAN, after if known else MIN_BAN)
                began = now >= self.banned_until
                self.banned_until = max(self.banned_until, now + seconds)
                kind = "banned"
            self.counts[kind] = self.counts.get(kind, 0) + 1
        log.warning("exchange answered %s: nothing is sent for %.1f s", status, seconds)
        if began:  # requests in flight together answer the same ban: it is reported once
            self.on_limit(kind, seconds)

    def set_limits(self, rate_limits: list[dict[str, Any]]) -> None:
        """``exchangeInfo``'s ``rateLimits``: the per-minute REQUEST_WEIGHT limit."""
        for r in rate_limits or []:
            if (
                r.get("rateLimitType") == "REQUEST_WEIGHT"
                and r.get("interval") == "MINUTE"
                and int(r.get("intervalNum", 0)) == 1
            ):
                self.limit = int(r["limit"])

    # ---------------------------------------------------------------- clients
    def install(self, exchange: Any) -> None:
        """Route every request of a ccxt client through this gate: its ``fetch2`` (where
        ccxt signs a request and sends it) waits here *before* the request is signed — a
        signed request held past its ``recvWindow`` would be refused (-1021) — and its
        ``on_rest_response`` (called by ccxt with the status and headers of every answer,
        before errors are raised) reports back. Its ``fetch`` (the HTTP send, after ccxt's own
        throttling and the signing) looks once more: a 429 or ban that began meanwhile holds
        the request (up to 2 s, well inside ``recvWindow``) or fails it with ``TrafficHeld``,
        to be signed again later. A synchronous client (the market feed, in a worker thread)
        does not sleep in its thread: it raises ``TrafficHeld`` and its caller waits on the
        event loop."""
        inner = exchange.fetch2
        send = exchange.fetch
        gate = self

        def weight_of(path: str, api: Any, method: str, params: Any) -> tuple[int, bool]:
            signed = exchange.sign(path, api, method, dict(params or {}))  # the endpoint only
            return request_weight(method, str(signed["url"])), method.upper() in (
                "POST", "DELETE", "PUT",
            )  # fmt: skip

        if asyncio.iscoroutinefunction(inner):

            async def fetch2_async(
                path: str, api: Any = "public", method: str = "GET", params: Any = None,
                *rest: Any, **kw: Any,
            ) -> Any:  # fmt: skip
                weight, urgent_ = weight_of(path, api, method, params)
                await gate.wait(weight, urgent_)
                return await inner(path, api, method, params or {}, *rest, **kw)

            async def fetch_async(
                url: str, method: str = "GET", headers: Any = None, body: Any = None
            ) -> Any:
                held = gate.blocked_for()
                if held > 2.0:
                    raise TrafficHeld(held)
                if held > 0:
                    await asyncio.sleep(held)
                token = _SENT_EXCHANGE.set(gate.exchange_time())
                _mark_sent(gate.wall)
                try:
                    return await send(url, method, headers, body)
                finally:
                    _SENT_EXCHANGE.reset(token)

            exchange.fetch2 = fetch2_async
            exchange.fetch = fetch_async
        else:

            def fetch2_sync(
                path: str, api: Any = "public", method: str = "GET", params: Any = None,
                *rest: Any, **kw: Any,
            ) -> Any:  # fmt: skip
                weight, urgent_ = weight_of(path, api, method, params)
                held = gate.delay(weight, urgent_)
                if held > 0:
                    raise TrafficHeld(held)
                return inner(path, api, method, params or {}, *rest, **kw)

            def fetch_sync(
                url: str, method: str = "GET", headers: Any = None, body: Any = None
            ) -> Any:
                held = gate.blocked_for()
                if held > 0:
                    raise TrafficHeld(held)
                token = _SENT_EXCHANGE.set(gate.exchange_time())
                _mark_sent(gate.wall)
                try:
                    return send(url, method, headers, body)
                finally:
                    _SENT_EXCHANGE.reset(token)

            exchange.fetch2 = fetch2_sync
            exchange.fetch = fetch_sync
        answered = exchange.on_rest_response

        def on_rest_response(
            code: Any, reason: Any, url: Any, method: Any, headers: Any, body: Any, *rest: Any
        ) -> Any:
            status = int(code) if code is not None else None
            gate.observe(status, headers, sent_at=_SENT_EXCHANGE.get())
            return answered(code, reason, url, method, headers, body, *rest)

        exchange.on_rest_response = on_rest_response


class TrafficHeld(cx.RateLimitExceeded):  # type: ignore[misc]  # ccxt is untyped
    """A request the gate held back, unsent: try again after ``seconds`` (a rate limit of
    our own, so callers treat it as one: not processed, safe to send again)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"held {seconds:.2f} s by the traffic gate")
        self.seconds = seconds


_GATES: dict[str, TrafficGate] = {}


def gate_for(exchange: str, share: float = 1.0) -> TrafficGate:
    """The process's one gate for ``exchange`` (the live venue and the market feed share it)."""
    gate = _GATES.get(exchange)
    if gate is None:
        gate = _GATES[exchange] = TrafficGate(share=share)
    return gate
