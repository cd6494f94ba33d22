"""``solbot portfolio`` with a strategy file of one's own: the same loader as backtest and
run (``--strategy path.py``), each symbol's sleeve trading it on real data from
``../shared``, the file's sha256 in result.json; a broken file is one line, exit 2."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA
from tests.integration.botproc import run_solbot
from tests.integration.test_own_strategy_paper import OWN

pytestmark = pytest.mark.integration

DATA = [SHARED_DATA / f"{s}_USDT-1h.json" for s in ("SOL", "ETH")]
# Clockwork with an 8-quarter hold: on 1h bars (4 quarters each) it buys and sells
HOLDS_8 = OWN.replace('"hold": Int(10, 1, 100)', '"hold": Int(8, 1, 100)').replace(
    "hold: int = 10", "hold: int = 8"
)


@pytest.mark.skipif(
    not all(p.exists() for p in DATA), reason=f"real market data {DATA[0]} is absent"
)
def test_portfolio_runs_a_strategy_file_on_each_symbol_and_records_its_sha(tmp_path: Path):
    own = tmp_path / "clockwork.py"
    own.write_text(HOLDS_8)
    assert HOLDS_8 != OWN
    args = ["portfolio", "--data", str(DATA[0]), "--data", str(DATA[1]), "--strategy", str(own)]
    r = run_solbot(tmp_path, *args, "--out", str(tmp_path / "pf"))
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "pf" / "result.json").read_text())
    assert result["strategy"] == str(own)
    assert result["strategy_sha256"] == hashlib.sha256(own.read_bytes()).hexdigest()
    trades = {s: m["trades"] for s, m in result["symbols"].items()}
    assert set(trades) == {"SOL/USDT", "ETH/USDT"} and all(n > 0 for n in trades.values())

    broken = tmp_path / "broken.py"
    broken.write_text(HOLDS_8.replace("class Clockwork", "class Clockwork(:"))
    bad = run_solbot(tmp_path, *args[:-1], str(broken), "--out", str(tmp_path / "bad"))
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert bad.returncode == 2 and errors == [
        "error: strategy file broken.py: syntax error at line 9: invalid syntax"
    ], bad.stderr  # (the data files' gap warnings come before it)
