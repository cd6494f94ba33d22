"""Market data pushed by the exchange: ccxt.pro ``watch_ohlcv`` (websocket), with REST for
everything a stream cannot promise.

* History first: the REST feed backfills until it reaches the latest closed bar (those bars
  are marked history: warm-up only).
* Then the stream: a candle is closed once a newer candle has opened (Binance sends the
  closed candle's final update, then the next one's first), so a bar reaches the engine
  the moment the exchange opens the next — not at the next REST poll.
* Gaps (a reconnect lost updates) are filled over REST before the newer bar is delivered.
* A stream that errors or stays silent for ``silence`` seconds falls back to a REST
  catch-up; the stream is then watched again at once the first time (Binance closes every
  connection after 24 h, ``web-socket-streams.md`` "General WSS information": a routine cut),
  and after a back-off that doubles up to the REST poll interval while it keeps failing.
  During an exchange ban (the traffic gate's) nothing is sent on either path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from solbot.domain.messages import Bar
from solbot.venues.restfeed import CcxtFeed

log = logging.getLogger(__name__)

RETRY_FIRST = 0.25  # s: the back-off after a second failure in a row; doubles, up to the poll


class StreamFeed:
    def __init__(self, rest: CcxtFeed, stream: Any, silence: float = 30.0) -> None:
        self.rest, self.stream, self.silence = rest, stream, silence
        self.symbol, self.timeframe, self.step = rest.symbol, rest.timeframe, rest.step
        self.from_stream = 0  # bars delivered by the stream (for status and tests)
        self.fallbacks = 0  # times the stream failed or went silent
        self._rest_bar = False
        self._stream_history = False

    async def before(self, last_ts: int, count: int) -> list[Bar]:
        return await self.rest.before(last_ts, count)  # history is REST's

    def is_history(self, bar: Bar) -> bool:
        if self._rest_bar:
            return self.rest.is_history(bar)
        return self._stream_history

    async def _catch_up(self, after: int | None, until: int | None = None) -> AsyncIterator[Bar]:
        """REST bars after ``after``: those closed by now (the stream takes over without
        waiting for the next to close), or up to ``until`` (a gap the stream's next bar
        proves closed: waited for until REST has it)."""
        gen = self.rest.closed_after(after) if until is None else self.rest.bars(after)
        try:
            async for bar in gen:
                if until is not None and bar.ts > until:
                    break
                self._rest_bar = True
                yield bar
                if until is not None and bar.ts >= until:
                    break
        finally:
            self._rest_bar = False
            await gen.aclose()

    async def bars(self, after_ts: int | None) -> AsyncIterator[Bar]:
        last = after_ts
        async for bar in self._catch_up(last):
            last = bar.ts
            yield bar
        pending: Bar | None = None
        failures = 0  # in a row: the first reconnect is at once, then a doubling back-off
        while True:
            wait = self.rest.traffic.ban_left() if self.rest.traffic is not None else 0.0
            if wait > 0:  # banned: the stream's reconnects would extend the ban
                await asyncio.sleep(min(wait, 1.0))
                continue
            try:
                async with asyncio.timeout(self.silence):  # not wait_for: see venues/live.py
                    rows = await self.stream.watch_ohlcv(self.symbol, self.timeframe)
            except Exception as exc:  # errors and silence alike: REST covers the stretch
                self.fallbacks += 1
                log.warning(
                    "market stream: %s: %s; catching up over REST",
                    type(exc).__name__,
                    str(exc)[:200],
                )
                async for bar in self._catch_up(last):
                    last = bar.ts
                    yield bar
                pending = None
                failures += 1
                if failures > 1:
                    backoff = RETRY_FIRST * 2 ** min(failures - 2, 16)
                    await asyncio.sleep(min(self.rest.poll, backoff))
                continue
            failures = 0
            closed_now: list[Bar] = []
            for r in rows:
                ts = int(r[0])
                if pending is not None and ts > pending.ts:
                    closed_now.append(pending)
                if pending is None or ts >= pending.ts:
                    o, h, lo, c, v = (float(x) for x in r[1:6])
                    pending = Bar(ts, o, h, lo, c, v)
            for i, closed in enumerate(closed_now):
                if last is not None and closed.ts <= last:
                    continue
                if last is not None and closed.ts > last + self.step:  # lost updates
                    async for bar in self._catch_up(last, closed.ts - self.step):
                        last = bar.ts
                        yield bar
                self._stream_history = i < len(closed_now) - 1  # a newer one closed too
                self.from_stream += 1
                last = closed.ts
                yield closed
            self._stream_history = False

    async def close(self) -> None:
        await self.stream.close()
