"""Discord webhook notifier with severities P0-P3.

Messages go on a bounded queue drained by a background task, so trading never waits on
Discord. The sender honours 429 ``retry_after``, posts with ``?wait=true`` (Discord then
answers with the message, so a 200 means it was stored), truncates to Discord's limits, and
never lets the webhook URL (a secret) reach a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from pydantic import SecretStr

from solbot import __version__

log = logging.getLogger(__name__)

COLOURS = {"P0": 0xE5484D, "P1": 0xF76B15, "P2": 0xFFC53D, "P3": 0x3E63DD}
TITLE_MAX, DESC_MAX = 256, 4096
QUEUE_MAX = 1000


@dataclass(frozen=True, slots=True)
class Notice:
    severity: str
    title: str
    text: str
    at: datetime

    def payload(self) -> dict[str, object]:
        return {
            "username": "SOL-Bot",
            "embeds": [
                {
                    "title": f"[{self.severity}] {self.title}"[:TITLE_MAX],
                    "description": self.text[:DESC_MAX],
                    "color": COLOURS.get(self.severity, COLOURS["P3"]),
                    "timestamp": self.at.isoformat(),
                    "footer": {"text": f"solbot {__version__}"},
                }
            ],
            "allowed_mentions": {"parse": []},
        }


class Notifier:
    def __init__(
        self,
        webhook: SecretStr | None,
        secrets: list[str] | None = None,
        max_attempts: int = 5,
        label: str = "",
    ) -> None:
        """``label``: put before every title (``testnet``: a bot on the exchange's test
        network says so in every message)."""
        self.url = webhook.get_secret_value() if webhook is not None else None
        self.label = label
        self.secrets = secrets or []
        self.max_attempts = max_attempts
        self.queue: asyncio.Queue[Notice] | None = None
        self.sent = 0
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def start(self) -> None:
        if self.enabled and self._task is None:
            self.queue = asyncio.Queue(QUEUE_MAX)
            self._task = asyncio.get_running_loop().create_task(self._run(), name="discord")

    def send(self, severity: str, title: str, text: str) -> None:
        """Never blocks, never raises: a full queue drops the message (and counts it)."""
        if not self.enabled:
            return
        if self.queue is None:
            self.start()
        assert self.queue is not None
        for s in self.secrets:
            text = text.replace(s, "***")
        if self.label:
            title = f"[{self.label}] {title}"
        try:
            self.queue.put_nowait(Notice(severity, title, text, datetime.now(UTC)))
        except asyncio.QueueFull:
            self.dropped += 1

    async def drain(self, timeout: float) -> None:
        """Give queued messages up to ``timeout`` seconds to go out (used when stopping)."""
        if self.queue is None or self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), timeout)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        assert self.queue is not None and self.url is not None
        async with httpx.AsyncClient(timeout=5.0) as client:
            while True:
                notice = await self.queue.get()
                try:
                    await self._post(client, notice)
                finally:
                    self.queue.task_done()

    async def _post(self, client: httpx.AsyncClient, notice: Notice) -> None:
        assert self.url is not None
        url = self.url + ("&" if "?" in self.url else "?") + "wait=true"
        delay = 0.5
        for attempt in range(1, self.max_attempts + 1):
            try:
                r = await client.post(url, json=notice.payload())
            except httpx.HTTPError as exc:
                log.warning("discord: %s (attempt %d)", type(exc).__name__, attempt)
            else:
                if r.status_code < 300:
                    self.sent += 1
                    return
                if r.status_code == 429:
                    retry = _retry_after(r)
                    log.warning("discord: rate limited, retrying in %.2f s", retry)
                    await asyncio.sleep(retry)
                    continue
                if 400 <= r.status_code < 500:
                    log.error("discord: webhook refused the message (HTTP %d)", r.status_code)
                    return
                log.warning("discord: HTTP %d (attempt %d)", r.status_code, attempt)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8.0)
        log.error("discord: gave up on %r after %d attempts", notice.title, self.max_attempts)


def _retry_after(r: httpx.Response) -> float:
    try:
        body = r.json()
        value = float(body.get("retry_after", 1.0))
    except (ValueError, AttributeError):
        value = float(r.headers.get("Retry-After", "1") or 1)
    return min(max(value, 0.05), 30.0)


async def send_once(webhook: SecretStr, severity: str, title: str, text: str) -> bool:
    n = Notifier(webhook)
    n.start()
    n.send(severity, title, text)
    t0 = time.monotonic()
    await n.drain(timeout=15.0)
    log.debug("notify took %.2f s", time.monotonic() - t0)
    return n.sent == 1


class ErrorAlerts(logging.Handler):
    """Forwards ERROR and CRITICAL records of solbot's loggers to Discord as P1, at most one
    per ``interval`` seconds (the rest are counted and mentioned in the next one)."""

    def __init__(self, notifier: Notifier, interval: float = 60.0) -> None:
        super().__init__(logging.ERROR)
        self.notifier = notifier
        self.interval = interval
        self._last = -1e18
        self._suppressed = 0

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith("solbot") or record.name.startswith(__name__):
            return
        now = time.monotonic()
        if now - self._last < self.interval:
            self._suppressed += 1
            return
        more = f" (+{self._suppressed} more since the last alert)" if self._suppressed else ""
        self._last, self._suppressed = now, 0
        self.notifier.send(
            "P1", f"{record.levelname} in {record.name}", record.getMessage()[:1500] + more
        )
