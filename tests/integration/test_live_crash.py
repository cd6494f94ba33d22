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

Random kills find the unknown-outcome window only now and then (2 in 50 kills), so two kills
are forced at exact points (``solbot.failpoints``): just before an order request goes
out (its intent is on disk: at the restart it must be found absent and not count as placed)
and just after the exchange answered it (the order rests at the exchange, the answer was never
stored: the restart must find it by client id and not send it again). The test requires that
both kinds occurred and were resolved.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.integration.botproc import db_rows
from tests.integration.test_live_emulator import (
    BUSY_LADDER,
    Emulator,
    assert_books_equal,
    live_bot,
)

pytestmark = pytest.mark.integration
MIN_SOL = 0.001  # SOL/USDT's LOT_SIZE minimum
MIN_NOTIONAL = 5.0  # its NOTIONAL filter's minNotional (domain/instruments.sol_usdt)
BOT_ENV = {
    "SOLBOT_RECONCILE_SECONDS": "0",
    "SOLBOT_STRATEGY_PARAMS": BUSY_LADDER,
    "SOLBOT_EXCHANGE_POLL_SECONDS": "0.1",  # every 1m bar (4 a second) is seen as the latest
}
RUNS = int(os.environ.get("LIVE_CRASH_TEST_RUNS", "2"))  # 50+: see docs/benchmarks.md
# the second order request dies just before it is sent; the third just after its answer
FORCED = tuple(os.environ.get("LIVE_CRASH_FORCED", "order-sending=2,order-answered=3").split(","))
# the regime switcher (the default until tsmom; it trades brackets every few bars, tsmom a
# tranche a day) with Binance's documented behaviour (lookup lag, BNB fees, our clock ahead of
# the exchange's): brackets as OCOs at the exchange, re-protected after each restart
DEFAULT_ENV = {
    "SOLBOT_RECONCILE_SECONDS": "2",
    "SOLBOT_STRATEGY": "solbot",
    "SOLBOT_STRATEGY_PARAMS": "{}",
    "SOLBOT_MAX_ORDER_VALUE": "20000",
    "SOLBOT_EXCHANGE_POLL_SECONDS": "0.1",
}
MODES = ("--behaviour", "clock=-2.5,lookup_lag=3,bnb=600", "--balances", "USDT=10000,SOL=0,BNB=1")


def test_live_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    # 15 % of answers come 0.6 s after the work was done: kills inside "sent, not yet answered"
    emu = Emulator(tmp_path, "latency=0.03,timeout=0.15,hang=0.6", speed=4)  # 4 bars a second
    _crash_runs(tmp_path, emu, BOT_ENV, "ladder")


def test_live_sigkill_with_the_default_strategy_and_binances_behaviour(tmp_path: Path) -> None:
    emu = Emulator(tmp_path, "latency=0.03,timeout=0.15,hang=0.6", 20, *MODES)
    _crash_runs(tmp_path, emu, DEFAULT_ENV, "solbot")


def unprotected(home: Path, emu: Emulator) -> bool:
    """Our position holds a part above the minimum (and worth the minimum notional) that no
    stop of ours resting at the exchange covers (an add to a protected position included)."""
    rows = db_rows(home, "select qty from positions where symbol = 'SOL/USDT'")
    held = float(rows[0][0]) if rows else 0.0
    state = emu.state()
    covered = sum(
        float(o["origQty"]) - float(o["executedQty"])
        for o in state["orders"]
        if o["status"] in ("NEW", "PARTIALLY_FILLED") and o["type"] == "STOP_LOSS_LIMIT"
    )
    left = held - covered
    return left >= MIN_SOL and left * float(state["last_price"]) >= MIN_NOTIONAL


