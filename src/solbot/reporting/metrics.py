"""Performance statistics of an equity curve and a trade list (floats: statistics only)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from decimal import Decimal

import numpy as np

from solbot.data.bars import FloatArray
from solbot.reporting.trades import Trade

YEAR_MS = 365.25 * 86_400_000


@dataclass(frozen=True, slots=True)
class Metrics:
    total_return: float
    cagr: float
    sharpe: float
    sortino: float
    max_drawdown: float
    calmar: float
    profit_factor: float
    win_rate: float
    exposure: float
    trades: int
    fees_paid: str
    final_equity: str
    buy_and_hold_return: float

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for k, v in asdict(self).items():
            out[k] = None if isinstance(v, float) and not math.isfinite(v) else v
        return out


def drawdown(equity: FloatArray) -> FloatArray:
    peak = np.maximum.accumulate(equity)
    return np.asarray(1.0 - equity / peak, dtype=np.float64)


def compute_metrics(
    equity: FloatArray,
    close: FloatArray,
    exposure_mask: np.ndarray,
    trades: list[Trade],
    bar_ms: int,
    fees_paid: Decimal,
    final_equity: Decimal,
) -> Metrics:
    n = len(equity)
    if n < 2:
        nan = math.nan
        return Metrics(
            0.0, 0.0, nan, nan, 0.0, nan, nan, nan, 0.0, 0, str(fees_paid), str(final_equity), 0.0
        )
    total = float(equity[-1] / equity[0] - 1.0)
    years = n * bar_ms / YEAR_MS
    cagr = float((equity[-1] / equity[0]) ** (1.0 / years) - 1.0) if equity[-1] > 0 else -1.0
    rets = np.diff(equity) / equity[:-1]
    per_year = YEAR_MS / bar_ms
    sd = float(np.std(rets, ddof=1)) if len(rets) > 1 else 0.0
    mean = float(np.mean(rets))
    sharpe = mean / sd * math.sqrt(per_year) if sd > 0 else math.nan
    downside = float(np.sqrt(np.mean(np.minimum(rets, 0.0) ** 2)))
    sortino = mean / downside * math.sqrt(per_year) if downside > 0 else math.nan
    mdd = float(np.max(drawdown(equity)))
    calmar = cagr / mdd if mdd > 0 else math.nan
    closed = [t for t in trades if not t.is_open]
    wins = [float(t.pnl) for t in closed if t.pnl > 0]
    losses = [float(t.pnl) for t in closed if t.pnl <= 0]
    gross_loss = -sum(losses)
    profit_factor = sum(wins) / gross_loss if gross_loss > 0 else math.nan
    win_rate = len(wins) / len(closed) if closed else math.nan
    return Metrics(
        total_return=total,
        cagr=cagr,
        sharpe=sharpe,
        sortino=sortino,
        max_drawdown=mdd,
        calmar=calmar,
        profit_factor=profit_factor,
        win_rate=win_rate,
        exposure=float(np.mean(exposure_mask)),
        trades=len(closed),
        fees_paid=str(fees_paid),
        final_equity=str(final_equity),
        buy_and_hold_return=float(close[-1] / close[0] - 1.0),
    )
