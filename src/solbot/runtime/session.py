"""Where the account trades: a ``Session`` gives each sleeve its venue, deals with what a
previous run left open, runs what the venue needs while trading and leaves it on stop.

``PaperSession``: the simulated exchange in this process, one per sleeve. ``LiveSession``
(``runtime.live``): the exchange through ccxt. The account and the shell ask a session, never
which kind it is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager
from dataclasses import replace
from decimal import Decimal
from typing import Any, Protocol

from solbot.domain.messages import OrderSubmitted
from solbot.domain.orders import OrderStatus
from solbot.domain.values import ZERO, OrderId
from solbot.engine.ports import Venue
from solbot.persistence.store import Restored, Store, open_order
from solbot.runtime.config import Settings
from solbot.runtime.sleeve import Sleeve, bracket_plan
from solbot.runtime.view import ExchangeHealth
from solbot.venues.sim import SimConfig, SimulatedExchange

log = logging.getLogger(__name__)


class Session(Protocol):
    @property
    def mode(self) -> str:
        """paper, live, or live (testnet)."""

    def describe(self) -> str:
        """For the start-up line: ``paper`` or ``LIVE (binance)``."""

    async def connect(self) -> None:
        """Before the account is built: reach the venue (live: the exchange's clock, markets,
        filters and balances)."""

    def capital(self, quote: str) -> Decimal:
        """The capital the account splits over new sleeves."""

    def new_balances(self, sleeve: Sleeve, cash: Decimal, resumed: bool) -> dict[str, Decimal]:
        """A sleeve with no books yet: its ``cash`` and what it holds of its base."""

    def venue(self, sleeve: Sleeve, balances: dict[str, Decimal]) -> Venue: ...

    def restore_orders(self, restored: Restored, sleeve: Sleeve) -> None:
        """The orders a previous run left open (``restored``), once the sleeve's engine is
        built: put back in the books (live) or cancelled (paper: their venue died)."""

    async def reconcile_start(self) -> None:
        """After the account is built, before trading: make our books and the venue agree."""

    def tasks(self) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        """The session's tasks while trading, by name."""

    def bar_transaction(self, store: Store) -> AbstractContextManager[Any]:
        """Around each bar: one database transaction where the venue is restored from the
        store with us (paper), none where an order's intent must be durable before it is
        sent (live)."""

    def fill_now(self, sleeve: Sleeve) -> None:
        """A flattening market order: filled at once where the venue is ours (paper)."""

    def problems(self) -> list[str]:
        """What makes the bot unhealthy on this session's side (the exchange's clock)."""

    def exchange_health(self) -> ExchangeHealth | None: ...

    async def stop(self, cancel: bool) -> None:
        """Leave the venue: with ``cancel``, holding no open order of ours."""

    async def close(self) -> None:
        """Give up the connection (a start that failed after ``connect``)."""


class PaperSession:
    """Paper trading: each sleeve's simulated exchange, in this process, restored from the
    store with the account's books."""

    mode = "paper"

    def __init__(self, settings: Settings, protect: Callable[[], None] | None = None) -> None:
        """``protect``: at start, after the orders are restored, protect a position no
        resting stop covers (``Protector.protect_positions``, as the live start does): a
        clean stop cancels the exits by default (``SOLBOT_CANCEL_ON_STOP``)."""
        self.settings = settings
        self.protect = protect

    def describe(self) -> str:
        return "paper"

    async def connect(self) -> None:
        return None

    def capital(self, quote: str) -> Decimal:
        return self.settings.initial_cash

    def new_balances(self, sleeve: Sleeve, cash: Decimal, resumed: bool) -> dict[str, Decimal]:
        inst = sleeve.instrument
        if resumed:
            log.warning(
                "%s: a new sleeve with %s %s of paper capital", sleeve.symbol, cash, inst.quote
            )
        return {inst.quote: cash, inst.base: ZERO}

    def venue(self, sleeve: Sleeve, balances: dict[str, Decimal]) -> Venue:
        s, inst = self.settings, sleeve.instrument
        stamp = f"{inst.base if sleeve.several else ''}{int(time.time() * 1000)}"
        return SimulatedExchange(
            inst,
            balances,
            SimConfig(slippage=s.slippage, maker_fee=s.fee, taker_fee=s.fee),
            id_prefix=f"P{stamp}-",
        )

    def restore_orders(self, restored: Restored, sleeve: Sleeve) -> None:
        """The orders the previous run's paper venue had working go back on its book and into
        the books, holding what they held — a bracket's stop and take-profit go on protecting
        its position after a restart, as an exchange's OCO does. Any partly filled (or never
        accepted) are cancelled: what they had done is in the fills."""
        venue, pf = sleeve.venue, sleeve.engine.portfolio
        last = restored.kv.get("last_bar")
        close = float(json.loads(last)[4]) if last else 0.0
        kept: set[str] = set()
        if isinstance(venue, SimulatedExchange) and close > 0:
            ref = sleeve.instrument.price(close)
            for row in restored.open_orders:
                if row.status != OrderStatus.ACCEPTED.value or row.filled_qty != ZERO:
                    continue
                order = open_order(row, venue.client_id(OrderId(row.order_id)))
                asset, amount = pf.reservation_needed(order, ref)
                if amount > pf.ledger.free(asset):  # cannot hold what it held: cancelled
                    log.warning("paper restart: %s cannot hold %s %s", row.order_id, amount, asset)
                    continue
                pf.add(order)
                pf.submitted(order, OrderSubmitted(order.order_id, row.created_ts), ref)
                order.status = OrderStatus.ACCEPTED
                order.venue_order_id = row.venue_order_id
                venue.restore(order, close)
                kept.add(row.order_id)
        rest = [r for r in restored.open_orders if r.order_id not in kept]
        sleeve.cancel_stale(replace(restored, open_orders=rest))
        plan = bracket_plan(restored.kv)
        if plan is not None and plan[0] in kept:
            sleeve.engine.expect_bracket(*plan)  # a resting entry: its fill arms its exits

    async def reconcile_start(self) -> None:
        if self.protect is not None:  # the venue was restored from our books
            self.protect()

    def tasks(self) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        return []

    def bar_transaction(self, store: Store) -> AbstractContextManager[Any]:
        # The paper venue lives in this process and is restored from the store, so one
        # transaction per bar (one fsync) is both faster and stricter: after a crash a bar
        # is either wholly on disk or replayed whole.
        return store.batch()

    def fill_now(self, sleeve: Sleeve) -> None:
        venue, bar = sleeve.venue, sleeve.last_bar
        if isinstance(venue, SimulatedExchange) and bar is not None:
            venue.match_market_now(bar.close)  # at the last close less slippage
            sleeve.engine.on_venue_event_drain()

    def problems(self) -> list[str]:
        return []

    def exchange_health(self) -> ExchangeHealth | None:
        return None

    async def stop(self, cancel: bool) -> None:
        return None

    async def close(self) -> None:
        return None


def no_transaction() -> AbstractContextManager[Any]:
    return contextlib.nullcontext()
