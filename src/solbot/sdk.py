"""Everything a strategy author needs, from one import path::

    from solbot.sdk import Strategy, Bar, SubmitOrder, SubmitBracket, CancelAll, Int, ...

A strategy subclasses ``Strategy``, declares its ``parameters``, registers indicators in
``on_start`` (``ctx.indicator(IndicatorSpec(...))``) and returns commands from its callbacks
(``on_bar``, ``on_fill``, ``on_order_event``, ``on_stop``); it never touches a venue. The same
code runs in backtests, on paper and live. ``docs/strategies.md`` walks through one.

**Stability.** The names in ``__all__`` follow semantic versioning from ``SDK_VERSION``: a
minor version may add names, fields with defaults or optional arguments; only a major version
removes or changes one. Anything imported from elsewhere in ``solbot`` is internal and may
change in any release.
"""

from __future__ import annotations

from solbot.domain.instruments import Instrument
from solbot.domain.messages import (
    Bar,
    CancelAll,
    CancelOrder,
    Command,
    Event,
    Fill,
    OrderAccepted,
    OrderCancelled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    SubmitBracket,
    SubmitOrder,
)
from solbot.domain.orders import Order, OrderStatus
from solbot.domain.values import ZERO, OrderType, Side, TradingState
from solbot.engine.params import Choice, Dec, Flag, Float, Int, Param, ParamError
from solbot.engine.strategy import NO_COMMANDS, ORDER_KINDS, Strategy, StrategyContext
from solbot.indicators.feed import IndicatorSpec, Series

SDK_VERSION = "1.1.0"

__all__ = [
    "NO_COMMANDS",
    "ORDER_KINDS",
    "SDK_VERSION",
    "ZERO",
    "Bar",
    "CancelAll",
    "CancelOrder",
    "Choice",
    "Command",
    "Dec",
    "Event",
    "Fill",
    "Flag",
    "Float",
    "IndicatorSpec",
    "Instrument",
    "Int",
    "Order",
    "OrderAccepted",
    "OrderCancelled",
    "OrderDenied",
    "OrderExpired",
    "OrderFilled",
    "OrderRejected",
    "OrderStatus",
    "OrderType",
    "Param",
    "ParamError",
    "Series",
    "Side",
    "Strategy",
    "StrategyContext",
    "SubmitBracket",
    "SubmitOrder",
    "TradingState",
]
