"""``solbot optimize --jobs N``: trials per hour with 1 and 2 processes, in one run, on the
same data, strategy and seeds.

Two shapes of search:
  * walk-forward (``--walk-forward``): the windows' searches are independent, so ``--jobs``
    spreads windows over processes (the result is the same as with one job: checked here);
  * one study on SQLite: the processes share it, each with its share of the trials.

Usage: python bench/optimize_jobs.py [--data FILE] [--strategy trend] [--trials 30]
       [--study-trials 200] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from solbot.data.importers import load_bars  # noqa: E402
from solbot.research.optimize import optimize, walk_forward  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/binance/SOL_USDT-1h.json"))
    ap.add_argument("--strategy", default="trend")
    ap.add_argument("--trials", type=int, default=30, help="per walk-forward window")
    ap.add_argument("--study-trials", type=int, default=200)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    logging.getLogger("solbot").setLevel(logging.ERROR)  # the trials' own exits at market
    bars = load_bars(a.data)
    print(f"{a.strategy} on {Path(a.data).name}: {len(bars):,} bars; {os.cpu_count()} cores, "
          f"{platform.python_implementation()} {platform.python_version()}")  # fmt: skip
    out: dict[str, object] = {}

    wf_results = {}
    for jobs in (1, 2):
        t0 = time.perf_counter()
        wf = walk_forward(bars, a.strategy, trials=a.trials, seed=7, jobs=jobs)
        dt = time.perf_counter() - t0
        n = len(wf.windows) * a.trials
        wf_results[jobs] = wf
        out[f"walk_forward_jobs{jobs}"] = {"trials": n, "seconds": dt, "per_hour": n / dt * 3600}
        print(f"walk-forward, --jobs {jobs}: {n} trials in {dt:.1f} s = "
              f"{n / dt * 3600:,.0f} trials/hour")  # fmt: skip
    same = [w.params for w in wf_results[1].windows] == [w.params for w in wf_results[2].windows]
    ratio = out["walk_forward_jobs2"]["per_hour"] / out["walk_forward_jobs1"]["per_hour"]  # type: ignore[index]
    out["walk_forward_ratio"], out["walk_forward_same_result"] = ratio, same
    print(f"walk-forward: --jobs 2 / --jobs 1 = {ratio:.2f}x; same windows' parameters: {same}")

    with tempfile.TemporaryDirectory() as tmp:
        for jobs in (1, 2):
            url = f"sqlite:///{Path(tmp) / f'study{jobs}.sqlite'}"
            t0 = time.perf_counter()
            _, _, study = optimize(
                bars, a.strategy, a.study_trials, seed=7, storage=url, study_name="b",
                jobs=jobs,
            )  # fmt: skip
            dt = time.perf_counter() - t0
            n = len(study.trials)
            out[f"study_jobs{jobs}"] = {"trials": n, "seconds": dt, "per_hour": n / dt * 3600}
            print(f"one study on SQLite, --jobs {jobs}: {n} trials in {dt:.1f} s = "
                  f"{n / dt * 3600:,.0f} trials/hour")  # fmt: skip
    ratio = out["study_jobs2"]["per_hour"] / out["study_jobs1"]["per_hour"]  # type: ignore[index]
    out["study_ratio"] = ratio
    print(f"one study: --jobs 2 / --jobs 1 = {ratio:.2f}x (target >= 1.8x)")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
