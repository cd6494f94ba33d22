"""The exchange's market data through ccxt, with no exchange: the REST feed tells closed bars
from the forming one by the exchange's clock; the stream feed delivers a bar when the next
opens, fills its gaps over REST and falls back to REST when the stream fails."""

from __future__ import annotations

import pytest


class _FakeClockExchange:
    """fetch_time / fetch_ohlcv as ccxt's sync exchange answers them: 1m bars up to now."""

    def __init__(self, now: int) -> None:
        self.now = now

    def fetch_time(self) -> int:
        return self.now

    def fetch_ohlcv(self, symbol: str, tf: str, since: int, limit: int) -> list[list[float]]:
        start = since - since % 60_000
        return [
            [float(ts), 1.0, 1.0, 1.0, 1.0, 1.0]
            for ts in range(start, self.now + 1, 60_000)
            if ts < start + limit * 60_000
        ]


def test_exchange_feed_marks_backfilled_bars_as_history_and_only_the_latest_as_live() -> None:
    import asyncio

    from solbot.venues.restfeed import CcxtFeed

    now = 1_700_000_000_000 - 1_700_000_000_000 % 60_000 + 30_000  # mid-bar
    ex = _FakeClockExchange(now)
    feed = CcxtFeed(ex, "SOL/USDT", "1m", poll=0.0)

    async def first(n: int) -> list[tuple[int, bool]]:
        out = []
        async for bar in feed.bars(None):
            out.append((bar.ts, feed.is_history(bar)))
            if len(out) == n:
                break
        return out

    got = asyncio.run(first(200))
    assert [h for _, h in got[:-1]] == [True] * 199  # backfill: warm-up only
    assert got[-1] == (now - 30_000 - 60_000, False)  # the last closed bar is tradable
    assert all(ts + 60_000 <= now for ts, _ in got)  # never a forming bar


def test_exchange_feed_backfills_the_history_the_strategy_needs_in_pages() -> None:
    """tsmom decides on 60 daily closes: 1,488 1h bars must be fetched at start (two pages
    of Binance's 1,000-kline maximum), not the 200 every strategy got before."""
    import asyncio

    from solbot.strategies.tsmom import TimeSeriesMomentum
    from solbot.venues.restfeed import CcxtFeed

    need = TimeSeriesMomentum().warmup_bars(60_000 * 60)
    now = 1_700_000_000_000 - 1_700_000_000_000 % 60_000 + 30_000
    ex = _FakeClockExchange(now)
    feed = CcxtFeed(ex, "SOL/USDT", "1m", poll=0.0, history=need)

    async def until_live() -> list[int]:
        out = []
        async for bar in feed.bars(None):
            out.append(bar.ts)
            if not feed.is_history(bar):
                break
        return out

    got = asyncio.run(until_live())
    assert len(got) == need and need > 1000
    assert got == sorted(set(got)) and got[-1] == now - 30_000 - 60_000


class _FakeStream:
    """watch_ohlcv answers from a script: lists of candles, or an exception to raise."""

    def __init__(self, script: list[object]) -> None:
        self.script = script

    async def watch_ohlcv(self, symbol: str, tf: str) -> list[list[float]]:
        item = self.script.pop(0) if self.script else TimeoutError("silent")
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, list)
        return item

    async def close(self) -> None:
        return None


