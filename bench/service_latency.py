"""Kill-switch and graceful-stop latency of the real bot process, and bar-in -> order-out
latency inside the engine.

* kill: a paper bot (ladder strategy, so orders rest on the book) is started; once it has a
  resting order the flag file is created; we time flag -> process exited, and check the
  database holds no open order afterwards.
* stop: the same with SIGTERM (what ``systemctl stop`` sends).
* bar -> order: in-process, the Donchian strategy on the synthetic market; time from
  ``engine.on_bar`` to the venue receiving the order, for every bar that sent one.

With ``--dashboards N`` every run first opens N dashboard event streams
(``/api/dashboard/stream``, as N open browser tabs) that stay open through the kill or stop.

Usage: python bench/service_latency.py [--runs N] [--dashboards N]
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.botproc import Bot  # noqa: E402

OPEN = "('submitted','accepted','partially_filled')"


def open_in_db(home: Path) -> int:
    con = sqlite3.connect(home / "data" / "solbot.sqlite")
    try:
        return int(con.execute(f"select count(*) from orders where status in {OPEN}").fetchone()[0])
    finally:
        con.close()


def watch(url: str, first: threading.Event) -> None:
    """One open dashboard: read the event stream until the bot closes it."""
    import httpx

    try:
        with httpx.stream("GET", url + "/api/dashboard/stream", timeout=30) as r:
            for _ in r.iter_lines():
                first.set()
    except httpx.HTTPError:
        pass


def exit_time(bot: Bot, t0: float, limit: float = 30.0) -> tuple[int, float]:
    """The exit code and the seconds from ``t0`` to the exit, read by a blocking waitpid
    (``Popen.wait(timeout=)`` polls at 50 ms steps, which quantised the figures)."""
    timer = threading.Timer(limit, bot.proc.kill)  # bounded: a hung bot is killed
    timer.start()
    try:
        code = bot.proc.wait()
        return code, time.perf_counter() - t0
    finally:
        timer.cancel()
        bot.log.close()


def one_run(how: str, dashboards: int = 0) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        bot = Bot(home, env={"SOLBOT_STRATEGY": "ladder"}, speed=40)
        try:
            bot.wait_ready()
            bot.wait_until(bot.open_orders, what="a resting order")
            for _ in range(dashboards):
                first = threading.Event()
                threading.Thread(target=watch, args=(bot.url, first), daemon=True).start()
                assert first.wait(10), "no dashboard update"
            t0 = time.perf_counter()
            if how == "kill":
                (home / "data" / "kill-switch.flag").touch()
            else:
                bot.signal(signal.SIGTERM)
            code, elapsed = exit_time(bot, t0)
        finally:
            bot.kill_hard()
        return elapsed, code, open_in_db(home)


def bar_to_order() -> tuple[np.ndarray, np.ndarray]:
    from solbot.data.synthetic import synthetic_market
    from solbot.runtime.backtest import BacktestConfig, build_engine
    from solbot.strategies.donchian import DonchianBreakout

    bars, _ = synthetic_market(bars=20_000, seed=3)
    engine, venue = build_engine(DonchianBreakout(), BacktestConfig(), bars.symbol)
    engine.start()  # live mode: incremental indicators, as the running bot
    sent: list[float] = []
    submit = venue.submit

    def timed_submit(order):  # type: ignore[no-untyped-def]
        sent.append(time.perf_counter())
        submit(order)

    venue.submit = timed_submit  # type: ignore[method-assign]
    to_order, every = [], []
    for bar in bars.bars():
        n = len(sent)
        t0 = time.perf_counter()
        engine.on_bar(bar)
        t1 = time.perf_counter()
        every.append(t1 - t0)
        if len(sent) > n:
            to_order.append(sent[n] - t0)
    return np.array(to_order), np.array(every)


def pct(xs: np.ndarray, q: float) -> float:
    return float(np.percentile(xs, q))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--dashboards", type=int, default=0, help="open event streams per run")
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {args.runs} runs each, "
        f"{args.dashboards} dashboard streams open"
    )
    for how, label, target in (
        ("kill", "kill flag -> orders cancelled -> exited", 1.0),
        ("stop", "SIGTERM -> orders cancelled -> exited 0", 2.0),
    ):
        times, bad = [], 0
        for _ in range(args.runs):
            elapsed, code, left = one_run(how, args.dashboards)
            times.append(elapsed)
            bad += int(code != (10 if how == "kill" else 0) or left != 0)
        xs = np.array(times) * 1000
        print(
            f"{label}: p50 {pct(xs, 50):.0f} ms, p99 {pct(xs, 99):.0f} ms, max {xs.max():.0f} "
            f"ms; wrong exit or open orders left: {bad}; target p99 < {target * 1000:.0f} ms: "
            f"{'met' if pct(xs, 99) < target * 1000 and bad == 0 else 'NOT met'}"
        )
    to_order, every = bar_to_order()
    print(
        f"engine bar -> order out (Donchian, live-mode indicators, {len(to_order)} orders): "
        f"p50 {pct(to_order, 50) * 1e6:.1f} us, p99 {pct(to_order, 99) * 1e6:.1f} us"
    )
    print(
        f"engine on_bar, every bar ({len(every)}): p50 {pct(every, 50) * 1e6:.1f} us, "
        f"p99 {pct(every, 99) * 1e6:.1f} us"
    )


if __name__ == "__main__":
    main()
