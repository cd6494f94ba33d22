"""Binance spot's wire formats for the emulator: symbol info with filters, error answers,
decimal strings and the order record/JSON the order endpoints share."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from starlette.responses import JSONResponse, Response

from solbot.domain.instruments import Instrument
from solbot.domain.values import ZERO


def symbol_info(inst: Instrument) -> dict[str, Any]:
    """``exchangeInfo``'s entry for a spot symbol, with its filters."""
    return {
        "symbol": inst.base + inst.quote,
        "status": "TRADING",
        "baseAsset": inst.base,
        "baseAssetPrecision": 8,
        "quoteAsset": inst.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS"],
        "icebergAllowed": False,
        "ocoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": str(inst.tick_size),
                "maxPrice": "1000000.00",
                "tickSize": str(inst.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": str(inst.min_qty),
                "maxQty": "9000000",
                "stepSize": str(inst.lot_size),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": str(inst.min_notional),
                "applyMinToMarket": True,
                "maxNotional": "9000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
    }


class BinanceError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def err(status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"code": code, "msg": msg}, status_code=status, headers=headers)


def d(x: Decimal) -> str:
    return f"{x:f}"


@dataclass(slots=True)
class OrderRec:
    order_id: int
    client_id: str
    side: str
    type: str
    orig_qty: Decimal
    price: Decimal
    stop_price: Decimal
    quote_qty: Decimal
    time: int
    status: str = "NEW"
    executed: Decimal = ZERO
    cum_quote: Decimal = ZERO
    update_time: int = 0
    symbol: str = "SOLUSDT"


def order_json(rec: OrderRec, symbol: str) -> dict[str, Any]:
    """An order as Binance's order endpoints answer it."""
    return {
        "symbol": symbol,
        "orderId": rec.order_id,
        "orderListId": -1,
        "clientOrderId": rec.client_id,
        "price": d(rec.price),
        "origQty": d(rec.orig_qty),
        "executedQty": d(rec.executed),
        "cummulativeQuoteQty": d(rec.cum_quote),
        "status": rec.status,
        "timeInForce": "GTC",
        "type": rec.type,
        "side": rec.side,
        "stopPrice": d(rec.stop_price),
        "time": rec.time,
        "updateTime": rec.update_time or rec.time,
        "isWorking": True,
        "origQuoteOrderQty": d(rec.quote_qty),
        "selfTradePreventionMode": "NONE",
    }
