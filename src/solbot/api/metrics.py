"""Prometheus metrics in base units. The four runbook names are exact:
solbot_account_balance, solbot_daily_pnl, solbot_orders_total, solbot_uptime_seconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import utils as _prom_utils
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector

from solbot.domain.messages import Event, OrderRejected, OrderSubmitted
from solbot.domain.orders import Order
from solbot.domain.values import TradingState

if TYPE_CHECKING:
    from solbot.runtime.service import BotService

STATE_VALUE = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


class _Live(Collector):
    """Values read from the service at scrape time (always current, nothing to update)."""

    def __init__(self, service: BotService) -> None:
        self.s = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s = self.s
        inst = s.instrument

        def g(name: str, doc: str, value: float, unit: str = "") -> GaugeMetricFamily:
            fam = GaugeMetricFamily(name, doc, unit=unit)
            fam.add_metric([], value)
            return fam

        bal = GaugeMetricFamily(
            "solbot_account_balance", "Quote balance (free + locked)", labels=["asset"]
        )
        quote = sum(float(sl.engine.portfolio.ledger.total(inst.quote)) for sl in s.sleeves)
        bal.add_metric([inst.quote], quote)
        yield bal
        equity, daily, total = s.pnl_snapshot()
        yield g("solbot_daily_pnl", "PnL since the start of the trading day (quote)", float(daily))
        yield g("solbot_uptime_seconds", "Seconds since the service started", s.uptime)
        yield g("solbot_equity", "Account equity marked to market (quote)", float(equity))
        yield g("solbot_total_pnl", "Equity minus initial capital (quote)", float(total))
        pos = GaugeMetricFamily(
            "solbot_position_size", "Position in base units, by symbol", labels=["symbol"]
        )
        sleeve_eq = GaugeMetricFamily(
            "solbot_symbol_equity",
            "Equity of each symbol's slice of the capital (quote)",
            labels=["symbol"],
        )
        for sl in s.sleeves:
            pos.add_metric([sl.symbol], float(sl.engine.portfolio.position.qty))
            sleeve_eq.add_metric([sl.symbol], float(sl.equity()))
        yield pos
        yield sleeve_eq
        yield g(
            "solbot_exposure_ratio",
            "Value of all positions / account equity",
            float(s.exposure() / equity) if equity > 0 else 0.0,
        )
        yield g(
            "solbot_trading_state",
            "0 ACTIVE, 1 REDUCING, 2 HALTED (the most restrictive of any symbol)",
            STATE_VALUE[s.trading_state()[0]],
        )
        yield g("solbot_paused", "1 when paused by an operator", 1.0 if s.paused else 0.0)
        feed = s.market_feed
        if feed is not None and hasattr(feed, "from_stream"):
            yield g(
                "solbot_market_stream_bars",
                "Closed bars delivered by the exchange's websocket stream",
                float(feed.from_stream),
            )
            yield g(
                "solbot_market_stream_fallbacks",
                "Times the market stream failed or went silent (REST caught up)",
                float(getattr(feed, "fallbacks", 0)),
            )
        yield g(
            "solbot_open_orders",
            "Orders resting at the venue",
            float(sum(sl.engine.portfolio.open_order_count() for sl in s.sleeves)),
        )
        seen = [sl for sl in s.sleeves if sl.last_bar is not None]
        ts = min(sl.last_bar.ts for sl in seen if sl.last_bar) / 1000 if seen else 0.0
        yield g(
            "solbot_last_market_data_timestamp_seconds",
            "Open time of the last bar processed (epoch seconds; the oldest of any symbol)",
            ts,
        )
        walls = [sl.last_bar_wall for sl in s.sleeves]
        now = time.monotonic()
        age = -1.0 if None in walls else max(now - w for w in walls if w is not None)
        yield g(
            "solbot_market_data_age_seconds",
            "Wall seconds since the last bar arrived (the stalest symbol; -1: not all have data)",
            age,
        )
        yield g(
            "solbot_market_data_stale_after_seconds",
            "Age of the last bar beyond which the bot calls its market data stale",
            s.stale_after_seconds(),
        )
        start = s.day.start_equity if s.day is not None else equity
        yield g("solbot_day_start_equity", "Equity at the start of the trading day", float(start))
        yield g(
            "solbot_daily_loss_limit_ratio",
            "Daily loss (fraction of day-start equity) at which the bot halts for the day",
            float(s.settings.daily_loss_limit),
        )
        healthy, _ = s.health()
        yield g("solbot_healthy", "1 when /api/status answers 200", 1.0 if healthy else 0.0)
        yield g(
            "solbot_exchange_testnet",
            "1 when trading on the exchange's test network (SOLBOT_EXCHANGE_SANDBOX)",
            1.0 if s.settings.exchange_sandbox else 0.0,
        )
        session = s.live_session
        if session is not None:
            h = session.health
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
                float(h.traffic.used),
            )
            yield g(
                "solbot_exchange_weight_budget",
                "Request weight per minute this bot may use (limit x its share)",
                float(h.traffic.limit * h.traffic.share),
            )
            yield g(
                "solbot_exchange_blocked_seconds",
                "Seconds until requests may go again (a 429 window or a 418 ban)",
                h.traffic.blocked_for(),
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
        from solbot.ops.backup import last_success

        yield g(
            "solbot_backup_last_success_timestamp_seconds",
            "When `solbot backup create` last succeeded on this home (epoch seconds; 0: never)",
            last_success(s.settings.data_dir) or 0.0,
        )


disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: they only add noise to every scrape


class SampledProcessCollector(Collector):
    """prometheus_client's process metrics, read from /proc at most once per ``period``
    seconds: CPU, memory and file descriptors are sampled at 1 Hz instead of on every scrape
    (the /proc reads were a quarter of a scrape's cost)."""

    def __init__(self, period: float = 1.0) -> None:
        self._inner = ProcessCollector(registry=None)
        self._period = period
        self._at = -1e18
        self._families: list[Any] = []

    def collect(self) -> Iterator[Any]:
        now = time.monotonic()
        if now - self._at >= self._period:
            self._families = list(self._inner.collect())
            self._at = now
        return iter(self._families)


_go_string: Callable[[float], str] = _prom_utils.floatToGoString  # the library's float formatting


def _escape_value(v: str) -> str:
    """Label values as the text format escapes them (backslash, newline, double quote)."""
    return v.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class TextExposition:
    """prometheus_client's text format (``generate_latest``), byte for byte, with the work
    that depends only on names done once per series instead of on every scrape.

    ``generate_latest`` validates and escapes each metric and label name with regular
    expressions for every sample of every scrape; our series are a fixed set, so the
    ``# HELP``/``# TYPE`` header of each family and the ``name{labels} `` prefix of each
    sample are built with prometheus_client's own escaping the first time they are seen and
    reused afterwards. Values are formatted fresh every time with its ``floatToGoString``.
    Anything unusual (timestamps, OpenMetrics-only samples) goes to the library's formatter.
    A unit test compares the two outputs.
    """

    _OM_SUFFIXES = ("_created", "_gsum", "_gcount")

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._heads: dict[tuple[str, str, str], str] = {}
        self._prefixes: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    def _head(self, name: str, mtype: str, doc: str) -> str:
        key = (name, mtype, doc)
        head = self._heads.get(key)
        if head is None:
            mname, shown = name, mtype
            if mtype == "counter":
                mname = name + "_total"
            elif mtype == "info":
                mname, shown = name + "_info", "gauge"
            elif mtype == "stateset":
                shown = "gauge"
            elif mtype == "gaugehistogram":
                shown = "histogram"
            elif mtype == "unknown":
                shown = "untyped"
            esc = openmetrics.escape_metric_name(mname)
            text = doc.replace("\\", r"\\").replace("\n", r"\n")
            head = f"# HELP {esc} {text}\n# TYPE {esc} {shown}\n"
            self._heads[key] = head
        return head

    def _prefix(self, name: str, labels: dict[str, str]) -> str:
        items = tuple(sorted(labels.items()))
        key = (name, items)
        prefix = self._prefixes.get(key)
        if prefix is None:
            if len(self._prefixes) > 10_000:  # label values are bounded, but never grow forever
                self._prefixes.clear()
            labelstr = ",".join(
                f'{openmetrics.escape_label_name(k)}="{_escape_value(v)}"' for k, v in items
            )
            esc = openmetrics.escape_metric_name(name)
            prefix = f"{esc}{{{labelstr}}} " if labelstr else f"{esc} "
            self._prefixes[key] = prefix
        return prefix

    def render(self) -> bytes:
        out: list[str] = []
        for metric in self.registry.collect():
            out.append(self._head(metric.name, metric.type, metric.documentation))
            for s in metric.samples:
                if s.timestamp is not None or (
                    s.name.startswith(metric.name)
                    and s.name[len(metric.name) :] in self._OM_SUFFIXES
                ):
                    return generate_latest(self.registry)
                out.append(self._prefix(s.name, s.labels) + _go_string(s.value) + "\n")
        return "".join(out).encode("utf-8")


RENDER_EVERY = 0.5  # s: the longest a scrape's answer is reused


class Metrics:
    def __init__(self, service: BotService) -> None:
        self._rendered: tuple[float, bytes] | None = None
        self.renders = 0  # expositions computed (for tests)
        self.registry = CollectorRegistry()
        self.exposition = TextExposition(self.registry)
        r = self.registry
        r.register(SampledProcessCollector())
        PlatformCollector(registry=r)
        r.register(_Live(service))
        self.orders = Counter(
            "solbot_orders", "Orders sent to the venue", ["side", "type"], registry=r
        )
        for side in ("buy", "sell"):  # zero samples from the start, so names are scrapeable
            for otype in ("market", "limit", "stop_market"):
                self.orders.labels(side, otype)
        self.fills = Counter("solbot_fills", "Fills received", ["side"], registry=r)
        self.fills.labels("buy")
        self.fills.labels("sell")
        self.denied = Counter(
            "solbot_orders_denied", "Orders refused by pre-trade risk", registry=r
        )
        self.venue_errors = Counter(
            "solbot_venue_errors", "Venue/exchange errors and rejects", ["kind"], registry=r
        )
        self.reconcile_checks = Counter(
            "solbot_reconcile_checks",
            "Live periodic reconciliations by result (ok, mismatch, inconclusive, error)",
            ["result"],
            registry=r,
        )
        self.kill_engaged = Gauge(
            "solbot_kill_switch_engaged", "1 once the kill switch fired", registry=r
        )
        self.roundtrip = Histogram(
            "solbot_order_roundtrip_seconds",
            "Order submitted -> filled (wall time)",
            buckets=(0.001, 0.01, 0.1, 1, 10, 60, 600),
            registry=r,
        )
        self.loop_lag_gauge = Gauge(
            "solbot_event_loop_lag_seconds", "How late a 100 ms timer fired", registry=r
        )
        self.bar_latency = Histogram(
            "solbot_bar_processing_seconds",
            "Bar in -> engine done (incl. persistence)",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1),
            registry=r,
        )

    def on_event(self, event: Event, order: Order) -> None:
        if isinstance(event, OrderSubmitted):
            self.orders.labels(order.side.value, order.type.value).inc()
        elif isinstance(event, OrderRejected):
            self.venue_errors.labels("rejected").inc()
        elif type(event).__name__ == "OrderDenied":
            self.denied.inc()
        elif type(event).__name__ == "OrderFilled":
            self.fills.labels(order.side.value).inc()

    async def loop_lag(self, period: float = 0.1) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(period)
            self.loop_lag_gauge.set(max(0.0, time.perf_counter() - t0 - period))

    def render(self) -> bytes:
        """The exposition, rendered at most once per ``RENDER_EVERY`` seconds: eight clients
        scraping in a loop made bars wait 4x longer (every scrape walked the whole registry
        on the event loop); Prometheus scrapes every 15 s, so half a second old is fresh."""
        now = time.monotonic()
        if self._rendered is None or now - self._rendered[0] >= RENDER_EVERY:
            self._rendered = (now, self.exposition.render())
            self.renders += 1
        return self._rendered[1]
