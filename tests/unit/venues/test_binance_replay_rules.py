"""Replay tests through ccxt's real Binance class (the rig of ``test_binance_replay``):
the smaller rules Binance enforces (issue "Live trading that holds up against the real
Binance", item 8: immediate triggers, EXPIRE_MAKER, MAX_NUM_ALGO_ORDERS, a closed market,
salted client ids, testnet), other exchanges refused (item 9) and a rehearsal's recording."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from typing import Any

import pytest

from solbot.domain.instruments import sol_usdt
from solbot.domain.messages import (
    OrderExpired,
    OrderRejected,
    SubmitOrder,
)
from solbot.domain.values import OrderType
from solbot.venues.clients import trading_client
from solbot.venues.live import LiveVenue
from tests.unit.venues.test_binance_replay import (
    BUY,
    SELL,
    Rig,
    books_equal,
    bracket,
    open_at_exchange,
    run,
)  # fmt: skip


# ------------------------------------------------------------------ 7. exits
def test_item8_a_stop_binance_says_would_trigger_at_once_exits_at_market() -> None:
    async def scenario(rig: Rig) -> None:
        m = rig.emu.markets["SOLUSDT"]
        cmd = bracket(rig, stop_pct="0.995")
        await rig.bar([cmd.entry])  # the entry alone first; the OCO below meets a moved market
        bar = m.bars[m.closed - 1]
        m.bars[m.closed - 1] = bar._replace(close=float(cmd.stop_loss) * 0.99)  # the price fell
        qty = rig.inst.qty(rig.engine.portfolio.position.qty)
        rig.engine.protect(qty, SELL, cmd.stop_loss, cmd.take_profit, "t", "oco-x")
        await rig.settle()
        rejected = [e for e in rig.events if isinstance(e, OrderRejected)]
        assert rejected and "relationship of the prices" in rejected[0].reason
        assert rig.engine.portfolio.position.qty < rig.inst.min_qty  # sold at market instead
        assert not open_at_exchange(rig)

    run(scenario)


def test_item8_expire_maker_our_own_bid_expires_when_our_market_sell_would_take_it() -> None:
    async def scenario(rig: Rig) -> None:
        await rig.bar([SubmitOrder(BUY, OrderType.MARKET, D("5"))])
        bid = rig.inst.price_down(rig.last * D("0.99"))
        await rig.bar([SubmitOrder(BUY, OrderType.LIMIT, D("1"), price=bid)])
        m = rig.emu.markets["SOLUSDT"]  # the market falls to our bid: it is the best bid
        m.bars[m.closed - 1] = m.bars[m.closed - 1]._replace(close=float(bid) * 0.999)
        rig.engine.execute([SubmitOrder(SELL, OrderType.MARKET, D("2"), reduce_only=True)])
        await rig.settle()
        expired = [o for o in rig.exchange()["orders"] if o["status"] == "EXPIRED_IN_MATCH"]
        assert len(expired) == 1 and D(expired[0]["price"]) == bid
        assert any(isinstance(e, OrderExpired) for e in rig.events)
        books_equal(rig)

    run(scenario)


def test_item8_max_num_algo_orders_and_a_closed_market_are_refused_with_binances_words() -> None:
    async def scenario(rig: Rig) -> None:
        await rig.bar([SubmitOrder(BUY, OrderType.MARKET, D("12"))])
        stops = [
            SubmitOrder(
                SELL, OrderType.STOP_LIMIT, D("1"),
                price=rig.inst.price_down(rig.last * D(f"0.{90 - i}")),
                trigger_price=rig.inst.price_down(rig.last * D(f"0.{91 - i}")),
            )
            for i in range(6)
        ]  # fmt: skip
        await rig.bar(stops)
        reasons = [e.reason for e in rig.events if isinstance(e, OrderRejected)]
        assert len(reasons) == 1 and "MAX_NUM_ALGO_ORDERS" in reasons[0]
        rig.emu.set_status({"symbol": "SOLUSDT", "status": "BREAK"})
        await rig.bar([SubmitOrder(BUY, OrderType.MARKET, D("1"))])
        assert (
            "Market is closed" in [e for e in rig.events if isinstance(e, OrderRejected)][-1].reason
        )

    run(scenario)


def test_item8_client_ids_differ_after_a_restore_so_old_orders_cannot_be_met() -> None:
    from solbot.domain.values import OrderId

    a = LiveVenue(object(), sol_usdt())
    b = LiveVenue(object(), sol_usdt())  # the same database restored: order numbers repeat
    assert a.client_id(OrderId("sb-7")) != b.client_id(OrderId("sb-7"))
    assert len(a.client_id(OrderId("sbBTC-123456"))) <= 36  # Binance's newClientOrderId limit


def test_item8_testnet_is_a_setting_exempt_from_the_real_money_confirmation(tmp_path: Any) -> None:
    from solbot.runtime.config import load_settings

    env = {
        "SOLBOT_MARKET": "exchange", "SOLBOT_EXCHANGE": "binance", "SOLBOT_LIVE": "true",
        "SOLBOT_EXCHANGE_API_KEY": "k" * 20, "SOLBOT_EXCHANGE_API_SECRET": "s" * 20,
        "SOLBOT_MAX_ORDER_VALUE": "100", "SOLBOT_EXCHANGE_SANDBOX": "true",
    }  # fmt: skip
    assert load_settings(home=tmp_path, environ=env).exchange_sandbox
    ex = trading_client("binance", None, "k", "s", sandbox=True)
    assert "testnet.binance.vision" in ex.urls["api"]["private"]
    asyncio.run(ex.close())


# ------------------------------------------------------------------ 9. other exchanges
def test_item9_live_trading_refuses_an_exchange_without_replay_tests() -> None:
    from solbot.runtime.live import LiveSession

    class Settings:
        exchange = "kraken"
        exchange_api_key = exchange_api_secret = "x"

    class Service:
        settings = Settings()
        sleeves = ()

    with pytest.raises(ValueError, match="live trading on kraken is not supported"):
        asyncio.run(LiveSession(Service()).connect())  # type: ignore[arg-type]


def test_item10_a_rehearsal_records_the_exchanges_answers_without_secrets(tmp_path: Any) -> None:
    import json

    from solbot.venues import recorder

    out = tmp_path / "answers.jsonl"

    async def scenario(rig: Rig) -> None:
        recorder.install(rig.ex, out)
        await rig.bar([SubmitOrder(BUY, OrderType.MARKET, D("1"))])

    rig = run(scenario)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    create = next(x for x in lines if x["method"] == "POST" and x["path"] == "/api/v3/order")
    assert create["status"] == 200 and create["params"]["type"] == "MARKET"
    assert json.loads(create["body"])["fills"]  # the raw FULL answer, a fixture as recorded
    text = out.read_text()
    assert "signature" not in text and rig.ex.secret not in text and rig.ex.apiKey not in text
    assert out.stat().st_mode & 0o777 == 0o600
