"""The ``solbot`` command as a user runs it: a real process, exit codes, files written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import shared_file

pytestmark = pytest.mark.integration


def solbot(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-c", "from solbot.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )


def test_backtest_on_real_sol_1h_writes_result_and_offline_report(tmp_path):
    data = shared_file("SOL_USDT-1h.json")
    r = solbot("backtest", "--data", str(data), "--strategy", "donchian", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    for key in (
        "total return",
        "cagr",
        "sharpe",
        "sortino",
        "max drawdown",
        "calmar",
        "profit factor",
        "win rate",
        "exposure",
        "trades",
        "fees paid",
    ):
        assert key in r.stdout
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["symbol"] == "SOL/USDT" and result["bars"] == 18970
    assert result["metrics"]["trades"] == sum(1 for t in result["trades"] if not t["open"]) > 100
    html = (tmp_path / "report.html").read_text()
    assert "Plotly.newPlot" in html
    assert not re.search(r"<script[^>]*\ssrc=", html)  # plotly.js is inlined: works offline


def test_backtest_window_and_no_report(tmp_path):
    data = shared_file("SOL_USDT-4h.json")
    r = solbot(
        "backtest",
        "--data",
        str(data),
        "--out",
        str(tmp_path),
        "--from",
        "2021-01-01",
        "--to",
        "2022-01-01",
        "--no-report",
        "--strategy",
        "donchian",
        "--param",
        "entry_period=30",
    )
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["start"].startswith("2021-01-01") and result["end"].startswith("2021-12-31")
    assert result["params"]["entry_period"] == 30
    assert not (tmp_path / "report.html").exists()


def test_backtest_accepts_binance_csv_and_our_parquet(tmp_path):
    csv = tmp_path / "SOLUSDT-1h-2025-01.csv"
    t0 = 1_735_689_600_000_000  # 2025-01-01 in microseconds, as Binance now writes
    lines = []
    price = 100.0
    for i in range(300):
        price *= 1.01 if (i // 40) % 2 == 0 else 0.99
        t = t0 + i * 3_600_000_000
        lines.append(f"{t},{price},{price * 1.004},{price * 0.996},{price},10,{t + 1},1,1,1,1,0")
    csv.write_text("\n".join(lines))
    # 300 bars: fewer than the default tsmom's 62-day warm-up; the regime switcher trades them
    pick = ("--strategy", "solbot")
    r = solbot("backtest", "--data", str(csv), "--out", str(tmp_path / "a"), "--no-report", *pick)
    assert r.returncode == 0, r.stderr
    imp = solbot("data", "import", str(csv), cwd=tmp_path)
    assert imp.returncode == 0, imp.stderr
    pq = tmp_path / "data" / "ohlcv" / "SOL_USDT-1h.parquet"
    lst = solbot("data", "list", cwd=tmp_path)
    assert "SOL/USDT" in lst.stdout and "300" in lst.stdout
    r2 = solbot("backtest", "--data", str(pq), "--out", str(tmp_path / "b"), "--no-report", *pick)
    assert r2.returncode == 0, r2.stderr
    a = json.loads((tmp_path / "a" / "result.json").read_text())
    b = json.loads((tmp_path / "b" / "result.json").read_text())
    assert a["trades"] == b["trades"] and a["trades"]


@pytest.mark.parametrize(
    ("content", "name", "needle"),
    [
        ("{broken", "SOL_USDT-1h.json", "not valid JSON"),
        ("[[1600000000000, 1, 0.5, 2, 1, 1]]", "SOL_USDT-1h.json", "high < low"),
        (
            "[[1600000000000, 1, 2, 0.5, 1, 1], [1600000000000, 1, 2, 0.5, 1, 1]]",
            "SOL_USDT-1h.json",
            "duplicate timestamp",
        ),
        ("[[1600000000000, -1, 2, 0.5, 1, 1]]", "SOL_USDT-1h.json", "non-positive open"),
        ("[[1e20, 1, 2, 0.5, 1, 1]]", "SOL_USDT-1h.json", "row 1: timestamp 1e+20 is not a time"),
        ("1,2,3\n", "SOLUSDT-1h-2024-01.csv", "expected at least 6 columns"),
        ("PK-not-a-zip", "SOLUSDT-1h-2024-01.zip", "not a valid zip"),
        ("x", "prices.xlsx", "unsupported format"),
    ],
)
def test_bad_data_file_gives_one_line_and_exit_3(tmp_path, content, name, needle):
    p = tmp_path / name
    p.write_text(content)
    r = solbot("backtest", "--data", str(p), "--out", str(tmp_path / "out"))
    assert r.returncode == 3
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and name in lines[0], r.stderr  # the file
    assert not (tmp_path / "out" / "result.json").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["backtest", "--out", "x"], "Missing option '--data'"),
        (["backtest", "--data", "D", "--out", "x", "--strategy", "nope"], "unknown strategy"),
        (["backtest", "--data", "D", "--out", "x", "--from", "yesterday"], "--from"),
        (["backtest", "--data", "D", "--out", "x", "--param", "oops"], "KEY=VALUE"),
        (
            [
                "backtest",
                "--data",
                "D",
                "--out",
                "x",
                "--strategy",
                "donchian",
                "--param",
                "entry_period=0",
            ],
            "entry_period",
        ),
        (["backtest", "--data", "D", "--out", "x", "--cash", "lots"], "--cash"),
        (["backtest", "--data", "D", "--out", "x", "--slippage", "2"], "slippage"),
        (["backtest", "--data", "D", "--out", "x", "--gaps", "maybe"], "--gaps"),
        (["backtest", "--data", "D", "--out", "x", "--from", "2030-01-01"], "no bars"),
        (["data", "download", "--timeframe", "7x"], "unknown timeframe"),
        (["frobnicate"], "No such command"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, args, needle):
    data = tmp_path / "SOL_USDT-1h.json"
    data.write_text(
        json.dumps([[1_599_998_400_000 + i * 3_600_000, 10, 11, 9, 10, 1] for i in range(50)])
    )
    r = solbot(*[str(data) if a == "D" else a for a in args], cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    errors = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith("warning")]
    assert len(errors) == 1 and needle in errors[0], r.stderr


def test_demo_runs_on_the_synthetic_market(tmp_path):
    r = solbot("demo", "--out", str(tmp_path), "--bars", "2000")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "report.html").exists() and (tmp_path / "result.json").exists()


def test_data_resample_to_parquet_and_into_the_store(tmp_path):
    data = shared_file("SOL_USDT-1h.json")
    r = solbot(
        "data", "resample", str(data), "--timeframe", "4h", "--out", str(tmp_path / "sol4h.parquet")
    )
    assert r.returncode == 0, r.stderr
    from solbot.data.importers import load_bars

    mine = load_bars(tmp_path / "sol4h.parquet")
    theirs = load_bars(shared_file("SOL_USDT-4h.json"))
    assert mine.timeframe == "4h" and abs(len(mine) - len(theirs)) <= 2
    r2 = solbot("data", "resample", str(data), "--timeframe", "1d", cwd=tmp_path)
    assert r2.returncode == 0 and (tmp_path / "data" / "ohlcv" / "SOL_USDT-1d.parquet").exists()
    bad = solbot("data", "resample", str(data), "--timeframe", "90m")
    assert bad.returncode == 3 and "whole multiple" in bad.stderr


@pytest.mark.parametrize("level", ["debug", "Info", "nonsense"])
def test_a_lower_case_or_bad_log_level_never_stops_the_kill_command(
    tmp_path: Path, level: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SOLBOT_LOG_LEVEL=debug`` (accepted by the settings in any case) crashed every command
    before the settings were read — ``solbot kill`` wrote no flag. Any value lets the kill
    switch work; a bad one is refused where the settings are read: exit 2, one line naming
    the key, no traceback."""
    monkeypatch.setenv("SOLBOT_LOG_LEVEL", level)
    r = solbot("kill", "--home", str(tmp_path), "--reason", "test")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "data" / "kill-switch.flag").exists()
    if level == "nonsense":
        r = solbot("run", "--home", str(tmp_path))
        assert r.returncode == 2, r.stderr
        assert "log_level" in r.stderr.lower() and "Traceback" not in r.stderr, r.stderr


