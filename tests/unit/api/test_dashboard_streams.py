"""Dashboard streams cost the bot nothing it needs: one rendering per change for all the
streams at a cursor, a cap on their number, slow readers dropped."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from solbot.api import dashboard


class _Service:
    changes = 0
    stopping = False


def test_an_update_is_rendered_once_per_change_for_every_stream_at_that_cursor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, str | None]] = []

    def fake_view(service: Any, since: int = -1, symbol: str | None = None) -> dict[str, Any]:
        calls.append((since, symbol))
        return {"bars": [[since + 60_000, 1, 1, 1, 1]]}

    monkeypatch.setattr(dashboard, "view", fake_view)
    svc = _Service()
    streams = dashboard._Streams(svc)  # type: ignore[arg-type]
    got = {streams.update(0, None) for _ in range(200)}  # 200 streams, one bar processed
    assert len(got) == 1 and streams.renders == 1
    event, cursor = got.pop()
    assert cursor == 60_000 and event.startswith("event: update\ndata: ")
    streams.update(0, "BTC/USDT")  # another symbol: its own rendering
    svc.changes += 1
    for _ in range(200):
        streams.update(60_000, None)
    assert streams.renders == 3 and calls[-1] == (60_000, None)


def test_a_reader_that_takes_no_update_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard, "SLOW_READER", 0.05)

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)
        if message.get("type") == "http.response.body":
            await asyncio.sleep(3600)  # the reader's buffers are full: it never reads

    async def receive() -> Any:
        await asyncio.sleep(3600)

    monkeypatch.setattr(dashboard, "view", lambda *a, **k: {"bars": []})

    class Svc(_Service):
        async def wait_change(self, timeout: float) -> None:
            await asyncio.sleep(0)

        async def wait_stop(self, timeout: float) -> None:
            await asyncio.sleep(0)

    class Req:
        async def is_disconnected(self) -> bool:
            return False

    streams = dashboard._Streams(Svc())  # type: ignore[arg-type]
    response = dashboard._SlowReaderDropped(
        streams.events(Req(), -1, None),  # type: ignore[arg-type]
        media_type="text/event-stream",
    )
    scope = {"type": "http", "asgi": {"spec_version": "2.4"}, "method": "GET", "path": "/"}

    async def go() -> None:
        await asyncio.wait_for(response(scope, receive, send), 5)

    asyncio.run(go())  # returns: the stream ended instead of waiting for good
    assert streams.open == 0  # counted out: its place is free for another
    assert [m["type"] for m in sent][:2] == ["http.response.start", "http.response.body"]


def test_a_stream_ticket_opens_streams_for_a_minute_and_cannot_be_forged() -> None:
    from solbot.api.guard import Tickets

    now = [1_000_000.0]
    tickets = Tickets(seconds=60, clock=lambda: now[0])
    t = tickets.issue()
    assert tickets.valid(t)
    expiry, mac = t.split(".")
    assert not tickets.valid(f"{int(expiry) + 3_600_000}.{mac}")  # a later expiry, same mac
    assert not tickets.valid(f"{expiry}.{'0' * len(mac)}")
    assert not tickets.valid(Tickets(clock=lambda: now[0]).issue())  # another process's key
    for bad in (None, "", "x", "abc.def", t + "0" * 200):
        assert not tickets.valid(bad)
    now[0] += 59.9
    assert tickets.valid(t)
    now[0] += 0.2
    assert not tickets.valid(t)  # expired
