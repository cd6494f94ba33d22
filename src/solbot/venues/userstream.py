"""Our orders' trades pushed by the exchange: Binance's user data stream, through ccxt.pro's
``watch_my_trades`` (the WebSocket API's ``userDataStream.subscribe.signature``;
``web-socket-api.md`` "Subscribe to User Data Stream through signature subscription",
``user-data-stream.md`` "Order Update": an ``executionReport`` for each trade, pushed as
the matching engine acts; its data source is Memory).

Why: the order query and ``myTrades`` read "Memory => Database" and may not know an order
for seconds; when an order's answer is lost (a timeout, a 5xx, -1007) its fill is known only
once they do, and a bracket's entry stays without its stop meanwhile. The stream's report
carries the client id (``c``), the order id, and the trade with its commission, so the fill
is booked at once and the OCO follows it.

The stream only hurries things: every trade is still read by polling (``reports.sync``), a
trade is booked once whichever path sees it first (by trade id), and a connection that fails
or is cut (every 24 h) is opened again, after a backoff, while polling carries on. Nothing is
sent during an exchange ban."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from solbot.venues.exchange import short
from solbot.venues.traffic import TrafficGate

if TYPE_CHECKING:
    from solbot.venues.live import LiveVenue

log = logging.getLogger(__name__)

MAX_BACKOFF = 5.0  # s between attempts to open the stream again


class UserStream:
    """Feeds the stream's trades of our orders to the venues (by symbol)."""

    def __init__(
        self,
        client: Any,
        rest: Any,
        venues: dict[str, LiveVenue],
        gate: TrafficGate,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.client, self.rest, self.venues, self.gate = client, rest, venues, gate
        self._sleep = sleep
        self.connected = False
        self.failures = 0  # attempts that failed, and connections lost
        self.trades = 0  # trades the stream delivered
        self._closing = False

    async def run(self) -> None:
        attempt = 0
        me = asyncio.current_task()
        while not self._closing:
            banned = self.gate.ban_left()
            if banned > 0:  # an IP ban: the WebSocket API is the same IP's
                self.connected = False
                await self._sleep(min(banned, MAX_BACKOFF))
                continue
            try:
                self._share_state()
                trades = await self.client.watch_my_trades()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._closing or (me is not None and me.cancelling()):
                    raise asyncio.CancelledError from exc  # ccxt.pro closing under us
                self.failures += 1
                if self.connected or attempt == 0:
                    log.warning("user data stream: %s (fills by polling meanwhile)", short(exc))
                self.connected = False
                attempt += 1
                await self._sleep(min(MAX_BACKOFF, 0.2 * 2**attempt))
                continue
            if not self.connected:
                log.info("user data stream: connected")
            self.connected, attempt = True, 0
            for t in trades:
                venue = self.venues.get(str(t.get("symbol")))
                if venue is not None:
                    self.trades += 1
                    venue.on_stream_trade(t)

    def _share_state(self) -> None:
        """The REST client's markets and clock offset (the subscription is signed with a
        timestamp, judged by the exchange's clock like a REST request's)."""
        if self.client.markets is None and self.rest.markets:
            self.client.set_markets(self.rest.markets, self.rest.currencies)
        difference = self.rest.options.get("timeDifference")
        if difference is not None:
            self.client.options["timeDifference"] = difference

    async def close(self) -> None:
        self._closing = True
        try:
            await asyncio.wait_for(self.client.close(), timeout=5.0)
        except Exception as exc:  # closing a connection that already failed
            log.debug("user data stream close: %s", short(exc))
