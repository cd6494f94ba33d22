"""The same strategy's parameter search in solbot and in freqtrade's hyperopt, on the same
data and machine: epochs (trials) per hour.

The strategy: an EMA crossover (enter at market when the fast EMA crosses above the slow
one, leave when it crosses back; no stop, no target), its two periods searched over the
same ranges (fast 5-30, slow 30-120), by Sharpe ratio, on SOL/USDT 1h from 2020-12-01 to
2022-10-01, one process each (`--jobs 1`, `-j 1`). solbot's side is a strategy file of its
own written against `solbot.sdk`; freqtrade's an `IStrategy` with `IntParameter`s, run by
the freqtrade CLI installed in its own virtualenv (`--freqtrade`, default `/work/.venv-ft`:
`python -m venv /work/.venv-ft && /work/.venv-ft/bin/pip install "freqtrade[hyperopt]"`).
Everything is written to a temporary folder; the data file is linked, not copied.

Usage: python bench/freqtrade_hyperopt.py [--epochs 100] [--freqtrade DIR] [--data FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

OURS = """
import math
from decimal import Decimal

from solbot.sdk import NO_COMMANDS, IndicatorSpec, Int, OrderType, Side, Strategy, SubmitOrder


class EmaCross(Strategy):
    name = "emacross"
    needs = frozenset({"market"})
    parameters = {
        "fast": Int(12, 2, 200, search=(5, 30)),
        "slow": Int(48, 5, 500, search=(30, 120)),
    }

    def __init__(self, fast=12, slow=48):
        super().__init__()
        self.fast, self.slow, self.above = fast, slow, None

    def on_start(self, ctx):
        super().on_start(ctx)
        self.f = ctx.indicator(IndicatorSpec("ema", self.fast))
        self.s = ctx.indicator(IndicatorSpec("ema", self.slow))

    def on_bar(self, bar):
        f, s = self.f.value, self.s.value
        if math.isnan(f) or math.isnan(s):
            return NO_COMMANDS
        above, was = f > s, self.above
        self.above = above
        held = self.ctx.instrument.qty(self.ctx.position_qty)
        if was is False and above and held == 0:
            cash = self.ctx.free(self.ctx.instrument.quote) * Decimal("0.95")
            qty = self.ctx.instrument.qty(cash / Decimal(repr(bar.close)))
            return (SubmitOrder(Side.BUY, OrderType.MARKET, qty),) if qty > 0 else NO_COMMANDS
        if was is True and not above and held > 0:
            return (SubmitOrder(Side.SELL, OrderType.MARKET, held, reduce_only=True),)
        return NO_COMMANDS
"""

THEIRS = """
from freqtrade.strategy import IntParameter, IStrategy
from pandas import DataFrame


