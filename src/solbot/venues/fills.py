"""Exchange trades as our fills: exact decimals from Binance's own strings (ccxt's unified
numbers are floats), the fee in whatever asset the exchange charged it (the quote, the base of
a buy, or BNB — ``myTrades``' ``commissionAsset``, ``rest-api.md`` "Account trade list")."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from solbot.domain.instruments import Instrument
from solbot.domain.messages import Fill
from solbot.domain.values import Liquidity, OrderId, Side, TradeId


def fill_of(oid: OrderId, t: dict[str, Any], inst: Instrument, exact_info: bool) -> Fill:
    """One ccxt trade as a fill of our order ``oid``; ``exact_info``: read Binance's raw
    ``qty``/``price``/``commission`` strings from ``info``."""
    info = (t.get("info") or {}) if exact_info else {}
    fee = t.get("fee") or {}
    return Fill(
        order_id=oid,
        trade_id=TradeId(str(t["id"])),
        symbol=inst.symbol,
        side=Side.BUY if t["side"] == "buy" else Side.SELL,
        quantity=Decimal(str(info.get("qty", t["amount"]))),
        price=Decimal(str(info.get("price", t["price"]))),
        fee=Decimal(str(info.get("commission", fee.get("cost") or 0))),
        fee_asset=str(info.get("commissionAsset", fee.get("currency") or inst.quote)),
        liquidity=Liquidity.MAKER if t.get("takerOrMaker") == "maker" else Liquidity.TAKER,
        ts=int(t.get("timestamp") or time.time_ns() // 1_000_000),
    )


def answer_trades(info: Any, side: str, now_ms: int) -> list[dict[str, Any]]:
    """The ``fills`` of Binance's FULL order answer as ccxt-shaped trades (``tradeId``,
    ``price``, ``qty``, ``commission``, ``commissionAsset``: "New order", Response - FULL)."""
    if not isinstance(info, dict):
        return []
    return [
        {
            "id": str(f.get("tradeId")),
            "order": str(info.get("orderId")),
            "timestamp": int(info.get("transactTime") or now_ms),
            "side": side,
            "amount": float(f["qty"]),
            "price": float(f["price"]),
            "takerOrMaker": "taker",
            "info": {k: f[k] for k in ("qty", "price", "commission", "commissionAsset")},
        }
        for f in info.get("fills") or []
    ]
