"""HTTP API throughput while the bot trades, and what the load does to trading latency.

Starts a paper bot (ladder strategy: orders rest and fill all the time, every bar is
persisted) at 20 bars/s, measures its bar-processing latency idle, then loads
``/api/status`` and ``/metrics`` with wrk (Debian package ``wrk``) on loopback for a bounded
time each and reads the bar-processing latency again.

Usage: python bench/api_load.py [--seconds 15] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.botproc import Bot  # noqa: E402

SPEED = 20.0


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for q in ("50", "90", "99"):
        m = re.search(rf"\s{q}%\s+([\d.]+)(us|ms|s)", out)
        if m:
            v = float(m.group(1))
            res[f"p{q}_ms"] = (
                v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
            )
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = float(errors.group(1)) if errors else 0.0
    return res


def perf(bot: Bot, seconds: float) -> dict[str, float]:
    return dict(bot.get("/api/perf", params={"last": int(seconds * SPEED)}).json())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("skipped: wrk is not installed (apt-get install wrk)")
        return
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores (wrk and the bot share them),"
        f" Python {platform.python_version()}; wrk -t1 -c{args.connections} "
        f"-d{args.seconds}s; bot trading at {SPEED:g} bars/s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        bot = Bot(Path(tmp), env={"SOLBOT_STRATEGY": "ladder"}, speed=SPEED)
        try:
            bot.wait_ready()
            time.sleep(args.seconds)
            idle = perf(bot, args.seconds)
            rows = {}
            for path in ("/api/status", "/metrics"):
                rows[path] = wrk(bot.url + path, args.seconds, args.connections)
                rows[path]["trade_p99"] = perf(bot, args.seconds)["p99_ms"]
            fills = bot.metric("solbot_fills_total")
        finally:
            bot.signal(signal.SIGTERM)
            bot.wait_exit()
    print(
        f"\nidle: bar processing p50 {idle['p50_ms']:.2f} ms, p99 {idle['p99_ms']:.2f} ms "
        f"({idle['bars']} bars); fills during the run: {fills:.0f}"
    )
    print(
        f"\n{'endpoint':<12} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'non-2xx':>8} "
        f"{'bar p99 ms':>11} {'vs idle':>8}"
    )
    for path, r in rows.items():
        ratio = r["trade_p99"] / idle["p99_ms"] if idle["p99_ms"] else float("nan")
        print(
            f"{path:<12} {r['rps']:>8,.0f} {r.get('p50_ms', 0):>7.2f} {r.get('p99_ms', 0):>7.2f}"
            f" {r['non2xx']:>8.0f} {r['trade_p99']:>11.2f} {ratio:>7.2f}x"
        )
        ok = r["rps"] >= 2000 and r.get("p99_ms", 1e9) < 20 and ratio <= 2.0
        print(
            f"  target >= 2,000 req/s, p99 < 20 ms, trading p99 <= 2x idle: "
            f"{'met' if ok else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
