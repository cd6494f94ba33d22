"""Control from Discord, end to end: a real ``solbot run`` (paper, the default strategy)
serves the interactions endpoint; a local client signs each request with the application's
Ed25519 key as Discord does ("Security and Authorization"), and a local server stands in for
Discord's REST API when the slash commands are registered."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.botproc import Bot, db_rows, run_solbot

nacl_signing = pytest.importorskip("nacl.signing")
pytestmark = pytest.mark.integration

USER, STRANGER, CHANNEL = 111, 666, 999
KEY = nacl_signing.SigningKey(bytes(range(32)))


def post(bot: Bot, interaction: dict[str, Any], key: Any = KEY) -> httpx.Response:
    body = json.dumps(interaction).encode()
    ts = str(int(time.time()))
    headers = {
        "X-Signature-Ed25519": key.sign(ts.encode() + body).signature.hex(),
        "X-Signature-Timestamp": ts,
        "Content-Type": "application/json",
    }
    return httpx.post(bot.url + "/api/discord/interactions", content=body, headers=headers)


def command(name: str, user: int = USER, **opts: str) -> dict[str, Any]:
    options = [{"name": k, "type": 3, "value": v} for k, v in opts.items()]
    return {"type": 2, "id": "1", "token": "t", "channel_id": str(CHANNEL),
            "member": {"user": {"id": str(user)}},
            "data": {"name": name, "type": 1, "options": options}}  # fmt: skip


def test_slash_commands_answer_a_forged_request_is_refused_and_kill_exits_10(
    tmp_path: Path,
) -> None:
    env = {
        "SOLBOT_DISCORD_PUBLIC_KEY": KEY.verify_key.encode().hex(),
        "SOLBOT_DISCORD_CHANNEL_IDS": str(CHANNEL),
        "SOLBOT_DISCORD_USER_IDS": str(USER),
    }
    bot = Bot(tmp_path, env=env)
    try:
        bot.wait_ready()
        assert post(bot, {"type": 1}).json() == {"type": 1}  # Discord's PING when the URL is set
        status = post(bot, command("status")).json()
        assert (
            status["type"] == 4 and "SOL/USDT 1h, paper on synthetic" in status["data"]["content"]
        )
        answers = {name: post(bot, command(name)).json()["data"]["content"]
                   for name in ("account", "orders", "trades", "daily", "help")}  # fmt: skip
        assert answers["account"].startswith("equity ")
        assert answers["orders"] == "no open orders" or " sb-" in answers["orders"]
        assert answers["trades"] == "no trades yet" or " SOL/USDT " in answers["trades"]
        assert "%" in answers["daily"] and "/kill — " in answers["help"]
        forger = nacl_signing.SigningKey(bytes(range(5, 37)))
        forged = post(bot, command("pause"), key=forger)
        assert forged.status_code == 401
        stranger = post(bot, command("pause", STRANGER)).json()
        assert stranger["data"] == {"content": "Not allowed.", "allowed_mentions": {"parse": []},
                                    "flags": 64}  # fmt: skip
        assert bot.get("/api/status").json()["paused"] is False
        assert post(bot, command("pause")).json()["data"]["content"].startswith("Paused")
        assert bot.get("/api/status").json()["paused"] is True
        asked = post(bot, command("kill", reason="from discord")).json()
        yes = asked["data"]["components"][0]["components"][0]["custom_id"]
        done = post(bot, {"type": 3, "id": "2", "token": "t", "channel_id": str(CHANNEL),
                          "member": {"user": {"id": str(USER)}},
                          "data": {"custom_id": yes, "component_type": 2}})  # fmt: skip
        assert done.json()["type"] == 7 and "Kill switch engaged" in done.json()["data"]["content"]
        assert bot.wait_exit(10) == 10
    finally:
        bot.kill_hard()
    commands = [json.loads(d) for (d,) in db_rows(
        tmp_path, "select detail from audit_log where kind = 'command'")]  # fmt: skip
    assert {(c["verb"], c["via"], c["who"]) for c in commands} >= {
        ("status", "discord", str(USER)), ("pause", "discord", str(USER)),
        ("kill", "discord", str(USER)),
    }  # fmt: skip
    assert all(c["who"] == str(USER) for c in commands)  # the forger's and stranger's: none


def test_register_puts_the_slash_commands_with_the_bot_token(tmp_path: Path) -> None:
    got: list[tuple[str, str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def do_PUT(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            got.append((self.path, str(self.headers.get("Authorization")), body))
            data = json.dumps([{"id": str(i), **c} for i, c in enumerate(body)]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {
            "SOLBOT_DISCORD_API_URL": f"http://127.0.0.1:{server.server_address[1]}/api/v10",
            "SOLBOT_DISCORD_APPLICATION_ID": "1234",
            "SOLBOT_DISCORD_BOT_TOKEN": "bot-token-secret-value",
        }
        r = run_solbot(tmp_path, "discord", "register", **env)
        missing = run_solbot(tmp_path, "discord", "register")
    finally:
        server.shutdown()
        server.server_close()
    assert r.returncode == 0, r.stderr
    assert "10 slash commands registered" in r.stdout
    assert "bot-token-secret-value" not in r.stdout + r.stderr
    path, auth, body = got[0]
    assert path == "/api/v10/applications/1234/commands" and auth == "Bot bot-token-secret-value"
    assert [c["name"] for c in body][-2:] == ["kill", "help"]
    assert missing.returncode == 2 and "discord_application_id" in missing.stderr
