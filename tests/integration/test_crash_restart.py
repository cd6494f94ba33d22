"""SIGKILL the paper bot at random points while it trades; restart; nothing lost or doubled.

Checks after every restart, straight from the database:
* each order's filled quantity equals the sum of its fills (no fill lost, none counted twice),
* every fill belongs to a stored order, trade ids are unique (primary key),
* balances equal the initial capital moved by exactly the stored fills,
* no order is left open after a restart (the paper venue's resting orders died with it).
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import defaultdict
from decimal import Decimal

import pytest

from tests.integration.botproc import Bot, db_rows

pytestmark = pytest.mark.integration
RUNS = int(os.environ.get("CRASH_TEST_RUNS", "6"))  # 50+: see docs/benchmarks.md
OPEN = "('submitted','accepted','partially_filled')"


def check_books(home, initial: Decimal) -> int:
    fills = db_rows(home, "select order_id, side, quantity, price, fee from fills")
    orders = {
        oid: (Decimal(fq), status)
        for oid, fq, status in db_rows(home, "select order_id, filled_qty, status from orders")
    }
    per_order: dict[str, Decimal] = defaultdict(Decimal)
    usdt, sol = initial, Decimal(0)
    for oid, side, qty, price, fee in fills:
        q, p, f = Decimal(qty), Decimal(price), Decimal(fee)
        assert oid in orders, f"fill of unknown order {oid}"
        per_order[oid] += q
        if side == "buy":
            usdt -= q * p + f
            sol += q
        else:
            usdt += q * p - f
            sol -= q
    for oid, (filled, _) in orders.items():
        assert filled == per_order.get(oid, Decimal(0)), f"order {oid} filled {filled}"
    bal = {
        a: Decimal(f) + Decimal(lk)
        for a, f, lk in db_rows(home, "select asset, free, locked from balances")
    }
    assert bal["USDT"] == usdt and bal["SOL"] == sol, (bal, usdt, sol)
    return len(fills)


def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path):
    rng = random.Random(20261124)
    fills_seen = 0
    for i in range(RUNS):
        bot = Bot(tmp_path, env={"SOLBOT_STRATEGY": "ladder"}, speed=60)
        try:
            bot.wait_ready()
            time.sleep(rng.uniform(0.3, 2.0))
        finally:
            bot.signal(signal.SIGKILL)
            bot.kill_hard()
        assert bot.proc.returncode == -signal.SIGKILL, f"run {i}"
        fills_seen = check_books(tmp_path, Decimal("10000"))
    # one clean restart: stale open orders are cancelled and the books still add up
    bot = Bot(tmp_path, env={"SOLBOT_STRATEGY": "ladder"}, speed=0.05)
    try:
        bot.wait_ready()
    finally:
        bot.signal(signal.SIGTERM)
        assert bot.wait_exit() == 0
    assert db_rows(tmp_path, f"select count(*) from orders where status in {OPEN}") == [(0,)]
    assert check_books(tmp_path, Decimal("10000")) == fills_seen
    locked = db_rows(tmp_path, "select locked from balances")
    assert all(Decimal(x) == 0 for (x,) in locked)  # nothing held for orders that are gone
    assert fills_seen > 0, "the bot should have traded between the kills"
