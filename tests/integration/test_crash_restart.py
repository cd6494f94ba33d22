"""SIGKILL the paper bot while it trades, restart it, and get the books a clean stop gives.

The market is a replay file (seeded synthetic bars the test writes), so a run is a pure
function of the bars it saw. The crashed home is killed again and again, some kills at a
random moment and some at exact points inside a bar (``solbot.failpoints``: after a
fill was written but before the bar's checkpoint), then run to the end of the file. The
reference home runs the same file, stopped cleanly (SIGTERM) after exactly the bar the crashed
run had last committed at each kill, and restarted there. A restart puts the paper venue's
resting orders back and warms the strategy's indicators on the bars before, but a strategy
may keep state of its own that a restart loses (ladder's count of bars its bid has rested),
so a clean stop at the same bar is the yardstick for every strategy; for the default
``tsmom``, whose decisions come from the bars and the books alone, an uninterrupted run is too.
The homes must then agree bar for bar: every order (id,
side, type, quantity, price, status, filled quantity, bar), every fill, the equity at every bar,
the position and the balances. And from the database alone after every kill: each order's
filled quantity is the sum of its fills, the balances are the initial capital moved by exactly
the stored fills, and the position is the net of the fills.

This fails when the per-bar transaction is removed (a fill written before the kill survives
and its bar is run again), when the position is not restored at restart (the stored position
disagrees with the fills), and when a bar is run twice at restart (the orders differ).
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from solbot.data.synthetic import synthetic_market
from tests.integration.botproc import Bot, db_rows

pytestmark = pytest.mark.integration
RANDOM_KILLS = int(os.environ.get("CRASH_TEST_RUNS", "2"))  # 50+: see docs/benchmarks.md
SPEED, SYMBOL = 800.0, "SOL/USDT"
BARS = max(1500, 600 * (RANDOM_KILLS + 3))  # a random kill lands up to 750 bars on
INITIAL = Decimal("10000")
OPEN = "('submitted','accepted','partially_filled')"
# kills at exact points inside a bar: the Nth fill written, its bar not yet committed
POINT_KILLS = ("fill-recorded=2", "fill-recorded=7")
# strategies whose every decision comes from the bars and the books (no state of their own
# that a restart loses): for them an uninterrupted run is the yardstick too (ladder counts
# the bars its bid has rested, solbot's trend part keeps its own trail)
EXACT = ("tsmom",)


def write_market(path: Path, bars: int) -> list[int]:
    a, _ = synthetic_market(bars=bars, timeframe="15m", seed=41)
    rows = [
        [int(a.ts[i]), *(float(x[i]) for x in (a.open, a.high, a.low, a.close, a.volume))]
        for i in range(len(a.ts))
    ]
    path.write_text(json.dumps(rows))
    return [r[0] for r in rows]


def last_bar(home: Path) -> int | None:
    if not (home / "data" / "solbot.sqlite").exists():
        return None
    rows = db_rows(home, f"select value from kv where key = 'last_bar_ts:{SYMBOL}'")
    return int(rows[0][0]) if rows else None


def check_books(home: Path) -> tuple[int, Decimal]:
    """The invariants the database must hold after any kill; (fills, position)."""
    fills = db_rows(home, "select order_id, side, quantity, price, fee from fills")
    orders = {
        oid: Decimal(fq) for oid, fq in db_rows(home, "select order_id, filled_qty from orders")
    }
    per_order: dict[str, Decimal] = defaultdict(Decimal)
    usdt, sol = INITIAL, Decimal(0)
    for oid, side, qty, price, fee in fills:
        q, p, f = Decimal(qty), Decimal(price), Decimal(fee)
        assert oid in orders, f"fill of unknown order {oid}"
        per_order[oid] += q
        usdt += -(q * p + f) if side == "buy" else q * p - f
        sol += q if side == "buy" else -q
    for oid, filled in orders.items():
        assert filled == per_order.get(oid, Decimal(0)), f"order {oid} filled {filled}"
    bal = {
        a: Decimal(f) + Decimal(lk)
        for a, f, lk in db_rows(home, "select asset, free, locked from balances")
    }
    assert bal["USDT"] == usdt and bal["SOL"] == sol, (bal, usdt, sol)
    pos = db_rows(home, f"select qty from positions where symbol = '{SYMBOL}'")
    held = Decimal(pos[0][0]) if pos else Decimal(0)
    assert held == sol, f"stored position {held} SOL, the fills make {sol} SOL"
    return len(fills), sol


def newest_order(home: Path) -> int:
    ids = db_rows(home, "select order_id from orders")
    return max((int(oid.rsplit("-", 1)[1]) for (oid,) in ids), default=0)


def check_no_bar_twice(home: Path, marks: list[tuple[int, int]]) -> None:
    """``marks``: (newest order, last committed bar) at each stop or kill. An order made by
    the run after a mark must belong to a later bar: a restart resumes after the last bar."""
    made = {
        int(oid.rsplit("-", 1)[1]): ts
        for oid, ts in db_rows(home, "select order_id, created_ts from orders")
    }
    for newest, bar in marks:
        later = [ts for n, ts in made.items() if n > newest]
        assert all(ts > bar for ts in later), (
            f"after a restart at bar {bar}: orders made at {min(later)}"
        )


def books(home: Path) -> dict[str, list[tuple[object, ...]]]:
    """What the two homes must agree on (not ids made from the wall clock, not reasons)."""
    return {
        "orders": db_rows(
            home,
            "select order_id, side, type, quantity, price, trigger_price, tag, status, "
            "filled_qty, created_ts from orders order by order_id",
        ),
        "fills": db_rows(
            home,
            "select order_id, side, quantity, price, fee, fee_asset, liquidity, "
            "realised_pnl, ts from fills order by ts, order_id, quantity",
        ),
        "equity": db_rows(home, "select ts, equity from equity_points order by ts"),
        "position": db_rows(home, "select qty, avg_price, realised_pnl, fees from positions"),
        "balances": db_rows(home, "select asset, free, locked from balances order by asset"),
    }


def run_to(home: Path, market: Path, last_ts: int, env: dict[str, str]) -> tuple[int, int]:
    """Run on ``market`` until bar ``last_ts`` is committed, then stop cleanly; the mark."""
    bot = Bot(home, env={**env, "SOLBOT_REPLAY_FILE": str(market)}, speed=SPEED)
    try:
        bot.wait_ready()
        bot.wait_until(lambda: last_bar(home) == last_ts, timeout=60, what=f"bar {last_ts}")
    finally:
        bot.signal(signal.SIGTERM)
    assert bot.wait_exit() == 0, bot.output()[-2000:]
    return newest_order(home), last_ts


@pytest.mark.parametrize(
    ("strategy", "params"),
    [
        # the default: daily decisions from 1d bars resampled from the 15m ones, lookbacks
        # short enough (a 7-day warm-up) that it trades a few weeks of bars; its tranches'
        # stops and take-profits rest; a restart warms it on the bars before (``rewarm``)
        ("tsmom", '{"fast_days": 2, "slow_days": 3, "vol_days": 5, "band": 0.02}'),
        # resting limit orders, requoted (the regime switcher, no longer the default, is
        # crash-tested live: test_live_crash)
        ("ladder", "{}"),
    ],
    ids=["tsmom", "ladder"],
)
def test_a_crash_gives_the_books_of_a_clean_stop_at_the_same_bar(tmp_path, strategy, params):
    market = tmp_path / "market.json"
    stamps = write_market(market, BARS)
    env = {
        "SOLBOT_STRATEGY": strategy,
        "SOLBOT_STRATEGY_PARAMS": params,
        "SOLBOT_MARKET": "replay",
        "SOLBOT_TIMEFRAME": "15m",
    }
    crashed, reference = tmp_path / "crashed", tmp_path / "reference"
    crashed.mkdir()
    reference.mkdir()
    rng = random.Random(20261202)
    boundaries: list[int] = []
    marks: list[tuple[int, int]] = []
    held_at_a_kill = 0
    kills = [*POINT_KILLS, *[None] * RANDOM_KILLS]
    while kills:
        point = kills.pop(0)
        extra = {"SOLBOT_FAILPOINTS": point} if point else {}
        bot = Bot(crashed, env={**env, **extra, "SOLBOT_REPLAY_FILE": str(market)}, speed=SPEED)
        try:
            if point:
                bot.proc.wait(timeout=60)  # the failpoint kills it
            else:
                bot.wait_ready()
                bot.wait_until(lambda: (last_bar(crashed) or 0) > (boundaries or [0])[-1])
                time.sleep(rng.uniform(0.2, 1.5))
                bot.signal(signal.SIGKILL)
                bot.proc.wait(timeout=10)
        finally:
            bot.kill_hard()
        assert bot.proc.returncode == -signal.SIGKILL, (
            f"{point or 'random kill'}: {bot.output()[-1500:]}"
        )
        _, held = check_books(crashed)
        held_at_a_kill += held > 0
        at = last_bar(crashed)
        assert at is not None and at < stamps[-1], "the file ended before the kill"
        if not boundaries or at > boundaries[-1]:
            boundaries.append(at)
        marks.append((newest_order(crashed), at))
        if not kills and not held_at_a_kill and len(boundaries) < 12:
            kills.append(None)  # kill once more: at least one kill must catch a position
    assert held_at_a_kill, "no kill caught the bot holding a position"
    run_to(crashed, market, stamps[-1], env)
    assert db_rows(crashed, f"select count(*) from orders where status in {OPEN}") == [(0,)]
    fills, _ = check_books(crashed)
    assert fills > 0, "the bot should have traded"
    check_no_bar_twice(crashed, marks)
    print(f"{strategy}: {len(marks)} kills, {fills} fills, {held_at_a_kill} kills holding")

    rows = json.loads(market.read_text())
    stops = []
    # the reference: clean stops after the same bars, leaving the resting orders as a crash
    # does (a stop cancels them by default; the restart then puts back what rested)
    keep = {**env, "SOLBOT_CANCEL_ON_STOP": "false"}
    for at in boundaries:
        part = tmp_path / f"market-{at}.json"
        part.write_text(json.dumps([r for r in rows if r[0] <= at]))
        stops.append(run_to(reference, part, at, keep))
    run_to(reference, market, stamps[-1], env)
    check_no_bar_twice(reference, stops)
    got, want = books(crashed), books(reference)
    for table in want:
        assert got[table] == want[table], f"{table} differ after {len(boundaries)} kills"
    if strategy in EXACT:
        # a restart restores the paper venue's resting orders and warms the strategy on the
        # bars before: the crashed run must also equal one that was never stopped
        never = tmp_path / "never"
        never.mkdir()
        run_to(never, market, stamps[-1], env)
        whole = books(never)
        for table in whole:
            if table == "equity":  # each home prunes its oldest points at its own times
                seen = {ts for ts, _ in whole[table]}
                assert [p for p in got[table] if p[0] in seen] == whole[table], table
                continue
            assert got[table] == whole[table], f"{table}: not the uninterrupted run's"
