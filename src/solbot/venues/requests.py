"""Our orders as the requests a ccxt exchange is sent: pure functions, so the requests can be
compared with the ones recorded from the real Binance (``../shared/fixtures/binance-recorded``,
``requests_spot.json``) without a network.

Binance spot (``rest-api.md`` "New order (TRADE)", ``enums.md`` "Order types"; the recorded
``exchangeInfo`` lists LIMIT, LIMIT_MAKER, MARKET, STOP_LOSS_LIMIT and TAKE_PROFIT_LIMIT on
every USDT pair — no STOP_LOSS):

* market → ``MARKET`` with ``quantity``, or ``quoteOrderQty`` for a quote-sized buy;
* limit → ``LIMIT`` GTC; post-only → ``LIMIT_MAKER`` (ccxt: ``postOnly``);
* stop-limit → ``STOP_LOSS_LIMIT`` GTC with ``stopPrice`` (ccxt: ``stopLossPrice``; the
  recorded "limit order with triggerPrice" case is sent the same way);
* stop-market → ``STOP_LOSS`` (not listed on Binance's USDT pairs: refused at start);
* a trailing stop (``trailing_bps``) → the same type with ``trailingDelta`` and no
  ``stopPrice`` (ccxt: ``trailingPercent``; recorded "spot create a trailing limit stop loss
  order"): it tracks from the next trade (``faqs/trailing-stop-faq.md``); in an OCO
  ``belowTrailingDelta`` (a sell) instead of ``belowStopPrice``;
* an OCO → ``POST /api/v3/orderList/oco`` ("New Order list - OCO (TRADE)"): for a sell the
  *above* order is the ``LIMIT_MAKER`` take-profit and the *below* order the
  ``STOP_LOSS_LIMIT`` stop; for a buy (closing a short) the other way round;
* a resting bracket entry with its exits → ``POST /api/v3/orderList/otoco`` ("New Order list
  - OTOCO (TRADE)"): the entry is the working order, the OCO's legs its pending pair.

Other exchanges get ccxt's unified forms (``stopLossPrice``, ``clientOrderId``); live trading
refuses them until they have replay tests of their own (``capabilities.REPLAY_TESTED``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from solbot.domain.orders import Order
from solbot.domain.values import ZERO, OrderType, Side
from solbot.venues.capabilities import Capabilities

OrderCall = tuple[str, str, float | None, float | None, dict[str, Any]]


def _d(x: Decimal | None) -> str:
    assert x is not None
    return f"{x.normalize():f}"


def order_call(order: Order, caps: Capabilities) -> OrderCall:
    """``create_order(symbol, type, side, amount, price, params)``'s arguments for ``order``."""
    params: dict[str, Any] = {caps.client_id_param: order.client_id}
    side = order.side.value
    amount: float | None = float(order.quantity) if order.quantity > ZERO else None
    price: float | None = None
    if order.type is OrderType.MARKET:
        otype = "market"
        if order.quote_quantity is not None:
            params[caps.quote_qty_param or "cost"] = _d(order.quote_quantity)
            amount = None
    elif order.type is OrderType.STOP_MARKET:
        otype = "market"
        params["stopLossPrice"] = float(order.trigger_price or 0)
    elif order.type is OrderType.STOP_LIMIT:
        otype = "limit"
        price = float(order.price) if order.price is not None else None
        if order.trailing_bps is not None:  # recorded: trailingDelta, no stopPrice
            params["trailingPercent"] = order.trailing_bps / 100
            params["stopLossOrTakeProfit"] = "stopLoss"
        else:
            params["stopLossPrice"] = float(order.trigger_price or 0)
    else:
        otype = "limit"
        price = float(order.price) if order.price is not None else None
        if order.post_only:
            params["postOnly"] = True
    return otype, side, amount, price, params


