"""Control from Telegram: the command layer (``control.commands``) over the Telegram Bot API.

What this relies on, from the Bot API's documentation (core.telegram.org/bots/api):

* "Making requests": every method is ``POST <base>/bot<token>/<method>`` with a JSON body;
  the answer is a JSON object whose ``ok`` says whether it worked, with ``result`` when it
  did, else ``description`` and ``error_code``, and optionally ``parameters``
  (``ResponseParameters``: ``retry_after``, the seconds to wait after a 429 flood limit).
* "getUpdates": long polling with ``offset`` (one more than the highest ``update_id`` seen:
  that confirms everything before it), ``timeout`` (seconds the server may hold the request)
  and ``allowed_updates`` (here ``message`` and ``callback_query``). It fails with 409 while
  a webhook is set or another poller is running.
* "Update": ``update_id`` and at most one of ``message`` / ``callback_query``; "Message":
  ``message_id``, ``from`` (a ``User`` with ``id``), ``chat`` (``id``), ``date`` (Unix
  seconds), ``text``; "CallbackQuery": ``id``, ``from``, ``message``, ``data``.
* "sendMessage" (``chat_id``, ``text`` of 1-4096 characters, ``reply_markup``: an
  ``InlineKeyboardMarkup`` of rows of ``InlineKeyboardButton``\\ s with ``text`` and
  ``callback_data`` of 1-64 bytes), "answerCallbackQuery" (``callback_query_id``, ``text``)
  and "editMessageText" (``chat_id``, ``message_id``, ``text``: the question replaced by
  what was done, its buttons gone).

Only messages whose chat *and* sender are both allow-listed are answered; anything else gets
nothing and is logged (ids only). A destructive verb is asked first with two buttons; the
yes is honoured only from the person who asked, within ``CONFIRM_SECONDS``. Commands sent
while the bot was down (older than ``STALE_SECONDS``) are not carried out: they are
answered as such. Receiving and sending are separate tasks with their own bounds, so an
unreachable or flooding Telegram never holds trading, the kill switch or the shutdown: the
poller backs off (1 s doubling to 30 s, or the ``retry_after`` given), the sender keeps at
most ``QUEUE_MAX`` messages and drops the oldest. The token (in every URL) never reaches a
log line: errors are logged by method and status only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from solbot.control.commands import Caller, Commands, Reply

log = logging.getLogger(__name__)

POLL_SECONDS = 25  # getUpdates' long-poll timeout
CONFIRM_SECONDS = 60.0
STALE_SECONDS = 120.0
QUEUE_MAX = 200
BACKOFF_MAX = 30.0
TEXT_MAX = 4096


class TelegramError(Exception):
    """A Bot API call that did not work: its method, status and ``retry_after``."""

    def __init__(self, method: str, status: int, description: str, retry_after: float | None):
        super().__init__(f"{method}: {status} {description[:120]}")
        self.status, self.retry_after = status, retry_after


@dataclass(slots=True)
class _Pending:
    verb: str
    text: str  # the command as sent (its arguments: a kill reason)
    user: int
    chat: int
    until: float


class TelegramControl:
    name = "telegram"

    def __init__(
        self,
        commands: Commands,
        token: str,
        api_url: str,
        chats: frozenset[int],
        users: frozenset[int],
        alert_severities: frozenset[str] = frozenset({"P0", "P1"}),
        poll_seconds: int = POLL_SECONDS,
    ) -> None:
        self.commands = commands
        self._base = f"{api_url.rstrip('/')}/bot{token}/"
        self.chats, self.users = chats, users
        self.alert_severities = alert_severities
        self.poll_seconds = poll_seconds
        self.offset: int | None = None
        self.pending: dict[str, _Pending] = {}
        self.outbox: deque[tuple[str, dict[str, Any]]] = deque(maxlen=QUEUE_MAX)
        self._wake = asyncio.Event()
        self._client: httpx.AsyncClient | None = None
        self._sender: asyncio.Task[None] | None = None
        self.received = self.ignored = self.sent = self.failed = 0
        self.reachable = False  # the last request was answered ok
        self.started = time.time()

    # ---------------------------------------------------------------- requests
    async def call(self, method: str, payload: Mapping[str, Any], timeout: float = 10.0) -> Any:
        """One Bot API method; its ``result``, or ``TelegramError`` (network errors too)."""
        assert self._client is not None
        try:
            r = await self._client.post(self._base + method, json=dict(payload), timeout=timeout)
        except httpx.HTTPError as exc:  # the URL holds the token: never str(exc)
            self.reachable = False
            raise TelegramError(method, 0, type(exc).__name__, None) from None
        self.reachable = r.status_code == 200
        try:
            body = r.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if r.status_code == 200 and body.get("ok") is True:
            return body.get("result")
        params = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
        retry = params.get("retry_after") if params else None
        raise TelegramError(
            method,
            r.status_code,
            str(body.get("description") or r.reason_phrase),
            float(retry) if isinstance(retry, int | float) else None,
        )

    def poll_request(self) -> dict[str, Any]:
        """The next ``getUpdates``: everything after what was taken, held up to the poll."""
        return {
            "offset": self.offset,
            "timeout": self.poll_seconds,
            "allowed_updates": ["message", "callback_query"],
        }

    def post(self, method: str, payload: dict[str, Any]) -> None:
        """Queue a message (never blocks; a full queue drops the oldest)."""
        if len(self.outbox) == self.outbox.maxlen:
            self.failed += 1
        self.outbox.append((method, payload))
        self._wake.set()

    def say(self, chat: int, text: str, markup: dict[str, Any] | None = None) -> None:
        payload: dict[str, Any] = {"chat_id": chat, "text": text[:TEXT_MAX] or "-"}
        if markup is not None:
            payload["reply_markup"] = markup
        self.post("sendMessage", payload)

    def alert(self, severity: str, title: str, text: str) -> None:
        """An alert to every allow-listed chat, if its severity is one of ours."""
        if severity in self.alert_severities:
            for chat in sorted(self.chats):
                self.say(chat, f"[{severity}] {title}\n{text}")

    # ---------------------------------------------------------------- running
    async def run(self) -> None:
        """Poll until cancelled; never raises anything else."""
        self._client = httpx.AsyncClient()
        self._sender = asyncio.create_task(self._send_loop(), name="telegram-send")
        backoff = 1.0
        try:
            while True:
                try:
                    updates = await self.call(
                        "getUpdates", self.poll_request(), timeout=self.poll_seconds + 10.0
                    )
                    backoff = 1.0
                except TelegramError as exc:
                    wait = exc.retry_after if exc.retry_after is not None else backoff
                    backoff = min(BACKOFF_MAX, backoff * 2)
                    log.warning("telegram %s; polling again in %.0f s", exc, wait)
                    await asyncio.sleep(wait)
                    continue
                for update in updates if isinstance(updates, list) else []:
                    self._take(update)
        finally:
            await self._close()

    async def stop(self, timeout: float) -> None:
        """Give the queued messages (a kill's answer) up to ``timeout`` seconds — only while
        Telegram answers: an unreachable or flooding API is not waited for (the alerts also
        go to Discord, whose notifier keeps what it could not send for the next start)."""
        deadline = time.monotonic() + timeout
        while self.outbox and self.reachable and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def _close(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sender
        if self._client is not None:
            await self._client.aclose()

    async def _send_loop(self) -> None:
        while True:
            if not self.outbox:
                self._wake.clear()
                await self._wake.wait()
                continue
            method, payload = self.outbox[0]
            try:
                await self.call(method, payload)
                self.sent += 1
            except TelegramError as exc:
                if exc.retry_after is not None:  # 429: the same message again, later
                    await asyncio.sleep(exc.retry_after)
                    continue
                self.failed += 1
                log.warning("telegram %s; message dropped", exc)
                if exc.status == 0:  # unreachable: do not spin
                    await asyncio.sleep(1.0)
            if self.outbox and self.outbox[0] == (method, payload):
                self.outbox.popleft()

    # ---------------------------------------------------------------- updates
    def _take(self, update: Any) -> None:
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            return
        self.offset = update["update_id"] + 1
        self.received += 1
        try:
            if isinstance(update.get("message"), dict):
                self._message(update["message"])
            elif isinstance(update.get("callback_query"), dict):
                self._callback(update["callback_query"])
        except Exception:  # a command that failed must not stop the poller
            log.exception("telegram: update %s failed", update.get("update_id"))

    def _allowed(self, chat: int | None, user: int | None) -> bool:
        if chat in self.chats and user in self.users:
            return True
        self.ignored += 1
        log.warning("telegram: ignored an update from user %s in chat %s (not allow-listed)",
                    user, chat)  # fmt: skip
        return False

    def _message(self, m: dict[str, Any]) -> None:
        chat = (m.get("chat") or {}).get("id")
        user = (m.get("from") or {}).get("id")
        text = m.get("text")
        if not isinstance(text, str) or not self._allowed(chat, user):
            return
        assert isinstance(chat, int) and isinstance(user, int)
        verb, _ = Commands.parse(text)
        if not verb:
            return  # chatter, not a command
        age = time.time() - float(m.get("date") or 0)
        if age > STALE_SECONDS and float(m.get("date") or 0) < self.started:
            self.say(chat, f"/{verb} was sent {age:.0f} s ago, while the bot was down: not "
                           "carried out. Send it again if it still holds.")  # fmt: skip
            return
        reply = self.commands.run(text, Caller("telegram", str(user)))
        if reply.confirm is None:
            self.say(chat, reply.text)
            return
        nonce = secrets.token_hex(4)
        self.pending = {k: p for k, p in self.pending.items() if p.until > time.monotonic()}
        self.pending[nonce] = _Pending(
            reply.confirm, text, user, chat, time.monotonic() + CONFIRM_SECONDS
        )
        buttons = [[
            {"text": f"Yes, {reply.confirm}", "callback_data": f"yes:{nonce}"},
            {"text": "No", "callback_data": f"no:{nonce}"},
        ]]  # fmt: skip
        self.say(chat, reply.text, {"inline_keyboard": buttons})

    def _callback(self, q: dict[str, Any]) -> None:
        user = (q.get("from") or {}).get("id")
        raw = q.get("message")
        message: dict[str, Any] = raw if isinstance(raw, dict) else {}
        chat = (message.get("chat") or {}).get("id")
        if not self._allowed(chat, user):
            return
        answer, _, nonce = str(q.get("data") or "").partition(":")
        p = self.pending.pop(nonce, None)
        self.post("answerCallbackQuery", {"callback_query_id": q.get("id")})
        if p is None or p.user != user or p.chat != chat or p.until < time.monotonic():
            if p is not None and p.user != user:
                self.pending[nonce] = p  # not theirs to answer
            done = Reply("That question has expired; send the command again.")
        elif answer == "yes":
            done = self.commands.run(p.text, Caller("telegram", str(user)), confirmed=True)
        else:
            done = Reply(f"/{p.verb} not done.")
        if isinstance(chat, int):
            mid = message.get("message_id")
            if isinstance(mid, int):
                self.post(
                    "editMessageText", {"chat_id": chat, "message_id": mid, "text": done.text}
                )
            else:
                self.say(chat, done.text)
