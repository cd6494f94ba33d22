"""Ports the engine depends on. Backtest, paper and live plug different adapters in."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from solbot.domain.messages import Bar, Event, SubmitOrder, ms_to_datetime
from solbot.domain.orders import Order
from solbot.domain.values import OrderId

EventSink = Callable[[Event], None]


@dataclass(frozen=True, slots=True)
class ExitPlan:
    """A bracket's exits, known when its entry is sent: the stop and the take-profit as
    the engine will arm them (``quantity`` is the entry's; the venue sizes what it rests)."""

    group: str
    stop: SubmitOrder
    take_profit: SubmitOrder


@dataclass(frozen=True, slots=True)
class PendingExits:
    """Exits a venue already holds for an entry (Binance: an OTOCO's pending pair, placed
    by the exchange once the entry fully filled): the engine arms them under these client
    ids and this quantity instead of sending new ones."""

    quantity: Decimal
    stop_client_id: str
    take_profit_client_id: str


class Clock(Protocol):
    def timestamp_ms(self) -> int: ...

    def now(self) -> datetime: ...


class SimClock:
    """Simulated time: advanced by the engine to each bar's timestamp."""

    __slots__ = ("ts",)

    def __init__(self, ts: int = 0) -> None:
        self.ts = ts

    def set(self, ts: int) -> None:
        self.ts = ts

    def timestamp_ms(self) -> int:
        return self.ts

    def now(self) -> datetime:
        return ms_to_datetime(self.ts)


class WallClock:
    """Real time, for live and paper trading."""

    __slots__ = ()

    def set(self, ts: int) -> None:  # bars do not move real time
        return None

    def timestamp_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def now(self) -> datetime:
        return ms_to_datetime(self.timestamp_ms())


class Venue(Protocol):
    """Where orders go. Reports come back through the sink given to ``bind``."""

    def bind(self, sink: EventSink) -> None: ...

    def submit(self, order: Order) -> None: ...

    def submit_list(self, orders: list[Order]) -> None:
        """Orders that stand or fall together (an OCO's legs: one fills or triggers, the
        other is cancelled; they share one hold)."""
        ...

    def client_id(self, order_id: OrderId) -> str:
        """The id this venue will know ``order_id`` by (recorded with the intent)."""
        ...

    def submit_bracket(self, entry: Order, exits: ExitPlan) -> None:
        """A resting bracket entry: a venue that can rests its exits with it (placed when
        it fills); else the same as ``submit``."""
        ...

    def pending_exits(self, group: str) -> PendingExits | None:
        """The exits this venue placed with the (now fully filled) entry of ``group``."""
        ...

    def cancel(self, order_id: OrderId) -> None: ...

    def on_bar(self, bar: Bar) -> None:
        """Market data arrived. A simulated venue matches here; a live one ignores it."""
        ...
