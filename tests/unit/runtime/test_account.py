"""The account (``runtime.account``) in-process: the daily loss limit on the whole account
across a restart, several symbols' sleeves, the exposure cap, and the kill switch's flatten
through the shell. Moved from the integration tests; assertions unchanged."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from solbot.bot import build_bot
from solbot.domain.messages import Bar
from solbot.domain.values import TradingState
from solbot.runtime.account import Account
from solbot.runtime.config import load_settings
from tests.integration.botproc import db_rows
from tests.unit.runtime.accounts import paper_account

DAY0 = 1_700_006_400_000  # 2023-11-15T00:00Z
STEP = 300_000  # 5-minute bars keep the whole story inside one UTC day


def service(home: Path) -> Account:
    return paper_account(home, SOLBOT_STRATEGY="donchian")


def rising_then_crash() -> list[Bar]:
    bars = [
        Bar(DAY0 + i * STEP, 10 + i * 0.01, 10.05 + i * 0.01, 9.95 + i * 0.01, 10 + i * 0.01, 1e6)
        for i in range(25)
    ]
    bars.append(Bar(DAY0 + 25 * STEP, 10.25, 11.0, 10.2, 10.9, 1e6))  # breakout -> buy
    bars.append(Bar(DAY0 + 26 * STEP, 10.9, 10.95, 10.8, 10.9, 1e6))  # filled at this open
    bars.append(Bar(DAY0 + 27 * STEP, 10.9, 10.9, 7.0, 7.1, 1e6))  # crash
    return bars


def test_daily_loss_limit_halts_survives_restart_and_lifts_next_day(tmp_path):
    svc = service(tmp_path)
    for b in rising_then_crash():
        svc.on_bar(b)
    assert svc.primary.engine.portfolio.position.qty > 0
    assert svc.daily_pnl() < -Decimal("500")
    assert svc.primary.engine.risk.state is TradingState.HALTED
    assert "daily loss limit" in svc.primary.engine.risk.reason
    pnl = svc.daily_pnl()
    svc.store.close()

    again = service(tmp_path)  # restart on the same day
    assert again.primary.engine.risk.state is TradingState.HALTED
    assert again.daily_pnl() == pnl  # marked at the last stored bar
    again.on_bar(Bar(DAY0 + 28 * STEP, 7.1, 7.2, 7.0, 7.1, 1e6))
    assert again.primary.engine.risk.state is TradingState.HALTED
    again.on_bar(Bar(DAY0 + 86_400_000, 7.1, 7.2, 7.0, 7.1, 1e6))  # next UTC day
    assert again.primary.engine.risk.state is TradingState.ACTIVE
    assert again.daily_pnl() == 0
    again.store.close()


def test_kill_with_flatten_sells_the_position_then_halts(tmp_path):
    (tmp_path / ".env").write_text("SOLBOT_FLATTEN_ON_KILL=true\n")
    bot = build_bot(load_settings(tmp_path, environ={"SOLBOT_STRATEGY": "donchian"}))
    bot.build()
    svc = bot.account
    for b in rising_then_crash()[:-1]:  # long, no crash
        svc.on_bar(b)
    assert svc.primary.engine.portfolio.position.qty > 0
    bot.kill("test flatten")
    pf = svc.primary.engine.portfolio
    assert pf.position.qty == 0 and svc.primary.engine.risk.state is TradingState.HALTED
    last = pf.fills[-1].fill
    assert last.side.value == "sell" and last.price == Decimal("10.89")  # 10.90 less slippage
    assert bot.exit_code == 10
    assert svc.store.restore("SOL/USDT").position.qty == 0  # type: ignore[union-attr]
    svc.store.close()


def two_sleeves(home: Path, **env: str) -> Account:
    environ = {"SOLBOT_STRATEGY": "donchian", "SOLBOT_SYMBOLS": "SOL/USDT,BTC/USDT", **env}
    return paper_account(home, **environ)


def go_long_sol(svc: Account) -> None:
    """A Donchian breakout on SOL (the whole SOL sleeve goes long); BTC flat and quiet."""
    for i in range(25):
        b = Bar(
            DAY0 + i * STEP, 10 + i * 0.01, 10.05 + i * 0.01, 9.95 + i * 0.01, 10 + i * 0.01, 1e6
        )
        svc.on_bar(b, symbol="SOL/USDT")
        svc.on_bar(Bar(b.ts, 30000, 30010, 29990, 30000, 1e3), symbol="BTC/USDT")
    svc.on_bar(Bar(DAY0 + 25 * STEP, 10.25, 11.0, 10.2, 10.9, 1e6), symbol="SOL/USDT")
    svc.on_bar(Bar(DAY0 + 26 * STEP, 10.9, 10.95, 10.8, 10.9, 1e6), symbol="SOL/USDT")


def test_each_symbol_trades_its_own_slice_and_the_daily_limit_is_on_the_sum(tmp_path):
    svc = two_sleeves(tmp_path)
    sol, btc = svc.sleeves
    assert svc.weights == {"SOL/USDT": Decimal("0.5"), "BTC/USDT": Decimal("0.5")}
    assert sol.engine.portfolio.initial_quote == btc.engine.portfolio.initial_quote == 5000
    go_long_sol(svc)
    assert sol.engine.portfolio.position.qty > 0 and btc.engine.portfolio.position.is_flat
    assert btc.engine.portfolio.ledger.total("USDT") == 5000  # SOL's buy spent SOL's slice only
    ids = {r.order_id for r in svc.store.orders(limit=50)}
    assert ids and all(i.startswith("sbSOL-") for i in ids)

    # SOL falls ~6.5 %: more than 5 % of SOL's own slice, ~3 % of the account -> trading on
    svc.on_bar(Bar(DAY0 + 27 * STEP, 10.9, 10.9, 10.15, 10.2, 1e6), symbol="SOL/USDT")
    start = svc.day.start_equity  # type: ignore[union-attr]
    sleeve_loss = sol.equity() - Decimal(5000)
    assert sleeve_loss < -Decimal("0.05") * 5000
    assert -Decimal("0.05") * start < svc.daily_pnl() < 0
    assert svc.equity() == sol.equity() + btc.equity()
    assert svc.trading_state()[0] is TradingState.ACTIVE

    # a further fall takes the account past 5 %: every symbol halts, resting orders go
    svc.on_bar(Bar(DAY0 + 28 * STEP, 10.2, 10.2, 8.5, 8.6, 1e6), symbol="SOL/USDT")
    assert svc.daily_pnl() <= -Decimal("0.05") * start
    assert [sl.engine.risk.state for sl in svc.sleeves] == [TradingState.HALTED] * 2
    assert svc.trading_state()[1].startswith("daily loss limit")  # the account's, no symbol
    assert not any(sl.engine.portfolio.open_orders() for sl in svc.sleeves)
    books = {sl.symbol: sl.engine.portfolio.ledger.snapshot() for sl in svc.sleeves}
    pnl = svc.daily_pnl()
    svc.store.close()

    again = two_sleeves(tmp_path)  # restart the same day: each sleeve's books, still halted
    assert {sl.symbol: sl.engine.portfolio.ledger.snapshot() for sl in again.sleeves} == books
    assert [sl.engine.risk.state for sl in again.sleeves] == [TradingState.HALTED] * 2
    assert again.daily_pnl() == pnl
    again.on_bar(Bar(DAY0 + 86_400_000, 8.6, 8.7, 8.5, 8.6, 1e6), symbol="SOL/USDT")
    assert [sl.engine.risk.state for sl in again.sleeves] == [TradingState.ACTIVE] * 2
    again.store.close()


def test_the_exposure_cap_denies_a_buy_that_takes_all_positions_over_it(tmp_path):
    svc = two_sleeves(tmp_path, SOLBOT_EXPOSURE_CAP="0.3")
    go_long_sol(svc)  # the breakout buy would put ~50 % of equity in SOL
    sol = svc.primary
    assert sol.engine.portfolio.position.is_flat
    denied = db_rows(tmp_path, "select detail from audit_log where kind = 'OrderDenied'")
    assert denied and "portfolio exposure cap" in denied[0][0]
    assert svc.cap is not None and svc.cap.denied >= 1
    svc.store.close()
