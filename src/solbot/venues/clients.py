"""Every ccxt client the bot makes, made here, and the shape the rest of the code sees of them.

* ``market_client`` — synchronous, public: the REST market feed (in a worker thread) and
  ``solbot data download``.
* ``trading_client`` — async, keyed: the live venue.
* ``stream_client`` — ccxt.pro, public: ``watch_ohlcv`` for the streamed market feed.
* ``user_stream_client`` — ccxt.pro, keyed: ``watch_my_trades`` (Binance's user data stream).

Each loads spot markets only. ``base_url`` (``http://host:port``) replaces the scheme and host
of every REST URL and keeps its path (``/api/v3`` ...), so ccxt's own code talks to the local
emulator; ``sandbox`` is ccxt's sandbox mode (Binance: testnet.binance.vision). The traffic
gate (``venues.traffic``) is installed by the caller on the clients that share it.

ccxt ships no type information: ``ExchangeClient`` names the methods and attributes of the
async client that our code calls — ccxt's unified API (Manual, "Unified API") and Binance's
implicit endpoints, which ccxt names after the REST path (``private_post_orderlist_oco`` is
``POST /api/v3/orderList/oco``) — so that mypy checks every call against one list.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlsplit

from solbot.domain.errors import ConfigurationError

Params = dict[str, Any]
_SPOT = {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}


class ExchangeClient(Protocol):
    """The async ccxt exchange as the live venue uses it."""

    id: str
    urls: dict[str, Any]
    options: dict[str, Any]
    has: dict[str, Any]
    markets: dict[str, Any]
    precisionMode: int  # noqa: N815 — ccxt's own name
    last_response_headers: Any

    async def load_markets(self, reload: bool = False) -> dict[str, Any]: ...
    def market(self, symbol: str) -> dict[str, Any]: ...
    def amount_to_precision(self, symbol: str, amount: Any) -> str: ...
    def price_to_precision(self, symbol: str, price: Any) -> str: ...
    def sign(
        self, path: str, api: Any = ..., method: str = ..., params: Any = ..., *a: Any
    ) -> dict[str, Any]: ...
    def set_sandbox_mode(self, enabled: bool) -> None: ...
    async def fetch_time(self, params: Params = ...) -> int: ...
    async def fetch_balance(self, params: Params = ...) -> dict[str, Any]: ...
    async def fetch_order(
        self, id: str, symbol: str | None = None, params: Params = ...
    ) -> dict[str, Any]: ...
    async def fetch_open_orders(
        self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
        params: Params = ...,
    ) -> list[dict[str, Any]]: ...  # fmt: skip
    async def fetch_closed_orders(
        self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
        params: Params = ...,
    ) -> list[dict[str, Any]]: ...  # fmt: skip
    async def fetch_my_trades(
        self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
        params: Params = ...,
    ) -> list[dict[str, Any]]: ...  # fmt: skip
    async def create_order(
        self, symbol: str, type: str, side: str, amount: Any, price: Any = None,
        params: Params = ...,
    ) -> dict[str, Any]: ...  # fmt: skip
    async def cancel_order(
        self, id: str, symbol: str | None = None, params: Params = ...
    ) -> dict[str, Any]: ...
    async def cancel_all_orders(self, symbol: str | None = None, params: Params = ...) -> Any: ...
    async def cancel_all_orders_after(self, timeout: int, params: Params = ...) -> Any: ...
    # Binance's implicit endpoints (ccxt's binance.py "api" table; spot REST API docs)
    async def public_get_exchangeinfo(self, params: Params = ...) -> dict[str, Any]: ...
    async def private_post_orderlist_oco(self, params: Params = ...) -> dict[str, Any]: ...
    async def private_post_orderlist_otoco(self, params: Params = ...) -> dict[str, Any]: ...
    async def private_delete_orderlist(self, params: Params = ...) -> dict[str, Any]: ...
    async def private_delete_openorders(self, params: Params = ...) -> list[dict[str, Any]]: ...
    async def close(self) -> None: ...


def _class(module: Any, name: str) -> type | None:
    cls = getattr(module, name, None)
    return cls if isinstance(cls, type) else None


def rebase(urls: Any, origin: str) -> Any:
    """``urls`` (ccxt's ``urls["api"]``: a string or a nested dict of them) with the scheme and
    host of each replaced by ``origin``, each path kept."""
    if isinstance(urls, str):
        return origin + urlsplit(urls).path
    if isinstance(urls, dict):
        return {k: rebase(v, origin) for k, v in urls.items()}
    return urls


def _place(ex: Any, origin: str | None, sandbox: bool) -> Any:
    if sandbox:
        ex.set_sandbox_mode(True)
    if origin:
        ex.urls["api"] = rebase(ex.urls.get("api"), origin.rstrip("/"))
    return ex


def market_client(name: str, base_url: str | None = None, sandbox: bool = False) -> Any:
    """A synchronous public ccxt exchange (ccxt's own request spacing on); ``base_url`` must
    be ``http(s)://host:port`` (a path in it is dropped)."""
    import ccxt

    cls = _class(ccxt, name)
    if cls is None or not issubclass(cls, ccxt.Exchange):
        raise ConfigurationError(f"unknown exchange {name!r}")
    origin = None
    if base_url:
        base = urlsplit(base_url)
        if base.scheme not in ("http", "https") or not base.netloc:
            raise ConfigurationError(
                f"--exchange-url must look like http://host:port, got {base_url!r}"
            )
        origin = f"{base.scheme}://{base.netloc}"
    ex = cls({"enableRateLimit": True, "options": {"fetchMarkets": _SPOT["fetchMarkets"]}})
    return _place(ex, origin, sandbox)


def trading_client(
    name: str,
    base_url: str | None,
    api_key: str,
    secret: str,
    timeout_ms: int = 10_000,
    sandbox: bool = False,
    recv_window_ms: int | None = None,
) -> ExchangeClient:
    """An async ccxt exchange with keys; ``recv_window_ms``: the ``recvWindow`` every signed
    request carries (ccxt's own 10000 when not given)."""
    import ccxt.async_support as ccxt_async

    cls = _class(ccxt_async, name)
    if cls is None:
        raise ConfigurationError(f"unknown exchange {name!r}")
    ex = cls(
        {
            "apiKey": api_key,
            "secret": secret,
            # ccxt's own spacing of requests (50 ms each on Binance) is off: the traffic gate
            # (venues.traffic) budgets the exchange's documented request weight instead
            "enableRateLimit": False,
            "timeout": timeout_ms,
            "options": {**_SPOT, "fetchMargins": False},
        }
    )
    if recv_window_ms is not None:
        ex.options["recvWindow"] = recv_window_ms
    placed: ExchangeClient = _place(ex, base_url, sandbox)
    return placed


def stream_client(
    name: str, base_url: str | None, ws_url: str | None, sandbox: bool = False
) -> Any | None:
    """A ccxt.pro exchange for public streams, or None where there is none (no ccxt.pro
    class, no ``watchOHLCV``, or a custom REST base without a websocket URL)."""
    import ccxt.pro as ccxtpro

    cls = _class(ccxtpro, name)
    if cls is None or (base_url and not ws_url):
        return None
    ex = cls({"options": dict(_SPOT)})
    if not ex.has.get("watchOHLCV"):
        return None
    _place(ex, base_url, sandbox)
    if ws_url:
        ws = ex.urls["api"].get("ws")
        if isinstance(ws, dict):
            ws["spot"] = ws_url
        else:
            ex.urls["api"]["ws"] = ws_url
    return ex


def user_stream_client(
    name: str, base_url: str | None, api_key: str, secret: str, sandbox: bool = False
) -> Any | None:
    """A ccxt.pro client for the account's user data stream, or None where ccxt.pro has none
    (no such class or no ``watchMyTrades``). With a REST base (the emulator), the WebSocket
    API is at ``ws(s)://<that host>/ws-api/v3``."""
    import ccxt.pro as ccxtpro

    cls = _class(ccxtpro, name)
    if cls is None:
        return None
    ex = cls({"apiKey": api_key, "secret": secret, "options": dict(_SPOT)})
    if not ex.has.get("watchMyTrades"):
        return None
    if sandbox:
        ex.set_sandbox_mode(True)
    ws_api = (ex.urls.get("api") or {}).get("ws", {}).get("ws-api")
    if base_url and isinstance(ws_api, dict):
        parts = urlsplit(base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        ws_api["spot"] = f"{scheme}://{parts.netloc}/ws-api/v3"
    return ex
