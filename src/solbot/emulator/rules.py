"""Binance spot's rules for a new order, as the emulator enforces them (binance/binance-spot-
api-docs): which order types a symbol takes (``enums.md`` "Order types", the symbol's
``orderTypes``; ``errors.md``: "Stop loss orders are not supported for this symbol."), what
each type must be sent with (``rest-api.md`` "New order": LIMIT and the *_LIMIT types need
``timeInForce``, ``quantity`` and ``price``; stops need ``stopPrice``), and the symbol filters
(``filters.md``: PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE, PERCENT_PRICE_BY_SIDE against the
5-minute average price, NOTIONAL with its minimum applied to market orders too)."""

from __future__ import annotations

from decimal import Decimal

from solbot.domain.values import ZERO, OrderType
from solbot.emulator.markets import Market
from solbot.emulator.wire import MAX_NOTIONAL, PRICE_DOWN, PRICE_UP, BinanceError

# Binance's types as the simulated exchange matches them
SIM_TYPE = {
    "MARKET": OrderType.MARKET,
    "LIMIT": OrderType.LIMIT,
    "LIMIT_MAKER": OrderType.LIMIT,
    "STOP_LOSS": OrderType.STOP_MARKET,
    "STOP_LOSS_LIMIT": OrderType.STOP_LIMIT,
    "TAKE_PROFIT_LIMIT": OrderType.LIMIT,  # rests as its limit (no trigger phase: docs/)
}
NOT_SUPPORTED = {
    "STOP_LOSS": "Stop loss orders are not supported for this symbol.",
    "STOP_LOSS_LIMIT": "Stop loss limit orders are not supported for this symbol.",
    "TAKE_PROFIT": "Take profit orders are not supported for this symbol.",
    "TAKE_PROFIT_LIMIT": "Take profit limit orders are not supported for this symbol.",
    "MARKET": "Market orders are not supported for this symbol.",
}
NEEDS_TIF = ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
NEEDS_PRICE = ("LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
NEEDS_STOP = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
BAD_PRICES = "The relationship of the prices for the orders is not correct."
TRAILING_BELOW = (10, 2000)  # the TRAILING_DELTA filter's bounds we serve (as recorded)
TRAILING_ABOVE = (10, 2000)


def mandatory(name: str) -> BinanceError:
    return BinanceError(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def decimal(params: dict[str, str], key: str) -> Decimal | None:
    if key not in params or params[key] == "":
        return None
    try:
        return Decimal(params[key])
    except ArithmeticError:
        raise BinanceError(400, -1100, f"Illegal characters found in parameter '{key}'.") from None


def check_trading(m: Market) -> None:
    if m.status != "TRADING":  # BREAK, HALT, CANCEL_ONLY: no new orders (enums.md)
        raise BinanceError(400, -1013, "Market is closed.")


def check_type(m: Market, otype: str) -> None:
    if otype not in SIM_TYPE and otype not in NOT_SUPPORTED:
        raise BinanceError(400, -1116, "Invalid orderType.")
    if otype not in m.order_types:
        raise BinanceError(400, -2010, NOT_SUPPORTED.get(otype, "Invalid orderType."))


def check_shape(
    params: dict[str, str], otype: str, prefix: str = ""
) -> tuple[Decimal | None, Decimal | None]:
    """The mandatory parameters of ``otype`` (an order list's leg: ``prefix`` ``above`` or
    ``below``); returns its (price, stopPrice)."""

    def key(name: str) -> str:
        return prefix + name[0].upper() + name[1:] if prefix else name

    price, stop = decimal(params, key("price")), decimal(params, key("stopPrice"))
    if otype in NEEDS_TIF and not params.get(key("timeInForce")):
        raise mandatory(key("timeInForce"))
    if otype == "LIMIT_MAKER" and params.get(key("timeInForce")):
        raise BinanceError(400, -1106, f"Parameter '{key('timeInForce')}' sent when not required.")
    if otype in NEEDS_PRICE and price is None:
        raise mandatory(key("price"))
    if otype in NEEDS_STOP and stop is None and not params.get(key("trailingDelta")):
        raise mandatory(key("stopPrice"))  # "Either stopPrice or trailingDelta or both"
    return price, stop


def check_trailing(params: dict[str, str], otype: str, side: str, prefix: str = "") -> int:
    """A trailing stop's ``trailingDelta`` (0 when none), by the symbol's TRAILING_DELTA
    filter (``filters.md``; ``faqs/trailing-stop-faq.md`` "How do I pass the TRAILING_DELTA
    filter?": a STOP_LOSS(_LIMIT) sell or TAKE_PROFIT(_LIMIT) buy by the *below* bounds, the
    other two by the *above* bounds)."""
    name = prefix + "TrailingDelta" if prefix else "trailingDelta"
    raw = params.get(name)
    if not raw:
        return 0
    if otype not in NEEDS_STOP:
        raise BinanceError(400, -1106, f"Parameter '{name}' sent when not required.")
    try:
        delta = int(raw)
    except ValueError:
        raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'.") from None
    below = (otype.startswith("STOP_LOSS")) == (side == "SELL")
    lo, hi = TRAILING_BELOW if below else TRAILING_ABOVE
    if not lo <= delta <= hi:
        raise BinanceError(400, -1013, "Filter failure: TRAILING_DELTA")
    return delta


def check_filters(
    m: Market,
    otype: str,
    qty: Decimal | None,
    price: Decimal | None,
    stop: Decimal | None,
    quote: Decimal | None,
) -> None:
    inst = m.inst
    for p in (price, stop):
        if p is not None and (not inst.price_ok(p) or p > Decimal("1000000")):
            raise BinanceError(400, -1013, "Filter failure: PRICE_FILTER")
    if qty is not None and otype != "MARKET" and (qty < inst.min_qty or not inst.qty_ok(qty)):
        raise BinanceError(400, -1013, "Filter failure: LOT_SIZE")
    if qty is not None and otype == "MARKET" and (qty <= ZERO or not inst.qty_ok(qty)):
        raise BinanceError(400, -1013, "Filter failure: MARKET_LOT_SIZE")
    avg = m.average_price(5)
    if price is not None and avg > ZERO and not avg * PRICE_DOWN <= price <= avg * PRICE_UP:
        raise BinanceError(400, -1013, "Filter failure: PERCENT_PRICE_BY_SIDE")
    ref = price if price is not None else avg
    notional = quote if quote is not None else (qty or ZERO) * ref
    if notional < inst.min_notional or (otype != "MARKET" and notional > MAX_NOTIONAL):
        raise BinanceError(400, -1013, "Filter failure: NOTIONAL")
