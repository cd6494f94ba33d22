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
from dataclasses import dataclass
from typing import Protocol

from solbot.data.bars import BarArrays, FloatArray
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

    def vectorised(self, a: BarArrays) -> FloatArray:
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

    def incremental(self) -> Incremental:
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

    __slots__ = ("_history", "_series", "index")

    def __init__(self) -> None:
        self._series: list[Series] = []
        self._history: BarArrays | None = None
        self.index = -1

    @property
    def precomputed(self) -> bool:
        return self._history is not None

    def preload(self, history: BarArrays) -> None:
        """Backtest mode: the bars to come are known; compute every series vectorised."""
        self._history = history
        for s in self._series:
            s._values = s.spec.vectorised(history).tolist()

    def register(self, spec: IndicatorSpec) -> Series:
        series = Series(spec, self)
        if self._history is not None:
            series._values = spec.vectorised(self._history).tolist()
        else:
            series._inc = spec.incremental()
        self._series.append(series)
        return series

    def advance(self, bar: Bar) -> None:
        self.index += 1
        if self._history is None:
            for s in self._series:
                if s._inc is not None:
                    s.value_live = s._inc.update(bar)
