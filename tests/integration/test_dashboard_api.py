"""The dashboard's server side on a real bot: the page and its files (plotly.js from the
installed package, nothing from a CDN), /api/dashboard, and the event stream's cursor."""

from __future__ import annotations

import json
import re
import signal
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.integration.botproc import Bot

pytestmark = pytest.mark.integration


def events(url: str, count: int, timeout: float = 20.0) -> list[dict]:
    got = []
    with httpx.stream("GET", url, timeout=timeout) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                got.append(json.loads(line[6:]))
                if len(got) == count:
                    break
    return got


def test_page_view_and_stream(tmp_path: Path) -> None:
    bot = Bot(tmp_path, env={"SOLBOT_STRATEGY": "ladder"}, speed=20)
    try:
        bot.wait_ready()
        page = bot.get("/")
        assert page.status_code == 200 and "<title>SOL-Bot</title>" in page.text
        scripts = re.findall(r'<script src="([^"]+)"', page.text)
        assert scripts == ["/static/plotly.min.js", "/static/dashboard.js"]  # all local
        for src in [*scripts, "/static/solbot.css"]:
            assert bot.get(src).status_code == 200, src
        assert len(bot.get("/static/plotly.min.js").content) > 1_000_000
        for bad in ("/static/..%2Fapp.py", "/static/.hidden", "/static/nope.js"):
            assert bot.get(bad).status_code == 404

        bot.wait_until(lambda: bot.get("/api/trades").json(), 60, "a fill")
        v = bot.get("/api/dashboard").json()
        acct = bot.get("/api/account").json()
        assert v["symbol"] == "SOL/USDT" and v["mode"] == "paper"
        assert len(v["bars"]) == len(v["regimes"]) > 0 and len(v["equity"]) > 0
        assert set(v["regimes"]) <= {"MIXED", "UPTREND", "DOWNTREND", "RANGE", "EMERGENCY"}
        assert v["fills"] and {f["side"] for f in v["fills"]} <= {"buy", "sell"}
        start = Decimal(v["account"]["day_start_equity"])
        assert Decimal(v["account"]["daily_loss_limit"]) == (start * Decimal("0.05")).quantize(
            Decimal("0.00000001")
        )
        assert abs(Decimal(v["account"]["equity"]) - Decimal(acct["equity"])) < 50  # moments apart

        last = v["bars"][-1][0]
        later = bot.get("/api/dashboard", params={"since": last}).json()
        assert all(b[0] > last for b in later["bars"])
        assert all(ts > last for ts, _ in later["equity"])

        first, second = events(bot.url + f"/api/dashboard/stream?since={last}", 2)
        assert all(b[0] > last for b in first["bars"])
        # the second update carries only what is newer than the first one's bars
        if first["bars"]:
            assert all(b[0] > first["bars"][-1][0] for b in second["bars"])
        assert second["status"]["bars_processed"] >= first["status"]["bars_processed"]
    finally:
        bot.signal(signal.SIGTERM)
        assert bot.wait_exit(20) == 0


def test_the_equity_curve_survives_a_restart(tmp_path: Path) -> None:
    bot = Bot(tmp_path, speed=40)
    try:
        bot.wait_ready()
        bot.wait_until(lambda: len(bot.get("/api/dashboard").json()["equity"]) >= 30, 30, "bars")
        bot.signal(signal.SIGTERM)
        assert bot.wait_exit(20) == 0
    finally:
        bot.kill_hard()
    import sqlite3

    con = sqlite3.connect(tmp_path / "data" / "solbot.sqlite")
    stored = [r[0] for r in con.execute("SELECT ts FROM equity_points ORDER BY ts")]
    con.close()
    assert len(stored) >= 30
    again = Bot(tmp_path, speed=1)  # slow: the curve must come from the database, not new bars
    try:
        again.wait_ready()
        equity = again.get("/api/dashboard").json()["equity"]
        assert [ts for ts, _ in equity][: len(stored)] == stored
    finally:
        again.kill_hard()


def test_with_a_token_a_stream_opens_only_with_a_ticket_bought_with_it(tmp_path: Path) -> None:
    """Dashboard streams needed no token: anyone who could reach the port could hold them.
    With a token configured, a stream needs a ticket from POST /api/dashboard/ticket."""
    token = "stream-ticket-token-0123456789"
    bot = Bot(tmp_path, env={"SOLBOT_API_TOKEN": token})
    try:
        bot.wait_ready()
        assert bot.get("/api/dashboard/stream").status_code == 401
        assert bot.get("/api/dashboard/stream", params={"ticket": "1.2"}).status_code == 401
        assert bot.post("/api/dashboard/ticket").status_code == 401
        wrong = {"Authorization": "Bearer not-the-token-000000"}
        assert bot.post("/api/dashboard/ticket", headers=wrong).status_code == 401
        r = bot.post("/api/dashboard/ticket", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["expires_in"] == 60
        ticket = r.json()["ticket"]
        assert token not in ticket
        url = bot.url + "/api/dashboard/stream"
        with httpx.stream("GET", url, params={"ticket": ticket}, timeout=10) as s:
            assert s.status_code == 200
            assert next(s.iter_lines()) == "event: update"
        assert bot.get("/api/dashboard").status_code == 200  # the JSON view stays open
        assert ticket not in bot.output()  # written nowhere
        bot.signal(signal.SIGTERM)
        assert bot.wait_exit(10) == 0
    finally:
        bot.kill_hard()


def test_dashboard_streams_are_capped_and_the_bot_stops_at_once_with_them_open(
    tmp_path: Path,
) -> None:
    """200 open streams cut bar throughput by 74 %: at most 32 are served, the 33rd is
    answered 503 with Retry-After; a SIGTERM still ends every stream and the process."""
    from solbot.api.dashboard import MAX_STREAMS

    bot = Bot(tmp_path)
    held = []
    try:
        bot.wait_ready()
        client = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=MAX_STREAMS + 5))
        for _ in range(MAX_STREAMS):
            r = client.send(
                client.build_request("GET", bot.url + "/api/dashboard/stream"), stream=True
            )
            assert r.status_code == 200
            held.append(r)
        over = client.get(bot.url + "/api/dashboard/stream")
        assert over.status_code == 503 and over.headers["retry-after"] == "5"
        assert bot.get("/api/status").status_code == 200
        held.pop().close()  # one closes: a new one is served
        deadline = time.monotonic() + 10
        while True:
            r = client.send(
                client.build_request("GET", bot.url + "/api/dashboard/stream"), stream=True
            )
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            r.close()
        assert r.status_code == 200
        held.append(r)
        bot.signal(signal.SIGTERM)
        assert bot.wait_exit(10) == 0
    finally:
        for r in held:
            r.close()
        bot.kill_hard()
