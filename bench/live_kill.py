"""Kill switch on a live venue: flag -> every order cancelled on the exchange -> exited.

Starts ``solbot emulator`` and ``solbot run --live`` (real ccxt over loopback), waits until
the bot has an order resting on the exchange — with ``--strategy trend`` (or ``solbot``) an
order list: a bracket's OCO of a STOP_LOSS_LIMIT and a LIMIT_MAKER — creates
``data/kill-switch.flag`` and times until the process has exited; then checks the emulator
holds no open order and no open order list. Repeats ``--runs`` times with a fresh bot home and
reports p50/p99. ``--behaviour`` passes the emulator's behaviour modes.

Usage: python bench/live_kill.py [--runs 20] [--strategy trend] [--behaviour lookup_lag=3]
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


def resting_list(emu: Emulator) -> bool:
    return any(o["orderListId"] != -1 and o["status"] == "NEW" for o in emu.state()["orders"])


def flatten(emu: Emulator) -> None:
    """Sell the account's SOL (real ccxt), so the next run's bot starts without a position."""
    import ccxt
    from tests.integration.test_live_emulator import KEY, SECRET

    from solbot.venues.clients import rebase

    options = {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}
    ex = ccxt.binance({"apiKey": KEY, "secret": SECRET, "options": options})
    ex.urls["api"] = rebase(ex.urls["api"], emu.url)
    ex.load_time_difference()  # with --behaviour clock=…, as the bot does
    sol = float(ex.fetch_balance()["total"].get("SOL") or 0)
    if sol < float(ex.market("SOL/USDT")["limits"]["amount"]["min"] or 0.001):
        return  # dust a fee left: no order could sell it
    amount = float(ex.amount_to_precision("SOL/USDT", sol))
    price = float(ex.public_get_ticker_price({"symbol": "SOLUSDT"})["price"])
    if amount * price > 5:
        ex.create_order("SOL/USDT", "market", "sell", amount)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--strategy", default="ladder")
    ap.add_argument("--behaviour", default="")
    args = ap.parse_args()
    lists = args.strategy != "ladder"
    extra = ("--behaviour", args.behaviour) if args.behaviour else ()
    env = {}
    if lists:
        env = {
            "SOLBOT_STRATEGY": args.strategy,
            "SOLBOT_STRATEGY_PARAMS": "{}",
            "SOLBOT_MAX_ORDER_VALUE": "20000",
            # the 1-minute synthetic market's losses would halt entries for a synthetic day:
            # this measures the kill switch, not the strategy
            "SOLBOT_DAILY_LOSS_LIMIT": "0.5",
        }
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    times: list[float] = []
    left_open = 0
    with tempfile.TemporaryDirectory() as tmp:
        emu = Emulator(Path(tmp), None, 20 if lists else 4, *extra)
        try:
            for i in range(args.runs):
                home = Path(tmp) / f"bot{i}"
                home.mkdir()
                bot = live_bot(home, emu, "--accept-exchange-state", **env)
                try:
                    bot.wait_ready(
                        90
                    )  # the previous runs may have used this minute's request weight
                    if lists:  # an OCO rests at the exchange
                        bot.wait_until(lambda: resting_list(emu), 300, "a resting order list")
                    else:
                        bot.wait_until(bot.open_orders, 30, "a resting order")
                    t0 = time.monotonic()
                    (home / "data" / "kill-switch.flag").write_text("bench\n")
                    code = bot.wait_exit(30)
                    times.append(time.monotonic() - t0)
                    print(f"run {i}: {times[-1] * 1000:.0f} ms", flush=True)
                    if times[-1] > 1.0:  # what the slow stop did, from the bot's own log
                        for line in bot.output().splitlines():
                            if line[:4].isdigit() and " solbot." in line and "INFO" not in line:
                                print("   ", line[11:200], flush=True)
                finally:
                    bot.kill_hard()
                assert code == 10, code
                st = emu.state()
                left_open += sum(o["status"] in ("NEW", "PARTIALLY_FILLED") for o in st["orders"])
                if lists:  # start each run flat: what this run bought is sold on the exchange
                    flatten(emu)
        finally:
            emu.stop()
    times.sort()
    p50 = times[len(times) // 2]
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(
        f"live kill: {len(times)} runs, flag -> exit p50 {p50 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms; "
        f"orders left open on the exchange: {left_open} ({args.strategy}"
        f"{', order lists resting' if lists else ''})"
    )


if __name__ == "__main__":
    main()
