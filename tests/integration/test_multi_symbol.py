"""Several symbols in one running bot: sleeves, the account-wide daily loss limit and
exposure cap, restarts, the API and dashboard per symbol, and the start-up refusals."""

from __future__ import annotations

import json
import signal
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from solbot.runtime.account import Account
from solbot.runtime.config import load_settings
from solbot.runtime.session import PaperSession
from tests.conftest import SHARED_DATA as DATA
from tests.integration.botproc import Bot, db_rows, run_solbot
from tests.unit.runtime.accounts import account_of, paper_account
from tests.unit.runtime.test_account import go_long_sol

pytestmark = pytest.mark.integration

DAY0 = 1_700_006_400_000  # 2023-11-15T00:00Z
STEP = 300_000
THREE = "SOL/USDT,BTC/USDT,ETH/USDT"


def two_sleeves(home: Path, **env: str) -> Account:
    environ = {"SOLBOT_STRATEGY": "donchian", "SOLBOT_SYMBOLS": "SOL/USDT,BTC/USDT", **env}
    return paper_account(home, **environ)


def test_dropping_a_symbol_that_still_holds_a_position_refuses_to_start(tmp_path):
    svc = two_sleeves(tmp_path)
    go_long_sol(svc)
    svc.store.close()
    res = run_solbot(tmp_path, "run", SOLBOT_SYMBOLS="BTC/USDT", SOLBOT_STRATEGY="donchian")
    assert res.returncode == 2, res.stderr
    line = res.stderr.strip().splitlines()[-1]
    assert "SOL/USDT" in line and "no longer traded" in line
    assert "Traceback" not in res.stderr
    # the books are untouched: the SOL position is still on disk
    assert db_rows(tmp_path, "select qty from positions where symbol = 'SOL/USDT'")[0][0] != "0"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"SOLBOT_SYMBOLS": "SOL/USDT,SOL/USDT"}, "listed twice"),
        ({"SOLBOT_SYMBOLS": "SOL/USDT,ETH/BTC"}, "same quote"),
        ({"SOLBOT_SYMBOLS": "SOLUSDT"}, "BASE/QUOTE"),
        (
            {"SOLBOT_SYMBOLS": THREE, "SOLBOT_MARKET": "replay", "SOLBOT_REPLAY_FILE": "x.json"},
            "{base}",
        ),
        ({"SOLBOT_EXPOSURE_CAP": "1.5"}, "exposure_cap"),
    ],
)
def test_bad_symbol_settings_exit_2_with_one_line(tmp_path, env, needle):
    res = run_solbot(tmp_path, "run", **env)
    assert res.returncode == 2 and needle in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_three_symbols_paper_bot_api_dashboard_and_restart(tmp_path):
    env = {"SOLBOT_SYMBOLS": THREE, "SOLBOT_EXPOSURE_CAP": "0.6"}
    bot = Bot(tmp_path, env=env, speed=400)
    try:
        st = bot.wait_ready()
        assert [x["symbol"] for x in st["symbols"]] == THREE.split(",")
        bot.wait_until(
            lambda: (
                {r["symbol"] for r in bot.get("/api/trades", params={"limit": 1000}).json()}
                == set(THREE.split(","))
            ),
            timeout=60,
            what="a fill on every symbol",
        )
        acct = bot.get("/api/account").json()
        assert [x["weight"] for x in acct["symbols"]] == ["0.333333"] * 3
        total = sum(Decimal(x["equity"]) for x in acct["symbols"])
        assert abs(total - Decimal(acct["equity"])) < Decimal("0.0001")  # sum of the sleeves
        assert Decimal(acct["exposureCap"]) == Decimal("0.6")
        for sym in ("SOLUSDT", "BTC-USDT", "eth_usdt"):
            market = bot.get(f"/api/market/{sym}").json()
            assert market["bars"] and market["symbol"].replace("/", "") == sym.upper()[:3] + "USDT"
            assert bot.get(f"/api/strategy/{sym}").json()["symbol"] == market["symbol"]
        eth_trades = bot.get("/api/trades", params={"symbol": "ETHUSDT"}).json()
        assert eth_trades and {t["symbol"] for t in eth_trades} == {"ETH/USDT"}
        view = bot.get("/api/dashboard", params={"symbol": "BTCUSDT"}).json()
        assert view["symbol"] == "BTC/USDT" and len(view["symbols"]) == 3
        assert view["bars"] and view["bars"][-1][4] > 1000  # BTC's prices, not SOL's
        assert all(f["price"] and Decimal(f["price"]) > 1000 for f in view["fills"])
        assert bot.get("/api/dashboard", params={"symbol": "XRPUSDT"}).status_code == 404
        assert bot.get("/api/market/XRPUSDT").status_code == 404
        with httpx.stream(
            "GET", bot.url + "/api/dashboard/stream", params={"symbol": "ETHUSDT"}, timeout=5
        ) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    assert json.loads(line[6:])["symbol"] == "ETH/USDT"
                    break
        metrics = bot.get("/metrics").text
        for sym in THREE.split(","):
            assert f'solbot_position_size{{symbol="{sym}"}}' in metrics
            assert f'solbot_symbol_equity{{symbol="{sym}"}}' in metrics
        bot.signal(signal.SIGTERM)
        assert bot.wait_exit(timeout=10) == 0
    finally:
        bot.kill_hard()
    books = db_rows(tmp_path, "select sleeve, asset, free, locked from balances order by 1, 2")
    assert {r[0] for r in books} == set(THREE.split(","))
    assert all(Decimal(r[3]) == 0 for r in books)  # stopped: nothing rests, nothing is locked
    last = dict(db_rows(tmp_path, "select key, value from kv where key like 'last_bar_ts:%'"))
    assert len(last) == 3

    before = {r[0] for r in db_rows(tmp_path, "select trade_id from fills")}
    again = Bot(tmp_path, env=env, speed=400)  # resumes every sleeve where it stopped
    try:
        again.wait_ready()
        # at 400 bars a second it may trade before we look: the books it resumed from plus
        # what it traded since (read before and after the account; again if they differ)
        for _ in range(20):
            new = _fills_since(tmp_path, before)
            acct = again.get("/api/account").json()
            if _fills_since(tmp_path, before) == new:
                break
        for x in acct["symbols"]:
            mine = {a: Decimal(f) for s, a, f, _ in books if s == x["symbol"]}
            for sym, side, qty, price, fee, fee_asset in new:
                if sym == x["symbol"]:
                    base, quote = sym.split("/")
                    sign = 1 if side == "buy" else -1
                    mine[base] += sign * Decimal(qty)
                    mine[quote] -= sign * Decimal(qty) * Decimal(price)
                    mine[fee_asset] -= Decimal(fee)
            got = {a: Decimal(b["free"]) + Decimal(b["locked"]) for a, b in x["balances"].items()}
            assert got == mine, x["symbol"]
        again.wait_until(
            lambda: all(
                int(v) < int(dict(db_rows(tmp_path, "select key, value from kv"))[k])
                for k, v in last.items()
            ),
            what="every symbol past its last bar",
        )
        again.signal(signal.SIGTERM)
        assert again.wait_exit(timeout=10) == 0
    finally:
        again.kill_hard()
    starts = db_rows(tmp_path, "select detail from audit_log where kind = 'start' order by id")
    assert [json.loads(d)["resumed"] for (d,) in starts] == [False, True]