def test_stream_feed_delivers_a_bar_when_the_next_opens_fills_gaps_and_falls_back() -> None:
    import asyncio

    from solbot.venues.restfeed import CcxtFeed
    from solbot.venues.streamfeed import StreamFeed

    m = 60_000
    t0 = 1_700_000_000_000 - 1_700_000_000_000 % m
    ex = _FakeClockExchange(t0 + 3 * m + 10)  # REST: bars t0, t0+m, t0+2m are closed
    rest = CcxtFeed(ex, "SOL/USDT", "1m", poll=0.0)

    def candle(ts: int, close: float) -> list[float]:
        return [float(ts), 1.0, 2.0, 0.5, close, 10.0]

    stream = _FakeStream(
        [
            [candle(t0 + 3 * m, 1.1)],  # forming
            [candle(t0 + 3 * m, 1.3), candle(t0 + 4 * m, 1.0)],  # final update, next opens
            [candle(t0 + 7 * m, 1.0)],  # a reconnect lost 5m and 6m: 4m is closed
            [candle(t0 + 8 * m, 1.0)],  # 7m closed; 5m and 6m come from REST first
            ConnectionError("stream dropped"),  # REST catches up: 8m
        ]
    )
    feed = StreamFeed(rest, stream, silence=5.0)

    async def take(n: int) -> list[tuple[int, float, bool]]:
        out = []
        async for bar in feed.bars(t0 - m):
            out.append((bar.ts, bar.close, feed.is_history(bar)))
            if bar.ts == t0 + 4 * m:
                ex.now = t0 + 9 * m + 10  # REST has 5m .. 8m closed from here on
            if len(out) == n:
                break
        return out

    got = asyncio.run(take(9))
    assert [(ts - t0) // m for ts, _, _ in got] == list(range(9))
    assert [h for _, _, h in got[:3]] == [True, True, False]  # REST backfill: history but last
    assert got[3] == (t0 + 3 * m, 1.3, False)  # from the stream, with its final values
    assert [h for _, _, h in got[5:7]] == [True, True]  # gap filled over REST: warm-up only
    assert got[7][2] is False and got[8][2] is False
    assert feed.from_stream == 3 and feed.fallbacks == 1  # 3m, 4m, 7m; then REST gave 8m


def test_a_stream_cut_is_watched_again_at_once_and_repeated_failures_back_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Binance cuts every connection after 24 h (web-socket-streams.md): the first reconnect
    goes at once; failures in a row wait 0.25 s, 0.5 s, … up to the REST poll interval."""
    import asyncio

    from solbot.venues import streamfeed
    from solbot.venues.restfeed import CcxtFeed
    from solbot.venues.streamfeed import StreamFeed

    m = 60_000
    t0 = 1_700_000_000_000 - 1_700_000_000_000 % m
    ex = _FakeClockExchange(t0 + m + 10)  # REST: t0 closed
    rest = CcxtFeed(ex, "SOL/USDT", "1m", poll=2.0)

    def candle(ts: int) -> list[float]:
        return [float(ts), 1.0, 2.0, 0.5, 1.0, 10.0]

    cut = ConnectionError("closing code 1000")
    script: list[object] = [[candle(t0 + m)], cut, [candle(t0 + 2 * m)]]  # one routine cut
    script += [cut] * 6 + [[candle(t0 + 3 * m)], cut, [candle(t0 + 4 * m)]]

    class Clocked(_FakeStream):  # the exchange's clock is where its stream is
        async def watch_ohlcv(self, symbol: str, tf: str) -> list[list[float]]:
            rows = await super().watch_ohlcv(symbol, tf)
            ex.now = int(rows[-1][0]) + 10
            return rows

    feed = StreamFeed(rest, Clocked(script), silence=5.0)
    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)

    monkeypatch.setattr(streamfeed.asyncio, "sleep", fake_sleep)

    async def take(n: int) -> list[int]:
        out = []
        async for bar in feed.bars(t0 - m):
            out.append((bar.ts - t0) // m)
            if len(out) == n:
                break
        return out

    assert asyncio.run(take(4)) == [0, 1, 2, 3]  # 1 by the stream; 2 and 3 by REST after cuts
    assert slept == [0.25, 0.5, 1.0, 2.0, 2.0]  # none after a single cut, none after a success


class _FlakyExchange(_FakeClockExchange):
    """Fails the first ``failures`` klines requests as a network error would."""

    def __init__(self, now: int, failures: int) -> None:
        super().__init__(now)
        self.failures, self.asked = failures, 0

    def fetch_ohlcv(self, symbol: str, tf: str, since: int, limit: int) -> list[list[float]]:
        self.asked += 1
        if self.failures:
            self.failures -= 1
            raise OSError("connection reset")
        return super().fetch_ohlcv(symbol, tf, since, limit)


def test_a_restart_warms_on_the_bars_up_to_the_last_processed_in_pages() -> None:
    """After a restart the feed goes on after the last bar processed; ``before`` gives the
    strategy's warm-up up to it (1,488 bars: two pages), a failed page tried again."""
    import asyncio

    from solbot.venues.restfeed import CcxtFeed

    now = 1_700_000_000_000 - 1_700_000_000_000 % 60_000 + 30_000
    last = now - 30_000 - 10 * 60_000  # the bot stopped ten bars ago
    ex = _FlakyExchange(now, failures=1)
    feed = CcxtFeed(ex, "SOL/USDT", "1m", poll=0.0)
    feed._retry_after = lambda exc: 0.0  # type: ignore[method-assign]  # no hold in a unit test
    got = asyncio.run(feed.before(last, 1_488))
    assert [b.ts for b in got] == list(range(last - 1_487 * 60_000, last + 1, 60_000))
    assert ex.asked == 3  # the failed page, then two of 1,000 at most

    ex = _FlakyExchange(now, failures=10)  # the exchange down: the strategy starts cold
    feed = CcxtFeed(ex, "SOL/USDT", "1m", poll=0.0)
    feed._retry_after = lambda exc: 0.0  # type: ignore[method-assign]
    assert asyncio.run(feed.before(last, 1_488)) == []
    assert ex.asked == CcxtFeed.RETRIES
