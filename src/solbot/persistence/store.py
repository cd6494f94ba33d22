"""The store: durable orders, fills, balances, positions, daily PnL, audit log and state.

Every write is its own transaction, committed before the call returns, so what the engine
was told is on disk before the next step (SQLite: WAL, synchronous=FULL) -- unless the caller
opens a ``batch()``: then everything written inside is one transaction, committed (one fsync)
when the batch ends or not at all. The paper service batches each bar: its venue lives in the
same process and is restored from these rows, so a bar is either wholly on disk or replayed
whole after a crash. A venue in another process must not be batched around: an order's intent
has to be durable before it is sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, delete, event, func, select
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from solbot.domain.ledger import Ledger
from solbot.domain.messages import Event, OrderAccepted, OrderDenied, OrderFilled
from solbot.domain.orders import Order, OrderStatus
from solbot.domain.positions import Position
from solbot.domain.values import ZERO, OrderId, OrderType, Side
from solbot.persistence.models import (
    AuditRow,
    BalanceRow,
    DailyPnlRow,
    EquityRow,
    FillRow,
    KvRow,
    OrderRow,
    PositionRow,
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
EQUITY_KEEP = 2000  # per-bar equity points kept for the dashboard
EQUITY_PRUNE_EVERY = 500  # bars between two prunes


@dataclass(slots=True)
class Restored:
    balances: dict[str, tuple[Decimal, Decimal]]
    position: PositionRow | None
    open_orders: list[OrderRow]
    kv: dict[str, str]
    days: dict[str, DailyPnlRow] = field(default_factory=dict)
    max_order_seq: int = 0

    @property
    def empty(self) -> bool:
        return not self.balances


def open_order(row: OrderRow, client_id: str) -> Order:
    """The order a previous run left open, as its row recorded it (not yet in any books:
    the session puts it back into the portfolio and its venue)."""
    return Order(
        order_id=OrderId(row.order_id),
        symbol=row.symbol,
        side=Side(row.side),
        type=OrderType(row.type),
        quantity=row.quantity,
        price=row.price,
        trigger_price=row.trigger_price,
        trailing_bps=row.trailing_bps,
        quote_quantity=row.quote_quantity,
        post_only=row.post_only,
        reduce_only=row.reduce_only,
        tag=row.tag,
        created_ts=row.created_ts,
        oco_group=row.oco_group,
        client_id=client_id,
    )


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def normalize_url(url: str) -> str:
    """``postgresql://…`` means psycopg 3 (``pip install solbot[postgres]``), the driver we
    test with; SQLAlchemy's default for that scheme would be psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(eng, "connect", _sqlite_pragmas)
        return eng
    return create_engine(url, pool_pre_ping=True)


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        self._batch: Session | None = None
        self._bars_since_prune = 0

    def migrate(self) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        self.engine.dispose()

    def session(self) -> Session:
        return self._session()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group every write inside into one transaction (see the module docstring)."""
        if self._batch is not None:  # nested: the outer batch commits
            yield
            return
        with self.session() as s, s.begin():
            self._batch = s
            try:
                yield
            finally:
                self._batch = None

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        if self._batch is not None:
            yield self._batch
            return
        with self.session() as s, s.begin():
            yield s

    # ---------------------------------------------------------------- writes
    def record(
        self,
        event: Event,
        order: Order,
        ledger: Ledger,
        position: Position,
        realised: Decimal = ZERO,
    ) -> None:
        """One engine event: the order row, any fill with balances and position, the audit."""
        ts = event.ts
        with self._tx() as s:
            s.merge(_order_row(order, ts))
            detail: dict[str, Any] = {"status": order.status.value}
            if isinstance(event, OrderFilled):
                f = event.fill
                s.add(
                    FillRow(
                        trade_id=f.trade_id,
                        order_id=f.order_id,
                        symbol=f.symbol,
                        side=f.side.value,
                        quantity=f.quantity,
                        price=f.price,
                        fee=f.fee,
                        fee_asset=f.fee_asset,
                        liquidity=f.liquidity.value,
                        realised_pnl=realised,
                        ts=f.ts,
                    )
                )
                detail.update(
                    trade_id=f.trade_id, qty=str(f.quantity), price=str(f.price), fee=str(f.fee)
                )
            if not isinstance(event, OrderAccepted | OrderDenied):
                self._write_books(s, ledger, position, ts)  # holds, releases and fills
            reason = getattr(event, "reason", "")
            if reason:
                detail["reason"] = reason
            s.add(
                AuditRow(
                    at=datetime.now(UTC),
                    kind=type(event).__name__,
                    order_id=order.order_id,
                    detail=json.dumps(detail),
                )
            )

    def write_books(self, ledger: Ledger, position: Position, ts: int) -> None:
        with self._tx() as s:
            self._write_books(s, ledger, position, ts)

    def _write_books(self, s: Session, ledger: Ledger, position: Position, ts: int) -> None:
        sleeve = position.symbol  # each symbol's ledger is its own slice of the capital
        for asset, (free, locked) in ledger.snapshot().items():
            s.merge(BalanceRow(sleeve=sleeve, asset=asset, free=free, locked=locked, updated_ts=ts))
        s.merge(
            PositionRow(
                symbol=position.symbol,
                qty=position.qty,
                avg_price=position.avg_price,
                realised_pnl=position.realised_pnl,
                fees=position.fees,
            )
        )

    def audit(self, kind: str, detail: dict[str, Any], order_id: str | None = None) -> None:
        with self._tx() as s:
            s.add(
                AuditRow(
                    at=datetime.now(UTC),
                    kind=kind,
                    order_id=order_id,
                    detail=json.dumps(detail, default=str),
                )
            )

    def put(self, sleeve: str | None = None, **values: str) -> None:
        """Checkpoints: the account's, or with ``sleeve`` one symbol's (``key:symbol``)."""
        suffix = f":{sleeve}" if sleeve else ""
        with self._tx() as s:
            for k, v in values.items():
                s.merge(KvRow(key=k + suffix, value=v))

    def bar_done(
        self,
        symbol: str,
        bar: tuple[Any, ...],
        day: str,
        start_equity: Decimal,
        last_equity: Decimal,
        halted: bool,
    ) -> None:
        """Per-bar checkpoint, in one transaction: the symbol's last bar, and the account's
        equity and today's PnL (all symbols together)."""
        with self._tx() as s:
            s.merge(KvRow(key=f"last_bar_ts:{symbol}", value=str(bar[0])))
            s.merge(KvRow(key=f"last_bar:{symbol}", value=json.dumps(list(bar))))
            s.merge(EquityRow(ts=int(bar[0]), equity=last_equity))
            self._bars_since_prune += 1
            if self._bars_since_prune >= EQUITY_PRUNE_EVERY:
                self._bars_since_prune = 0
                cutoff = s.scalar(
                    select(EquityRow.ts).order_by(EquityRow.ts.desc()).offset(EQUITY_KEEP).limit(1)
                )
                if cutoff is not None:
                    s.execute(delete(EquityRow).where(EquityRow.ts <= cutoff))
            s.merge(
                DailyPnlRow(
                    day=day, start_equity=start_equity, last_equity=last_equity, halted=halted
                )
            )

    # ---------------------------------------------------------------- reads
    def restore(self, symbol: str) -> Restored:
        """One symbol's sleeve: its balances, position, open orders and checkpoints (``kv``
        holds the account's keys and this symbol's under their plain names); the account's
        days; the highest order sequence number of any symbol."""
        with self.session() as s:
            balances = {
                r.asset: (r.free, r.locked)
                for r in s.scalars(select(BalanceRow).where(BalanceRow.sleeve == symbol))
            }
            position = s.get(PositionRow, symbol)
            open_states = [st.value for st in OrderStatus if st.is_open]
            open_orders = list(
                s.scalars(
                    select(OrderRow)
                    .where(OrderRow.status.in_(open_states), OrderRow.symbol == symbol)
                    .order_by(OrderRow.created_ts)
                )
            )
            kv: dict[str, str] = {}
            mine = f":{symbol}"
            for r in s.scalars(select(KvRow)):
                if r.key.endswith(mine):
                    kv[r.key[: -len(mine)]] = r.value
                elif ":" not in r.key:
                    kv.setdefault(r.key, r.value)
            days = {r.day: r for r in s.scalars(select(DailyPnlRow))}
            ids = s.scalars(select(OrderRow.order_id)).all()
        seq = max((_seq(i) for i in ids), default=0)
        return Restored(balances, position, open_orders, kv, days, seq)

    def sleeves(self) -> dict[str, dict[str, Decimal]]:
        """Every sleeve with books on disk: symbol -> asset -> total (free + locked)."""
        out: dict[str, dict[str, Decimal]] = {}
        with self.session() as s:
            for r in s.scalars(select(BalanceRow)):
                out.setdefault(r.sleeve, {})[r.asset] = r.free + r.locked
        return out

    def orders(
        self, limit: int = 100, open_only: bool = False, symbol: str | None = None
    ) -> list[OrderRow]:
        with self.session() as s:
            q = select(OrderRow).order_by(OrderRow.created_ts.desc(), OrderRow.order_id.desc())
            if symbol is not None:
                q = q.where(OrderRow.symbol == symbol)
            if open_only:
                q = q.where(OrderRow.status.in_([st.value for st in OrderStatus if st.is_open]))
            return list(s.scalars(q.limit(limit)))

    def equity_points(self, limit: int = EQUITY_KEEP) -> list[tuple[int, Decimal]]:
        """The newest ``limit`` per-bar equity values, oldest first."""
        with self.session() as s:
            rows = s.execute(
                select(EquityRow.ts, EquityRow.equity).order_by(EquityRow.ts.desc()).limit(limit)
            ).all()
        return [(int(ts), eq) for ts, eq in reversed(rows)]

    def last_protection(self, symbol: str) -> OrderRow | None:
        """The stop leg of the newest order list (OCO) of ``symbol``, open or not: what the
        position was last protected with."""
        with self.session() as s:
            rows = s.scalars(
                select(OrderRow).where(
                    OrderRow.symbol == symbol,
                    OrderRow.oco_group.is_not(None),
                    OrderRow.type.in_(["stop_limit", "stop_market"]),
                )
            ).all()
        return max(rows, key=lambda r: (r.created_ts, _seq(r.order_id)), default=None)

    def order_rows(self, group: str) -> list[OrderRow]:
        with self.session() as s:
            return list(s.scalars(select(OrderRow).where(OrderRow.oco_group == group)))

    def trade_ids(self, symbol: str) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(FillRow.trade_id).where(FillRow.symbol == symbol)))

    def last_fill_ts(self, symbol: str) -> int | None:
        with self.session() as s:
            ts = s.scalar(select(func.max(FillRow.ts)).where(FillRow.symbol == symbol))
            return int(ts) if ts is not None else None

    def fills(self, limit: int = 100, symbol: str | None = None) -> list[FillRow]:
        with self.session() as s:
            q = select(FillRow).order_by(FillRow.ts.desc())
            if symbol is not None:
                q = q.where(FillRow.symbol == symbol)
            return list(s.scalars(q.limit(limit)))

    def daily(self, limit: int = 7) -> list[DailyPnlRow]:
        """The account's last ``limit`` trading days, newest first."""
        with self.session() as s:
            q = select(DailyPnlRow).order_by(DailyPnlRow.day.desc()).limit(limit)
            return list(s.scalars(q))

    def count(self, model: type[Any]) -> int:
        with self.session() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _seq(order_id: str) -> int:
    """An order id's sequence number (``sbBTC-12`` → 12; 0 when it has none)."""
    tail = order_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _order_row(o: Order, ts: int) -> OrderRow:
    return OrderRow(
        order_id=o.order_id,
        symbol=o.symbol,
        side=o.side.value,
        type=o.type.value,
        quantity=o.quantity,
        quote_quantity=o.quote_quantity,
        price=o.price,
        trigger_price=o.trigger_price,
        trailing_bps=o.trailing_bps,
        post_only=o.post_only,
        reduce_only=o.reduce_only,
        tag=o.tag,
        oco_group=o.oco_group,
        status=o.status.value,
        filled_qty=o.filled_qty,
        fees=o.fees,
        venue_order_id=o.venue_order_id,
        client_order_id=o.client_id or None,
        reason=o.reason,
        created_ts=o.created_ts,
        updated_ts=ts,
    )


def row_dict(row: Any) -> dict[str, Any]:
    """Column name -> value for one mapped row."""
    return {col.key: getattr(row, col.key) for col in row.__table__.columns}