@pytest.mark.skipif(
    not (DATA / "BTC_USDT-1h.json").exists(), reason="../shared/data/binance is not present"
)
def test_replay_of_real_data_with_volatility_weights(tmp_path):
    env = {
        "SOLBOT_SYMBOLS": THREE,
        "SOLBOT_ALLOCATION": "vol",
        "SOLBOT_MARKET": "replay",
        "SOLBOT_REPLAY_FILE": str(DATA / "{base}_{quote}-1h.json"),
    }
    bot = Bot(tmp_path, env=env, speed=2000)
    try:
        st = bot.wait_ready(timeout=60)
        weights = {x["symbol"]: Decimal(x["weight"]) for x in st["symbols"]}
        assert abs(sum(weights.values()) - 1) < Decimal("0.00001")
        # inverse volatility over the first 30 days (Aug-Sep 2020): SOL swung far more
        assert weights["BTC/USDT"] > weights["ETH/USDT"] > weights["SOL/USDT"]
        first = min(int(d[0]) for d in json.loads((DATA / "SOL_USDT-1h.json").read_text())[:1])
        trade_from = first + 30 * 86_400_000
        bot.wait_until(
            lambda: all(
                x["last_market_data_time"] and x["last_market_data_time"] > "2020-10-15"
                for x in bot.get("/api/status").json()["symbols"]
            ),
            timeout=60,
            what="two months replayed",
        )
        times = [
            t
            for t in (x["last_market_data_time"] for x in bot.get("/api/status").json()["symbols"])
        ]
        assert max(times)[:7] == min(times)[:7]  # the files replay together from SOL's start
        bot.signal(signal.SIGTERM)
        assert bot.wait_exit(timeout=10) == 0
    finally:
        bot.kill_hard()
    early = db_rows(tmp_path, f"select count(*) from orders where created_ts < {trade_from}")
    assert early == [(0,)]  # the calibration month only warms up
    assert db_rows(tmp_path, "select count(*) from orders")[0][0] > 0


