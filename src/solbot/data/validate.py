"""OHLCV validation with one-line errors that name the first offending bar."""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from solbot.data.bars import BarArrays, DataError, timeframe_ms
from solbot.domain.messages import ms_to_datetime


class GapPolicy(StrEnum):
    """Real exchange data has gaps (exchange outages); inventing bars would invent prices."""

    ERROR = "error"
    WARN = "warn"
    ALLOW = "allow"


def _at(a: BarArrays, i: int) -> str:
    """Row ``i`` as a person counts rows (the first is 1), with its time."""
    return f"row {i + 1} ({ms_to_datetime(int(a.ts[i])).isoformat()})"


def find_gaps(a: BarArrays) -> list[tuple[int, int]]:
    """(index before the gap, number of missing bars) for every gap."""
    step = timeframe_ms(a.timeframe)
    d = np.diff(a.ts)
    where = np.nonzero(d > step)[0]
    return [(int(i), int(d[i] // step) - 1) for i in where]


def validate(a: BarArrays, gaps: GapPolicy = GapPolicy.WARN) -> list[str]:
    """Raise ``DataError`` on unusable data; return warnings (gaps) otherwise."""
    n = len(a)
    if n == 0:
        raise DataError("no bars")
    cols = {"open": a.open, "high": a.high, "low": a.low, "close": a.close, "volume": a.volume}
    for name, col in cols.items():
        bad = np.nonzero(~np.isfinite(col))[0]
        if bad.size:
            raise DataError(f"{name} is NaN or infinite at {_at(a, int(bad[0]))}")
    for name in ("open", "high", "low", "close"):
        bad = np.nonzero(cols[name] <= 0)[0]
        if bad.size:
            raise DataError(f"non-positive {name} at {_at(a, int(bad[0]))}")
    bad = np.nonzero(a.volume < 0)[0]
    if bad.size:
        raise DataError(f"negative volume at {_at(a, int(bad[0]))}")
    bad = np.nonzero(a.high < a.low)[0]
    if bad.size:
        raise DataError(f"high < low at {_at(a, int(bad[0]))}")
    outside = (a.open > a.high) | (a.open < a.low) | (a.close > a.high) | (a.close < a.low)
    bad = np.nonzero(outside)[0]
    if bad.size:
        raise DataError(f"open or close outside [low, high] at {_at(a, int(bad[0]))}")
    d = np.diff(a.ts)
    bad = np.nonzero(d == 0)[0]
    if bad.size:
        raise DataError(f"duplicate timestamp at {_at(a, int(bad[0]) + 1)}")
    bad = np.nonzero(d < 0)[0]
    if bad.size:
        raise DataError(f"timestamps go backwards at {_at(a, int(bad[0]) + 1)}")
    step = timeframe_ms(a.timeframe)
    bad = np.nonzero(a.ts % step != 0)[0] if step <= 86_400_000 else np.array([], dtype=int)
    if bad.size:
        raise DataError(f"timestamp not aligned to {a.timeframe} at {_at(a, int(bad[0]))}")
    bad = np.nonzero(d % step != 0)[0]
    if bad.size:
        raise DataError(f"spacing is not a multiple of {a.timeframe} at {_at(a, int(bad[0]) + 1)}")
    found = find_gaps(a)
    if not found:
        return []
    missing = sum(m for _, m in found)
    i, m = found[0]
    msg = f"{len(found)} gap(s), {missing} missing bar(s); first after {_at(a, i)}: {m} bar(s)"
    if gaps is GapPolicy.ERROR:
        raise DataError(msg)
    return [msg] if gaps is GapPolicy.WARN else []
