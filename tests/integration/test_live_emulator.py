"""Live trading end to end: ``solbot run --live`` against ``solbot emulator`` (real ccxt,
signed HTTP on loopback). Our database must equal the exchange's books."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.botproc import Bot, db_rows, free_port, solbot_cmd

KEY, SECRET = "itest-key-0123456789", "itest-secret-abcdefghijklmnop"
# a ladder that bids and offers close to the market: fills, cancels and post-only refusals
# every few bars (for the crash test and the fault soak)
BUSY_LADDER = (
    '{"offset": 0.0005, "target": 0.0008, "patience": 2, "offer_patience": 6, "stake": 300}'
)


class Emulator:
    def __init__(
        self, tmp: Path, faults: str | None = None, speed: float = 20, *extra: str
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = ["emulator", "--port", str(self.port), "--speed", str(speed), *extra]
        if faults:
            args += ["--faults", faults]
        self.log = (tmp / "emulator.log").open("ab")
        env = {
            **os.environ,
            "SOLBOT_EXCHANGE_API_KEY": KEY,
            "SOLBOT_EXCHANGE_API_SECRET": SECRET,
        }
        self.proc = subprocess.Popen(solbot_cmd(*args), env=env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/api/v3/ping", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("emulator did not start")

    def state(self) -> dict[str, Any]:
        return dict(httpx.get(self.url + "/emulator/state", timeout=5).json())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    emu = Emulator(tmp_path, speed=4)
    yield emu
    emu.stop()


def exchange_args(url: str) -> tuple[str, ...]:
    """``solbot run`` options for the emulator's market (1m bars)."""
    return ("--exchange", "binance", "--exchange-url", url, "--timeframe", "1m")


# a live bot under injected faults: short client timeout, fast polls, busy quoting
FAULTY_ENV = {
    "SOLBOT_EXCHANGE_TIMEOUT_MS": "800",
    "SOLBOT_EXCHANGE_POLL_SECONDS": "0.1",
    "SOLBOT_STRATEGY_PARAMS": BUSY_LADDER,
}


def live_bot(home: Path, emu: Emulator, *args: str, **env: str) -> Bot:
    return Bot(
        home,
        *exchange_args(emu.url),
        "--live",
        *args,
        env={
            "SOLBOT_STRATEGY": "ladder",
            "SOLBOT_EXCHANGE_API_KEY": KEY,
            "SOLBOT_EXCHANGE_API_SECRET": SECRET,
            "SOLBOT_LIVE_CONFIRM": "real-money",
            "SOLBOT_MAX_ORDER_VALUE": "2000",
            "SOLBOT_EXCHANGE_POLL_SECONDS": "0.2",
            **env,
        },
    )


