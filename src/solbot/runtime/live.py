"""What a live run adds to the bot service: connecting to the exchange, putting the orders a
previous run left open back in the books, reconciling with the exchange at start and then
periodically, recovering from an exchange ban, and leaving the exchange clean on stop.

Reconciliation (``runtime.reconcile``) compares totals per asset and open orders; two
conclusive mismatches in a row fail closed.

Protection that rests at the exchange: a restart keeps the order lists (OCOs) a previous run
left protecting a position and cancels the rest; an entry still open gets its bracket back
(its exits are armed when it fills); a position without a resting stop is re-protected
(``runtime.protection``).

Several symbols share one exchange client and one account: each symbol's sleeve has its own
venue (its orders and trades), a ban holds them all, and reconciliation compares each base
asset with its sleeve and the quote currency with the sum of the sleeves.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from collections import deque
from collections.abc import Coroutine
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from solbot.domain.messages import (
    CancelAll,
    CancelOrder,
    OrderAccepted,
    OrderRejected,
    OrderSubmitted,
)
from solbot.domain.orders import Order, OrderStatus
from solbot.domain.values import ZERO, OrderId, OrderType, Side, TradingState
from solbot.persistence.store import Restored
from solbot.runtime.protection import Protector, bracket_plan, protected_groups
from solbot.runtime.reconcile import Reconciler
from solbot.venues.capabilities import REPLAY_TESTED
from solbot.venues.exchange import binance_exchange
from solbot.venues.live import LiveVenue, VenueHealth
from solbot.venues.traffic import gate_for, urgent
from solbot.venues.userstream import UserStream, user_stream_client

if TYPE_CHECKING:
    from solbot.runtime.service import BotService
    from solbot.runtime.sleeve import Sleeve

log = logging.getLogger(__name__)

# the kill's wait for orders in flight: with the tasks' 5 s, the cancels' 10 + 5 s, inside
# systemd's TimeoutStopSec=30 (deploy/systemd/bot.service)
SETTLE_SECONDS = 8.0
START_LOOKS = 20  # the start reconciliation looks again while our trades are still arriving
START_LOOK_PAUSE = 0.25  # s between those looks (5 s in all)
BANS_BEFORE_OPERATOR = 3  # this many bans within an hour: stay halted until a restart
CLOCK_RESYNC_SECONDS = 300.0  # the exchange's clock is read again this often


class ReconcileError(Exception):
    """Live start: our books and the exchange's disagree; the message is the report."""


