"""What several symbols cost the running bot, per bar: the paper service (engine, paper
venue, strategy, the account's daily-loss check and one SQLite transaction per bar) with 1
and with 3 symbols, in-process, on the same synthetic bars of each symbol's market.

Reference in the same run: the 1-symbol service. A sleeve is one more engine and one more
bar stream, so the per-bar cost should stay close to the single-symbol one; the account
check (equity over every sleeve) is the part that grows with the count.

Usage: python bench/multi_symbol.py [--bars N]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from solbot.bot import build_bot  # noqa: E402
from solbot.runtime.config import load_settings  # noqa: E402
from solbot.runtime.feeds import SyntheticFeed  # noqa: E402


def run(symbols: list[str], bars: int) -> tuple[np.ndarray, int, float]:
    with tempfile.TemporaryDirectory() as home:
        env = {"SOLBOT_SYMBOLS": ",".join(symbols), "SOLBOT_TIMEFRAME": "1h"}
        bot = build_bot(load_settings(Path(home), environ=env))
        bot.build()
        svc = bot.account
        streams = []
        for sl in svc.sleeves:
            feed = sl.feed()
            assert isinstance(feed, SyntheticFeed)
            data = feed.block(0, feed.start_price, feed.start_ms)
            streams.append((sl.symbol, list(data.bars())[:bars]))
        times = []
        t0 = time.perf_counter()
        for i in range(bars):  # the symbols' bars of one time step, one after another
            for sym, rows in streams:
                b0 = time.perf_counter()
                svc.on_bar(rows[i], symbol=sym)
                times.append(time.perf_counter() - b0)
        wall = time.perf_counter() - t0
        orders = len(svc.store.orders(limit=1_000_000))
        svc.store.close()
        return np.array(times) * 1000, orders, wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=3000, help="bars per symbol")
    args = ap.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    results = {}
    for symbols in (["SOL/USDT"], ["SOL/USDT", "BTC/USDT", "ETH/USDT"]):
        ms, orders, wall = run(symbols, args.bars)
        results[len(symbols)] = ms
        print(
            f"{len(symbols)} symbol(s): {len(ms)} bars in {wall:.2f} s, {orders} orders; per bar "
            f"p50 {np.percentile(ms, 50):.3f} ms, p99 {np.percentile(ms, 99):.3f} ms, "
            f"max {ms.max():.1f} ms"
        )
    one, three = results[1], results[3]
    p50 = np.percentile(three, 50) / np.percentile(one, 50)
    p99 = np.percentile(three, 99) / np.percentile(one, 99)
    print(f"ratio 3 symbols / 1 symbol per bar: p50 {p50:.2f}, p99 {p99:.2f}")


if __name__ == "__main__":
    main()
