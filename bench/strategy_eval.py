"""Out-of-sample evaluation of a strategy (the default: ``tsmom``) on real Binance data.

For each market (SOL, BTC, ETH) and bar size (1h, 4h) in ``../shared/data/binance``:

1. **Walk-forward**: rolling 3 months train (Optuna, ``--trials`` per window, objective
   Sharpe − 2 × max drawdown) → 1 month test with the best parameters; only test months are
   reported, chained into one equity curve (each test month is closed at its end: a
   round trip a month is charged that a live bot that keeps its position would not pay).
2. **Fixed parameters chosen before 2022**: the strategy's defaults (for ``tsmom`` chosen on
   data before 2022-01-01 by ``bench/tsmom_research.py``), one continuous run; the table
   shows 2022-01-01 … 2022-10 (out of sample) and, per calendar year, every year (years
   before 2022 are the ones the defaults were chosen on: *in sample*, marked so).
3. **Per calendar year** of the walk-forward (all out of sample), beside buy & hold.
4. **Monte Carlo** over the walk-forward's trade order (500 resamples): max drawdown p95
   and ES95, the 5th percentile of the bootstrapped return.
5. **Sensitivity**: every numeric parameter ±20 % around the defaults, the fixed run over
   the walk-forward's test span; the Sharpe beside the chosen point's.

Every run goes through the engine and the simulated exchange: 0.1 % taker fee per side plus
0.05 % slippage on market and stop fills. Costs as a share of gross profit = (fees +
slippage) / (net PnL + fees + slippage) of closed trades; slippage estimated as 0.05 % of
each trade's entry and exit notional (an upper bound: take-profit limits pay none).

Prints markdown tables; writes the equity charts (HTML, plotly inlined) to ``--out``.

Usage: python bench/strategy_eval.py [--strategy tsmom] [--trials 20] [--jobs 2]
       [--markets SOL,BTC,ETH] [--timeframes 1h,4h] [--compare donchian,trend,solbot]
       [--out runs/strategy-eval.html] [--no-sensitivity]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "binance"
SPLIT = int(datetime(2022, 1, 1, tzinfo=UTC).timestamp() * 1000)
SLIPPAGE = 0.0005
YEAR_MS = 365.25 * 86_400_000


def pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:+.1%}"


def dd(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.1%}"


def num(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.2f}"


@dataclass
class Row:
    """One line of a table: a strategy's (or buy & hold's) figures over a span."""

    label: str
    ret: float
    cagr: float
    sharpe: float
    sortino: float
    mdd: float
    pf: float
    exposure: float
    round_trips: int
    per_year: float
    cost_share: float

    def cells(self) -> str:
        cost = "n/a" if not math.isfinite(self.cost_share) else f"{self.cost_share:.0%}"
        if self.cost_share < 0:
            cost = "> 100 % (a net loss)"
        return (
            f"| {self.label} | {pct(self.ret)} | {pct(self.cagr)} | {num(self.sharpe)} | "
            f"{num(self.sortino)} | {dd(self.mdd)} | {num(self.pf)} | {self.exposure:.0%} | "
            f"{self.round_trips} ({self.per_year:.0f}/yr) | {cost} |"
        )


HEADER = (
    "| | return | CAGR | Sharpe | Sortino | max DD | profit factor | exposure |"
    " round trips | costs / gross profit |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def row(
    label: str,
    ts: np.ndarray,
    equity: np.ndarray,
    close: np.ndarray,
    position: np.ndarray | None,
    trades: list[Any],
    bar_ms: int,
) -> Row:
    from solbot.reporting.metrics import compute_metrics

    exposure = np.ones(len(close), bool) if position is None else position != 0
    m = compute_metrics(equity, close, exposure, trades, bar_ms, Decimal(0), Decimal(0))
    closed = [t for t in trades if not t.is_open]
    costs = sum(
        float(t.fees)
        + SLIPPAGE * float(t.quantity) * (float(t.entry_price) + float(t.exit_price or 0))
        for t in closed
    )
    net = sum(float(t.pnl) for t in closed)
    gross = net + costs
    share = costs / gross if gross > 0 else (-1.0 if closed else math.nan)
    years = len(ts) * bar_ms / YEAR_MS
    return Row(
        label,
        m.total_return,
        m.cagr,
        m.sharpe,
        m.sortino,
        m.max_drawdown,
        m.profit_factor if position is not None else math.nan,
        m.exposure,
        len(closed),
        len(closed) / years if years > 0 else 0.0,
        share,
    )


def span(ts: np.ndarray, lo: int, hi: int) -> slice:
    a, b = int(np.searchsorted(ts, lo)), int(np.searchsorted(ts, hi))
    return slice(a, b)


def years_of(ts: np.ndarray) -> list[int]:
    first = datetime.fromtimestamp(int(ts[0]) / 1000, UTC).year
    last = datetime.fromtimestamp(int(ts[-1]) / 1000, UTC).year
    return list(range(first, last + 1))


def year_ms(y: int) -> tuple[int, int]:
    lo = int(datetime(y, 1, 1, tzinfo=UTC).timestamp() * 1000)
    return lo, int(datetime(y + 1, 1, 1, tzinfo=UTC).timestamp() * 1000)


def in_span(trades: list[Any], lo: int, hi: int) -> list[Any]:
    """Trades that closed within [lo, hi)."""
    return [t for t in trades if t.exit_ts is not None and lo <= t.exit_ts < hi]


def bh_equity(close: np.ndarray) -> np.ndarray:
    return np.asarray(10000.0 * close / close[0])


def fixed_run(bars: Any, strategy: str, params: dict[str, Any]) -> Any:
    from solbot.runtime.backtest import run_backtest
    from solbot.strategies import create

    return run_backtest(bars, create(strategy, **params), close_at_end=True)


def sensitivity(bars: Any, strategy: str, lo: int) -> list[str]:
    """Every numeric parameter ±20 % around the default; the Sharpe from ``lo`` on."""
    from solbot.reporting.metrics import compute_metrics
    from solbot.strategies import resolve

    declared = resolve(strategy).parameters
    k = int(np.searchsorted(bars.ts, lo))
    bar_ms = int(bars.ts[1] - bars.ts[0])

    def sharpe(params: dict[str, Any]) -> float:
        res = fixed_run(bars, strategy, params)
        eq = res.equity[k:]
        m = compute_metrics(
            eq, bars.close[k:], res.position[k:] != 0, [], bar_ms, Decimal(0), Decimal(0)
        )
        return float(m.sharpe)

    base = sharpe({})
    out = [f"| chosen point (defaults) | | {num(base)} | |"]
    worst = 0.0
    for name, p in declared.items():
        if p.kind not in ("int", "float"):
            continue
        for f in (0.8, 1.2):
            v: Any = p.default * f
            v = round(v) if p.kind == "int" else float(v)
            if (
                v == p.default
                or (p.low is not None and v < p.low)
                or (p.high is not None and v > p.high)
            ):
                out.append(f"| {name} × {f} | {v:g} | outside its range | |")
                continue
            try:
                s = sharpe({name: v})
            except ValueError as exc:
                out.append(f"| {name} × {f} | {v} | refused: {exc} | |")
                continue
            change = s / base - 1 if base else math.nan
            worst = max(worst, abs(change)) if math.isfinite(change) else worst
            out.append(f"| {name} × {f} | {v:g} | {num(s)} | {change:+.0%} |")
    out.append(f"| **largest change** | | | **{worst:.0%}** |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--strategy", default="tsmom")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--markets", default="SOL,BTC,ETH")
    ap.add_argument("--timeframes", default="1h,4h")
    ap.add_argument("--compare", default="", help="other strategies, walk-forward only")
    ap.add_argument("--no-sensitivity", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "strategy-eval.html")
    args = ap.parse_args()
    import logging

    logging.disable(logging.WARNING)  # the engine's per-order notices ("stop at market")
    if not DATA.exists():
        sys.exit(f"skipped: {DATA} is absent")
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from solbot.data.bars import timeframe_ms
    from solbot.data.importers import load_bars
    from solbot.domain.messages import ms_to_datetime
    from solbot.research.optimize import walk_forward

    markets = [m.strip() for m in args.markets.split(",") if m.strip()]
    tfs = [t.strip() for t in args.timeframes.split(",") if t.strip()]
    combos = [(m, t) for m in markets for t in tfs if (DATA / f"{m}_USDT-{t}.json").exists()]
    fig = make_subplots(
        rows=len(combos), cols=1, subplot_titles=[f"{m}/USDT {t}" for m, t in combos]
    )
    sections: list[str] = []
    t_all = time.perf_counter()
    for i, (market, tf) in enumerate(combos, start=1):
        bars = load_bars(DATA / f"{market}_USDT-{tf}.json")
        bar_ms = timeframe_ms(tf)
        t0 = time.perf_counter()
        wf = walk_forward(bars, args.strategy, trials=args.trials, seed=0, jobs=args.jobs)
        took = time.perf_counter() - t0
        first, last = wf.windows[0].test[0], wf.windows[-1].test[1]
        lines = [
            f"### {market}/USDT {tf}\n",
            f"Walk-forward, out of sample only: {first} … {last} ({len(wf.windows)} test "
            f"months, {args.trials} trials a window, {took:.0f} s).\n",
            HEADER,
        ]
        lines.append(
            row(args.strategy, wf.ts, wf.equity, wf.close, wf.position, wf.trades, bar_ms).cells()
        )
        for other in [s.strip() for s in args.compare.split(",") if s.strip()]:
            ow = walk_forward(bars, other, trials=args.trials, seed=0, jobs=args.jobs)
            lines.append(
                row(other, ow.ts, ow.equity, ow.close, ow.position, ow.trades, bar_ms).cells()
            )
        lines.append(
            row("buy & hold", wf.ts, bh_equity(wf.close), wf.close, None, [], bar_ms).cells()
        )
        mc = wf.monte_carlo
        lines.append(
            f"\nMonte Carlo over trade order ({mc.get('resamples', 0):.0f} resamples): max "
            f"drawdown p50 {dd(mc.get('max_drawdown_p50', math.nan))}, p95 "
            f"{dd(mc.get('max_drawdown_p95', math.nan))}, ES95 "
            f"{dd(mc.get('max_drawdown_es95', math.nan))}; bootstrapped return p5 "
            f"{pct(mc.get('return_p5', math.nan))}.\n"
        )
        # per calendar year of the walk-forward (all out of sample)
        lines += ["Per calendar year, walk-forward (out of sample):\n", HEADER]
        for y in years_of(wf.ts):
            lo, hi = year_ms(y)
            s = span(wf.ts, lo, hi)
            if s.stop - s.start < 2:
                continue
            eq, cl = wf.equity[s], wf.close[s]
            lines.append(
                row(
                    f"{y} {args.strategy}",
                    wf.ts[s],
                    eq,
                    cl,
                    wf.position[s],
                    in_span(wf.trades, lo, hi),
                    bar_ms,
                ).cells()
            )
            lines.append(
                row(f"{y} buy & hold", wf.ts[s], bh_equity(cl), cl, None, [], bar_ms).cells()
            )
        # the fixed run: the defaults, chosen on data before 2022
        res = fixed_run(bars, args.strategy, {})
        filled = Counter(
            o.tag or o.type.value
            for o in res.engine.portfolio.orders.values()
            if o.filled_qty > 0 and o.side.value == "sell"
        )
        lines += [
            "\nFixed parameters (the defaults, chosen on data before 2022), one continuous run; "
            "its sells by tag (whole history): "
            + ", ".join(f"{tag} {n}" for tag, n in filled.most_common())
            + "\n",
            HEADER,
        ]
        for y in years_of(bars.ts):  # 2022 is the data's last year: Jan - Oct, out of sample
            lo, hi = year_ms(y)
            s = span(bars.ts, lo, hi)
            if s.stop - s.start < 2:
                continue
            tag = f"{y} (in sample)" if lo < SPLIT else f"{y} (out of sample)"
            cl = bars.close[s]
            eq = res.equity[s]
            lines.append(
                row(
                    f"{tag} {args.strategy}",
                    bars.ts[s],
                    eq,
                    cl,
                    res.position[s],
                    in_span(res.trades, lo, hi),
                    bar_ms,
                ).cells()
            )
            lines.append(
                row(f"{tag} buy & hold", bars.ts[s], bh_equity(cl), cl, None, [], bar_ms).cells()
            )
        if not args.no_sensitivity:
            lo = int(wf.ts[0])
            lines += [
                f"\nSensitivity (fixed run over the walk-forward's span, {first} … "
                f"{last}): Sharpe with one parameter moved ±20 %\n",
                "| parameter | value | Sharpe | change |",
                "|---|---:|---:|---:|",
            ]
            lines += sensitivity(bars, args.strategy, lo)
        sections.append("\n".join(lines))
        print(sections[-1] + "\n", flush=True)
        step = max(1, len(wf.ts) // 3000)
        x = [ms_to_datetime(int(t)) for t in wf.ts[::step]]
        k = int(np.searchsorted(bars.ts, wf.ts[0]))
        fx = res.equity[k:] / res.equity[k] * 10000.0
        series = (
            ("walk-forward (out of sample)", wf.equity[::step], "#4c9be8", "solid"),
            ("fixed defaults (in sample before 2022)", fx[::step][: len(x)], "#f0a030", "solid"),
            ("buy & hold", bh_equity(wf.close)[::step], "#aaaaaa", "dot"),
        )
        for name, y, colour, dash in series:
            fig.add_trace(
                go.Scattergl(
                    x=x, y=y, name=name, legendgroup=name, showlegend=i == 1,
                    line={"color": colour, "dash": dash},
                ),
                row=i,
                col=1,
            )  # fmt: skip
    fig.update_yaxes(type="log")
    fig.update_layout(
        template="plotly_dark",
        height=380 * len(combos),
        width=1300,
        title=f"{args.strategy}: out-of-sample equity (USDT, log) beside buy & hold",
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(args.out, include_plotlyjs=True, full_html=True)
    print(f"chart: {args.out}\ntotal {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