def _crash_runs(tmp_path: Path, emu: Emulator, env: dict[str, str], name: str) -> None:
    rng = random.Random(int(os.environ.get("LIVE_CRASH_TEST_SEED", "20261124")))
    BOT_ENV = env  # noqa: N806
    unprotected_after_restart = 0
    positions_at_restart = 0
    why: list[str] = []
    home = tmp_path / "bot"
    home.mkdir()
    during_start = 0
    try:
        for point in FORCED:
            # the user data stream can report an order (by client id) before its answer is
            # read: then the kill after the answer leaves nothing unknown. Without the
            # stream for that run, the answer is the only news of the order.
            quiet = {"SOLBOT_EXCHANGE_USER_STREAM": "false"} if "answered" in point else {}
            bot = live_bot(home, emu, **{**BOT_ENV, **quiet}, SOLBOT_FAILPOINTS=point)
            try:
                bot.proc.wait(timeout=90)  # the failpoint kills it
            finally:
                bot.kill_hard()
            assert bot.proc.returncode == -signal.SIGKILL, f"{point}: " + bot.output()[-2000:]
        for i in range(RUNS):
            bot = live_bot(home, emu, **BOT_ENV)
            try:
                if rng.random() < 0.25:  # somewhere in start-up and the start reconciliation
                    during_start += 1
                    time.sleep(rng.uniform(0.5, 3.5))
                    assert bot.proc.poll() is None, f"run {i}: " + bot.output()[-2000:]
                else:
                    bot.wait_ready(40)
                    if name == "solbot":  # the start reconciliation has re-protected the position
                        time.sleep(1.5)
                        held = db_rows(home, "select qty from positions")
                        positions_at_restart += bool(held and float(held[0][0]) >= MIN_SOL)
                        # "re-protected within one reconciliation cycle": the start's OCO
                        # may still be on its way, or refused because the price passed its
                        # stop while the bot was down — then the position is sold at market
                        # (a run of 2026-12-02 checked just as that sell went out); give the
                        # outcome one cycle (SOLBOT_RECONCILE_SECONDS=2) and its requests' time
                        settle = time.monotonic() + 2.0 + 3.0
                        while unprotected(home, emu) and time.monotonic() < settle:
                            time.sleep(0.25)
                        if unprotected(home, emu):
                            unprotected_after_restart += 1
                            seen = [o for o in emu.state()["orders"] if o["status"] == "NEW"]
                            lines = bot.output().splitlines()
                            why.append(f"run {i}: open {seen}; " + " | ".join(lines[-25:]))
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
        for line in why:
            print(line)
        assert unprotected_after_restart == 0
        # the forced kills: one intent never sent, one answer never stored, both resolved
        assert found >= 1 and len(unknown) - found >= 1, (
            db_rows(home, "select order_id, detail from audit_log where kind like 'unknown%'"),
            db_rows(home, "select order_id, type, status, client_order_id, reason from orders"),
        )
        print(
            f"\nlive crash test ({name}): {RUNS} kills ({during_start} during start-up), "
            f"{positions_at_restart} restarts holding a position, {unprotected_after_restart} "
            "of them unprotected after the start reconciliation; "
            f"{len(st['orders'])} orders and {len(st['trades'])} trades on the exchange; "
            f"{len(unknown)} orders of unknown outcome at restart ({found} found on the exchange, "
            f"{len(unknown) - found} never arrived); books equal"
        )
    finally:
        emu.stop()


def test_a_restart_re_protects_a_position_whose_oco_ended_while_the_bot_was_down(
    tmp_path: Path,
) -> None:
    """SIGKILL while a bracket's OCO protects a position; the OCO is cancelled at the exchange
    while the bot is down; the restart's start reconciliation rests a new stop for the
    position (from the bracket's recorded plan) before the bot reports ready."""
    import ccxt

    from solbot.venues.clients import rebase
    from tests.integration.test_live_emulator import KEY, SECRET

    emu = Emulator(tmp_path, None, 20, *MODES)
    home = tmp_path / "bot"
    home.mkdir()
    env = {**DEFAULT_ENV, "SOLBOT_STRATEGY": "trend"}

    def protected_at_exchange() -> bool:
        return any(
            o["type"] == "STOP_LOSS_LIMIT" and o["status"] == "NEW" for o in emu.state()["orders"]
        )

    try:
        bot = live_bot(home, emu, **env)
        try:
            bot.wait_ready(60)
            for _ in range(5):  # trend may exit at the next bar: then wait for the next entry
                bot.wait_until(protected_at_exchange, 120, "a position protected by an OCO")
                httpx.post(f"{emu.url}/emulator/freeze", params={"on": "1"}, timeout=5)
                time.sleep(0.5)  # what the strategy sent on the last bar has gone out
                if protected_at_exchange():
                    break
                httpx.post(f"{emu.url}/emulator/freeze", params={"on": "0"}, timeout=5)
        finally:
            bot.signal(signal.SIGKILL)
            bot.kill_hard()
        assert protected_at_exchange()  # the market stands still: the position stays
        options = {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}
        ex = ccxt.binance({"apiKey": KEY, "secret": SECRET, "options": options})
        ex.urls["api"] = rebase(ex.urls["api"], emu.url)
        ex.options["fetchMargins"] = False
        ex.load_time_difference()  # the exchange's clock is 2.5 s behind ours
        ex.cancel_all_orders("SOL/USDT")  # the OCO ends while the bot is away
        assert unprotected(home, emu)
        again = live_bot(home, emu, **env)
        try:
            again.wait_ready(60)
            again.wait_until(lambda: not unprotected(home, emu), 5, "the position re-protected")
            audit = db_rows(home, "select kind from audit_log where kind = 're-protected'")
            assert audit, again.output()[-3000:]
            again.signal(signal.SIGTERM)
            assert again.wait_exit(30) == 0
        finally:
            again.kill_hard()
        assert_books_equal(home, emu)
    finally:
        emu.stop()