def test_kill_finds_the_home_as_the_bot_does(tmp_path: Path) -> None:
    """The kill command and the bot agree on the flag: --home > SOLBOT_HOME > the config file."""
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'home = "{tmp_path / "file"}"\n')
    r = solbot("kill", "--config", str(cfg), "--reason", "by file")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "file" / "data" / "kill-switch.flag").read_text() == "by file\n"
    r = solbot("kill", "--home", str(tmp_path / "cli"), "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "cli" / "data" / "kill-switch.flag").exists()
    r = solbot("kill", "--config", str(tmp_path / "absent.toml"))
    assert r.returncode == 2 and "absent.toml" in r.stderr, r.stderr


def test_run_refuses_a_damaged_database_with_exit_8_and_leaves_it_untouched(tmp_path: Path) -> None:
    """Two files failing integrity_check were traded on (and written into) and the bot exited
    0; a 0-byte file started a fresh account. Now: exit 8, one line naming the file and the
    restore command, the file as it was (systemd does not restart on 8)."""
    db = tmp_path / "data" / "solbot.sqlite"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"not a database, but someone's account\n" * 100)
    before = db.read_bytes()
    r = solbot("run", "--home", str(tmp_path))
    assert r.returncode == 8, r.stderr
    line = r.stderr.strip()
    assert "\n" not in line and str(db) in line and "solbot backup restore" in line, line
    assert db.read_bytes() == before and not list(db.parent.glob("solbot.sqlite-*"))
    db.write_bytes(b"")
    (tmp_path / "data" / "account.json").write_text("{}")
    r = solbot("run", "--home", str(tmp_path))
    assert r.returncode == 8 and "is empty, but this home held an account" in r.stderr, r.stderr
    assert db.read_bytes() == b""


