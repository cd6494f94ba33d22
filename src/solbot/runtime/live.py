"""The live session (``runtime.session.Session``): connecting to the exchange, putting the
orders a previous run left open back in the books, reconciling with the exchange at start and
then periodically, recovering from an exchange ban, and leaving the exchange clean on stop.

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
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Coroutine
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from solbot.domain.values import ZERO, TradingState
from solbot.engine.ports import Venue
from solbot.persistence.store import Store
from solbot.runtime.config import ConfigError
from solbot.runtime.protection import Protector
from solbot.runtime.reconcile import Reconciler
from solbot.runtime.restart import LiveRestart
from solbot.runtime.view import ExchangeHealth
from solbot.venues.capabilities import REPLAY_TESTED
from solbot.venues.clients import ExchangeClient, trading_client, user_stream_client
from solbot.venues.health import VenueHealth
from solbot.venues.live import LiveVenue
from solbot.venues.traffic import gate_for, urgent
from solbot.venues.userstream import UserStream

if TYPE_CHECKING:
    from solbot.runtime.account import Account
    from solbot.runtime.sleeve import Sleeve

log = logging.getLogger(__name__)

# the kill's wait for orders in flight: with the tasks' 5 s, the cancels' 10 + 5 s, inside
# systemd's TimeoutStopSec=30 (deploy/systemd/bot.service)
SETTLE_SECONDS = 8.0
BANS_BEFORE_OPERATOR = 3  # this many bans within an hour: stay halted until a restart
CLOCK_RESYNC_SECONDS = 300.0  # the exchange's clock is read again this often


class LiveSession(LiveRestart):
    def __init__(self, account: Account) -> None:
        self.s = account
        self.first: LiveVenue | None = None  # the first symbol's venue (the clock, the account)
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
        self.protector = Protector(account)
        self.health = VenueHealth()
        self.rec = Reconciler(self)

    def pairs(self) -> list[tuple[Sleeve, LiveVenue]]:
        return [(sl, self.venues[sl.symbol]) for sl in self.s.sleeves]

    @property
    def mode(self) -> str:
        return "live (testnet)" if self.s.settings.exchange_sandbox else "live"

    def describe(self) -> str:
        return f"{self.mode.upper()} ({self.s.settings.exchange})"

    def capital(self, quote: str) -> Decimal:
        """The account's quote balance, split by the weights."""
        return self.balances.get(quote, ZERO)

    def new_balances(self, sleeve: Sleeve, cash: Decimal, resumed: bool) -> dict[str, Decimal]:
        """A new live sleeve: its share of the quote and what the account holds of its base."""
        inst = sleeve.instrument
        return {inst.quote: cash, inst.base: self.balances.get(inst.base, ZERO)}

    def venue(self, sleeve: Sleeve, balances: dict[str, Decimal]) -> Venue:
        return self.venues[sleeve.symbol]

    def bar_transaction(self, store: Store) -> AbstractContextManager[Any]:
        return contextlib.nullcontext()  # an order's intent is durable before it is sent

    def fill_now(self, sleeve: Sleeve) -> None:
        return None  # the exchange fills it

    def problems(self) -> list[str]:
        clock = self.health.clock_problem
        return [] if clock is None else [f"exchange clock: {clock}"]

    def exchange_health(self) -> ExchangeHealth:
        h = self.health
        return ExchangeHealth(
            clock_offset_ms=h.clock_offset_ms,
            clock_problem=h.clock_problem,
            weight_used=float(h.traffic.used),
            weight_budget=float(h.traffic.limit * h.traffic.share),
            blocked_seconds=h.traffic.blocked_for(),
            not_resent=h.not_resent,
            stream_trades=h.stream_trades,
        )

    def tasks(self) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        """While trading: each venue's sync, periodic reconciliation, the exchange clock and,
        where there is one, the user data stream."""
        several = len(self.venues) > 1
        out: list[tuple[str, Coroutine[Any, Any, None]]] = [
            (f"venue-sync {sym}" if several else "venue-sync", venue.run())
            for sym, venue in self.venues.items()
        ]
        every = self.s.settings.reconcile_seconds
        if every > 0:
            out.append(("reconcile", self.watch(every)))
        return out + self.background()

    # ---------------------------------------------------------------- connecting
    async def connect(self) -> None:
        s = self.s.settings
        assert s.exchange and s.exchange_api_key and s.exchange_api_secret
        if s.exchange not in REPLAY_TESTED:  # exit 2
            raise ConfigError(
                f"exchange: live trading on {s.exchange} is not supported (no replay tests "
                f"from its recorded answers; live runs on: {', '.join(sorted(REPLAY_TESTED))})"
            )
        ex = trading_client(
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
                on_error=self.s.metrics.venue_error,
                on_alarm=self.alarm,
                on_recovered=self.recovered,
                dead_man_seconds=s.exchange_dead_man_seconds,
                health=self.health,
                run_salt=salt,
            )
        venue = self.first = self.venues[self.s.primary.symbol]
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

    async def _open(self, ex: ExchangeClient, venue: LiveVenue) -> None:
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

    def _adopt_filters(self, ex: ExchangeClient) -> None:
        """Trade by the exchange's own precision, limits and fees for each symbol."""
        from solbot.venues.capabilities import instrument_from_market

        for sl, venue in self.pairs():
            symbol = sl.symbol
            if symbol not in (ex.markets or {}):
                raise ConfigError(f"symbol: the exchange has no spot market {symbol}")  # exit 2
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

    def _check_markets(self, ex: ExchangeClient) -> None:
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
                raise ConfigError(f"symbol: {sl.symbol} is {status} on the exchange, not TRADING")
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
                    raise ConfigError(
                        f"symbol: {sl.symbol} on {s.exchange} has no {need} "
                        f"(strategy {strategy.name} sends {kind} orders)"
                    )

    def alarm(self, severity: str, text: str) -> None:
        log.error("venue: %s", text)
        self.s.alerts.send(severity, "Exchange problem", text)
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
                self.s.alerts.send("P2", "Exchange clock in step", what)
                self.s.set_trading_state(TradingState.ACTIVE, f"exchange: {what}")
            return
        reason, self._ban_reason = self._ban_reason, None
        if reason is None or state is not TradingState.HALTED or current != reason:
            return
        recent = [t for t in self._bans if time.monotonic() - t < 3600]
        if len(recent) >= BANS_BEFORE_OPERATOR or self.failed or self.s.kill_reason is not None:
            text = f"{len(recent)} exchange bans within an hour; trading stays halted"
            self.s.alerts.send("P1", "Exchange bans repeat", text)
            self.s.set_trading_state(TradingState.HALTED, f"exchange: {text}")
            return
        self.s.alerts.send("P2", "Exchange ban over", what)
        self.s.set_trading_state(TradingState.ACTIVE, f"exchange: {what}")

    # ---------------------------------------------------------------- reconciling
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
        self.s.halt(f"reconciliation failed: {report}")
        self.s.store.audit("reconcile-failed", {"report": report})
        self.s.alerts.send(
            "P0",
            "Reconciliation failed",
            f"{report}. Trading halted; check the exchange, then restart with "
            "--accept-exchange-state to adopt its state",
        )

    async def keep_clock(self) -> None:
        """Read the exchange's clock again every few minutes (drift, NTP steps)."""
        assert self.first is not None
        while True:
            await asyncio.sleep(CLOCK_RESYNC_SECONDS)
            try:
                offset = await self.first.sync_clock()
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
        while True:
            await asyncio.sleep(every)
            try:
                result = await self.check()
            except Exception as exc:  # a failed check is retried at the next one
                log.warning("reconciliation check failed: %s: %s", type(exc).__name__, exc)
                result = "error"
            self.s.metrics.reconciled(result)

    # ---------------------------------------------------------------- stopping
    async def stop(self, cancel: bool) -> None:
        """With ``cancel`` (a kill, or cancel-on-stop) the exchange must hold no open order of
        ours (Binance ``DELETE openOrders``, then verified with a fetch); then the last
        fills."""
        try:
            with urgent():  # the exchange must be left clean now, not next minute
                await self._stop_venues(cancel)
        except Exception as exc:
            log.error("live shutdown: %s: %s", type(exc).__name__, str(exc)[:200])
            self.s.alerts.send("P0", "Live shutdown incomplete", f"{type(exc).__name__}")
        finally:
            await self.close()

    async def _stop_venues(self, cancel: bool) -> None:
        s = self.s
        for venue in self.venues.values():
            if cancel:
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
                        s.alerts.send("P1", "Order outcomes unknown at stop", text)
                if left:
                    log.error(
                        "%d %s order(s) still open on the exchange after cancel-all",
                        left,
                        venue.symbol,
                    )
                    s.alerts.send("P0", "Orders left open", f"{left} {venue.symbol} still open")
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
