"""``/kill`` from the phone to the process's exit: Telegram over a local fake of the Bot API,
or Discord through the bot's interactions endpoint.

Each run starts a paper bot (ladder, so orders rest on the book) and waits for a resting
order. Telegram: the bot polls the fake (``tests/fake_telegram.py``); ``/kill`` is sent from
an allow-listed person and the confirmation's "Yes" pressed; timed from the moment the fake
hands that press to the bot (its ``getUpdates`` answer) to the process's exit (a blocking
waitpid). Discord (``--via discord``): ``/kill`` and its "Yes" are POSTed to
``/api/discord/interactions`` signed as Discord signs them (Ed25519); timed from sending the
"Yes" to the exit. Each run must end with exit 10 and no open order in the database. The
target is the kill switch's: p99 < 1 s.

Usage: python bench/telegram_kill.py [--runs N] [--via telegram|discord]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.service_latency import exit_time, open_in_db  # noqa: E402
from tests.fake_telegram import FakeTelegram  # noqa: E402
from tests.integration.botproc import Bot  # noqa: E402

CHAT, USER = 5001, 42


Run = tuple[float, float, int, int]  # (s to exit, s to the question, exit code, open left)


def with_resting_order(env: dict[str, str], kill: Callable[[Bot], tuple[float, float, int]]) -> Run:
    """A paper bot (ladder, 40 bars/s) in a fresh home, with an order resting; ``kill`` it
    through a chat: (s to exit, s to the question, exit code); and the orders left open."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        bot = Bot(home, env={"SOLBOT_STRATEGY": "ladder", **env}, speed=40)
        try:
            bot.wait_ready()
            bot.wait_until(bot.open_orders, what="a resting order")
            elapsed, t_question, code = kill(bot)
        finally:
            bot.kill_hard()
        return elapsed, t_question, code, open_in_db(home)


def one_run(fake: FakeTelegram) -> Run:
    """Telegram: from the yes reaching the bot (its getUpdates answer) to the exit."""
    env = {
        "SOLBOT_TELEGRAM_BOT_TOKEN": fake.token,
        "SOLBOT_TELEGRAM_API_URL": fake.url,
        "SOLBOT_TELEGRAM_CHAT_IDS": str(CHAT),
        "SOLBOT_TELEGRAM_USER_IDS": str(USER),
    }

    def kill(bot: Bot) -> tuple[float, float, int]:
        before = len(fake.messages(CHAT))
        t_ask = time.perf_counter()
        fake.message(CHAT, USER, "/kill bench")
        asked = bot.wait_until(
            lambda: [m for m in fake.messages(CHAT)[before:] if "reply_markup" in m],
            what="the question",
        )[0]
        t_question = time.perf_counter() - t_ask
        yes = asked["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        uid = fake.press(CHAT, USER, yes, int(asked["_message_id"]))
        while uid not in fake.handed:  # until the bot's long poll takes it
            time.sleep(0.0005)
        handed = fake.handed[uid]
        code, _ = exit_time(bot, time.perf_counter())
        return time.monotonic() - handed, t_question, code

    return with_resting_order(env, kill)


def discord_run() -> Run:
    """Discord: from sending the signed yes to the exit."""
    import json

    import httpx
    from nacl.signing import SigningKey

    key = SigningKey(bytes(range(32)))

    def post(bot: Bot, interaction: dict[str, object]) -> dict[str, object]:
        body = json.dumps(interaction).encode()
        ts = str(int(time.time()))
        headers = {"X-Signature-Ed25519": key.sign(ts.encode() + body).signature.hex(),
                   "X-Signature-Timestamp": ts, "Content-Type": "application/json"}  # fmt: skip
        r = httpx.post(bot.url + "/api/discord/interactions", content=body, headers=headers)
        return dict(r.json())

    who = {"channel_id": str(CHAT), "member": {"user": {"id": str(USER)}}, "token": "t"}
    env = {
        "SOLBOT_DISCORD_PUBLIC_KEY": key.verify_key.encode().hex(),
        "SOLBOT_DISCORD_CHANNEL_IDS": str(CHAT),
        "SOLBOT_DISCORD_USER_IDS": str(USER),
    }

    def kill(bot: Bot) -> tuple[float, float, int]:
        t_ask = time.perf_counter()
        asked = post(bot, {"type": 2, "id": "1", **who, "data": {"name": "kill", "options": []}})
        t_question = time.perf_counter() - t_ask
        data = asked["data"]
        assert isinstance(data, dict)
        yes = data["components"][0]["components"][0]["custom_id"]
        t0 = time.perf_counter()
        post(bot, {"type": 3, "id": "2", **who, "data": {"custom_id": yes}})
        code, elapsed = exit_time(bot, t0)
        return elapsed, t_question, code

    return with_resting_order(env, kill)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--via", choices=("telegram", "discord"), default="telegram")
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {args.runs} runs via {args.via}"
    )
    if args.via == "discord":
        runs = [discord_run() for _ in range(args.runs)]
    else:
        fake = FakeTelegram()
        try:
            runs = [one_run(fake) for _ in range(args.runs)]
        finally:
            fake.close()
    exits = np.array([r[0] for r in runs]) * 1000
    questions = np.array([r[1] for r in runs]) * 1000
    wrong = sum(1 for r in runs if r[2] != 10 or r[3] != 0)
    p50, p99 = np.percentile(exits, 50), np.percentile(exits, 99)
    print(
        f"/kill confirmed -> exited: p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {exits.max():.0f} ms"
        f" (target p99 < 1000 ms: {'met' if p99 < 1000 else 'NOT met'})"
    )
    print(f"/kill sent -> question answered: p50 {np.percentile(questions, 50):.0f} ms, "
          f"p99 {np.percentile(questions, 99):.0f} ms")  # fmt: skip
    print(f"runs with a wrong exit code or orders left open: {wrong} / {len(runs)}")


if __name__ == "__main__":
    main()
