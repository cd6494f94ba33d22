"""Discord notifier against a local webhook receiver over real HTTP."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from pydantic import SecretStr

from solbot.infra.notify import DESC_MAX, Notifier
from tests.integration.botproc import solbot_cmd
from tests.integration.receiver import Receiver

pytestmark = pytest.mark.integration


def test_honours_429_retry_after_then_delivers():
    with Receiver(rate_limit_first=2, retry_after=0.15) as rx:

        async def go() -> Notifier:
            n = Notifier(SecretStr(rx.url))
            n.start()
            n.send("P1", "Daily loss limit", "halted")
            await n.drain(timeout=10)
            return n

        n = asyncio.run(go())
    assert n.sent == 1 and len(rx.messages) == 1
    assert len(rx.times) == 3 and rx.times[2] - rx.times[1] >= 0.14
    embed = rx.messages[0]["embeds"][0]
    assert embed["title"] == "[P1] Daily loss limit" and embed["color"] == 0xF76B15


def test_payload_limits_and_secret_redaction():
    with Receiver() as rx:

        async def go() -> None:
            n = Notifier(SecretStr(rx.url), secrets=["hunter2-password"])
            n.start()
            n.send("P0", "T" * 400, "x" * 5000 + " hunter2-password")
            n.send("P3", "second", "ok")
            await n.drain(timeout=10)

        asyncio.run(go())
    first, second = rx.messages
    embed = first["embeds"][0]
    assert len(embed["title"]) == 256 and len(embed["description"]) == DESC_MAX
    assert first["allowed_mentions"] == {"parse": []}
    assert second["embeds"][0]["title"] == "[P3] second"


def test_send_never_blocks_when_discord_is_down():
    async def go() -> tuple[float, Notifier]:
        n = Notifier(SecretStr("http://127.0.0.1:9/api/webhooks/1/x"), max_attempts=1)
        n.start()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i in range(2000):
            n.send("P3", "fill", str(i))
        return loop.time() - t0, n

    elapsed, n = asyncio.run(go())
    assert elapsed < 0.5 and n.dropped == 2000 - 1000


def test_notify_test_command(tmp_path):
    with Receiver() as rx:
        r = subprocess.run(
            solbot_cmd("notify", "test", "--home", str(tmp_path)),
            env={"SOLBOT_DISCORD_WEBHOOK_URL": rx.url, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert r.returncode == 0, r.stderr
    assert rx.messages[0]["embeds"][0]["title"] == "[P3] Test notification"


def test_notify_send_command_for_pipelines(tmp_path):
    env = {"SOLBOT_DISCORD_WEBHOOK_URL": "", "PATH": "/usr/bin:/bin"}
    with Receiver() as rx:
        env["SOLBOT_DISCORD_WEBHOOK_URL"] = rx.url
        r = subprocess.run(
            solbot_cmd(
                "notify",
                "send",
                "--home",
                str(tmp_path),
                "--severity",
                "P1",
                "--title",
                "Deploy production: FAILED",
                "--message",
                "OPS-009 failed",
            ),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        bad = subprocess.run(
            solbot_cmd(
                "notify", "send", "--home", str(tmp_path), "--severity", "P9", "--title", "x"
            ),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert r.returncode == 0, r.stderr
    embed = rx.messages[0]["embeds"][0]
    assert embed["title"] == "[P1] Deploy production: FAILED"
    assert "OPS-009 failed" in embed["description"]
    assert bad.returncode == 2 and len(rx.messages) == 1


def test_a_stop_waits_briefly_for_an_unreachable_webhook_and_the_next_start_sends_the_rest(
    tmp_path,
):
    """A webhook that accepts the connection and never answers held every stop 2 s (kill
    target 1 s). Now drain gives up at its bound, keeps what did not go in the outbox, and the
    next start sends it first, marked delayed; the outbox is gone once all of it went."""
    import socket
    import time

    outbox = tmp_path / "data" / "notify-outbox.jsonl"
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)  # never accepted: the request hangs
    url = f"http://127.0.0.1:{hole.getsockname()[1]}/api/webhooks/1/x"
    try:

        async def stop() -> float:
            n = Notifier(SecretStr(url), outbox=outbox)
            n.start()
            n.send("P0", "Kill switch engaged", "flag")
            n.send("P2", "Bot stopped", "kill")
            await asyncio.sleep(0.05)  # the first is on its way
            t0 = time.monotonic()
            await n.drain(timeout=0.3)
            return time.monotonic() - t0

        took = asyncio.run(stop())
    finally:
        hole.close()
    assert took < 1.0
    kept = outbox.read_text().splitlines()
    assert len(kept) == 2 and "Kill switch engaged" in kept[0]
    with Receiver() as rx:

        async def start() -> None:
            n = Notifier(SecretStr(rx.url), outbox=outbox)
            n.start()
            n.send("P2", "Bot started", "again")
            await n.drain(timeout=10)

        asyncio.run(start())
    titles = [m["embeds"][0]["title"] for m in rx.messages]
    assert titles == [
        "[P0] (delayed) Kill switch engaged",
        "[P2] (delayed) Bot stopped",
        "[P2] Bot started",
    ]
    assert "(sent " in rx.messages[0]["embeds"][0]["description"]
    assert not outbox.exists()
