"""Backtest throughput: the Donchian rule on 1,000,000 bars of tiled SOL/USDT 15m data.

Times, on the same bars and in one run:
  * solbot's event-driven engine (the code the live bot runs: orders, fills, Decimal books),
  * a plain numpy reference (vectorised signals and returns),
  * a pure-Python loop (rolling windows with deques, float cash),
  * backtesting.py and nautilus_trader, installed in the benchmark's own .venv-bench,
  * ``solbot backtest --no-report`` end to end on a Parquet file (load, run, write result).

Usage: python bench/backtest_speed.py [--bars N] [--skip-frameworks] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import deque
from decimal import Decimal
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tiled import load_rows, tile
from solbot.data.bars import BarArrays
from solbot.data.store import write_parquet
from solbot.runtime.backtest import BacktestConfig, run_backtest
from solbot.strategies.donchian import DonchianBreakout

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "binance" / "SOL_USDT-15m.json"
BENCH_VENV = ROOT / ".venv-bench"
N_IN, N_OUT = 20, 10
FEE, SLIP = 0.001, 0.0005
# Every implementation trades every signal with a fixed stake, so that losing streaks never
# shrink the account below the exchange minimum and the trade counts can be compared.
CASH, STAKE = 1_000_000_000, 1_000


def numpy_reference(t: dict[str, np.ndarray]) -> tuple[float, int]:
    t0 = time.perf_counter()
    h, lo, c, o = t["high"], t["low"], t["close"], t["open"]
    n = len(c)
    upper = np.full(n, np.nan)
    lower = np.full(n, np.nan)
    upper[N_IN:] = sliding_window_view(h, N_IN).max(axis=1)[:-1]
    lower[N_OUT:] = sliding_window_view(lo, N_OUT).min(axis=1)[:-1]
    signal = np.where(c > upper, 1.0, np.where(c < lower, 0.0, np.nan))
    idx = np.where(~np.isnan(signal), np.arange(n), 0)
    np.maximum.accumulate(idx, out=idx)
    state = np.nan_to_num(signal[idx])  # position after bar t's close (1 = long)
    change = np.diff(np.concatenate([[0.0], state]))
    entries = np.nonzero(change > 0)[0] + 1  # fill at next bar's open
    exits = np.nonzero(change < 0)[0] + 1
    entries = entries[entries < n]
    exits = exits[exits < n]
    k = min(len(entries), len(exits))
    gross = (o[exits[:k]] * (1 - SLIP)) / (o[entries[:k]] * (1 + SLIP))
    _ = float(np.prod(gross * (1 - FEE) ** 2))
    return time.perf_counter() - t0, k


def python_loop(t: dict[str, np.ndarray]) -> tuple[float, int]:
    h, lo, c, o = (t[k].tolist() for k in ("high", "low", "close", "open"))
    t0 = time.perf_counter()
    hi_q: deque[tuple[int, float]] = deque()
    lo_q: deque[tuple[int, float]] = deque()
    cash, qty, long, pending, trades = float(CASH), 0.0, False, 0, 0
    for i in range(len(c)):
        if pending:
            px = o[i]
            if pending > 0:
                px *= 1 + SLIP
                qty = STAKE / (px * (1 + FEE))
                cash -= STAKE
            else:
                px *= 1 - SLIP
                cash += qty * px * (1 - FEE)
                qty = 0.0
                trades += 1
            pending = 0
        if i >= N_IN and not long and c[i] > hi_q[0][1]:
            long, pending = True, 1
        elif long and i >= N_OUT and c[i] < lo_q[0][1]:
            long, pending = False, -1
        while hi_q and hi_q[-1][1] <= h[i]:
            hi_q.pop()
        hi_q.append((i, h[i]))
        if hi_q[0][0] <= i - N_IN:
            hi_q.popleft()
        while lo_q and lo_q[-1][1] >= lo[i]:
            lo_q.pop()
        lo_q.append((i, lo[i]))
        if lo_q[0][0] <= i - N_OUT:
            lo_q.popleft()
    return time.perf_counter() - t0, trades


def our_engine(t: dict[str, np.ndarray]) -> tuple[float, int]:
    bars = BarArrays(
        t["ts"], t["open"], t["high"], t["low"], t["close"], t["volume"], "SOL/USDT", "15m"
    )
    t0 = time.perf_counter()
    config = BacktestConfig(initial_cash=Decimal(CASH))
    result = run_backtest(bars, DonchianBreakout(stake=STAKE), config)
    return time.perf_counter() - t0, result.metrics.trades


def ensure_bench_venv() -> Path | None:
    py = BENCH_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    probe = subprocess.run(
        [str(py), "-c", "import backtesting, nautilus_trader, pandas"], capture_output=True
    )
    if probe.returncode != 0:
        print("installing backtesting.py and nautilus_trader into .venv-bench ...", flush=True)
        inst = subprocess.run(
            [
                str(py),
                "-m",
                "pip",
                "install",
                "-q",
                "backtesting>=0.6",
                "nautilus_trader>=1.200",
                "pandas",
                "numpy",
            ]
        )
        if inst.returncode != 0:
            return None
    return py


def framework(py: Path, which: str, npz: Path, n: int) -> tuple[float, int] | None:
    r = subprocess.run(
        [str(py), str(ROOT / "bench" / "_frameworks.py"), which, str(npz), str(n)],
        capture_output=True,
        text=True,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    if r.returncode != 0:
        print(f"{which} failed: {r.stderr.strip().splitlines()[-1:]}")
        return None
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return float(out["seconds"]), int(out["trades"])


def cli_end_to_end(parquet: Path) -> float:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        subprocess.run(
            [
                str(Path(sys.executable).parent / "solbot"),
                "backtest",
                "--data",
                str(parquet),
                "--strategy",
                "donchian",
                "--no-report",
                "--out",
                out,
                "--gaps",
                "error",
                "--cash",
                str(CASH),
                "--param",
                f"stake={STAKE}",
            ],
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--skip-frameworks", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"skipped: {DATA} is absent (real data lives in ../shared)")
    t = tile(load_rows(DATA), args.bars)
    n = args.bars
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; bars: {n:,} (SOL/USDT 15m tiled, detrended)"
    )
    rows: dict[str, tuple[float, int]] = {}
    rows["solbot engine"] = our_engine(t)
    rows["numpy reference"] = numpy_reference(t)
    rows["pure-Python loop"] = python_loop(t)
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "bars.npz"
        np.savez(npz, **t)
        parquet = Path(tmp) / "SOL_USDT-15m.parquet"
        write_parquet(
            BarArrays(
                t["ts"], t["open"], t["high"], t["low"], t["close"], t["volume"], "SOL/USDT", "15m"
            ),
            parquet,
        )
        e2e = cli_end_to_end(parquet)
        if not args.skip_frameworks:
            py = ensure_bench_venv()
            if py is None:
                print("could not install the reference frameworks; skipping them")
            else:
                for name, key in (
                    ("backtesting.py", "backtesting"),
                    ("nautilus_trader", "nautilus"),
                ):
                    got = framework(py, key, npz, n)
                    if got is not None:
                        rows[name] = got
    ours = n / rows["solbot engine"][0]
    print(f"\n{'implementation':<20} {'seconds':>9} {'bars/s':>12} {'trades':>7} {'ours is':>10}")
    for name, (secs, trades) in rows.items():
        rate = n / secs
        print(f"{name:<20} {secs:>9.2f} {rate:>12,.0f} {trades:>7} {ours / rate:>9.2f}x")
    print(
        f"\nsolbot backtest --no-report end to end (load Parquet, run, write result.json): "
        f"{e2e:.2f} s (target < 8 s)"
    )
    print(f"target >= 300,000 bars/s: {'met' if ours >= 300_000 else 'NOT met'} ({ours:,.0f})")
    for name, need in (("backtesting.py", 2.0), ("nautilus_trader", 10.0)):
        if name in rows:
            ratio = ours / (n / rows[name][0])
            print(
                f"target >= {need:g}x {name}: {'met' if ratio >= need else 'NOT met'} "
                f"({ratio:.1f}x)"
            )
    if args.json:
        args.json.write_text(json.dumps({"bars": n, "end_to_end_s": e2e, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
