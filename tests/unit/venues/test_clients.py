"""The ccxt clients the bot makes (``venues.clients``), checked against ccxt itself: every
method ``ExchangeClient`` declares is one the real async Binance client has, and each
factory points the real client where it says. No request is sent."""

from __future__ import annotations

import inspect
from urllib.parse import urlsplit

import pytest

from solbot.domain.errors import ConfigurationError
from solbot.venues.clients import (
    ExchangeClient,
    market_client,
    stream_client,
    trading_client,
    user_stream_client,
)


def _urls(urls: object, schemes: tuple[str, ...] = ("http://", "https://")) -> list[str]:
    """Every URL with one of ``schemes`` in ccxt's nested ``urls["api"]``."""
    if isinstance(urls, str):
        return [urls] if urls.startswith(schemes) else []
    if isinstance(urls, dict):
        return [u for v in urls.values() for u in _urls(v, schemes)]
    return []


def test_every_name_the_protocol_declares_is_one_ccxts_async_binance_has():
    import ccxt.async_support as ccxt_async

    ex = ccxt_async.binance()
    methods = {
        name: inspect.iscoroutinefunction(fn)
        for name, fn in vars(ExchangeClient).items()
        if callable(fn) and not name.startswith("_")
    }
    assert {"create_order", "private_post_orderlist_oco", "fetch_time"} <= set(methods)
    for name, is_async in methods.items():
        fn = getattr(ex, name, None)
        assert callable(fn), f"ccxt's binance has no {name}"
        # ccxt's implicit endpoints are plain functions that return a coroutine
        if is_async and not name.startswith(("public_", "private_")):
            assert inspect.iscoroutinefunction(fn), f"{name} is not async in ccxt"
        elif not is_async:
            assert not inspect.iscoroutinefunction(fn), f"{name} is async in ccxt"
    for name in ExchangeClient.__annotations__:
        assert hasattr(ex, name), f"ccxt's binance has no attribute {name}"


def test_the_market_client_moves_every_rest_url_to_the_given_host_and_keeps_its_path():
    ex = market_client("binance", "http://127.0.0.1:9/ignored")
    rest = _urls(ex.urls["api"])
    assert rest and {urlsplit(u).netloc for u in rest} == {"127.0.0.1:9"}
    assert urlsplit(ex.urls["api"]["public"]).path == "/api/v3"
    assert ex.enableRateLimit is True
    assert ex.options["fetchMarkets"]["types"] == ["spot"]


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: market_client("binance", "ftp://127.0.0.1:9"), "http://host:port"),
        (lambda: market_client("binance", "127.0.0.1:9"), "http://host:port"),
        (lambda: market_client("nosuchexchange"), "unknown exchange"),
        (lambda: trading_client("nosuchexchange", None, "k", "s"), "unknown exchange"),
    ],
)
def test_a_bad_exchange_or_url_is_a_configuration_error_exit_2(make, needle):
    with pytest.raises(ConfigurationError, match=needle) as err:
        make()
    assert err.value.exit_code == 2


def test_the_trading_client_leaves_pacing_to_the_traffic_gate_and_carries_the_recv_window():
    ex = trading_client("binance", "http://127.0.0.1:9", "k", "s", 800, recv_window_ms=5000)
    assert ex.options["recvWindow"] == 5000
    assert ex.enableRateLimit is False and ex.timeout == 800
    rest = _urls(ex.urls["api"])
    assert rest and {urlsplit(u).netloc for u in rest} == {"127.0.0.1:9"}
    assert trading_client("binance", None, "k", "s").options.get("recvWindow") != 5000


def test_a_stream_needs_a_websocket_url_beside_a_custom_rest_base():
    assert stream_client("binance", "http://127.0.0.1:9", None) is None
    ws = stream_client("binance", "http://127.0.0.1:9", "ws://127.0.0.1:9/stream")
    assert ws is not None and ws.urls["api"]["ws"]["spot"] == "ws://127.0.0.1:9/stream"
    assert stream_client("nosuchexchange", None, None) is None


def test_the_user_stream_goes_to_the_websocket_api_on_the_rest_bases_host():
    client = user_stream_client("binance", "http://127.0.0.1:9", "k", "s")
    assert client is not None
    assert client.urls["api"]["ws"]["ws-api"]["spot"] == "ws://127.0.0.1:9/ws-api/v3"
    secure = user_stream_client("binance", "https://127.0.0.1:9", "k", "s")
    assert secure is not None
    assert secure.urls["api"]["ws"]["ws-api"]["spot"] == "wss://127.0.0.1:9/ws-api/v3"
