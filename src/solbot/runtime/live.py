"""What a live run adds to the bot service: connecting to the exchange, putting the orders a
previous run left open back in the books, reconciling with the exchange at start and then
periodically, recovering from an exchange ban, and leaving the exchange clean on stop.

Reconciliation compares what can be compared without racing the exchange: totals (free +
locked) of the symbol's two assets, and open orders that are not ours. A periodic check is
only conclusive when no order of ours is in flight and no trade arrived while the balances
were read; two conclusive mismatches in a row fail closed (HALTED, our resting orders
cancelled, P0 alert, the report in the audit log and ``/api/status``). The operator then
inspects the account and restarts with ``--accept-exchange-state`` to adopt it.

Several symbols share one exchange client and one account: each symbol's sleeve has its own
venue (its orders and trades), a ban holds them all, and reconciliation compares each base
asset with its sleeve and the quote currency with the sum of the sleeves.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from solbot.domain.ledger import Ledger
from solbot.domain.messages import CancelAll, OrderAccepted, OrderRejected, OrderSubmitted
from solbot.domain.orders import Order, OrderStatus
from solbot.domain.values import ZERO, OrderId, OrderType, Side, TradingState
from solbot.persistence.store import Restored
from solbot.venues.exchange import binance_exchange
from solbot.venues.live import LiveVenue, VenueHealth

if TYPE_CHECKING:
    from solbot.runtime.service import BotService
    from solbot.runtime.sleeve import Sleeve

log = logging.getLogger(__name__)

STEP = Decimal("0.00000001")  # balances closer than this are equal (exchange precision)
BANS_BEFORE_OPERATOR = 3  # this many bans within an hour: stay halted until a restart


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
        self._bans: deque[float] = deque(maxlen=BANS_BEFORE_OPERATOR)

    def pairs(self) -> list[tuple[Sleeve, LiveVenue]]:
        return [(sl, self.venues[sl.symbol]) for sl in self.s.sleeves]

    # ---------------------------------------------------------------- connecting
    async def connect(self) -> LiveVenue:
        s = self.s.settings
        assert s.exchange and s.exchange_api_key and s.exchange_api_secret
        ex = binance_exchange(
            s.exchange,
            s.exchange_url,
            s.exchange_api_key.get_secret_value(),
            s.exchange_api_secret.get_secret_value(),
            s.exchange_timeout_ms,
        )
        health = VenueHealth()
        for sl in self.s.sleeves:
            self.venues[sl.symbol] = LiveVenue(
                ex,
                sl.instrument,
                poll=s.exchange_poll_seconds,
                on_error=lambda kind: self.s.metrics.venue_errors.labels(kind).inc(),
                on_alarm=self.alarm,
                on_recovered=self.recovered,
                dead_man_seconds=s.exchange_dead_man_seconds,
                health=health,
            )
        venue = self.venue = self.venues[self.s.primary.symbol]
        log.info("exchange capabilities: %s", venue.caps.describe())
        await venue.call(ex.load_markets)
        self._adopt_filters(ex)
        bal = await venue.call(ex.fetch_balance)
        self.balances = {
            a: Decimal(str(v)) for a, v in (bal.get("total") or {}).items() if v is not None
        }
        return venue

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

    def alarm(self, severity: str, text: str) -> None:
        log.error("venue: %s", text)
        self.s.notifier.send(severity, "Exchange problem", text)
        if severity in ("P0", "P1"):
            reason = f"exchange: {text}"
            if "418" in text:
                self._ban_reason = reason
                self._bans.append(time.monotonic())
            self.s.set_trading_state(TradingState.HALTED, reason)  # one account: every symbol

    def recovered(self, what: str) -> None:
        """The exchange's ban is over: trade again, unless bans keep coming (then an operator
        must look) or something else halted trading meanwhile."""
        state, current = self.s.trading_state()
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
                quote_quantity=row.quote_quantity,
                post_only=row.post_only,
                reduce_only=row.reduce_only,
                tag=row.tag,
                created_ts=row.created_ts,
                oco_group=row.oco_group,
            )
            pf.add(order)
            try:
                pf.submitted(order, OrderSubmitted(order.order_id, row.created_ts), ref or ZERO)
            except Exception as exc:  # cannot hold what it needs: the balance check decides
                log.warning("restoring open order %s: %s", row.order_id, exc)
                pf._open[order.order_id] = order
            if row.status != OrderStatus.SUBMITTED.value and row.venue_order_id:
                order.status = OrderStatus(row.status)
                order.venue_order_id = row.venue_order_id
                order.filled_qty = row.filled_qty
                venue.by_venue_id[row.venue_order_id] = order.order_id
            venue.orders[order.order_id] = order
        venue.trades_since = self.s.store.last_fill_ts(sleeve.symbol)
        for tid in self.s.store.trade_ids(sleeve.symbol):
            venue.seen_trades.add(tid)
            for part in tid.split("+"):
                if part.isdigit():
                    venue.next_trade_id = max(venue.next_trade_id, int(part) + 1)

    # ---------------------------------------------------------------- reconciling
    async def reconcile_start(self) -> None:
        """Apply what happened to our orders while we were away, cancel what is still open,
        then require the exchange's balances to equal ours (or adopt them when told to)."""
        for sleeve, venue in self.pairs():
            await self._settle_sleeve(sleeve, venue)
        theirs = await self._exchange_totals()
        diffs = self._differences(theirs) + await self._foreign_orders()
        if not diffs:
            self.s.store.audit("reconciled", {k: str(v) for k, v in theirs.items()})
            return
        report = "; ".join(diffs)
        if not self.s.settings.accept_exchange_state:
            self.s.notifier.send("P0", "Reconciliation failed", report)
            self.s.store.audit("reconcile-failed", {"report": report})
            raise ReconcileError(
                f"exchange state differs from ours ({report}); not trading. "
                "Check the exchange, then restart with --accept-exchange-state to adopt it"
            )
        self._adopt(theirs, report)

    async def _settle_sleeve(self, sleeve: Sleeve, venue: LiveVenue) -> None:
        engine = sleeve.engine
        for oid, order in list(venue.orders.items()):
            if order.status is OrderStatus.SUBMITTED:  # intent on disk, outcome unknown
                found = await venue.lookup(venue.client_id(oid))
                now = int(time.time() * 1000)
                self.s.store.audit(
                    "unknown-outcome-resolved", {"on_exchange": found is not None}, order_id=oid
                )
                if found is None:
                    venue.orders.pop(oid, None)
                    engine.on_venue_event(OrderRejected(oid, now, "never reached the exchange"))
                else:
                    venue.by_venue_id[str(found["id"])] = oid
                    engine.on_venue_event(OrderAccepted(oid, now, str(found["id"])))
        await venue.sync()
        if engine.portfolio.open_orders():
            engine.execute([CancelAll()])
            for _ in range(50):
                await asyncio.sleep(0.1)
                await venue.sync()
                if not engine.portfolio.open_orders():
                    break

    def _assets(self) -> list[str]:
        out: list[str] = []
        for sl in self.s.sleeves:
            for a in (sl.instrument.base, sl.instrument.quote):
                if a not in out:
                    out.append(a)
        return out

    def _ours(self) -> dict[str, Decimal]:
        """Our totals per asset: each base from its sleeve, the quote summed over them."""
        ours: dict[str, Decimal] = {}
        for sl in self.s.sleeves:
            led = sl.engine.portfolio.ledger
            for a in (sl.instrument.base, sl.instrument.quote):
                ours[a] = ours.get(a, ZERO) + led.total(a)
        return ours

    async def _exchange_totals(self) -> dict[str, Decimal]:
        assert self.venue is not None
        bal = await self.venue.call(self.venue.ex.fetch_balance)
        total = bal.get("total") or {}
        return {a: Decimal(str(total.get(a) or 0)) for a in self._assets()}

    def _differences(self, theirs: dict[str, Decimal]) -> list[str]:
        ours = self._ours()
        return [
            f"{a} ours {ours[a]:f} exchange {theirs[a]:f}"
            for a in theirs
            if abs(ours[a] - theirs[a]) > STEP
        ]

    async def _foreign_orders(self) -> list[str]:
        out = []
        for sl, venue in self.pairs():
            open_orders = await venue.call(venue.ex.fetch_open_orders, sl.instrument.symbol)
            foreign = [o for o in open_orders if str(o.get("id")) not in venue.by_venue_id]
            if foreign:
                which = f" of {sl.symbol}" if len(self.venues) > 1 else ""
                out.append(f"{len(foreign)} open order(s){which} on the exchange that are not ours")
        return out

    def _adopt(self, theirs: dict[str, Decimal], report: str) -> None:
        """Take the exchange's totals: each base asset into its sleeve; the quote split over
        the sleeves in proportion to what each held (by the weights if none held any)."""
        quote = self.s.instrument.quote
        held = {sl.symbol: sl.engine.portfolio.ledger.total(quote) for sl in self.s.sleeves}
        basis = held if sum(held.values(), ZERO) > 0 else dict(self.s.weights)
        whole = sum((basis.get(sl.symbol, ZERO) for sl in self.s.sleeves), ZERO)
        left = theirs[quote]
        for i, sl in enumerate(self.s.sleeves):
            pf = sl.engine.portfolio
            last = i == len(self.s.sleeves) - 1
            share = left if last else sl.instrument.money(theirs[quote] * basis[sl.symbol] / whole)
            left -= share
            mine = {sl.instrument.base: theirs[sl.instrument.base], quote: share}
            totals = {a: f + lk for a, (f, lk) in pf.ledger.snapshot().items()}
            pf.ledger = Ledger({**totals, **mine})
            pf.position.qty = theirs[sl.instrument.base]
            sl.write_books()
        self.s.store.audit("accepted-exchange-state", {"report": report})
        self.s.notifier.send("P1", "Exchange state adopted", report)
        log.warning("adopted the exchange's balances: %s", report)

    async def check(self) -> str:
        """One periodic reconciliation: ``ok``, ``mismatch`` or ``inconclusive`` (orders in
        flight or trades arriving while we looked: try again next time)."""
        venues = list(self.venues.values())
        if any(v.busy() for v in venues):
            return "inconclusive"
        for v in venues:
            await v.sync()
        mark = sum(len(v.seen_trades) for v in venues)
        theirs = await self._exchange_totals()
        foreign = await self._foreign_orders()
        for v in venues:
            await v.sync()
        if any(v.busy() for v in venues) or sum(len(v.seen_trades) for v in venues) != mark:
            return "inconclusive"
        diffs = self._differences(theirs) + foreign
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
            for venue in self.venues.values():
                if s.kill_reason is not None or s.settings.cancel_on_stop:
                    left = await asyncio.wait_for(venue.cancel_all(), timeout=10.0)
                    if left:
                        log.error(
                            "%d %s order(s) still open on the exchange after cancel-all",
                            left,
                            venue.symbol,
                        )
                        s.notifier.send(
                            "P0", "Orders left open", f"{left} {venue.symbol} still open"
                        )
                else:
                    await asyncio.wait_for(venue.sync(), timeout=10.0)
        except Exception as exc:
            log.error("live shutdown: %s: %s", type(exc).__name__, str(exc)[:200])
            s.notifier.send("P0", "Live shutdown incomplete", f"{type(exc).__name__}")
        finally:
            await self.close()

    async def close(self) -> None:
        """Disarm any dead man's switch, stop every venue, close the shared client once."""
        venues = list(self.venues.values())
        for venue in venues:
            await venue.disarm_dead_man()
        try:
            for i, venue in enumerate(venues):
                await asyncio.wait_for(venue.close(client=i == len(venues) - 1), timeout=5.0)
        except TimeoutError:
            log.error("live shutdown: the exchange client did not close within 5 s")
