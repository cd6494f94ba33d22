"""The emulator's spot markets: each symbol's synthetic bars, its matching engine (the
simulated exchange) and its kline stream. The balances are one account's, shared by every
market."""

from __future__ import annotations

from dataclasses import dataclass, field

from solbot.domain.instruments import Instrument, generic_spot, sol_usdt
from solbot.domain.messages import Bar
from solbot.emulator.streams import KlineStreams
from solbot.runtime.feeds import SyntheticFeed
from solbot.venues.sim import SimulatedExchange

# the emulator's markets: Binance's filters for these symbols (others: generic_spot's)
LOTS = {"BTC": "0.00001", "ETH": "0.0001"}


def market_instrument(symbol: str) -> Instrument:
    if symbol == "SOL/USDT":
        return sol_usdt()
    return generic_spot(symbol, lot=LOTS.get(symbol.partition("/")[0], "0.0001"))


@dataclass(slots=True)
class Market:
    """One symbol: its synthetic bars and its matching; the balances are the account's."""

    inst: Instrument
    sim: SimulatedExchange
    feed: SyntheticFeed
    streams: KlineStreams
    bars: list[Bar] = field(default_factory=list)
    block_k: int = 0
    closed: int = 0  # bars[:closed] are closed and public

    @property
    def wire(self) -> str:
        return self.inst.base + self.inst.quote

    def extend(self, price: float, start: int) -> None:
        block = self.feed.block(self.block_k, price, start)
        self.block_k += 1
        self.bars.extend(block.bars())

    @property
    def last_price(self) -> float:
        return self.bars[self.closed - 1].close
