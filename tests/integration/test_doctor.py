"""``solbot doctor`` on a real running bot, and each failure it must name with its fix."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.botproc import Bot, solbot_cmd
from tests.integration.http_util import JsonHandler, LoopbackServer

pytestmark = pytest.mark.integration


def doctor(home: Path, *args: str, **env: str) -> tuple[int, dict[str, str]]:
    r = subprocess.run(
        solbot_cmd("doctor", *args),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SOLBOT_HOME": str(home), "COLUMNS": "300", **env},
    )
    lines = {}
    for line in r.stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0] in ("ok", "warn", "FAIL"):
            lines[parts[1]] = f"{parts[0]} {parts[2]}"
    return r.returncode, lines


class FakePrometheus(LoopbackServer):
    """Prometheus's /api/v1/targets with one target, up or down."""

    def __init__(self, port: int, health: str) -> None:
        class Handler(JsonHandler):
            def do_GET(self) -> None:
                target: dict[str, Any] = {
                    "scrapeUrl": f"http://127.0.0.1:{port}/metrics",
                    "health": health,
                    "lastError": "" if health == "up" else "connection refused",
                }
                self.send_json({"status": "success", "data": {"activeTargets": [target]}})

        super().__init__(Handler)


def test_healthy_bot_passes_and_each_problem_is_named_with_its_fix(tmp_path: Path) -> None:
    home = tmp_path
    (home / ".env").write_text("SOLBOT_STRATEGY=ladder\n")
    (home / ".env").chmod(0o600)
    bot = Bot(home)
    try:
        bot.wait_ready()
        assert (
            subprocess.run(
                solbot_cmd("backup", "create"),
                env={**os.environ, "SOLBOT_HOME": str(home)},
                capture_output=True,
                timeout=60,
            ).returncode
            == 0
        )
        with FakePrometheus(bot.port, "up") as prom:
            code, lines = doctor(home, "--prometheus-url", prom.origin, SOLBOT_PORT=str(bot.port))
        assert code == 0, lines
        for name in (
            ".env",
            "config",
            "process",
            "api",
            "database",
            "disk",
            "dependencies",
            "backup",
            "prometheus",
        ):
            assert lines[name].startswith("ok"), (name, lines)
        assert f"pid {bot.proc.pid}" in lines["process"]

        (home / ".env").chmod(0o644)
        with FakePrometheus(bot.port, "down") as prom:
            code, lines = doctor(home, "--prometheus-url", prom.origin, SOLBOT_PORT=str(bot.port))
        assert code == 1
        assert lines[".env"].startswith("FAIL") and "chmod 600" in lines[".env"]
        assert lines["prometheus"].startswith("FAIL") and "down" in lines["prometheus"]
        (home / ".env").chmod(0o600)
        (home / "data" / "kill-switch.flag").write_text("operator: exchange incident\n")
        code, lines = doctor(home, SOLBOT_PORT=str(bot.port))
        assert lines["kill"].startswith("warn") and "exchange incident" in lines["kill"]
    finally:
        bot.kill_hard()

    # the bot is gone: process and port fail; a corrupt database is named
    (home / "data" / "kill-switch.flag").unlink()
    db = home / "data" / "solbot.sqlite"
    data = bytearray(db.read_bytes())
    data[4096:8192] = b"\xa5" * 4096  # scribble over the second page
    db.write_bytes(bytes(data))
    for extra in ("-wal", "-shm"):
        Path(str(db) + extra).unlink(missing_ok=True)
    code, lines = doctor(home, SOLBOT_PORT=str(bot.port))
    assert code == 1
    assert lines["process"].startswith("FAIL") and "systemctl status" in lines["process"]
    assert lines["port"].startswith("FAIL") and f":{bot.port}" in lines["port"]
    assert lines["database"].startswith("FAIL") and "backup restore" in lines["database"]


def test_bad_config_and_a_nested_backup_fail(tmp_path: Path) -> None:
    code, lines = doctor(tmp_path, SOLBOT_TIMEFRAME="7q")
    assert code == 1 and lines["config"].startswith("FAIL") and "timeframe" in lines["config"]
    nested = tmp_path / "solbot-prod-backup"
    nested.mkdir()
    (nested / "current").symlink_to("releases/x")
    code, lines = doctor(tmp_path)
    assert lines["release"].startswith("FAIL") and "cp -rT" in lines["release"]
