"""The running bot as its outside sees it: frozen snapshots and a handful of commands.

``BotView`` is all the HTTP API (routes, dashboard, metric collectors) knows of the bot, and
the transport-neutral command layer any other control (chat, a phone) would use: it reads
snapshots, it never reaches into the account, its sleeves or their engines. The snapshots
are plain frozen values; the account's is computed once per change of the bot (a bar, an
order event, a change of trading state, a pause), however many clients read it.
``runtime.reader.Reader`` is the implementation.

This module imports the domain and the standard library only (and pydantic's ``SecretStr``
for type checking: the token stays wrapped).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from solbot.domain.messages import Bar
from solbot.domain.values import TradingState

if TYPE_CHECKING:
    from pydantic import SecretStr


@dataclass(frozen=True, slots=True)
class SleeveStatus:
    symbol: str
    weight: Decimal  # share of the initial capital
    trading_state: TradingState
    trading_state_reason: str
    last_bar_ts: int | None  # open time of the last bar processed (ms)
    bars_processed: int


@dataclass(frozen=True, slots=True)
class ExchangeHealth:
    """A live session's view of the exchange."""

    clock_offset_ms: float
    clock_problem: str | None
    weight_used: float
    weight_budget: float
    blocked_seconds: float
    not_resent: int
    stream_trades: int


@dataclass(frozen=True, slots=True)
class StreamStats:
    """The first symbol's websocket market stream, when it has one."""

    bars: int
    fallbacks: int


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    healthy: bool
    problems: tuple[str, ...]
    mode: str  # paper, live, or live (testnet)
    testnet: bool
    market: str
    symbol: str  # the first traded symbol
    timeframe: str
    version: str
    uptime_seconds: float
    started_at: datetime
    last_bar_ts: int | None  # the first symbol's
    oldest_bar_ts: int | None  # the oldest last bar of any symbol (None: none has data)
    market_data_age: float  # wall seconds since the stalest symbol's last bar; -1: not all
    stale_after_seconds: float
    bars_processed: int
    trading_state: TradingState  # the most restrictive of any symbol
    trading_state_reason: str
    paused: bool
    kill_engaged: bool
    kill_flag: str
    kill_reason: str | None
    token_configured: bool
    symbols: tuple[SleeveStatus, ...]
    bars_since_order: int  # live bars while trading since the last order (the quiet alarm)
    quiet_after_bars: int  # the quiet alarm's threshold; 0: off
    exchange: ExchangeHealth | None  # live only
    stream: StreamStats | None


@dataclass(frozen=True, slots=True)
class PositionView:
    symbol: str
    qty: Decimal
    avg_price: Decimal
    unrealised_pnl: Decimal
    realised_pnl: Decimal
    fees: Decimal

    @property
    def is_flat(self) -> bool:
        return self.qty == 0


@dataclass(frozen=True, slots=True)
class OrderView:
    order_id: str
    side: str
    type: str
    quantity: Decimal
    price: Decimal | None
    status: str


@dataclass(frozen=True, slots=True)
class SleeveBooks:
    symbol: str
    base: str
    quote: str
    weight: Decimal
    mark: Decimal
    equity: Decimal
    total_pnl: Decimal
    balances: Mapping[str, tuple[Decimal, Decimal]]  # asset -> (free, locked)
    position: PositionView
    open_orders: tuple[OrderView, ...]


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    asset: str  # the common quote currency
    balances: Mapping[str, tuple[Decimal, Decimal]]  # summed over the sleeves
    equity: Decimal
    daily_pnl: Decimal
    total_pnl: Decimal
    fees: Decimal
    exposure: Decimal  # value of all positions (quote)
    exposure_cap: Decimal  # fraction of equity
    day_start_equity: Decimal
    daily_loss_limit: Decimal  # fraction of day-start equity
    sleeves: tuple[SleeveBooks, ...]
    equity_points: tuple[tuple[int, float], ...]  # (bar ts, equity), oldest first

    def quote_balance(self) -> Decimal:
        free, locked = self.balances.get(self.asset, (Decimal(0), Decimal(0)))
        return free + locked

    def positions(self) -> list[PositionView]:
        return [b.position for b in self.sleeves if not b.position.is_flat]

    def open_orders(self) -> int:
        return sum(len(b.open_orders) for b in self.sleeves)

    def books(self, symbol: str) -> SleeveBooks:
        return next(b for b in self.sleeves if b.symbol == symbol)


