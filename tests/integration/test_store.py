"""The store on SQLite (default) and on the local PostgreSQL server, through Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from solbot.domain.messages import SubmitOrder
from solbot.domain.values import OrderType, Side
from solbot.persistence.models import AuditRow, FillRow, OrderRow
from solbot.persistence.store import Store
from tests.conftest import Scripted, bar, make_engine
from tests.pg import pg_schema

pytestmark = pytest.mark.integration
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'solbot.sqlite'}")
        s.migrate()
        yield s
        s.close()
        return
    with pg_schema("t") as url:
        s = Store(url)
        s.migrate()
        try:
            yield s
        finally:
            s.close()


def test_events_round_trip_and_restore(store):
    strat = Scripted(
        {
            0: [SubmitOrder(Side.BUY, OrderType.MARKET, D("2"))],
            2: [SubmitOrder(Side.SELL, OrderType.LIMIT, D("1"), price=D("50.00"))],
        }
    )
    engine, _ = make_engine(strat)
    pf = engine.portfolio

    def on_event(ev):  # type: ignore[no-untyped-def]
        if hasattr(ev, "order_id"):
            realised = pf.fills[-1].realised_pnl if type(ev).__name__ == "OrderFilled" else D(0)
            store.record(ev, pf.orders[ev.order_id], pf.ledger, pf.position, realised)

    engine.listeners.append(on_event)
    for i in range(4):
        engine.on_bar(bar(i, 10, 10, 10, 10))
    r = store.restore("SOL/USDT")
    assert {a: f + lk for a, (f, lk) in r.balances.items()} == {
        a: f + lk for a, (f, lk) in pf.ledger.snapshot().items()
    }
    assert r.position is not None and r.position.qty == D("2")
    assert [o.order_id for o in r.open_orders] == ["sb-2"] and r.max_order_seq == 2
    assert store.count(FillRow) == 1 and store.count(OrderRow) == 2
    assert store.count(AuditRow) == 5  # submitted, accepted, filled; submitted, accepted
    assert r.balances["SOL"] == (D("1.000"), D("1.000"))  # one SOL locked by the resting sell


def test_audit_log_is_append_only(store):
    store.audit("x", {"a": 1})
    with pytest.raises(DBAPIError), store.engine.begin() as c:
        c.execute(text("UPDATE audit_log SET kind = 'y'"))
    with pytest.raises(DBAPIError), store.engine.begin() as c:
        c.execute(text("DELETE FROM audit_log"))
    assert store.count(AuditRow) == 1


def test_migrate_is_idempotent(store):
    store.migrate()
    with store.engine.connect() as c:
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0005"


def test_order_intent_is_on_disk_before_the_venue_sees_it(tmp_path):
    from tests.unit.runtime.accounts import paper_account

    svc = paper_account(tmp_path)
    seen: list[tuple[str, str]] = []
    real_submit = svc.primary.venue.submit

    def submit(order):  # type: ignore[no-untyped-def]
        rows = [r for r in svc.store.orders(limit=10) if r.order_id == order.order_id]
        seen.append((order.order_id, rows[0].status if rows else "missing"))
        real_submit(order)

    svc.primary.venue.submit = submit  # type: ignore[method-assign]
    svc.primary.engine.execute([SubmitOrder(Side.BUY, OrderType.LIMIT, D("1"), price=D("5.00"))])
    assert seen == [("sb-1", "submitted")]
    svc.store.close()


def test_equity_points_are_kept_newest_first_and_pruned(store):
    from solbot.persistence import store as store_module

    keep, every = store_module.EQUITY_KEEP, store_module.EQUITY_PRUNE_EVERY
    n = keep + 2 * every + 7
    with store.batch():
        for i in range(n):
            b = (1_000 * i, 1.0, 1.0, 1.0, 1.0, 1.0)
            store.bar_done("SOL/USDT", b, "2026-01-01", D("100"), D(100 + i), False)
    points = store.equity_points()
    assert len(points) == keep  # the newest, oldest first
    assert points[-1] == (1_000 * (n - 1), D(100 + n - 1))
    assert [ts for ts, _ in points] == sorted(ts for ts, _ in points)
    with store.session() as s:  # pruned on disk too (every EQUITY_PRUNE_EVERY bars)
        rows = s.execute(text("SELECT count(*) FROM equity_points")).scalar()
    assert keep <= rows < keep + every


def test_a_version_0001_database_upgrades_keeping_its_rows(tmp_path):
    from alembic import command
    from alembic.config import Config

    from solbot.persistence.store import MIGRATIONS

    s = Store(f"sqlite:///{tmp_path / 'old.sqlite'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with s.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(text("INSERT INTO kv (key, value) VALUES ('initial_quote', '10000')"))
    s.migrate()  # to head: 0002 adds equity_points
    assert s.restore("SOL/USDT").kv["initial_quote"] == "10000"
    assert s.equity_points() == []
    s.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'solbot.sqlite'}"
        return
    with pg_schema("m") as u:
        yield u


def _upgrade(s: Store, rev: str) -> None:
    from alembic import command
    from alembic.config import Config

    from solbot.persistence.store import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with s.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        if rev.startswith("-"):
            command.downgrade(cfg, rev[1:])
        else:
            command.upgrade(cfg, rev)


def test_a_single_symbol_0002_database_becomes_that_symbols_sleeve_and_back(url):
    s = Store(url)
    _upgrade(s, "0002")
    with s.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO balances (asset, free, locked, updated_ts) VALUES "
                "('USDT', '9000.5', '12', 1), ('SOL', '3.25', '0', 1)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO positions (symbol, qty, avg_price, realised_pnl, fees) "
                "VALUES ('SOL/USDT', '3.25', '30', '0', '0.1')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO kv (key, value) VALUES ('last_bar_ts', '1700000000000'), "
                "('last_bar', '[1700000000000, 1, 2, 0.5, 1.5, 10]'), ('initial_quote', '10000'), "
                "('started_at', '2026-01-01T00:00:00+00:00')"
            )
        )
    s.migrate()
    r = s.restore("SOL/USDT")
    assert r.balances == {"USDT": (D("9000.5"), D("12")), "SOL": (D("3.25"), D("0"))}
    assert r.kv["last_bar_ts"] == "1700000000000" and r.kv["initial_quote"] == "10000"
    assert r.kv["started_at"] == "2026-01-01T00:00:00+00:00"
    assert s.restore("BTC/USDT").empty  # another symbol starts with no books
    assert s.sleeves() == {"SOL/USDT": {"USDT": D("9012.5"), "SOL": D("3.25")}}
    _upgrade(s, "-0002")  # and back: the single-symbol layout again
    with s.engine.connect() as conn:
        rows = conn.execute(text("SELECT asset, free FROM balances ORDER BY asset")).all()
        keys = {k for (k,) in conn.execute(text("SELECT key FROM kv"))}
    assert rows == [("SOL", "3.25"), ("USDT", "9000.5")]
    assert {"last_bar_ts", "last_bar", "initial_quote"} <= keys
    s.close()


def test_two_sleeves_keep_their_own_books_and_checkpoints(store):
    from solbot.domain.ledger import Ledger
    from solbot.domain.positions import Position

    sol = Ledger({"USDT": D("5000"), "SOL": D("2")})
    btc = Ledger({"USDT": D("4000"), "BTC": D("0.01")})
    store.write_books(sol, Position("SOL/USDT"), 1)
    store.write_books(btc, Position("BTC/USDT"), 1)
    store.put(sleeve="SOL/USDT", initial_quote="5000")
    store.put(sleeve="BTC/USDT", initial_quote="5000.5")
    store.put(allocation="{}")
    store.bar_done("BTC/USDT", (7, 1, 1, 1, 1, 1), "2026-01-01", D("10000"), D("9990"), False)
    a, b = store.restore("SOL/USDT"), store.restore("BTC/USDT")
    assert set(a.balances) == {"USDT", "SOL"} and a.balances["USDT"][0] == D("5000")
    assert set(b.balances) == {"USDT", "BTC"} and b.balances["USDT"][0] == D("4000")
    assert (a.kv["initial_quote"], b.kv["initial_quote"]) == ("5000", "5000.5")
    assert "last_bar_ts" not in a.kv and b.kv["last_bar_ts"] == "7"
    assert a.kv["allocation"] == b.kv["allocation"] == "{}"  # the account's keys: both see them
    assert a.days["2026-01-01"].last_equity == D("9990")  # the account's day


def test_a_trailing_stop_is_recorded_with_its_delta_and_restored(store):
    # a restart re-protects a position with the same kind of stop it had (migration 0005)
    from solbot.domain.messages import SubmitBracket

    cmd = SubmitBracket(
        SubmitOrder(Side.BUY, OrderType.MARKET, D("2")), D("12.00"), D("9.00"), trail_bps=250
    )
    engine, _ = make_engine(Scripted({0: [cmd]}))
    pf = engine.portfolio
    engine.listeners.append(
        lambda ev: (
            store.record(ev, pf.orders[ev.order_id], pf.ledger, pf.position, D(0))
            if hasattr(ev, "order_id")
            else None
        )
    )
    for i in range(3):
        engine.on_bar(bar(i, 10, 10.1, 9.9, 10))
    stop = store.last_protection("SOL/USDT")
    assert stop is not None and stop.trailing_bps == 250
    fixed = [r for r in store.order_rows(stop.oco_group or "") if r.type == "limit"]
    assert fixed and fixed[0].trailing_bps is None  # the take-profit does not trail
