"""Pieces of live trading that need no exchange: fault specs, error classes, live config."""

from __future__ import annotations

from pathlib import Path

import pytest
from ccxt.base import errors as cx

from solbot.emulator.binance import FaultSpec, FaultSpecError
from solbot.runtime.config import ConfigError, load_settings
from solbot.venues.exchange import classify


def test_fault_spec_parses_and_refuses_nonsense() -> None:
    spec = FaultSpec.parse("429=0.1,timeout=0.05,latency=0.01,retry_after=2,partial=0.5,seed=4")
    assert spec.rates == {"429": 0.1, "timeout": 0.05}
    assert (spec.latency, spec.retry_after, spec.partial, spec.seed) == (0.01, 2, 0.5, 4)
    for bad in ("429", "429=x", "429=1.5", "boom=0.1", "500=0.6,drop=0.6", "partial=0"):
        with pytest.raises(FaultSpecError):
            FaultSpec.parse(bad)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (cx.DDoSProtection("binance 429 Too Many Requests"), "rate_limited"),
        (cx.DDoSProtection("binance 418 I'm a teapot"), "banned"),
        (cx.RequestTimeout("timeout"), "unknown"),
        (cx.ExchangeNotAvailable("503"), "unknown"),
        (cx.OperationFailed('{"code":-1001}'), "unknown"),
        (cx.BadResponse("-1007"), "unknown"),
        (cx.AuthenticationError("-2015"), "auth"),
        (cx.PermissionDenied("no"), "auth"),
        (cx.OrderNotFound("-2013"), "not_found"),
        (cx.InsufficientFunds("-2010"), "rejected"),
        (cx.InvalidOrder("LOT_SIZE"), "rejected"),
        (ValueError("?"), "error"),
    ],
)
def test_errors_are_classified_by_what_must_happen_next(exc: Exception, kind: str) -> None:
    assert classify(exc) == kind


def _live(tmp_path: Path, **env: str) -> None:
    base = {
        "SOLBOT_MARKET": "exchange",
        "SOLBOT_EXCHANGE": "binance",
        "SOLBOT_LIVE": "true",
        "SOLBOT_EXCHANGE_API_KEY": "k" * 20,
        "SOLBOT_EXCHANGE_API_SECRET": "s" * 20,
        "SOLBOT_LIVE_CONFIRM": "real-money",
        "SOLBOT_MAX_ORDER_VALUE": "500",
    }
    merged = {k: v for k, v in {**base, **env}.items() if v != "<unset>"}
    load_settings(home=tmp_path, environ=merged)


def test_live_needs_keys_confirmation_and_an_order_cap(tmp_path: Path) -> None:
    _live(tmp_path)  # complete: accepted
    for key, value, named in (
        ("SOLBOT_LIVE_CONFIRM", "yes", "live_confirm"),
        ("SOLBOT_MAX_ORDER_VALUE", "<unset>", "max_order_value: required"),
        ("SOLBOT_EXCHANGE_API_SECRET", "", "exchange_api_key"),
        ("SOLBOT_MARKET", "synthetic", "live"),
    ):
        env = {key: value}
        with pytest.raises(ConfigError, match=named):
            _live(tmp_path, **env)


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

    from solbot.runtime.feeds import CcxtFeed

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


class _Risk:
    def __init__(self) -> None:
        from solbot.domain.values import TradingState

        self.state, self.reason = TradingState.ACTIVE, ""


class _Engine:
    def __init__(self) -> None:
        self.risk = _Risk()

    def set_trading_state(self, state: object, reason: str) -> None:
        self.risk.state, self.risk.reason = state, reason


class _Service:  # the parts of the account a live session uses
    def __init__(self) -> None:
        self.engine = _Engine()
        self.kill_reason: str | None = None
        self.sent: list[tuple[str, str]] = []
        self.alerts = self

    def set_trading_state(self, state: object, reason: str) -> None:
        self.engine.set_trading_state(state, reason)

    def trading_state(self) -> tuple[object, str]:
        return self.engine.risk.state, self.engine.risk.reason

    def send(self, severity: str, title: str, text: str) -> None:
        self.sent.append((severity, title))


