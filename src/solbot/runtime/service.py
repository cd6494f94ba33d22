"""The bot as a long-running asyncio service: one event loop runs the market feed, the
engine, the HTTP API (uvicorn as a task), the kill-switch watcher and the watchdog.

Paper trading = this runner with the simulated exchange as the venue. The engine and
strategy are the same objects a backtest uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import signal
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from solbot import __version__, failpoints
from solbot.data.bars import timeframe_ms
from solbot.domain.instruments import Instrument
from solbot.domain.messages import (
    Bar,
    CancelAll,
)
from solbot.domain.values import ZERO, TradingState
from solbot.engine.core import Engine
from solbot.ops import logs, sdnotify
from solbot.ops.killswitch import FlagWatcher
from solbot.ops.notify import ErrorAlerts
from solbot.persistence.check import check_database, mark_account
from solbot.persistence.store import Restored, Store
from solbot.runtime import account
from solbot.runtime.config import MarketSource, Settings
from solbot.runtime.exitcodes import EXIT_INTERNAL, EXIT_KILLED, EXIT_OK
from solbot.runtime.feeds import BarFeed
from solbot.runtime.multi import ExposureCap
from solbot.runtime.sleeve import Sleeve
from solbot.strategies import source_sha256
from solbot.venues.sim import SimulatedExchange

if TYPE_CHECKING:
    from solbot.api.app import ApiServer
    from solbot.runtime.live import LiveSession
    from solbot.venues.live import LiveVenue

log = logging.getLogger(__name__)

# s: how long a stop waits for Discord; what has not gone by then is sent at the next start
# (a kill flag's exit within 1 s and a SIGTERM's within 2 s hold with the webhook unreachable)
NOTIFY_ON_STOP = 0.5


class KillSwitchEngaged(Exception):
    pass


@dataclass(slots=True)
class DayBook:
    day: str
    start_equity: Decimal
    halted: bool = False


class BotService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.db_url)
        self.tz = ZoneInfo(settings.timezone)
        self.started_monotonic = time.monotonic()
        self.started_at = datetime.now(UTC)
        self.exit_code = EXIT_OK
        self.stop_reason = ""
        self.kill_reason: str | None = None
        self.paused = False
        self.sleeves = [Sleeve(self, sym, i) for i, sym in enumerate(settings.trading_symbols)]
        self.primary = self.sleeves[0]
        self.bar_seconds: deque[float] = deque(maxlen=5000)  # recent bar processing times
        self.equity_points: deque[tuple[int, float]] = deque(maxlen=2000)  # (bar ts, equity)
        self._changed = asyncio.Event()  # replaced on every change: the dashboard waits on it
        self.changes = 0  # how many changes so far (the dashboard renders once per change)
        self.day: DayBook | None = None
        self.live: LiveVenue | None = None
        self.live_session: LiveSession | None = None
        self.weights: dict[str, Decimal] = {}
        self.cap: ExposureCap | None = None
        self._stop = asyncio.Event()
        self._stopping = False
        from solbot.api.metrics import Metrics

        self.metrics = Metrics(self)
        from solbot.ops.notify import Notifier

        self.notifier = Notifier(
            settings.discord_webhook_url,
            settings.secrets(),
            label="testnet" if settings.exchange_sandbox else "",
            outbox=settings.data_dir / "notify-outbox.jsonl",
        )
        from solbot.ops.instance import InstanceLock

        self.instance = InstanceLock(settings.data_dir)

    # ------------------------------------------------- the one-symbol view (first sleeve)
    @property
    def instrument(self) -> Instrument:
        return self.primary.instrument

    @instrument.setter
    def instrument(self, value: Instrument) -> None:
        self.primary.instrument = value

    @property
    def engine(self) -> Engine:
        return self.primary.engine

    @property
    def venue(self) -> SimulatedExchange | LiveVenue:
        return self.primary.venue

    @property
    def last_bar(self) -> Bar | None:
        return self.primary.last_bar

    @property
    def recent_bars(self) -> deque[Bar]:
        return self.primary.recent_bars

    @property
    def market_feed(self) -> BarFeed | None:
        return self.primary.market_feed

    @property
    def bars_seen(self) -> int:
        return sum(sl.bars_seen for sl in self.sleeves)

    def sleeve(self, symbol: str) -> Sleeve | None:
        """The sleeve of ``symbol`` (``SOL/USDT``, ``SOLUSDT``, ``sol-usdt``), or None."""
        wanted = symbol.replace("-", "/").replace("_", "/").upper()
        for sl in self.sleeves:
            if wanted in (sl.symbol.upper(), sl.symbol.replace("/", "").upper()):
                return sl
        return None

    # ---------------------------------------------------------------- building
    def build(self) -> None:
        s = self.settings
        check_database(s.db_url, s.data_dir)  # damaged or unexpectedly empty: not written to
        self.store.migrate()
        mark_account(s.db_url, s.data_dir)
        account.refuse_orphans(self.store, {sl.symbol for sl in self.sleeves})
        account.open_feeds(self.sleeves)
        restored = {sl.symbol: self.store.restore(sl.symbol) for sl in self.sleeves}
        fresh = [sl for sl in self.sleeves if restored[sl.symbol].empty]
        kept = restored[self.primary.symbol].kv.get("allocation")
        weights = self.weights = account.allocation(s, self.store, self.sleeves, kept, bool(fresh))
        session = self.live_session
        capital = s.initial_cash
        if session is not None:  # live: the account's quote balance, split by the weights
            capital = session.balances.get(self.instrument.quote, ZERO)
        for sl in self.sleeves:
            cash = (capital * weights[sl.symbol]).quantize(Decimal("0.00000001"))
            if restored[sl.symbol].empty and len(fresh) < len(self.sleeves) and session is None:
                quote = sl.instrument.quote
                log.warning("%s: a new sleeve with %s %s of paper capital", sl.symbol, cash, quote)
            venue = session.venues[sl.symbol] if session is not None else None
            sl.build(restored[sl.symbol], cash, venue)
        if len(self.sleeves) > 1:
            self.cap = ExposureCap(
                s.exposure_cap, lambda: ((x.engine.portfolio, x.mark()) for x in self.sleeves)
            )
            for sl in self.sleeves:
                sl.engine.risk.extra_checks.append(self.cap)
        first = restored[self.primary.symbol]
        if not first.kv.get("started_at"):
            self.store.put(started_at=self.started_at.isoformat())
        self._restore_day(first)
        self.equity_points.extend((ts, float(eq)) for ts, eq in self.store.equity_points())
        self.store.audit(
            "start",
            {
                "version": __version__,
                "market": s.market.value,
                "symbols": [sl.symbol for sl in self.sleeves],
                "resumed": len(fresh) < len(self.sleeves),
                "strategy": s.strategy,
                "strategy_sha256": source_sha256(s.strategy),  # a file's: what runs
            },
        )

    def _restore_day(self, restored: Restored) -> None:
        if not restored.days:
            return
        day = max(restored.days)
        row = restored.days[day]
        self.day = DayBook(day, row.start_equity, row.halted)
        if row.halted:
            self.set_trading_state(TradingState.HALTED, f"daily loss limit hit on {day}")

    # ---------------------------------------------------------------- queries
    @property
    def mode(self) -> str:
        if self.live is None:
            return "paper"
        return "live (testnet)" if self.settings.exchange_sandbox else "live"

    @property
    def uptime(self) -> float:
        return time.monotonic() - self.started_monotonic

    def mark(self) -> Decimal:
        return self.primary.mark()

    def equity(self) -> Decimal:
        """The account's equity: every sleeve marked to market, in the common quote."""
        return sum((sl.equity() for sl in self.sleeves), ZERO)

    def initial_quote(self) -> Decimal:
        return sum((sl.engine.portfolio.initial_quote for sl in self.sleeves), ZERO)

    def weight(self, symbol: str) -> Decimal:
        """``symbol``'s share of the initial capital (6 decimals, for people)."""
        return self.weights.get(symbol, Decimal(1)).quantize(Decimal("0.000001"))

    def exposure(self) -> Decimal:
        return sum((sl.exposure() for sl in self.sleeves), ZERO)

    def pnl_snapshot(self) -> tuple[Decimal, Decimal, Decimal]:
        """(equity, daily PnL, total PnL) of the account from one mark-to-market."""
        equity = self.equity()
        start = self.day.start_equity if self.day is not None else equity
        money = self.instrument.money
        return equity, money(equity - start), money(equity - self.initial_quote())

    def trading_state(self) -> tuple[TradingState, str]:
        """The most restrictive state of any sleeve (HALTED > REDUCING > ACTIVE)."""
        order = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}
        worst = max(self.sleeves, key=lambda sl: order[sl.engine.risk.state])
        risk = worst.engine.risk
        reason = risk.reason
        alike = all(sl.engine.risk.reason == reason for sl in self.sleeves)
        if not alike and risk.state is not TradingState.ACTIVE:  # one symbol's own trouble
            reason = f"{worst.symbol}: {reason}"
        return risk.state, reason

    def set_trading_state(self, state: TradingState, reason: str) -> None:
        for sl in self.sleeves:
            sl.engine.set_trading_state(state, reason)

    def daily_pnl(self) -> Decimal:
        return self.pnl_snapshot()[1]

    def health(self) -> tuple[bool, list[str]]:
        problems = []
        if self.kill_reason is not None or self.settings.kill_flag.exists():
            problems.append("kill switch engaged")
        for sl in self.sleeves:
            which = f" for {sl.symbol}" if len(self.sleeves) > 1 else ""
            if sl.last_bar_wall is None:
                if self.uptime > 30:
                    problems.append(f"no market data yet{which}")
            else:
                age = time.monotonic() - sl.last_bar_wall
                if age > self.stale_after_seconds():
                    problems.append(f"market data stale{which} ({age:.0f} s)")
        session = self.live_session
        if session is not None and session.health.clock_problem is not None:
            problems.append(f"exchange clock: {session.health.clock_problem}")
        if self._stopping:
            problems.append("stopping")
        return not problems, problems

    def stale_after_seconds(self) -> float:
        """Paced markets: ``stale_after_bars`` bar intervals (at least 5 s). Exchange data: a
        closed bar is due once per timeframe, so stale means more than half a bar late."""
        s = self.settings
        if s.market is MarketSource.EXCHANGE:
            return timeframe_ms(s.timeframe) / 1000 * 1.5 + 30.0
        return max(5.0, s.stale_after_bars / s.speed)

    # ---------------------------------------------------------------- market data
    def on_bar(self, bar: Bar, history: bool = False, symbol: str | None = None) -> None:
        """One closed bar of ``symbol`` (default: the first). ``history``: a bar the market has
        already moved past (start-up backfill, catching up after a stall) warms the strategy
        up but never makes it trade on an old price."""
        sl = self.primary if symbol is None else self.sleeve(symbol)
        if sl is None:
            raise KeyError(f"not traded: {symbol}")
        self._sleeve_bar(sl, bar, history)

    def _sleeve_bar(self, sl: Sleeve, bar: Bar, history: bool) -> None:
        t0 = time.perf_counter()
        # The paper venue lives in this process and is restored from the store, so one
        # transaction per bar (one fsync) is both faster and stricter: after a crash a bar is
        # either wholly on disk or replayed whole. A remote venue (live) must not be batched
        # around: an order's intent has to be durable before it is sent.
        with self.store.batch() if self.live is None else contextlib.nullcontext():
            sl.step(bar, self.paused or history)
            self._day_check(sl, bar)
        took = time.perf_counter() - t0
        self.bar_seconds.append(took)
        self.metrics.bar_latency.observe(took)
        self.changed()

    def changed(self) -> None:
        """Wake whoever waits for news (the dashboard's event streams)."""
        self.changes += 1
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    @property
    def stopping(self) -> bool:
        return self._stopping or self._stop.is_set()

    async def wait_stop(self, timeout: float) -> None:
        """Sleep ``timeout`` seconds, or less if the bot starts to stop."""
        with contextlib.suppress(TimeoutError):  # not wait_for: it can swallow a cancel
            async with asyncio.timeout(timeout):
                await self._stop.wait()

    async def wait_change(self, timeout: float) -> None:
        """Until the next change, the stop, or ``timeout`` seconds."""
        waits = [
            asyncio.ensure_future(self._changed.wait()),
            asyncio.ensure_future(self._stop.wait()),
        ]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    def _day_check(self, sl: Sleeve, bar: Bar) -> None:
        """The daily loss limit on the whole account, after each bar of any symbol."""
        day = datetime.fromtimestamp(bar.ts / 1000, self.tz).date().isoformat()
        equity = self.equity()
        if self.day is None or self.day.day < day:
            if self.day is not None and self.day.halted:
                self.set_trading_state(TradingState.ACTIVE, f"new trading day {day}")
            self.day = DayBook(day, equity)
        if self.equity_points and self.equity_points[-1][0] == bar.ts:
            self.equity_points[-1] = (bar.ts, float(equity))  # another symbol's same bar
        else:
            self.equity_points.append((bar.ts, float(equity)))
        limit = self.day.start_equity * self.settings.daily_loss_limit
        if not self.day.halted and equity - self.day.start_equity <= -limit:
            self.day.halted = True
            reason = f"daily loss limit: {equity - self.day.start_equity} <= -{limit}"
            self.set_trading_state(TradingState.HALTED, reason)
            for each in self.sleeves:  # the stops protecting a position keep resting
                each.engine.execute([CancelAll(keep_protection=True)])
            self.notifier.send("P1", "Daily loss limit", reason)
        day_book = self.day
        self.store.bar_done(
            sl.symbol, bar, day_book.day, day_book.start_equity, equity, day_book.halted
        )
        failpoints.hit("bar-done")

    # ---------------------------------------------------------------- control
    def pause(self) -> None:
        self.paused = True
        self.store.audit("pause", {})
        self.changed()

    def resume(self) -> None:
        self.paused = False
        self.store.audit("resume", {})
        self.changed()

    def kill(self, reason: str) -> None:
        """HALTED -> cancel every resting order -> persist -> alert P0 -> exit EXIT_KILLED."""
        if self.kill_reason is not None:
            return
        self.kill_reason = reason
        log.critical("KILL SWITCH: %s", reason)
        self.set_trading_state(TradingState.HALTED, f"kill switch: {reason}")
        for sl in self.sleeves:
            sl.engine.execute([CancelAll()])
        if self.settings.flatten_on_kill:
            for sl in self.sleeves:
                sl.flatten()
        self.set_trading_state(TradingState.HALTED, f"kill switch: {reason}")
        for sl in self.sleeves:
            sl.write_books()
        self.store.audit("kill", {"reason": reason})
        self.metrics.kill_engaged.set(1)
        self.notifier.send("P0", "Kill switch engaged", reason)
        self.exit_code = EXIT_KILLED
        self.request_stop("kill switch")

    def request_stop(self, reason: str) -> None:
        if not self.stop_reason:
            self.stop_reason = reason
        self._stop.set()
        self.changed()

    # ---------------------------------------------------------------- running
    async def run(self) -> int:
        s = self.settings
        if s.kill_flag.exists():
            raise KillSwitchEngaged(
                f"kill switch flag {s.kill_flag} exists; "
                f"clear it with 'solbot kill --clear' to trade again"
            )
        self.instance.acquire()  # one bot per home (AlreadyRunning: exit 2)
        try:
            return await self._run()
        finally:
            self.instance.release()

    async def _run(self) -> int:
        s = self.settings
        if s.live:
            from solbot.runtime.live import LiveSession

            self.live_session = LiveSession(self)
            self.live = await self.live_session.connect()
        self.build()  # opens every market's data too: a bad replay file fails the start
        if self.live_session is not None and self.live is not None:
            try:
                await self.live_session.reconcile_start()
            except BaseException:
                await self.live_session.close()
                self.store.close()
                raise
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, signal.Signals(sig).name)
        watcher = FlagWatcher(s.kill_flag, lambda: self.kill(self._flag_reason()))
        from solbot.api.app import serve

        server, server_task = await serve(self)
        watcher.start()
        tasks = [
            asyncio.create_task(
                sl.market(self._sleeve_bar, self._stop.is_set),
                name="market" if len(self.sleeves) == 1 else f"market {sl.symbol}",
            )
            for sl in self.sleeves
        ]
        tasks.append(asyncio.create_task(self.metrics.loop_lag(), name="loop-lag"))
        if self.live_session is not None and self.live is not None:
            for sym, venue in self.live_session.venues.items():
                name = "venue-sync" if len(self.sleeves) == 1 else f"venue-sync {sym}"
                tasks.append(asyncio.create_task(venue.run(), name=name))
            if s.reconcile_seconds > 0:
                watch = self.live_session.watch(s.reconcile_seconds)
                tasks.append(asyncio.create_task(watch, name="reconcile"))
            for name, coro in self.live_session.background():
                tasks.append(asyncio.create_task(coro, name=name))
        wd = sdnotify.watchdog_interval()
        if wd:
            tasks.append(asyncio.create_task(self._watchdog(wd), name="watchdog"))
        for t in tasks:
            t.add_done_callback(self._task_ended)
        self.notifier.start()
        alerts = ErrorAlerts(self.notifier)
        logging.getLogger("solbot").addHandler(alerts)
        mode = f"{self.mode.upper()} ({s.exchange})" if self.live is not None else "paper"
        symbols = ", ".join(sl.symbol for sl in self.sleeves)
        sdnotify.notify(f"READY=1\nSTATUS=trading {symbols} ({s.market.value})")
        log.info(
            "solbot %s up: %s %s %s on %s, API http://%s:%d",
            __version__,
            symbols,
            s.timeframe,
            mode,
            s.market.value,
            s.host,
            s.port,
        )
        self.notifier.send("P3", "Bot started", f"{symbols} {mode} on {s.market.value}")
        await self._stop.wait()
        await self._shutdown(server, server_task, tasks, watcher)
        logging.getLogger("solbot").removeHandler(alerts)
        return self.exit_code

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """A core task must run until shutdown; if one dies, the bot stops with an error (exit
        1) rather than run on half-blind (systemd restarts it and reconciliation catches up)."""
        if task.cancelled() or self._stopping or task.exception() is None:
            return  # a replay feed may simply end: the API stays up
        exc = task.exception()
        what = f"{type(exc).__name__}: {exc}"
        log.error("task %s died (%s); stopping", task.get_name(), what, exc_info=exc)
        self.notifier.send("P1", "Bot task died", f"{task.get_name()}: {what}"[:300])
        if self.exit_code == EXIT_OK:
            self.exit_code = EXIT_INTERNAL
        self.request_stop(f"task {task.get_name()} died")

    def _flag_reason(self) -> str:
        from solbot.ops.killswitch import flag_reason

        return flag_reason(self.settings.kill_flag) or "kill-switch.flag created"

    async def _watchdog(self, interval: float) -> None:
        while True:
            sdnotify.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    async def _shutdown(
        self,
        server: ApiServer,
        server_task: asyncio.Task[None],
        tasks: list[asyncio.Task[None]],
        watcher: FlagWatcher,
    ) -> None:
        self._stopping = True
        sdnotify.notify("STOPPING=1")
        log.info("stopping: %s", self.stop_reason)
        # should a step hang, every thread's stack goes to stderr (journal) before systemd's
        # TimeoutStopSec=30 kills us: the next stop of this kind can then be fixed, not guessed
        faulthandler.dump_traceback_later(20.0, exit=False)
        for t in tasks:  # stop intake first
            t.cancel()
        _done, pending = await asyncio.wait(tasks, timeout=5.0)
        for t in pending:
            log.error("shutdown: task %s did not stop within 5 s", t.get_name())
        watcher.stop()
        log.debug("shutdown: intake stopped")
        if self.kill_reason is None and self.settings.cancel_on_stop:
            for sl in self.sleeves:
                sl.engine.execute([CancelAll()])
        if self.live_session is not None:
            await self.live_session.stop()
        for sl in self.sleeves:
            sl.write_books()
        self.store.audit("stop", {"reason": self.stop_reason, "exit_code": self.exit_code})
        if self.kill_reason is None:
            self.notifier.send("P2", "Bot stopped", self.stop_reason)
        log.debug("shutdown: books persisted")
        await self.notifier.drain(timeout=NOTIFY_ON_STOP)  # the rest: the outbox
        log.debug("shutdown: notifications drained")
        await server.stop_fast()
        server_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(server_task, timeout=1.0)
        log.debug("shutdown: HTTP server closed")
        self.store.close()
        faulthandler.cancel_dump_traceback_later()
        log.info("stopped (exit code %d)", self.exit_code)
        logs.flush()