def oco_params(ex: Any, stop: Order, take_profit: Order, list_client_id: str) -> dict[str, Any]:
    """Binance's ``POST /api/v3/orderList/oco`` parameters for a stop and a take-profit that
    exit the same quantity (ccxt signs them; ``ex`` formats prices and amounts)."""
    symbol = stop.symbol
    market = ex.market(symbol)
    stop_leg: dict[str, Any] = {
        "Type": "STOP_LOSS_LIMIT" if stop.type is OrderType.STOP_LIMIT else "STOP_LOSS",
        "ClientOrderId": stop.client_id,
    }
    if stop.trailing_bps is not None:  # "Either belowStopPrice or belowTrailingDelta or both"
        stop_leg["TrailingDelta"] = str(stop.trailing_bps)  # tracks from the next trade
    else:
        stop_leg["StopPrice"] = ex.price_to_precision(symbol, float(stop.trigger_price or 0))
    if stop.type is OrderType.STOP_LIMIT:
        stop_leg["Price"] = ex.price_to_precision(symbol, float(stop.price or 0))
        stop_leg["TimeInForce"] = "GTC"
    tp_leg = {
        "Type": "LIMIT_MAKER",
        "ClientOrderId": take_profit.client_id,
        "Price": ex.price_to_precision(symbol, float(take_profit.price or 0)),
    }
    above, below = (tp_leg, stop_leg) if stop.side is Side.SELL else (stop_leg, tp_leg)
    params: dict[str, Any] = {
        "symbol": market["id"],
        "side": stop.side.value.upper(),
        "quantity": ex.amount_to_precision(symbol, float(stop.quantity)),
        "listClientOrderId": list_client_id,
        "newOrderRespType": "FULL",
    }
    params.update({f"above{k}": v for k, v in above.items()})
    params.update({f"below{k}": v for k, v in below.items()})
    return params


def required_order_types(
    needs: frozenset[str], stop_limit_offset: Decimal | None
) -> list[tuple[str, str]]:
    """(kind of order, what a Binance symbol entry must have for it): an ``orderTypes`` entry
    or one of its ``…Allowed`` flags (``rest-api.md`` "Exchange information")."""
    out: list[tuple[str, str]] = []
    for kind in sorted(needs):
        if kind == "market":
            out.append((kind, "MARKET"))
        elif kind == "limit":
            out.append((kind, "LIMIT"))
        elif kind == "post_only":
            out.append((kind, "LIMIT_MAKER"))
        elif kind == "quote_market_buy":
            out.append((kind, "quoteOrderQtyMarketAllowed"))
        elif kind == "bracket":
            stop = "STOP_LOSS" if stop_limit_offset is None else "STOP_LOSS_LIMIT"
            out += [(kind, stop), (kind, "LIMIT_MAKER"), (kind, "ocoAllowed")]
    return out


def otoco_params(
    ex: Any,
    entry: Order,
    stop: Order,
    take_profit: Order,
    pending_qty: Decimal,
    list_client_id: str,
) -> dict[str, Any]:
    """Binance's ``POST /api/v3/orderList/otoco`` parameters ("New Order list - OTOCO
    (TRADE)"): ``entry`` the working order (LIMIT GTC, or LIMIT_MAKER when post-only), the
    stop and the take-profit its pending pair, sized ``pending_qty`` (set when the list is
    placed: the entry's quantity less the commission the buy may take in the base). For a
    pending sell the *above* order is the LIMIT_MAKER take-profit and the *below* order the
    STOP_LOSS_LIMIT stop, as in an OCO."""
    symbol = entry.symbol
    oco = oco_params(ex, stop, take_profit, list_client_id)
    params: dict[str, Any] = {
        "symbol": oco["symbol"],
        "listClientOrderId": list_client_id,
        "newOrderRespType": "FULL",
        "workingType": "LIMIT_MAKER" if entry.post_only else "LIMIT",
        "workingSide": entry.side.value.upper(),
        "workingClientOrderId": entry.client_id,
        "workingPrice": ex.price_to_precision(symbol, float(entry.price or 0)),
        "workingQuantity": ex.amount_to_precision(symbol, float(entry.quantity)),
        "pendingSide": oco["side"],
        "pendingQuantity": ex.amount_to_precision(symbol, float(pending_qty)),
    }
    if not entry.post_only:
        params["workingTimeInForce"] = "GTC"
    for key, value in oco.items():  # aboveType -> pendingAboveType, ...
        if key.startswith(("above", "below")):
            params["pending" + key[0].upper() + key[1:]] = value
    return params
