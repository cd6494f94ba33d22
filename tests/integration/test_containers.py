"""Dockerfile and docker-compose.yml, validated statically (no Docker engine here):
``docker-compose config`` when installed, every file they mount or copy exists and is not
ignored, the stop semantics match the runbook, and the image's health check command is run
against a real bot."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.botproc import Bot

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_compose_file_is_valid_and_matches_the_repo() -> None:
    if shutil.which("docker-compose"):
        r = subprocess.run(
            ["docker-compose", "-f", str(REPO / "docker-compose.yml"), "config", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert r.returncode == 0, r.stderr
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = doc["services"]
    assert set(services) == {"bot", "prometheus", "alertmanager", "grafana"}
    bot = services["bot"]
    assert bot["stop_signal"] == "SIGTERM" and bot["stop_grace_period"] == "30s"
    assert bot["environment"]["SOLBOT_HOST"] == "127.0.0.1"  # host network: loopback only
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and "rendered" not in source:
                assert (REPO / source).exists(), (name, source)
            elif not source.startswith("./"):
                assert source in doc["volumes"], (name, source)
    prom_cmd = " ".join(services["prometheus"]["command"])
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom_cmd
    assert "rendered" in ((REPO / ".gitignore").read_text())  # the webhook never committed


def test_dockerfile_copies_what_exists_runs_unprivileged_and_checks_health() -> None:
    steps = instructions()
    ignored = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines() if p.strip()]
    for word, rest in steps:
        if word == "COPY" and not rest.startswith("--from"):
            *sources, _dest = rest.split()
            for src in sources:
                assert (REPO / src).exists(), src
                assert not any(fnmatch.fnmatch(src, pat) for pat in ignored), src
    assert ".env" in ignored and ".git" in ignored  # secrets and history stay out of images
    froms = [rest for word, rest in steps if word == "FROM"]
    assert all(re.match(r"python:3\.11-", f) for f in froms)
    users = [rest for word, rest in steps if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    env = " ".join(rest for word, rest in steps if word == "ENV")
    assert "SOLBOT_PORT=3001" in env and any(w == "EXPOSE" and r == "3001" for w, r in steps)
    assert ("STOPSIGNAL", "SIGTERM") in steps
    assert ("ENTRYPOINT", '["solbot"]') in steps and ("CMD", '["run"]') in steps


def healthcheck_command() -> list[str]:
    hc = next(rest for word, rest in instructions() if word == "HEALTHCHECK")
    return list(yaml.safe_load(hc.split("CMD", 1)[1].strip()))


def test_the_image_healthcheck_command_tells_healthy_from_not(tmp_path: Path) -> None:
    cmd = healthcheck_command()
    assert cmd[0] == "python"
    bot = Bot(tmp_path, port=None)
    probe = [sys.executable, *cmd[1:]]
    probe[-1] = probe[-1].replace("127.0.0.1:3001", f"127.0.0.1:{bot.port}")
    try:
        bot.wait_ready()
        assert subprocess.run(probe, timeout=30).returncode == 0
    finally:
        bot.kill_hard()
    assert subprocess.run(probe, capture_output=True, timeout=30).returncode != 0
