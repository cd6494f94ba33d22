"""The memoised /metrics formatter must write exactly what prometheus_client writes."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from solbot.infra.metrics import TextExposition


class _Custom(Collector):
    def __init__(self) -> None:
        self.value = 1.5
        self.timestamp: float | None = None

    def collect(self) -> Iterator[Metric]:
        g = GaugeMetricFamily(
            "custom_bytes", "A doc with \\ and\nnewline", labels=["k"], unit="bytes"
        )
        g.add_metric(['va"l\\ue\nx'], self.value, timestamp=self.timestamp)
        g.add_metric(["plain"], 1e21)
        yield g


def _registry() -> tuple[CollectorRegistry, dict[str, object]]:
    r = CollectorRegistry()
    c = Counter("orders", "Orders", ["side", "type"], registry=r)
    c.labels("buy", "limit").inc(3)
    c.labels("sell", "market")
    h = Histogram("lat_seconds", "Latency", buckets=(0.001, 0.1, 1), registry=r)
    h.observe(0.05)
    h.observe(7)
    g = Gauge("lag_seconds", "Lag", registry=r)
    g.set(float("nan"))
    s = Summary("sizes", "Sizes", registry=r)
    s.observe(2)
    Info("build", "Build", registry=r).info({"version": "1.0", "commit": "abc"})
    Enum("state", "State", states=["a", "b"], registry=r).state("b")
    custom = _Custom()
    r.register(custom)
    return r, {"counter": c, "hist": h, "gauge": g, "custom": custom}


def test_same_bytes_as_prometheus_client_across_scrapes() -> None:
    r, parts = _registry()
    fmt = TextExposition(r)
    assert fmt.render() == generate_latest(r)
    # values change between scrapes; the cached prefixes must not freeze them
    parts["counter"].labels("buy", "limit").inc()  # type: ignore[attr-defined]
    parts["counter"].labels("sell", "stop").inc(2)  # type: ignore[attr-defined]  # new series
    parts["hist"].observe(0.0005)  # type: ignore[attr-defined]
    parts["gauge"].set(-0.25)  # type: ignore[attr-defined]
    parts["custom"].value = 123456789.0  # type: ignore[attr-defined]
    second = fmt.render()
    assert second == generate_latest(r)
    assert b'orders_total{side="sell",type="stop"} 2.0' in second
    assert b"lag_seconds -0.25" in second


def test_samples_with_timestamps_use_the_library_formatter() -> None:
    r, parts = _registry()
    parts["custom"].timestamp = 1_700_000_000.5  # type: ignore[attr-defined]
    out = TextExposition(r).render()
    assert out == generate_latest(r)
    assert b" 1700000000500\n" in out


def test_service_metrics_render_like_the_library(tmp_path: object) -> None:
    from pathlib import Path

    from solbot.bot import build_bot
    from solbot.runtime.config import load_settings

    svc = build_bot(load_settings(home=Path(str(tmp_path)), environ={}))
    svc.build()
    reg = svc.metrics.registry
    svc.metrics.orders.labels("buy", "limit").inc()
    svc.metrics.bar_latency.observe(0.002)
    text = svc.metrics.render().decode()
    lib = generate_latest(reg).decode()

    def drop_volatile(t: str) -> list[str]:  # live values (uptime, process) move between calls
        return [ln.rsplit(" ", 1)[0] for ln in t.splitlines()]

    assert drop_volatile(text) == drop_volatile(lib)
    assert 'solbot_orders_total{side="buy",type="limit"} 1.0' in text


def test_a_scrape_flood_renders_the_registry_at_most_twice_a_second(
    tmp_path: object, monkeypatch: object
) -> None:
    """Eight clients scraping in a loop made bars wait 4x longer: each scrape walked the
    whole registry on the event loop. Answers within ``RENDER_EVERY`` are the same bytes."""
    from pathlib import Path

    import pytest

    from solbot.bot import build_bot
    from solbot.infra import metrics as m
    from solbot.runtime.config import load_settings

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    now = [1000.0]
    monkeypatch.setattr(m.time, "monotonic", lambda: now[0])
    svc = build_bot(load_settings(home=Path(str(tmp_path)), environ={}))
    svc.build()
    first = svc.metrics.render()
    svc.metrics.orders.labels("buy", "limit").inc()
    assert all(svc.metrics.render() is first for _ in range(500))
    assert svc.metrics.renders == 1
    now[0] += m.RENDER_EVERY
    fresh = svc.metrics.render().decode()
    assert svc.metrics.renders == 2
    assert 'solbot_orders_total{side="buy",type="limit"} 1.0' in fresh
