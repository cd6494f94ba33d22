"""Research for issue 18 (a default strategy worth money): does long-only time-series
momentum with volatility targeting hold up out of sample on SOL, BTC and ETH?

A vectorised prototype, not the engine: it decides once a day (at the first 1h bar after
the UTC daily close, so a decision uses closed days only), trades at that bar's open, and
pays 0.1 % per side plus 0.05 % slippage on every traded notional. Its figures choose the
rules; a shipped strategy must earn them again through the engine (``bench/strategy_eval.py``).

The rules, from the literature this builds on:
* Moskowitz, Ooi & Pedersen (2012), "Time series momentum": the sign of an asset's own past
  12-month (here: shorter, crypto's cycles) return predicts its next month; long-only here
  (spot): long when the average sign over several lookbacks is positive, flat otherwise.
* Moreira & Muir (2017), "Volatility-managed portfolios", and Harvey et al. (2018),
  "The impact of volatility targeting": size to a target volatility, ``weight = min(cap,
  target / realised)``: exposure falls as volatility rises, which also cuts crashes.
* A turnover budget: the position is changed only when the target weight moved by more than
  ``band`` (a share of equity), so costs stay a small part of gross profit.

Parameters are chosen on data before 2022-01-01 only (a small grid, the best by Sharpe on
BTC and ETH 2018-2021 and SOL 2020-2021 together), then 2022 (Jan - Oct) is out of sample,
and every calendar year is shown with the same fixed parameters beside buy & hold.

Usage: python bench/tsmom_research.py
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance"
COST = 0.001 + 0.0005  # per side: fee + slippage
DAY = 86_400_000
SPLIT = 1_640_995_200_000  # 2022-01-01T00:00Z


def load(symbol: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = np.array(json.loads((DATA / f"{symbol}_USDT-1h.json").read_text()), dtype=np.float64)
    return rows[:, 0].astype(np.int64), rows[:, 1], rows[:, 4]  # ts, open, close


def simulate(
    ts: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    lookbacks: tuple[int, ...],
    target: float,
    band: float,
    cap: float = 1.0,
) -> tuple[np.ndarray, float, int]:
    """(hourly equity from 1.0, costs paid as a share of the start, trades)."""
    day = ts // DAY
    first = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])  # first bar of each UTC day
    daily_close = close[first[1:] - 1]  # each finished day's last close
    n = len(close)
    w = 0.0
    trades = 0
    costs = 0.0
    decisions = {}
    longest = max(lookbacks)
    for k in range(longest + 31, len(daily_close)):
        past = daily_close[: k + 1]
        signal = np.mean([1.0 if past[-1] > past[-1 - L] else 0.0 for L in lookbacks])
        rets = np.diff(np.log(past[-31:]))
        vol = float(np.std(rets, ddof=1) * math.sqrt(365))
        want = min(cap, target / vol) * signal if vol > 0 else 0.0
        if abs(want - w) > band or (want == 0.0 and w > 0.0):
            decisions[int(first[k + 1])] = want  # traded at that day's first bar's open
            w = want
    # hourly equity: hold weight w of equity in the asset, rebalanced at the decision bars
    eq = np.empty(n)
    held, cash = 0.0, 1.0  # units of the asset; quote
    for i in range(n):
        if i in decisions:
            price = open_[i]
            equity = cash + held * price
            target_units = decisions[i] * equity / price
            traded = abs(target_units - held) * price
            cost = traded * COST
            cash -= (target_units - held) * price + cost
            held = target_units
            costs += cost
            trades += 1
        eq[i] = cash + held * close[i]
    return eq, costs, trades


def stats(eq: np.ndarray, ts: np.ndarray) -> dict[str, float]:
    day = ts // DAY
    last = np.flatnonzero(np.r_[day[1:] != day[:-1], True])
    d = eq[last]
    r = np.diff(d) / d[:-1]
    years = len(d) / 365
    sharpe = float(np.mean(r) / np.std(r, ddof=1) * math.sqrt(365)) if len(r) > 2 else 0.0
    peak = np.maximum.accumulate(d)
    return {
        "return": float(d[-1] / d[0] - 1),
        "cagr": float((d[-1] / d[0]) ** (1 / years) - 1) if years > 0 else 0.0,
        "sharpe": sharpe,
        "max_dd": float(np.max(1 - d / peak)),
    }


def window(a: np.ndarray, ts: np.ndarray, lo: int, hi: int) -> np.ndarray:
    m = (ts >= lo) & (ts < hi)
    return a[m]


def main() -> None:
    markets = {s: load(s) for s in ("SOL", "BTC", "ETH")}
    grid = list(itertools.product(
        [(20,), (60,), (20, 60), (20, 60, 120), (10, 30, 90)],
        [0.3, 0.5, 0.8],
        [0.1, 0.25],
    ))  # fmt: skip
    scored = []
    for lbs, target, band in grid:
        sharpes = []
        for ts, o, c in markets.values():
            eq, _, _ = simulate(ts, o, c, lbs, target, band)
            sharpes.append(stats(window(eq, ts, 0, SPLIT), window(ts, ts, 0, SPLIT))["sharpe"])
        scored.append((float(np.mean(sharpes)), lbs, target, band))
    scored.sort(reverse=True)
    best = scored[0]
    print(f"chosen on data before 2022: lookbacks {best[1]} days, target vol {best[2]:.0%}, "
          f"band {best[3]:.0%} (mean in-sample Sharpe {best[0]:.2f}); runner-up "
          f"{scored[1][1:]} ({scored[1][0]:.2f})")  # fmt: skip
    _, lbs, target, band = best
    print("| market | period | strategy return | Sharpe | max DD | trades | costs / gross profit "
          "| buy & hold return | Sharpe | max DD |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for sym, (ts, o, c) in markets.items():
        eq, costs, trades = simulate(ts, o, c, lbs, target, band)
        years = sorted({int(np.datetime64(int(t), "ms").astype("datetime64[Y]").astype(int)) + 1970
                        for t in ts})  # fmt: skip
        for label, lo, hi in [("2022 (out of sample)", SPLIT, 2**62)] + [
            (str(y), int(np.datetime64(f"{y}-01-01", "ms").astype(np.int64)),
             int(np.datetime64(f"{y + 1}-01-01", "ms").astype(np.int64))) for y in years
        ]:  # fmt: skip
            e, t = window(eq, ts, lo, hi), window(ts, ts, lo, hi)
            if len(e) < 24 * 30:
                continue
            bh = window(c, ts, lo, hi)
            s, b = stats(e, t), stats(bh, t)
            print(f"| {sym} | {label} | {s['return']:+.1%} | {s['sharpe']:.2f} | "
                  f"{s['max_dd']:.1%} | | | {b['return']:+.1%} | {b['sharpe']:.2f} | "
                  f"{b['max_dd']:.1%} |")  # fmt: skip
        whole = stats(eq, ts)
        gross = whole["return"] + costs  # what it made before paying fees and slippage
        share = f"{costs / gross:.1%}" if gross > 0 else "n/a"
        per_year = trades / (len(ts) / 24 / 365)
        print(f"| {sym} | whole | {whole['return']:+.1%} | "
              f"{whole['sharpe']:.2f} | {whole['max_dd']:.1%} | {trades} ({per_year:.0f}/yr) "
              f"| {share} | "
              f"{c[-1] / c[0] - 1:+.1%} | {stats(c, ts)['sharpe']:.2f} | "
              f"{stats(c, ts)['max_dd']:.1%} |")  # fmt: skip
    # every parameter +-20 % (lookbacks scaled together), Sharpe over the whole history
    print("\nsensitivity (whole-period Sharpe per market; chosen point first):")
    variants = [("chosen", lbs, target, band)]
    for f in (0.8, 1.2):
        variants += [
            (f"lookbacks x{f}", tuple(max(2, round(x * f)) for x in lbs), target, band),
            (f"target x{f}", lbs, target * f, band),
            (f"band x{f}", lbs, target, band * f),
        ]
    base = None
    for label, lb, tg, bd in variants:
        sh = [
            stats(simulate(ts, o, c, lb, tg, bd)[0], ts)["sharpe"] for ts, o, c in markets.values()
        ]
        base = base or sh
        worst = max(abs(a / b - 1) for a, b in zip(sh, base, strict=True))
        print(
            f"  {label:15s} " + "  ".join(f"{x:.2f}" for x in sh) + f"   (max change {worst:.0%})"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
