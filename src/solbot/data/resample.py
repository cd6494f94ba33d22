"""Resample bars to a coarser timeframe (15m -> 1h -> 4h -> 1d)."""

from __future__ import annotations

import numpy as np

from solbot.data.bars import BarArrays, DataError, timeframe_ms


def resample(bars: BarArrays, timeframe: str, drop_incomplete_last: bool = True) -> BarArrays:
    src, dst = timeframe_ms(bars.timeframe), timeframe_ms(timeframe)
    if dst < src or dst % src:
        raise DataError(f"cannot resample {bars.timeframe} to {timeframe}: not a whole multiple")
    if len(bars) == 0:
        return bars
    bucket = bars.ts // dst
    starts = np.concatenate([[0], np.nonzero(np.diff(bucket))[0] + 1])
    ends = np.concatenate([starts[1:], [len(bars)]])
    # reduce over every bucket first: reduceat runs its last segment to the array's end, so
    # dropping the incomplete last bucket before would fold its bars into the one before
    high = np.maximum.reduceat(bars.high, starts)
    low = np.minimum.reduceat(bars.low, starts)
    volume = np.add.reduceat(bars.volume, starts)
    keep = len(starts)
    if drop_incomplete_last and keep:
        last_complete = bars.ts[-1] + src >= (bucket[-1] + 1) * dst
        if not last_complete:
            keep -= 1
    starts, ends = starts[:keep], ends[:keep]
    if not len(starts):
        raise DataError(f"not enough {bars.timeframe} bars for one {timeframe} bar")
    return BarArrays(
        ts=bucket[starts] * dst,
        open=bars.open[starts],
        high=high[:keep],
        low=low[:keep],
        close=bars.close[ends - 1],
        volume=volume[:keep],
        symbol=bars.symbol,
        timeframe=timeframe,
        meta=dict(bars.meta),
    )
