"""Reconciliation: our books against the exchange's, at start and periodically.

It compares what can be compared without racing the exchange: totals (free + locked) per
asset — each base asset with its sleeve, the quote currency with the sum of the sleeves, a fee
asset (Binance's BNB) with the sum of what the sleeves booked of it — and open orders that are
not ours. A fee asset the exchange holds *more* of than our books is a top-up (an operator
buying BNB for fees): it is adopted into the first sleeve's books with an audit entry, not a
mismatch; less of it than our books is a mismatch like any other.

A periodic check is only conclusive when no order of ours is in flight and no trade arrived
while the balances were read; two conclusive mismatches in a row fail closed (HALTED, our
resting orders cancelled, P0 alert, the report in the audit log and ``/api/status``). The
operator then inspects the account and restarts with ``--accept-exchange-state`` to adopt it.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from solbot.domain.ledger import Ledger
from solbot.domain.values import ZERO

if TYPE_CHECKING:
    from solbot.runtime.account import Account
    from solbot.runtime.sleeve import Sleeve
    from solbot.venues.live import LiveVenue


class LiveSession(Protocol):
    """What reconciliation uses of the live session (``runtime.live.LiveSession``)."""

    s: Account
    venues: dict[str, LiveVenue]
    first: LiveVenue | None

    def pairs(self) -> list[tuple[Sleeve, LiveVenue]]: ...


log = logging.getLogger(__name__)

STEP = Decimal("0.00000001")  # balances closer than this are equal (exchange precision)


class Reconciler:
    def __init__(self, session: LiveSession) -> None:
        self.session = session

    @property
    def s(self) -> Account:
        return self.session.s

    async def moved(self) -> bool:
        """Sync again: did trades of ours arrive (an order list armed during the start,
        for an entry found filled, may fill at once) or is an order still in flight?"""
        venues = list(self.session.venues.values())
        mark = sum(len(v.seen_trades) for v in venues)
        for v in venues:
            await v.sync()
        return any(v.busy() for v in venues) or sum(len(v.seen_trades) for v in venues) != mark

    def pair_assets(self) -> list[str]:
        out: list[str] = []
        for sl in self.s.sleeves:
            for a in (sl.instrument.base, sl.instrument.quote):
                if a not in out:
                    out.append(a)
        return out

    def assets(self) -> list[str]:
        """The pairs' assets, then any other asset our books hold (fees paid in BNB)."""
        out = self.pair_assets()
        for sl in self.s.sleeves:
            for a in sl.engine.portfolio.ledger.snapshot():
                if a not in out:
                    out.append(a)
        return out

    def ours(self) -> dict[str, Decimal]:
        """Our totals per asset, summed over the sleeves."""
        ours: dict[str, Decimal] = {}
        for sl in self.s.sleeves:
            led = sl.engine.portfolio.ledger
            for a in self.assets():
                ours[a] = ours.get(a, ZERO) + led.total(a)
        return ours

    async def exchange_totals(self) -> dict[str, Decimal]:
        venue = self.session.first
        assert venue is not None
        bal = await venue.call(venue.ex.fetch_balance)
        total = bal.get("total") or {}
        fee_assets = [a for a in venue.caps.fee_assets if total.get(a)]
        wanted = self.assets() + [a for a in fee_assets if a not in self.assets()]
        return {a: Decimal(str(total.get(a) or 0)) for a in wanted}

    def differences(self, theirs: dict[str, Decimal]) -> list[str]:
        """What differs; a fee asset the exchange has more of is adopted first (a top-up)."""
        self.adopt_fee_topups(theirs)
        ours = self.ours()
        return [
            f"{a} ours {ours.get(a, ZERO):f} exchange {theirs[a]:f}"
            for a in theirs
            if abs(ours.get(a, ZERO) - theirs[a]) > STEP
        ]

    def adopt_fee_topups(self, theirs: dict[str, Decimal]) -> None:
        pairs = set(self.pair_assets())
        ours = self.ours()
        first = self.s.primary
        for asset, total in theirs.items():
            extra = total - ours.get(asset, ZERO)
            if asset in pairs or extra <= STEP:
                continue
            first.engine.portfolio.ledger.deposit(asset, extra)
            first.write_books()
            self.s.store.audit("fee-asset-added", {"asset": asset, "amount": str(extra)})
            log.info(
                "fee asset %s: %s more on the exchange than in our books (added)", asset, extra
            )

    async def foreign_orders(self) -> list[str]:
        out = []
        for sl, venue in self.session.pairs():
            open_orders = await venue.call(venue.ex.fetch_open_orders, sl.instrument.symbol)
            pending = venue.pending_client_ids()  # OTOCO pairs of our resting entries
            foreign = [
                o
                for o in open_orders
                if str(o.get("id")) not in venue.by_venue_id
                and str(o.get("clientOrderId")) not in pending
            ]
            if foreign:
                which = f" of {sl.symbol}" if len(self.session.venues) > 1 else ""
                out.append(f"{len(foreign)} open order(s){which} on the exchange that are not ours")
        return out

    def adopt(self, theirs: dict[str, Decimal], report: str) -> None:
        """Take the exchange's totals: each base asset into its sleeve; the quote split over
        the sleeves in proportion to what each held (by the weights if none held any); other
        assets (fee assets) into the first sleeve."""
        s = self.s
        quote = s.primary.instrument.quote
        held = {sl.symbol: sl.engine.portfolio.ledger.total(quote) for sl in s.sleeves}
        basis = held if sum(held.values(), ZERO) > 0 else dict(s.weights)
        whole = sum((basis.get(sl.symbol, ZERO) for sl in s.sleeves), ZERO)
        left = theirs[quote]
        pairs = set(self.pair_assets())
        for i, sl in enumerate(s.sleeves):
            pf = sl.engine.portfolio
            last = i == len(s.sleeves) - 1
            share = left if last else sl.instrument.money(theirs[quote] * basis[sl.symbol] / whole)
            left -= share
            mine = {sl.instrument.base: theirs[sl.instrument.base], quote: share}
            if i == 0:
                mine.update({a: v for a, v in theirs.items() if a not in pairs})
            else:
                mine.update(dict.fromkeys((a for a in theirs if a not in pairs), ZERO))
            totals = {a: f + lk for a, (f, lk) in pf.ledger.snapshot().items()}
            pf.ledger = Ledger({**totals, **mine})
            pf.position.qty = theirs[sl.instrument.base]
            sl.write_books()
        s.store.audit("accepted-exchange-state", {"report": report})
        s.alerts.send("P1", "Exchange state adopted", report)
        log.warning("adopted the exchange's balances: %s", report)
