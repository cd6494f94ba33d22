"""The API server's connection housekeeping (``ApiServer.prune_connections``): connections
with no request in progress are closed after ``IDLE_LIMIT``; beyond ``MAX_CONNECTIONS`` the
longest-idle go first; a request in progress (a stream, a body on its way) is never cut."""

from __future__ import annotations

from typing import Any

import uvicorn

from solbot.api.app import IDLE_LIMIT, MAX_CONNECTIONS, ApiServer


class _Transport:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class _Cycle:
    def __init__(self, complete: bool) -> None:
        self.response_complete = complete


class _Conn:
    def __init__(self, cycle: _Cycle | None = None) -> None:
        self.cycle = cycle
        self.transport = _Transport()


def _server(conns: list[_Conn]) -> ApiServer:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    server = ApiServer(uvicorn.Config(app, lifespan="off"))
    server.server_state.connections.update(conns)  # type: ignore[arg-type]
    return server


def test_a_half_open_connection_is_closed_after_the_idle_limit_and_a_busy_one_never() -> None:
    half_open, streaming, kept_alive = _Conn(), _Conn(_Cycle(False)), _Conn(_Cycle(True))
    server = _server([half_open, streaming, kept_alive])
    assert server.prune_connections(100.0) == 0  # first seen idle now
    kept_alive.cycle = _Cycle(True)  # it asked again meanwhile: idle since its new answer
    assert server.prune_connections(100.0 + IDLE_LIMIT - 1) == 0
    kept_alive_again = kept_alive.cycle
    assert server.prune_connections(100.0 + IDLE_LIMIT) == 1
    assert half_open.transport.closed and not streaming.transport.closed
    assert not kept_alive.transport.closed and kept_alive.cycle is kept_alive_again
    assert server.prune_connections(100.0 + 10 * IDLE_LIMIT) == 1  # kept_alive, idle long
    assert not streaming.transport.closed  # a stream is the stream cap's business


def test_beyond_the_cap_the_longest_idle_are_closed_first() -> None:
    flood = [_Conn() for _ in range(MAX_CONNECTIONS + 50)]
    server = _server(flood[:MAX_CONNECTIONS])
    server.prune_connections(1.0)  # these were first
    server.server_state.connections.update(flood[MAX_CONNECTIONS:])  # type: ignore[arg-type]
    assert server.prune_connections(2.0) == 50
    assert sum(c.transport.closed for c in flood[:MAX_CONNECTIONS]) == 50  # the older ones
    assert not any(c.transport.closed for c in flood[MAX_CONNECTIONS:])  # the newest stay
