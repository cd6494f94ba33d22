"""Closed bars from an exchange through ccxt's REST API (polling ``fetch_ohlcv``), beside the
live venue whose traffic gate its requests share."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from typing import Any

from solbot.data.bars import timeframe_ms
from solbot.domain.messages import Bar
from solbot.venues.exchange import classify, retry_after
from solbot.venues.traffic import TrafficGate, TrafficHeld

log = logging.getLogger(__name__)


class CcxtFeed:
    """Closed bars from an exchange; polls every ``poll`` seconds (REST).

    Binance answers ``klines`` with the forming bar last ("Kline/Candlestick data": the
    current interval is included). A bar is closed when a later bar follows it in the answer
    or the *exchange's* clock (``fetch_time``) has passed its end, so a skewed local clock
    cannot make the bot trade on a forming bar. Failed polls (network, rate limits) are logged
    and retried at the next poll; the feed never dies of them. Its requests pass the
    exchange's traffic gate (``venues.traffic``), shared with a live venue."""

    RETRIES = 5  # failed pages a restart's warm-up (``before``) tries again

    def __init__(
        self, exchange: Any, symbol: str, timeframe: str, poll: float = 5.0, history: int = 200
    ) -> None:
        self.exchange, self.symbol, self.timeframe, self.poll = exchange, symbol, timeframe, poll
        self.step = timeframe_ms(timeframe)
        # closed bars fetched at start to warm the strategy (``Strategy.warmup_bars``); pages
        # of 1,000 follow at once until the latest closed bar (binance-spot-api-docs
        # rest-api.md, "Kline/Candlestick data": limit default 500, max 1000)
        self.history = max(1, int(history))
        self.errors = 0
        self.now = 0  # the exchange's clock at the last poll (ms)
        self._hold_until = 0.0  # after a failed poll: until the next one
        self.traffic: TrafficGate | None = None  # the gate its client's requests pass

    def is_history(self, bar: Bar) -> bool:
        return bar.ts + 2 * self.step <= self.now  # a newer bar had closed when we got it

    def _now(self) -> int:
        try:
            return int(self.exchange.fetch_time())
        except TrafficHeld:
            raise  # the gate holds this poll: wait, then look again
        except Exception:  # no time endpoint: the local clock
            return time.time_ns() // 1_000_000

    def _retry_after(self, exc: BaseException) -> float:
        """How long to stay quiet after a failed poll: the exchange's Retry-After for 429 and
        418 (a ban lasts at least 5 s), otherwise one poll interval."""
        if isinstance(exc, TrafficHeld):  # look again soon: the venue's polls compete too
            return min(exc.seconds, 1.0)
        kind = classify(exc)
        if kind == "rate_limited":
            return max(self.poll, retry_after(self.exchange))
        if kind == "banned":
            return max(5.0, retry_after(self.exchange))
        return self.poll

    async def _poll(self, last: int | None) -> tuple[list[Bar], bool] | None:
        """One poll: the bars closed after ``last`` and whether the page was full (more may
        follow at once); None when it failed or the gate held it (quiet until
        ``_hold_until``)."""
        try:
            # the klines first, then the clock that tells which of them closed: asked
            # before klines the traffic gate then held, the time (weight 1) went out at
            # every try — three feeds spent 1,900 of a minute's weight on it and starved
            # their own klines
            if last is None:
                now = await asyncio.to_thread(self._now)
                since = now - self.history * self.step
            else:
                since = last + self.step
            rows = await asyncio.to_thread(
                self.exchange.fetch_ohlcv, self.symbol, self.timeframe, since, 1000
            )
            if last is not None:
                try:
                    now = await asyncio.to_thread(self._now)
                except TrafficHeld:  # held now: ours, by the offset of the last sync
                    offset = self.traffic.offset if self.traffic is not None else 0.0
                    now = int((time.time() + offset) * 1000)
            self.now = now
        except Exception as exc:
            if not isinstance(exc, TrafficHeld):  # the gate's pacing is not an error
                self.errors += 1
                log.warning("market data poll failed: %s: %s", type(exc).__name__, str(exc)[:200])
            self._hold_until = time.monotonic() + self._retry_after(exc)
            return None
        out = []
        for i, r in enumerate(rows):
            ts = int(r[0])
            followed = i + 1 < len(rows)
            if (ts + self.step > now and not followed) or (last is not None and ts <= last):
                continue  # still forming, or already seen
            last = ts
            out.append(Bar(ts, float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5])))
        return out, len(rows) >= 1000

    async def _quiet(self) -> None:
        wait = self._hold_until - time.monotonic()
        while wait > 0:
            await asyncio.sleep(min(wait, 1.0))
            wait = self._hold_until - time.monotonic()

    async def bars(self, after_ts: int | None) -> AsyncGenerator[Bar, None]:
        last = after_ts
        while True:
            await self._quiet()
            got = await self._poll(last)
            if got is None:
                continue
            for bar in got[0]:
                last = bar.ts
                yield bar
            if not got[1]:
                await asyncio.sleep(self.poll)

    async def before(self, last_ts: int, count: int) -> list[Bar]:
        """The closed bars up to and including ``last_ts``, at most ``count``: a restart's
        warm-up (pages of 1,000, as at a first start). A failed page is tried again after its
        hold, ``RETRIES`` times in all; then the strategy starts with what came (its
        indicators not ready until enough bars have passed) rather than not at all."""
        out: list[Bar] = []
        last = last_ts - max(0, count) * self.step
        failures = 0
        while last < last_ts and failures < self.RETRIES:
            await self._quiet()
            got = await self._poll(last)
            if got is None:
                failures += 1
                continue
            bars = [b for b in got[0] if b.ts <= last_ts]
            out.extend(bars)
            if not bars or not got[1] or len(bars) < len(got[0]):
                break  # nothing more up to last_ts
            last = bars[-1].ts
        if last < last_ts and failures >= self.RETRIES:
            log.warning(
                "%s: warm-up after the restart got %d of %d bars (the exchange failed "
                "%d times); the strategy waits for its indicators", self.symbol, len(out),
                count, failures,
            )  # fmt: skip
        return out

    async def closed_after(self, after_ts: int | None) -> AsyncGenerator[Bar, None]:
        """The bars already closed after ``after_ts``, without waiting for a new one to close:
        one poll (and the pages after a full one); nothing if it fails — the caller's next
        look covers it."""
        last = after_ts
        while True:
            await self._quiet()
            got = await self._poll(last)
            if got is None:
                return
            for bar in got[0]:
                last = bar.ts
                yield bar
            if not got[1]:
                return
