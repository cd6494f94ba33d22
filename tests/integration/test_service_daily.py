"""Daily PnL and the daily loss limit of the service, across a restart (in-process)."""

from __future__ import annotations

from decimal import Decimal

from solbot.domain.messages import Bar
from solbot.domain.values import TradingState
from solbot.runtime.config import load_settings
from solbot.runtime.service import BotService

DAY0 = 1_700_006_400_000  # 2023-11-15T00:00Z
STEP = 300_000  # 5-minute bars keep the whole story inside one UTC day


def service(home):  # type: ignore[no-untyped-def]
    svc = BotService(load_settings(home, environ={"SOLBOT_STRATEGY": "donchian"}))
    svc.build()
    return svc


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
    assert svc.engine.portfolio.position.qty > 0
    assert svc.daily_pnl() < -Decimal("500")
    assert svc.engine.risk.state is TradingState.HALTED
    assert "daily loss limit" in svc.engine.risk.reason
    pnl = svc.daily_pnl()
    svc.store.close()

    again = service(tmp_path)  # restart on the same day
    assert again.engine.risk.state is TradingState.HALTED
    assert again.daily_pnl() == pnl  # marked at the last stored bar
    again.on_bar(Bar(DAY0 + 28 * STEP, 7.1, 7.2, 7.0, 7.1, 1e6))
    assert again.engine.risk.state is TradingState.HALTED
    again.on_bar(Bar(DAY0 + 86_400_000, 7.1, 7.2, 7.0, 7.1, 1e6))  # next UTC day
    assert again.engine.risk.state is TradingState.ACTIVE
    assert again.daily_pnl() == 0
    again.store.close()


def test_kill_with_flatten_sells_the_position_then_halts(tmp_path):
    (tmp_path / ".env").write_text("SOLBOT_FLATTEN_ON_KILL=true\n")
    svc = service(tmp_path)
    for b in rising_then_crash()[:-1]:  # long, no crash
        svc.on_bar(b)
    assert svc.engine.portfolio.position.qty > 0
    svc.kill("test flatten")
    pf = svc.engine.portfolio
    assert pf.position.qty == 0 and svc.engine.risk.state is TradingState.HALTED
    last = pf.fills[-1].fill
    assert last.side.value == "sell" and last.price == Decimal("10.89")  # 10.90 less slippage
    assert svc.exit_code == 10
    assert svc.store.restore("SOL/USDT").position.qty == 0  # type: ignore[union-attr]
    svc.store.close()
