"""A local stand-in for the Telegram Bot API on 127.0.0.1, for tests and benchmarks.

It answers as the Bot API's documentation says (core.telegram.org/bots/api): "Making
requests" (``POST /bot<token>/<method>``, JSON in and out, ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code", "description", "parameters": {"retry_after"}}``), "getUpdates"
(long polling: held up to ``timeout`` seconds until an update comes; ``offset`` confirms and
drops every update below it), "sendMessage" / "editMessageText" (the ``Message`` sent back),
"answerCallbackQuery" (``true``); 404 for another token, as the real API answers an unknown
bot. The updates it hands out (``Update`` with ``message`` or ``callback_query``) are checked
against python-telegram-bot's own parser in ``tests/unit/control/test_telegram_shapes.py``.

A test puts updates in (``message``, ``press``), reads what the bot sent (``sent``,
``wait_sent``), and can make the API unreachable (``mode = "down"``: every request answered
502 after a short hold) or flooding (``mode = "flood"``: 429 with ``retry_after``).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeTelegram:
    def __init__(self, token: str = "123456:TEST-token") -> None:
        self.token = token
        self.updates: list[dict[str, Any]] = []
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.handed: dict[int, float] = {}  # update_id -> monotonic time it was handed out
        self.mode = "ok"  # ok | down | flood
        self.retry_after = 1
        self.requests = 0
        self.polls = 0
        self._next_update = 1
        self._next_message = 100
        self._cond = threading.Condition()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(size) or b"{}")
                status, answer = fake.answer(self.path, body)
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the bot stopped while a long poll was held

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        with self._cond:
            self._cond.notify_all()
        self.server.shutdown()
        self.server.server_close()

    # ---------------------------------------------------------------- the API
    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.requests += 1
        prefix = f"/bot{self.token}/"
        if not path.startswith(prefix):
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        method = path[len(prefix) :]
        if self.mode == "down":
            time.sleep(0.2)
            return 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
        if self.mode == "flood":
            return 429, {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {self.retry_after}",
                "parameters": {"retry_after": self.retry_after},
            }
        if method == "getUpdates":
            return 200, {"ok": True, "result": self._updates(body)}
        if method in ("sendMessage", "editMessageText"):
            with self._cond:
                self._next_message += 1
                mid = body.get("message_id", self._next_message)
                self.sent.append((method, {**body, "_message_id": mid}))
                self._cond.notify_all()
            message = {
                "message_id": mid,
                "from": {"id": 1, "is_bot": True, "first_name": "SOL-Bot"},
                "chat": {"id": body.get("chat_id"), "type": "private"},
                "date": int(time.time()),
                "text": body.get("text", ""),
            }
            return 200, {"ok": True, "result": message}
        if method == "answerCallbackQuery":
            with self._cond:
                self.sent.append((method, body))
                self._cond.notify_all()
            return 200, {"ok": True, "result": True}
        return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}

    def _updates(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        offset = body.get("offset")
        wait = min(float(body.get("timeout") or 0), 30.0)
        deadline = time.monotonic() + wait
        with self._cond:
            self.polls += 1
            if isinstance(offset, int):
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
            while not self.updates and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            out = list(self.updates[:100])
            now = time.monotonic()
            for u in out:
                self.handed.setdefault(u["update_id"], now)
            return out

    # ---------------------------------------------------------------- a test's side
    def _put(self, update: dict[str, Any]) -> int:
        with self._cond:
            uid = self._next_update
            self._next_update += 1
            self.updates.append({"update_id": uid, **update})
            self._cond.notify_all()
            return uid

    def message(self, chat: int, user: int, text: str, date: int | None = None) -> int:
        """A person's message reaches the API; its update_id."""
        with self._cond:
            self._next_message += 1
            mid = self._next_message
        return self._put(
            {
                "message": {
                    "message_id": mid,
                    "from": {"id": user, "is_bot": False, "first_name": f"user{user}"},
                    "chat": {"id": chat, "type": "private" if chat > 0 else "group"},
                    "date": int(time.time()) if date is None else date,
                    "text": text,
                    **_command_entity(text),
                }
            }
        )

    def press(self, chat: int, user: int, data: str, message_id: int) -> int:
        """A person presses an inline button under the bot's message ``message_id``."""
        return self._put(
            {
                "callback_query": {
                    "id": f"cq{self._next_update}",
                    "from": {"id": user, "is_bot": False, "first_name": f"user{user}"},
                    "chat_instance": "1",
                    "data": data,
                    "message": {
                        "message_id": message_id,
                        "from": {"id": 1, "is_bot": True, "first_name": "SOL-Bot"},
                        "chat": {"id": chat, "type": "private" if chat > 0 else "group"},
                        "date": int(time.time()),
                        "text": "?",
                    },
                }
            }
        )

    def messages(self, chat: int | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [
                b for m, b in self.sent
                if m in ("sendMessage", "editMessageText") and chat in (None, b.get("chat_id"))
            ]  # fmt: skip

    def wait_sent(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Until at least ``count`` messages were sent (bounded); all of them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while time.monotonic() < deadline:
                got = [b for m, b in self.sent if m in ("sendMessage", "editMessageText")]
                if len(got) >= count:
                    return got
                self._cond.wait(min(0.2, deadline - time.monotonic()))
        raise AssertionError(f"{count} messages not sent within {timeout} s: {self.sent}")

    def message_id_of(self, text_part: str) -> int:
        """The message_id the fake gave the bot's message containing ``text_part``."""
        with self._cond:
            for m, b in self.sent:
                if m == "sendMessage" and text_part in str(b.get("text")):
                    return int(b["_message_id"])
        raise AssertionError(f"no message with {text_part!r}")


def _command_entity(text: str) -> dict[str, Any]:
    """A command's ``MessageEntity`` of type ``bot_command``, as Telegram marks one."""
    if not text.startswith("/"):
        return {}
    head = text.split(maxsplit=1)[0]
    return {"entities": [{"type": "bot_command", "offset": 0, "length": len(head)}]}
