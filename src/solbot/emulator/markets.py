"""The emulator's spot markets: each symbol's synthetic bars, its matching engine (the
simulated exchange) and its kline stream. The balances are one account's, shared by every
market."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from solbot.domain.instruments import Instrument, generic_spot, sol_usdt
from solbot.domain.messages import Bar
from solbot.emulator.streams import KlineStreams
from solbot.emulator.wire import ORDER_TYPES
from solbot.runtime.feeds import SyntheticFeed
from solbot.venues.sim import SimulatedExchange

# the emulator's markets: Binance's lot steps for these symbols, as recorded in
# exchange_info_spot.json (others: generic_spot's)
LOTS = {"BTC": "0.00001", "ETH": "0.0001", "LTC": "0.001", "ADA": "0.1", "TRX": "0.1"}


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
    status: str = "TRADING"  # enums.md "Symbol status": TRADING, HALT, BREAK, CANCEL_ONLY ...
    order_types: list[str] = field(default_factory=lambda: list(ORDER_TYPES))
    oco_allowed: bool = True
    oto_allowed: bool = True  # exchangeInfo's otoAllowed (OTO and OTOCO lists)

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

    def last_dec(self) -> Decimal:
        return Decimal(repr(self.last_price))

    def average_price(self, bars: int) -> Decimal:
        """The average close of the last ``bars`` bars (PERCENT_PRICE_BY_SIDE's reference:
        ``filters.md``, the average price over ``avgPriceMins``)."""
        recent = self.bars[max(0, self.closed - bars) : self.closed]
        if not recent:
            return Decimal(0)
        return Decimal(repr(sum(b.close for b in recent) / len(recent)))
