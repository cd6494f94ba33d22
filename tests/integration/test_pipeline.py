"""``make pipeline`` (``solbot rehearse``): the runbook's flow end to end on this machine, and
a step broken on purpose fails the run with that step named."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.botproc import solbot_cmd

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def rehearse(*args: str) -> subprocess.CompletedProcess[str]:
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("the rehearsal deploys from the project's git checkout")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLBOT_")}
    return subprocess.run(
        solbot_cmd("rehearse", *args),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env={**env, "COLUMNS": "200"},
    )


def test_the_whole_runbook_flow_passes() -> None:
    r = rehearse()
    assert r.returncode == 0, r.stdout + r.stderr
    steps = re.findall(r"\] (\S+)\s+(ok|FAIL)", r.stdout)
    assert [s for s, _ in steps] == [
        "deploy-staging", "start-staging", "stop-test-staging", "pnl-zero-staging",
        "stop-staging", "deploy-production", "start-production", "doctor-production",
        "stop-test-production",
        "pnl-zero-production", "deploy-production-bad", "start-production-bad", "auto-stop",
        "rollback",
    ]  # fmt: skip
    assert all(v == "ok" for _, v in steps)
    assert "OPS-009 failed as injected → kill switch → bot stopped → Discord told" in r.stdout
    assert "[P1] OPS-009 PnL=0 smoke test: FAIL" in r.stdout
    assert r.stdout.count("TST-085 stop test: PASS") >= 4  # two steps, two Discord messages
    assert "pipeline passed" in r.stdout


def test_a_step_broken_on_purpose_fails_the_run_and_is_named() -> None:
    r = rehearse("--break", "pnl-zero-staging")
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(r"pnl-zero-staging\s+FAIL\s+solbot smoke pnl-zero: exit 1", r.stdout)
    assert "pipeline FAILED at step pnl-zero-staging" in r.stdout
    assert "deploy-production" not in r.stdout  # nothing after the failure runs
    bad = rehearse("--break", "nope")
    assert bad.returncode == 2 and "unknown step" in bad.stderr
