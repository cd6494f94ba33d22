"""Talking to a ccxt exchange: a keyed async client (its REST base movable to the local
emulator), what a failed call means for what must happen next, and the ``Retry-After`` of
the last answer. Shared by the live venue and the exchange market-data feed."""

from __future__ import annotations

import asyncio
from typing import Any

import ccxt.async_support as ccxt_async
from ccxt.base import errors as cx


def classify(exc: BaseException) -> str:
    """What must happen next after an exchange call failed."""
    if isinstance(exc, cx.DDoSProtection):  # 418 and 429 (ccxt's binance raises this for both)
        return "banned" if " 418 " in f" {exc} " else "rate_limited"
    if isinstance(exc, cx.AuthenticationError | cx.PermissionDenied | cx.AccountSuspended):
        return "auth"
    if isinstance(exc, cx.OrderNotFound):
        return "not_found"
    if isinstance(exc, cx.InvalidNonce):  # -1021: refused unprocessed, our clock is off
        return "clock"
    if isinstance(exc, cx.OperationFailed):  # timeouts, 5xx, -1001, -1007: outcome unknown
        return "unknown"
    if isinstance(exc, cx.InsufficientFunds | cx.InvalidOrder | cx.OperationRejected):
        return "rejected"
    if isinstance(exc, asyncio.TimeoutError):
        return "unknown"
    return "error"


def short(exc: BaseException) -> str:
    """An exchange error in one line (type and the first 200 characters)."""
    text = str(exc).replace("\n", " ")
    return f"{type(exc).__name__}: {text[:200]}"


def retry_after(exchange: Any, default: float = 1.0) -> float:
    """The ``Retry-After`` of the exchange's last answer (seconds), else ``default``."""
    headers = getattr(exchange, "last_response_headers", None) or {}
    for k, v in headers.items():
        if k.lower() == "retry-after":
            try:
                return max(0.0, float(str(v)))
            except ValueError:
                break
    return default


def binance_exchange(
    name: str,
    base_url: str | None,
    api_key: str,
    secret: str,
    timeout_ms: int = 10_000,
    sandbox: bool = False,
    recv_window_ms: int | None = None,
) -> Any:
    """An async ccxt exchange with keys; ``base_url`` rebases every REST URL (emulator);
    ``sandbox``: the exchange's test network (ccxt sandbox mode: testnet.binance.vision);
    ``recv_window_ms``: the ``recvWindow`` every signed request carries (ccxt's own 10000
    when not given)."""
    from solbot.data.download import _rebase

    cls = getattr(ccxt_async, name, None)
    if not isinstance(cls, type):
        raise ValueError(f"unknown exchange {name!r}")
    ex = cls(
        {
            "apiKey": api_key,
            "secret": secret,
            # ccxt's own spacing of requests (50 ms each on Binance) is off: the traffic gate
            # (venues.traffic) budgets the exchange's documented request weight instead
            "enableRateLimit": False,
            "timeout": timeout_ms,
            "options": {
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
            },
        }
    )
    if recv_window_ms is not None:
        ex.options["recvWindow"] = recv_window_ms
    if sandbox:
        ex.set_sandbox_mode(True)
    if base_url:
        ex.urls["api"] = _rebase(ex.urls.get("api"), base_url.rstrip("/"))
    return ex
