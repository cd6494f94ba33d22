"""schemathesis against the running bot's own OpenAPI schema, bounded, without and with the
token (issue 16: "schemathesis against the running bot's OpenAPI in make test").

Checks on every answer: no 5xx, the status code and content type are ones the schema lists,
the body matches the schema. Without the token nothing may change: no kill flag, no pause,
the bot trades on. With the token every route but ``/api/kill`` (which would end the run) is
fuzzed. Each run stops after ``CASES`` examples per operation or ``SECONDS``, whichever first.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.botproc import Bot, db_rows

pytestmark = pytest.mark.integration
TOKEN = "fuzz-token-0123456789abcdef"
CASES, SECONDS = "10", "8"
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)


def schemathesis(url: str, home: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    st = Path(sys.executable).with_name("st")
    if not st.exists() and shutil.which("st") is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    return subprocess.run(
        [str(st if st.exists() else "st"), "run", url + "/api/openapi.json", "-c", CHECKS,
         "-n", CASES, "--max-time", SECONDS, "--seed", "20261202", "--request-timeout", "5",
         "--no-color", *extra],
        capture_output=True, text=True, timeout=120, cwd=home,
    )  # fmt: skip


def test_the_api_answers_as_its_schema_says_and_changes_nothing_without_the_token(
    tmp_path: Path,
) -> None:
    bot = Bot(tmp_path, env={"SOLBOT_API_TOKEN": TOKEN, "SOLBOT_STRATEGY": "ladder"}, speed=20)
    try:
        bot.wait_ready()
        bars = bot.get("/api/status").json()["bars_processed"]
        anon = schemathesis(bot.url, tmp_path)
        assert anon.returncode == 0, anon.stdout[-4000:]
        assert "passed" in anon.stdout
        assert bot.proc.poll() is None
        assert not (tmp_path / "data" / "kill-switch.flag").exists()
        status = bot.get("/api/status").json()
        assert not status["paused"] and status["bars_processed"] > bars
        kinds = {k for (k,) in db_rows(tmp_path, "select kind from audit_log")}
        assert not kinds & {"pause", "resume", "kill"}, kinds
        assert TOKEN not in anon.stdout

        authed = schemathesis(
            bot.url, tmp_path, "-H", f"Authorization: Bearer {TOKEN}", "--exclude-path", "/api/kill"
        )
        assert authed.returncode == 0, authed.stdout[-4000:]
        assert bot.proc.poll() is None and bot.get("/api/status").status_code in (200, 503)
        assert TOKEN not in bot.output()
    finally:
        bot.kill_hard()
