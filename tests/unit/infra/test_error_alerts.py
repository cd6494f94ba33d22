from __future__ import annotations

import logging

from solbot.infra.notify import ErrorAlerts


class FakeNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def send(self, severity: str, title: str, text: str) -> None:
        self.sent.append((severity, title, text))


def test_errors_are_forwarded_as_p1_and_rate_limited():
    fake = FakeNotifier()
    handler = ErrorAlerts(fake, interval=3600)  # type: ignore[arg-type]
    log = logging.getLogger("solbot.test.alerts")
    log.addHandler(handler)
    try:
        log.warning("not an error")
        log.error("venue refused: %s", "insufficient balance")
        log.error("second")
        log.critical("third")
        logging.getLogger("other.lib").addHandler(handler)
        logging.getLogger("other.lib").error("not ours")
    finally:
        log.removeHandler(handler)
        logging.getLogger("other.lib").removeHandler(handler)
    assert fake.sent == [
        ("P1", "ERROR in solbot.test.alerts", "venue refused: insufficient balance")
    ]
    handler.interval = 0
    log.addHandler(handler)
    try:
        log.error("later")
    finally:
        log.removeHandler(handler)
    assert fake.sent[-1][2] == "later (+2 more since the last alert)"