def assert_books_equal(home: Path, emu: Emulator) -> dict[str, Any]:
    st = emu.state()
    ours = db_rows(
        home, "select order_id, status, filled_qty, venue_order_id, client_order_id from orders"
    )
    by_cid = Counter(o["clientOrderId"] for o in st["orders"])
    assert all(n == 1 for n in by_cid.values()), f"duplicate orders on the exchange: {by_cid}"
    theirs = {o["clientOrderId"]: o for o in st["orders"]}
    status_map = {
        "FILLED": "filled",
        "CANCELED": "cancelled",
        "EXPIRED": "expired",
        "EXPIRED_IN_MATCH": "expired",
    }
    for oid, status, filled, venue_id, cid in ours:
        o = theirs.get(cid)
        if status in ("denied", "rejected") or (status == "cancelled" and not venue_id):
            # refused, or cancelled before it reached the exchange (never sent, or absent)
            assert o is None or o["status"] == "REJECTED"
            continue
        if status == "submitted" and o is None:
            continue  # sent while the bot stopped, outcome unknown: the next start resolves it
        assert o is not None, f"{oid} ({status}) is not on the exchange"
        assert str(o["orderId"]) == venue_id
        assert status_map.get(o["status"], o["status"].lower()) == status, (oid, status, o)
        assert Decimal(o["executedQty"]) == Decimal(filled)
    sent = [r for r in ours if r[1] not in ("denied", "rejected") and (r[1] != "cancelled" or r[3])]
    mine = {r[4] for r in ours}
    # an OTOCO's pending pair (client ids <entry>S, <entry>T) is ours only once its entry
    # filled; a pair cancelled or expired with its unfilled entry never reached our books
    counted = [
        c
        for c, o in theirs.items()
        if c in mine
        or not (c[-1:] in ("S", "T") and c[:-1] in mine and o["status"] in ("CANCELED", "EXPIRED"))
    ]
    assert len(counted) == len([r for r in sent if r[1] != "submitted" or r[4] in theirs])
    fills = {
        r[0]: (Decimal(r[1]), Decimal(r[2]))
        for r in db_rows(home, "select trade_id, quantity, price from fills")
    }
    trades = {str(t["id"]): (Decimal(t["qty"]), Decimal(t["price"])) for t in st["trades"]}
    assert fills == trades
    balances: dict[str, Decimal] = {}  # summed over the symbols' sleeves: one account
    for a, f, lk in db_rows(home, "select asset, free, locked from balances"):
        balances[a] = balances.get(a, Decimal(0)) + Decimal(f) + Decimal(lk)
    for asset, (free, locked) in st["balances"].items():
        assert balances[asset] == Decimal(free) + Decimal(locked), asset
    return st


def open_on_exchange(emu: Emulator) -> list[dict[str, Any]]:
    return [o for o in emu.state()["orders"] if o["status"] in ("NEW", "PARTIALLY_FILLED")]


def foreign_trade(emu: Emulator, qty: float = 1, symbol: str = "SOL/USDT") -> None:
    """A market buy on the bot's account that the bot did not send (real ccxt, sync)."""
    import ccxt

    from solbot.venues.clients import rebase

    ex = ccxt.binance(
        {
            "apiKey": KEY,
            "secret": SECRET,
            "options": {
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
            },
        }
    )
    ex.urls["api"] = rebase(ex.urls["api"], emu.url)
    ex.create_order(symbol, "market", "buy", qty)


def test_live_orders_fill_cancel_and_kill_switch_leave_db_equal_to_exchange(
    tmp_path: Path, emulator: Emulator
) -> None:
    home = tmp_path / "bot"
    home.mkdir()
    bot = live_bot(
        home,
        emulator,
        SOLBOT_STRATEGY_PARAMS=BUSY_LADDER,  # bids and offers requoted: cancels for sure
        SOLBOT_EXCHANGE_POLL_SECONDS="0.1",
    )
    try:
        status = bot.wait_ready(30)
        assert status["mode"] == "live"

        def progressed() -> bool:
            rows = db_rows(home, "select status from orders")
            return any(r[0] == "filled" for r in rows) and any(r[0] == "cancelled" for r in rows)

        bot.wait_until(progressed, 60, "a filled and a cancelled live order")
        bot.wait_until(bot.open_orders, 30, "a resting order")
        assert emulator.state()["user_stream"]["subscriptions"] >= 1  # it listens for fills
        assert "solbot_exchange_stream_trades" in bot.get("/metrics").text
        t0 = time.monotonic()
        (home / "data" / "kill-switch.flag").write_text("itest\n")
        code = bot.wait_exit(30)  # beyond 20 s the bot dumps its stacks (diagnosis)
        took = time.monotonic() - t0
    finally:
        bot.kill_hard()
    assert code == 10, bot.output()[-3000:]
    assert took < 5, took
    st = assert_books_equal(home, emulator)
    assert not open_on_exchange(emulator)
    assert st["trades"], "nothing filled"


