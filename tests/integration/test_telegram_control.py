"""Control from Telegram, end to end: a real ``solbot run`` (paper, the default strategy on
the synthetic market) polls a local fake of the Telegram Bot API (``tests/fake_telegram.py``,
shaped as the Bot API documents and checked against python-telegram-bot's parser).

* every command is answered, in the allow-listed chat only; a person not on the allow-list
  changes nothing and gets nothing; every command is in the audit log with who sent it;
* destructive verbs ask first and act only on the asker's yes; ``/kill`` -> exit 10, nothing
  resting, the flag written (a restart refuses);
* a Telegram that is down or answers 429 never delays trading, the kill switch or the stop.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_telegram import FakeTelegram
from tests.integration.botproc import Bot, db_rows

pytestmark = pytest.mark.integration

CHAT, USER, OTHER_USER, STRANGER, OTHER_CHAT = 5001, 42, 43, 666, 7007


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    fake = FakeTelegram()
    try:
        yield fake
    finally:
        fake.close()


def telegram_bot(home: Path, fake: FakeTelegram, **env: str) -> Bot:
    return Bot(
        home,
        env={
            "SOLBOT_TELEGRAM_BOT_TOKEN": fake.token,
            "SOLBOT_TELEGRAM_API_URL": fake.url,
            "SOLBOT_TELEGRAM_CHAT_IDS": f"{CHAT}",
            "SOLBOT_TELEGRAM_USER_IDS": f"{USER},{OTHER_USER}",
            **env,
        },
        speed=40.0,
    )


def ask(fake: FakeTelegram, text: str, user: int = USER, chat: int = CHAT) -> str:
    """Send ``text``; the bot's answer in ``chat``."""
    before = len(fake.messages(CHAT))
    fake.message(chat, user, text)
    return _answer(fake, before)


