"""A loopback HTTP server speaking the Binance spot public REST subset that ccxt needs for
``fetch_ohlcv``: ``/api/v3/exchangeInfo`` and ``/api/v3/klines``. It serves given bars and
records every request, so tests drive the real ccxt code over real HTTP."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import numpy as np

from solbot.data.bars import BarArrays, timeframe_ms
from tests.integration.http_util import JsonHandler, LoopbackServer

SYMBOL_INFO = {
    "symbol": "SOLUSDT",
    "status": "TRADING",
    "baseAsset": "SOL",
    "baseAssetPrecision": 8,
    "quoteAsset": "USDT",
    "quotePrecision": 8,
    "quoteAssetPrecision": 8,
    "baseCommissionPrecision": 8,
    "quoteCommissionPrecision": 8,
    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
    "icebergAllowed": True,
    "ocoAllowed": True,
    "quoteOrderQtyMarketAllowed": True,
    "isSpotTradingAllowed": True,
    "isMarginTradingAllowed": False,
    "filters": [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": "0.01",
            "maxPrice": "10000.00",
            "tickSize": "0.01",
        },
        {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "9000000.000", "stepSize": "0.001"},
        {
            "filterType": "NOTIONAL",
            "minNotional": "5.00",
            "applyMinToMarket": True,
            "maxNotional": "9000000.00",
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        },
    ],
    "permissions": [],
    "permissionSets": [["SPOT"]],
}


class BinanceStub(LoopbackServer):
    def __init__(self, bars: BarArrays) -> None:
        self.bars = bars
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        stub = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                q = parse_qs(url.query)
                stub.requests.append((url.path, q))
                if url.path == "/api/v3/exchangeInfo":
                    self.send_json(
                        {
                            "timezone": "UTC",
                            "serverTime": 0,
                            "rateLimits": [],
                            "exchangeFilters": [],
                            "symbols": [SYMBOL_INFO],
                        }
                    )
                elif url.path == "/api/v3/klines":
                    self.send_json(stub.klines(q))
                elif url.path == "/api/v3/time":
                    self.send_json({"serverTime": time.time_ns() // 1_000_000})
                else:
                    self.send_json({"code": -1100, "msg": f"not emulated: {url.path}"}, 404)

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return self.origin

    def klines(self, q: dict[str, list[str]]) -> list[list[object]]:
        b = self.bars
        step = timeframe_ms(b.timeframe)
        start = int(q.get("startTime", ["0"])[0])
        end = int(q["endTime"][0]) if "endTime" in q else None
        limit = min(int(q.get("limit", ["500"])[0]), 1000)
        i = int(np.searchsorted(b.ts, start))
        out: list[list[object]] = []
        while i < len(b) and len(out) < limit:
            t = int(b.ts[i])
            if end is not None and t > end:
                break
            out.append(
                [
                    t,
                    f"{b.open[i]:.4f}",
                    f"{b.high[i]:.4f}",
                    f"{b.low[i]:.4f}",
                    f"{b.close[i]:.4f}",
                    f"{b.volume[i]:.2f}",
                    t + step - 1,
                    "0",
                    1,
                    "0",
                    "0",
                    "0",
                ]
            )
            i += 1
        return out
