"""One symbol's part of the running bot — a sleeve: its instrument, its slice of the
capital (its own ledger and venue), its engine and strategy, its market data and books.

The account (``runtime.account``) holds one sleeve per traded symbol and what belongs to
the whole account (the kill switch, the daily loss limit on the sum, the exposure cap over
all positions). A single-symbol bot is a one-sleeve account. A sleeve knows nothing of the
session it trades in: its venue is handed to it, and what a session does to a sleeve's
orders at the start (paper: cancel what a crash left; live: put it back) the session does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np

from solbot import failpoints
from solbot.data.bars import BarArrays, timeframe_ms
from solbot.domain.instruments import Instrument, instrument_for
from solbot.domain.ledger import Ledger
from solbot.domain.messages import (
    Bar,
    Event,
    OrderFilled,
    OrderSubmitted,
    SubmitBracket,
    SubmitOrder,
    TradingStateChanged,
)
from solbot.domain.orders import OrderStatus
from solbot.domain.values import ZERO, OrderId, OrderType, Side, TradingState
from solbot.engine.core import Engine
from solbot.engine.portfolio import Portfolio
from solbot.engine.ports import SimClock, Venue
from solbot.engine.risk import RiskEngine, RiskLimits
from solbot.persistence.store import Restored, Store
from solbot.runtime.config import ConfigError
from solbot.runtime.feeds import BarFeed, ReplayFeed, SyntheticFeed
from solbot.runtime.marketdata import feed_for
from solbot.runtime.ports import Alerts, MetricsSink
from solbot.strategies import create
from solbot.venues.restfeed import CcxtFeed

if TYPE_CHECKING:
    from solbot.runtime.config import Settings

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
YIELD_EVERY = 0.02  # s: the longest the market task holds the event loop between bars


def bracket_plan(kv: dict[str, str]) -> tuple[OrderId, SubmitBracket] | None:
    """The newest bracket a sleeve sent (its entry's id and the bracket), from its kv."""
    text = kv.get("bracket")
    if not text:
        return None
    p = json.loads(text)
    entry = SubmitOrder(Side.BUY, OrderType.MARKET, ZERO)  # the entry itself is on record
    trail = p.get("trail_bps")
    return OrderId(p["entry"]), SubmitBracket(
        entry,
        Decimal(p["take_profit"]),
        Decimal(p["stop_loss"]),
        p.get("tag", ""),
        int(trail) if trail is not None else None,
    )


class Sleeve:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        alerts: Alerts,
        metrics: MetricsSink,
        symbol: str,
        index: int,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.alerts = alerts
        self.metrics = metrics
        self.on_change = on_change  # told after every event of this sleeve's engine
        self.symbol = symbol
        self.index = index
        self.several = len(settings.trading_symbols) > 1
        self.instrument: Instrument = instrument_for(symbol)
        self.engine: Engine
        self.venue: Venue
        self.last_bar: Bar | None = None
        self.last_bar_wall: float | None = None
        self.bars_seen = 0
        self.recent_bars: deque[Bar] = deque(maxlen=1000)
        self.market_feed: BarFeed | None = None
        self.trade_from: int | None = None  # bars before this (ms) only warm up (vol calibration)
        self._submit_wall: dict[OrderId, float] = {}

    @property
    def order_prefix(self) -> str:
        return f"sb{self.instrument.base}" if self.several else "sb"

    # ---------------------------------------------------------------- building
    def build(self, restored: Restored, balances: dict[str, Decimal], venue: Venue) -> None:
        """The engine over ``balances`` (restored books' totals, or a new sleeve's share) and
        ``restored``'s position, trading at ``venue``. The session then puts back or cancels
        the orders a previous run left, and ``start`` begins trading."""
        s, inst = self.settings, self.instrument
        self.venue = venue
        if restored.empty:
            initial_quote = balances[inst.quote]
        else:
            value = restored.kv.get("initial_quote")
            initial_quote = Decimal(value) if value else s.initial_cash
        portfolio = Portfolio(inst, Ledger(balances), initial_quote=initial_quote)
        if restored.position is not None:
            p = restored.position
            portfolio.position.qty, portfolio.position.avg_price = p.qty, p.avg_price
            portfolio.position.realised_pnl, portfolio.position.fees = p.realised_pnl, p.fees
        self.engine = Engine(
            create(s.strategy, **s.strategy_params),
            portfolio,
            venue,
            SimClock(),
            RiskEngine(RiskLimits(max_order_value=s.max_order_value)),
            id_prefix=self.order_prefix,
            first_seq=restored.max_order_seq + 1,
            stop_limit_offset=s.stop_limit_offset,
        )

    def start(self, restored: Restored) -> None:
        portfolio = self.engine.portfolio
        if restored.empty:
            self.store.put(sleeve=self.symbol, initial_quote=str(portfolio.initial_quote))
        # the books as this run starts them (after a crash: what stale orders held is free)
        self.store.write_books(portfolio.ledger, portfolio.position, int(time.time() * 1000))
        self.engine.listeners.append(self._on_event)
        self.engine.on_bracket = self._record_bracket
        self.engine.feed.base_ms = timeframe_ms(self.settings.timeframe)  # informative series
        self.engine.start()
        if "last_bar" in restored.kv:  # marks equity and risk checks until the next bar
            self.last_bar = Bar(*json.loads(restored.kv["last_bar"]))
            self.engine.last_bar = self.last_bar
        if "trade_from" in restored.kv:
            self.trade_from = int(restored.kv["trade_from"])

    def cancel_stale(self, restored: Restored) -> None:
        """Orders left open by a crash of a paper run: the venue that held them is gone."""
        store = self.store
        for row in restored.open_orders:
            row.status = OrderStatus.CANCELLED.value
            row.reason = "paper venue restarted"
            with store.session() as sess, sess.begin():
                sess.merge(row)
            store.audit("OrderCancelled", {"reason": row.reason}, order_id=row.order_id)

    def calibration(self, days: int) -> BarArrays:
        """Daily-or-finer bars of the ``days`` before this sleeve trades, for volatility
        weights. Synthetic and replayed markets: the first ``days`` of the data, which are
        then only warm-up (``trade_from``); an exchange: the last ``days`` daily bars."""
        feed = self.feed()
        if isinstance(feed, SyntheticFeed):
            data = feed.block(0, feed.start_price, feed.start_ms)
        elif isinstance(feed, ReplayFeed):
            first = int(np.searchsorted(feed.data.ts, feed.start_ts or 0))
            data = feed.data.slice(first, len(feed.data))
        else:
            rest = getattr(feed, "rest", feed)
            if not isinstance(rest, CcxtFeed):
                raise ConfigError(f"{self.symbol}: no data to measure volatility on")
            now = int(time.time() * 1000)
            try:
                rows = rest.exchange.fetch_ohlcv(
                    self.symbol, "1d", now - (days + 1) * DAY_MS, days + 1
                )
            except Exception as exc:  # exit 2 with the reason, not a traceback
                raise ConfigError(
                    f"allocation: cannot fetch {days} daily bars of {self.symbol} for "
                    f"volatility weights ({type(exc).__name__}: {str(exc)[:120]})"
                ) from None
            return BarArrays.from_rows([tuple(r) for r in rows], self.symbol, "1d")
        self.trade_from = int(data.ts[0]) + days * DAY_MS
        self.store.put(sleeve=self.symbol, trade_from=str(self.trade_from))
        return data

    def history_bars(self) -> int:
        """Closed bars to warm the strategy with at start: what it declares it needs
        (``Strategy.warmup_bars``: 1,488 1h bars for ``tsmom``'s 60 days), at least 200."""
        s = self.settings
        engine = getattr(self, "engine", None)
        strategy = (
            engine.strategy if engine is not None else create(s.strategy, **s.strategy_params)
        )
        return max(200, strategy.warmup_bars(timeframe_ms(s.timeframe)))

    def feed(self) -> BarFeed:
        if self.market_feed is None:
            self.market_feed = feed_for(
                self.settings, self.symbol, self.index, history=self.history_bars()
            )
        return self.market_feed

    # ---------------------------------------------------------------- queries
    def mark(self) -> Decimal:
        bar = self.last_bar or self.engine.last_bar
        return self.instrument.price(bar.close) if bar is not None else ZERO

    def equity(self) -> Decimal:
        return self.instrument.money(self.engine.portfolio.equity(self.mark()))

    def exposure(self) -> Decimal:
        pf = self.engine.portfolio
        return self.instrument.money(pf.ledger.total(self.instrument.base) * self.mark())

    # ---------------------------------------------------------------- events
    def _on_event(self, event: Event | TradingStateChanged) -> None:
        self.on_change()
        if isinstance(event, TradingStateChanged):
            detail = {"state": event.state, "reason": event.reason}
            if self.several:
                detail["symbol"] = self.symbol
            self.store.audit("TradingStateChanged", detail)
            return
        pf = self.engine.portfolio
        order = pf.orders[event.order_id]
        realised = pf.fills[-1].realised_pnl if isinstance(event, OrderFilled) else ZERO
        self.store.record(event, order, pf.ledger, pf.position, realised)
        if isinstance(event, OrderFilled):
            failpoints.hit("fill-recorded")
        self.metrics.on_event(event, order)
        now = time.perf_counter()
        if isinstance(event, OrderSubmitted):
            self._submit_wall[event.order_id] = now
        elif order.status.is_terminal:
            t0 = self._submit_wall.pop(event.order_id, None)
            if t0 is not None and isinstance(event, OrderFilled):
                self.metrics.roundtrip_done(now - t0)
        if isinstance(event, OrderFilled) and self.settings.notify_fills:
            f = event.fill
            self.alerts.send("P3", "Fill", f"{f.side.value} {f.quantity} {f.symbol} @ {f.price}")

    def _record_bracket(self, entry_id: OrderId, cmd: SubmitBracket) -> None:
        """The newest bracket's plan, before its entry is sent: what protects the position."""
        plan = {
            "entry": entry_id,
            "take_profit": str(cmd.take_profit),
            "stop_loss": str(cmd.stop_loss),
            "tag": cmd.tag,
            "trail_bps": cmd.trail_bps,
        }
        self.store.put(sleeve=self.symbol, bracket=json.dumps(plan))

    def step(self, bar: Bar, warm_only: bool) -> None:
        """One closed bar through the engine (``warm_only``: the market moves on — resting
        orders may fill — but the strategy is not asked)."""
        if warm_only or (self.trade_from is not None and bar.ts < self.trade_from):
            self.engine.warm_up(bar)
        else:
            self.engine.on_bar(bar)
        self.last_bar, self.last_bar_wall = bar, time.monotonic()
        self.recent_bars.append(bar)
        self.bars_seen += 1

    def write_books(self) -> None:
        pf = self.engine.portfolio
        self.store.write_books(pf.ledger, pf.position, int(time.time() * 1000))

    def flatten(self) -> bool:
        """Sell the whole position now (only exposure-reducing orders pass: REDUCING); False
        when there is nothing to sell. The session may fill it at once (``fill_now``)."""
        inst = self.instrument
        qty = self.engine.portfolio.ledger.free(inst.base)
        if qty < inst.min_qty or self.last_bar is None:
            return False
        self.engine.set_trading_state(TradingState.REDUCING, "kill switch: flattening")
        order = SubmitOrder(
            Side.SELL, OrderType.MARKET, inst.qty(qty), reduce_only=True, tag="kill-flatten"
        )
        self.engine.execute([order])
        return True

    # ---------------------------------------------------------------- running
    async def rewarm(self, feed: BarFeed, last_ts: int) -> int:
        """After a restart: the strategy's indicators over the ``history_bars`` closed bars
        up to the last one processed, so that it decides as if never stopped (``tsmom``'s
        60 daily closes would otherwise keep it idle 62 days after every deploy). The bars
        after it then come as usual. Returns how many bars warmed it."""
        before: Callable[[int, int], Awaitable[list[Bar]]] | None = getattr(feed, "before", None)
        if before is None:
            return 0
        count = self.history_bars()
        bars = await before(last_ts, count)
        for bar in bars:
            self.engine.warm_indicators(bar)
        last = self.last_bar if self.last_bar is not None else (bars[-1] if bars else None)
        if last is not None and last.ts == last_ts:
            self.engine.resume(last)
        log.info(
            "%s: strategy warmed on %d of %d bars up to the last processed", self.symbol,
            len(bars), count,
        )  # fmt: skip
        return len(bars)

    async def market(
        self, on_bar: Callable[[Sleeve, Bar, bool], None], stop: Callable[[], bool]
    ) -> None:
        last = self.store.restore(self.symbol).kv.get("last_bar_ts")
        after = int(last) if last else None
        feed = self.feed()
        yielded = time.monotonic()
        try:
            if after is not None:
                await self.rewarm(feed, after)
            async for bar in feed.bars(after):
                if stop():
                    break
                on_bar(self, bar, feed.is_history(bar))
                if time.monotonic() - yielded > YIELD_EVERY:
                    # a warm-up of hundreds of history bars comes without a pause: let the
                    # loop read the answers waiting meanwhile (a 429 read half a second late
                    # is half a second of requests sent inside its Retry-After)
                    await asyncio.sleep(0)
                    yielded = time.monotonic()
        finally:
            close: Callable[[], Awaitable[None]] | None = getattr(feed, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
        log.info("market feed ended (%s)", self.symbol)
