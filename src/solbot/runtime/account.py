"""The account: the sleeves of the traded symbols, their weights, the trading day's book and
the equity curve, and the rules that hold over the whole account — the daily loss limit on
the sum, the exposure cap over every position, halts and the kill switch.

No asyncio here: the shell (``runtime.service``) runs the tasks, a session
(``runtime.session``) supplies the venues, and the account is handed its store, where alerts
go and where measurements go. One ``halt`` serves the daily loss limit, the kill switch and
reconciliation.

A bar of any symbol: ``on_bar`` -> the sleeve's engine (inside the session's transaction) ->
the daily loss check on the whole account -> the bar's checkpoint -> ``changed``.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from solbot import __version__, failpoints
from solbot.domain.messages import Bar, CancelAll, SubmitOrder
from solbot.domain.values import ZERO, OrderType, Side, TradingState
from solbot.engine.risk import ExposureCap
from solbot.persistence.check import check_database, mark_account
from solbot.persistence.store import Restored, Store
from solbot.runtime import layout
from solbot.runtime.config import Settings
from solbot.runtime.ports import Alerts, MetricsSink
from solbot.runtime.quiet import QuietWatch, threshold_from_result
from solbot.runtime.session import Session
from solbot.runtime.sleeve import Sleeve
from solbot.strategies import source_sha256

log = logging.getLogger(__name__)

STATE_ORDER = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


@dataclass(slots=True)
class DayBook:
    day: str
    start_equity: Decimal
    halted: bool = False


class Account:
    def __init__(
        self, settings: Settings, store: Store, alerts: Alerts, metrics: MetricsSink
    ) -> None:
        self.settings = settings
        self.store = store
        self.alerts = alerts
        self.metrics = metrics
        self.tz = ZoneInfo(settings.timezone)
        self.sleeves = [
            Sleeve(settings, store, alerts, metrics, sym, i, self.changed)
            for i, sym in enumerate(settings.trading_symbols)
        ]
        self.primary = self.sleeves[0]
        self.session: Session | None = None
        self.weights: dict[str, Decimal] = {}
        self.cap: ExposureCap | None = None
        self.day: DayBook | None = None
        self.paused = False
        self.kill_reason: str | None = None
        self.bar_seconds: deque[float] = deque(maxlen=5000)  # recent bar processing times
        self.equity_points: deque[tuple[int, float]] = deque(maxlen=2000)  # (bar ts, equity)
        self.changes = 0  # how many changes so far
        self.on_change: list[Callable[[], None]] = []  # told after each change
        self.quiet = QuietWatch(0)  # the quiet-bot alarm; its threshold is set in build

    def sleeve(self, symbol: str) -> Sleeve | None:
        """The sleeve of ``symbol`` (``SOL/USDT``, ``SOLUSDT``, ``sol-usdt``), or None."""
        wanted = symbol.replace("-", "/").replace("_", "/").upper()
        for sl in self.sleeves:
            if wanted in (sl.symbol.upper(), sl.symbol.replace("/", "").upper()):
                return sl
        return None

    # ---------------------------------------------------------------- building
    def build(self, session: Session, started_at: datetime | None = None) -> None:
        """Open the books (damaged or unexpectedly empty: not written to) and every market's
        data (a bad replay file fails the start), restore each sleeve over ``session``."""
        s = self.settings
        self.session = session
        check_database(s.db_url, s.data_dir)
        self.store.migrate()
        mark_account(s.db_url, s.data_dir)
        layout.refuse_orphans(self.store, {sl.symbol for sl in self.sleeves})
        layout.open_feeds(self.sleeves)
        restored = {sl.symbol: self.store.restore(sl.symbol) for sl in self.sleeves}
        fresh = [sl for sl in self.sleeves if restored[sl.symbol].empty]
        resumed = len(fresh) < len(self.sleeves)
        kept = restored[self.primary.symbol].kv.get("allocation")
        weights = self.weights = layout.allocation(s, self.store, self.sleeves, kept, bool(fresh))
        capital = session.capital(self.primary.instrument.quote)
        for sl in self.sleeves:
            books = restored[sl.symbol]
            if books.empty:
                cash = (capital * weights[sl.symbol]).quantize(Decimal("0.00000001"))
                balances = session.new_balances(sl, cash, resumed)
            else:  # totals; a paper venue restarts with us (its open orders died with it)
                balances = {a: free + locked for a, (free, locked) in books.balances.items()}
            sl.build(books, balances, session.venue(sl, balances))
            session.restore_orders(books, sl)
            sl.start(books)
        if len(self.sleeves) > 1:
            self.cap = ExposureCap(
                s.exposure_cap, lambda: ((x.engine.portfolio, x.mark()) for x in self.sleeves)
            )
            for sl in self.sleeves:
                sl.engine.risk.extra_checks.append(self.cap)
        self.quiet = QuietWatch(self._quiet_after())
        first = restored[self.primary.symbol]
        if not first.kv.get("started_at"):
            self.store.put(started_at=(started_at or datetime.now(UTC)).isoformat())
        self._restore_day(first)
        self.equity_points.extend((ts, float(eq)) for ts, eq in self.store.equity_points())
        self.store.audit(
            "start",
            {
                "version": __version__,
                "market": s.market.value,
                "symbols": [sl.symbol for sl in self.sleeves],
                "resumed": resumed,
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
        money = self.primary.instrument.money
        return equity, money(equity - start), money(equity - self.initial_quote())

    def daily_pnl(self) -> Decimal:
        return self.pnl_snapshot()[1]

    def trading_state(self) -> tuple[TradingState, str]:
        """The most restrictive state of any sleeve (HALTED > REDUCING > ACTIVE)."""
        worst = max(self.sleeves, key=lambda sl: STATE_ORDER[sl.engine.risk.state])
        risk = worst.engine.risk
        reason = risk.reason
        alike = all(sl.engine.risk.reason == reason for sl in self.sleeves)
        if not alike and risk.state is not TradingState.ACTIVE:  # one symbol's own trouble
            reason = f"{worst.symbol}: {reason}"
        return risk.state, reason

    # ---------------------------------------------------------------- changes
    def set_trading_state(self, state: TradingState, reason: str) -> None:
        for sl in self.sleeves:
            sl.engine.set_trading_state(state, reason)

    def halt(self, reason: str, cancel: bool = True, keep_protection: bool = False) -> None:
        """HALTED on every symbol; with ``cancel``, every resting order cancelled (but the
        stops protecting a position with ``keep_protection``)."""
        self.set_trading_state(TradingState.HALTED, reason)
        if cancel:
            for sl in self.sleeves:
                sl.engine.execute([CancelAll(keep_protection=keep_protection)])

    def on_bar(self, bar: Bar, history: bool = False, symbol: str | None = None) -> None:
        """One closed bar of ``symbol`` (default: the first). ``history``: a bar the market has
        already moved past (start-up backfill, catching up after a stall) warms the strategy
        up but never makes it trade on an old price."""
        sl = self.primary if symbol is None else self.sleeve(symbol)
        if sl is None:
            raise KeyError(f"not traded: {symbol}")
        self.sleeve_bar(sl, bar, history)

    def sleeve_bar(self, sl: Sleeve, bar: Bar, history: bool) -> None:
        assert self.session is not None, "build() first"
        t0 = time.perf_counter()
        with self.session.bar_transaction(self.store):
            sl.step(bar, self.paused or history)
            self._day_check(sl, bar)
            if sl is self.primary:  # one count per bar time, whichever symbols trade
                self._quiet_check(history)
        took = time.perf_counter() - t0
        self.bar_seconds.append(took)
        self.metrics.bar_done(took)
        self.changed()

    def _quiet_after(self) -> int:
        s = self.settings
        if s.quiet_bars is not None:
            return s.quiet_bars
        path = s.quiet_result or s.home / "current" / "tested" / "result.json"  # deploy's
        if not path.exists():
            log.info("quiet-bot alarm off: no SOLBOT_QUIET_BARS, no tested result (%s)", path)
            return 0
        n, why = threshold_from_result(
            path, s.strategy, s.strategy_params, s.timeframe, source_sha256(s.strategy)
        )
        log.info("quiet-bot alarm: %s", f"after {n} bars ({why})" if n else f"off ({why})")
        return n

    def _quiet_check(self, history: bool) -> None:
        if history:
            return
        orders = sum(len(x.engine.portfolio.orders) for x in self.sleeves)
        state, _ = self.trading_state()
        if self.quiet.bar(orders, state is TradingState.ACTIVE and not self.paused):
            text = (
                f"trading and fed, but no order for {self.quiet.since_order} bars "
                f"(the alarm's threshold: {self.quiet.after_bars})"
            )
            log.warning("quiet bot: %s", text)
            self.alerts.send("P2", "Bot quiet", text)

    def changed(self) -> None:
        """Tell whoever watches (the view's waiting clients)."""
        self.changes += 1
        for listener in self.on_change:
            listener()

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
            self.halt(reason, keep_protection=True)  # the stops protecting a position rest on
            self.alerts.send("P1", "Daily loss limit", reason)
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

    def flatten(self, reason: str) -> list[str]:
        """Pause, cancel every resting order and sell every position at market; trading
        stays paused until resumed. The symbols sold. (A kill with ``flatten_on_kill`` does
        the same and stops; this keeps the bot running.) The sells are protective: they go
        out in a halt too, and wait for the cancels before them (their base is locked)."""
        self.paused = True
        sold = []
        for sl in self.sleeves:
            inst, engine = sl.instrument, sl.engine
            engine.execute([CancelAll()])
            qty = inst.qty(
                min(engine.portfolio.position.qty, engine.portfolio.ledger.total(inst.base))
            )
            if qty < inst.min_qty or sl.last_bar is None:
                continue
            sell = SubmitOrder(
                Side.SELL, OrderType.MARKET, qty, reduce_only=True, tag="flatten", protective=True
            )
            engine.execute([sell])
            if self.session is not None:
                self.session.fill_now(sl)
            sold.append(sl.symbol)
        log.warning("flatten (%s): sold %s", reason, ", ".join(sold) or "nothing")
        self.store.audit("flatten", {"reason": reason, "symbols": sold})
        self.changed()
        return sold

    def cancel_all(self) -> None:
        for sl in self.sleeves:
            sl.engine.execute([CancelAll()])

    def kill(self, reason: str, flatten: bool) -> bool:
        """HALTED -> cancel every resting order -> (``flatten``: sell every position) ->
        persist -> alert P0. False when the kill switch had already fired."""
        if self.kill_reason is not None:
            return False
        self.kill_reason = reason
        log.critical("KILL SWITCH: %s", reason)
        self.halt(f"kill switch: {reason}")
        if flatten:
            for sl in self.sleeves:
                if sl.flatten():
                    if self.session is not None:
                        self.session.fill_now(sl)
                    left = sl.engine.portfolio.position.qty
                    log.warning("flatten on kill: position now %s %s", left, sl.instrument.base)
        self.set_trading_state(TradingState.HALTED, f"kill switch: {reason}")
        self.write_books()
        self.store.audit("kill", {"reason": reason})
        self.metrics.killed()
        self.alerts.send("P0", "Kill switch engaged", reason)
        self.changed()
        return True

    def write_books(self) -> None:
        for sl in self.sleeves:
            sl.write_books()
