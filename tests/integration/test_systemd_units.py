"""The systemd units in deploy/systemd: ``systemd-analyze verify`` clean and
``systemd-analyze security --offline=true`` exposure <= 2.0, with the stop and restart
semantics the runbook needs. There is no systemd as PID 1 here, so ``verify`` runs against
a throw-away root holding the system's unit files and an executable at ``ExecStart``'s path.
(The protocol side — READY=1, WATCHDOG=1, STOPPING=1 from a real bot process — is
tests/integration/test_service.py::test_sd_notify_ready_watchdog_and_stopping.)
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from solbot.runtime.exitcodes import EXIT_DATABASE, EXIT_KILLED, EXIT_RECONCILE

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
    ),
]
UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")


def directives(unit: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def fake_root(tmp: Path, unit: Path) -> Path:
    root = tmp / "root"
    (root / "usr" / "lib" / "systemd").mkdir(parents=True)
    shutil.copytree(SYSTEM_UNITS, root / "usr" / "lib" / "systemd" / "system", symlinks=True)
    (root / "lib").symlink_to("usr/lib")
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    shutil.copy(unit, root / "etc" / "systemd" / "system" / unit.name)
    exe = directives(unit)["ExecStart"][0].split()[0]
    target = root / exe.lstrip("/")
    target.parent.mkdir(parents=True)
    target.write_text("#!/bin/sh\n")
    target.chmod(0o755)
    return root


@pytest.mark.parametrize(
    ("name", "home", "port"),
    [("bot.service", "/opt/solbot", 3000), ("bot-prod.service", "/opt/solbot-prod", 3001)],
)
def test_unit_verifies_scores_at_most_2_and_has_the_runbooks_semantics(
    tmp_path: Path, name: str, home: str, port: int
) -> None:
    if not SYSTEM_UNITS.is_dir():
        pytest.skip("no system unit files to verify against")
    unit = UNITS / name
    d = directives(unit)
    assert d["Type"] == ["notify"] and d["WatchdogSec"] and d["TimeoutStopSec"] == ["30"]
    assert d["Restart"] == ["on-failure"]
    assert str(EXIT_KILLED) in d["RestartPreventExitStatus"]  # the kill switch is final
    assert str(EXIT_RECONCILE) in d["RestartPreventExitStatus"]
    assert str(EXIT_DATABASE) in d["RestartPreventExitStatus"]  # a damaged file stays as it is
    assert int(d["LimitNOFILE"][0]) >= 65536  # a connection flood does not exhaust descriptors
    assert int(d["Nice"][0]) <= -10  # a busy neighbour on the same cores does not slow bars
    assert d["EnvironmentFile"] == [f"{home}/.env"] and d["WorkingDirectory"] == [home]
    assert d["ExecStart"] == [f"{home}/current/venv/bin/solbot run"]
    assert (
        f"SOLBOT_PORT={port}" in d["Environment"][0]
        and f"SOLBOT_HOME={home}" in d["Environment"][0]
    )

    root = fake_root(tmp_path, unit)
    verify = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0 and verify.stderr == "" and verify.stdout == "", verify.stderr

    sec = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=20", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", sec.stdout)
    assert m is not None, sec.stdout[-2000:] + sec.stderr
    assert sec.returncode == 0 and float(m.group(1)) <= 2.0, m.group(0)


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a unit whose ExecStart does not exist is refused."""
    if not SYSTEM_UNITS.is_dir():
        pytest.skip("no system unit files to verify against")
    root = fake_root(tmp_path, UNITS / "bot.service")
    unit = root / "etc" / "systemd" / "system" / "bot.service"
    unit.write_text(unit.read_text().replace("/venv/bin/solbot run", "/venv/bin/nope run"))
    verify = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "bot.service"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode != 0 and "is not executable" in verify.stderr


def test_production_unit_is_the_staging_unit_for_its_own_home_and_port() -> None:
    staging = (UNITS / "bot.service").read_text()
    expected = (
        staging.replace("/opt/solbot", "/opt/solbot-prod")
        .replace("staging", "production")
        .replace("3000", "3001")
        .replace("enable --now\n# bot`", "enable --now\n# bot-prod`")
    )
    assert (UNITS / "bot-prod.service").read_text() == expected


def test_backup_timer_and_service_verify_and_run_weekly(tmp_path: Path) -> None:
    """solbot-backup@.timer/.service (instance = the app dir under /opt) verify clean, score
    <= 2.0 like the bot's units, and fire once a week."""
    if not SYSTEM_UNITS.is_dir():
        pytest.skip("no system unit files to verify against")
    root = fake_root(tmp_path, UNITS / "bot-prod.service")
    system = root / "etc" / "systemd" / "system"
    for name in ("solbot-backup@.service", "solbot-backup@.timer"):
        shutil.copy(UNITS / name, system / name)
    service = directives(UNITS / "solbot-backup@.service")
    assert service["Type"] == ["oneshot"]
    assert service["ExecStart"][0] == "/opt/%i/current/venv/bin/solbot backup create"
    verify = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            f"--root={root}",
            "solbot-backup@solbot-prod.service",
            "solbot-backup@solbot-prod.timer",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr
    instance = tmp_path / "solbot-backup@solbot-prod.service"
    shutil.copy(UNITS / "solbot-backup@.service", instance)
    sec = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=20", str(instance)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", sec.stdout)
    assert m is not None and float(m.group(1)) <= 2.0, sec.stdout[-2000:] + sec.stderr

    timer = directives(UNITS / "solbot-backup@.timer")
    assert timer["Persistent"] in (["yes"], ["true"])
    cal = subprocess.run(
        ["systemd-analyze", "calendar", "--iterations=3", timer["OnCalendar"][0]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cal.returncode == 0, cal.stderr
    assert cal.stdout.count("Sun ") >= 3  # the next three runs: Sundays, a week apart
