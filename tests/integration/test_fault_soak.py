"""Fault soak: the live bot trades against the emulator while 20 % of its exchange calls fail
(429 with Retry-After, 500, answers that time out after the work was done, dropped answers
with -1007), and the exchange bans the bot's IP (418) twice. Bounded in time
(``FAULT_SOAK_SECONDS``, 40 s by default; the 5-minute run is in docs/benchmarks.md).

It must show: the bot keeps running and trading between bans; every ban it meets halts new orders
(trading state HALTED, no order submitted until the ban is over, then ACTIVE again); the
errors are counted in ``/metrics``; the periodic reconciliation never fails; after a clean
stop no order was duplicated and our books equal the exchange's.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.botproc import db_rows
from tests.integration.test_live_emulator import (
    FAULTY_ENV,
    Emulator,
    assert_books_equal,
    live_bot,
)

pytestmark = pytest.mark.integration
SOAK = float(os.environ.get("FAULT_SOAK_SECONDS", "40"))
# FAULT_SOAK_STRATEGY=solbot FAULT_SOAK_BEHAVIOUR=clock=-2.5,lookup_lag=3,bnb=600: the default
# strategy with Binance's documented behaviour (the 300 s run in docs/benchmarks.md)
STRATEGY = os.environ.get("FAULT_SOAK_STRATEGY", "ladder")
BEHAVIOUR = os.environ.get("FAULT_SOAK_BEHAVIOUR", "")
FAULTS = "429=0.06,500=0.05,timeout=0.03,drop=0.06,hang=1.2,retry_after=1,seed=11"  # 20 %
BAN_SECONDS = 4.0


def test_fault_soak_20_percent_failures_and_bans(tmp_path: Path) -> None:
    extra = ("--behaviour", BEHAVIOUR, "--balances", "USDT=10000,SOL=0,BNB=1") if BEHAVIOUR else ()
    emu = Emulator(tmp_path, FAULTS, 4 if STRATEGY == "ladder" else 20, *extra)
    try:
        _soak(tmp_path, emu)
    finally:
        emu.stop()


def _soak(tmp_path: Path, emu: Emulator) -> None:
    home = tmp_path / "bot"
    home.mkdir()
    env = dict(FAULTY_ENV)
    if STRATEGY != "ladder":
        env.update(SOLBOT_STRATEGY=STRATEGY, SOLBOT_STRATEGY_PARAMS="{}")
        env.update(SOLBOT_MAX_ORDER_VALUE="20000")
    bot = live_bot(home, emu, **env, SOLBOT_RECONCILE_SECONDS="2")
    bans: list[float] = []
    halted_seen: list[str] = []
    try:
        bot.wait_ready(60)
        start = time.monotonic()
        ban_due = [start + SOAK / 3, start + 2 * SOAK / 3]
        while time.monotonic() < start + SOAK:
            assert bot.proc.poll() is None, bot.output()[-3000:]
            if ban_due and time.monotonic() >= ban_due[0]:
                ban_due.pop(0)
                httpx.post(f"{emu.url}/emulator/ban", params={"seconds": BAN_SECONDS}, timeout=5)
                bans.append(time.monotonic())
            st = bot.get("/api/status").json()
            if st["trading_state"] == "HALTED":
                halted_seen.append(st["trading_state_reason"])
            time.sleep(0.25)
        # trading again after the last ban (it ended well before the soak did)
        st = bot.get("/api/status").json()
        assert st["trading_state"] == "ACTIVE", st["trading_state_reason"]
        errors = {
            kind: bot.metric(f'solbot_venue_errors_total{{kind="{kind}"}}')
            for kind in ("rate_limited", "unknown", "banned")
        }
        # a check is conclusive only with nothing in flight: under 20 % faults most are not
        # (about a third are ok over 3-5 minutes); in a 40 s run wait, bounded, for one
        deadline = time.monotonic() + 60
        while (
            bot.metric('solbot_reconcile_checks_total{result="ok"}') == 0
            and time.monotonic() < deadline
        ):
            time.sleep(0.5)
        checks = {
            r: bot.metric(f'solbot_reconcile_checks_total{{result="{r}"}}')
            for r in ("ok", "inconclusive", "mismatch", "error")
        }
        ok_checks = checks["ok"]
        # trading again after the bans: under 20 % faults every 429 holds all requests for its
        # Retry-After and a lost answer is looked up for up to recvWindow + 5 s, so the next
        # order may take a while; wait for it (bounded, 60 s)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _submitted_after_bans(home):
            time.sleep(0.5)
        bot.signal(signal.SIGTERM)
        code = bot.wait_exit(60)
    finally:
        bot.kill_hard()
    state = emu.state()
    peak = max(state["weight_minutes"], key=lambda m: state["weight_minutes"][m])
    top = sorted(state["weight_paths"][peak].items(), key=lambda kv: -kv[1])[:6]
    print(
        f"\nrequest weight by minute {state['weight_minutes']}; the peak minute's: {top}; "
        f"bans [exchange ms, s, calls answered 418] {state['ban_log']}"
    )
    assert code == 0, bot.output()[-3000:]
    assert len(bans) == 2 and any("418" in r for r in halted_seen), halted_seen
    assert all(v > 0 for v in errors.values()), errors
    assert ok_checks > 0
    audit = db_rows(home, "select at, kind, detail from audit_log order by id")
    assert not [a for a in audit if a[1] == "reconcile-failed"]
    # each ban: HALTED (418) ... ACTIVE, and no order submitted in between
    halts = 0
    halted = False
    for _at, kind, detail in audit:
        if kind == "TradingStateChanged" and "418" in detail and '"HALTED"' in detail:
            halted, halts = True, halts + 1
        elif kind == "TradingStateChanged" and '"ACTIVE"' in detail:
            halted = False
        elif kind == "OrderSubmitted":
            assert not halted, "an order was submitted during an exchange ban"
    # every ban the bot met halted it (a ban that fell where the gate sent nothing does not)
    met = [b for b in state["ban_log"] if b[2] > 0]
    assert met, f"the bot met no ban: nothing proven ({state['ban_log']})"
    assert halts >= len(met), (state["ban_log"], audit[-20:])
    assert _submitted_after_bans(home), "the bot should trade again after the bans"
    books = assert_books_equal(home, emu)
    assert state["in_window_requests"] == 0  # nothing sent inside a 429's Retry-After
    # the traffic gate keeps the bot under the exchange's request weight (6,000 a minute)
    assert state["weight_429s"] == 0, (state["weight_minutes"], top)
    fault_rate = sum(state["faults"].values()) / max(1, state["faulty_requests"])
    n = max(1, state["faulty_requests"])
    assert abs(fault_rate - 0.20) <= 4 * (0.16 / n) ** 0.5, (fault_rate, n)  # 4 sigma
    print(
        f"\nfault soak {SOAK:.0f} s: {state['faulty_requests']} exchange calls, "
        f"{fault_rate:.1%} failed ({state['faults']}), {len(bans)} bans "
        f"({state['banned_requests']} calls answered 418); bot errors {errors}; "
        f"{len(books['orders'])} orders, {len(books['trades'])} trades; "
        f"reconciliation checks {checks}; {state['in_window_requests']} requests inside a "
        f"429 window; no duplicate; books equal"
    )
    for line in bot.output().splitlines():
        if "reconciliation mismatch" in line:
            print(line)


def _submitted_after_bans(home: Path) -> bool:
    audit = db_rows(home, "select at, kind, detail from audit_log order by id")
    last = _last_active(audit)
    return any(a[1] == "OrderSubmitted" and str(a[0]) > str(last) for a in audit)


def _last_active(audit: list[tuple[object, ...]]) -> object:
    active = [a[0] for a in audit if a[1] == "TradingStateChanged" and '"ACTIVE"' in str(a[2])]
    return max(active, default="")  # never halted: the check on the halts says so
