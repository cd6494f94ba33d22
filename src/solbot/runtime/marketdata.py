"""The market data the settings name, for one symbol: a replayed file, the exchange (REST,
and its websocket stream where there is one) or the built-in synthetic market."""

from __future__ import annotations

import logging

from solbot.runtime.config import MarketSource, Settings
from solbot.runtime.feeds import SYNTHETIC_START, BarFeed, ReplayFeed, SyntheticFeed
from solbot.venues.clients import market_client, stream_client
from solbot.venues.restfeed import CcxtFeed
from solbot.venues.streamfeed import StreamFeed
from solbot.venues.traffic import gate_for

log = logging.getLogger(__name__)


def feed_for(s: Settings, symbol: str | None = None, index: int = 0, history: int = 200) -> BarFeed:
    """The market data source the settings name, for ``symbol`` (default: the first traded
    symbol); ``index``: its place in the list, which seeds its synthetic market; ``history``:
    closed bars an exchange feed fetches at start and the synthetic market's past (the
    strategy's warm-up)."""
    symbol = symbol or s.trading_symbols[0]
    if s.market is MarketSource.REPLAY:
        return ReplayFeed(s.replay_file_for(symbol), s.speed)
    if s.market is MarketSource.EXCHANGE:
        assert s.exchange is not None
        client = market_client(s.exchange, s.exchange_url, sandbox=s.exchange_sandbox)
        gate = gate_for(s.exchange, s.exchange_weight_share)
        gate.install(client)
        rest = CcxtFeed(client, symbol, s.timeframe, poll=s.exchange_poll_seconds, history=history)
        rest.traffic = gate
        if s.exchange_stream:
            ws = stream_client(
                s.exchange, s.exchange_url, s.exchange_ws_url, sandbox=s.exchange_sandbox
            )
            if ws is not None:
                gate.install(ws)
                log.info("market data: %s stream, REST for history and gaps", s.exchange)
                return StreamFeed(rest, ws)
        return rest
    base = symbol.partition("/")[0]
    start = SYNTHETIC_START.get(base, 100.0)
    return SyntheticFeed(
        s.seed + 7919 * index, s.timeframe, s.speed, start_price=start, history=history
    )
