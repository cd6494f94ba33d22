"""Real ccxt with only its transport replaced: ``answer_with(exchange, app)`` makes an async
ccxt exchange send every request to an ASGI app in this process (httpx's ``ASGITransport``)
instead of the network, and then handles the answer exactly as ``ccxt.async_support``'s own
``fetch`` does after its HTTP call (``on_rest_response``, ``parse_json``, the last response
headers, ``handle_errors``, ``handle_http_status_code``) — so ccxt's request building,
signing, error mapping and parsers all run for real. No sockets, no sleeps of its own."""

from __future__ import annotations

from typing import Any

import httpx
from ccxt.base import errors as cx

ANSWERS = "http://binance.replay"


def answer_with(exchange: Any, app: Any, timeout: float | None = None) -> list[tuple[str, str]]:
    """Route ``exchange``'s requests to ``app``; returns the list it records (method, url)
    into. ``timeout``: seconds after which a request raises ccxt's ``RequestTimeout`` (as an
    aiohttp timeout would), the answer lost though the app carried the request out."""
    import asyncio

    from solbot.venues.clients import rebase

    exchange.urls["api"] = rebase(exchange.urls.get("api"), ANSWERS)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ANSWERS)
    sent: list[tuple[str, str]] = []

    async def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        request_headers = exchange.prepare_request_headers(headers)
        sent.append((method, url))
        call = client.request(method, url, headers=request_headers, content=body)
        try:
            async with asyncio.timeout(timeout):  # not wait_for: on 3.11 it can swallow a cancel
                response = await call
        except TimeoutError as exc:
            raise cx.RequestTimeout(f"{exchange.id} {method} {url}") from exc
        text = response.text
        resp_headers = dict(response.headers)
        status, reason = response.status_code, response.reason_phrase
        text = exchange.on_rest_response(
            status, reason, url, method, resp_headers, text, request_headers, body
        )
        json_response = exchange.parse_json(text)
        exchange.last_http_response = text
        exchange.last_response_headers = resp_headers
        exchange.last_json_response = json_response
        exchange.handle_errors(
            status, reason, url, method, resp_headers, text, json_response, request_headers, body
        )
        exchange.handle_http_status_code(status, reason, url, method, text)
        return json_response if json_response is not None else text

    async def close() -> None:
        await client.aclose()

    exchange.fetch = fetch
    exchange.close = close
    return sent