OWN_STRATEGY = '''
from decimal import Decimal

from solbot.domain.messages import SubmitOrder
from solbot.domain.values import OrderType, Side
from solbot.engine.strategy import NO_COMMANDS, Strategy


class EveryHundredBars(Strategy):
    """Buys on every 100th bar, sells on every 100th bar after that."""

    name = "hundred"

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def on_bar(self, bar):
        self.n += 1
        if self.n % 200 == 100:
            return (SubmitOrder(Side.BUY, OrderType.MARKET, Decimal("1")),)
        if self.n % 200 == 0 and self.ctx.position_qty > 0:
            qty = self.ctx.instrument.qty(self.ctx.position_qty)
            return (SubmitOrder(Side.SELL, OrderType.MARKET, qty, reduce_only=True),)
        return NO_COMMANDS
'''


def test_a_users_own_strategy_file_backtests_and_passes_the_lookahead_check(tmp_path):
    data = shared_file("SOL_USDT-4h.json")
    own = tmp_path / "own.py"
    own.write_text(OWN_STRATEGY)
    r = solbot(
        "backtest", "--data", str(data), "--strategy", str(own), "--out", str(tmp_path / "o")
    )
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "o" / "result.json").read_text())
    assert result["metrics"]["trades"] > 10, result["metrics"]
    r = solbot("check-lookahead", "--data", str(data), "--strategy", f"{own}:EveryHundredBars")
    assert r.returncode == 0, r.stdout + r.stderr
    (tmp_path / "bad.py").write_text("class Oops(:\n")
    r = solbot(
        "backtest", "--data", str(data), "--strategy", str(tmp_path / "bad.py"), "--out", "x"
    )
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "syntax error at line 1" in r.stderr, r.stderr