@dataclass(frozen=True, slots=True)
class StrategySnapshot:
    symbol: str
    name: str
    spec: str
    source_sha256: str | None
    params: Mapping[str, int | float | str | bool]
    trading_state: TradingState
    paused: bool
    position: Decimal
    open_orders: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    symbol: str
    timeframe: str
    bars: tuple[Bar, ...]  # recent closed bars, oldest first


@dataclass(frozen=True, slots=True)
class DaySnapshot:
    day: str  # YYYY-MM-DD in the account's time zone
    start_equity: Decimal
    last_equity: Decimal
    halted: bool  # the daily loss limit halted trading that day

    @property
    def pnl(self) -> Decimal:
        return self.last_equity - self.start_equity


@dataclass(frozen=True, slots=True)
class Perf:
    bar_seconds: tuple[float, ...]  # recent bars' processing times, oldest first
    loop_lag_seconds: float


class BotView(Protocol):
    """What the API may read and ask of the bot."""

    @property
    def changes(self) -> int:
        """How many changes so far (a cursor: equal counts, equal snapshots)."""

    @property
    def stopping(self) -> bool: ...

    @property
    def api_token(self) -> SecretStr | None:
        """The control token (compared in constant time by the API), or None: no control."""

    def allowed_hosts(self) -> frozenset[str] | None: ...

    def unauthenticated_rate(self) -> float:
        """Requests a second the API answers without the token (0: no pacing)."""

    def symbol(self, name: str) -> str | None:
        """``name`` (``SOL/USDT``, ``SOLUSDT``, ``sol-usdt``) as traded, or None."""

    def status(self) -> StatusSnapshot: ...

    def account(self) -> AccountSnapshot: ...

    def strategy(self, symbol: str) -> StrategySnapshot: ...

    def market(self, symbol: str) -> MarketSnapshot: ...

    def analysis(self, symbol: str) -> dict[str, Any]: ...

    def orders(self, limit: int, open_only: bool, symbol: str | None) -> list[dict[str, Any]]:
        """Order rows from the store, newest first, as JSON-ready values."""

    def fills(self, limit: int, symbol: str | None) -> list[dict[str, Any]]: ...

    def daily(self, days: int) -> list[DaySnapshot]:
        """The last ``days`` trading days, newest first."""

    def dashboard(self, since: int, symbol: str) -> dict[str, Any]:
        """Everything the dashboard page shows (series only past ``since``, ms)."""

    def perf(self) -> Perf: ...

    def backup_last_success(self) -> float | None:
        """Epoch seconds of this home's last successful backup (a file read: for scrapes)."""

    def metrics_text(self) -> bytes:
        """The Prometheus text exposition."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def kill(self, reason: str) -> str:
        """Engage the kill switch (its flag too, so a restart refuses); the reason used."""

    def flatten(self, reason: str) -> list[str]:
        """Pause, cancel every resting order, sell every position at market (the symbols
        sold); trading stays paused until resumed."""

    def record(self, kind: str, detail: Mapping[str, Any]) -> None:
        """An entry in the audit log (a command and who gave it)."""

    async def wait_change(self, timeout: float) -> None:
        """Until the next change, the stop, or ``timeout`` seconds."""

    async def wait_stop(self, timeout: float) -> None:
        """Sleep ``timeout`` seconds, or less if the bot starts to stop."""
