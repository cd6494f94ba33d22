"""OHLCV download through ccxt ``fetch_ohlcv`` with paging and resume.

Each page is merged into the Parquet store as it arrives, so an interrupted download
resumes after the last stored bar. Only closed bars are stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

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