class LiveSession:
    def __init__(self, service: BotService) -> None:
        self.s = service
        self.venue: LiveVenue | None = None  # the first symbol's
        self.venues: dict[str, LiveVenue] = {}  # by symbol
        self.balances: dict[str, Decimal] = {}  # the exchange's totals when we connected
        self.mismatches = 0  # consecutive conclusive mismatches of the periodic check
        self.last_report = ""
        self.failed = False
        self._ban_reason: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # where trading state changes
        self.user_stream: UserStream | None = None
        self._clock_reason: str | None = None
        self._bans: deque[float] = deque(maxlen=BANS_BEFORE_OPERATOR)
        self.protector = Protector(service)
        self.health = VenueHealth()
        self.rec = Reconciler(self)

    def pairs(self) -> list[tuple[Sleeve, LiveVenue]]:
        return [(sl, self.venues[sl.symbol]) for sl in self.s.sleeves]

    # ---------------------------------------------------------------- connecting
    async def connect(self) -> LiveVenue:
        s = self.s.settings
        assert s.exchange and s.exchange_api_key and s.exchange_api_secret
        if s.exchange not in REPLAY_TESTED:  # exit 2
            raise ValueError(
                f"exchange: live trading on {s.exchange} is not supported (no replay tests "
                f"from its recorded answers; live runs on: {', '.join(sorted(REPLAY_TESTED))})"
            )
        ex = binance_exchange(
            s.exchange,
            s.exchange_url,
            s.exchange_api_key.get_secret_value(),
            s.exchange_api_secret.get_secret_value(),
            s.exchange_timeout_ms,
            sandbox=s.exchange_sandbox,
            recv_window_ms=s.exchange_recv_window_ms,
        )
        gate = self.health.traffic = gate_for(s.exchange, s.exchange_weight_share)
        gate.on_limit = self._traffic_limit
        self._loop = asyncio.get_running_loop()
        gate.install(ex)
        if s.exchange_record is not None:
            from solbot.venues import recorder

            recorder.install(ex, s.exchange_record)
        salt = secrets.token_hex(3)  # this run's part of every new client order id
        for sl in self.s.sleeves:
            self.venues[sl.symbol] = LiveVenue(
                ex,
                sl.instrument,
                poll=s.exchange_poll_seconds,
                on_error=lambda kind: self.s.metrics.venue_errors.labels(kind).inc(),
                on_alarm=self.alarm,
                on_recovered=self.recovered,
                dead_man_seconds=s.exchange_dead_man_seconds,
                health=self.health,
                run_salt=salt,
            )
        venue = self.venue = self.venues[self.s.primary.symbol]
        log.info("exchange capabilities: %s", venue.caps.describe())
        if s.exchange_user_stream and venue.caps.order_lists:  # Binance: its user data stream
            client = user_stream_client(
                s.exchange,
                s.exchange_url,
                s.exchange_api_key.get_secret_value(),
                s.exchange_api_secret.get_secret_value(),
                sandbox=s.exchange_sandbox,
            )
            if client is not None:
                self.user_stream = UserStream(client, ex, self.venues, gate)
        try:
            await self._open(ex, venue)
        except BaseException:
            await ex.close()
            raise
        return venue

    async def _open(self, ex: Any, venue: LiveVenue) -> None:
        gate = self.health.traffic
        await venue.call(venue.sync_clock)
        log.info("exchange clock: %+.0f ms from ours", self.health.clock_offset_ms)
        await venue.call(ex.load_markets)
        if venue.caps.order_lists:  # Binance: the request-weight limit of exchangeInfo
            info = await venue.call(ex.public_get_exchangeinfo)
            gate.set_limits(list(info.get("rateLimits") or []))
        self._adopt_filters(ex)
        self._check_markets(ex)
        bal = await venue.call(ex.fetch_balance)
        self.balances = {
            a: Decimal(str(v)) for a, v in (bal.get("total") or {}).items() if v is not None
        }

    def _adopt_filters(self, ex: Any) -> None:
        """Trade by the exchange's own precision, limits and fees for each symbol."""
        from solbot.venues.capabilities import instrument_from_market

        for sl, venue in self.pairs():
            symbol = sl.symbol
            if symbol not in (ex.markets or {}):
                raise ValueError(f"symbol: the exchange has no spot market {symbol}")  # exit 2
            inst = instrument_from_market(ex.markets[symbol], int(ex.precisionMode))
            if inst != sl.instrument:
                log.info(
                    "exchange filters for %s: tick %s, lot %s, min qty %s, min notional %s, "
                    "fees %s/%s",
                    symbol,
                    inst.tick_size,
                    inst.lot_size,
                    inst.min_qty,
                    inst.min_notional,
                    inst.maker_fee,
                    inst.taker_fee,
                )
            sl.instrument = inst
            venue.instrument = inst

    def _traffic_limit(self, kind: str, seconds: float) -> None:
        """The traffic gate saw a 429 window or a 418 ban begin (it holds every request
        meanwhile). The market feed's client answers in a worker thread: its report is
        handled on the event loop, as every change of trading state is."""
        loop = self._loop
        if loop is not None and loop.is_running():
            try:
                on_loop = asyncio.get_running_loop() is loop
            except RuntimeError:
                on_loop = False
            if not on_loop:
                loop.call_soon_threadsafe(self._traffic_limit_now, kind, seconds)
                return
        self._traffic_limit_now(kind, seconds)

    def _traffic_limit_now(self, kind: str, seconds: float) -> None:
        if kind == "banned" and self._ban_reason is None:
            self.health.ban_reported = True
            self.alarm("P1", f"exchange banned this IP (HTTP 418); nothing sent for {seconds:.0f}s")
            self._ban_timer()

    def _ban_timer(self) -> None:
        """The ban's end is told when it comes, not after a sync the gate may hold longer."""
        left = self.health.traffic.ban_left()
        if self._loop is None or not self.health.ban_reported:
            return
        if left > 0:
            self._loop.call_later(left + 0.05, self._ban_timer)
            return
        for venue in self.venues.values():
            venue.check_ban_over()

    def _check_markets(self, ex: Any) -> None:
        """Refuse to start on a market that cannot take the strategy's orders (exit 2)."""
        from solbot.strategies import create
        from solbot.venues.requests import required_order_types

        s = self.s.settings
        strategy = create(s.strategy, **s.strategy_params)  # the settings were validated
        for sl in self.s.sleeves:
            info = (ex.markets.get(sl.symbol) or {}).get("info") or {}
            if not info.get("orderTypes"):
                continue  # not Binance-shaped: nothing to check against
            status = info.get("status", "TRADING")
            if status != "TRADING":
                raise ValueError(f"symbol: {sl.symbol} is {status} on the exchange, not TRADING")
            needs = list(required_order_types(strategy.needs, s.stop_limit_offset))
            if getattr(strategy, "trails_at_exchange", False):
                needs.append(("trailing stop", "allowTrailingStop"))  # exchangeInfo's flag
            for kind, need in needs:
                ok = (
                    info.get(need) is True
                    if need.endswith("Allowed") or need == "allowTrailingStop"
                    else (need in info["orderTypes"])
                )
                if not ok:
                    raise ValueError(
                        f"symbol: {sl.symbol} on {s.exchange} has no {need} "
                        f"(strategy {strategy.name} sends {kind} orders)"
                    )

    def alarm(self, severity: str, text: str) -> None:
        log.error("venue: %s", text)
        self.s.notifier.send(severity, "Exchange problem", text)
        if severity in ("P0", "P1"):
            reason = f"exchange: {text}"
            if "418" in text:
                self._ban_reason = reason
                self._bans.append(time.monotonic())
            elif text.startswith("clock:"):
                self._clock_reason = reason
            self.s.set_trading_state(TradingState.HALTED, reason)  # one account: every symbol

    def recovered(self, what: str) -> None:
        """The exchange's ban is over, or it accepts our timestamps again: trade again,
        unless bans keep coming (then an operator must look) or something else halted
        trading meanwhile."""
        state, current = self.s.trading_state()
        if "timestamps" in what:
            reason, self._clock_reason = self._clock_reason, None
            if reason is not None and state is TradingState.HALTED and current == reason:
                self.s.notifier.send("P2", "Exchange clock in step", what)
                self.s.set_trading_state(TradingState.ACTIVE, f"exchange: {what}")
            return
        reason, self._ban_reason = self._ban_reason, None
        if reason is None or state is not TradingState.HALTED or current != reason:
            return
        recent = [t for t in self._bans if time.monotonic() - t < 3600]
        if len(recent) >= BANS_BEFORE_OPERATOR or self.failed or self.s.kill_reason is not None:
            text = f"{len(recent)} exchange bans within an hour; trading stays halted"
            self.s.notifier.send("P1", "Exchange bans repeat", text)
            self.s.set_trading_state(TradingState.HALTED, f"exchange: {text}")
            return
        self.s.notifier.send("P2", "Exchange ban over", what)
        self.s.set_trading_state(TradingState.ACTIVE, f"exchange: {what}")

    # ---------------------------------------------------------------- restoring
    def restore_orders(self, restored: Restored, sleeve: Sleeve) -> None:
        """Orders a previous run left open go back into the books and the venue's watch
        list; the first sync then applies what the exchange did with them meanwhile."""
        engine, venue = sleeve.engine, self.venues[sleeve.symbol]
        pf = engine.portfolio
        ref = engine.reference_price()
        for row in restored.open_orders:
            order = Order(
                order_id=OrderId(row.order_id),
                symbol=row.symbol,
                side=Side(row.side),
                type=OrderType(row.type),
                quantity=row.quantity,
                price=row.price,
                trigger_price=row.trigger_price,
                trailing_bps=row.trailing_bps,
                quote_quantity=row.quote_quantity,
                post_only=row.post_only,
                reduce_only=row.reduce_only,
                tag=row.tag,
                created_ts=row.created_ts,
                oco_group=row.oco_group,
                client_id=row.client_order_id or f"{venue.prefix}{row.order_id}",
            )
            pf.add(order)
            try:
                pf.submitted(order, OrderSubmitted(order.order_id, row.created_ts), ref or ZERO)
            except Exception as exc:  # cannot hold what it needs: the balance check decides
                log.warning("restoring open order %s: %s", row.order_id, exc)
                pf.restore_open(order)
            if row.status != OrderStatus.SUBMITTED.value and row.venue_order_id:
                order.status = OrderStatus(row.status)
                order.venue_order_id = row.venue_order_id
                order.filled_qty = row.filled_qty
                venue.by_venue_id[row.venue_order_id] = order.order_id
            venue.remember(order)
        venue.restore_cursor(
            self.s.store.trade_ids(sleeve.symbol), self.s.store.last_fill_ts(sleeve.symbol)
        )
        plan = bracket_plan(restored.kv)
        if plan is not None and plan[0] in {OrderId(r.order_id) for r in restored.open_orders}:
            engine.expect_bracket(*plan)  # its fill, seen now, arms the OCO
            exits = engine.exit_plan(pf.orders[plan[0]], plan[1])
            if exits is not None:  # a resting entry: it may carry its exits (an OTOCO)
                venue.restore_resting(pf.orders[plan[0]], exits)

    # ---------------------------------------------------------------- reconciling
    async def reconcile_start(self) -> None:
        """Apply what happened to our orders while we were away, keep the order lists that
        protect a position and cancel the rest, then require the exchange's balances to equal
        ours (or adopt them when told to), and protect what is unprotected."""
        for sleeve, venue in self.pairs():
            sleeve.engine.listeners.append(functools.partial(self.protector.leg_ended, sleeve))
            await self._settle_sleeve(sleeve, venue)
        still = False  # the last look saw no trade of ours arrive and nothing in flight
        for _ in range(START_LOOKS):
            theirs = await self.rec.exchange_totals()
            diffs = self.rec.differences(theirs) + await self.rec.foreign_orders()
            if not diffs:
                break  # equal
            still = not await self.rec.moved()
            if still:
                break  # a difference that no trade of ours explains
            await asyncio.sleep(START_LOOK_PAUSE)
        if diffs:
            report = "; ".join(diffs)
            if not still:  # adopting now would take balances read before our latest trades
                report += " (and our orders were still moving while we looked)"
            if not self.s.settings.accept_exchange_state or not still:
                self.s.notifier.send("P0", "Reconciliation failed", report)
                self.s.store.audit("reconcile-failed", {"report": report})
                raise ReconcileError(
                    f"exchange state differs from ours ({report}); not trading. "
                    "Check the exchange, then restart with --accept-exchange-state to adopt it"
                )
            self.rec.adopt(theirs, report)
        else:
            self.s.store.audit("reconciled", {k: str(v) for k, v in theirs.items()})
        self.protector.protect_positions()

    async def _settle_sleeve(self, sleeve: Sleeve, venue: LiveVenue) -> None:
        engine = sleeve.engine
        unknown = [o for o in venue.orders.values() if o.status is OrderStatus.SUBMITTED]
        if unknown:  # intents on disk, outcomes unknown: looked up over the lookup window
            found = await venue.resolve(unknown, time.monotonic(), every=True)
            now = int(time.time() * 1000)
            for order in unknown:
                oid = order.order_id
                rec = found.get(oid)
                self.s.store.audit(
                    "unknown-outcome-resolved", {"on_exchange": rec is not None}, order_id=oid
                )
                if rec is None:
                    venue.orders.pop(oid, None)
                    engine.on_venue_event(OrderRejected(oid, now, "never reached the exchange"))
                else:
                    venue.by_venue_id[str(rec["id"])] = oid
                    engine.on_venue_event(OrderAccepted(oid, now, str(rec["id"])))
        await venue.sync()
        keep = protected_groups(sleeve)
        stale = [o for o in engine.portfolio.open_orders() if o.oco_group not in keep]
        if stale:
            engine.execute([CancelOrder(o.order_id) for o in stale])
            for _ in range(50):
                await asyncio.sleep(0.1)
                await venue.sync()
                if not any(o.status.is_open for o in stale):
                    break

    async def check(self) -> str:
        """One periodic reconciliation: ``ok``, ``mismatch`` or ``inconclusive`` (orders in
        flight or trades arriving while we looked: try again next time)."""
        venues = list(self.venues.values())
        if any(v.busy() for v in venues):
            return "inconclusive"
        for v in venues:
            await v.sync()
        self.protector.protect_positions()
        mark = sum(len(v.seen_trades) for v in venues)
        theirs = await self.rec.exchange_totals()
        foreign = await self.rec.foreign_orders()
        for v in venues:
            await v.sync()
        if any(v.busy() for v in venues) or sum(len(v.seen_trades) for v in venues) != mark:
            return "inconclusive"
        diffs = self.rec.differences(theirs) + foreign
        if not diffs:
            self.mismatches = 0
            return "ok"
        self.mismatches += 1
        self.last_report = "; ".join(diffs)
        log.warning("reconciliation mismatch (%d in a row): %s", self.mismatches, self.last_report)
        if self.mismatches >= 2 and not self.failed:
            self.fail_closed(self.last_report)
        return "mismatch"

    def fail_closed(self, report: str) -> None:
        self.failed = True
        reason = f"reconciliation failed: {report}"
        self.s.set_trading_state(TradingState.HALTED, reason)
        for sl in self.s.sleeves:
            sl.engine.execute([CancelAll()])
        self.s.store.audit("reconcile-failed", {"report": report})
        self.s.notifier.send(
            "P0",
            "Reconciliation failed",
            f"{report}. Trading halted; check the exchange, then restart with "
            "--accept-exchange-state to adopt its state",
        )

    async def keep_clock(self) -> None:
        """Read the exchange's clock again every few minutes (drift, NTP steps)."""
        assert self.venue is not None
        while True:
            await asyncio.sleep(CLOCK_RESYNC_SECONDS)
            try:
                offset = await self.venue.sync_clock()
            except Exception as exc:  # tried again at the next round
                log.warning("clock sync failed: %s: %s", type(exc).__name__, exc)
                continue
            if abs(offset) > 1000:
                log.warning("the exchange's clock is %+.0f ms from ours (corrected)", offset)

    def background(self) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        """The session's tasks while trading, by name: the exchange clock and, where there is
        one, the user data stream."""
        out: list[tuple[str, Coroutine[Any, Any, None]]] = [("exchange-clock", self.keep_clock())]
        if self.user_stream is not None:
            out.append(("user-stream", self.user_stream.run()))
        return out

    async def watch(self, every: float) -> None:
        """Periodic reconciliation until cancelled."""
        metric = self.s.metrics.reconcile_checks
        while True:
            await asyncio.sleep(every)
            try:
                result = await self.check()
            except Exception as exc:  # a failed check is retried at the next one
                log.warning("reconciliation check failed: %s: %s", type(exc).__name__, exc)
                result = "error"
            metric.labels(result).inc()

    # ---------------------------------------------------------------- stopping
    async def stop(self) -> None:
        """On kill (or cancel-on-stop) the exchange must hold no open order of ours
        (Binance ``DELETE openOrders``, then verified with a fetch); then the last fills."""
        s = self.s
        try:
            with urgent():  # the exchange must be left clean now, not next minute
                await self._stop_venues()
        except Exception as exc:
            log.error("live shutdown: %s: %s", type(exc).__name__, str(exc)[:200])
            s.notifier.send("P0", "Live shutdown incomplete", f"{type(exc).__name__}")
        finally:
            await self.close()

    async def _stop_venues(self) -> None:
        s = self.s
        for venue in self.venues.values():
            if s.kill_reason is not None or s.settings.cancel_on_stop:
                left = await asyncio.wait_for(venue.cancel_all(), timeout=10.0)
                # answers lost in flight, or ends the lagging order query has not told yet:
                # learn them (bounded), then cancel again
                if venue.needs_settling():
                    window = venue.recv_window() + venue.lookup_margin
                    unknown = await venue.settle(min(window, SETTLE_SECONDS))
                    left = await asyncio.wait_for(venue.cancel_all(), timeout=5.0)
                    if unknown:
                        text = (
                            f"{unknown} {venue.symbol} order(s) sent before the stop have an "
                            "unknown outcome; the next start looks them up"
                        )
                        log.error("%s", text)
                        s.notifier.send("P1", "Order outcomes unknown at stop", text)
                if left:
                    log.error(
                        "%d %s order(s) still open on the exchange after cancel-all",
                        left,
                        venue.symbol,
                    )
                    s.notifier.send("P0", "Orders left open", f"{left} {venue.symbol} still open")
            else:
                await asyncio.wait_for(venue.sync(), timeout=10.0)

    async def close(self) -> None:
        """Disarm any dead man's switch, stop every venue, close the shared client once."""
        venues = list(self.venues.values())
        for venue in venues:
            await venue.disarm_dead_man()
        if self.user_stream is not None:
            await self.user_stream.close()
        try:
            for i, venue in enumerate(venues):
                await asyncio.wait_for(venue.close(client=i == len(venues) - 1), timeout=5.0)
        except TimeoutError:
            log.error("live shutdown: the exchange client did not close within 5 s")
