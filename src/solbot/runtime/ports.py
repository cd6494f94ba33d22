"""What the running bot's account and sessions are handed instead of reaching for the
process around them: where alerts go and where measurements go. ``infra.notify.Notifier``
and ``infra.metrics.Metrics`` are the real ones; tests hand in their own."""

from __future__ import annotations

from typing import Protocol

from solbot.domain.messages import Event
from solbot.domain.orders import Order


class Alerts(Protocol):
    def send(self, severity: str, title: str, text: str) -> None:
        """Queue an alert (P0 … P3); never blocks, never raises."""


class MetricsSink(Protocol):
    def on_event(self, event: Event, order: Order) -> None: ...

    def bar_done(self, seconds: float) -> None: ...

    def roundtrip_done(self, seconds: float) -> None: ...

    def killed(self) -> None: ...

    def venue_error(self, kind: str) -> None: ...

    def reconciled(self, result: str) -> None: ...