def test_live_start_fails_closed_on_foreign_activity_unless_accepted(
    tmp_path: Path, emulator: Emulator
) -> None:
    home = tmp_path / "bot"
    home.mkdir()
    bot = live_bot(home, emulator)
    try:
        bot.wait_ready(30)
        bot.wait_until(lambda: db_rows(home, "select count(*) from orders")[0][0] > 0, 30, "orders")
        bot.signal(signal.SIGTERM)
        assert bot.wait_exit(20) == 0
    finally:
        bot.kill_hard()
    assert_books_equal(home, emulator)
    foreign_trade(emulator)  # someone trades on the account behind the bot's back
    again = live_bot(home, emulator)
    try:
        code = again.wait_exit(30)
    finally:
        again.kill_hard()
    out = again.output()
    assert code == 7, out[-2000:]
    assert "exchange state differs from ours" in out and "SOL ours" in out
    accepted = live_bot(home, emulator, "--accept-exchange-state")
    try:
        accepted.wait_ready(30)
        # the bot trades at once: a sell can fill at the exchange between our snapshot and
        # theirs (seen once: ours 0.999 locked, theirs 0), so the books must *agree* within a
        # few seconds, not at one arbitrary instant
        seen: list[Any] = []

        def sol_agrees() -> bool:
            ours = accepted.get("/api/account").json()["balances"]["SOL"]
            theirs = emulator.state()["balances"]["SOL"]
            seen.append((ours, theirs))
            return Decimal(ours["free"]) + Decimal(ours["locked"]) == Decimal(theirs[0]) + Decimal(
                theirs[1]
            )

        try:
            accepted.wait_until(sol_agrees, 10, "our SOL equal to the exchange's")
        except AssertionError:
            raise AssertionError((seen[-3:], accepted.output()[-4000:])) from None
        accepted.signal(signal.SIGTERM)
        assert accepted.wait_exit(20) == 0
    finally:
        accepted.kill_hard()


def test_faults_never_duplicate_an_order(tmp_path: Path) -> None:
    emu = Emulator(
        tmp_path, "timeout=0.08,drop=0.08,500=0.06,429=0.06,hang=1.5,retry_after=1,seed=3", speed=4
    )
    try:
        _faults_run(tmp_path, emu)
    finally:
        emu.stop()


def _faults_run(tmp_path: Path, emu: Emulator) -> None:
    home = tmp_path / "bot"
    home.mkdir()
    bot = live_bot(home, emu, **FAULTY_ENV)
    try:
        bot.wait_ready(40)
        try:
            bot.wait_until(
                lambda: (
                    db_rows(home, "select count(*) from orders where venue_order_id != ''")[0][0]
                    >= 8
                ),
                90,
                "live orders through the faults",
            )
        except AssertionError:
            audit = db_rows(home, "select at, kind, order_id, detail from audit_log")
            log = bot.output().splitlines()
            raise AssertionError(f"too few orders: {audit[-15:]} {log[-15:]}") from None
        errors = bot.metric("solbot_venue_errors_total")
        bot.signal(signal.SIGTERM)
        code = bot.wait_exit(40)
    finally:
        bot.kill_hard()
    assert code == 0, bot.output()[-3000:]
    assert errors > 0
    assert sum(emu.state()["faults"].values()) > 0
    assert_books_equal(home, emu)


def test_periodic_reconciliation_halts_on_foreign_activity_while_running(
    tmp_path: Path, emulator: Emulator
) -> None:
    home = tmp_path / "bot"
    home.mkdir()
    bot = live_bot(home, emulator, SOLBOT_RECONCILE_SECONDS="0.5")
    try:
        bot.wait_ready(30)
        bot.wait_until(lambda: bot.metric('solbot_reconcile_checks_total{result="ok"}') >= 1, 30)
        assert bot.get("/api/status").json()["trading_state"] == "ACTIVE"
        foreign_trade(emulator)
        status = bot.wait_until(
            lambda: (
                ((st := bot.get("/api/status").json())["trading_state"] == "HALTED" and st) or None
            ),
            30,
            "halt on a reconciliation mismatch",
        )
        assert "reconciliation failed: SOL ours" in status["trading_state_reason"]
        assert bot.metric('solbot_reconcile_checks_total{result="mismatch"}') >= 2
        bot.wait_until(lambda: not open_on_exchange(emulator), 20, "our orders cancelled")
        orders_before = len(emulator.state()["orders"])
        time.sleep(2)  # halted: nothing new is sent
        assert len(emulator.state()["orders"]) == orders_before
        bot.signal(signal.SIGTERM)
        assert bot.wait_exit(20) == 0
    finally:
        bot.kill_hard()
    audit = db_rows(home, "select kind from audit_log where kind = 'reconcile-failed'")
    assert audit, "the failure is in the audit log"


