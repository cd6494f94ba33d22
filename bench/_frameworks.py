"""Runs the same Donchian rule in backtesting.py or nautilus_trader on the tiled bars.

Executed inside the benchmark's own virtualenv (.venv-bench); prints one JSON line.
Usage: python bench/_frameworks.py {backtesting|nautilus} BARS.npz [N]
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from decimal import Decimal

import numpy as np
import pandas as pd

N_IN, N_OUT = 20, 10
CASH, STAKE = 1_000_000_000, 1_000  # fixed stake per trade, as in backtest_speed.py


def run_backtesting_py(df: pd.DataFrame) -> dict[str, float]:
    from backtesting import Backtest, Strategy

    upper = df["High"].rolling(N_IN).max().shift(1).to_numpy()
    lower = df["Low"].rolling(N_OUT).min().shift(1).to_numpy()

    class Donchian(Strategy):
        def init(self) -> None:
            self.up = self.I(lambda: upper, name="upper")
            self.lo = self.I(lambda: lower, name="lower")

        def next(self) -> None:
            c = self.data.Close[-1]
            if not self.position:
                if c > self.up[-1]:
                    self.buy(size=max(1, int(STAKE / c)))
            elif c < self.lo[-1]:
                self.position.close()

    t0 = time.perf_counter()
    bt = Backtest(df, Donchian, cash=CASH, commission=0.001, finalize_trades=False)
    stats = bt.run()
    elapsed = time.perf_counter() - t0
    return {"seconds": elapsed, "trades": int(stats["# Trades"])}


def run_nautilus(df: pd.DataFrame) -> dict[str, float]:
    from nautilus_trader.backtest.config import BacktestEngineConfig
    from nautilus_trader.backtest.engine import BacktestEngine
    from nautilus_trader.config import LoggingConfig, StrategyConfig
    from nautilus_trader.model.currencies import USDT
    from nautilus_trader.model.data import Bar, BarType
    from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, TraderId, Venue
    from nautilus_trader.model.instruments import CurrencyPair
    from nautilus_trader.model.objects import Currency, Money, Price, Quantity
    from nautilus_trader.persistence.wranglers import BarDataWrangler
    from nautilus_trader.trading.strategy import Strategy

    sol = Currency.from_str("SOL")
    venue = Venue("BINANCE")
    inst = CurrencyPair(
        instrument_id=InstrumentId(Symbol("SOLUSDT"), venue),
        raw_symbol=Symbol("SOLUSDT"),
        base_currency=sol,
        quote_currency=USDT,
        price_precision=4,
        size_precision=3,
        price_increment=Price.from_str("0.0001"),
        size_increment=Quantity.from_str("0.001"),
        lot_size=None,
        max_quantity=Quantity.from_str("100000000"),
        min_quantity=Quantity.from_str("0.001"),
        max_notional=None,
        min_notional=None,
        max_price=Price.from_str("1000000"),
        min_price=Price.from_str("0.0001"),
        margin_init=Decimal(0),
        margin_maint=Decimal(0),
        maker_fee=Decimal("0.001"),
        taker_fee=Decimal("0.001"),
        ts_event=0,
        ts_init=0,
    )
    bar_type = BarType.from_str("SOLUSDT.BINANCE-15-MINUTE-LAST-EXTERNAL")

    class DonchianConfig(StrategyConfig, frozen=True):
        instrument_id: InstrumentId
        bar_type: BarType

    class Donchian(Strategy):
        def __init__(self, config: DonchianConfig) -> None:
            super().__init__(config)
            self.highs: deque[float] = deque(maxlen=N_IN)
            self.lows: deque[float] = deque(maxlen=N_OUT)
            self.long = False
            self.entries = 0

        def on_start(self) -> None:
            self.subscribe_bars(self.config.bar_type)

        def on_bar(self, bar: Bar) -> None:
            c = bar.close.as_double()
            if len(self.highs) == N_IN and len(self.lows) == N_OUT:
                if not self.long and c > max(self.highs):
                    qty = inst.make_qty(STAKE / c)
                    self.submit_order(self.order_factory.market(inst.id, OrderSide.BUY, qty))
                    self.long = True
                    self.entries += 1
                elif self.long and c < min(self.lows):
                    self.close_all_positions(inst.id)
                    self.long = False
            self.highs.append(bar.high.as_double())
            self.lows.append(bar.low.as_double())

    engine = BacktestEngine(
        config=BacktestEngineConfig(
            trader_id=TraderId("BENCH-001"), logging=LoggingConfig(log_level="ERROR")
        )
    )
    engine.add_venue(
        venue=venue,
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        base_currency=None,
        starting_balances=[Money(CASH, USDT), Money(0, sol)],
    )
    engine.add_instrument(inst)
    wrangled = BarDataWrangler(bar_type, inst).process(df.rename(columns=str.lower))
    strategy = Donchian(DonchianConfig(instrument_id=inst.id, bar_type=bar_type))
    engine.add_data(wrangled)
    engine.add_strategy(strategy)
    t0 = time.perf_counter()
    engine.run()
    elapsed = time.perf_counter() - t0
    filled = [o for o in engine.cache.orders() if o.is_closed and o.filled_qty > 0]
    engine.dispose()
    return {"seconds": elapsed, "trades": strategy.entries, "filled_orders": len(filled)}


def main() -> None:
    which, path = sys.argv[1], sys.argv[2]
    d = np.load(path)
    n = int(sys.argv[3]) if len(sys.argv) > 3 else len(d["ts"])
    df = pd.DataFrame(
        {
            "Open": d["open"][:n],
            "High": d["high"][:n],
            "Low": d["low"][:n],
            "Close": d["close"][:n],
            "Volume": d["volume"][:n],
        },
        index=pd.to_datetime(d["ts"][:n], unit="ms", utc=True),
    )
    if which == "nautilus":
        df.index = df.index + pd.Timedelta(minutes=15)  # nautilus stamps bars at their close
    run = {"backtesting": run_backtesting_py, "nautilus": run_nautilus}[which]
    result = run(df)
    result["bars"] = n
    print(json.dumps(result))


if __name__ == "__main__":
    main()
