"""Incremental indicators for live use: one bar at a time, O(1) per bar.

Each follows TA-Lib's own seeding (SMA seed for EMA/ATR/RSI, summed seeds for ADX, the
minus-DM direction test for SAR), so after warm-up they agree with ``talib`` to 1e-9.
``value`` is NaN until warm-up completes.
"""

from __future__ import annotations

import math
from collections import deque

NAN = math.nan
_EPS = 1e-8  # TA-Lib's TA_IS_ZERO threshold


def _is_zero(x: float) -> bool:
    return -_EPS < x < _EPS


class SMA:
    __slots__ = ("_buf", "_sum", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = period
        self._buf: deque[float] = deque()
        self._sum = 0.0
        self.value = NAN

    def update(self, x: float) -> float:
        self._buf.append(x)
        self._sum += x
        if len(self._buf) > self.period:
            self._sum -= self._buf.popleft()
        if len(self._buf) == self.period:
            self.value = self._sum / self.period
        return self.value


class Volatility:
    """The sample standard deviation of the last ``period`` log returns (``vectorised.
    volatility``'s twin; two-pass over the window, so it agrees with numpy to rounding)."""

    __slots__ = ("_prev", "_rets", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = period
        self._prev = NAN
        self._rets: deque[float] = deque(maxlen=period)
        self.value = NAN

    def update(self, x: float) -> float:
        if self._prev == self._prev and self._prev > 0 and x > 0:  # not NaN
            self._rets.append(math.log(x / self._prev))
        self._prev = x
        if self.period >= 2 and len(self._rets) == self.period:
            mean = sum(self._rets) / self.period
            var = sum((r - mean) ** 2 for r in self._rets) / (self.period - 1)
            self.value = math.sqrt(var)
        return self.value


class EMA:
    """TA-Lib EMA: seeded with the SMA of the first ``period`` values, k = 2/(n+1)."""

    __slots__ = ("_k", "_n", "_seed", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = period
        self._k = 2.0 / (period + 1)
        self._n = 0
        self._seed = 0.0
        self.value = NAN

    def update(self, x: float) -> float:
        self._n += 1
        if self._n < self.period:
            self._seed += x
        elif self._n == self.period:
            self.value = (self._seed + x) / self.period
        else:
            self.value = (x - self.value) * self._k + self.value
        return self.value


class ATR:
    """Wilder's ATR as TA-Lib computes it: first value = SMA of the first n true ranges."""

    __slots__ = ("_n", "_prev_close", "_seed", "period", "value")

    def __init__(self, period: int = 14) -> None:
        self.period = period
        self._n = 0
        self._seed = 0.0
        self._prev_close = NAN
        self.value = NAN

    def update(self, high: float, low: float, close: float) -> float:
        if self._n > 0:
            pc = self._prev_close
            tr = max(high - low, abs(high - pc), abs(low - pc))
            if self._n <= self.period:
                self._seed += tr
                if self._n == self.period:
                    self.value = self._seed / self.period
            else:
                self.value = (self.value * (self.period - 1) + tr) / self.period
        self._n += 1
        self._prev_close = close
        return self.value


class ADX:
    """TA-Lib's ADX: DM/TR summed over n-1 bars, then Wilder-smoothed; ADX seeded by the
    mean of the first n DX values. First value at bar 2n-1."""

    __slots__ = (
        "_mdm",
        "_n",
        "_pc",
        "_pdm",
        "_ph",
        "_pl",
        "_sum_dx",
        "_tr",
        "minus_di",
        "period",
        "plus_di",
        "value",
    )

    def __init__(self, period: int = 14) -> None:
        self.period = period
        self._n = 0
        self._pdm = self._mdm = self._tr = self._sum_dx = 0.0
        self._ph = self._pl = self._pc = NAN
        self.value = self.plus_di = self.minus_di = NAN

    def update(self, high: float, low: float, close: float) -> float:
        n, p = self._n, self.period
        self._n += 1
        if n == 0:
            self._ph, self._pl, self._pc = high, low, close
            return self.value
        diff_p = high - self._ph
        diff_m = self._pl - low
        self._ph, self._pl = high, low
        tr = max(high - low, abs(high - self._pc), abs(low - self._pc))
        self._pc = close
        if n >= p:  # decay before adding, as TA-Lib does after the seed sums
            self._mdm -= self._mdm / p
            self._pdm -= self._pdm / p
        if diff_m > 0 and diff_p < diff_m:
            self._mdm += diff_m
        elif diff_p > 0 and diff_p > diff_m:
            self._pdm += diff_p
        self._tr = self._tr + tr if n < p else self._tr - self._tr / p + tr
        if n < p:
            return self.value
        dx = NAN
        if not _is_zero(self._tr):
            self.minus_di = 100.0 * (self._mdm / self._tr)
            self.plus_di = 100.0 * (self._pdm / self._tr)
            s = self.minus_di + self.plus_di
            if not _is_zero(s):
                dx = 100.0 * (abs(self.minus_di - self.plus_di) / s)
        if n < 2 * p - 1:
            if not math.isnan(dx):
                self._sum_dx += dx
        elif n == 2 * p - 1:
            if not math.isnan(dx):
                self._sum_dx += dx
            self.value = self._sum_dx / p
        elif not math.isnan(dx):
            self.value = (self.value * (p - 1) + dx) / p
        return self.value


class RSI:
    """TA-Lib RSI: average gain/loss seeded by the simple mean of the first n changes."""

    __slots__ = ("_gain", "_loss", "_n", "_prev", "period", "value")

    def __init__(self, period: int = 14) -> None:
        self.period = period
        self._n = 0
        self._gain = self._loss = 0.0
        self._prev = NAN
        self.value = NAN

    def update(self, x: float) -> float:
        n, p = self._n, self.period
        self._n += 1
        if n == 0:
            self._prev = x
            return self.value
        d = x - self._prev
        self._prev = x
        if n <= p:
            if d < 0:
                self._loss -= d
            else:
                self._gain += d
            if n < p:
                return self.value
            self._loss /= p
            self._gain /= p
        else:
            self._loss *= p - 1
            self._gain *= p - 1
            if d < 0:
                self._loss -= d
            else:
                self._gain += d
            self._loss /= p
            self._gain /= p
        total = self._gain + self._loss
        self.value = 100.0 * (self._gain / total) if not _is_zero(total) else 0.0
        return self.value


class RollingExtreme:
    """Rolling max (or min) over ``period`` values with a monotonic deque: O(1) amortised."""

    __slots__ = ("_dq", "_i", "_is_max", "period", "value")

    def __init__(self, period: int, is_max: bool) -> None:
        self.period = period
        self._is_max = is_max
        self._dq: deque[tuple[int, float]] = deque()
        self._i = 0
        self.value = NAN

    def update(self, x: float) -> float:
        dq, i = self._dq, self._i
        if self._is_max:
            while dq and dq[-1][1] <= x:
                dq.pop()
        else:
            while dq and dq[-1][1] >= x:
                dq.pop()
        dq.append((i, x))
        if dq[0][0] <= i - self.period:
            dq.popleft()
        self._i = i + 1
        if self._i >= self.period:
            self.value = dq[0][1]
        return self.value


class Donchian:
    """Donchian channel: highest high and lowest low of the last ``period`` bars."""

    __slots__ = ("_hi", "_lo", "lower", "middle", "upper")

    def __init__(self, period: int = 20) -> None:
        self._hi = RollingExtreme(period, is_max=True)
        self._lo = RollingExtreme(period, is_max=False)
        self.upper = self.lower = self.middle = NAN

    def update(self, high: float, low: float) -> tuple[float, float, float]:
        self.upper = self._hi.update(high)
        self.lower = self._lo.update(low)
        self.middle = (self.upper + self.lower) / 2.0
        return self.upper, self.middle, self.lower


class Bollinger:
    """SMA ± k population standard deviations, with TA-Lib's running-sum variance."""

    __slots__ = ("_buf", "_k", "_s1", "_s2", "lower", "middle", "period", "upper")

    def __init__(self, period: int = 20, k: float = 2.0) -> None:
        self.period = period
        self._k = k
        self._buf: deque[float] = deque()
        self._s1 = self._s2 = 0.0
        self.upper = self.middle = self.lower = NAN

    def update(self, x: float) -> tuple[float, float, float]:
        self._buf.append(x)
        self._s1 += x
        self._s2 += x * x
        if len(self._buf) > self.period:
            old = self._buf.popleft()
            self._s1 -= old
            self._s2 -= old * old
        if len(self._buf) == self.period:
            mean = self._s1 / self.period
            var = self._s2 / self.period - mean * mean
            sd = math.sqrt(var) if var > 0 else 0.0
            self.middle = mean
            self.upper = mean + self._k * sd
            self.lower = mean - self._k * sd
        return self.upper, self.middle, self.lower


class ParabolicSAR:
    """TA-Lib's SAR, including its start: direction from the minus-DM of the first two bars."""

    __slots__ = ("_acc", "_af", "_ep", "_long", "_max", "_n", "_nh", "_nl", "_sar", "value")

    def __init__(self, acceleration: float = 0.02, maximum: float = 0.2) -> None:
        self._acc = acceleration
        self._max = maximum
        self._af = acceleration
        self._n = 0
        self._long = True
        self._ep = self._sar = self._nh = self._nl = NAN
        self.value = NAN

    @property
    def is_long(self) -> bool:
        return self._long

    def update(self, high: float, low: float) -> float:
        n = self._n
        self._n += 1
        if n == 0:
            self._nh, self._nl = high, low
            return self.value
        if n == 1:
            diff_p = high - self._nh
            diff_m = self._nl - low
            minus_dm = diff_m if (diff_m > 0 and diff_p < diff_m) else 0.0
            self._long = not minus_dm > 0
            if self._long:
                self._ep, self._sar = high, self._nl
            else:
                self._ep, self._sar = low, self._nh
            self._nl, self._nh = low, high  # TA-Lib "cheats" the first iteration
        prev_low, prev_high = self._nl, self._nh
        self._nl, self._nh = low, high
        sar, ep, af = self._sar, self._ep, self._af
        if self._long:
            if low <= sar:
                self._long = False
                sar = max(ep, prev_high, high)
                self.value = sar
                af = self._acc
                ep = low
                sar = max(sar + af * (ep - sar), prev_high, high)
            else:
                self.value = sar
                if high > ep:
                    ep = high
                    af = min(af + self._acc, self._max)
                sar = min(sar + af * (ep - sar), prev_low, low)
        elif high >= sar:
            self._long = True
            sar = min(ep, prev_low, low)
            self.value = sar
            af = self._acc
            ep = high
            sar = min(sar + af * (ep - sar), prev_low, low)
        else:
            self.value = sar
            if low < ep:
                ep = low
                af = min(af + self._acc, self._max)
            sar = max(sar + af * (ep - sar), prev_high, high)
        self._sar, self._ep, self._af = sar, ep, af
        return self.value