def test_paper_mode_on_the_emulators_market_data_sends_no_order(
    tmp_path: Path, emulator: Emulator
) -> None:
    """``--exchange`` pointed at the emulator without ``--live``: its klines drive the bot,
    fills are simulated locally, and the exchange never sees an order."""
    home = tmp_path / "bot"
    home.mkdir()
    bot = Bot(
        home,
        *exchange_args(emulator.url),
        env={
            "SOLBOT_STRATEGY": "ladder",
            "SOLBOT_STRATEGY_PARAMS": BUSY_LADDER,
            "SOLBOT_EXCHANGE_POLL_SECONDS": "0.2",
        },
    )
    try:
        status = bot.wait_ready(30)
        assert status["mode"] == "paper" and status["market"] == "exchange"
        bot.wait_until(
            lambda: db_rows(home, "select count(*) from fills")[0][0] > 0, 60, "a paper fill"
        )
        last = bot.get("/api/status").json()["last_market_data_time"]
        server_ms = emulator.state()["server_ms"]
        bot.signal(signal.SIGTERM)
        assert bot.wait_exit(20) == 0
    finally:
        bot.kill_hard()
    st = emulator.state()
    assert st["orders"] == [] and st["trades"] == []
    # the bars are the emulator's (its market clock runs at 20 bars/s, not the wall's)
    from datetime import datetime

    last_ms = datetime.fromisoformat(last.replace("Z", "+00:00")).timestamp() * 1000
    assert server_ms - 30 * 60_000 <= last_ms < server_ms, (last, server_ms)


def streaming_bot(tmp_path: Path, emu: Emulator) -> Bot:
    """A paper bot on the emulator's market whose bars come by the kline stream (REST polled
    only every 5 s)."""
    home = tmp_path / "bot"
    home.mkdir()
    return Bot(
        home,
        *exchange_args(emu.url),
        env={
            "SOLBOT_STRATEGY": "ladder",
            "SOLBOT_EXCHANGE_POLL_SECONDS": "5",
            "SOLBOT_EXCHANGE_WS_URL": emu.url.replace("http://", "ws://") + "/stream/ws",
        },
    )


def test_market_data_by_websocket_stream_with_rest_for_history(tmp_path: Path) -> None:
    """ccxt.pro ``watch_ohlcv`` against the emulator's stream: REST backfills history (polled
    only every 5 s here), then every bar arrives by the stream as the next one opens."""
    emu = Emulator(tmp_path, speed=4)
    bot = streaming_bot(tmp_path, emu)
    try:
        bot.wait_ready(30)
        bot.wait_until(lambda: bot.metric("solbot_market_stream_bars") >= 12, 20, "streamed bars")
        status = bot.get("/api/status").json()
        server_ms = emu.state()["server_ms"]
        assert bot.metric("solbot_market_stream_fallbacks") == 0
        bot.signal(signal.SIGTERM)
        assert bot.wait_exit(20) == 0
    finally:
        bot.kill_hard()
        emu.stop()
    from datetime import datetime

    last = datetime.fromisoformat(status["last_market_data_time"].replace("Z", "+00:00"))
    # within two bars of the exchange's clock: the stream, not a 5 s poll (20 bars behind)
    assert server_ms - last.timestamp() * 1000 <= 2 * 60_000 + 60_000


