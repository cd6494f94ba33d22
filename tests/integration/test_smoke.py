"""The runbook's smoke tests as commands, against real bot processes on loopback:
``solbot smoke stop-test`` (TST-085) and ``solbot smoke pnl-zero`` (OPS-009)."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.botproc import Bot, db_rows, free_port, run_solbot, solbot_cmd
from tests.integration.receiver import Receiver

pytestmark = pytest.mark.integration


def smoke(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_solbot(home, "smoke", *args, **env)


def test_stop_test_stops_within_30_s_restarts_and_reports(tmp_path: Path) -> None:
    with Receiver() as rx:
        bot = Bot(tmp_path, env={"SOLBOT_STRATEGY": "ladder"})
        restart = shlex.join(solbot_cmd("run"))
        try:
            bot.wait_ready()
            r = smoke(
                tmp_path,
                "stop-test",
                "--url",
                bot.url,
                "--pid",
                str(bot.proc.pid),
                "--restart",
                restart,
                SOLBOT_PORT=str(bot.port),
                SOLBOT_DISCORD_WEBHOOK_URL=rx.url,
            )
            assert r.returncode == 0, r.stdout + r.stderr
            assert "TST-085 stop test: PASS" in r.stdout and "stopped in" in r.stdout
            assert bot.proc.wait(timeout=5) == 0  # the graceful stop, exit 0
            assert httpx.get(bot.url + "/api/status", timeout=5).status_code == 200  # restarted
            assert any("TST-085" in t and "PASS" in t for t in rx.titles())
        finally:
            (tmp_path / "data" / "kill-switch.flag").write_text("test over\n")  # the restarted one
            bot.kill_hard()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(bot.url + "/api/status", timeout=1)
            except httpx.HTTPError:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the restarted bot did not stop on the kill flag")


def test_stop_test_fails_when_the_process_outlives_the_limit(tmp_path: Path) -> None:
    """A process that ignores SIGTERM (here: a bot's API served by a stubborn stand-in)."""
    port = free_port()
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, http.server as h; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
            f"h.HTTPServer(('127.0.0.1', {port}), h.SimpleHTTPRequestHandler).serve_forever()",
        ],
        cwd=tmp_path,
    )
    try:
        (tmp_path / "api").mkdir()
        (tmp_path / "api" / "status").write_text("{}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        r = smoke(
            tmp_path,
            "stop-test",
            "--url",
            f"http://127.0.0.1:{port}",
            "--pid",
            str(stubborn.pid),
            "--limit",
            "1",
        )
        assert r.returncode == 1 and "FAIL" in r.stdout and "still running 1 s" in r.stdout
    finally:
        stubborn.kill()
        stubborn.wait(timeout=5)


def test_pnl_zero_passes_on_a_fresh_bot_and_auto_stops_one_that_traded(tmp_path: Path) -> None:
    with Receiver() as rx:
        fresh_home = tmp_path / "fresh"
        fresh_home.mkdir()
        fresh = Bot(fresh_home, env={"SOLBOT_STRATEGY": "ladder"}, speed=0.01)
        try:
            fresh.wait_ready()
            ok = smoke(fresh_home, "pnl-zero", "--url", fresh.url)
            assert ok.returncode == 0 and "OPS-009 PnL=0 smoke test: PASS" in ok.stdout, ok.stdout
        finally:
            fresh.kill_hard()

        home = tmp_path / "traded"
        home.mkdir()
        # 1-minute bars: a synthetic day is 24 s here, so the day cannot roll over (dailyPnL
        # back to 0) between the wait below and the smoke test's read (1h bars: every 0.4 s)
        # its offer requoted near the market after 20 bars: a round trip within the wait
        # whichever way the synthetic market drifts after its 200 bars of history
        ladder = {"SOLBOT_STRATEGY": "ladder", "SOLBOT_STRATEGY_PARAMS": '{"offer_patience": 20}'}
        bot = Bot(home, env={**ladder, "SOLBOT_TIMEFRAME": "1m"}, speed=60)
        try:
            bot.wait_ready()
            bot.wait_until(
                lambda: db_rows(home, "select count(*) from fills")[0][0] >= 2, 30, "fills"
            )
            bot.wait_until(lambda: bot.get("/api/account").json()["dailyPnL"] != "0", 30, "PnL")
            r = smoke(
                home,
                "pnl-zero",
                "--url",
                bot.url,
                "--auto-stop",
                SOLBOT_DISCORD_WEBHOOK_URL=rx.url,
            )
            assert r.returncode == 1, r.stdout + r.stderr
            assert "FAIL" in r.stdout and "auto-stopped" in r.stdout
            assert bot.wait_exit(15) == 10  # the kill switch stopped it
        finally:
            bot.kill_hard()
        assert (home / "data" / "kill-switch.flag").read_text().startswith("OPS-009 auto-stop")
        assert any("OPS-009" in t and "FAIL" in t for t in rx.titles())
        down = smoke(home, "pnl-zero", "--url", bot.url)
        assert down.returncode == 4 and "api/account" in down.stderr
