"""What a live session does when the bot starts on an account a previous run traded: the
orders it left open go back into the books, the exchange is asked what became of them and
of the intents whose outcome was unknown, the order lists that protect a position are kept
and the rest cancelled, and the balances must then equal ours (or are adopted when told to).
A part of ``runtime.live.LiveSession``, kept apart."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import TYPE_CHECKING

from solbot.domain.errors import ReconciliationError
from solbot.domain.messages import CancelOrder, OrderAccepted, OrderRejected, OrderSubmitted
from solbot.domain.orders import OrderStatus
from solbot.domain.values import ZERO, OrderId
from solbot.persistence.store import Restored, open_order
from solbot.runtime.protection import Protector, protected_groups
from solbot.runtime.reconcile import Reconciler
from solbot.runtime.sleeve import bracket_plan
from solbot.venues.live import LiveVenue

if TYPE_CHECKING:
    from solbot.runtime.account import Account
    from solbot.runtime.sleeve import Sleeve

log = logging.getLogger(__name__)

START_LOOKS = 20  # the start reconciliation looks again while our trades are still arriving
START_LOOK_PAUSE = 0.25  # s between those looks (5 s in all)


class ReconcileError(ReconciliationError):
    """Live start: our books and the exchange's disagree; the message is the report."""


class LiveRestart:
    s: Account
    venues: dict[str, LiveVenue]
    protector: Protector
    rec: Reconciler

    def pairs(self) -> list[tuple[Sleeve, LiveVenue]]:
        raise NotImplementedError

    # ---------------------------------------------------------------- restoring
    def restore_orders(self, restored: Restored, sleeve: Sleeve) -> None:
        """Orders a previous run left open go back into the books and the venue's watch
        list; the first sync then applies what the exchange did with them meanwhile."""
        engine, venue = sleeve.engine, self.venues[sleeve.symbol]
        venue.after = engine.on_venue_event_drain  # events the venue's sync brought
        pf = engine.portfolio
        ref = engine.reference_price()
        for row in restored.open_orders:
            order = open_order(row, row.client_order_id or f"{venue.prefix}{row.order_id}")
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
                venue.known_as(order.order_id, row.venue_order_id)
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
                self.s.alerts.send("P0", "Reconciliation failed", report)
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
                    venue.forget(oid)
                    engine.on_venue_event(OrderRejected(oid, now, "never reached the exchange"))
                else:
                    venue.known_as(oid, str(rec["id"]))
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
