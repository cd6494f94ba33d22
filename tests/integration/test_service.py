"""The bot service as operators use it: real processes, real HTTP, real signals, a real DB."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from datetime import datetime
from decimal import Decimal

import httpx
import pytest

from tests.integration.botproc import Bot, db_rows, solbot_cmd
from tests.integration.receiver import Receiver

pytestmark = pytest.mark.integration
TOKEN = "test-token-0123456789abcdef"
OPEN = "('submitted','accepted','partially_filled')"


def test_kill_switch_lifecycle_refuse_clear_and_resume(tmp_path):
    with Receiver() as rx:
        env = {"SOLBOT_DISCORD_WEBHOOK_URL": rx.url, "SOLBOT_STRATEGY": "ladder"}
        bot = Bot(tmp_path, env=env)
        try:
            status = bot.wait_ready()
            assert status["status"] == "ok" and status["trading_state"] == "ACTIVE"
            bot.wait_until(lambda: bot.metric("solbot_fills_total") >= 2, what="paper fills")
            bot.wait_until(bot.open_orders, what="a resting order")
            t0 = time.monotonic()
            # whole, as `solbot kill` writes it: a plain write_text creates the file empty
            # first, and the watcher may read it before the reason is in
            tmp = tmp_path / "data" / "kill-switch.flag.tmp"
            tmp.write_text("integration test\n")
            tmp.replace(tmp_path / "data" / "kill-switch.flag")
            code = bot.wait_exit(timeout=10)
            elapsed = time.monotonic() - t0
        finally:
            bot.kill_hard()
        assert code == 10, bot.output()
        assert elapsed < 5, elapsed
        assert db_rows(tmp_path, f"select count(*) from orders where status in {OPEN}") == [(0,)]
        cancelled = db_rows(tmp_path, "select reason from orders where status='cancelled'")
        assert cancelled, "the resting order should have been cancelled"
        deadline = time.monotonic() + 5
        while not any("Kill switch" in t for t in rx.titles()) and time.monotonic() < deadline:
            time.sleep(0.05)
        kill_msgs = [m for m in rx.messages if "Kill switch" in m["embeds"][0]["title"]]
        assert kill_msgs and kill_msgs[0]["embeds"][0]["title"].startswith("[P0]")
        assert "integration test" in kill_msgs[0]["embeds"][0]["description"]
        assert all(q.endswith("wait=true") for q in rx.queries)
        assert "secret-token-abcdef" not in bot.output()
        balances = dict(
            (a, (Decimal(f), Decimal(lk)))
            for a, f, lk in db_rows(tmp_path, "select asset, free, locked from balances")
        )
        _day, start_eq, last_eq = db_rows(
            tmp_path, "select day, start_equity, last_equity from daily_pnl order by day desc"
        )[0]

    refused = subprocess.run(
        solbot_cmd("run"),
        env={"SOLBOT_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert refused.returncode == 10
    assert len(refused.stderr.strip().splitlines()) == 1 and "kill" in refused.stderr

    clear = subprocess.run(
        solbot_cmd("kill", "--clear", "--home", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert clear.returncode == 0 and not (tmp_path / "data" / "kill-switch.flag").exists()

    again = Bot(tmp_path, env={"SOLBOT_STRATEGY": "ladder"}, speed=0.05)  # no bar for 20 s
    try:
        again.wait_ready()
        acct = again.get("/api/account").json()
    finally:
        again.signal(signal.SIGTERM)
        again.wait_exit()
    got = {a: (Decimal(b["free"]), Decimal(b["locked"])) for a, b in acct["balances"].items()}
    assert got == balances
    assert Decimal(acct["dailyPnL"]) == (Decimal(last_eq) - Decimal(start_eq)).quantize(
        Decimal("0.00000001")
    )


def test_sigterm_mid_trading_cancels_persists_and_exits_zero(tmp_path):
    bot = Bot(tmp_path, env={"SOLBOT_STRATEGY": "ladder"})
    try:
        bot.wait_ready()
        bot.wait_until(bot.open_orders, what="a resting order")
        t0 = time.monotonic()
        bot.signal(signal.SIGTERM)
        code = bot.wait_exit(timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        bot.kill_hard()
    assert code == 0, bot.output()
    assert elapsed < 2.0, elapsed
    assert db_rows(tmp_path, f"select count(*) from orders where status in {OPEN}") == [(0,)]
    kinds = [k for (k,) in db_rows(tmp_path, "select kind from audit_log order by id")]
    assert kinds[-1] == "stop" and "OrderCancelled" in kinds
    assert "ERROR" not in (tmp_path / "logs" / "app.log").read_text()


def test_control_api_needs_the_token_and_metrics_have_runbook_names(tmp_path):
    bot = Bot(tmp_path, env={"SOLBOT_API_TOKEN": TOKEN})
    try:
        bot.wait_ready()
        assert bot.post("/api/pause").status_code == 401
        wrong = bot.post("/api/pause", headers={"Authorization": "Bearer " + "x" * len(TOKEN)})
        assert wrong.status_code == 401
        assert bot.post("/api/kill", json={"reason": "nope"}).status_code == 401
        st = bot.get("/api/status").json()
        assert st["paused"] is False and st["kill_switch"]["engaged"] is False
        assert not (tmp_path / "data" / "kill-switch.flag").exists()
        # a 48 MB body with no token is refused before it is read (it was read, parsed,
        # then refused: +400 MB and the loop frozen 3.3 s); one over 4 KB with it is 413
        rss = bot.metric("process_resident_memory_bytes")
        try:
            flood = bot.post("/api/kill", content=b"[" * 48_000_000)
            assert flood.status_code == 401
        except httpx.HTTPError:
            pass  # answered and closed while the body was still on its way
        assert bot.metric("process_resident_memory_bytes") < rss + 16e6
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert (
            bot.post("/api/pause", content=b"{" + b" " * 5000 + b"}", headers=auth).status_code
            == 413
        )
        assert bot.get("/api/status").json()["paused"] is False
        ok = bot.post("/api/pause", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and bot.get("/api/status").json()["paused"] is True
        text = bot.get("/metrics").text
        for name in (
            "solbot_account_balance",
            "solbot_daily_pnl",
            "solbot_orders_total",
            "solbot_uptime_seconds",
            "solbot_bars_since_order",  # the quiet-bot alarm's (alerts.yml SolbotQuiet)
            "solbot_quiet_after_bars",
        ):
            assert f"\n{name}" in text, name
        assert "process_resident_memory_bytes" in text
        schema = bot.get("/api/openapi.json").json()
        assert schema["info"]["title"] == "SOL-Bot"
        answers = schema["paths"]["/api/kill"]["post"]["responses"]
        assert {"202", "401", "403", "413"} <= set(answers)
        assert "404" in schema["paths"]["/api/market/{symbol}"]["get"]["responses"]
        assert bot.get("/api/status", headers={"Host": "rebound.example"}).status_code == 421
        assert bot.get("/").headers["x-frame-options"] == "DENY"
        for path in (
            "/api/account",
            "/api/orders",
            "/api/trades",
            "/api/market/SOL-USDT",
            "/api/analysis/SOLUSDT",
            "/api/strategy/SOL_USDT",
        ):
            assert bot.get(path).status_code == 200, path
        assert bot.get("/api/market/DOGE-USDT").status_code == 404
        killed = bot.post(
            "/api/kill", json={"reason": "api test"}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert killed.status_code == 202
        assert bot.wait_exit(timeout=10) == 10
    finally:
        bot.kill_hard()
    assert (tmp_path / "data" / "kill-switch.flag").read_text().strip() == "api test"


def test_control_api_disabled_without_a_token(tmp_path):
    bot = Bot(tmp_path)
    try:
        bot.wait_ready()
        r = bot.post("/api/kill", headers={"Authorization": "Bearer anything-at-all-long"})
        assert r.status_code == 403 and bot.get("/api/status").status_code == 200
    finally:
        bot.signal(signal.SIGTERM)
        bot.wait_exit()


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"SOLBOT_PORT": "abc"}, "port"),
        ({"SOLBOT_HOST": "0.0.0.0"}, "api_token"),
        ({"SOLBOT_TIMEZONE": "Mars/Olympus"}, "timezone"),
        ({"SOLBOT_SPEED": "-1"}, "speed"),
        ({"SOLBOT_MARKET": "replay"}, "replay_file"),
        ({"SOLBOT_FROBNICATE": "1"}, "frobnicate"),
    ],
)
def test_bad_config_exits_2_with_one_line(tmp_path, env, needle):
    r = subprocess.run(
        solbot_cmd("run"),
        env={"SOLBOT_HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr


def test_sd_notify_ready_watchdog_and_stopping(tmp_path):
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(20)
    bot = Bot(tmp_path, env={"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "200000"})
    try:
        got: list[str] = []
        while not any(m.startswith("READY=1") for m in got):
            got.append(sock.recv(4096).decode())
        while "WATCHDOG=1" not in got:
            got.append(sock.recv(4096).decode())
        bot.signal(signal.SIGTERM)
        while "STOPPING=1" not in got:
            got.append(sock.recv(4096).decode())
        assert bot.wait_exit() == 0
    finally:
        bot.kill_hard()
        sock.close()


def test_replay_a_data_file_and_the_status_and_account_commands(tmp_path):
    from solbot.data.store import write_parquet
    from solbot.data.synthetic import synthetic_market

    bars, _ = synthetic_market(bars=400, seed=4)
    write_parquet(bars, tmp_path / "replay.parquet")
    bot = Bot(tmp_path, "--replay", str(tmp_path / "replay.parquet"), speed=200)
    try:
        bot.wait_ready()
        bot.wait_until(
            lambda: bot.get("/api/status").json()["bars_processed"] >= 100, what="replayed bars"
        )
        st = subprocess.run(
            solbot_cmd("status", "--url", bot.url), capture_output=True, text=True, timeout=30
        )
        assert st.returncode == 0 and "replay" in st.stdout and "ACTIVE" in st.stdout
        acct = subprocess.run(
            solbot_cmd("account", "--url", bot.url, "--json"),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert acct.returncode == 0 and '"dailyPnL"' in acct.stdout
        market = bot.get("/api/market/SOL-USDT", params={"limit": 1000}).json()
        assert market["bars"][0][0] == int(bars.ts[0])  # the file's own bars, in order
        analysis = bot.get("/api/analysis/SOL-USDT").json()
        assert analysis["ready"] and 0 <= analysis["indicators"]["adx14"] <= 100
        assert analysis["regime"] in {"UPTREND", "DOWNTREND", "RANGE", "MIXED", "EMERGENCY"}
    finally:
        bot.signal(signal.SIGTERM)
        assert bot.wait_exit() == 0
    down = subprocess.run(
        solbot_cmd("status", "--url", bot.url), capture_output=True, text=True, timeout=30
    )
    assert down.returncode == 4 and "not reachable" in down.stderr


def test_live_market_data_through_ccxt_with_simulated_fills(tmp_path):
    from solbot.data.synthetic import synthetic_market
    from tests.integration.binance_stub import BinanceStub

    now_min = int(time.time() // 60) * 60_000
    bars, _ = synthetic_market(bars=300, timeframe="1m", seed=6, start_ms=now_min - 299 * 60_000)
    with BinanceStub(bars) as stub:
        bot = Bot(
            tmp_path, "--exchange", "binance", "--exchange-url", stub.url, "--timeframe", "1m"
        )
        try:
            bot.wait_ready()
            st = bot.wait_until(
                lambda: (r := bot.get("/api/status").json())["bars_processed"] >= 150 and r,
                what="exchange bars",
            )
            assert st["market"] == "exchange" and st["mode"] == "paper"
        finally:
            bot.signal(signal.SIGTERM)
            assert bot.wait_exit() == 0
    assert any(p == "/api/v3/klines" for p, _ in stub.requests)
    last = datetime.fromisoformat(st["last_market_data_time"])
    assert last.timestamp() * 1000 < now_min + 60_000  # the forming bar is never used


def test_the_bot_on_postgresql(tmp_path):
    from sqlalchemy import create_engine, text

    from tests.pg import pg_schema

    with pg_schema("bot") as url:
        bot = Bot(tmp_path, env={"SOLBOT_STRATEGY": "ladder", "SOLBOT_DATABASE_URL": url})
        try:
            bot.wait_ready()
            bot.wait_until(lambda: bot.metric("solbot_fills_total") >= 1, what="a fill")
            bot.signal(signal.SIGTERM)
            assert bot.wait_exit() == 0, bot.output()
        finally:
            bot.kill_hard()
        eng = create_engine(url)
        try:
            with eng.connect() as c:
                fills = c.execute(text("SELECT count(*) FROM fills")).scalar()
                still_open = c.execute(
                    text(f"SELECT count(*) FROM orders WHERE status IN {OPEN}")
                ).scalar()
                kinds = [k for (k,) in c.execute(text("SELECT kind FROM audit_log ORDER BY id"))]
        finally:
            eng.dispose()
        assert fills and fills >= 1 and still_open == 0
        assert kinds[0] == "start" and kinds[-1] == "stop"
        assert not (tmp_path / "data" / "solbot.sqlite").exists()


def test_status_turns_503_when_market_data_stops(tmp_path):
    from solbot.data.store import write_parquet
    from solbot.data.synthetic import synthetic_market

    bars, _ = synthetic_market(bars=60, seed=4)
    write_parquet(bars, tmp_path / "short.parquet")
    bot = Bot(tmp_path, "--replay", str(tmp_path / "short.parquet"), speed=100)
    try:
        bot.wait_ready()
        bot.wait_until(
            lambda: bot.get("/api/status").status_code == 503,
            timeout=15,
            what="a 503 after the replay ended",
        )
        body = bot.get("/api/status").json()
        assert body["status"] == "unhealthy" and "market data stale" in body["problems"][0]
        curl = subprocess.run(
            ["curl", "-sf", f"{bot.url}/api/status"], capture_output=True, timeout=10
        )
        assert curl.returncode != 0  # what the runbook's `curl -f` relies on
    finally:
        bot.signal(signal.SIGTERM)
        bot.wait_exit()


def test_half_open_connections_beyond_the_cap_are_closed_oldest_first_and_status_answers(
    tmp_path,
):
    """1,100 half-open connections took the API down for 30 s (uvicorn has no header timeout
    and no cap). Now beyond 256 the longest-idle are closed (within a second) and a client
    asking /api/status meanwhile is answered."""
    bot = Bot(tmp_path)
    held: list[socket.socket] = []
    try:
        bot.wait_ready()
        # the default strategy warms on 1,488 bars of the synthetic market's past first (a
        # few seconds of work on a busy machine): the flood meets the bot as it trades
        bot.wait_until(
            lambda: bot.get("/api/status").json()["bars_processed"] > 1_500, 30, "warm-up"
        )
        for _ in range(600):
            c = socket.create_connection(("127.0.0.1", bot.port), timeout=5)
            c.sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            held.append(c)
        answered = [bot.get("/api/status").status_code for _ in range(5)]
        assert answered == [200] * 5
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.3)
            closed = [c for c in held if _closed_by_peer(c)]
            if len(closed) >= 600 - 256:
                break
        assert len(closed) >= 600 - 256
        assert held[0] in closed and held[-1] not in closed  # the oldest went first
        assert bot.get("/api/status").status_code == 200
    finally:
        for c in held:
            c.close()
        bot.kill_hard()


def _closed_by_peer(c: socket.socket) -> bool:
    c.setblocking(False)
    try:
        return c.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_requests_without_the_token_are_paced_and_the_token_holder_is_not(tmp_path):
    """A looping client without the token gets its budget (a burst of 20, then 20 a second
    here) and then waits its turn; the token holder is answered at once meanwhile."""
    env = {
        "SOLBOT_STRATEGY": "ladder",
        "SOLBOT_API_TOKEN": TOKEN,
        "SOLBOT_API_UNAUTHENTICATED_RATE": "20",
    }
    bot = Bot(tmp_path, env=env)
    try:
        bot.wait_ready()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(timeout=10) as anon, httpx.Client(timeout=10, headers=auth) as owner:
            t0 = time.monotonic()
            codes = [anon.get(bot.url + "/metrics").status_code for _ in range(40)]
            took = time.monotonic() - t0
            assert codes == [200] * 40
            assert took >= 0.9, f"40 requests without the token in {took:.2f} s: not paced"
            start = time.monotonic()
            for _ in range(20):
                assert owner.get(bot.url + "/metrics").status_code == 200
            assert time.monotonic() - start < 0.9, "the token holder was paced"
    finally:
        bot.kill_hard()
