"""SIGKILL the *live* bot at random points while it trades against the exchange emulator;
restart it; no order may be lost or doubled and our books must equal the exchange's.

One emulator lives through all runs (the exchange does not crash with the bot). Its answers
are slowed by 30 ms, and 15 % of them come 0.6 s after the exchange did the work, so kills
often land between "intent on disk / request sent" and "answer stored" — the unknown-outcome
window that client-id lookups must settle. Each run is killed
either during start-up (often inside the start reconciliation) or at a random moment while
trading. Every restart must pass the start reconciliation (balances equal to the exchange's,
no foreign open order; else it exits 7 and the run fails). At the end a clean run stops with
cancel-on-stop and the whole database is compared with the exchange: every order of ours on
the exchange is in our database with its status and executed quantity, each client id was
used once, fills equal the exchange's trades by id, balances are equal.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.botproc import db_rows
from tests.integration.test_live_emulator import (
    BUSY_LADDER,
    Emulator,
    assert_books_equal,
    live_bot,
)

pytestmark = pytest.mark.integration
BOT_ENV = {
    "SOLBOT_RECONCILE_SECONDS": "0",
    "SOLBOT_STRATEGY_PARAMS": BUSY_LADDER,
    "SOLBOT_EXCHANGE_POLL_SECONDS": "0.1",  # every 1m bar (4 a second) is seen as the latest
}
RUNS = int(os.environ.get("LIVE_CRASH_TEST_RUNS", "5"))  # 50+: see docs/benchmarks.md


def test_live_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("LIVE_CRASH_TEST_SEED", "20261124")))
    # 15 % of answers come 0.6 s after the work was done: kills inside "sent, not yet answered"
    emu = Emulator(tmp_path, "latency=0.03,timeout=0.15,hang=0.6", speed=4)  # 4 bars a second
    home = tmp_path / "bot"
    home.mkdir()
    during_start = 0
    try:
        for i in range(RUNS):
            bot = live_bot(home, emu, **BOT_ENV)
            try:
                if rng.random() < 0.25:  # somewhere in start-up and the start reconciliation
                    during_start += 1
                    time.sleep(rng.uniform(0.5, 3.5))
                    assert bot.proc.poll() is None, f"run {i}: " + bot.output()[-2000:]
                else:
                    bot.wait_ready(40)
                    time.sleep(rng.uniform(0.2, 5.0))
                    assert bot.proc.poll() is None, f"run {i}: " + bot.output()[-2000:]
            finally:
                bot.signal(signal.SIGKILL)
                bot.kill_hard()
            assert bot.proc.returncode == -signal.SIGKILL, f"run {i}: " + bot.output()[-2000:]
            cids = Counter(o["clientOrderId"] for o in emu.state()["orders"])
            assert all(n == 1 for n in cids.values()), f"run {i}: client id used twice"
        final = live_bot(home, emu, **BOT_ENV, SOLBOT_CANCEL_ON_STOP="true")
        try:
            final.wait_ready(40)
            # short runs may all die before a fill: trade until there is one, so the final
            # comparison always covers fills (bounded)
            final.wait_until(
                lambda: db_rows(home, "select count(*) from fills")[0][0] > 0, 90, "a fill"
            )
            final.signal(signal.SIGTERM)
            code = final.wait_exit(30)
        finally:
            final.kill_hard()
        assert code == 0, final.output()[-3000:]
        st = assert_books_equal(home, emu)
        assert st["trades"], "the bot should have traded between the kills"
        unknown = db_rows(
            home, "select detail from audit_log where kind = 'unknown-outcome-resolved'"
        )
        found = sum('"on_exchange": true' in d for (d,) in unknown)
        print(
            f"\nlive crash test: {RUNS} kills ({during_start} during start-up), "
            f"{len(st['orders'])} orders and {len(st['trades'])} trades on the exchange; "
            f"{len(unknown)} orders of unknown outcome at restart ({found} found on the exchange, "
            f"{len(unknown) - found} never arrived); books equal"
        )
    finally:
        emu.stop()
