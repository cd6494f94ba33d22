"""Build the benchmark's 1,000,000-bar series from the real SOL/USDT 15m data.

Each copy of the data is detrended in log space so that its last close equals its first
open; copies then join continuously and prices stay within the range of the original.
Shared by the benchmark driver and the reference-framework runner (numpy only).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

STEP_MS = 900_000
START_MS = 1_577_836_800_000  # 2020-01-01T00:00Z


def load_rows(path: Path) -> np.ndarray:
    return np.asarray(json.loads(path.read_text()), dtype=np.float64)


def tile(rows: np.ndarray, n_bars: int) -> dict[str, np.ndarray]:
    o, h, lo, c, v = (rows[:, i] for i in range(1, 6))
    n = len(rows)
    slope = (np.log(c[-1]) - np.log(o[0])) / (n - 1)
    factor = np.exp(-slope * np.arange(n))
    o, h, lo, c = (np.round(x * factor, 4) for x in (o, h, lo, c))
    h = np.maximum.reduce([h, o, c])
    lo = np.minimum.reduce([lo, o, c])
    reps = -(-n_bars // n)
    out = {
        "open": np.tile(o, reps)[:n_bars],
        "high": np.tile(h, reps)[:n_bars],
        "low": np.tile(lo, reps)[:n_bars],
        "close": np.tile(c, reps)[:n_bars],
        "volume": np.tile(v, reps)[:n_bars],
    }
    out["ts"] = START_MS + STEP_MS * np.arange(n_bars, dtype=np.int64)
    return out
