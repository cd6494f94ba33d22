"""OHLCV download through ccxt ``fetch_ohlcv`` with paging and resume.

Each page is merged into the Parquet store as it arrives, so an interrupted download
resumes after the last stored bar. Only closed bars are stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

import numpy as np

from solbot.data.bars import BarArrays, DataError, timeframe_ms
from solbot.data.store import OhlcvStore


class OhlcvSource(Protocol):
    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int | None = None, limit: int | None = None
    ) -> list[list[Any]]: ...


def download(
    source: OhlcvSource,
    store: OhlcvStore,
    symbol: str,
    timeframe: str,
    since_ms: int,
    until_ms: int,
    now_ms: int,
    page_limit: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Fetch [since, until) into the store; return the number of new bars stored."""
    step = timeframe_ms(timeframe)
    until_ms = min(until_ms, now_ms - now_ms % step)  # never store the forming bar
    existing = store.load(symbol, timeframe)
    cursor = since_ms
    if existing is not None and len(existing) and int(existing.ts[-1]) >= since_ms:
        cursor = int(existing.ts[-1]) + step  # resume
    total = max(0, (until_ms - since_ms) // step)
    stored = 0
    while cursor < until_ms:
        rows = source.fetch_ohlcv(symbol, timeframe, since=cursor, limit=page_limit)
        if not rows:
            break
        try:
            a = np.array([r[:6] for r in rows], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(f"exchange returned malformed OHLCV rows for {symbol}") from exc
        if a.ndim != 2 or a.shape[1] != 6:
            raise DataError(f"exchange returned malformed OHLCV rows for {symbol}")
        a = a[(a[:, 0] >= cursor) & (a[:, 0] < until_ms)]
        if not len(a):
            break
        page = BarArrays.from_rows(a, symbol=symbol, timeframe=timeframe)
        store.save(page)
        stored += len(page)
        cursor = int(page.ts[-1]) + step
        if progress is not None:
            progress(min(total, (cursor - since_ms) // step), total)
    return stored


def ccxt_exchange(name: str, base_url: str | None = None, sandbox: bool = False) -> Any:
    """A synchronous ccxt exchange for public market data.

    ``base_url`` (e.g. ``http://127.0.0.1:8765``) replaces the scheme and host of every REST
    endpoint while keeping its path (``/api/v3`` ...), so the real ccxt code talks to a
    local emulator. Spot markets only are loaded. ``sandbox``: the exchange's test network.
    """
    import ccxt

    cls = getattr(ccxt, name, None)
    if not isinstance(cls, type) or not issubclass(cls, ccxt.Exchange):
        raise ValueError(f"unknown exchange {name!r}")
    ex = cls({"enableRateLimit": True, "options": {"fetchMarkets": {"types": ["spot"]}}})
    if sandbox:
        ex.set_sandbox_mode(True)
    if base_url:
        base = urlsplit(base_url)
        if base.scheme not in ("http", "https") or not base.netloc:
            raise ValueError(f"--exchange-url must look like http://host:port, got {base_url!r}")
        ex.urls["api"] = _rebase(ex.urls.get("api"), f"{base.scheme}://{base.netloc}")
    return ex


def _rebase(urls: Any, origin: str) -> Any:
    if isinstance(urls, str):
        return origin + urlsplit(urls).path
    if isinstance(urls, dict):
        return {k: _rebase(v, origin) for k, v in urls.items()}
    return urls
