"""Market data feeds for the running bot: each yields closed bars after a given time.

* ``SyntheticFeed`` — the built-in deterministic market, paced at ``speed`` bars/second.
* ``ReplayFeed`` — a data file (any supported format) replayed at ``speed`` bars/second.
* The exchange's bars are the venues' (``venues.restfeed``, ``venues.streamfeed``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import numpy as np

from solbot.data.bars import BarArrays, DataError, timeframe_ms
from solbot.data.synthetic import synthetic_market
from solbot.domain.messages import Bar

log = logging.getLogger(__name__)


class BarFeed(Protocol):
    def bars(self, after_ts: int | None) -> AsyncIterator[Bar]: ...

    async def before(self, last_ts: int, count: int) -> list[Bar]:
        """The closed bars up to and including ``last_ts``, at most ``count`` (the newest):
        what a restart warms the strategy's indicators with before it goes on after
        ``last_ts`` — a run stopped at ``last_ts`` and started again decides as one that was
        never stopped. Fewer (or none) when the source cannot give them."""
        ...

    def is_history(self, bar: Bar) -> bool:
        """True for a bar that is no longer the market's latest closed bar (catching up after
        a start or a stall): the strategy may learn from it but must not trade on it."""
        ...


class _Paced:
    def __init__(self, speed: float) -> None:
        self.interval = 1.0 / speed
        self._next = time.monotonic()

    async def wait(self) -> None:
        self._next += self.interval
        delay = self._next - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            self._next = time.monotonic()  # never burst to catch up
            await asyncio.sleep(0)


class SyntheticFeed:
    """Endless synthetic market: blocks of bars, each seeded from (seed, block) and starting
    at the previous block's last close, so any point can be regenerated after a restart.

    ``history``: its first bars are the market's past, as an exchange's backfill is at a
    first start (``CcxtFeed``): they come at once, not paced, and ``is_history`` (the
    strategy warms on them and does not trade on them) — a strategy with 60-day lookbacks
    trades within seconds of ``make run``, not six minutes later."""

    BLOCK = 5000

    def __init__(
        self,
        seed: int,
        timeframe: str,
        speed: float,
        start_price: float = 20.0,
        start_ms: int = 1_640_995_200_000,
        history: int = 0,
    ) -> None:
        self.seed, self.timeframe, self.speed = seed, timeframe, speed
        self.start_price, self.start_ms = start_price, start_ms
        self.step = timeframe_ms(timeframe)
        self.live_from = start_ms + max(0, history) * self.step  # bars before: the past

    def block(self, k: int, start_price: float, start_ms: int) -> BarArrays:
        bars, _ = synthetic_market(
            bars=self.BLOCK,
            timeframe=self.timeframe,
            seed=self.seed * 1_000_003 + k,
            start_price=start_price,
            start_ms=start_ms,
        )
        return bars

    def is_history(self, bar: Bar) -> bool:
        return bar.ts < self.live_from  # the rest is paced: each bar the market's latest

    async def _blocks(self) -> AsyncIterator[BarArrays]:
        k, price, start = 0, self.start_price, self.start_ms
        while True:
            block = await asyncio.to_thread(self.block, k, price, start)
            k += 1
            price, start = float(block.close[-1]), int(block.ts[-1]) + self.step
            yield block

    async def before(self, last_ts: int, count: int) -> list[Bar]:
        kept: deque[Bar] = deque(maxlen=max(0, count))
        async for block in self._blocks():
            if int(block.ts[0]) > last_ts:
                break
            if int(block.ts[-1]) < last_ts - count * self.step:
                continue
            kept.extend(b for b in block.bars() if b.ts <= last_ts)
        return list(kept)

    async def bars(self, after_ts: int | None) -> AsyncIterator[Bar]:
        pace = _Paced(self.speed)
        async for block in self._blocks():
            if after_ts is not None and int(block.ts[-1]) <= after_ts:
                continue
            for bar in block.bars():
                if after_ts is not None and bar.ts <= after_ts:
                    continue
                if bar.ts >= self.live_from:
                    await pace.wait()
                yield bar


class ReplayFeed:
    def __init__(self, path: Path, speed: float) -> None:
        from solbot.data.importers import load_bars
        from solbot.data.validate import GapPolicy, validate

        self.data = load_bars(path)
        try:
            validate(self.data, GapPolicy.ALLOW)
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from None
        self.speed = speed
        self.start_ts: int | None = None  # several files: replay from a common time

    def is_history(self, bar: Bar) -> bool:
        return False  # paced: every bar arrives as the market's latest

    async def before(self, last_ts: int, count: int) -> list[Bar]:
        end = int(np.searchsorted(self.data.ts, last_ts, "right"))
        return list(self.data.slice(max(0, end - max(0, count)), end).bars())

    async def bars(self, after_ts: int | None) -> AsyncIterator[Bar]:
        pace = _Paced(self.speed)
        begin = after_ts if after_ts is not None else self.start_ts
        if after_ts is None and self.start_ts is not None:
            begin = self.start_ts - 1  # from the common start itself
        start = 0 if begin is None else int(np.searchsorted(self.data.ts, begin, "right"))
        for bar in self.data.slice(start, len(self.data)).bars():
            await pace.wait()
            yield bar


# where each synthetic market starts (other symbols: 100); all start on 2022-01-01
SYNTHETIC_START = {"SOL": 20.0, "BTC": 30_000.0, "ETH": 2_000.0}