def test_a_ban_halts_and_its_end_resumes_but_repeated_bans_keep_trading_halted() -> None:
    from solbot.domain.values import TradingState
    from solbot.runtime.live import BANS_BEFORE_OPERATOR, LiveSession

    svc = _Service()
    session = LiveSession(svc)  # type: ignore[arg-type]
    session.alarm("P1", "exchange banned this IP (HTTP 418); nothing sent for 5s")
    assert svc.engine.risk.state is TradingState.HALTED and "418" in svc.engine.risk.reason
    session.recovered("ban over")
    assert svc.engine.risk.state is TradingState.ACTIVE
    # another halt reason in between (e.g. the daily loss limit) is not lifted by a ban's end
    session.alarm("P1", "exchange banned this IP (HTTP 418); nothing sent for 5s")
    svc.engine.set_trading_state(TradingState.HALTED, "daily loss limit")
    session.recovered("ban over")
    assert svc.engine.risk.reason == "daily loss limit"
    svc.engine.set_trading_state(TradingState.ACTIVE, "new day")
    for _ in range(BANS_BEFORE_OPERATOR):
        session.alarm("P1", "exchange banned this IP (HTTP 418); nothing sent for 5s")
    session.recovered("ban over")
    assert svc.engine.risk.state is TradingState.HALTED
    assert "bans within an hour" in svc.engine.risk.reason
    assert ("P1", "Exchange bans repeat") in svc.sent
    # an authentication failure (P0) halts and is never lifted by a ban's end
    svc2 = _Service()
    s2 = LiveSession(svc2)  # type: ignore[arg-type]
    s2.alarm("P0", "exchange refused our API key (authentication/permission)")
    s2.recovered("ban over")
    assert svc2.engine.risk.state is TradingState.HALTED


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

    from solbot.runtime.feeds import CcxtFeed
    from solbot.runtime.streamfeed import StreamFeed

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

    from solbot.runtime import streamfeed
    from solbot.runtime.feeds import CcxtFeed
    from solbot.runtime.streamfeed import StreamFeed

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


class _MovingRec:
    """A reconciler whose looks always differ and whose trades never stop arriving."""

    def __init__(self, moving: bool) -> None:
        self.moving, self.adopted, self.looks = moving, False, 0

    async def exchange_totals(self) -> dict[str, object]:
        self.looks += 1
        return {"SOL": 2}

    def differences(self, theirs: dict[str, object]) -> list[str]:
        return ["SOL ours 1 exchange 2"]

    async def foreign_orders(self) -> list[str]:
        return []

    async def moved(self) -> bool:
        return self.moving

    def adopt(self, theirs: dict[str, object], report: str) -> None:
        self.adopted = True


@pytest.mark.parametrize("moving", [True, False])
def test_accepting_the_exchange_state_never_adopts_balances_read_while_our_orders_moved(
    moving: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--accept-exchange-state took the last look's balances even when our trades were still
    arriving after it (balances from before our latest fill): now it adopts only a still look
    and otherwise refuses the start (exit 7), to be tried again."""
    import asyncio

    from solbot.runtime import restart
    from solbot.runtime.live import LiveSession
    from solbot.runtime.restart import START_LOOKS, ReconcileError

    monkeypatch.setattr(restart, "START_LOOK_PAUSE", 0.0)

    class Settings:
        accept_exchange_state = True

    class Store:
        def audit(self, *a: object, **k: object) -> None:
            return None

    svc = _Service()
    svc.sleeves = []  # type: ignore[attr-defined]
    svc.settings = Settings()  # type: ignore[attr-defined]
    svc.store = Store()  # type: ignore[attr-defined]
    session = LiveSession(svc)  # type: ignore[arg-type]
    rec = session.rec = _MovingRec(moving)  # type: ignore[assignment]
    session.protector.protect_positions = lambda: None  # type: ignore[method-assign]
    if moving:
        with pytest.raises(ReconcileError, match="still moving while we looked"):
            asyncio.run(session.reconcile_start())
        assert not rec.adopted and rec.looks == START_LOOKS
    else:
        asyncio.run(session.reconcile_start())
        assert rec.adopted and rec.looks == 1
