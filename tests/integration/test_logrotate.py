"""deploy/logrotate/solbot: a forced rotation (real logrotate) under a running bot started
the way the units start it (SOLBOT_LOG_ROTATION=logrotate): the old lines stay in the
rotated file, the new ones go to a fresh app.log, nothing is lost."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.botproc import Bot

pytestmark = pytest.mark.integration
CONF = Path(__file__).resolve().parents[2] / "deploy" / "logrotate" / "solbot"


def render(home: Path) -> str:
    """The shipped config, for a home in a temp dir and this machine's user."""
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    text = CONF.read_text()
    assert "/opt/solbot/logs/*.log /opt/solbot-prod/logs/*.log {" in text
    text = text.replace("/opt/solbot/logs/*.log /opt/solbot-prod/logs/*.log", f"{home}/logs/*.log")
    return text.replace("solbot solbot", f"{user} {group}")


def test_forced_rotation_under_a_running_bot_loses_nothing(tmp_path: Path) -> None:
    if shutil.which("logrotate") is None:
        pytest.skip("logrotate is not installed (Debian: logrotate)")
    home = tmp_path / "home"
    home.mkdir()
    conf = tmp_path / "solbot.logrotate"
    conf.write_text(render(home))
    conf.chmod(0o644)
    bot = Bot(home, env={"SOLBOT_LOG_ROTATION": "logrotate"})
    try:
        bot.wait_ready()
        debug = subprocess.run(
            ["logrotate", "-d", "-s", str(tmp_path / "state"), str(conf)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "error:" not in debug.stderr + debug.stdout, debug.stderr
        forced = subprocess.run(
            ["logrotate", "-f", "-s", str(tmp_path / "state"), str(conf)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert forced.returncode == 0, forced.stderr
        rotated = [p for p in (home / "logs").iterdir() if p.name.startswith("app.log-")]
        assert len(rotated) == 1, list((home / "logs").iterdir())
        assert "solbot" in rotated[0].read_text() and " up: " in rotated[0].read_text()
        (home / "data" / "kill-switch.flag").write_text("logrotate test over\n")
        assert bot.wait_exit(20) == 10
    finally:
        bot.kill_hard()
    fresh = (home / "logs" / "app.log").read_text()
    assert "kill switch" in fresh.lower() and " up: " not in fresh  # written after rotation
    assert oct((home / "logs" / "app.log").stat().st_mode & 0o777) == "0o640"
