"""Discord webhook notifier with severities P0-P3.

Messages go on a bounded queue drained by a background task, so trading never waits on
Discord. The sender honours 429 ``retry_after``, posts with ``?wait=true`` (Discord then
answers with the message, so a 200 means it was stored), truncates to Discord's limits, and
never lets the webhook URL (a secret) reach a log line.

Stopping never waits on Discord beyond a short bound (``drain``): what is still queued or on
its way then goes to an outbox file (``<data>/notify-outbox.jsonl``) that the next start
sends first, marked as delayed, so an unreachable webhook neither holds a kill switch past
its second nor loses the alert that said why the bot stopped. A message that was on its way
when the bound came may arrive twice (a duplicate alert rather than a lost one).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

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

    def to_json(self) -> str:
        at = self.at.isoformat()
        return json.dumps(
            {"severity": self.severity, "title": self.title, "text": self.text, "at": at}
        )

    @classmethod
    def from_json(cls, line: str) -> Notice:
        d = json.loads(line)
        at = datetime.fromisoformat(str(d["at"]))
        return cls(str(d["severity"]), str(d["title"]), str(d["text"]), at)


class Notifier:
    def __init__(
        self,
        webhook: SecretStr | None,
        secrets: list[str] | None = None,
        max_attempts: int = 5,
        label: str = "",
        outbox: Path | None = None,
    ) -> None:
        """``label``: put before every title (``testnet``: a bot on the exchange's test
        network says so in every message). ``outbox``: where messages not delivered when
        stopping are kept for the next start."""
        self.url = webhook.get_secret_value() if webhook is not None else None
        self.label = label
        self.secrets = secrets or []
        self.max_attempts = max_attempts
        self.queue: asyncio.Queue[Notice] | None = None
        self.sent = 0
        self.dropped = 0
        self.outbox = outbox
        self._task: asyncio.Task[None] | None = None
        self._current: Notice | None = None  # on its way to Discord
        self._delayed = 0  # messages of the outbox still to go (it is removed after them)
        # other channels for the same alerts (Telegram): called with (severity, title, text),
        # secrets already masked; each must never block
        self.also: list[Callable[[str, str, str], None]] = []

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def start(self) -> None:
        if self.enabled and self._task is None:
            self.queue = asyncio.Queue(QUEUE_MAX)
            for notice in self._kept():  # a previous run's, first
                self.queue.put_nowait(notice)
                self._delayed += 1
            self._task = asyncio.get_running_loop().create_task(self._run(), name="discord")

    def _kept(self) -> list[Notice]:
        if self.outbox is None or not self.outbox.exists():
            return []
        kept = []
        for line in self.outbox.read_text(errors="replace").splitlines()[-QUEUE_MAX // 2 :]:
            try:
                n = Notice.from_json(line)
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a crash while it was written
            when = n.at.strftime("%Y-%m-%d %H:%M:%S UTC")
            kept.append(replace(n, title=f"(delayed) {n.title}", text=f"{n.text}\n(sent {when})"))
        return kept

    def send(self, severity: str, title: str, text: str) -> None:
        """Never blocks, never raises: a full queue drops the message (and counts it)."""
        for s in self.secrets:
            text = text.replace(s, "***")
        if self.label:
            title = f"[{self.label}] {title}"
        for channel in self.also:
            try:
                channel(severity, title, text)
            except Exception:  # another channel's fault never stops this one
                log.exception("alert channel failed")
        if not self.enabled:
            return
        if self.queue is None:
            self.start()
        assert self.queue is not None
        try:
            self.queue.put_nowait(Notice(severity, title, text, datetime.now(UTC)))
        except asyncio.QueueFull:
            self.dropped += 1

    async def drain(self, timeout: float) -> None:
        """Give queued messages up to ``timeout`` seconds to go out (used when stopping);
        what has not gone by then is kept in the outbox for the next start."""
        if self.queue is None or self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), timeout)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        left = [self._current] if self._current is not None else []
        while not self.queue.empty():
            left.append(self.queue.get_nowait())
        self._keep(left)

    def _keep(self, left: list[Notice]) -> None:
        if self.outbox is None:
            if left:
                log.warning("discord: %d message(s) not delivered before exit", len(left))
            return
        # strip what an earlier start marked; rewritten whole, so a crash cannot cut it
        plain = [
            replace(
                n, title=n.title.removeprefix("(delayed) "), text=n.text.rsplit("\n(sent ", 1)[0]
            )
            for n in left
        ]
        if not plain:
            self.outbox.unlink(missing_ok=True)  # everything went (the previous run's too)
            return
        tmp = self.outbox.with_suffix(".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text("".join(n.to_json() + "\n" for n in plain))
        os.replace(tmp, self.outbox)
        log.warning(
            "discord: %d message(s) not delivered before exit; kept in %s for the next start",
            len(plain), self.outbox,
        )  # fmt: skip

    async def _run(self) -> None:
        assert self.queue is not None and self.url is not None
        async with httpx.AsyncClient(timeout=5.0) as client:
            while True:
                notice = await self.queue.get()
                self._current = notice
                try:
                    await self._post(client, notice)
                finally:
                    self.queue.task_done()
                self._current = None  # delivered or given up; cancelled, it stays for drain
                if self._delayed:
                    self._delayed -= 1
                    if self._delayed == 0 and self.outbox is not None:
                        self.outbox.unlink(missing_ok=True)  # the previous run's all went

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
