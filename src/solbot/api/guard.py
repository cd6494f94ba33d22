"""What a request with a body meets before any route reads it (an ASGI middleware).

FastAPI reads and parses a request's body before it runs a route's dependencies, so the
token check of a control route came after the whole body was in memory: a 48 MB JSON body
sent with no token took the process from 194 to 593 MB and froze the event loop for 3.3 s,
and a kill flag created meanwhile waited as long. Here, before a byte of the body is read:

* a control route (kill, pause, resume) without the right bearer token is answered 401
  (403 while the control API is disabled);
* a body announced (``Content-Length``) or found (chunked) larger than ``MAX_BODY`` is
  answered 413 — the control routes carry at most a reason of 500 characters;
* a body that has not all arrived ``BODY_TIMEOUT`` after the headers is answered 408 (a
  request in progress is never closed as idle, so a body sent a byte at a time would hold
  its connection for good).

What passes is handed on with its body replayed, unchanged.

``Pacer`` (outermost) spends a budget on requests that carry neither the bearer token nor a
stream ticket: at most ``rate`` a second (a burst of ``burst``), the rest *delayed* until
their turn — up to ``MAX_DELAY``, then answered 429 after that delay. Refusing fast is what
a flood wants: a client that gets its 401 or its ``/metrics`` page at once sends the next
request at once, and on a 2-core machine its own threads and the kernel's copying then take
the CPU the bars need (bar p99 5-7x idle under a looping ``/metrics`` scraper or 48 MB kill
bodies sharing the cores, ``docs/benchmarks.md``). Delayed, a looping client waits, and a
body nobody reads stops in the TCP window (uvicorn stops reading a request whose app has not
taken its body). The token holder, the dashboard's ticketed streams and Discord's signed
interactions (answered within 3 s or failed, Discord "Receiving an Interaction") pass
unpaced.

``Hardened`` wraps every answer: a request whose ``Host`` is not one of the bot's names is
answered 421 (a web page in the operator's browser cannot reach a loopback bot through a
DNS name it rebinds to 127.0.0.1), and every answer carries anti-framing headers (the
dashboard has a kill button: no other site may frame it).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from pydantic import SecretStr

MAX_BODY = 4096  # bytes
# larger bodies where a route needs them: a Discord interaction carries the member and the
# channel (Discord documents no size; 64 KB is far above any slash command's)
BODY_LIMITS = {"/api/discord/interactions": 65536}
BODY_TIMEOUT = 10.0  # s: the whole body, from the end of the headers
CONTROL = frozenset({"/api/kill", "/api/pause", "/api/resume", "/api/dashboard/ticket"})
TICKET_SECONDS = 60.0  # a stream ticket opens streams for this long

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def token_refusal(
    token: SecretStr | None, authorization: str | None
) -> tuple[int, str, dict[str, str]] | None:
    """Why a control request is refused (status, detail, headers), or None when its
    ``Authorization: Bearer`` matches the token (compared in constant time)."""
    if token is None:
        return 403, "control API disabled: set SOLBOT_API_TOKEN", {}
    scheme, _, given = (authorization or "").partition(" ")
    ok = scheme.lower() == "bearer" and hmac.compare_digest(
        given.encode(), token.get_secret_value().encode()
    )
    if ok:
        return None
    return 401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}


MAX_DELAY = 2.0  # s: the longest a request waits for its turn before its 429
UNPACED = frozenset({"/api/discord/interactions"})  # verified by Discord's signature


class Pacer:
    """GCRA (the virtual-scheduling form of a token bucket): a request without the token
    is let through at its turn, ``1/rate`` after the one before it, ``burst`` of them at
    once; one whose turn is over ``max_delay`` away waits ``max_delay`` and gets 429."""

    def __init__(
        self,
        app: ASGIApp,
        token: Callable[[], SecretStr | None],
        tickets: Callable[[str | None], bool],
        rate: float,
        burst: int,
        max_delay: float = MAX_DELAY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app, self.token, self.tickets = app, token, tickets
        self.rate, self.max_delay, self.clock = rate, max_delay, clock
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.tolerance = max(0, burst - 1) * self.interval
        self.tat = 0.0  # when the budget is next free (theoretical arrival time)
        self.delayed = self.refused = 0

    def trusted(self, scope: Scope) -> bool:
        if scope.get("path") in UNPACED:
            return True
        auth = dict(scope.get("headers", [])).get(b"authorization")
        if auth is not None and token_refusal(self.token(), auth.decode("latin-1")) is None:
            return True
        query = scope.get("query_string", b"").decode("latin-1")
        if "ticket=" in query:
            for part in query.split("&"):
                key, _, value = part.partition("=")
                if key == "ticket" and self.tickets(value):
                    return True
        return False

    def turn(self) -> float | None:
        """Seconds to wait for this request's turn (0: now), or None: beyond the longest."""
        now = self.clock()
        tat = max(self.tat, now)
        start = max(now, tat - self.tolerance)
        if start - now > self.max_delay:
            return None
        self.tat = tat + self.interval
        wait = start - now
        return wait if wait > 1e-9 else 0.0  # float error of the burst's sum: none

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.rate <= 0 or self.trusted(scope):
            await self.app(scope, receive, send)
            return
        wait = self.turn()
        if wait is None:
            self.refused += 1
            await asyncio.sleep(self.max_delay)
            await _answer(send, 429, "too many requests without the token", {"Retry-After": "1"})
            return
        if wait > 0:
            self.delayed += 1
            await asyncio.sleep(wait)
        await self.app(scope, receive, send)


