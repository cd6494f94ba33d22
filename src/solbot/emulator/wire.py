"""Binance spot's wire formats for the emulator: symbol entries with their filters, error
answers, decimal strings and the order records and JSON shapes the order endpoints share.

The shapes follow ``rest-api.md`` ("Exchange information", "New order (TRADE)" with
``newOrderRespType=FULL``, "Query order (USER_DATA)", "New Order list - OCO") and the answers
recorded from the real Binance (``../shared/fixtures/binance-recorded``): a symbol lists the
nine filters, in the recorded order; decimals are strings with 8 places; a FULL create answer
has ``transactTime``, ``workingTime`` and ``fills`` but no ``stopPrice``, ``time``,
``updateTime`` or ``isWorking``, which the query answers have. Where we differ from the
recording (ids and counts as JSON numbers, as Binance's own SDK types them) the contract tests
list it (``tests/unit/test_emulator_contract.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from starlette.responses import JSONResponse, Response

from solbot.domain.instruments import Instrument
from solbot.domain.values import ZERO

EIGHT = Decimal("0.00000001")
ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"]
ALGO_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
STP_DEFAULT = "EXPIRE_MAKER"
STP_ALLOWED = ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]
MAX_NUM_ORDERS = 200
MAX_NUM_ALGO_ORDERS = 5
PRICE_UP, PRICE_DOWN = Decimal("5"), Decimal("0.2")  # PERCENT_PRICE_BY_SIDE, both sides
MAX_NOTIONAL = Decimal("9000000")


def d(x: Decimal) -> str:
    """A Binance decimal string: 8 decimal places (``"241.00000000"``)."""
    return f"{x.quantize(EIGHT):f}"


def symbol_info(inst: Instrument, status: str = "TRADING") -> dict[str, Any]:
    """``exchangeInfo``'s entry for a spot symbol, with its filters, as the recorded entries
    have them (every USDT pair there lists these order types: no STOP_LOSS, no TAKE_PROFIT)."""
    return {
        "symbol": inst.base + inst.quote,
        "status": status,
        "baseAsset": inst.base,
        "baseAssetPrecision": 8,
        "quoteAsset": inst.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": list(ORDER_TYPES),
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": d(inst.tick_size),
                "maxPrice": d(Decimal("1000000")),
                "tickSize": d(inst.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": d(inst.min_qty),
                "maxQty": d(Decimal("9000000")),
                "stepSize": d(inst.lot_size),
            },
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": d(ZERO),
                "maxQty": d(Decimal("100000")),
                "stepSize": d(ZERO),
            },
            {
                "filterType": "TRAILING_DELTA",
                "minTrailingAboveDelta": 10,
                "maxTrailingAboveDelta": 2000,
                "minTrailingBelowDelta": 10,
                "maxTrailingBelowDelta": 2000,
            },
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": str(PRICE_UP),
                "bidMultiplierDown": str(PRICE_DOWN),
                "askMultiplierUp": str(PRICE_UP),
                "askMultiplierDown": str(PRICE_DOWN),
                "avgPriceMins": 5,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": d(inst.min_notional),
                "applyMinToMarket": True,
                "maxNotional": d(MAX_NOTIONAL),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": MAX_NUM_ORDERS},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": MAX_NUM_ALGO_ORDERS},
        ],
        "permissions": [],
        "permissionSets": [["SPOT", "MARGIN"]],
        "defaultSelfTradePreventionMode": STP_DEFAULT,
        "allowedSelfTradePreventionModes": list(STP_ALLOWED),
    }


RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
]


class BinanceError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def err(status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"code": code, "msg": msg}, status_code=status, headers=headers)


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
    list_id: int = -1
    stp: str = STP_DEFAULT
    working_time: int = -1  # -1 until a stop triggers (order lists' stop legs)
    created_wall: float = 0.0  # when it was placed (the lookup lag counts from here)
    expiry: str = ""  # expiryReason (enums.md "Expiry Reasons") once EXPIRED
    trailing_delta: int = 0  # a trailing stop's trailingDelta (bps); 0: not trailing

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED", "PENDING_NEW")

    @property
    def is_algo(self) -> bool:
        return self.type in ALGO_TYPES


def order_json(rec: OrderRec) -> dict[str, Any]:
    """An order as the query endpoints (order, openOrders, allOrders) answer it."""
    out = _common(rec)
    out.update(
        {
            "stopPrice": d(rec.stop_price),
            "icebergQty": d(ZERO),
            "time": rec.time,
            "updateTime": rec.update_time or rec.time,
            "isWorking": rec.working_time != -1,
            "workingTime": rec.working_time,
            "origQuoteOrderQty": d(rec.quote_qty),
            "selfTradePreventionMode": rec.stp,
        }
    )
    if rec.expiry:
        out["expiryReason"] = rec.expiry
    _trailing(rec, out)
    return out


def _trailing(rec: OrderRec, out: dict[str, Any]) -> None:
    """``rest-api.md`` "Conditional fields in Order Responses": ``trailingDelta`` and
    ``trailingTime`` appear for trailing stop orders (``trailingTime`` -1 until it tracks: one
    without ``stopPrice`` tracks from the next trade, so from its placement here)."""
    if rec.trailing_delta:
        out["trailingDelta"] = rec.trailing_delta
        out["trailingTime"] = rec.time if rec.stop_price == ZERO else -1


def cancelled_json(rec: OrderRec) -> dict[str, Any]:
    """A cancel's report of an order: ``origClientOrderId`` is the order's client id
    (``rest-api.md`` "Cancel order", "Cancel Order list")."""
    return {**order_json(rec), "origClientOrderId": rec.client_id}


def created_json(rec: OrderRec, transact: int, fills: list[dict[str, Any]]) -> dict[str, Any]:
    """``POST /api/v3/order``'s FULL answer (also an order list's ``orderReports`` entry)."""
    out = _common(rec)
    out["transactTime"] = transact
    out["origQuoteOrderQty"] = d(rec.quote_qty)
    if rec.type in ALGO_TYPES:
        out["stopPrice"] = d(rec.stop_price)  # "Appears for STOP_LOSS … TAKE_PROFIT_LIMIT"
    out["workingTime"] = rec.working_time
    _trailing(rec, out)
    out["fills"] = fills
    out["selfTradePreventionMode"] = rec.stp
    return out


def _common(rec: OrderRec) -> dict[str, Any]:
    market = rec.type == "MARKET"
    return {
        "symbol": rec.symbol,
        "orderId": rec.order_id,
        "orderListId": rec.list_id,
        "clientOrderId": rec.client_id,
        "price": d(ZERO if market else rec.price),
        "origQty": d(rec.orig_qty),
        "executedQty": d(rec.executed),
        "cummulativeQuoteQty": d(rec.cum_quote),
        "status": rec.status,
        "timeInForce": "GTC",
        "type": rec.type,
        "side": rec.side,
    }


def list_json(
    list_id: int,
    client_id: str,
    symbol: str,
    legs: list[OrderRec],
    at: int,
    reports: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An order list as ``orderList/oco`` (with ``orderReports``), ``DELETE orderList`` and
    ``openOrderList`` answer it."""
    done = not any(r.is_open for r in legs)
    out: dict[str, Any] = {
        "orderListId": list_id,
        "contingencyType": "OCO",
        "listStatusType": "ALL_DONE" if done else "EXEC_STARTED",
        "listOrderStatus": "ALL_DONE" if done else "EXECUTING",
        "listClientOrderId": client_id,
        "transactionTime": at,
        "symbol": symbol,
        "orders": [
            {"symbol": symbol, "orderId": r.order_id, "clientOrderId": r.client_id} for r in legs
        ],
    }
    if reports is not None:
        out["orderReports"] = reports
    return out


