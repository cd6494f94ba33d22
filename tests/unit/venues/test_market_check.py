"""What a live start checks and restores: it refuses a market that cannot take the strategy's
orders (exit 2, one line naming the symbol and what it lacks), read from the symbol's
``exchangeInfo`` entry (``rest-api.md`` "Exchange information": ``orderTypes``,
``ocoAllowed``, ``allowTrailingStop``), and re-protects with the bracket plan on record."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from solbot.runtime.live import LiveSession

FULL = ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"]


def check(strategy: str, params: dict[str, Any], **info: Any) -> None:
    entry = {"status": "TRADING", "orderTypes": FULL, "ocoAllowed": True, **info}
    ex = SimpleNamespace(markets={"SOL/USDT": {"info": entry}})
    sleeve = SimpleNamespace(symbol="SOL/USDT")  # its engine is not built yet at this point
    settings = SimpleNamespace(
        strategy=strategy,
        strategy_params=params,
        stop_limit_offset=Decimal("0.005"),
        exchange="binance",
    )
    session = SimpleNamespace(s=SimpleNamespace(settings=settings, sleeves=[sleeve]))
    LiveSession._check_markets(session, ex)  # type: ignore[arg-type]


def test_a_strategy_that_trails_at_the_exchange_needs_allow_trailing_stop() -> None:
    check("trend", {"exchange_trail": True}, allowTrailingStop=True)
    check("trend", {}, allowTrailingStop=False)  # a fixed stop needs no trailing
    with pytest.raises(ValueError, match="SOL/USDT on binance has no allowTrailingStop"):
        check("trend", {"exchange_trail": True}, allowTrailingStop=False)
    with pytest.raises(ValueError, match="no allowTrailingStop"):
        check("solbot", {"trend_exchange_trail": True})


def test_brackets_need_the_stop_limit_and_order_lists() -> None:
    with pytest.raises(ValueError, match="has no STOP_LOSS_LIMIT"):
        check("trend", {}, orderTypes=["LIMIT", "LIMIT_MAKER", "MARKET"])
    with pytest.raises(ValueError, match="has no ocoAllowed"):
        check("meanrev", {}, ocoAllowed=False)
    with pytest.raises(ValueError, match="is BREAK on the exchange"):
        check("trend", {}, status="BREAK")


def test_a_bracket_plan_on_record_keeps_its_trailing_delta() -> None:
    # what a restart re-protects with (runtime.protection.bracket_plan); older plans have none
    import json

    from solbot.runtime.sleeve import bracket_plan

    plan = {"entry": "sb-4", "take_profit": "12", "stop_loss": "9", "tag": "trend"}
    got = bracket_plan({"bracket": json.dumps({**plan, "trail_bps": 250})})
    assert got is not None and got[0] == "sb-4" and got[1].trail_bps == 250
    old = bracket_plan({"bracket": json.dumps(plan)})
    assert old is not None and old[1].trail_bps is None and old[1].stop_loss == Decimal("9")
