"""Indicator feed: how a strategy's indicators get their values.

A strategy registers an ``IndicatorSpec`` and reads ``series.value`` in ``on_bar``. In a
backtest the whole history is known, so the feed computes each spec once, vectorised
through TA-Lib, and ``value`` is a lookup at the current bar. Live, the feed updates the
spec's incremental twin bar by bar. Tests prove the two agree, so strategy code is the
same in both modes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from solbot.data.bars import BarArrays, DataError, FloatArray, timeframe_ms
from solbot.domain.messages import Bar
from solbot.indicators import incremental as inc
from solbot.indicators import vectorised as vec


class Incremental(Protocol):
    def update(self, bar: Bar) -> float: ...


class _Adapter:
    """Wraps an incremental indicator and picks one output from a bar."""

    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[[Bar], float]) -> None:
        self._fn = fn

    def update(self, bar: Bar) -> float:
        return self._fn(bar)


class _Delay:
    """Delays another incremental by ``n`` bars: ``value`` is what it said n bars ago."""

    __slots__ = ("_buf", "_inner", "_n")

    def __init__(self, inner: Incremental, n: int) -> None:
        self._inner, self._n = inner, n
        self._buf: list[float] = []

    def update(self, bar: Bar) -> float:
        self._buf.append(self._inner.update(bar))
        if len(self._buf) > self._n + 1:
            del self._buf[0]
        return self._buf[0] if len(self._buf) == self._n + 1 else math.nan


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    """``kind`` in KINDS; ``output`` picks a band; ``shift`` delays by whole bars."""

    kind: str
    period: int = 14
    output: str = ""
    shift: int = 0
    k: float = 2.0
    acceleration: float = 0.02
    maximum: float = 0.2
    source: str = "close"
    # an informative timeframe ("4h" under 1h bars): computed on bars of that timeframe
    # resampled from the strategy's own, each visible from the bar that closes it on (never
    # the forming one); "" is the strategy's own timeframe
    timeframe: str = ""

    def vectorised(self, a: BarArrays) -> FloatArray:
        if self.timeframe:
            return _informative(self, a)
        src = getattr(a, self.source)
        p = self.period
        match self.kind:
            case "ema":
                out = vec.ema(src, p)
            case "sma":
                out = vec.sma(src, p)
            case "atr":
                out = vec.atr(a.high, a.low, a.close, p)
            case "adx":
                out = vec.adx(a.high, a.low, a.close, p)
            case "rsi":
                out = vec.rsi(src, p)
            case "volatility":
                out = vec.volatility(src, p)
            case "sar":
                out = vec.sar(a.high, a.low, self.acceleration, self.maximum)
            case "highest":
                out = vec.highest(src, p)
            case "lowest":
                out = vec.lowest(src, p)
            case "bollinger":
                up, mid, lo = vec.bollinger(src, p, self.k)
                out = {"upper": up, "middle": mid, "lower": lo}[self.output or "middle"]
            case _:
                raise ValueError(f"unknown indicator {self.kind!r}")
        return vec.shift(out, self.shift)

    def incremental(self, base_ms: int | None = None) -> Incremental:
        """``base_ms``: the bars' own timeframe (needed for an informative timeframe, to
        see that a bar closes its higher-timeframe bar)."""
        if self.timeframe:
            if base_ms is None:
                raise ValueError(f"{self}: an informative timeframe needs the bars' timeframe")
            return _Resampled(replace(self, timeframe=""), base_ms, timeframe_ms(self.timeframe))
        p, src = self.period, self.source
        pick: Callable[[Bar], float]
        match self.kind:
            case "ema":
                e = inc.EMA(p)
                pick = lambda b: e.update(getattr(b, src))  # noqa: E731
            case "sma":
                s = inc.SMA(p)
                pick = lambda b: s.update(getattr(b, src))  # noqa: E731
            case "atr":
                t = inc.ATR(p)
                pick = lambda b: t.update(b.high, b.low, b.close)  # noqa: E731
            case "adx":
                d = inc.ADX(p)
                pick = lambda b: d.update(b.high, b.low, b.close)  # noqa: E731
            case "rsi":
                r = inc.RSI(p)
                pick = lambda b: r.update(getattr(b, src))  # noqa: E731
            case "volatility":
                vol = inc.Volatility(p)
                pick = lambda b: vol.update(getattr(b, src))  # noqa: E731
            case "sar":
                z = inc.ParabolicSAR(self.acceleration, self.maximum)
                pick = lambda b: z.update(b.high, b.low)  # noqa: E731
            case "highest" | "lowest":
                x = inc.RollingExtreme(p, is_max=self.kind == "highest")
                pick = lambda b: x.update(getattr(b, src))  # noqa: E731
            case "bollinger":
                bb = inc.Bollinger(p, self.k)
                idx = {"upper": 0, "middle": 1, "lower": 2}[self.output or "middle"]
                pick = lambda b: bb.update(getattr(b, src))[idx]  # noqa: E731
            case _:
                raise ValueError(f"unknown indicator {self.kind!r}")
        base: Incremental = _Adapter(pick)
        return _Delay(base, self.shift) if self.shift > 0 else base


def _informative(spec: IndicatorSpec, a: BarArrays) -> FloatArray:
    """``spec`` on ``a`` resampled to ``spec.timeframe``, as seen from each of ``a``'s bars:
    the value of the last higher-timeframe bar closed by then (a bucket is closed by the bar
    that ends it, or by the first bar after it when the data has a gap there). The first
    bucket is left out when the data starts inside it (it would be built from part of it)."""
    from solbot.data.resample import resample

    src, dst = timeframe_ms(a.timeframe), timeframe_ms(spec.timeframe)
    if dst < src or dst % src:
        raise ValueError(f"{spec}: {spec.timeframe} is not a multiple of {a.timeframe}")
    if dst == src:
        return replace(spec, timeframe="").vectorised(a)
    out = np.full(len(a), np.nan)
    if len(a) == 0:
        return out
    try:
        htf = resample(a, spec.timeframe)
    except DataError:
        return out  # not one whole higher-timeframe bar yet
    first = 1 if a.ts[0] % dst else 0  # the data starts inside the first bucket
    htf = htf.slice(first, len(htf)) if first else htf
    if len(htf) == 0:
        return out
    values = replace(spec, timeframe="").vectorised(htf)
    seen = np.searchsorted(htf.ts + dst, a.ts + src, side="right") - 1
    ok = seen >= 0
    out[ok] = values[seen[ok]]
    return out


class _Resampled:
    """Live twin of ``_informative``: builds each higher-timeframe bar from the bars as they
    come and updates ``inner`` once that bar has closed."""

    __slots__ = ("_base", "_bucket", "_dst", "_first", "_first_partial", "_inner", "_ohlcv",
                 "_value")  # fmt: skip

    def __init__(self, inner_spec: IndicatorSpec, base_ms: int, dst_ms: int) -> None:
        if dst_ms % base_ms:
            raise ValueError(f"{inner_spec}: the informative timeframe is not a multiple")
        self._inner = inner_spec.incremental()
        self._base, self._dst = base_ms, dst_ms
        self._bucket: int | None = None
        self._ohlcv: list[float] = []
        self._first = True  # the first bucket seen: dropped when it started before the data
        self._first_partial = False
        self._value = math.nan

    def _close(self) -> None:
        assert self._bucket is not None
        if not self._first_partial:
            o, h, lo, c, v = self._ohlcv
            self._value = self._inner.update(Bar(self._bucket, o, h, lo, c, v))
        self._bucket, self._first_partial = None, False

    def update(self, bar: Bar) -> float:
        start = bar.ts // self._dst * self._dst
        if self._bucket is not None and start != self._bucket:
            self._close()  # a gap: its closing bar never came, a later one did
        if self._bucket is None:
            self._bucket = start
            self._first_partial = self._first and bar.ts != start
            self._first = False
            self._ohlcv = [bar.open, bar.high, bar.low, bar.close, bar.volume]
        else:
            o, h, lo, _, v = self._ohlcv
            self._ohlcv = [o, max(h, bar.high), min(lo, bar.low), bar.close, v + bar.volume]
        if bar.ts + self._base >= start + self._dst:
            self._close()
        return self._value


class Series:
    """What a strategy holds. ``value`` is the indicator at the current bar (NaN in warm-up)."""

    __slots__ = ("_feed", "_inc", "_values", "spec", "value_live")

    def __init__(self, spec: IndicatorSpec, feed: IndicatorFeed) -> None:
        self.spec = spec
        self._feed = feed
        self._values: list[float] | None = None
        self._inc: Incremental | None = None
        self.value_live = math.nan

    @property
    def value(self) -> float:
        values = self._values
        if values is not None:
            return values[self._feed.index]
        return self.value_live


class IndicatorFeed:
    """Owns every registered series; advanced by the engine once per bar."""

    __slots__ = ("_history", "_series", "base_ms", "index")

    def __init__(self, base_ms: int | None = None) -> None:
        self._series: list[Series] = []
        self._history: BarArrays | None = None
        self.index = -1
        self.base_ms = base_ms  # the bars' timeframe (informative series need it live)

    @property
    def precomputed(self) -> bool:
        return self._history is not None

    def preload(self, history: BarArrays) -> None:
        """Backtest mode: the bars to come are known; compute every series vectorised."""
        self._history = history
        self.base_ms = timeframe_ms(history.timeframe)
        for s in self._series:
            s._values = s.spec.vectorised(history).tolist()

    def register(self, spec: IndicatorSpec) -> Series:
        series = Series(spec, self)
        if self._history is not None:
            series._values = spec.vectorised(self._history).tolist()
        else:
            series._inc = spec.incremental(self.base_ms)
        self._series.append(series)
        return series

    def advance(self, bar: Bar) -> None:
        self.index += 1
        if self._history is None:
            for s in self._series:
                if s._inc is not None:
                    s.value_live = s._inc.update(bar)