def execution_report(
    rec: OrderRec,
    exec_type: str,
    at: int,
    fill: tuple[int, Decimal, Decimal, Decimal, str, bool] | None = None,
) -> dict[str, Any]:
    """One ``executionReport`` of the user data stream (``user-data-stream.md`` "Order
    Update"): the order as it stands after ``exec_type`` (NEW, TRADE, CANCELED, EXPIRED);
    ``fill``: the trade (id, quantity, price, commission, commission asset, maker?)."""
    tid, qty, price, fee, fee_asset, maker = fill or (-1, ZERO, ZERO, ZERO, "", False)
    market = rec.type == "MARKET"
    status = rec.status
    if exec_type == "TRADE":
        status = "FILLED" if rec.orig_qty > 0 and rec.executed >= rec.orig_qty else status
    out: dict[str, Any] = {
        "e": "executionReport",
        "E": at,
        "s": rec.symbol,
        "c": rec.client_id,
        "S": rec.side,
        "o": rec.type,
        "f": "GTC",
        "q": d(rec.orig_qty),
        "p": d(ZERO if market else rec.price),
        "P": d(rec.stop_price),
        "F": d(ZERO),
        "g": rec.list_id,
        "C": rec.client_id if exec_type == "CANCELED" else "",
        "x": exec_type,
        "X": status,
        "r": "NONE",
        "i": rec.order_id,
        "l": d(qty),
        "z": d(rec.executed),
        "L": d(price),
        "n": d(fee) if fill else "0",
        "N": fee_asset or None,
        "T": at,
        "t": tid,
        "I": 0,
        "w": rec.is_open and not market and rec.working_time != -1,
        "m": maker,
        "M": False,
        "O": rec.time,
        "Z": d(rec.cum_quote),
        "Y": d(qty * price),
        "Q": d(rec.quote_qty),
        "V": rec.stp,
    }
    if rec.working_time != -1:
        out["W"] = rec.working_time
    return out
