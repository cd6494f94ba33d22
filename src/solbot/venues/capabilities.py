"""What an exchange lets the live venue do, from ccxt's ``has`` map and what we know of its
API. Binance spot is the first-class target (every flag verified against the emulator);
other ccxt exchanges run through the same venue with the generic paths:

* client order id sent as ccxt's unified ``clientOrderId``; an order is looked up by it by
  scanning open and recent closed orders (no exchange-specific lookup parameter);
* fills polled by time (``since``) instead of by trade id, de-duplicated by trade id;
* no ``cancelAllOrders``: the kill switch cancels the open orders one by one;
* a dead man's switch (ccxt ``cancelAllOrdersAfter``: Kraken, Bybit, OKX…) kept armed while
  running, so a bot that dies leaves no resting order behind for long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
        ]
        if self.dead_mans_switch:
            flags.append("dead man's switch")
        return f"{self.exchange}: " + ", ".join(flags)
