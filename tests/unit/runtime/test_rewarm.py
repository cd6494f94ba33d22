"""A restart warms the strategy on the bars up to the last one processed (``Sleeve.rewarm``),
so that it decides as a run that was never stopped: the default ``tsmom`` needs 60 daily
closes, and without them it sat idle for 62 days after every restart or deploy."""

from __future__ import annotations

import asyncio
import math
import shutil
from pathlib import Path
from typing import Any

from solbot.domain.messages import Bar
from solbot.runtime.account import Account
from solbot.runtime.feeds import SyntheticFeed
from solbot.strategies.tsmom import TimeSeriesMomentum
from tests.integration.botproc import db_rows
from tests.unit.runtime.accounts import paper_account

ENV = {"SOLBOT_STRATEGY": "tsmom", "SOLBOT_TIMEFRAME": "1h"}  # its default parameters
STOP_AT = 1_700  # 1h bars run before the restart (71 days: past its 62-day warm-up)
AFTER = 120  # bars run after it (5 days: decisions on days of their own)


def _bars(acct: Account) -> list[Bar]:
    feed = acct.primary.feed()
    assert isinstance(feed, SyntheticFeed)
    return list(feed.block(0, feed.start_price, feed.start_ms).bars())


def _readings(acct: Account) -> tuple[Any, ...]:
    s = acct.primary.engine.strategy
    assert isinstance(s, TimeSeriesMomentum)
    series = (s.d_close, s.d_fast, s.d_slow, s.d_vol, s.c4_close, s.c4_prev, s.c4_atr_prev)
    return (s.target_weight(), *(round(x.value, 9) for x in series))


def _books(home: Path) -> tuple[Any, ...]:
    """What an uninterrupted run and a restarted one must agree on (ids and times the wall
    clock makes aside): every order and its state, every fill, the balances, the position."""
    return (
        db_rows(
            home,
            "select order_id, side, type, quantity, price, trigger_price, tag, status, "
            "filled_qty, created_ts from orders order by order_id",
        ),
        db_rows(home, "select order_id, side, quantity, price, fee, ts from fills order by ts"),
        db_rows(home, "select asset, free, locked from balances order by asset"),
        db_rows(home, "select qty, avg_price from positions"),
    )


def _run(acct: Account, bars: list[Bar]) -> list[tuple[Any, ...]]:
    out = []
    for bar in bars:
        acct.on_bar(bar)
        out.append(_readings(acct))
    return out


def test_a_restarted_tsmom_reads_its_indicators_as_one_never_stopped(tmp_path: Path) -> None:
    never = paper_account(tmp_path / "never", **ENV)
    bars = _bars(never)[: STOP_AT + AFTER]
    want = _run(never, bars)[STOP_AT:]
    never.store.close()
    want_books = _books(tmp_path / "never")
    assert all(w[0] is not None for w in want)  # the uninterrupted run could decide throughout

    home = tmp_path / "restarted"
    first = paper_account(home, **ENV)
    _run(first, bars[:STOP_AT])
    first.store.close()
    shutil.copytree(home, tmp_path / "cold")

    again = paper_account(home, **ENV)  # the same home: the books and the last bar restored
    sleeve = again.primary
    last = bars[STOP_AT - 1]
    assert sleeve.last_bar is not None and sleeve.last_bar.ts == last.ts
    strategy = sleeve.engine.strategy
    assert isinstance(strategy, TimeSeriesMomentum)
    resting = sleeve.engine.portfolio.open_orders()  # a tranche's stop and take-profit
    assert len(resting) >= 2 and all(o.oco_group for o in resting)
    assert sorted(sleeve.venue.open_order_ids()) == sorted(o.order_id for o in resting)
    warmed = asyncio.run(sleeve.rewarm(sleeve.feed(), last.ts))
    assert warmed == strategy.warmup_bars(3_600_000) == 1_488
    # the day of the last bar processed was decided before the stop: not again that day
    assert strategy._decided_day == last.ts // 86_400_000
    assert _run(again, bars[STOP_AT:]) == want
    # and it trades as one never stopped: the tranches' exits rested on through the restart
    # (the paper venue restores them), the decisions were the same
    again.store.close()
    got_books = _books(home)
    assert got_books[0] and got_books[1]
    for got_table, want_table in zip(got_books, want_books, strict=True):
        assert got_table == want_table

    cold = paper_account(tmp_path / "cold", **ENV)  # the bug it is named after: no warm-up
    got = _run(cold, bars[STOP_AT:])
    cold.store.close()
    assert got[0][0] is None and math.isnan(got[0][3]) and got != want


def test_the_synthetic_and_replay_feeds_give_the_bars_they_gave_before_a_point(
    tmp_path: Path,
) -> None:
    import json

    from solbot.runtime.feeds import ReplayFeed

    feed = SyntheticFeed(3, "1h", 1e9)
    block0 = feed.block(0, feed.start_price, feed.start_ms)
    block1 = feed.block(1, float(block0.close[-1]), int(block0.ts[-1]) + feed.step)
    stream = list(block0.bars()) + list(block1.bars())
    last = stream[5_100].ts  # in the second block: the window spans both
    assert asyncio.run(feed.before(last, 400)) == stream[4_701:5_101]
    assert asyncio.run(feed.before(stream[10].ts, 400)) == stream[:11]  # fewer there are

    path = tmp_path / "SOL_USDT-1h.json"
    path.write_text(json.dumps([list(b) for b in stream[:600]]))  # freqtrade's format
    replay = ReplayFeed(path, 1e9)
    assert asyncio.run(replay.before(stream[300].ts, 50)) == stream[251:301]


def test_a_paper_start_after_a_clean_stop_that_cancelled_the_exits_protects_the_position(
    tmp_path: Path,
) -> None:
    """``SOLBOT_CANCEL_ON_STOP`` (the default) cancels a tranche's stop and take-profit at a
    clean stop; the paper start puts a stop back under the position, as the live start does
    (``Protector``), at the newest bracket's prices — not a position left with none."""
    from solbot.runtime.protection import Protector, protection_legs
    from solbot.runtime.session import PaperSession
    from tests.unit.runtime.accounts import account_of

    first = paper_account(tmp_path, **ENV)
    _run(first, _bars(first)[:STOP_AT])
    held = first.primary.engine.portfolio.position.qty
    assert held > 0 and protection_legs(first.primary)
    first.cancel_all()  # the clean stop's cancel
    assert not first.primary.engine.portfolio.open_orders()
    first.store.close()

    from solbot.runtime.config import load_settings

    again = account_of(load_settings(tmp_path, environ=ENV))
    session = PaperSession(again.settings, protect=Protector(again).protect_positions)
    again.build(session)
    asyncio.run(session.reconcile_start())
    legs = protection_legs(again.primary)
    again.store.close()
    assert legs and sum(o.quantity for o in legs) == held
    assert db_rows(tmp_path, "select count(*) from audit_log where kind = 're-protected'")[0][0]