class BodyGuard:
    def __init__(
        self, app: ASGIApp, token: Callable[[], SecretStr | None], limit: int = MAX_BODY
    ) -> None:
        self.app, self.token, self.limit = app, token, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if scope.get("path") in CONTROL:
            auth = headers.get(b"authorization")
            refused = token_refusal(self.token(), auth.decode("latin-1") if auth else None)
            if refused is not None:
                await _answer(send, *refused)
                return
        limit = BODY_LIMITS.get(scope.get("path", ""), self.limit)
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _answer(send, 413, f"request body over {limit} bytes", {})
            return
        body = bytearray()
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body += message.get("body", b"")
                    if len(body) > limit:
                        await _answer(send, 413, f"request body over {limit} bytes", {})
                        return
                    if not message.get("more_body", False):
                        break
        except TimeoutError:  # a body sent a byte at a time holds a connection for good
            await _answer(send, 408, f"request body not received within {BODY_TIMEOUT:.0f} s", {})
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)


async def _answer(send: Send, status: int, detail: str, extra: dict[str, str]) -> None:
    payload = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
    headers.append((b"connection", b"close"))  # the unread body is not drained
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def host_name(header: bytes | None) -> str:
    """The name in a ``Host`` header, without its port (``[::1]:3001`` -> ``::1``)."""
    value = (header or b"").decode("latin-1").strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Hardened:
    """``allowed``: the Host names accepted (None: any — a bot listening beyond loopback is
    reached by whatever name its operators use; set ``SOLBOT_API_ALLOWED_HOSTS`` there)."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str] | None) -> None:
        self.app, self.allowed = app, allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.allowed is not None:
            host = dict(scope.get("headers", [])).get(b"host")
            if host_name(host) not in self.allowed:
                await _answer(send, 421, "unknown Host", {})
                return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


class Tickets:
    """Short-lived read tickets for the dashboard's event streams.

    A browser's ``EventSource`` cannot send an ``Authorization`` header (WHATWG HTML,
    "Server-sent events": the constructor takes a URL and ``withCredentials`` only), so with
    a token configured the page trades its bearer token for a ticket
    (``POST /api/dashboard/ticket``) and opens the stream with ``?ticket=``. A ticket is its
    expiry time signed (HMAC-SHA256) with a key made when the process starts: it opens
    streams for ``TICKET_SECONDS``, is worthless after that and in any other process, and
    carries nothing of the token. The access log is off, so it is written nowhere.
    """

    def __init__(self, seconds: float = TICKET_SECONDS, clock: Callable[[], float] = time.time):
        self.seconds, self.clock = seconds, clock
        self._key = secrets.token_bytes(32)

    def _mac(self, expiry: str) -> str:
        return hmac.new(self._key, expiry.encode(), hashlib.sha256).hexdigest()

    def issue(self) -> str:
        expiry = str(int((self.clock() + self.seconds) * 1000))
        return f"{expiry}.{self._mac(expiry)}"

    def valid(self, ticket: str | None) -> bool:
        if not ticket or len(ticket) > 100:
            return False
        expiry, _, mac = ticket.partition(".")
        if not expiry.isdigit():
            return False
        return hmac.compare_digest(mac, self._mac(expiry)) and int(expiry) > self.clock() * 1000
