"""Kill switch on a live venue: flag -> every order cancelled on the exchange -> exited.

Starts ``solbot emulator`` and ``solbot run --live`` (ladder strategy, real ccxt over
loopback), waits until the bot has an order resting on the exchange, creates
``data/kill-switch.flag`` and times until the process has exited; then checks the emulator
holds no open order. Repeats ``--runs`` times with a fresh bot home and reports p50/p99.

Usage: python bench/live_kill.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.test_live_emulator import Emulator, live_bot  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    times: list[float] = []
    left_open = 0
    with tempfile.TemporaryDirectory() as tmp:
        emu = Emulator(Path(tmp))
        try:
            for i in range(args.runs):
                home = Path(tmp) / f"bot{i}"
                home.mkdir()
                bot = live_bot(home, emu, "--accept-exchange-state")
                try:
                    bot.wait_ready(30)
                    bot.wait_until(bot.open_orders, 30, "a resting order")
                    t0 = time.monotonic()
                    (home / "data" / "kill-switch.flag").write_text("bench\n")
                    code = bot.wait_exit(30)
                    times.append(time.monotonic() - t0)
                finally:
                    bot.kill_hard()
                assert code == 10, code
                st = emu.state()
                left_open += sum(o["status"] in ("NEW", "PARTIALLY_FILLED") for o in st["orders"])
        finally:
            emu.stop()
    times.sort()
    p50 = times[len(times) // 2]
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(
        f"live kill: {len(times)} runs, flag -> exit p50 {p50 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms; "
        f"orders left open on the exchange: {left_open}"
    )


if __name__ == "__main__":
    main()