class _DailyBars:
    """ccxt-shaped ``fetch_ohlcv`` of daily closes that swing ±``swing`` (log) each day."""

    def __init__(self, swing: float | None) -> None:
        self.swing, self.calls = swing, []

    def fetch_ohlcv(self, symbol, timeframe, since=None, limit=None):  # type: ignore[no-untyped-def]
        import math

        self.calls.append((symbol, timeframe, limit))
        if self.swing is None:
            raise ConnectionError("exchange unreachable")
        day = 86_400_000
        start = (since // day) * day
        rows = []
        for i in range(limit):
            c = 100 * math.exp(self.swing if i % 2 else 0.0)
            rows.append([start + i * day, c, c, c, c, 1.0])
        return rows


def _exchange_service(home: Path, swings: dict[str, float | None]) -> Account:
    from solbot.venues.restfeed import CcxtFeed

    env = {
        "SOLBOT_SYMBOLS": ",".join(swings),
        "SOLBOT_ALLOCATION": "vol",
        "SOLBOT_MARKET": "exchange",
        "SOLBOT_EXCHANGE": "binance",
    }
    svc = account_of(load_settings(home, environ=env))
    for sl in svc.sleeves:  # the exchange's REST data, faked (no network)
        sl.market_feed = CcxtFeed(_DailyBars(swings[sl.symbol]), sl.symbol, "1h")
    return svc


def test_volatility_weights_on_an_exchange_come_from_its_last_daily_bars(tmp_path):
    svc = _exchange_service(tmp_path, {"SOL/USDT": 0.06, "BTC/USDT": 0.02})
    svc.build(PaperSession(svc.settings))
    # inverse volatility: BTC swings a third as much, so it gets three quarters
    assert abs(svc.weights["BTC/USDT"] - Decimal("0.75")) < Decimal("0.000001")
    assert svc.sleeves[1].engine.portfolio.initial_quote == Decimal("7500.00000000")
    fake = svc.sleeves[0].market_feed.exchange  # type: ignore[union-attr]
    assert fake.calls == [("SOL/USDT", "1d", 31)]
    assert all(sl.trade_from is None for sl in svc.sleeves)  # past days: nothing to skip
    svc.store.close()
    again = _exchange_service(tmp_path, {"SOL/USDT": 0.5, "BTC/USDT": 0.5})
    again.build(PaperSession(again.settings))  # the weights were fixed at the first start
    assert again.weights == svc.weights
    assert again.sleeves[0].market_feed.exchange.calls == []  # type: ignore[union-attr]
    again.store.close()


def test_volatility_weights_without_exchange_data_exit_2_with_the_reason(tmp_path):
    svc = _exchange_service(tmp_path, {"SOL/USDT": 0.06, "BTC/USDT": None})
    with pytest.raises(ValueError, match="cannot fetch 30 daily bars of BTC/USDT"):
        svc.build(PaperSession(svc.settings))
    svc.store.close()


def _fills_since(home, before):
    rows = db_rows(
        home, "select trade_id, symbol, side, quantity, price, fee, fee_asset from fills"
    )
    return sorted(tuple(r[1:]) for r in rows if r[0] not in before)
