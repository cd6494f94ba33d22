"""Strategies. ``REGISTRY`` maps the names the CLI accepts to strategy classes."""

from __future__ import annotations

from solbot.engine.strategy import Strategy
from solbot.strategies.donchian import DonchianBreakout
from solbot.strategies.grid import RangeGrid
from solbot.strategies.ladder import Ladder
from solbot.strategies.meanrev import MeanReversion
from solbot.strategies.switcher import RegimeSwitcher
from solbot.strategies.trend import TrendFollow

REGISTRY: dict[str, type[Strategy]] = {
    DonchianBreakout.name: DonchianBreakout,
    Ladder.name: Ladder,
    RangeGrid.name: RangeGrid,
    TrendFollow.name: TrendFollow,
    MeanReversion.name: MeanReversion,
    RegimeSwitcher.name: RegimeSwitcher,
}


def create(name: str, **params: object) -> Strategy:
    cls = REGISTRY.get(name)
    if cls is None:
        raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(sorted(REGISTRY))}")
    return cls(**params)
