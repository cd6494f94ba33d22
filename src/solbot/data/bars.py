"""Columnar OHLCV bars (numpy) and timeframe helpers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import numpy.typing as npt

from solbot.domain.errors import MarketDataError
from solbot.domain.messages import Bar

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_TF = re.compile(r"^(\d+)([smhdw])$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


class DataError(MarketDataError):
    """Market data that cannot be used; the message is one line naming the problem."""


def timeframe_ms(timeframe: str) -> int:
    m = _TF.match(timeframe)
    if not m or int(m.group(1)) <= 0:
        raise DataError(f"unknown timeframe {timeframe!r} (use e.g. 15m, 1h, 4h, 1d)")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


def timeframe_name(ms: int) -> str:
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNIT_MS[unit]
        if ms % size == 0:
            return f"{ms // size}{unit}"
    raise DataError(f"timeframe of {ms} ms is not a whole number of seconds")


TS_MIN = 1_230_768_000_000  # 2009-01-01 in ms: before any exchange's market data
TS_MAX = 4_102_444_800_000  # 2100-01-01


@dataclass(slots=True)
class BarArrays:
    """OHLCV columns of one symbol and timeframe. ``ts`` = bar open time, epoch ms UTC."""

    ts: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    symbol: str = "SOL/USDT"
    timeframe: str = "1h"
    meta: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @classmethod
    def from_rows(
        cls, rows: npt.ArrayLike, symbol: str = "SOL/USDT", timeframe: str = "1h"
    ) -> BarArrays:
        a = np.asarray(rows, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] < 6:
            raise DataError("expected rows of [time, open, high, low, close, volume]")
        t = a[:, 0]
        bad = ~np.isfinite(t) | (t < TS_MIN) | (t > TS_MAX)
        if bad.any():  # cast to int64 it would wrap, and be blamed on the rows after it
            i = int(np.argmax(bad))
            raise DataError(
                f"row {i + 1}: timestamp {t[i]:g} is not a time in ms between 2009 and 2100"
            )
        return cls(
            ts=a[:, 0].astype(np.int64),
            open=np.ascontiguousarray(a[:, 1]),
            high=np.ascontiguousarray(a[:, 2]),
            low=np.ascontiguousarray(a[:, 3]),
            close=np.ascontiguousarray(a[:, 4]),
            volume=np.ascontiguousarray(a[:, 5]),
            symbol=symbol,
            timeframe=timeframe,
        )

    def slice(self, start: int, stop: int) -> BarArrays:
        return BarArrays(
            self.ts[start:stop],
            self.open[start:stop],
            self.high[start:stop],
            self.low[start:stop],
            self.close[start:stop],
            self.volume[start:stop],
            self.symbol,
            self.timeframe,
            dict(self.meta),
        )

    def between(self, start_ms: int | None, end_ms: int | None) -> BarArrays:
        lo = 0 if start_ms is None else int(np.searchsorted(self.ts, start_ms, side="left"))
        hi = len(self) if end_ms is None else int(np.searchsorted(self.ts, end_ms, side="left"))
        return self.slice(lo, hi)

    def bars(self) -> Iterator[Bar]:
        # tuple.__new__ through functools.partial stays in C: the cheapest way to build
        # millions of NamedTuples (Bar._make and Bar(...) both run Python code per bar).
        make = partial(tuple.__new__, Bar)
        cols = zip(
            self.ts.tolist(),
            self.open.tolist(),
            self.high.tolist(),
            self.low.tolist(),
            self.close.tolist(),
            self.volume.tolist(),
            strict=True,
        )
        return map(make, cols)