THREE = "SOL/USDT,BTC/USDT,ETH/USDT"


def test_three_symbols_live_on_one_account(tmp_path: Path) -> None:
    """One bot, one exchange account, three symbols: every symbol's orders reach the
    exchange, the kill switch leaves none open on any, the books (the quote summed over the
    sleeves) equal the exchange's; a restart reconciles; a foreign BTC trade fails it."""
    emu = Emulator(tmp_path, None, 20, "--symbols", THREE, "--balances", "USDT=30000")
    home = tmp_path / "bot"
    home.mkdir()
    env = {"SOLBOT_SYMBOLS": THREE, **FAULTY_ENV}
    try:
        bot = live_bot(home, emu, **env)
        try:
            st = bot.wait_ready(40)
            assert [x["symbol"] for x in st["symbols"]] == THREE.split(",")
            acct = bot.get("/api/account").json()
            assert [Decimal(x["equity"]) for x in acct["symbols"]] == [Decimal("10000")] * 3

            def filled_everywhere() -> bool:
                rows = db_rows(home, "select distinct symbol from fills")
                return len(rows) == 3

            bot.wait_until(filled_everywhere, 90, "a live fill on every symbol")
            bot.wait_until(bot.open_orders, 30, "a resting order")
            (home / "data" / "kill-switch.flag").write_text("itest multi\n")
            code = bot.wait_exit(30)
        finally:
            bot.kill_hard()
        assert code == 10, bot.output()[-3000:]
        st = assert_books_equal(home, emu)
        assert not open_on_exchange(emu)
        assert {t["symbol"] for t in st["trades"]} == {"SOLUSDT", "BTCUSDT", "ETHUSDT"}

        (home / "data" / "kill-switch.flag").unlink()
        again = live_bot(home, emu, **env)  # every sleeve reconciles with the one account
        try:
            again.wait_ready(40)
            again.signal(signal.SIGTERM)
            assert again.wait_exit(20) == 0
        finally:
            again.kill_hard()
        assert_books_equal(home, emu)
        foreign_trade(emu, 0.01, "BTC/USDT")
        refused = live_bot(home, emu, **env)
        try:
            # two bots ran this minute: the exchange's answers say its weight is used, and
            # the start's reads wait for the next minute (one IP, one budget)
            code = refused.wait_exit(90)
        finally:
            refused.kill_hard()
        out = refused.output()
        assert code == 7, out[-2000:]
        assert "BTC ours" in out and "USDT ours" in out and "SOL ours" not in out
    finally:
        emu.stop()


def test_market_stream_survives_binances_connection_cuts_and_in_bar_updates(
    tmp_path: Path,
) -> None:
    """web-socket-streams.md: a connection lives 24 h at most (here 3 s), the server pings
    (here every second) and the kline stream sends updates of the forming bar (here 3 a bar):
    the bot reconnects, delivers each bar once, closed, and loses none."""
    emu = Emulator(tmp_path, None, 4, "--behaviour", "ws_lifetime=3,ws_ping=1,kline_updates=3")
    bot = streaming_bot(tmp_path, emu)
    try:
        bot.wait_ready(30)
        bot.wait_until(lambda: emu.state()["ws_connections"] >= 3, 30, "two connection cuts")
        streamed = bot.metric("solbot_market_stream_bars")
        bot.wait_until(
            lambda: bot.metric("solbot_market_stream_bars") >= streamed + 8, 20, "streamed bars"
        )
        bot.signal(signal.SIGTERM)
        assert bot.wait_exit(20) == 0
    finally:
        bot.kill_hard()
        emu.stop()
    stamps = [int(r[0]) for r in db_rows(bot.home, "select ts from equity_points order by ts")]
    gaps = {b - a for a, b in pairwise(stamps)}
    assert len(stamps) > 20 and gaps == {60_000}, gaps  # every bar once, none lost at a cut
    assert "market stream" in bot.output()  # the cuts were seen (and REST caught up)
