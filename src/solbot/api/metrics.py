"""The gauges read at every scrape, from the bot's view (always current, nothing to update).
The four runbook names are exact: solbot_account_balance, solbot_daily_pnl,
solbot_orders_total (a counter in ``infra.metrics``), solbot_uptime_seconds."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from solbot.domain.values import TradingState
from solbot.runtime.view import BotView

STATE_VALUE = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


def _g(name: str, doc: str, value: float) -> GaugeMetricFamily:
    fam = GaugeMetricFamily(name, doc)
    fam.add_metric([], value)
    return fam


class ViewCollector(Collector):
    def __init__(self, view: BotView) -> None:
        self.view = view

    def collect(self) -> Iterator[GaugeMetricFamily]:
        st, a, g = self.view.status(), self.view.account(), _g
        bal = GaugeMetricFamily(
            "solbot_account_balance", "Quote balance (free + locked)", labels=["asset"]
        )
        bal.add_metric([a.asset], float(a.quote_balance()))
        yield bal
        yield g(
            "solbot_daily_pnl", "PnL since the start of the trading day (quote)", float(a.daily_pnl)
        )
        yield g("solbot_uptime_seconds", "Seconds since the service started", st.uptime_seconds)
        yield g("solbot_equity", "Account equity marked to market (quote)", float(a.equity))
        yield g("solbot_total_pnl", "Equity minus initial capital (quote)", float(a.total_pnl))
        pos = GaugeMetricFamily(
            "solbot_position_size", "Position in base units, by symbol", labels=["symbol"]
        )
        sleeve_eq = GaugeMetricFamily(
            "solbot_symbol_equity",
            "Equity of each symbol's slice of the capital (quote)",
            labels=["symbol"],
        )
        for b in a.sleeves:
            pos.add_metric([b.symbol], float(b.position.qty))
            sleeve_eq.add_metric([b.symbol], float(b.equity))
        yield pos
        yield sleeve_eq
        yield g(
            "solbot_exposure_ratio",
            "Value of all positions / account equity",
            float(a.exposure / a.equity) if a.equity > 0 else 0.0,
        )
        yield g(
            "solbot_trading_state",
            "0 ACTIVE, 1 REDUCING, 2 HALTED (the most restrictive of any symbol)",
            STATE_VALUE[st.trading_state],
        )
        yield g("solbot_paused", "1 when paused by an operator", 1.0 if st.paused else 0.0)
        yield g(
            "solbot_bars_since_order",
            "Live bars while trading since the last order (the quiet-bot alarm)",
            float(st.bars_since_order),
        )
        yield g(
            "solbot_quiet_after_bars",
            "The quiet-bot alarm's threshold in bars (0: off)",
            float(st.quiet_after_bars),
        )
        if st.stream is not None:
            yield g(
                "solbot_market_stream_bars",
                "Closed bars delivered by the exchange's websocket stream",
                float(st.stream.bars),
            )
            yield g(
                "solbot_market_stream_fallbacks",
                "Times the market stream failed or went silent (REST caught up)",
                float(st.stream.fallbacks),
            )
        yield g("solbot_open_orders", "Orders resting at the venue", float(a.open_orders()))
        yield g(
            "solbot_last_market_data_timestamp_seconds",
            "Open time of the last bar processed (epoch seconds; the oldest of any symbol)",
            st.oldest_bar_ts / 1000 if st.oldest_bar_ts is not None else 0.0,
        )
        yield g(
            "solbot_market_data_age_seconds",
            "Wall seconds since the last bar arrived (the stalest symbol; -1: not all have data)",
            st.market_data_age,
        )
        yield g(
            "solbot_market_data_stale_after_seconds",
            "Age of the last bar beyond which the bot calls its market data stale",
            st.stale_after_seconds,
        )
        yield g(
            "solbot_day_start_equity",
            "Equity at the start of the trading day",
            float(a.day_start_equity),
        )
        yield g(
            "solbot_daily_loss_limit_ratio",
            "Daily loss (fraction of day-start equity) at which the bot halts for the day",
            float(a.daily_loss_limit),
        )
        yield g("solbot_healthy", "1 when /api/status answers 200", 1.0 if st.healthy else 0.0)
        yield g(
            "solbot_exchange_testnet",
            "1 when trading on the exchange's test network (SOLBOT_EXCHANGE_SANDBOX)",
            1.0 if st.testnet else 0.0,
        )
        h = st.exchange
        if h is not None:
            yield g(
                "solbot_exchange_clock_offset_seconds",
                "The exchange's clock minus ours at the last sync",
                h.clock_offset_ms / 1000,
            )
            yield g(
                "solbot_exchange_clock_ok",
                "0 while the exchange refuses our timestamps (-1021) after resyncing",
                0.0 if h.clock_problem else 1.0,
            )
            yield g(
                "solbot_exchange_weight_used",
                "Request weight used this minute (X-MBX-USED-WEIGHT-1M and ours since)",
                h.weight_used,
            )
            yield g(
                "solbot_exchange_weight_budget",
                "Request weight per minute this bot may use (limit x its share)",
                h.weight_budget,
            )
            yield g(
                "solbot_exchange_blocked_seconds",
                "Seconds until requests may go again (a 429 window or a 418 ban)",
                h.blocked_seconds,
            )
            yield g(
                "solbot_orders_not_resent",
                "Market orders whose outcome stayed unknown, left to reconciliation",
                float(h.not_resent),
            )
            yield g(
                "solbot_exchange_stream_trades",
                "Trades booked from the exchange's user data stream before any poll saw them",
                float(h.stream_trades),
            )
        yield g(
            "solbot_backup_last_success_timestamp_seconds",
            "When `solbot backup create` last succeeded on this home (epoch seconds; 0: never)",
            self.view.backup_last_success() or 0.0,
        )
