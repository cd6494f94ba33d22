"""Behaviour modes of the emulator: how the real Binance differs from a kind test double, each
switchable and each following a section of binance/binance-spot-api-docs.

``"clock=2.5,lookup_lag=3,bnb=600,weight_limit=600,ban=5,ws_lifetime=30,ws_ping=20,
kline_updates=3"``:

* ``clock`` — seconds the exchange's clock runs ahead of ours (negative: behind). Signed
  requests are judged by it (``rest-api.md`` "Timing security": refused with -1021 when the
  timestamp is 1 s ahead of the server's time or more than ``recvWindow`` behind), and
  ``/api/v3/time`` answers it.
* ``lookup_lag`` — seconds an order stays unknown to the order query and ``allOrders`` after
  it was placed (-2013 "Order does not exist."): ``rest-api.md`` "Data Sources", the order
  query reads "Memory => Database". A client id is free again once its order is FILLED or
  CANCELED ("New order": "Orders with the same newClientOrderID can be accepted only when the
  previous one is filled").
* ``bnb`` — "pay fees with BNB" on, BNB at this price in the quote asset: the commission is
  charged in BNB, 25 % off, while the account holds enough, otherwise in the received asset
  (``faqs/commission_faq.md``).
* ``weight_limit`` — REQUEST_WEIGHT per minute (``rest-api.md`` "IP Limits"; 6,000 on Binance
  spot): every answer carries ``X-MBX-USED-WEIGHT-1M``; past the limit the answer is 429 with
  ``Retry-After`` (seconds to the next minute); ``ban_after`` requests sent inside a 429's
  Retry-After make an IP ban, 418, for ``ban`` seconds, doubling with each ban ("IP bans are
  tracked and scale in duration for repeat offenders").
* ``ws_lifetime``, ``ws_ping`` — websocket connections are cut after this many seconds and
  pinged every ``ws_ping`` seconds (``web-socket-streams.md`` "General WSS information": "A
  single connection … is only valid for 24 hours", "a ping frame every 20 seconds").
* ``kline_updates`` — kline updates pushed per bar while it forms, besides its final one
  ("The Kline/Candlestick Stream push updates to the current klines/candlestick every
  second").
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any


class BehaviourError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Behaviour:
    clock: float = 0.0
    lookup_lag: float = 0.0
    bnb: Decimal | None = None
    weight_limit: int = 6000
    ban_after: int = 3
    ban: float = 120.0
    ws_lifetime: float = 86_400.0
    ws_ping: float = 20.0
    kline_updates: int = 1

    @classmethod
    def parse(cls, spec: str | None) -> Behaviour:
        if not spec:
            return cls()
        opts: dict[str, Any] = {}
        for part in spec.split(","):
            key, sep, value = part.strip().partition("=")
            if not sep:
                raise BehaviourError(f"behaviour {part!r}: expected key=value")
            if key not in cls.__dataclass_fields__:
                raise BehaviourError(
                    f"unknown behaviour {key!r} (modes: {', '.join(cls.__dataclass_fields__)})"
                )
            try:
                if key == "bnb":
                    opts[key] = Decimal(value)
                    if opts[key] <= 0:
                        raise BehaviourError("behaviour bnb: the BNB price must be positive")
                elif key in ("weight_limit", "ban_after", "kline_updates"):
                    opts[key] = int(value)
                    if opts[key] < 1:
                        raise BehaviourError(f"behaviour {key}: must be at least 1")
                else:
                    opts[key] = float(value)
                    if key != "clock" and opts[key] < 0:
                        raise BehaviourError(f"behaviour {key}: must not be negative")
            except (ValueError, InvalidOperation) as exc:
                if isinstance(exc, BehaviourError):
                    raise
                raise BehaviourError(f"behaviour {key}: {value!r} is not a number") from None
        return cls(**opts)
