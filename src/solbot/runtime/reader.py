"""``Reader``: the ``runtime.view.BotView`` of a running bot — its snapshots, computed from
the account, its session and the shell, and its commands, passed on to them.

The account's snapshot is computed once per change of the account (``Account.changed``:
a bar, an order event, a change of trading state, a pause or a kill) and shared by every
client until the next; the status is computed per request, as uptime and data age move
with the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from pydantic import SecretStr

from solbot import __version__
from solbot.data.bars import BarArrays, timeframe_ms
from solbot.domain.messages import Bar
from solbot.indicators.analysis import analysis
from solbot.infra.backupmark import last_success
from solbot.infra.killswitch import single_line
from solbot.infra.metrics import Metrics
from solbot.persistence.store import row_dict
from solbot.runtime.account import Account
from solbot.runtime.config import MarketSource, Settings
from solbot.runtime.dashboard import dashboard
from solbot.runtime.session import Session
from solbot.runtime.sleeve import Sleeve
from solbot.runtime.view import (
    AccountSnapshot,
    DaySnapshot,
    MarketSnapshot,
    OrderView,
    Perf,
    PositionView,
    SleeveBooks,
    SleeveStatus,
    StatusSnapshot,
    StrategySnapshot,
    StreamStats,
)
from solbot.strategies import source_sha256


class Shell(Protocol):
    """What the view needs of the process around the account (``runtime.service``)."""

    started_at: datetime
    stop_event: asyncio.Event

    @property
    def uptime(self) -> float: ...

    @property
    def stopping(self) -> bool: ...

    def kill(self, reason: str) -> None: ...


class Reader:
    def __init__(
        self, settings: Settings, account: Account, session: Session, shell: Shell, metrics: Metrics
    ) -> None:
        self.settings = settings
        self._acct = account
        self.session = session
        self.shell = shell
        self.metrics = metrics
        self._changed = asyncio.Event()  # replaced on every change: waiting clients wake
        self._account: tuple[int, AccountSnapshot] | None = None
        self._regimes: dict[tuple[str, int, int], list[str]] = {}
        account.on_change.append(self._wake)

    def _wake(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    # ---------------------------------------------------------------- BotView
    @property
    def changes(self) -> int:
        return self._acct.changes

    @property
    def stopping(self) -> bool:
        return self.shell.stopping

    @property
    def api_token(self) -> SecretStr | None:
        return self.settings.api_token

    def allowed_hosts(self) -> frozenset[str] | None:
        return self.settings.allowed_hosts()

    def unauthenticated_rate(self) -> float:
        return self.settings.api_unauthenticated_rate

    def symbol(self, name: str) -> str | None:
        sl = self._acct.sleeve(name)
        return None if sl is None else sl.symbol

    def _sleeve(self, symbol: str) -> Sleeve:
        sl = self._acct.sleeve(symbol)
        if sl is None:
            raise KeyError(symbol)
        return sl

    def stale_after_seconds(self) -> float:
        """Paced markets: ``stale_after_bars`` bar intervals (at least 5 s). Exchange data: a
        closed bar is due once per timeframe, so stale means more than half a bar late."""
        s = self.settings
        if s.market is MarketSource.EXCHANGE:
            return timeframe_ms(s.timeframe) / 1000 * 1.5 + 30.0
        return max(5.0, s.stale_after_bars / s.speed)

    def _problems(self, kill_engaged: bool) -> list[str]:
        acct, problems = self._acct, []
        if kill_engaged:
            problems.append("kill switch engaged")
        for sl in acct.sleeves:
            which = f" for {sl.symbol}" if len(acct.sleeves) > 1 else ""
            if sl.last_bar_wall is None:
                if self.shell.uptime > 30:
                    problems.append(f"no market data yet{which}")
            else:
                age = time.monotonic() - sl.last_bar_wall
                if age > self.stale_after_seconds():
                    problems.append(f"market data stale{which} ({age:.0f} s)")
        problems.extend(self.session.problems())
        if self.shell.stopping:
            problems.append("stopping")
        return problems

    def status(self) -> StatusSnapshot:
        s, acct = self.settings, self._acct
        kill_engaged = acct.kill_reason is not None or s.kill_switch.engaged
        problems = self._problems(kill_engaged)
        state, reason = acct.trading_state()
        first = acct.primary
        seen = [sl.last_bar.ts for sl in acct.sleeves if sl.last_bar is not None]
        walls = [sl.last_bar_wall for sl in acct.sleeves]
        now = time.monotonic()
        age = -1.0 if None in walls else max(now - w for w in walls if w is not None)
        feed = first.market_feed
        stream = None
        if feed is not None and hasattr(feed, "from_stream"):
            stream = StreamStats(int(feed.from_stream), int(getattr(feed, "fallbacks", 0)))
        return StatusSnapshot(
            healthy=not problems,
            problems=tuple(problems),
            mode=self.session.mode,
            testnet=s.exchange_sandbox,
            market=s.market.value,
            symbol=first.symbol,
            timeframe=s.timeframe,
            version=__version__,
            uptime_seconds=self.shell.uptime,
            started_at=self.shell.started_at,
            last_bar_ts=first.last_bar.ts if first.last_bar else None,
            oldest_bar_ts=min(seen) if seen else None,
            market_data_age=age,
            stale_after_seconds=self.stale_after_seconds(),
            bars_processed=sum(sl.bars_seen for sl in acct.sleeves),
            trading_state=state,
            trading_state_reason=reason,
            paused=acct.paused,
            kill_engaged=kill_engaged,
            kill_flag=str(s.kill_switch),
            kill_reason=acct.kill_reason,
            token_configured=s.api_token is not None,
            symbols=tuple(
                SleeveStatus(
                    symbol=sl.symbol,
                    weight=acct.weight(sl.symbol),
                    trading_state=sl.engine.risk.state,
                    trading_state_reason=sl.engine.risk.reason,
                    last_bar_ts=sl.last_bar.ts if sl.last_bar else None,
                    bars_processed=sl.bars_seen,
                )
                for sl in acct.sleeves
            ),
            bars_since_order=acct.quiet.since_order,
            quiet_after_bars=acct.quiet.after_bars,
            exchange=self.session.exchange_health(),
            stream=stream,
        )

    def account(self) -> AccountSnapshot:
        acct = self._acct
        cached = self._account
        if cached is not None and cached[0] == acct.changes:
            return cached[1]
        snap = self._account_now()
        self._account = (acct.changes, snap)
        return snap

    def _account_now(self) -> AccountSnapshot:
        acct, s = self._acct, self.settings
        equity, daily, total = acct.pnl_snapshot()
        summed: dict[str, tuple[Decimal, Decimal]] = {}
        books: list[SleeveBooks] = []
        fees = Decimal(0)
        for sl in acct.sleeves:
            pf, mark, money, inst = (
                sl.engine.portfolio,
                sl.mark(),
                sl.instrument.money,
                sl.instrument,
            )
            pos = pf.position
            snap = pf.ledger.snapshot()
            for a, (f, lk) in snap.items():
                had = summed.get(a, (Decimal(0), Decimal(0)))
                summed[a] = (had[0] + f, had[1] + lk)
            fees += pos.fees
            sl_equity = sl.equity()
            books.append(
                SleeveBooks(
                    symbol=sl.symbol,
                    base=inst.base,
                    quote=inst.quote,
                    weight=acct.weight(sl.symbol),
                    mark=mark,
                    equity=sl_equity,
                    total_pnl=money(sl_equity - pf.initial_quote),
                    balances=dict(snap),
                    position=PositionView(
                        symbol=pos.symbol,
                        qty=pos.qty,
                        avg_price=money(pos.avg_price),
                        unrealised_pnl=money(pos.unrealised_pnl(mark)),
                        realised_pnl=money(pos.realised_pnl),
                        fees=pos.fees,
                    ),
                    open_orders=tuple(
                        OrderView(
                            o.order_id,
                            o.side.value,
                            o.type.value,
                            o.quantity,
                            o.price,
                            o.status.value,
                        )
                        for o in pf.open_orders()
                    ),
                )
            )
        start = acct.day.start_equity if acct.day is not None else equity
        return AccountSnapshot(
            asset=acct.primary.instrument.quote,
            balances=summed,
            equity=equity,
            daily_pnl=daily,
            total_pnl=total,
            fees=fees,
            exposure=acct.exposure(),
            exposure_cap=s.exposure_cap,
            day_start_equity=start,
            daily_loss_limit=s.daily_loss_limit,
            sleeves=tuple(books),
            equity_points=tuple(acct.equity_points),
        )

    def strategy(self, symbol: str) -> StrategySnapshot:
        sl = self._sleeve(symbol)
        st = sl.engine.strategy
        params = {
            k: v
            for k, v in vars(st).items()
            if not k.startswith("_") and isinstance(v, int | float | str | bool)
        }
        return StrategySnapshot(
            symbol=sl.symbol,
            name=st.name,
            spec=self.settings.strategy,
            source_sha256=source_sha256(self.settings.strategy),  # a strategy file's
            params=params,
            trading_state=sl.engine.risk.state,
            paused=self._acct.paused,
            position=sl.engine.portfolio.position.qty,
            open_orders=tuple(o.order_id for o in sl.engine.portfolio.open_orders()),
        )

    def market(self, symbol: str) -> MarketSnapshot:
        sl = self._sleeve(symbol)
        return MarketSnapshot(sl.symbol, self.settings.timeframe, tuple(sl.recent_bars))

    def analysis(self, symbol: str) -> dict[str, Any]:
        sl = self._sleeve(symbol)
        return {"symbol": sl.symbol, **analysis(sl.recent_bars, sl.symbol, self.settings.timeframe)}

    def orders(self, limit: int, open_only: bool, symbol: str | None) -> list[dict[str, Any]]:
        rows = self._acct.store.orders(limit=limit, open_only=open_only, symbol=symbol)
        return [row_dict(r) for r in rows]

    def fills(self, limit: int, symbol: str | None) -> list[dict[str, Any]]:
        return [row_dict(r) for r in self._acct.store.fills(limit=limit, symbol=symbol)]

    def daily(self, days: int) -> list[DaySnapshot]:
        return [
            DaySnapshot(r.day, r.start_equity, r.last_equity, bool(r.halted))
            for r in self._acct.store.daily(days)
        ]

    def perf(self) -> Perf:
        return Perf(tuple(self._acct.bar_seconds), self.metrics.loop_lag_seconds())

    def backup_last_success(self) -> float | None:
        return last_success(self.settings.data_dir)

    def metrics_text(self) -> bytes:
        return self.metrics.render()

    def pause(self) -> None:
        self._acct.pause()

    def resume(self) -> None:
        self._acct.resume()

    def kill(self, reason: str) -> str:
        reason = single_line(reason) or "kill requested through the API"
        self.settings.kill_switch.engage(reason)  # a restart must refuse, as with the flag
        self.shell.kill(reason)
        return reason

    def flatten(self, reason: str) -> list[str]:
        return self._acct.flatten(single_line(reason) or "flatten requested")

    def record(self, kind: str, detail: Mapping[str, Any]) -> None:
        self._acct.store.audit(kind, dict(detail))

    async def wait_change(self, timeout: float) -> None:
        waits = [
            asyncio.ensure_future(self._changed.wait()),
            asyncio.ensure_future(self.shell.stop_event.wait()),
        ]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def wait_stop(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):  # not wait_for: it can swallow a cancel
            async with asyncio.timeout(timeout):
                await self.shell.stop_event.wait()

    # ---------------------------------------------------------------- the dashboard
    def regimes(self, sl: Sleeve, bars: list[Bar]) -> list[str]:
        """The regime of each bar; computed once per new bar, however many pages watch."""
        if len(bars) < 2:
            return ["MIXED"] * len(bars)
        key = (sl.symbol, bars[0].ts, bars[-1].ts)
        hit = self._regimes.get(key)
        if hit is not None and len(hit) == len(bars):
            return hit
        from solbot.indicators.regime import Regime, classify_arrays

        a = BarArrays.from_rows(bars, sl.symbol, self.settings.timeframe)
        names = [Regime(int(r)).name for r in classify_arrays(a)]
        if len(self._regimes) >= 16:  # the latest bars of each symbol a page is watching
            self._regimes.clear()
        self._regimes[key] = names
        return names

    def dashboard(self, since: int, symbol: str) -> dict[str, Any]:
        return dashboard(self, self._sleeve(symbol), since)
