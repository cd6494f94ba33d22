from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from solbot.domain.instruments import sol_usdt
from solbot.domain.ledger import Ledger
from solbot.domain.messages import Bar
from solbot.engine.core import Engine
from solbot.engine.portfolio import Portfolio
from solbot.engine.ports import SimClock
from solbot.engine.strategy import Strategy
from solbot.venues.sim import SimConfig, SimulatedExchange

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "binance"


def shared_file(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real market data {path} is absent (it lives in ../shared, beside the repo)")
    return path


def bar(i: int, o: float, h: float, lo: float, c: float, v: float = 1_000_000.0) -> Bar:
    """A 1h bar at hour ``i`` (hand-built bars for rule tests)."""
    return Bar(1_600_000_000_000 + i * 3_600_000, o, h, lo, c, v)


class Scripted(Strategy):
    """Sends the commands scripted for each bar index; records what it was told."""

    name = "scripted"

    def __init__(self, script: dict[int, list[object]] | None = None) -> None:
        super().__init__()
        self.script = script or {}
        self.i = -1
        self.fills: list[object] = []
        self.events: list[object] = []

    def on_bar(self, bar: Bar):  # type: ignore[no-untyped-def]
        self.i += 1
        return self.script.get(self.i, [])

    def on_fill(self, fill):  # type: ignore[no-untyped-def]
        self.fills.append(fill)
        return ()

    def on_order_event(self, event):  # type: ignore[no-untyped-def]
        self.events.append(event)
        return ()


def make_engine(
    strategy: Strategy,
    cash: str = "10000",
    base: str = "0",
    config: SimConfig | None = None,
    shortable: bool = False,
) -> tuple[Engine, SimulatedExchange]:
    inst = replace(sol_usdt(), shortable=shortable)
    balances = {"USDT": Decimal(cash), "SOL": Decimal(base)}
    venue = SimulatedExchange(inst, balances, config)
    engine = Engine(strategy, Portfolio(inst, Ledger(balances)), venue, SimClock())
    engine.start()
    return engine, venue
