"""A strategy written outside the package (this test writes it to a temporary folder) trades
on paper through ``solbot run`` and places the same orders there as ``solbot backtest`` does
on the same bars (a replay file of seeded synthetic 15m bars)."""

from __future__ import annotations

import json
import signal
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.botproc import Bot, db_rows, run_solbot
from tests.integration.test_crash_restart import last_bar, write_market

pytestmark = pytest.mark.integration

OWN = '''
from decimal import Decimal

from solbot.sdk import NO_COMMANDS, Int, OrderType, Side, Strategy, SubmitOrder

QUARTER = 900_000


class Clockwork(Strategy):
    """Buys at every `every`-th quarter hour of the epoch, sells it `hold` quarters later:
    its decisions depend on the bar's time alone, so a run that starts later agrees."""

    name = "clockwork"
    needs = frozenset({"market"})
    parameters = {"every": Int(40, 4, 400), "hold": Int(10, 1, 100)}

    def __init__(self, every: int = 40, hold: int = 10) -> None:
        super().__init__()
        self.every, self.hold = every, hold

    def on_bar(self, bar):
        k = (bar.ts // QUARTER) % self.every
        held = self.ctx.instrument.qty(self.ctx.position_qty)
        if k == 0 and held == 0:
            return (SubmitOrder(Side.BUY, OrderType.MARKET, Decimal("3"), tag="own-entry"),)
        if k == self.hold and held > 0:
            sell = SubmitOrder(Side.SELL, OrderType.MARKET, held, reduce_only=True)
            return (sell,)
        return NO_COMMANDS
'''


def test_an_own_strategy_file_places_the_same_orders_on_paper_as_in_its_backtest(
    tmp_path: Path,
) -> None:
    own = tmp_path / "clockwork.py"
    own.write_text(OWN)
    market = tmp_path / "market.json"
    stamps = write_market(market, 900)
    r = run_solbot(
        tmp_path, "backtest", "--data", str(market), "--strategy", str(own), "--param",
        "every=30", "--out", str(tmp_path / "bt"), "--no-report",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "bt" / "result.json").read_text())
    home = tmp_path / "paper"
    home.mkdir()
    env = {
        "SOLBOT_STRATEGY": str(own),
        "SOLBOT_STRATEGY_PARAMS": '{"every": 30}',
        "SOLBOT_MARKET": "replay",
        "SOLBOT_TIMEFRAME": "15m",
        "SOLBOT_REPLAY_FILE": str(market),
    }
    bot = Bot(home, env=env, speed=400.0)
    try:
        bot.wait_ready()
        bot.wait_until(lambda: last_bar(home) == stamps[-1], timeout=60, what="the last bar")
        sha = bot.get("/api/strategy/SOL_USDT").json()["source_sha256"]
    finally:
        bot.signal(signal.SIGTERM)
    assert bot.wait_exit() == 0, bot.output()[-2000:]
    assert sha == result["params"]["strategy_sha256"]  # what ran is what was backtested
    paper = db_rows(home, "select side, quantity, price, ts from fills order by ts")
    first = min(int(ts) for *_, ts in paper)
    backtest = [
        (t["side"], t["quantity"], t["price"], t["ts"])
        for t in _fills(result)
        if int(t["ts"]) >= first  # the paper bot starts after its warm-up history
    ]
    assert len(paper) >= 20
    assert [(s, Decimal(q), Decimal(p), int(ts)) for s, q, p, ts in paper] == [
        (s, Decimal(q), Decimal(p), int(ts)) for s, q, p, ts in backtest
    ]


def _fills(result: dict[str, object]) -> list[dict[str, str]]:
    """The backtest's fills, from its round trips (one buy and one sell each here)."""
    from datetime import datetime

    def ms(iso: str) -> str:
        return str(int(datetime.fromisoformat(iso).timestamp() * 1000))

    out = []
    for t in result["trades"]:  # type: ignore[attr-defined]
        out.append({"side": "buy", "quantity": t["quantity"], "price": t["entry_price"],
                    "ts": ms(t["entry_time"])})  # fmt: skip
        if t["exit_time"]:
            out.append({"side": "sell", "quantity": t["quantity"], "price": t["exit_price"],
                        "ts": ms(t["exit_time"])})  # fmt: skip
    return out
