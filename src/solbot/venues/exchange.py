"""What a failed ccxt call means for what must happen next, and the ``Retry-After`` of the
last answer. Shared by the live venue and the exchange market-data feed (the clients
themselves are made in ``venues.clients``)."""

from __future__ import annotations

import asyncio
from typing import Any

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