def _answer(fake: FakeTelegram, before: int, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fake.messages(CHAT)
        if len(got) > before:
            return str(got[before]["text"])
        time.sleep(0.02)
    raise AssertionError(f"no answer in {timeout} s; sent: {fake.sent}")


def held(bot: Bot) -> bool:
    return any(p["qty"] != "0" for p in bot.get("/api/account").json()["positions"])


def test_every_command_is_answered_and_only_the_allow_listed_are_obeyed(
    tmp_path: Path, telegram: FakeTelegram
) -> None:
    bot = telegram_bot(tmp_path, telegram)
    try:
        bot.wait_ready()
        bot.wait_until(lambda: bot.get("/api/status").json()["bars_processed"] > 5, what="bars")
        assert "SOL/USDT 1h, paper on synthetic — ACTIVE" in ask(telegram, "/status")
        account = ask(telegram, "/account")
        assert account.startswith("equity ") and " USDT; today " in account, account
        orders = ask(telegram, "/orders")
        assert orders == "no open orders" or "SOL/USDT sb-" in orders
        trades = ask(telegram, "/trades")
        assert trades == "no trades yet" or " SOL/USDT " in trades
        daily = ask(telegram, "/daily")
        assert daily[:4].isdigit() and "%" in daily, daily  # 2022-01-01: +0.00 (+0.00 %)
        helped = ask(telegram, "/help")
        for verb in ("status", "account", "orders", "trades", "daily", "pause", "resume",
                     "flatten", "kill", "help"):  # fmt: skip
            assert f"/{verb} — " in helped
        assert "Unknown command /nonsense" in ask(telegram, "/nonsense@solbot_bot")

        # not on the allow-list: in the right chat, or the right person in another chat
        sent = len(telegram.sent)
        telegram.message(CHAT, STRANGER, "/pause")
        telegram.message(OTHER_CHAT, USER, "/pause")
        telegram.message(CHAT, STRANGER, "/kill")
        ask(telegram, "/status")  # updates are taken in order: the three above are behind us
        assert len(telegram.sent) == sent + 1  # the /status answer, nothing for the others
        assert not bot.get("/api/status").json()["paused"]
        assert bot.proc.poll() is None

        assert ask(telegram, "/pause").startswith("Paused")
        assert bot.get("/api/status").json()["paused"] is True
        assert ask(telegram, "/resume").startswith("Resumed")
        assert bot.get("/api/status").json()["paused"] is False

        # a destructive verb asks; only the asker's yes acts; a no does nothing
        question = ask(telegram, "/flatten")
        assert question.startswith("Flatten?")
        asked = telegram.messages(CHAT)[-1]
        buttons = asked["reply_markup"]["inline_keyboard"][0]
        yes, no = buttons[0]["callback_data"], buttons[1]["callback_data"]
        mid = int(asked["_message_id"])
        before = len(telegram.messages(CHAT))
        telegram.press(CHAT, OTHER_USER, yes, mid)  # allow-listed, but not the asker
        assert "expired" in _answer(telegram, before)
        assert bot.get("/api/status").json()["paused"] is False
        before = len(telegram.messages(CHAT))
        telegram.press(CHAT, USER, no, mid)
        assert _answer(telegram, before) == "/flatten not done."
        assert bot.get("/api/status").json()["paused"] is False
        # with a position held (the default strategy's, with its OCO resting): a position
        # can end by its own exit between the question and the yes, so up to 5 tries
        for _ in range(5):
            bot.wait_until(lambda: held(bot), timeout=30.0, what="a position")
            ask(telegram, "/flatten")
            asked = telegram.messages(CHAT)[-1]
            yes = asked["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            before = len(telegram.messages(CHAT))
            telegram.press(CHAT, USER, yes, int(asked["_message_id"]))
            done = _answer(telegram, before)
            assert done.startswith("Flattened: orders cancelled, sold"), done
            assert bot.get("/api/status").json()["paused"] is True
            if "sold SOL/USDT" in done:
                break
            ask(telegram, "/resume")
        assert "sold SOL/USDT" in done
        bot.wait_until(lambda: not held(bot), timeout=5.0, what="no position")
        assert bot.open_orders() == []

        # /kill: asked, then confirmed -> exit 10 with nothing resting
        assert ask(telegram, "/kill from the phone").startswith("Engage the kill switch?")
        asked = telegram.messages(CHAT)[-1]
        yes = asked["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        telegram.press(CHAT, USER, yes, int(asked["_message_id"]))
        assert bot.wait_exit(10) == 10
        print("\n" + "\n".join(f"-> {b.get('text')}" for b in telegram.messages(CHAT)))
    finally:
        bot.kill_hard()
    assert (tmp_path / "data" / "kill-switch.flag").exists()
    resting = "('initialized', 'submitted', 'accepted', 'partially_filled')"
    assert not db_rows(tmp_path, f"select order_id from orders where status in {resting}")
    commands = [json.loads(d) for (d,) in db_rows(
        tmp_path, "select detail from audit_log where kind = 'command'")]  # fmt: skip
    verbs = [(c["verb"], c["via"], c["who"]) for c in commands]
    assert ("kill", "telegram", str(USER)) in verbs and ("pause", "telegram", str(USER)) in verbs
    assert all(
        c["via"] == "telegram" and c["who"] in (str(USER), str(OTHER_USER)) for c in commands
    )  # fmt: skip  (the strangers' never reached the commands)
    kills = db_rows(tmp_path, "select detail from audit_log where kind = 'kill'")
    assert "from the phone" in kills[0][0]


@pytest.mark.parametrize("mode", ["down", "flood"])
def test_a_telegram_that_is_down_or_flooding_never_delays_trading_the_kill_or_the_stop(
    tmp_path: Path, telegram: FakeTelegram, mode: str
) -> None:
    telegram.mode = mode
    telegram.retry_after = 5
    results = {}
    for how in ("kill", "sigterm"):
        home = tmp_path / how
        home.mkdir()
        bot = telegram_bot(home, telegram, SOLBOT_TELEGRAM_ALERTS="P0,P1,P2,P3")
        try:
            bot.wait_ready()
            t0 = time.monotonic()
            first = bot.get("/api/status").json()["bars_processed"]
            time.sleep(3.0)
            bars = bot.get("/api/status").json()["bars_processed"] - first
            rate = bars / (time.monotonic() - t0)
            t1 = time.monotonic()
            if how == "kill":
                (home / "data" / "kill-switch.flag").write_text("itest\n")
                code = bot.wait_exit(10)
            else:
                bot.signal(signal.SIGTERM)
                code = bot.wait_exit(10)
            took = time.monotonic() - t1
        finally:
            bot.kill_hard()
        results[how] = (code, rate, took)
        assert code == (10 if how == "kill" else 0), bot.output()[-2000:]
        assert rate > 40.0 * 0.8, (how, rate)  # the market's pace (40 bars/s), not held
        assert took < (1.0 if how == "kill" else 2.0), (how, took)
    assert telegram.requests > 0  # it was asked, and failed
    print(f"\ntelegram {mode}: {results}")
