"""The bot as a long-running asyncio service: one event loop runs the market feed, the
engine, the HTTP API (uvicorn as a task), the kill-switch watcher and the watchdog.

Paper trading = this runner with the simulated exchange as the venue. The engine and
strategy are the same objects a backtest uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import json
import logging
import signal
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from solbot import __version__
from solbot.data.bars import timeframe_ms
from solbot.domain.instruments import Instrument
from solbot.domain.ledger import Ledger
from solbot.domain.messages import (
    Bar,
    CancelAll,
    Event,
    OrderFilled,
    OrderSubmitted,
    SubmitOrder,
    TradingStateChanged,
)
from solbot.domain.orders import OrderStatus
from solbot.domain.values import ZERO, OrderId, OrderType, Side, TradingState
from solbot.engine.core import Engine
from solbot.engine.portfolio import Portfolio
from solbot.engine.ports import SimClock
from solbot.engine.risk import RiskEngine, RiskLimits
from solbot.ops import logs, sdnotify
from solbot.ops.killswitch import FlagWatcher
from solbot.ops.notify import ErrorAlerts
from solbot.persistence.store import Restored, Store
from solbot.runtime.backtest import instrument_for
from solbot.runtime.config import MarketSource, Settings
from solbot.runtime.exitcodes import EXIT_INTERNAL, EXIT_KILLED, EXIT_OK
from solbot.runtime.feeds import BarFeed, CcxtFeed, feed_for
from solbot.strategies import create
from solbot.venues.sim import SimConfig, SimulatedExchange

if TYPE_CHECKING:
    from solbot.api.app import ApiServer
    from solbot.runtime.live import LiveSession
    from solbot.venues.live import LiveVenue

log = logging.getLogger(__name__)


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
        self.instrument: Instrument = instrument_for(settings.symbol)
        self.store = Store(settings.db_url)
        self.tz = ZoneInfo(settings.timezone)
        self.started_monotonic = time.monotonic()
        self.started_at = datetime.now(UTC)
        self.exit_code = EXIT_OK
        self.stop_reason = ""
        self.kill_reason: str | None = None
        self.paused = False
        self.last_bar: Bar | None = None
        self.last_bar_wall: float | None = None
        self.bars_seen = 0
        self.recent_bars: deque[Bar] = deque(maxlen=1000)
        self.bar_seconds: deque[float] = deque(maxlen=5000)  # recent bar processing times
        self.equity_points: deque[tuple[int, float]] = deque(maxlen=2000)  # (bar ts, equity)
        self._changed = asyncio.Event()  # replaced on every change: the dashboard waits on it
        self.day: DayBook | None = None
        self.engine: Engine
        self.venue: SimulatedExchange | LiveVenue
        self.live: LiveVenue | None = None
        self.live_session: LiveSession | None = None
        self._stop = asyncio.Event()
        self._stopping = False
        self._submit_wall: dict[OrderId, float] = {}
        self.market_feed: BarFeed | None = None
        from solbot.api.metrics import Metrics

        self.metrics = Metrics(self)
        from solbot.ops.notify import Notifier

        self.notifier = Notifier(settings.discord_webhook_url, settings.secrets())
        from solbot.ops.instance import InstanceLock

        self.instance = InstanceLock(settings.data_dir)

    # ---------------------------------------------------------------- building
    def build(self) -> None:
        s = self.settings
        self.store.migrate()
        restored = self.store.restore(s.symbol)
        inst = self.instrument
        if restored.empty and self.live_session is not None:  # a new live account
            theirs = self.live_session.balances
            balances = {
                inst.quote: theirs.get(inst.quote, ZERO),
                inst.base: theirs.get(inst.base, ZERO),
            }
        elif restored.empty:
            balances = {inst.quote: s.initial_cash, inst.base: ZERO}
        else:  # totals; a paper venue restarts with us (its open orders died with it)
            balances = {a: free + locked for a, (free, locked) in restored.balances.items()}
        if self.live is not None:
            self.venue = self.live
        else:
            self.venue = SimulatedExchange(
                inst,
                balances,
                SimConfig(slippage=s.slippage, maker_fee=s.fee, taker_fee=s.fee),
                id_prefix=f"P{int(time.time() * 1000)}-",
            )
        initial_quote = (
            balances[inst.quote]
            if restored.empty and self.live is not None
            else self._initial_quote(restored)
        )
        portfolio = Portfolio(inst, Ledger(balances), initial_quote=initial_quote)
        if restored.position is not None:
            p = restored.position
            portfolio.position.qty, portfolio.position.avg_price = p.qty, p.avg_price
            portfolio.position.realised_pnl, portfolio.position.fees = p.realised_pnl, p.fees
        strategy = create(s.strategy, **s.strategy_params)
        self.engine = Engine(
            strategy,
            portfolio,
            self.venue,
            SimClock(),
            RiskEngine(RiskLimits(max_order_value=s.max_order_value)),
            first_seq=restored.max_order_seq + 1,
        )
        if self.live_session is None:
            self._cancel_stale(restored)
        else:
            self.live_session.restore_orders(restored)
        if restored.empty:
            self.store.put(initial_quote=str(initial_quote), started_at=self.started_at.isoformat())
        # the books as this run starts them (after a crash: what stale orders held is free)
        self.store.write_books(portfolio.ledger, portfolio.position, int(time.time() * 1000))
        self.engine.listeners.append(self._on_event)
        if self.live is not None:
            self.live.after = self.engine.on_venue_event_drain
        self.engine.start()
        if "last_bar" in restored.kv:  # marks equity and risk checks until the next bar
            self.last_bar = Bar(*json.loads(restored.kv["last_bar"]))
            self.engine.last_bar = self.last_bar
        self._restore_day(restored)
        self.equity_points.extend((ts, float(eq)) for ts, eq in self.store.equity_points())
        self.store.audit(
            "start",
            {"version": __version__, "market": s.market.value, "resumed": not restored.empty},
        )

    def _initial_quote(self, restored: Restored) -> Decimal:
        value = restored.kv.get("initial_quote")
        return Decimal(value) if value else self.settings.initial_cash

    def _cancel_stale(self, restored: Restored) -> None:
        """Orders left open by a crash: the paper venue that held them is gone."""
        for row in restored.open_orders:
            row.status = OrderStatus.CANCELLED.value
            row.reason = "paper venue restarted"
            with self.store.session() as sess, sess.begin():
                sess.merge(row)
            self.store.audit("OrderCancelled", {"reason": row.reason}, order_id=row.order_id)

    def _restore_day(self, restored: Restored) -> None:
        if not restored.days:
            return
        day = max(restored.days)
        row = restored.days[day]
        self.day = DayBook(day, row.start_equity, row.halted)
        if row.halted:
            self.engine.set_trading_state(TradingState.HALTED, f"daily loss limit hit on {day}")

    # ---------------------------------------------------------------- queries
    @property
    def uptime(self) -> float:
        return time.monotonic() - self.started_monotonic

    def mark(self) -> Decimal:
        bar = self.last_bar or self.engine.last_bar
        return self.instrument.price(bar.close) if bar is not None else ZERO

    def equity(self) -> Decimal:
        return self.instrument.money(self.engine.portfolio.equity(self.mark()))

    def pnl_snapshot(self) -> tuple[Decimal, Decimal, Decimal]:
        """(equity, daily PnL, total PnL) from one mark-to-market."""
        equity = self.equity()
        start = self.day.start_equity if self.day is not None else equity
        money = self.instrument.money
        return equity, money(equity - start), money(equity - self.engine.portfolio.initial_quote)

    def daily_pnl(self) -> Decimal:
        return self.pnl_snapshot()[1]

    def health(self) -> tuple[bool, list[str]]:
        problems = []
        if self.kill_reason is not None or self.settings.kill_flag.exists():
            problems.append("kill switch engaged")
        if self.last_bar_wall is None:
            if self.uptime > 30:
                problems.append("no market data yet")
        else:
            age = time.monotonic() - self.last_bar_wall
            if age > self.stale_after_seconds():
                problems.append(f"market data stale ({age:.0f} s)")
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

    # ---------------------------------------------------------------- events
    def _on_event(self, event: Event | TradingStateChanged) -> None:
        if isinstance(event, TradingStateChanged):
            self.store.audit("TradingStateChanged", {"state": event.state, "reason": event.reason})
            return
        pf = self.engine.portfolio
        order = pf.orders[event.order_id]
        realised = pf.fills[-1].realised_pnl if isinstance(event, OrderFilled) else ZERO
        self.store.record(event, order, pf.ledger, pf.position, realised)
        self.metrics.on_event(event, order)
        now = time.perf_counter()
        if isinstance(event, OrderSubmitted):
            self._submit_wall[event.order_id] = now
        elif order.status.is_terminal:
            t0 = self._submit_wall.pop(event.order_id, None)
            if t0 is not None and isinstance(event, OrderFilled):
                self.metrics.roundtrip.observe(now - t0)
        if isinstance(event, OrderFilled) and self.settings.notify_fills:
            f = event.fill
            self.notifier.send("P3", "Fill", f"{f.side.value} {f.quantity} {f.symbol} @ {f.price}")

    def on_bar(self, bar: Bar, history: bool = False) -> None:
        """``history``: a bar the market has already moved past (start-up backfill, catching up
        after a stall) warms the strategy up but never makes it trade on an old price."""
        t0 = time.perf_counter()
        # The paper venue lives in this process and is restored from the store, so one
        # transaction per bar (one fsync) is both faster and stricter: after a crash a bar is
        # either wholly on disk or replayed whole. A remote venue (live) must not be batched
        # around: an order's intent has to be durable before it is sent.
        with self.store.batch() if self.live is None else contextlib.nullcontext():
            if self.paused or history:
                self._skip_bar(bar)
            else:
                self.engine.on_bar(bar)
            self.last_bar, self.last_bar_wall = bar, time.monotonic()
            self.recent_bars.append(bar)
            self.bars_seen += 1
            self._day_check(bar)
        took = time.perf_counter() - t0
        self.bar_seconds.append(took)
        self.metrics.bar_latency.observe(took)
        self.changed()

    def changed(self) -> None:
        """Wake whoever waits for news (the dashboard's event streams)."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    @property
    def stopping(self) -> bool:
        return self._stopping or self._stop.is_set()

    async def wait_stop(self, timeout: float) -> None:
        """Sleep ``timeout`` seconds, or less if the bot starts to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout)

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

    def _skip_bar(self, bar: Bar) -> None:
        self.engine.warm_up(bar)  # the market moves on (resting orders may fill); no strategy

    def _day_check(self, bar: Bar) -> None:
        day = datetime.fromtimestamp(bar.ts / 1000, self.tz).date().isoformat()
        equity = self.equity()
        if self.day is None or self.day.day != day:
            if self.day is not None and self.day.halted:
                self.engine.set_trading_state(TradingState.ACTIVE, f"new trading day {day}")
            self.day = DayBook(day, equity)
        self.equity_points.append((bar.ts, float(equity)))
        limit = self.day.start_equity * self.settings.daily_loss_limit
        if not self.day.halted and equity - self.day.start_equity <= -limit:
            self.day.halted = True
            reason = f"daily loss limit: {equity - self.day.start_equity} <= -{limit}"
            self.engine.set_trading_state(TradingState.HALTED, reason)
            self.engine.execute([CancelAll()])
            self.notifier.send("P1", "Daily loss limit", reason)
        self.store.bar_done(bar, day, self.day.start_equity, equity, self.day.halted)

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
        self.engine.set_trading_state(TradingState.HALTED, f"kill switch: {reason}")
        self.engine.execute([CancelAll()])
        if self.settings.flatten_on_kill:
            self._flatten()
        self.engine.set_trading_state(TradingState.HALTED, f"kill switch: {reason}")
        pf = self.engine.portfolio
        self.store.write_books(pf.ledger, pf.position, int(time.time() * 1000))
        self.store.audit("kill", {"reason": reason})
        self.metrics.kill_engaged.set(1)
        self.notifier.send("P0", "Kill switch engaged", reason)
        self.exit_code = EXIT_KILLED
        self.request_stop("kill switch")

    def _flatten(self) -> None:
        """Sell the whole position now. Only exposure-reducing orders pass (REDUCING); the
        paper venue fills it at the last close less slippage instead of waiting a bar."""
        inst = self.instrument
        qty = self.engine.portfolio.ledger.free(inst.base)
        if qty < inst.min_qty or self.last_bar is None:
            return
        self.engine.set_trading_state(TradingState.REDUCING, "kill switch: flattening")
        self.engine.execute(
            [
                SubmitOrder(
                    Side.SELL, OrderType.MARKET, inst.qty(qty), reduce_only=True, tag="kill-flatten"
                )
            ]
        )
        if isinstance(self.venue, SimulatedExchange):
            self.venue.match_market_now(self.last_bar.close)
            self.engine.on_venue_event_drain()
        left = self.engine.portfolio.position.qty
        log.warning("flatten on kill: position now %s %s", left, inst.base)

    def request_stop(self, reason: str) -> None:
        if not self.stop_reason:
            self.stop_reason = reason
        self._stop.set()
        self.changed()

    # ---------------------------------------------------------------- running
    async def _market(self) -> None:
        last = self.store.restore(self.settings.symbol).kv.get("last_bar_ts")
        after = int(last) if last else None
        feed = feed_for(self.settings)
        rest = getattr(feed, "rest", feed)
        if isinstance(rest, CcxtFeed) and self.live is not None:
            rest.gate = self.live.ban_left  # one IP, one ban: market data waits it out too
        self.market_feed = feed
        try:
            async for bar in feed.bars(after):
                if self._stop.is_set():
                    break
                self.on_bar(bar, feed.is_history(bar))
        finally:
            close = getattr(feed, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
        log.info("market feed ended")

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
        self.build()
        if self.live_session is not None and self.live is not None:
            try:
                await self.live_session.reconcile_start()
            except BaseException:
                await self.live.close()
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
            asyncio.create_task(self._market(), name="market"),
            asyncio.create_task(self.metrics.loop_lag(), name="loop-lag"),
        ]
        if self.live_session is not None and self.live is not None:
            tasks.append(asyncio.create_task(self.live.run(), name="venue-sync"))
            if s.reconcile_seconds > 0:
                watch = self.live_session.watch(s.reconcile_seconds)
                tasks.append(asyncio.create_task(watch, name="reconcile"))
        wd = sdnotify.watchdog_interval()
        if wd:
            tasks.append(asyncio.create_task(self._watchdog(wd), name="watchdog"))
        for t in tasks:
            t.add_done_callback(self._task_ended)
        self.notifier.start()
        alerts = ErrorAlerts(self.notifier)
        logging.getLogger("solbot").addHandler(alerts)
        mode = f"LIVE ({s.exchange})" if self.live is not None else "paper"
        sdnotify.notify(f"READY=1\nSTATUS=trading {s.symbol} ({s.market.value})")
        log.info(
            "solbot %s up: %s %s %s on %s, API http://%s:%d",
            __version__,
            s.symbol,
            s.timeframe,
            mode,
            s.market.value,
            s.host,
            s.port,
        )
        self.notifier.send("P3", "Bot started", f"{s.symbol} {mode} on {s.market.value}")
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
        try:
            text = self.settings.kill_flag.read_text().strip()
        except OSError:
            text = ""
        return text or "kill-switch.flag created"

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
            self.engine.execute([CancelAll()])
        if self.live_session is not None:
            await self.live_session.stop()
        pf = self.engine.portfolio
        self.store.write_books(pf.ledger, pf.position, int(time.time() * 1000))
        self.store.audit("stop", {"reason": self.stop_reason, "exit_code": self.exit_code})
        if self.kill_reason is None:
            self.notifier.send("P2", "Bot stopped", self.stop_reason)
        log.debug("shutdown: books persisted")
        await self.notifier.drain(timeout=2.0)
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
