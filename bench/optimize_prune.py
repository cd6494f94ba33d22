"""``solbot optimize --prune``: what pruning saves and what it costs, in one run, on the same
real data, strategy and seeds.

* one study (in memory) of ``--study-trials`` trials, with and without pruning: seconds,
  trials pruned, the best objective found;
* walk-forward (``--walk-forward``), ``--trials`` per window, with and without pruning:
  seconds, and the out-of-sample result each gives (pruning may pick other parameters in a
  window: the test months say whether that mattered).

Usage: python bench/optimize_prune.py [--data FILE] [--strategy solbot] [--trials 30]
       [--study-trials 120]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import optuna  # noqa: E402

from solbot.data.importers import load_bars  # noqa: E402
from solbot.research.optimize import optimize, walk_forward  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/binance/SOL_USDT-1h.json"))
    ap.add_argument("--strategy", default="solbot")
    ap.add_argument("--trials", type=int, default=30, help="per walk-forward window")
    ap.add_argument("--study-trials", type=int, default=120)
    a = ap.parse_args()
    logging.getLogger("solbot").setLevel(logging.ERROR)
    bars = load_bars(a.data)
    print(f"{a.strategy} on {Path(a.data).name}: {len(bars):,} bars; {os.cpu_count()} cores, "
          f"{platform.python_implementation()} {platform.python_version()}")  # fmt: skip
    times = {}
    for prune in (False, True):
        t0 = time.perf_counter()
        _, best, study = optimize(bars, a.strategy, a.study_trials, seed=7, prune=prune)
        dt = times[("study", prune)] = time.perf_counter() - t0
        pruned = sum(t.state is optuna.trial.TrialState.PRUNED for t in study.trials)
        print(f"study, {a.study_trials} trials, prune={prune}: {dt:.1f} s, {pruned} pruned, "
              f"best objective {best:.3f}")  # fmt: skip
    print(f"study: pruning took {times[('study', True)] / times[('study', False)]:.2f}x the time")
    for prune in (False, True):
        t0 = time.perf_counter()
        wf = walk_forward(bars, a.strategy, trials=a.trials, seed=7, prune=prune)
        dt = times[("wf", prune)] = time.perf_counter() - t0
        m = wf.metrics
        print(f"walk-forward, {len(wf.windows)} windows x {a.trials} trials, prune={prune}: "
              f"{dt:.1f} s; out of sample: return {m.total_return:+.1%}, Sharpe {m.sharpe:.2f}, "
              f"max drawdown {m.max_drawdown:.1%}, {m.trades} trades")  # fmt: skip
    print(f"walk-forward: pruning took {times[('wf', True)] / times[('wf', False)]:.2f}x the time")


if __name__ == "__main__":
    main()
