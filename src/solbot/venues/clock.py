"""The exchange's clock, for the live venue (``rest-api.md`` "Timing security": a signed request
is refused with -1021 when its timestamp is 1 s or more ahead of the server's time or more than
``recvWindow`` behind). The client's timestamps are set by ``GET /api/v3/time`` (the midpoint of
the round trip; ccxt's ``options["timeDifference"]``); a -1021 resyncs; three in a row after
resyncing are a clock problem that halts new orders (P1) until a request is accepted again."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from solbot.venues.clients import ExchangeClient
from solbot.venues.traffic import SENT_AT

if TYPE_CHECKING:
    from solbot.venues.health import VenueHealth

CLOCK_STRIKES = 3  # -1021 this many times in a row, resyncing between: halt new orders


class ExchangeClock:
    if TYPE_CHECKING:
        ex: ExchangeClient
        health: VenueHealth
        _on_alarm: Callable[[str, str], None]
        _on_recovered: Callable[[str], None]

    async def sync_clock(self) -> float:
        """Set the client's timestamps by the exchange's clock (``GET /api/v3/time``, the
        midpoint of the round trip); returns the exchange's clock minus ours, in ms. The
        round trip starts when the request leaves, not when it was asked for: held at the
        traffic gate for 20 s, it would have put our estimate of the exchange's clock 10 s
        ahead — signed requests refused as "ahead of the server's time", and each minute's
        weight budget taken from the minute before's answers (every other minute silent)."""
        wall = self.health.traffic.wall
        sent: list[float] = []
        token = SENT_AT.set(sent)
        try:
            t0 = wall()
            server = await self.ex.fetch_time()
            t1 = wall()
        finally:
            SENT_AT.reset(token)
        if sent:
            t0 = sent[-1]  # the send that was answered (after the gate and any retry)
        offset = float(server) - (t0 + t1) / 2 * 1000
        options = getattr(self.ex, "options", None)
        if isinstance(options, dict):
            options["timeDifference"] = round(-offset)  # ccxt: nonce = now - difference
        self.health.clock_offset_ms = offset
        self.health.clock_synced = time.monotonic()
        self.health.traffic.offset = offset / 1000  # weight is counted per exchange minute
        return offset

    async def _clock_refused(self) -> None:
        h = self.health
        h.clock_strikes += 1
        with contextlib.suppress(Exception):
            await self.sync_clock()
        if h.clock_strikes >= CLOCK_STRIKES and h.clock_problem is None:
            h.clock_problem = (
                f"the exchange refuses our timestamps (-1021) after resyncing "
                f"{h.clock_strikes} times (its clock {h.clock_offset_ms:+.0f} ms from ours)"
            )
            self._on_alarm("P1", f"clock: {h.clock_problem}")

    def _clock_ok(self) -> None:
        h = self.health
        h.clock_strikes = 0
        if h.clock_problem is not None:
            h.clock_problem = None
            self._on_recovered("the exchange accepts our timestamps again")

    def recv_window(self) -> float:
        options = getattr(self.ex, "options", None) or {}
        return float(options.get("recvWindow", 10_000)) / 1000
