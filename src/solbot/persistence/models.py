"""Tables. Money and quantities are stored as exact decimal strings (SQLite has no exact
numeric type); timestamps are epoch milliseconds UTC plus an aware datetime in the audit log."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class DecimalText(TypeDecorator[Decimal]):
    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(Decimal(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class Base(DeclarativeBase):
    pass


class OrderRow(Base):
    __tablename__ = "orders"
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    type: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[Decimal] = mapped_column(DecimalText)
    quote_quantity: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    price: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    trigger_price: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    trailing_bps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    post_only: Mapped[bool] = mapped_column(Boolean, default=False)
    reduce_only: Mapped[bool] = mapped_column(Boolean, default=False)
    tag: Mapped[str] = mapped_column(String(64), default="")
    oco_group: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(24), index=True)
    filled_qty: Mapped[Decimal] = mapped_column(DecimalText)
    fees: Mapped[Decimal] = mapped_column(DecimalText)
    venue_order_id: Mapped[str] = mapped_column(String(64), default="")
    client_order_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_ts: Mapped[int] = mapped_column(BigInteger)
    updated_ts: Mapped[int] = mapped_column(BigInteger)


class FillRow(Base):
    __tablename__ = "fills"
    trade_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[Decimal] = mapped_column(DecimalText)
    price: Mapped[Decimal] = mapped_column(DecimalText)
    fee: Mapped[Decimal] = mapped_column(DecimalText)
    fee_asset: Mapped[str] = mapped_column(String(16))
    liquidity: Mapped[str] = mapped_column(String(8))
    realised_pnl: Mapped[Decimal] = mapped_column(DecimalText)
    ts: Mapped[int] = mapped_column(BigInteger, index=True)


class BalanceRow(Base):
    """One asset of one sleeve (the symbol whose slice of the capital it is)."""

    __tablename__ = "balances"
    sleeve: Mapped[str] = mapped_column(String(32), primary_key=True)
    asset: Mapped[str] = mapped_column(String(16), primary_key=True)
    free: Mapped[Decimal] = mapped_column(DecimalText)
    locked: Mapped[Decimal] = mapped_column(DecimalText)
    updated_ts: Mapped[int] = mapped_column(BigInteger)


class PositionRow(Base):
    __tablename__ = "positions"
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    qty: Mapped[Decimal] = mapped_column(DecimalText)
    avg_price: Mapped[Decimal] = mapped_column(DecimalText)
    realised_pnl: Mapped[Decimal] = mapped_column(DecimalText)
    fees: Mapped[Decimal] = mapped_column(DecimalText)


class DailyPnlRow(Base):
    __tablename__ = "daily_pnl"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD in the tz
    start_equity: Mapped[Decimal] = mapped_column(DecimalText)
    last_equity: Mapped[Decimal] = mapped_column(DecimalText)
    halted: Mapped[bool] = mapped_column(Boolean, default=False)


class EquityRow(Base):
    """The account's equity after a bar (the newest ~2,000 are kept)."""

    __tablename__ = "equity_points"
    ts: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    equity: Mapped[Decimal] = mapped_column(DecimalText)


class AuditRow(Base):
    """Append-only: the migration adds triggers that refuse UPDATE and DELETE (SQLite)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[Any] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    order_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(Text)


class KvRow(Base):
    """Checkpoints; a symbol's own are keyed ``<key>:<symbol>`` (``last_bar:SOL/USDT``)."""

    __tablename__ = "kv"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
