"""No-look-ahead check: every decision must be the same when the data stops at that bar.

A backtest computes indicators once over the whole history. If anything used a later bar,
a decision made at bar k would change when the data ends at k. The check runs the full
backtest, then re-runs it on data truncated at sampled bars k and requires the orders up to
k to be identical (same bar, side, type, quantity, prices).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from solbot.data.bars import BarArrays
from solbot.engine.strategy import Strategy
from solbot.runtime.backtest import BacktestConfig, run_backtest

Decision = tuple[int, str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class LookaheadReport:
    checkpoints: int
    decisions: int
    mismatch_at: int | None  # first truncation bar whose decisions differ
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.mismatch_at is None


def decisions(
    bars: BarArrays, make: Callable[[], Strategy], config: BacktestConfig | None = None
) -> list[Decision]:
    result = run_backtest(bars, make(), config)
    ts_index = {int(t): i for i, t in enumerate(bars.ts.tolist())}
    out = []
    for o in result.engine.portfolio.orders.values():
        i = ts_index.get(o.created_ts, -1)
        out.append(
            (
                i,
                o.side.value,
                o.type.value,
                str(o.quantity or o.quote_quantity),
                str(o.price),
                str(o.trigger_price),
            )
        )
    return out


def check_lookahead(
    bars: BarArrays,
    make: Callable[[], Strategy],
    checkpoints: int = 20,
    seed: int = 0,
    config: BacktestConfig | None = None,
) -> LookaheadReport:
    full = decisions(bars, make, config)
    rng = np.random.default_rng(seed)
    n = len(bars)
    ks = sorted(set(rng.integers(n // 10, n - 1, size=checkpoints).tolist()))
    for k in ks:
        truncated = decisions(bars.slice(0, k + 1), make, config)
        want = [d for d in full if d[0] <= k]
        if truncated != want:
            first = next(
                (i for i, (a, b) in enumerate(zip(truncated, want, strict=False)) if a != b),
                min(len(truncated), len(want)),
            )
            got = truncated[first] if first < len(truncated) else None
            exp = want[first] if first < len(want) else None
            return LookaheadReport(len(ks), len(full), k, f"decision {first}: {got} != {exp}")
    return LookaheadReport(len(ks), len(full), None)
