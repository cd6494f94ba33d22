"""The API's body guard: a control request without the token, or any body over the limit, is
answered before a byte of its body is read (FastAPI reads the whole body before a route's
token dependency runs: a 48 MB body with no token froze the loop for 3.3 s)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import SecretStr

from solbot.api.guard import MAX_BODY, BodyGuard

TOKEN = SecretStr("t" * 32)


class _Downstream:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        self.bodies.append(message["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _call(
    path: str, chunks: list[bytes], headers: dict[str, str], token: SecretStr | None = TOKEN
) -> tuple[int, int, _Downstream, dict[bytes, bytes]]:
    """(status, chunks the guard read, the app behind it, the answer's headers)."""
    app = _Downstream()
    guard = BodyGuard(app, lambda: token)
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        i = read - 1
        if i >= len(chunks):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunks[i], "more_body": i + 1 < len(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(guard(scope, receive, send))
    start = sent[0]
    return start["status"], read, app, dict(start["headers"])


def test_a_control_request_without_the_token_is_refused_before_its_body_is_read() -> None:
    big = [b"x" * 1_000_000] * 48
    status, read, app, headers = _call("/api/kill", big, {"content-length": str(48_000_000)})
    assert (status, read, app.bodies) == (401, 0, [])
    assert headers[b"www-authenticate"] == b"Bearer"
    wrong = {"authorization": "Bearer " + "x" * 32}
    assert _call("/api/pause", [b"{}"], wrong)[:2] == (401, 0)
    assert _call("/api/resume", [b"{}"], {}, token=None)[:2] == (403, 0)  # control disabled


def test_a_body_over_the_limit_is_refused_unread_when_announced_and_at_the_limit_when_chunked() -> (
    None
):
    auth = {"authorization": f"Bearer {TOKEN.get_secret_value()}"}
    announced = {**auth, "content-length": str(MAX_BODY + 1)}
    status, read, app, _ = _call("/api/kill", [b"x" * (MAX_BODY + 1)], announced)
    assert (status, read, app.bodies) == (413, 0, [])
    chunked = [b"x" * 1024] * 100  # no Content-Length: read only until it is over the limit
    status, read, app, _ = _call("/api/kill", chunked, auth)
    assert status == 413 and read == MAX_BODY // 1024 + 1 and app.bodies == []
    assert _call("/api/kill", [b"1"], {**auth, "content-length": "-1"})[:2] == (413, 0)


def test_what_passes_reaches_the_route_with_its_body_unchanged() -> None:
    auth = {"authorization": f"Bearer {TOKEN.get_secret_value()}"}
    status, _, app, _ = _call("/api/kill", [b'{"reason":', b' "ops"}'], auth)
    assert status == 200 and app.bodies == [b'{"reason": "ops"}']
    # not a control route: no token needed, the size limit still holds
    assert _call("/api/other", [b"{}"], {})[0] == 200
    assert _call("/api/other", [b"x" * (MAX_BODY + 1)], {})[0] == 413


def test_a_body_that_never_finishes_is_answered_408(monkeypatch: Any) -> None:
    from solbot.api import guard

    monkeypatch.setattr(guard, "BODY_TIMEOUT", 0.05)
    app = _Downstream()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:  # one byte, then nothing more (a slow body)
        if not sent and not getattr(receive, "gave", False):
            receive.gave = True  # type: ignore[attr-defined]
            return {"type": "http.request", "body": b"{", "more_body": True}
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/other", "headers": []}
    asyncio.run(BodyGuard(app, lambda: TOKEN)(scope, receive, send))
    assert sent[0]["status"] == 408 and app.bodies == []


def test_a_foreign_host_is_refused_and_every_answer_forbids_framing() -> None:
    from solbot.api.guard import Hardened, host_name

    assert [host_name(h) for h in (b"127.0.0.1:3001", b"[::1]:3001", b"LocalHost", None)] == [
        "127.0.0.1",
        "::1",
        "localhost",
        "",
    ]
    app = _Downstream()
    guarded = Hardened(app, frozenset({"127.0.0.1", "localhost", "::1"}))

    def get(host: bytes) -> dict[str, Any]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"host", host)]}
        asyncio.run(guarded(scope, receive, send))
        return sent[0]

    rebound = get(b"attacker.example:3001")  # a DNS name rebound to 127.0.0.1
    assert rebound["status"] == 421 and app.bodies == []
    ok = get(b"127.0.0.1:3001")
    headers = dict(ok["headers"])
    assert ok["status"] == 200 and headers[b"x-frame-options"] == b"DENY"
    assert headers[b"content-security-policy"] == b"frame-ancestors 'none'"
    everyone = Hardened(app, None)  # listening beyond loopback with no names set: any Host
    sent: list[dict[str, Any]] = []

    async def go() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"host", b"bot:3001")]}
        await everyone(scope, receive, send)

    asyncio.run(go())
    assert sent[0]["status"] == 200


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_requests_without_the_token_get_a_burst_then_one_turn_per_interval() -> None:
    from solbot.api.guard import Pacer

    clock = _Clock()
    pacer = Pacer(_Downstream(), lambda: TOKEN, lambda t: False, rate=10, burst=5, clock=clock)
    waits = [pacer.turn() for _ in range(5)]
    assert waits == [0.0] * 5  # the burst
    assert [pacer.turn() for _ in range(3)] == [
        pytest.approx(0.1),
        pytest.approx(0.2),
        pytest.approx(0.3),
    ]
    # a flood books turns up to the longest wait (2 s), then is turned away without a turn
    booked = [pacer.turn() for _ in range(30)]
    assert max(w for w in booked if w is not None) <= 2.0
    assert booked[-1] is None and pacer.turn() is None
    clock.t += 10  # the budget refills with time
    assert pacer.turn() == 0.0


def _paced(
    pacer: Any, headers: dict[str, str], query: bytes = b"", path: str = "/metrics"
) -> tuple[int, list[float]]:
    sent: list[dict[str, Any]] = []
    slept: list[float] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    real = asyncio.sleep
    asyncio.sleep = fake_sleep  # type: ignore[assignment]
    try:
        real_run = asyncio.run
        real_run(pacer(scope, receive, send))
    finally:
        asyncio.sleep = real  # type: ignore[assignment]
    return sent[0]["status"], slept


def test_a_flood_without_the_token_waits_its_turn_and_the_token_holder_never_does() -> None:
    from solbot.api.guard import Pacer

    clock = _Clock()
    pacer = Pacer(
        _Downstream(), lambda: TOKEN, lambda t: t == "good", rate=10, burst=2, clock=clock
    )
    assert _paced(pacer, {}) == (200, [])
    assert _paced(pacer, {}) == (200, [])
    status, slept = _paced(pacer, {})  # over the burst: it waited for its turn
    assert status == 200 and slept == [pytest.approx(0.1)]
    for _ in range(25):
        _paced(pacer, {})
    status, slept = _paced(pacer, {})  # the queue is 2 s long: turned away, after 2 s
    assert status == 429 and slept == [2.0] and pacer.refused >= 1
    auth = {"Authorization": f"Bearer {TOKEN.get_secret_value()}"}
    assert _paced(pacer, auth) == (200, [])  # the token holder is never paced
    assert _paced(pacer, {}, b"since=3&ticket=good") == (200, [])  # nor a ticketed stream
    assert _paced(pacer, {}, path="/api/discord/interactions") == (200, [])  # Discord: signed
    assert _paced(pacer, {"Authorization": "Bearer wrong"})[0] == 429  # a wrong token is
    assert _paced(pacer, {}, b"ticket=forged")[0] == 429  # no token, a forged ticket none
