"""The Telegram control's rules, and its wire shapes checked against python-telegram-bot.

python-telegram-bot (the real client library) parses the updates the local fake hands out
— so the fields the control reads are where Telegram puts them — and its ``Bot`` methods name
the parameters our requests carry. The control itself is fed updates directly: no network,
no sleeps."""

from __future__ import annotations

import inspect
import time
from typing import Any

import pytest

telegram = pytest.importorskip("telegram", reason="python-telegram-bot (a dev dependency)")

from solbot.control.commands import Commands  # noqa: E402
from solbot.control.telegram import STALE_SECONDS, TelegramControl  # noqa: E402
from tests.fake_telegram import FakeTelegram  # noqa: E402

CHAT, USER, OTHER, STRANGER = 5001, 42, 43, 666


class StubView:
    """The control verbs of a BotView, recorded (the answers' snapshots are the integration
    test's: a real bot)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def record(self, kind: str, detail: Any) -> None:
        self.calls.append((kind, dict(detail)))

    def pause(self) -> None:
        self.calls.append(("pause", None))

    def resume(self) -> None:
        self.calls.append(("resume", None))

    def kill(self, reason: str) -> str:
        self.calls.append(("kill", reason))
        return reason

    def flatten(self, reason: str) -> list[str]:
        self.calls.append(("flatten", reason))
        return ["SOL/USDT"]


def control() -> tuple[TelegramControl, StubView]:
    view = StubView()
    tc = TelegramControl(Commands(view), "1:x", "http://127.0.0.1:9", frozenset({CHAT}),  # type: ignore[arg-type]
                         frozenset({USER, OTHER}))  # fmt: skip
    return tc, view


def updates_of(fake: FakeTelegram) -> list[dict[str, Any]]:
    return fake._updates({"timeout": 0})


@pytest.fixture
def fake() -> Any:
    f = FakeTelegram()
    yield f
    f.close()


def test_the_fakes_updates_parse_with_python_telegram_bot_where_the_control_reads_them(fake):
    fake.message(CHAT, USER, "/kill now")
    fake.press(CHAT, USER, "yes:abcd1234", 777)
    msg, press = updates_of(fake)
    u = telegram.Update.de_json(msg, None)
    assert u.update_id == msg["update_id"] and u.message is not None
    assert u.message.chat.id == msg["message"]["chat"]["id"] == CHAT
    assert u.message.from_user.id == msg["message"]["from"]["id"] == USER
    assert u.message.text == "/kill now" and u.message.date.timestamp() == msg["message"]["date"]
    assert u.message.entities[0].type == "bot_command"
    q = telegram.Update.de_json(press, None).callback_query
    assert q is not None and q.data == press["callback_query"]["data"]
    assert q.from_user.id == USER and q.message.message_id == 777 and q.message.chat.id == CHAT


def test_what_the_control_sends_is_what_python_telegram_bots_methods_take():
    tc, _ = control()
    tc._take({"update_id": 1, "message": _msg(USER, "/kill")})
    method, payload = tc.outbox[-1]
    assert method == "sendMessage"
    markup = telegram.InlineKeyboardMarkup.de_json(payload["reply_markup"], None)
    buttons = [b for row in markup.inline_keyboard for b in row]
    assert [b.text for b in buttons] == ["Yes, kill", "No"]
    assert all(1 <= len(b.callback_data.encode()) <= 64 for b in buttons)  # Bot API: 1-64 bytes
    assert 1 <= len(payload["text"]) <= 4096
    takes = {
        "sendMessage": telegram.Bot.send_message,
        "editMessageText": telegram.Bot.edit_message_text,
        "answerCallbackQuery": telegram.Bot.answer_callback_query,
        "getUpdates": telegram.Bot.get_updates,
    }
    tc._take({"update_id": 2, "callback_query": _press(USER, buttons[1].callback_data)})
    for method, payload in [*tc.outbox, ("getUpdates", tc.poll_request())]:
        params = inspect.signature(takes[method]).parameters
        assert set(payload) <= set(params), (method, set(payload) - set(params))


def _msg(user: int, text: str, chat: int = CHAT, date: float | None = None) -> dict[str, Any]:
    return {"message_id": 9, "from": {"id": user, "is_bot": False, "first_name": "u"},
            "chat": {"id": chat, "type": "private"}, "date": int(date or time.time()),
            "text": text}  # fmt: skip


def _press(user: int, data: str, chat: int = CHAT) -> dict[str, Any]:
    message = {"message_id": 10, "chat": {"id": chat, "type": "private"}, "date": 0}
    return {"id": "cq1", "from": {"id": user, "is_bot": False, "first_name": "u"},
            "chat_instance": "1", "data": data, "message": message}  # fmt: skip


def _yes(tc: TelegramControl) -> str:
    payload = next(p for m, p in reversed(tc.outbox) if "reply_markup" in p)
    return str(payload["reply_markup"]["inline_keyboard"][0][0]["callback_data"])


def test_only_an_allow_listed_person_in_an_allow_listed_chat_is_obeyed_or_answered():
    tc, view = control()
    tc._take({"update_id": 1, "message": _msg(STRANGER, "/pause")})
    tc._take({"update_id": 2, "message": _msg(USER, "/pause", chat=7007)})
    tc._take({"update_id": 3, "message": {**_msg(USER, "/pause"), "from": None}})
    assert not view.calls and not tc.outbox and tc.ignored == 3
    assert tc.offset == 4  # taken (confirmed at the next poll), not done
    tc._take({"update_id": 4, "message": _msg(USER, "/pause")})
    assert ("pause", None) in view.calls and tc.outbox[-1][1]["chat_id"] == CHAT
    assert view.calls[0] == ("command", {"verb": "pause", "via": "telegram", "who": "42"})


def test_a_kill_acts_only_on_the_askers_yes_within_the_minute():
    tc, view = control()
    tc._take({"update_id": 1, "message": _msg(USER, "/kill market looks wrong")})
    assert not [c for c in view.calls if c[0] == "kill"]
    yes = _yes(tc)
    tc._take({"update_id": 2, "callback_query": _press(OTHER, yes)})  # allow-listed, not asker
    tc._take({"update_id": 3, "callback_query": _press(STRANGER, yes)})
    assert not [c for c in view.calls if c[0] == "kill"]
    tc._take({"update_id": 4, "callback_query": _press(USER, yes)})
    assert ("kill", "market looks wrong") in view.calls
    assert (
        tc.outbox[-1][0] == "editMessageText" and "Kill switch engaged" in tc.outbox[-1][1]["text"]
    )
    tc._take({"update_id": 5, "callback_query": _press(USER, yes)})  # once only
    assert len([c for c in view.calls if c[0] == "kill"]) == 1

    tc._take({"update_id": 6, "message": _msg(USER, "/flatten")})
    for p in tc.pending.values():
        p.until = time.monotonic() - 1  # the minute passed
    tc._take({"update_id": 7, "callback_query": _press(USER, _yes(tc))})
    assert not [c for c in view.calls if c[0] == "flatten"]
    assert "expired" in tc.outbox[-1][1]["text"]


def test_a_command_sent_while_the_bot_was_down_is_not_carried_out():
    tc, view = control()
    old = tc.started - STALE_SECONDS - 60
    tc._take({"update_id": 1, "message": _msg(USER, "/pause", date=old)})
    assert not [c for c in view.calls if c[0] == "pause"]
    assert "while the bot was down: not carried out" in tc.outbox[-1][1]["text"]
