"""Prometheus metrics in base units: the registry, the counters and histograms the bot
updates as it trades (the ``runtime.ports.MetricsSink`` it is handed), and the text
exposition. The four runbook names are exact: solbot_account_balance, solbot_daily_pnl,
solbot_orders_total, solbot_uptime_seconds; the gauges read at scrape time come from the
API's collector over the bot's view (``api.metrics``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

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
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector

from solbot.domain.messages import Event, OrderRejected, OrderSubmitted
from solbot.domain.orders import Order

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
    def __init__(self) -> None:
        self._rendered: tuple[float, bytes] | None = None
        self.renders = 0  # expositions computed (for tests)
        self.registry = CollectorRegistry()
        self.exposition = TextExposition(self.registry)
        r = self.registry
        r.register(SampledProcessCollector())
        PlatformCollector(registry=r)
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

    def add(self, collector: Collector) -> None:
        """A collector read at every scrape (the API's gauges over the bot's view)."""
        self.registry.register(collector)

    # the sink the account, its sleeves and the live session write to
    def bar_done(self, seconds: float) -> None:
        self.bar_latency.observe(seconds)

    def roundtrip_done(self, seconds: float) -> None:
        self.roundtrip.observe(seconds)

    def killed(self) -> None:
        self.kill_engaged.set(1)

    def venue_error(self, kind: str) -> None:
        self.venue_errors.labels(kind).inc()

    def reconciled(self, result: str) -> None:
        self.reconcile_checks.labels(result).inc()

    def loop_lag_seconds(self) -> float:
        return float(self.loop_lag_gauge._value.get())

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
