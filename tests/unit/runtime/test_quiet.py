"""The quiet-bot alarm (``runtime.quiet``): the real account fed flat bars sends no order and
alerts P2 once the quiet spell passes the threshold — not while paused or halted, not on
history bars; the threshold derived from a real backtest result of the default strategy."""

from __future__ import annotations

import itertools
import json

from solbot.domain.messages import Bar
from solbot.domain.values import TradingState
from solbot.runtime.quiet import QuietWatch, threshold_from_result
from tests.unit.runtime.accounts import paper_account

DAY0 = 1_700_006_400_000
STEP = 3_600_000  # 1h


def flat(i: int) -> Bar:
    return Bar(DAY0 + i * STEP, 10.0, 10.0, 10.0, 10.0, 1e6)  # donchian never breaks out


def test_a_trading_account_that_sends_nothing_alerts_p2_once_past_the_threshold(tmp_path):
    acct = paper_account(tmp_path, SOLBOT_STRATEGY="donchian", SOLBOT_QUIET_BARS="30")
    for i in range(10):
        acct.on_bar(flat(i), history=True)  # warm-up: not counted
    for i in range(10, 39):
        acct.on_bar(flat(i))
    assert acct.quiet.since_order == 29 and not acct.alerts.sent  # type: ignore[attr-defined]
    acct.on_bar(flat(39))
    for i in range(40, 70):
        acct.on_bar(flat(i))
    quiet = [a for a in acct.alerts.sent if a[1] == "Bot quiet"]  # type: ignore[attr-defined]
    assert len(quiet) == 1 and quiet[0][0] == "P2" and "no order for 30 bars" in quiet[0][2]
    acct.pause()  # quiet by choice: the count starts again
    acct.on_bar(flat(70))
    assert acct.quiet.since_order == 0
    acct.resume()
    acct.set_trading_state(TradingState.HALTED, "test")
    for i in range(71, 120):
        acct.on_bar(flat(i))
    assert len([a for a in acct.alerts.sent if a[1] == "Bot quiet"]) == 1  # type: ignore[attr-defined]
    acct.store.close()


def test_an_order_ends_the_quiet_spell_and_a_new_one_alerts_again():
    w = QuietWatch(3)
    fired = [w.bar(orders, True) for orders in (0, 0, 0, 0, 0, 1, 1, 1, 1)]
    assert fired == [False, False, True, False, False, False, False, False, True]
    assert QuietWatch(0).bar(0, True) is False and not any(
        QuietWatch(0).bar(0, True) for _ in range(1000)
    )


def test_the_threshold_comes_from_the_default_strategys_own_backtest(tmp_path):
    from solbot.data.synthetic import synthetic_market
    from solbot.reporting.report import write_result
    from solbot.runtime.backtest import BacktestConfig, run_backtest
    from solbot.strategies import create

    bars, _ = synthetic_market(bars=3000, seed=11)
    result = run_backtest(bars, create("solbot"), BacktestConfig())
    path = write_result(result, tmp_path, {"strategy": "solbot"})
    orders = sorted(b for t in result.trades for b in (t.entry_bar, t.exit_bar) if b is not None)
    assert len(orders) >= 3, "the default strategy traded on the synthetic market"
    longest = max(b - a for a, b in itertools.pairwise(orders))
    n, why = threshold_from_result(path, "solbot", {}, "1h")
    assert n == -(-longest * 3 // 2) and str(longest) in why  # 1.5x, rounded up
    assert threshold_from_result(path, "solbot", {}, "15m")[0] == 6 * longest  # 4x the bars
    assert threshold_from_result(path, "trend", {}, "1h")[0] == 0  # another strategy's
    assert threshold_from_result(path, "solbot", {"x": 1}, "1h")[0] == 0  # other parameters
    payload = json.loads(path.read_text())
    payload["trades"] = payload["trades"][:1]
    (tmp_path / "few.json").write_text(json.dumps(payload))
    assert threshold_from_result(tmp_path / "few.json", "solbot", {}, "1h")[0] == 0
    assert threshold_from_result(tmp_path / "none.json", "solbot", {}, "1h")[0] == 0


def test_an_account_reads_its_threshold_from_the_result_it_is_given(tmp_path):
    trades = [{"entry_bar": 0, "exit_bar": 10}, {"entry_bar": 30, "exit_bar": 34}]
    result = {"timeframe": "1h", "params": {"strategy": "donchian"}, "trades": trades}
    (tmp_path / "result.json").write_text(json.dumps(result))
    acct = paper_account(
        tmp_path, SOLBOT_STRATEGY="donchian", SOLBOT_QUIET_RESULT=str(tmp_path / "result.json")
    )
    assert acct.quiet.after_bars == 30  # 1.5 x the longest gap (20 bars)
    acct.store.close()
    off = paper_account(tmp_path / "x", SOLBOT_STRATEGY="donchian")
    assert off.quiet.after_bars == 0
    off.store.close()


def test_a_deployed_strategy_file_is_matched_by_its_bytes_and_the_releases_result_is_read(
    tmp_path,
):
    trades = [{"entry_bar": 0, "exit_bar": 4}, {"entry_bar": 12, "exit_bar": 14}]
    params = {"strategy": "/home/me/mystrat.py", "strategy_sha256": "ab" * 32}
    result = {"timeframe": "1h", "params": params, "trades": trades}
    path = tmp_path / "result.json"
    path.write_text(json.dumps(result))
    deployed = "/opt/solbot/current/strategies/mystrat.py"
    assert threshold_from_result(path, deployed, {}, "1h", "ab" * 32)[0] == 12  # 1.5 x 8
    assert threshold_from_result(path, deployed, {}, "1h", "cd" * 32)[0] == 0  # edited since
    assert threshold_from_result(path, "/home/me/mystrat.py", {}, "1h", None)[0] == 0

    home = tmp_path / "home"
    (home / "current" / "tested").mkdir(parents=True)  # what `solbot deploy --tested` carries
    result["params"] = {"strategy": "donchian"}
    (home / "current" / "tested" / "result.json").write_text(json.dumps(result))
    acct = paper_account(home, SOLBOT_STRATEGY="donchian")
    assert acct.quiet.after_bars == 12
    acct.store.close()
