"""What an exchange lets the live venue do, from ccxt's ``has`` map and what we know of its
API. Binance spot is the first-class target (every flag verified against the emulator);
other ccxt exchanges run through the same venue with the generic paths:

* client order id sent as ccxt's unified ``clientOrderId``; an order is looked up by it by
  scanning open and recent closed orders (no exchange-specific lookup parameter);
* fills polled by time (``since``) instead of by trade id, de-duplicated by trade id;
* no ``cancelAllOrders``: the kill switch cancels the open orders one by one;
* a dead man's switch (ccxt ``cancelAllOrdersAfter``: Kraken, Bybit, OKX…) kept armed while
  running, so a bot that dies leaves no resting order behind for long;
* no order lists: an OCO's legs rest as two orders.

Live trading runs only on exchanges whose answers our replay tests cover
(``REPLAY_TESTED``): the generic paths above are not proven against any real exchange's
recorded answers, and on Kraken, OKX, Bybit or Coinbase ccxt's stop, market-buy and
quote-sized forms do not do what those paths assume.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from solbot.domain.instruments import Instrument

# exchanges with replay tests from recorded answers (tests/unit/test_binance_replay.py)
REPLAY_TESTED = frozenset({"binance"})


@dataclass(frozen=True, slots=True)
class Capabilities:
    exchange: str
    client_id_param: str  # create_order parameter that carries our client order id
    lookup_param: str | None  # fetch_order by client id; None: scan open + closed orders
    cancel_param: str | None  # cancel_order by client id; None: by the exchange's order id
    trades_from_id: str | None  # fetch_my_trades by trade id; None: by time
    cancel_all: bool  # one call cancels every open order of a symbol
    dead_mans_switch: bool  # cancel_all_orders_after
    fetch_closed_orders: bool
    order_lists: bool = False  # Binance order lists (OCO): both legs under one lock
    quote_qty_param: str | None = None  # create_order parameter for a quote-sized market buy
    fee_assets: tuple[str, ...] = ()  # assets the exchange may charge fees in besides the pair

    @classmethod
    def of(cls, ex: Any) -> Capabilities:
        has: dict[str, Any] = dict(getattr(ex, "has", {}) or {})
        name = str(getattr(ex, "id", "") or type(ex).__name__)
        if name.startswith("binance"):
            return cls(
                exchange=name,
                client_id_param="newClientOrderId",
                lookup_param="origClientOrderId",
                cancel_param="origClientOrderId",
                trades_from_id="fromId",
                cancel_all=True,
                dead_mans_switch=False,
                fetch_closed_orders=True,
                order_lists=True,
                quote_qty_param="quoteOrderQty",
                fee_assets=("BNB",),  # commission_faq.md: "paid in BNB" with the discount
            )
        return cls(
            exchange=name,
            client_id_param="clientOrderId",
            lookup_param=None,
            cancel_param=None,
            trades_from_id=None,
            cancel_all=bool(has.get("cancelAllOrders")),
            dead_mans_switch=bool(has.get("cancelAllOrdersAfter")),
            fetch_closed_orders=bool(has.get("fetchClosedOrders")),
        )

    def describe(self) -> str:
        flags = [
            f"lookup by {'client id' if self.lookup_param else 'scan'}",
            f"fills by {'trade id' if self.trades_from_id else 'time'}",
            "cancel-all" if self.cancel_all else "cancel one by one",
            "OCO order lists" if self.order_lists else "no order lists",
        ]
        if self.dead_mans_switch:
            flags.append("dead man's switch")
        return f"{self.exchange}: " + ", ".join(flags)


def instrument_from_market(market: dict[str, Any], precision_mode: int) -> Instrument:
    """The exchange's filters for a spot market as our Instrument (ccxt ``load_markets``):
    tick and lot from ``precision`` (tick sizes, or decimal places on exchanges that count
    those), minimum quantity and notional from ``limits``, maker/taker fees."""
    from ccxt.base.decimal_to_precision import DECIMAL_PLACES

    def step(value: Any) -> Decimal:
        if value is None:
            raise ValueError(f"{market.get('symbol')}: the exchange gives no precision")
        if precision_mode == DECIMAL_PLACES:
            return Decimal(1).scaleb(-int(value))
        return Decimal(str(value))

    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    lot = step(precision.get("amount"))
    min_qty = (limits.get("amount") or {}).get("min")
    min_cost = (limits.get("cost") or {}).get("min")
    fee = Decimal("0.001")
    return Instrument(
        symbol=str(market["symbol"]),
        base=str(market["base"]),
        quote=str(market["quote"]),
        tick_size=step(precision.get("price")),
        lot_size=lot,
        min_qty=Decimal(str(min_qty)) if min_qty is not None else lot,
        min_notional=Decimal(str(min_cost)) if min_cost is not None else Decimal(0),
        maker_fee=Decimal(str(market["maker"])) if market.get("maker") is not None else fee,
        taker_fee=Decimal(str(market["taker"])) if market.get("taker") is not None else fee,
    )