class EmaCross(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "1h"
    minimal_roi = {"0": 100}
    stoploss = -0.99
    startup_candle_count = 150
    fast = IntParameter(5, 30, default=12, space="buy")
    slow = IntParameter(30, 120, default=48, space="buy")

    def populate_indicators(self, df: DataFrame, metadata: dict) -> DataFrame:
        return df

    def _emas(self, df: DataFrame) -> tuple:
        f = df["close"].ewm(span=self.fast.value, adjust=False).mean()
        s = df["close"].ewm(span=self.slow.value, adjust=False).mean()
        return f, s

    def populate_entry_trend(self, df: DataFrame, metadata: dict) -> DataFrame:
        f, s = self._emas(df)
        df.loc[(f > s) & (f.shift(1) <= s.shift(1)), "enter_long"] = 1
        return df

    def populate_exit_trend(self, df: DataFrame, metadata: dict) -> DataFrame:
        f, s = self._emas(df)
        df.loc[(f < s) & (f.shift(1) >= s.shift(1)), "exit_long"] = 1
        return df
"""


def ours(data: Path, epochs: int, tmp: Path) -> tuple[float, float]:
    from solbot.data.importers import load_bars
    from solbot.research.optimize import optimize

    logging.getLogger("solbot").setLevel(logging.ERROR)
    path = tmp / "emacross.py"
    path.write_text(OURS)
    lo, hi = 1_606_780_800_000, 1_664_582_400_000  # 2020-12-01 .. 2022-10-01
    t0 = time.perf_counter()  # loading included, as freqtrade's time includes its own
    bars = load_bars(data).between(lo, hi)
    _, best, study = optimize(bars, str(path), epochs, seed=1, objective="sharpe")
    dt = time.perf_counter() - t0
    return len(study.trials) / dt * 3600, best


def emulator() -> tuple[subprocess.Popen[bytes], int]:
    """freqtrade loads the exchange's markets before a hyperopt: from our Binance emulator
    on loopback (every ccxt API address of the client points there, so nothing leaves the
    machine)."""
    import socket

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    cmd = [sys.executable, "-c", "from solbot.cli import main; main()", "emulator", "--port",
           str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v3/ping", timeout=1.0)
            return proc, port
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the emulator did not start")


def theirs(data: Path, epochs: int, tmp: Path, ft: Path, port: int) -> tuple[float, str]:
    local = f"http://127.0.0.1:{port}"
    groups = ['sapi', 'sapiV2', 'sapiV3', 'sapiV4', 'dapiPublic', 'dapiPrivate', 'eapiPublic',
              'eapiPrivate', 'dapiPrivateV2', 'dapiData', 'fapiPublic', 'fapiPublicV2',
              'fapiPublicV3', 'fapiPrivate', 'fapiPrivateV2', 'fapiPrivateV3', 'fapiData',
              'v1', 'papi', 'papiV2']  # fmt: skip
    urls = {g: f"{local}/{g}" for g in groups}
    urls.update(public=f"{local}/api/v3", private=f"{local}/api/v3")
    ccxt_config = {"urls": {"api": urls}, "options": {"fetchMarkets": {"types": ["spot"]}}}
    user = tmp / "user_data"
    (user / "strategies").mkdir(parents=True)
    (user / "data" / "binance").mkdir(parents=True)
    (user / "strategies" / "emacross.py").write_text(THEIRS)
    os.symlink(data.resolve(), user / "data" / "binance" / data.name)
    config = {
        "dry_run": True, "stake_currency": "USDT", "stake_amount": "unlimited",
        "dry_run_wallet": 10000, "max_open_trades": 1, "timeframe": "1h",
        "trading_mode": "spot", "fee": 0.001, "dataformat_ohlcv": "json",
        "exchange": {"name": "binance", "pair_whitelist": ["SOL/USDT"], "key": "", "secret": "",
                     "ccxt_config": ccxt_config, "ccxt_async_config": ccxt_config},
        "pairlists": [{"method": "StaticPairList"}], "entry_pricing": {}, "exit_pricing": {},
        "user_data_dir": str(user), "datadir": str(user / "data" / "binance"),
    }  # fmt: skip
    (tmp / "config.json").write_text(json.dumps(config))
    cmd = [
        str(ft / "bin" / "freqtrade"), "hyperopt", "--config", str(tmp / "config.json"),
        "--strategy", "EmaCross", "--hyperopt-loss", "SharpeHyperOptLoss", "--spaces", "buy",
        "-e", str(epochs), "-j", "1", "--timerange", "20201201-20221001", "--random-state", "1",
        "--disable-param-export", "--print-json", "--no-color",
    ]  # fmt: skip
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, cwd=tmp)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"freqtrade hyperopt failed ({r.returncode}): {r.stderr[-2000:]}")
    best = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    return epochs / dt * 3600, best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/binance/SOL_USDT-1h.json"))
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--freqtrade", default="/work/.venv-ft")
    a = ap.parse_args()
    data, ft = Path(a.data), Path(a.freqtrade)
    with tempfile.TemporaryDirectory() as t:
        per_hour, best = ours(data, a.epochs, Path(t))
        print(f"solbot optimize: {a.epochs} trials, {per_hour:,.0f} trials/hour "
              f"(best Sharpe {best:.3f})")  # fmt: skip
    if not (ft / "bin" / "freqtrade").exists():
        print(f"freqtrade: not installed at {ft} (see this file's docstring); not compared")
        return
    shown = subprocess.run(
        [str(ft / "bin" / "freqtrade"), "--version"], capture_output=True, text=True
    ).stdout
    version = next((ln.split(":", 1)[1].strip() for ln in shown.splitlines()
                    if ln.startswith("Freqtrade Version")), "?")  # fmt: skip
    proc, port = emulator()
    try:
        with tempfile.TemporaryDirectory() as t:
            ft_per_hour, ft_best = theirs(data, a.epochs, Path(t), ft, port)
    finally:
        proc.kill()
    print(f"freqtrade hyperopt ({version}): {a.epochs} epochs, {ft_per_hour:,.0f} epochs/hour; "
          f"best {ft_best[:200]}")  # fmt: skip
    print(f"solbot / freqtrade: {per_hour / ft_per_hour:.2f}x trials per hour")


if __name__ == "__main__":
    main()
