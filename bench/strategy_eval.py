"""Walk-forward evaluation of every strategy on real SOL/USDT 1h data (Aug 2020 – Oct 2022).

For each strategy: rolling 3 months train (Optuna, ``--trials`` per window, objective
Sharpe − 2 × max drawdown) → 1 month test with the best parameters; only test months are
reported, chained into one out-of-sample equity curve; buy & hold over the same months; a
Monte Carlo over trade order (500 resamples). Prints a markdown table and writes a combined
chart (HTML, plotly inlined) to ``--out``.

Usage: python bench/strategy_eval.py [--trials 30] [--out docs/strategy-walk-forward.html]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "binance" / "SOL_USDT-1h.json"
# (label, strategy, fixed parameters)
STRATEGIES = (
    ("donchian", "donchian", {}),
    ("trend", "trend", {}),
    ("meanrev", "meanrev", {}),
    ("grid", "grid", {}),
    ("solbot", "solbot", {}),
    ("solbot, range_mode=grid", "solbot", {"range_mode": "grid"}),
    ("solbot, shortable market", "solbot", {"shortable": True}),
)


def pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:+.1%}"


def num(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "strategy-walk-forward.html")
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"skipped: {DATA} is absent")
    import plotly.graph_objects as go

    from solbot.data.importers import load_bars
    from solbot.domain.messages import ms_to_datetime
    from solbot.research.optimize import walk_forward

    bars = load_bars(DATA)
    fig = go.Figure()
    rows = []
    bh = None
    for name, strategy, given in STRATEGIES:
        t0 = time.perf_counter()
        fixed = dict(given)
        shortable = bool(fixed.pop("shortable", False))
        wf = walk_forward(
            bars, strategy, trials=args.trials, seed=0, fixed=fixed, shortable=shortable
        )
        took = time.perf_counter() - t0
        m, mc = wf.metrics, wf.monte_carlo
        rows.append(
            f"| {name} | {pct(m.total_return)} | {num(m.sharpe)} | "
            f"{pct(-m.max_drawdown)} | {num(m.profit_factor)} | {pct(m.win_rate)} | "
            f"{m.trades} | {m.exposure:.0%} | {pct(-mc.get('max_drawdown_es95', math.nan))}"
            f" | {took:.0f} s |"
        )
        x = [ms_to_datetime(int(t)) for t in wf.ts[::4]]
        fig.add_trace(go.Scattergl(x=x, y=wf.equity[::4], name=name))
        bh = wf
    assert bh is not None
    b = bh.buy_hold
    rows.append(
        f"| buy & hold | {pct(b.total_return)} | {num(b.sharpe)} | "
        f"{pct(-b.max_drawdown)} | n/a | n/a | 0 | 100% | n/a | |"
    )
    fig.add_trace(
        go.Scattergl(
            x=[ms_to_datetime(int(t)) for t in bh.ts[::4]],
            y=(10000 * bh.close / bh.close[0])[::4],
            name="buy & hold",
            line={"dash": "dot"},
        )
    )
    first, last = bh.windows[0].test[0], bh.windows[-1].test[1]
    fig.update_yaxes(type="log", title="equity (USDT, log)")
    fig.update_layout(
        template="plotly_dark",
        height=700,
        width=1300,
        title=f"SOL/USDT 1h walk-forward, out-of-sample only: {first} … {last} "
        f"({len(bh.windows)} test months, {args.trials} trials per window)",
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(args.out, include_plotlyjs=True, full_html=True)
    print(
        f"out-of-sample {first} … {last}, {len(bh.windows)} windows, trials/window {args.trials}\n"
    )
    print(
        "| strategy | return | Sharpe | max DD | profit factor | win rate | trades | exposure |"
        " MC max DD ES95 | time |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    print(f"\nchart: {args.out}")


if __name__ == "__main__":
    main()
